//! CORS (`http.cors_origins`): pages on the listed origins can preflight and read every answer —
//! errors and Socket.IO long-polling included; other origins get no CORS headers but are served as
//! before, and without the setting chatd sends no CORS headers at all.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backends, spawn_app, spawn_app_with, test_settings, token};

const PAGE: &str = "https://app.example.com";

async fn spawn_with_cors(backend: Backend, origins: &[&str]) -> TestApp {
    let mut settings = test_settings();
    settings.http.cors_origins = origins.iter().map(|origin| (*origin).to_owned()).collect();
    spawn_app_with(backend, settings, None).await
}

/// A browser's preflight for a `POST` with the token and a JSON body, from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}/api/user/2", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-auth-token, content-type")
        .send()
        .await
        .expect("chatd answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|value| value.to_str().expect("a text header"))
}

async fn listed_origins_can_preflight_and_read_every_answer(backend: Backend) {
    let app = spawn_with_cors(backend, &[PAGE]).await;
    let allowed = preflight(&app, PAGE).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(PAGE));
    let methods = header(&allowed, "access-control-allow-methods").expect("allowed methods");
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    let headers = header(&allowed, "access-control-allow-headers").expect("allowed headers").to_ascii_lowercase();
    assert!(headers.contains("x-auth-token") && headers.contains("content-type"), "{headers}");

    // The send itself, and an error answer, are readable by the page, with the headers it needs.
    let send = |token: String| {
        app.client
            .post(format!("{}/api/user/2", app.address))
            .header("Origin", PAGE)
            .header("X-Auth-Token", token)
            .json(&json!({"type": "text", "text": "from the page"}))
            .send()
    };
    let sent = send(token(1)).await.unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    assert_eq!(header(&sent, "access-control-allow-origin"), Some(PAGE));
    let exposed = header(&sent, "access-control-expose-headers").expect("exposed headers").to_ascii_lowercase();
    assert!(exposed.contains("retry-after") && exposed.contains("x-request-id"), "{exposed}");
    let refused = send("not-a-token".into()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], json!("INVALID_TOKEN_ERR"));

    // Socket.IO long-polling from the page.
    let polling = app
        .client
        .get(format!("{}/socket.io/?EIO=4&transport=polling", app.address))
        .header("Origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(polling.status(), StatusCode::OK);
    assert_eq!(header(&polling, "access-control-allow-origin"), Some(PAGE));

    // Another origin: no CORS headers (the browser keeps the answer from that page), but a client
    // that is not a browser is served as before.
    let other = preflight(&app, "https://evil.example").await;
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    let foreign = app
        .client
        .get(format!("{}/api/list", app.address))
        .header("Origin", "https://evil.example")
        .header("X-Auth-Token", token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::OK);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
}
backends!(cors_listed, listed_origins_can_preflight_and_read_every_answer);

async fn a_star_allows_every_origin(backend: Backend) {
    let app = spawn_with_cors(backend, &["*"]).await;
    let answer = preflight(&app, "http://localhost:5173").await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some("http://localhost:5173"));
}
backends!(cors_any, a_star_allows_every_origin);

async fn without_the_setting_there_are_no_cors_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = preflight(&app, PAGE).await;
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED, "OPTIONS is not a method chatd serves");
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let list = app.client.get(format!("{}/api/list", app.address)).header("Origin", PAGE).send().await.unwrap();
    assert_eq!(header(&list, "access-control-allow-origin"), None);
}
backends!(cors_off, without_the_setting_there_are_no_cors_headers);
