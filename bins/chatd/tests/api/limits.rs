//! Abuse limits and health: the per-user send rate (429 with Retry-After), realtime connection caps,
//! topics per connection, and the health and readiness endpoints.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, both, spawn_app, spawn_app_with, test_settings, token};
use crate::realtime_socketio::{ack, event, next_text};
use crate::ws_client::{Incoming, WsClient};

async fn sends_beyond_the_rate_are_429_and_change_nothing(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.sends_per_second = 1;
    settings.limits.send_burst = 3;
    let app = spawn_app_with(backend, settings, None).await;
    for n in 0..3 {
        app.send_text(1, "/api/user/2", &format!("burst {n}")).await;
    }
    let refused = app.post("/api/user/2", 1, json!({"type": "text", "text": "one too many"})).await;
    refused.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Nothing of the refused send was stored; other users are not limited by user 1's sends.
    assert_eq!(app.get("/api/user/2", 1).await.body["state"]["total"], json!(3));
    app.send_text(2, "/api/user/1", "my own budget").await;
    // Reading is not limited.
    assert_eq!(app.get("/api/list", 1).await.status, StatusCode::OK);
}
both!(send_rate, sends_beyond_the_rate_are_429_and_change_nothing);

async fn realtime_connections_are_capped_per_user_and_in_total(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.connections_per_user = 2;
    settings.limits.connections_total = 3;
    let app = spawn_app_with(backend, settings, None).await;
    let _first = WsClient::authenticated(&app, 1).await;
    let _second = WsClient::authenticated(&app, 1).await;
    let mut third = WsClient::connect(app.ws_url(&format!("/ws?token={}", token(1)))).await;
    assert_eq!(
        third.expect("error").await,
        json!({"code": "too_many_connections", "message": "too many connections for this user"})
    );
    assert_eq!(third.next().await, Incoming::Closed(Some((1008, "too many connections".into()))));

    let _other = WsClient::authenticated(&app, 2).await;
    let mut over = WsClient::connect(app.ws_url(&format!("/ws?token={}", token(3)))).await;
    assert_eq!(
        over.expect("error").await,
        json!({"code": "too_many_connections", "message": "this server has as many connections as it accepts"})
    );
    assert_eq!(over.next().await, Incoming::Closed(Some((1008, "too many connections".into()))));
}
both!(connection_caps, realtime_connections_are_capped_per_user_and_in_total);

async fn a_connection_hears_at_most_so_many_topics(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.topics_per_connection = 2;
    let app = spawn_app_with(backend, settings, None).await;
    let refused = json!({"code": "too_many_topics", "message": "a connection may hear at most 2 topics: unsubscribe from one first"});

    let mut client = WsClient::authenticated(&app, 1).await;
    client.subscribe(1).await;
    client.subscribe(2).await;
    // Asking again for a topic it hears takes no new place.
    client.subscribe(2).await;
    client.send("subscribe", json!({"topic": 3})).await;
    assert_eq!(client.expect("error").await, refused);
    // Nothing was subscribed past the bound: topic 3's post is not heard, topic 2's is.
    app.send_text(5, "/api/topic/3", "not for this connection").await;
    app.send_text(5, "/api/topic/2", "for this connection").await;
    assert_eq!(client.expect("new-message").await["text"], json!("for this connection"));
    // Leaving a topic frees its place.
    client.send("unsubscribe", json!({"topic": 1})).await;
    assert_eq!(client.expect("unsubscribed").await, json!({"topic": 1}));
    client.subscribe(3).await;

    // On the Socket.IO door, the ack says it.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("40{}", json!({"token": token(1)})))).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 1})));
    for (id, topic) in [(1, 1), (2, 2)] {
        socket.send(Message::text(format!("42{id}{}", json!(["subscribe", {"topic": topic}])))).await.unwrap();
        assert_eq!(ack(&next_text(&mut socket).await), (id, json!({"topic": topic})));
    }
    socket.send(Message::text(format!("423{}", json!(["subscribe", {"topic": 3}])))).await.unwrap();
    assert_eq!(
        ack(&next_text(&mut socket).await),
        (3, json!({"error": refused["message"], "code": "too_many_topics"}))
    );
}
both!(topics_per_connection, a_connection_hears_at_most_so_many_topics);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!((health.status, health.body), (StatusCode::OK, json!({"status": "ok"})));
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!((ready.status, ready.body), (StatusCode::OK, json!({"status": "ready"})));
}
both!(health, health_and_readiness);

async fn only_allowed_browser_origins_open_realtime_connections(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut settings = test_settings();
    settings.realtime.allowed_origins = vec!["https://chat.example.com".into()];
    let app = spawn_app_with(backend, settings, None).await;
    let with_origin = |origin: &str| {
        let mut request = app.ws_url(&format!("/ws?token={}", token(1))).into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        request
    };
    let mut allowed = WsClient::connect(with_origin("https://chat.example.com")).await;
    assert_eq!(allowed.expect("authenticated").await, json!({"user": 1}));
    let refused = tokio_tungstenite::connect_async(with_origin("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    // No Origin: not a browser, allowed.
    WsClient::authenticated(&app, 2).await;
    // Socket.IO polling from a foreign page is refused with the error body.
    let polling = app
        .client
        .get(format!("{}/socket.io/?EIO=4&transport=polling", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(polling.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = polling.json().await.unwrap();
    assert_eq!(body["code"], json!("ORIGIN_FORBIDDEN"));
    // Like every error body outside production, with its one line of stack.
    assert_eq!(body["stack"], json!("ForbiddenError: This origin may not connect"));
}
both!(origins, only_allowed_browser_origins_open_realtime_connections);
