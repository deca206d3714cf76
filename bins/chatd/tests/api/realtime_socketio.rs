//! Door 2, `/socket.io/`, spoken by hand at the packet level: the Engine.IO handshake, long-polling,
//! the upgrade to WebSocket, both ways to authenticate, acks, and the errors. (A real
//! `socket.io-client` runs against chatd in `socketio_client.rs`.)

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, TestApp, both, spawn_app, spawn_second_instance, test_settings, token};
use crate::ws_client::PATIENCE;

/// A long-polling Engine.IO client.
struct Polling<'a> {
    app: &'a TestApp,
    sid: String,
    /// Packets received but not yet looked at.
    pending: Vec<String>,
}

impl<'a> Polling<'a> {
    async fn open(app: &'a TestApp) -> (Polling<'a>, Value) {
        let response =
            app.client.get(format!("{}/socket.io/?EIO=4&transport=polling", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.text().await.unwrap();
        let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        (Polling { app, sid, pending: Vec::new() }, open)
    }

    fn url(&self) -> String {
        format!("{}/socket.io/?EIO=4&transport=polling&sid={}", self.app.address, self.sid)
    }

    async fn post(&self, packets: &[&str]) {
        let response = self.app.client.post(self.url()).body(packets.join("\x1e")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    /// The next packet, polling when none is pending (the server's pings are answered).
    async fn next(&mut self) -> String {
        loop {
            if !self.pending.is_empty() {
                let packet = self.pending.remove(0);
                if packet == "2" {
                    self.post(&["3"]).await;
                    continue;
                }
                return packet;
            }
            let response =
                tokio::time::timeout(PATIENCE, self.app.client.get(self.url()).send()).await.unwrap().unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.text().await.unwrap();
            self.pending.extend(body.split('\x1e').map(str::to_owned));
        }
    }
}

/// The `42["name", data]` packet's name and data.
fn event(packet: &str) -> (String, Value) {
    let array: Value =
        serde_json::from_str(packet.strip_prefix("42").unwrap_or_else(|| panic!("an event, got {packet}"))).unwrap();
    (array[0].as_str().unwrap().to_owned(), array[1].clone())
}

async fn polling_then_upgrade_carries_every_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut client, open) = Polling::open(&app).await;
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], json!(25000));
    assert_eq!(open["pingTimeout"], json!(20000));
    assert_eq!(open["maxPayload"], json!(65536));

    client.post(&[&format!("40{}", json!({"token": token(1)}))]).await;
    assert!(client.next().await.starts_with("40{\"sid\":"));
    assert_eq!(event(&client.next().await), ("authenticated".into(), json!({"user": 1})));

    let sent = app.send_text(2, "/api/user/1", "over polling").await;
    let (name, data) = event(&client.next().await);
    assert_eq!(name, "new-message");
    assert_eq!(data["id"], sent["id"]);
    assert_eq!(data["chat"], json!({"type": "user", "id": 2}));

    // Upgrade: probe the WebSocket, then switch to it.
    let url = app.ws_url(&format!("/socket.io/?EIO=4&transport=websocket&sid={}", client.sid));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "3probe");
    socket.send(Message::text("5")).await.unwrap();
    let sent = app.send_text(2, "/api/user/1", "over websocket").await;
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["id"].clone()), ("new-message", sent["id"].clone()));

    // Polling is over for this session.
    let response = app.client.get(client.url()).send().await.unwrap();
    let body = response.text().await.unwrap();
    assert!(body == "6" || body.contains("\"code\":3"), "{body}");
}
both!(socketio_polling_and_upgrade, polling_then_upgrade_carries_every_event);

pub(crate) async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> String {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => socket.send(Message::text("3")).await.unwrap(),
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(frame))) => return format!("closed {:?}", frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

async fn websocket_only_with_the_authenticate_event_and_acks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    let open: Value = serde_json::from_str(next_text(&mut socket).await.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
    socket.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));

    socket.send(Message::text(format!("421{}", json!(["authenticate", {"token": token(4)}])))).await.unwrap();
    assert_eq!(next_text(&mut socket).await, format!("431{}", json!([{"user": 4}])));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 4})));

    socket.send(Message::text(format!("422{}", json!(["subscribe", {"topic": 8}])))).await.unwrap();
    assert_eq!(next_text(&mut socket).await, format!("432{}", json!([{"topic": 8}])));
    socket.send(Message::text(format!("423{}", json!(["dance", {}])))).await.unwrap();
    assert_eq!(next_text(&mut socket).await, format!("433{}", json!([{"error": "unknown event \"dance\""}])));
    socket.send(Message::text(format!("42{}", json!(["dance", {}])))).await.unwrap();
    assert_eq!(event(&next_text(&mut socket).await), ("error".into(), json!({"message": "unknown event \"dance\""})));

    app.send_text(3, "/api/topic/8", "to the topic").await;
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["chat"].clone()), ("new-message", json!({"type": "topic", "id": 8})));
}
both!(socketio_websocket_only, websocket_only_with_the_authenticate_event_and_acks);

async fn bad_tokens_are_refused_the_socketio_way(backend: Backend) {
    let app = spawn_app(backend).await;
    // In the handshake's auth: a CONNECT_ERROR.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("40{}", json!({"token": "forged"})))).await.unwrap();
    let refused: Value = serde_json::from_str(next_text(&mut socket).await.strip_prefix("44").unwrap()).unwrap();
    assert_eq!(refused["data"]["code"], json!("invalid_token"));
    assert_eq!(refused["data"]["type"], json!("UnauthorizedError"));

    // With the authenticate event: `unauthorized`, then a disconnect.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text("40")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("42{}", json!(["authenticate", {"token": "forged"}])))).await.unwrap();
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["data"]["code"].clone()), ("unauthorized", json!("invalid_token")));
    assert_eq!(next_text(&mut socket).await, "41");
    assert_eq!(next_text(&mut socket).await, "closed Some(1008)");

    // A token that is not a string: socketio-jwt's words.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text("40")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("42{}", json!(["authenticate", {"token": ["a"]}])))).await.unwrap();
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["message"].clone()), ("unauthorized", json!("invalid token datatype")));
    assert_eq!(next_text(&mut socket).await, "41");
}
both!(socketio_refusals, bad_tokens_are_refused_the_socketio_way);

async fn protocol_errors_are_engineio_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, code, message) in [
        ("EIO=4&transport=polling&sid=nosuchsession", 1, "Session ID unknown"),
        ("EIO=3&transport=polling", 5, "Unsupported protocol version"),
        ("EIO=4&transport=carrier-pigeon", 0, "Transport unknown"),
        // JSONP polling, whose answers would have to be scripts.
        ("EIO=4&transport=polling&j=0", 0, "Transport unknown"),
    ] {
        let response = app.client.get(format!("{}/socket.io/?{query}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": code, "message": message}));
    }
}
both!(socketio_protocol_errors, protocol_errors_are_engineio_errors);

#[actix_web::test]
async fn polling_on_the_wrong_instance_is_a_clean_error() {
    let first = spawn_app(Backend::Redis).await;
    let second = spawn_second_instance(&first, test_settings()).await;
    let (client, _) = Polling::open(&first).await;
    let elsewhere = format!("{}/socket.io/?EIO=4&transport=polling&sid={}", second.address, client.sid);
    let response = second.client.get(elsewhere).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": 1, "message": "Session ID unknown"}));
}

#[actix_web::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    let mut settings = test_settings();
    settings.realtime.ping_interval_ms = 50;
    settings.realtime.ping_timeout_ms = 100;
    let app = crate::helpers::spawn_app_with(Backend::Memory, settings, None).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    let open: Value = serde_json::from_str(next_text(&mut socket).await.strip_prefix('0').unwrap()).unwrap();
    assert_eq!((open["pingInterval"].clone(), open["pingTimeout"].clone()), (json!(50), json!(100)));
    // Read everything, answer nothing: pings keep coming until the server gives up.
    let mut pings = 0;
    let code = loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => {
                assert_eq!(text.as_str(), "2");
                pings += 1;
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert!(pings >= 1);
    assert_eq!(code, Some((1001, "no heartbeat".to_owned())));
}

#[actix_web::test]
async fn sessions_must_authenticate_in_time_and_keep_frames_small() {
    let mut settings = test_settings();
    settings.realtime.auth_timeout_ms = 200;
    settings.realtime.max_message_bytes = 1024;
    let app = crate::helpers::spawn_app_with(Backend::Memory, settings, None).await;

    // Never connecting a namespace: refused when the deadline passes.
    let (mut idle, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut idle).await;
    let (name, data) = event(&next_text(&mut idle).await);
    assert_eq!((name.as_str(), data["message"].clone()), ("unauthorized", json!("authentication timed out")));
    assert_eq!(next_text(&mut idle).await, "41");
    assert_eq!(next_text(&mut idle).await, "closed Some(1008)");

    // A frame over the limit closes the socket with 1009.
    let (mut big, _) = tokio_tungstenite::connect_async(
        app.ws_url(&format!("/socket.io/?EIO=4&transport=websocket&token={}", token(1))),
    )
    .await
    .unwrap();
    next_text(&mut big).await;
    big.send(Message::text(format!("42{}", json!(["typing", {"padding": "x".repeat(2048)}])))).await.unwrap();
    assert_eq!(next_text(&mut big).await, "closed Some(1009)");
}
