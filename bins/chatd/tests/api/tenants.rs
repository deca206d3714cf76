//! Tenants: the request's Host picks the domain handle; handles never see each other's chats.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, both, spawn_app_with, test_settings, token};

async fn as_host(
    app: &TestApp,
    host: &str,
    method: reqwest::Method,
    path: &str,
    user: u64,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("Host", host)
        .header("X-Auth-Token", token(user));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn each_host_sees_only_its_own_tenant(backend: Backend) {
    let mut settings = test_settings();
    settings.chat.tenants.insert("alpha.example".into(), "alpha".into());
    settings.chat.tenants.insert("beta.example".into(), "beta".into());
    let app = spawn_app_with(backend, settings, None).await;

    let (status, sent) = as_host(
        &app,
        "alpha.example:8080",
        reqwest::Method::POST,
        "/api/user/2",
        1,
        Some(json!({"type": "text", "text": "alpha only"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sent["state"]["key"], json!("alpha:dm:1-2"));

    let (_, alpha) = as_host(&app, "ALPHA.example", reqwest::Method::GET, "/api/user/1", 2, None).await;
    assert_eq!(alpha["messages"][0]["text"], json!("alpha only"));
    for host in ["beta.example", "unknown.example"] {
        let (_, history) = as_host(&app, host, reqwest::Method::GET, "/api/user/1", 2, None).await;
        assert_eq!(history["messages"], json!([]), "{host}");
        let (_, inbox) = as_host(&app, host, reqwest::Method::GET, "/api/list", 2, None).await;
        assert_eq!(inbox["entries"], json!([]), "{host}");
        let id = sent["entry"]["id"].as_str().unwrap();
        let (status, _) = as_host(&app, host, reqwest::Method::DELETE, &format!("/api/user/2/{id}"), 1, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{host}");
    }
    let (_, inbox) = as_host(&app, "alpha.example", reqwest::Method::GET, "/api/list", 2, None).await;
    assert_eq!(inbox["state"]["key"], json!("alpha:inbox:2"));
    assert_eq!(inbox["entries"][0]["latest"]["text"], json!("alpha only"));

    if backend == Backend::Redis {
        let snapshot = crate::helpers::redis_snapshot(&app.prefix).await;
        let keys: Vec<&String> = snapshot.as_object().unwrap().keys().collect();
        // The other tenants' reads gave their readers' channels an epoch (`…:position:user:<id>`,
        // no events); nothing else exists outside alpha.
        let elsewhere = |key: &&&String| !key.starts_with(&format!("{}:messages:alpha:", app.prefix));
        for key in keys.iter().filter(elsewhere) {
            assert!(key.contains(":position:user:"), "{key}");
            assert!(snapshot[key.as_str()]["value"].get("s").is_none(), "no event was recorded outside alpha: {key}");
        }
    }
}
both!(tenant_separation, each_host_sees_only_its_own_tenant);

async fn realtime_events_and_presence_stay_within_their_tenant(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut settings = test_settings();
    settings.chat.tenants.insert("alpha.example".into(), "alpha".into());
    settings.chat.tenants.insert("beta.example".into(), "beta".into());
    let app = spawn_app_with(backend, settings, None).await;
    let connect = |host: &'static str, user: u64| {
        let app = &app;
        async move {
            let mut request = app.ws_url(&format!("/ws?token={}", token(user))).into_client_request().unwrap();
            request.headers_mut().insert("Host", host.parse().unwrap());
            let mut client = crate::ws_client::WsClient::connect(request).await;
            assert_eq!(client.expect("authenticated").await, json!({"user": user}));
            client
        }
    };
    // User 2 exists in both tenants; user 1 shares a DM with user 2 only in alpha.
    as_host(&app, "alpha.example", reqwest::Method::POST, "/api/user/2", 1, Some(json!({"type": "text", "text": "a"})))
        .await;
    let mut two_in_beta = connect("beta.example", 2).await;
    let mut two_in_alpha = connect("alpha.example", 2).await;
    let one_in_alpha = connect("alpha.example", 1).await;
    // Presence of user 1 reached user 2 in alpha only.
    assert_eq!(two_in_alpha.expect("presence").await, json!({"user": 1, "status": "active"}));
    let (status, _) = as_host(
        &app,
        "alpha.example",
        reqwest::Method::POST,
        "/api/user/2",
        1,
        Some(json!({"type": "text", "text": "b"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(two_in_alpha.expect("new-message").await["text"], json!("b"));
    drop(one_in_alpha);
    // Beta heard nothing of alpha: its first event is its own tenant's.
    as_host(
        &app,
        "beta.example",
        reqwest::Method::POST,
        "/api/user/2",
        3,
        Some(json!({"type": "text", "text": "beta only"})),
    )
    .await;
    let first = two_in_beta.expect("new-message").await;
    assert_eq!(first["text"], json!("beta only"));
}
both!(tenant_realtime, realtime_events_and_presence_stay_within_their_tenant);
