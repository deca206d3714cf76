//! Tenants: the request's Host picks the domain handle; handles never see each other's chats; and
//! a tenant with an identity of its own (its own JWT key, or a tenant claim) accepts only its own
//! tokens, on REST and on both realtime doors.

use chatd::settings::{JwtConfig, Settings, TenantConfig};
use futures_util::SinkExt;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Backend, SECRET, TestApp, backends, sign, spawn_app_with, test_settings, token, token_for};
use crate::realtime_socketio::next_text;

async fn as_host(
    app: &TestApp,
    host: &str,
    method: reqwest::Method,
    path: &str,
    user: u64,
    body: Option<Value>,
) -> (StatusCode, Value) {
    with_token(app, host, method, path, &token(user), body).await
}

/// A request to `host` with this token.
async fn with_token(
    app: &TestApp,
    host: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request =
        app.client.request(method, format!("{}{path}", app.address)).header("Host", host).header("X-Auth-Token", token);
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
backends!(tenant_separation, each_host_sees_only_its_own_tenant);

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
backends!(tenant_realtime, realtime_events_and_presence_stay_within_their_tenant);

/// Platform A's and platform B's sites on one chatd.
fn two_platforms() -> Settings {
    let mut settings = test_settings();
    settings.chat.tenants.insert("platform-a.example".into(), "alpha".into());
    settings.chat.tenants.insert("platform-b.example".into(), "beta".into());
    settings
}

/// Users 5 and 6 of platform B talk (with `beta_token`); then a token for user 6 that platform B
/// did not issue (`foreign`) tries to read their conversation on B's host, over REST and on both
/// realtime doors. Returns whether it got in.
async fn probe(app: &TestApp, beta_token: impl Fn(u64) -> String, foreign: &str) -> bool {
    let sent = json!({"type": "text", "text": "between B's users"});
    let (status, _) =
        with_token(app, "platform-b.example", reqwest::Method::POST, "/api/user/6", &beta_token(5), Some(sent)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, own) =
        with_token(app, "platform-b.example", reqwest::Method::GET, "/api/user/5", &beta_token(6), None).await;
    assert_eq!((status, own["messages"][0]["text"].clone()), (StatusCode::OK, json!("between B's users")));

    let (status, read) =
        with_token(app, "platform-b.example", reqwest::Method::GET, "/api/user/5", foreign, None).await;
    let rest_in = status == StatusCode::OK;
    if !rest_in {
        assert_eq!((status, read["code"].clone()), (StatusCode::UNAUTHORIZED, json!("INVALID_TOKEN_ERR")), "{read}");
    }

    let mut request = app.ws_url(&format!("/ws?token={foreign}")).into_client_request().unwrap();
    request.headers_mut().insert("Host", "platform-b.example".parse().unwrap());
    let mut client = crate::ws_client::WsClient::connect(request).await;
    let ws_in = match client.next().await {
        crate::ws_client::Incoming::Event(name, _) if name == "authenticated" => true,
        crate::ws_client::Incoming::Event(name, _) if name == "unauthorized" => false,
        other => panic!("authenticated or unauthorized, got {other:?}"),
    };

    let mut request = app.ws_url("/socket.io/?EIO=4&transport=websocket").into_client_request().unwrap();
    request.headers_mut().insert("Host", "platform-b.example".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("40{}", json!({"token": foreign})))).await.unwrap();
    let answer = next_text(&mut socket).await;
    let socketio_in = answer.starts_with("40{");
    assert!(socketio_in || answer.starts_with("44{"), "CONNECT or CONNECT_ERROR: {answer}");

    assert_eq!((rest_in, ws_in), (socketio_in, socketio_in), "every door answers alike");
    rest_in
}

async fn a_tenant_with_its_own_key_accepts_only_its_own_tokens(backend: Backend) {
    let mut settings = two_platforms();
    let beta_jwt = JwtConfig { secret: Some("platform-b-secret".into()), ..JwtConfig::default() };
    settings.tenants.insert("beta".into(), TenantConfig { jwt: Some(beta_jwt), platform: None });
    let app = spawn_app_with(backend, settings, None).await;
    let beta_token = |user| sign(Algorithm::HS256, "platform-b-secret", json!({"user_id": user}));
    // A token of the shared key (platform A's, say) does not open platform B.
    assert!(!probe(&app, beta_token, &token(6)).await);
    // Platform A still takes the shared key, and not B's.
    let (status, _) = as_host(&app, "platform-a.example", reqwest::Method::GET, "/api/list", 6, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        with_token(&app, "platform-a.example", reqwest::Method::GET, "/api/list", &beta_token(6), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
backends!(tenant_own_key, a_tenant_with_its_own_key_accepts_only_its_own_tokens);

async fn with_a_tenant_claim_a_shared_key_opens_only_the_tenant_named(backend: Backend) {
    let mut settings = two_platforms();
    settings.jwt.tenant_claim = "site".into();
    let app = spawn_app_with(backend, settings, None).await;
    let beta_token = |user| token_for(json!({"user_id": user, "site": "beta"}));
    let for_alpha = token_for(json!({"user_id": 6, "site": "alpha"}));
    assert!(!probe(&app, beta_token, &for_alpha).await);
    // A token naming no tenant opens none.
    let (status, _) = with_token(&app, "platform-b.example", reqwest::Method::GET, "/api/list", &token(6), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
backends!(tenant_claim, with_a_tenant_claim_a_shared_key_opens_only_the_tenant_named);

async fn tenants_sharing_one_identity_share_their_users(backend: Backend) {
    // Several sites of one platform, one user base: a user's token works on each (as before).
    let app = spawn_app_with(backend, two_platforms(), None).await;
    assert!(probe(&app, token, &sign(Algorithm::HS256, SECRET, json!({"user_id": 6}))).await);
}
backends!(tenant_shared_identity, tenants_sharing_one_identity_share_their_users);

async fn a_tenant_with_its_own_platform_api_gets_its_profiles_there(backend: Backend) {
    use chatd::settings::PlatformConfig;
    let platform_b = crate::platform::StandInPlatform::start();
    let mut settings = two_platforms();
    let own = PlatformConfig {
        api_url: Some(platform_b.url.clone()),
        user_agent: "chat-of-platform-b".into(),
        ..PlatformConfig::default()
    };
    settings.tenants.insert("beta".into(), TenantConfig { jwt: None, platform: Some(own) });
    let app = spawn_app_with(backend, settings, None).await;
    let text = json!({"type": "text", "text": "hello"});
    as_host(&app, "platform-b.example", reqwest::Method::POST, "/api/user/6", 5, Some(text.clone())).await;
    as_host(&app, "platform-a.example", reqwest::Method::POST, "/api/user/6", 5, Some(text)).await;
    // Platform B's history has platform B's profiles; platform A's has the built-in directory's.
    let (_, on_b) = as_host(&app, "platform-b.example", reqwest::Method::GET, "/api/user/6", 5, None).await;
    assert_eq!(on_b["entry"], crate::platform::user_profile(6));
    let (_, on_a) = as_host(&app, "platform-a.example", reqwest::Method::GET, "/api/user/6", 5, None).await;
    assert_eq!(on_a["entry"], json!({"id": 6, "username": "user-6"}));
    let requests = platform_b.requests();
    assert_eq!(requests.len(), 1, "only platform B's request reached it: {requests:?}");
    assert_eq!(requests[0].user_agent, "chat-of-platform-b");
}
backends!(tenant_own_platform, a_tenant_with_its_own_platform_api_gets_its_profiles_there);
