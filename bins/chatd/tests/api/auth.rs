//! Authentication on every `/api` route: missing, invalid and valid tokens, both header styles.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, SECRET, backends, sign, spawn_app, spawn_app_with, test_settings, token, token_for};

const MESSAGE: &str = "/api/user/2/a6ab410a-826b-45f1-aae1-6f8d8a73d738";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn protected_routes_need_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = Some(br#"{"type":"text","text":"hi"}"#.to_vec());
    for (method, path, body) in [
        (Method::GET, "/api/list", None),
        (Method::GET, "/api/user/2", None),
        (Method::POST, "/api/user/2", body.clone()),
        (Method::POST, MESSAGE, Some(br#"{"text":"x"}"#.to_vec())),
        (Method::DELETE, MESSAGE, None),
    ] {
        let answer = app.request(method.clone(), path, None, body).await;
        answer.assert_error(401, "NOT_AUTHENTICATED");
        assert_eq!(answer.body["name"], json!("UnauthenticatedError"), "{method} {path}");
        assert_eq!(answer.body["message"], json!("You are not authenticated"));
    }
}
backends!(protected_routes, protected_routes_need_a_token);

async fn bad_tokens_are_refused_with_invalid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let unsigned = {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", part(json!({"alg": "none", "typ": "JWT"})), part(json!({"user_id": 1})))
    };
    let bad = [
        ("malformed", "abc".to_owned()),
        ("wrong secret", sign(Algorithm::HS256, "another-secret", json!({"user_id": 1}))),
        ("other algorithm", sign(Algorithm::HS384, SECRET, json!({"user_id": 1}))),
        ("alg none", unsigned),
        ("expired", token_for(json!({"user_id": 1, "exp": now() - 3600}))),
        ("not yet valid", token_for(json!({"user_id": 1, "nbf": now() + 3600}))),
        ("no user id", token_for(json!({"sub": "1"}))),
        ("zero user id", token_for(json!({"user_id": 0}))),
        ("text user id", token_for(json!({"user_id": "abc"}))),
        ("null user id", token_for(json!({"user_id": null}))),
    ];
    for (why, token) in bad {
        let answer = app.request(Method::GET, "/api/list", Some(&token), None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{why}");
        answer.assert_error(401, "INVALID_TOKEN_ERR");
    }
}
backends!(bad_tokens, bad_tokens_are_refused_with_invalid_token);

async fn a_numeric_string_user_id_is_the_same_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let as_text = token_for(json!({"user_id": "1000"}));
    let sent = app
        .request(Method::POST, "/api/user/99", Some(&as_text), Some(br#"{"type":"text","text":"hi"}"#.to_vec()))
        .await;
    assert_eq!(sent.status, StatusCode::CREATED);
    assert_eq!(sent.body["entry"]["author"], json!(1000));
    assert_eq!(sent.body["state"]["key"], json!("myplatform:dm:99-1000"));
    // The numeric token reads the same conversation.
    assert_eq!(app.texts("/api/user/99", 1000).await, ["hi"]);
    assert_eq!(app.texts("/api/user/1000", 99).await, ["hi"]);
}
backends!(string_user_id, a_numeric_string_user_id_is_the_same_user);

async fn bearer_tokens_and_a_configured_header_work(backend: Backend) {
    let mut settings = test_settings();
    settings.jwt.header = "X-Platform-Jwt".into();
    let app = spawn_app_with(backend, settings, None).await;
    let welcome = |request: reqwest::RequestBuilder| async move {
        let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        answer["authenticated"].clone()
    };
    let url = format!("{}/api", app.address);
    assert_eq!(welcome(app.client.get(&url).header("X-Platform-Jwt", token(5))).await, json!(true));
    assert_eq!(welcome(app.client.get(&url).bearer_auth(token(5))).await, json!(true));
    // The default header name is not read once another one is configured.
    assert_eq!(welcome(app.client.get(&url).header("X-Auth-Token", token(5))).await, json!(false));
    // Tokens with a valid expiry are accepted.
    let fresh = token_for(json!({"user_id": 5, "exp": now() + 3600}));
    assert_eq!(welcome(app.client.get(&url).bearer_auth(fresh)).await, json!(true));
}
backends!(token_headers, bearer_tokens_and_a_configured_header_work);
