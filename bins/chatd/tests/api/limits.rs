//! Abuse limits and health: the per-user send rate (429 with Retry-After), realtime connection caps,
//! topics per connection, and the health and readiness endpoints.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use chatd::settings::Settings;

use crate::helpers::{Backend, backends, spawn_app, spawn_app_with, test_settings, token};
use crate::realtime_socketio::{ack, connected_websocket, next_text};
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
backends!(send_rate, sends_beyond_the_rate_are_429_and_change_nothing);

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
backends!(connection_caps, realtime_connections_are_capped_per_user_and_in_total);

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
    let mut socket = connected_websocket(&app, 1).await;
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
backends!(topics_per_connection, a_connection_hears_at_most_so_many_topics);

/// One per second, three at once: of ten events sent together, at most four pass (three, and one
/// more if a second went by), whatever the machine's speed.
fn slow_events() -> Settings {
    let mut settings = test_settings();
    settings.limits.client_events_per_second = 1;
    settings.limits.client_event_burst = 3;
    settings
}

async fn client_events_past_the_budget_are_refused_and_never_fanned_out(backend: Backend) {
    let app = spawn_app_with(backend, slow_events(), None).await;
    let typing = json!({"chat": {"type": "topic", "id": 42}});
    let mut listener = WsClient::authenticated(&app, 2).await;
    listener.subscribe(42).await;
    let mut typist = WsClient::authenticated(&app, 1).await;
    for _ in 0..10 {
        typist.send("typing", typing.clone()).await;
    }
    // A passing `typing` is not answered; each refused one is, with `rate_limited`.
    let answers = typist.barrier().await;
    let limited = json!({"code": "rate_limited", "message": "too many events, slow down"});
    assert!(answers.iter().all(|answer| *answer == Incoming::Event("error".into(), limited.clone())), "{answers:?}");
    let passed = 10 - answers.len();
    assert!((3..=4).contains(&passed), "{passed} of 10 passed");
    // The listener hears the ones that passed, and nothing of the others.
    for _ in 0..passed {
        assert_eq!(listener.expect("typing").await, json!({"chat": {"type": "topic", "id": 42}, "user": 1}));
    }
    app.send_text(3, "/api/topic/42", "after the typing").await;
    assert_eq!(listener.expect("new-message").await["text"], json!("after the typing"));

    // Socket.IO: each event's ack says whether it passed.
    let mut socket = connected_websocket(&app, 1).await;
    for id in 1..=10 {
        socket.send(Message::text(format!("42{id}{}", json!(["typing", typing])))).await.unwrap();
    }
    let mut passed = 0;
    for id in 1..=10 {
        let (acked, data) = ack(&next_text(&mut socket).await);
        assert_eq!(acked, id);
        if data == json!({"ok": true}) {
            passed += 1;
        } else {
            assert_eq!(data, json!({"error": "too many events, slow down", "code": "rate_limited"}));
        }
    }
    assert!((3..=4).contains(&passed), "{passed} of 10 passed");
}
backends!(client_event_budget, client_events_past_the_budget_are_refused_and_never_fanned_out);

async fn a_connection_sending_too_many_frames_is_closed(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.frames_per_second = 1;
    settings.limits.frame_burst = 5;
    settings.limits.client_events_per_second = 0;
    let app = spawn_app_with(backend, settings, None).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    for _ in 0..20 {
        client.send("typing", json!({"chat": {"type": "user", "id": 2}})).await;
    }
    assert_eq!(client.next().await, Incoming::Closed(Some((1008, "too many frames".into()))));

    let mut socket = connected_websocket(&app, 1).await;
    for _ in 0..20 {
        // Engine.IO pings, which the server answers: packets like any other.
        socket.send(Message::text("2")).await.ok();
    }
    let closed = loop {
        let text = next_text(&mut socket).await;
        if text.starts_with("closed") {
            break text;
        }
    };
    assert_eq!(closed, "closed Some(1008)");
}
backends!(frame_budget, a_connection_sending_too_many_frames_is_closed);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!((health.status, health.body), (StatusCode::OK, json!({"status": "ok"})));
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!((ready.status, ready.body), (StatusCode::OK, json!({"status": "ready"})));
}
backends!(health, health_and_readiness);

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
backends!(origins, only_allowed_browser_origins_open_realtime_connections);
