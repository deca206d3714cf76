//! The routes every client touches first: `/`, `/api`, unknown paths and methods.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, both, spawn_app, token};

async fn root_describes_the_service(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.request(Method::GET, "/", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["name"], json!("chatd"));
    assert_eq!(answer.body["version"], json!(env!("CARGO_PKG_VERSION")));
}
both!(root, root_describes_the_service);

async fn api_says_whether_the_caller_is_authenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.request(Method::GET, "/api", None, None).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(
        anonymous.body,
        json!({"authenticated": false, "message": "Welcome to a realtime chat API", "success": true})
    );
    let known = app.request(Method::GET, "/api", Some(&token(7)), None).await;
    assert_eq!(known.body["authenticated"], json!(true));
    let forged = app.request(Method::GET, "/api", Some("not.a.token"), None).await;
    forged.assert_error(401, "INVALID_TOKEN_ERR");
}
both!(api_welcome, api_says_whether_the_caller_is_authenticated);

async fn unknown_paths_and_methods_answer_the_error_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.request(Method::GET, "/nothing/here", None, None).await;
    missing.assert_error(404, "NOT_FOUND");
    assert_eq!(missing.body["name"], json!("RouteNotFoundError"));
    app.request(Method::GET, "/api/user/1/2/3/4", Some(&token(1)), None).await.assert_error(404, "NOT_FOUND");
    app.request(Method::PUT, "/api/user/2", Some(&token(1)), None).await.assert_error(405, "METHOD_NOT_ALLOWED");
    app.request(Method::PATCH, "/api/list", Some(&token(1)), None).await.assert_error(405, "METHOD_NOT_ALLOWED");
}
both!(unknown_routes, unknown_paths_and_methods_answer_the_error_body);
