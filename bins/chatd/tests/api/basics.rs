//! The routes every client touches first: `/`, `/api`, unknown paths and methods.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, backends, spawn_app, token};

async fn root_describes_the_service(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.request(Method::GET, "/", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["name"], json!("chatd"));
    assert_eq!(answer.body["version"], json!(env!("CARGO_PKG_VERSION")));
}
backends!(root, root_describes_the_service);

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
backends!(api_welcome, api_says_whether_the_caller_is_authenticated);

async fn unknown_paths_and_methods_answer_the_error_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.request(Method::GET, "/nothing/here", None, None).await;
    missing.assert_error(404, "NOT_FOUND");
    assert_eq!(missing.body["name"], json!("RouteNotFoundError"));
    app.request(Method::GET, "/api/user/1/2/3/4", Some(&token(1)), None).await.assert_error(404, "NOT_FOUND");
    for (method, path, allow) in [
        (Method::PUT, "/api/user/2", "GET, HEAD, POST"),
        (Method::PATCH, "/api/list", "GET, HEAD"),
        (Method::GET, "/api/user/2/7d3f1c1e-0000-4000-8000-000000000000", "POST, DELETE"),
        (Method::DELETE, "/healthz", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
        (Method::OPTIONS, "/api/", "GET, HEAD"),
    ] {
        let answer = app.request(method, path, Some(&token(1)), None).await;
        answer.assert_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(answer.headers["allow"], allow, "{path}");
    }
}
backends!(unknown_routes, unknown_paths_and_methods_answer_the_error_body);

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let fresh = app.client.get(format!("{}/api", app.address)).send().await.unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let again = app.client.get(format!("{}/api", app.address)).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id, "each request its own");
    // The caller's own id is kept, on errors too.
    let echoed =
        app.client.get(format!("{}/nowhere", app.address)).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(echoed.status(), StatusCode::NOT_FOUND);
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    let junk =
        app.client.get(format!("{}/api", app.address)).header("x-request-id", "has spaces").send().await.unwrap();
    assert_ne!(junk.headers()["x-request-id"], "has spaces");
}
backends!(request_ids, every_response_carries_a_request_id);

async fn metrics_are_served_in_the_prometheus_format(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut listener = crate::ws_client::WsClient::authenticated(&app, 2).await;
    app.send_text(1, "/api/user/2", "counted").await;
    listener.expect("new-message").await;
    app.get("/api/group/1", 1).await.assert_error(400, "MESSAGES_INVALID_TARGET");
    let response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"chatd_http_requests_total{route="/api/{target}/{id}",method="POST",status="201"}"#,
        r#"chatd_http_requests_total{route="/api/{target}/{id}",method="GET",status="400"}"#,
        r#"chatd_http_request_duration_seconds_bucket{route="/api/{target}/{id}",le="0.005"}"#,
        r#"chatd_realtime_connections{door="ws"}"#,
        "chatd_events_published_total",
        "chatd_events_delivered_total",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}
backends!(metrics, metrics_are_served_in_the_prometheus_format);
