//! Door 2, `/socket.io/`, spoken by hand at the packet level: the Engine.IO handshake, long-polling,
//! the upgrade to WebSocket, both ways to authenticate, acks, and the errors — in Engine.IO v4
//! (socket.io-client 4) and v3 (socket.io-client 1.x and 2.x, further down). (Real
//! `socket.io-client`s of each generation run against chatd in `socketio_client.rs`.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    Backend, TestApp, backends, spawn_app, spawn_app_with, spawn_second_instance, test_settings, token,
};
use crate::ws_client::{PATIENCE, close_handshake};

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
pub fn event(packet: &str) -> (String, Value) {
    let array: Value =
        serde_json::from_str(packet.strip_prefix("42").unwrap_or_else(|| panic!("an event, got {packet}"))).unwrap();
    let mut data = array[1].clone();
    crate::ws_client::take_position(&mut data);
    (array[0].as_str().unwrap().to_owned(), data)
}

async fn polling_then_upgrade_carries_every_event(backend: Backend) {
    polling_then_upgrade_carries_every_event_of(spawn_app(backend).await).await;
}
backends!(socketio_polling_and_upgrade, polling_then_upgrade_carries_every_event);

/// With two workers, the upgrade's connection is accepted by the other worker than the polling
/// session's (actix-server hands connections out in turn): the WebSocket moves to the session.
async fn an_upgrade_on_another_worker_reaches_its_session(backend: Backend) {
    let mut settings = test_settings();
    settings.http.workers = Some(2);
    polling_then_upgrade_carries_every_event_of(spawn_app_with(backend, settings, None).await).await;
}
backends!(socketio_upgrade_across_workers, an_upgrade_on_another_worker_reaches_its_session);

pub(crate) async fn polling_then_upgrade_carries_every_event_of(app: TestApp) {
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

/// A Socket.IO v4 session on a WebSocket from the start, its main namespace connected as `user`
/// (token in the CONNECT's `auth`), after its `authenticated` event.
pub(crate) async fn connected_websocket(app: &TestApp, user: u64) -> WebSocket {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with('0'), "the open packet");
    socket.send(Message::text(format!("40{}", json!({"token": token(user)})))).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": user})));
    socket
}

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

async fn a_message_sent_the_moment_connect_arrives_is_heard(backend: Backend) {
    let app = spawn_app(backend).await;
    // Each round sends the message as soon as CONNECT is in: CONNECT must come only once the
    // user's subscription is live (it used to come before, and a message could slip past).
    for round in 0..20 {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
        next_text(&mut socket).await;
        socket.send(Message::text(format!("40{}", json!({"token": token(1)})))).await.unwrap();
        assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"), "round {round}");
        let sent = app.send_text(2, "/api/user/1", &format!("right away {round}")).await;
        assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 1})));
        let (name, data) = event(&next_text(&mut socket).await);
        assert_eq!((name.as_str(), &data["id"]), ("new-message", &sent["id"]), "round {round}");
    }
}
backends!(socketio_connect_after_subscription, a_message_sent_the_moment_connect_arrives_is_heard);

async fn websocket_only_with_the_authenticate_event_and_acks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    let open: Value = serde_json::from_str(next_text(&mut socket).await.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
    socket.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));

    socket.send(Message::text(format!("421{}", json!(["authenticate", {"token": token(4)}])))).await.unwrap();
    assert_eq!(ack(&next_text(&mut socket).await), (1, json!({"user": 4})));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 4})));

    socket.send(Message::text(format!("422{}", json!(["subscribe", {"topic": 8}])))).await.unwrap();
    assert_eq!(ack(&next_text(&mut socket).await), (2, json!({"topic": 8})));
    socket.send(Message::text(format!("423{}", json!(["dance", {}])))).await.unwrap();
    assert_eq!(
        next_text(&mut socket).await,
        format!("433{}", json!([{"error": "unknown event \"dance\"", "code": "unknown_event"}]))
    );
    socket.send(Message::text(format!("42{}", json!(["dance", {}])))).await.unwrap();
    assert_eq!(
        event(&next_text(&mut socket).await),
        ("error".into(), json!({"code": "unknown_event", "message": "unknown event \"dance\""}))
    );

    app.send_text(3, "/api/topic/8", "to the topic").await;
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["chat"].clone()), ("new-message", json!({"type": "topic", "id": 8})));
}
backends!(socketio_websocket_only, websocket_only_with_the_authenticate_event_and_acks);

async fn bad_tokens_are_refused_the_socketio_way(backend: Backend) {
    let app = spawn_app(backend).await;
    // In the handshake's auth: a CONNECT_ERROR.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("40{}", json!({"token": "forged"})))).await.unwrap();
    let refused: Value = serde_json::from_str(next_text(&mut socket).await.strip_prefix("44").unwrap()).unwrap();
    assert_eq!(
        refused,
        json!({
            "message": "jwt malformed",
            "data": {"message": "jwt malformed", "code": "invalid_token", "type": "UnauthorizedError"},
        })
    );

    // With the authenticate event: `unauthorized`, then a disconnect.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text("40")).await.unwrap();
    next_text(&mut socket).await;
    socket.send(Message::text(format!("42{}", json!(["authenticate", {"token": "forged"}])))).await.unwrap();
    let (name, data) = event(&next_text(&mut socket).await);
    assert_eq!((name.as_str(), data["data"]["code"].clone()), ("unauthorized", json!("invalid_token")));
    assert_eq!(data["message"], json!("jwt malformed"));
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
backends!(socketio_refusals, bad_tokens_are_refused_the_socketio_way);

async fn protocol_errors_are_engineio_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, code, message) in [
        ("EIO=4&transport=polling&sid=nosuchsession", 1, "Session ID unknown"),
        ("EIO=2&transport=polling", 5, "Unsupported protocol version"),
        ("EIO=5&transport=websocket", 5, "Unsupported protocol version"),
        ("EIO=4&transport=carrier-pigeon", 0, "Transport unknown"),
        // JSONP polling, whose answers would have to be scripts.
        ("EIO=4&transport=polling&j=0", 0, "Transport unknown"),
    ] {
        let response = app.client.get(format!("{}/socket.io/?{query}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": code, "message": message}));
    }
}
backends!(socketio_protocol_errors, protocol_errors_are_engineio_errors);

/// As on `/ws`: a client's close ends the TCP connection at once, on a WebSocket-only session and
/// on one upgraded from polling (whose socket the session task got from another request).
async fn a_client_close_ends_the_connection_at_once(backend: Backend) {
    a_client_close_ends_the_connection_of(spawn_app(backend).await).await;
}
backends!(socketio_client_close, a_client_close_ends_the_connection_at_once);

pub(crate) async fn a_client_close_ends_the_connection_of(app: TestApp) {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with('0'));
    socket.send(Message::text(format!("40{}", json!({"token": token(1)})))).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 1})));
    let (answer, took) = close_handshake(&mut socket).await;
    assert_eq!(answer, None, "an empty close frame answers the client's");
    assert!(took < Duration::from_millis(300), "the connection ended {took:?} after the client's close");

    let (client, _) = Polling::open(&app).await;
    let url = app.ws_url(&format!("/socket.io/?EIO=4&transport=websocket&sid={}", client.sid));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "3probe");
    socket.send(Message::text("5")).await.unwrap();
    socket.send(Message::text(format!("40{}", json!({"token": token(1)})))).await.unwrap();
    assert!(next_text(&mut socket).await.starts_with("40{\"sid\":"));
    assert_eq!(event(&next_text(&mut socket).await), ("authenticated".into(), json!({"user": 1})));
    let (answer, took) = close_handshake(&mut socket).await;
    assert_eq!(answer, None);
    assert!(took < Duration::from_millis(300), "the upgraded connection ended {took:?} after the client's close");
}

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

// Engine.IO v3 / Socket.IO protocol 4: what socket.io-client 1.x and 2.x speak.

/// A WebSocket of these tests.
type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Splits a v3 polling body as engine.io-parser 2.x does, counting each length in UTF-16 code
/// units (JavaScript's string length); written apart from chatd's decoder on purpose.
fn split_v3(body: &str) -> Vec<String> {
    let units: Vec<u16> = body.encode_utf16().collect();
    let mut packets = Vec::new();
    let mut at = 0;
    while at < units.len() {
        let colon = at + units[at..].iter().position(|&unit| unit == u16::from(b':')).expect("a length");
        let length: usize = String::from_utf16(&units[at..colon]).unwrap().parse().expect("a number");
        let end = colon + 1 + length;
        packets.push(String::from_utf16(&units[colon + 1..end]).expect("whole characters"));
        at = end;
    }
    packets
}

/// Frames packets as socket.io-client 2.x does: `<UTF-16 length>:<packet>`.
fn frame_v3(packets: &[&str]) -> String {
    packets.iter().map(|packet| format!("{}:{packet}", packet.encode_utf16().count())).collect()
}

/// Frames a packet as socket.io-client 1.x does: UTF-8-encoded into one character per byte first,
/// and those characters counted.
fn frame_v3_utf8(packet: &str) -> String {
    let bytes: String = packet.bytes().map(char::from).collect();
    format!("{}:{bytes}", bytes.chars().count())
}

/// A long-polling Engine.IO v3 client.
struct PollingV3<'a> {
    app: &'a TestApp,
    sid: String,
    /// Packets received but not yet looked at.
    pending: Vec<String>,
}

impl<'a> PollingV3<'a> {
    /// Opens a session with `query` added to the handshake request (e.g. `&token=…`).
    async fn open(app: &'a TestApp, query: &str) -> (PollingV3<'a>, Value) {
        let url = format!("{}/socket.io/?EIO=3&transport=polling&t=Mz1a2b3&b64=1{query}", app.address);
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let packets = split_v3(&response.text().await.unwrap());
        assert_eq!(packets.len(), 1, "{packets:?}");
        let open: Value = serde_json::from_str(packets[0].strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        (PollingV3 { app, sid, pending: Vec::new() }, open)
    }

    fn url(&self) -> String {
        format!("{}/socket.io/?EIO=3&transport=polling&sid={}", self.app.address, self.sid)
    }

    async fn post_body(&self, body: String) {
        let response = self.app.client.post(self.url()).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    async fn post(&self, packets: &[&str]) {
        self.post_body(frame_v3(packets)).await;
    }

    /// The next packet, polling when none is pending. Server pings are not expected in v3, so they
    /// are returned like any packet.
    async fn next(&mut self) -> String {
        while self.pending.is_empty() {
            let response =
                tokio::time::timeout(PATIENCE, self.app.client.get(self.url()).send()).await.unwrap().unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.text().await.unwrap();
            // chatd writes v3 payloads in ASCII, which 1.x and 2.x clients read alike.
            assert!(body.is_ascii(), "{body}");
            self.pending.extend(split_v3(&body));
        }
        self.pending.remove(0)
    }
}

/// The next text frame or the close, with nothing answered for the client (v3 servers never ping).
async fn next_frame(socket: &mut WebSocket) -> String {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(frame))) => {
                return format!("closed {:?}", frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

/// The `43<id>[data]` ack packet's id and data.
pub fn ack(packet: &str) -> (u64, Value) {
    let rest = packet.strip_prefix("43").unwrap_or_else(|| panic!("an ack, got {packet}"));
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let array: Value = serde_json::from_str(&rest[digits..]).unwrap();
    let mut data = array[0].clone();
    crate::ws_client::take_position(&mut data);
    (rest[..digits].parse().unwrap(), data)
}

/// The handshake's fields, in order: engine.io 3's four, no `maxPayload`.
fn handshake_keys(open: &Value) -> Vec<&str> {
    open.as_object().unwrap().keys().map(String::as_str).collect()
}

async fn v3_polling_carries_events_and_text_in_either_framing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut client, open) = PollingV3::open(&app, "").await;
    assert_eq!(handshake_keys(&open), ["sid", "upgrades", "pingInterval", "pingTimeout"]);
    assert_eq!((open["upgrades"].clone(), open["pingInterval"].clone()), (json!(["websocket"]), json!(25000)));
    // The server connects the main namespace by itself, as socket.io 1.x and 2.x did.
    assert_eq!(client.next().await, "40");

    // The client pings; the server answers.
    client.post(&["2"]).await;
    assert_eq!(client.next().await, "3");

    client.post(&[r#"42["subscribe",{"topic":5}]"#]).await;
    assert_eq!(
        event(&client.next().await),
        ("error".into(), json!({"code": "authenticate_first", "message": "authenticate first"}))
    );
    // socket.io-client counts ack ids from 0.
    client.post(&["2", &format!("420{}", json!(["authenticate", {"token": token(1)}]))]).await;
    assert_eq!(client.next().await, "3");
    assert_eq!(ack(&client.next().await), (0, json!({"user": 1})));
    assert_eq!(event(&client.next().await), ("authenticated".into(), json!({"user": 1})));

    // Server to client: non-ASCII text arrives whole.
    let text = "héllo 👋 世界";
    let sent = app.send_text(2, "/api/user/1", text).await;
    let (name, data) = event(&client.next().await);
    assert_eq!(
        (name.as_str(), data["id"].clone(), data["text"].clone()),
        ("new-message", sent["id"].clone(), json!(text))
    );

    // Client to server, as socket.io-client 2.x frames it (UTF-16 lengths, raw text) and as 1.x
    // does (UTF-8 encoded first): the error echoes the event name exactly either way.
    let expected = json!({"error": "unknown event \"dänce 👋\"", "code": "unknown_event"});
    client.post(&[r#"421["dänce 👋",{}]"#]).await;
    assert_eq!(ack(&client.next().await), (1, expected.clone()));
    client.post_body(frame_v3_utf8(r#"422["dänce 👋",{}]"#)).await;
    assert_eq!(ack(&client.next().await), (2, expected));
    // Both framings in one body, and a 2.x client's Latin-1 text that is not UTF-8 in disguise.
    let body = format!("{}{}", frame_v3_utf8(r#"423["ünknown",{}]"#), frame_v3(&[r#"424["ünknown",{}]"#]));
    client.post_body(body).await;
    for id in [3, 4] {
        assert_eq!(
            ack(&client.next().await),
            (id, json!({"error": "unknown event \"ünknown\"", "code": "unknown_event"}))
        );
    }
}
backends!(socketio_v3_polling, v3_polling_carries_events_and_text_in_either_framing);

async fn v3_polling_upgrades_to_websocket(backend: Backend) {
    let app = spawn_app(backend).await;
    // A token on the first request (`io(url, {query: {token}})`): authenticated at once.
    let (mut client, _) = PollingV3::open(&app, &format!("&token={}", token(1))).await;
    assert_eq!(client.next().await, "40");
    assert_eq!(event(&client.next().await), ("authenticated".into(), json!({"user": 1})));

    let url = app.ws_url(&format!("/socket.io/?EIO=3&transport=websocket&sid={}", client.sid));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, "3probe");
    // The pending (here: next) poll is ended with a noop, so that the client can send the upgrade.
    assert_eq!(client.next().await, "6");
    socket.send(Message::text("5")).await.unwrap();

    let sent = app.send_text(2, "/api/user/1", "über 🚀").await;
    let (name, data) = event(&next_frame(&mut socket).await);
    assert_eq!(
        (name.as_str(), data["id"].clone(), data["text"].clone()),
        ("new-message", sent["id"].clone(), json!("über 🚀"))
    );
    socket.send(Message::text("2")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, "3");

    let response = app.client.get(client.url()).send().await.unwrap();
    let body = response.text().await.unwrap();
    assert!(body == "1:6" || body.contains("\"code\":3"), "{body}");
}
backends!(socketio_v3_upgrade, v3_polling_upgrades_to_websocket);

async fn v3_websocket_only_with_acks_subscribe_and_typing(backend: Backend) {
    let app = spawn_app(backend).await;
    let connect = |user: u64| app.ws_url(&format!("/socket.io/?EIO=3&transport=websocket&token={}", token(user)));
    let (mut typist, _) = tokio_tungstenite::connect_async(connect(1)).await.unwrap();
    let open: Value = serde_json::from_str(next_frame(&mut typist).await.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(handshake_keys(&open), ["sid", "upgrades", "pingInterval", "pingTimeout"]);
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(next_frame(&mut typist).await, "40");
    assert_eq!(event(&next_frame(&mut typist).await), ("authenticated".into(), json!({"user": 1})));

    // The listener authenticates with the original's event instead.
    let url = app.ws_url("/socket.io/?EIO=3&transport=websocket");
    let (mut listener, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    next_frame(&mut listener).await;
    assert_eq!(next_frame(&mut listener).await, "40");
    listener.send(Message::text(format!("42{}", json!(["authenticate", {"token": token(2)}])))).await.unwrap();
    assert_eq!(event(&next_frame(&mut listener).await), ("authenticated".into(), json!({"user": 2})));
    listener.send(Message::text(format!("420{}", json!(["subscribe", {"topic": 8}])))).await.unwrap();
    assert_eq!(ack(&next_frame(&mut listener).await), (0, json!({"topic": 8})));
    listener.send(Message::text(format!("42{}", json!(["subscribe", {"topic": 9}])))).await.unwrap();
    assert_eq!(event(&next_frame(&mut listener).await), ("subscribed".into(), json!({"topic": 9})));

    typist.send(Message::text(format!("427{}", json!(["typing", {"chat": {"type": "user", "id": 2}}])))).await.unwrap();
    assert_eq!(next_frame(&mut typist).await, format!("437{}", json!([{"ok": true}])));
    assert_eq!(
        event(&next_frame(&mut listener).await),
        ("typing".into(), json!({"chat": {"type": "user", "id": 1}, "user": 1}))
    );

    app.send_text(3, "/api/topic/8", "to the tópic").await;
    let (name, data) = event(&next_frame(&mut listener).await);
    assert_eq!(
        (name.as_str(), data["chat"].clone(), data["text"].clone()),
        ("new-message", json!({"type": "topic", "id": 8}), json!("to the tópic"))
    );

    // Over a WebSocket both generations send raw text.
    listener.send(Message::text(r#"421["dänce 👋",{}]"#)).await.unwrap();
    assert_eq!(
        ack(&next_frame(&mut listener).await),
        (1, json!({"error": "unknown event \"dänce 👋\"", "code": "unknown_event"}))
    );
    listener.send(Message::text("2")).await.unwrap();
    assert_eq!(next_frame(&mut listener).await, "3");
}
backends!(socketio_v3_websocket_only, v3_websocket_only_with_acks_subscribe_and_typing);

async fn v3_refusals_are_socketio_2_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let open = |query: &str| app.ws_url(&format!("/socket.io/?EIO=3&transport=websocket{query}"));

    // A bad token on the first request: an ERROR packet with what socket.io 2.x sent for
    // socketio-jwt's failing middleware (its `data`), and "/" is not connected.
    let (mut socket, _) = tokio_tungstenite::connect_async(open("&token=forged")).await.unwrap();
    next_frame(&mut socket).await;
    let refused: Value = serde_json::from_str(next_frame(&mut socket).await.strip_prefix("44").unwrap()).unwrap();
    assert_eq!(refused["code"], json!("invalid_token"));
    assert_eq!(refused["type"], json!("UnauthorizedError"));
    assert_eq!(refused["message"], json!("jwt malformed"), "{refused}");

    // Another namespace (socket.io-client 2.x appends its query): socket.io 2.x's ERROR.
    let (mut socket, _) = tokio_tungstenite::connect_async(open("")).await.unwrap();
    next_frame(&mut socket).await;
    assert_eq!(next_frame(&mut socket).await, "40");
    socket.send(Message::text("40/admin?token=x,")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, r#"44/admin,"Invalid namespace""#);
    // socket.io-client 1.x writes no comma after a namespace when nothing follows it.
    socket.send(Message::text("40/other")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, r#"44/other,"Invalid namespace""#);
    // Connecting "/" again changes nothing (ack 0 shows the session goes on).
    socket.send(Message::text("40")).await.unwrap();
    socket.send(Message::text(r#"420["subscribe",{"topic":1}]"#)).await.unwrap();
    assert_eq!(
        ack(&next_frame(&mut socket).await),
        (0, json!({"error": "authenticate first", "code": "authenticate_first"}))
    );

    // `authenticate` without a string token: socketio-jwt's words, then the disconnect.
    socket.send(Message::text(format!("42{}", json!(["authenticate", {"token": 5}])))).await.unwrap();
    let (name, data) = event(&next_frame(&mut socket).await);
    assert_eq!((name.as_str(), data["message"].clone()), ("unauthorized", json!("invalid token datatype")));
    assert_eq!(
        data["data"],
        json!({"message": "invalid token datatype", "code": "invalid_token", "type": "UnauthorizedError"})
    );
    assert_eq!(next_frame(&mut socket).await, "41");
    assert_eq!(next_frame(&mut socket).await, "closed Some((1008, \"unauthorized\"))");

    // A forged token in the event.
    let (mut socket, _) = tokio_tungstenite::connect_async(open("")).await.unwrap();
    next_frame(&mut socket).await;
    next_frame(&mut socket).await;
    socket.send(Message::text(format!("42{}", json!(["authenticate", {"token": "forged"}])))).await.unwrap();
    let (name, data) = event(&next_frame(&mut socket).await);
    assert_eq!((name.as_str(), data["data"]["code"].clone()), ("unauthorized", json!("invalid_token")));
    assert_eq!(next_frame(&mut socket).await, "41");

    // Binary frames end the session.
    let (mut socket, _) = tokio_tungstenite::connect_async(open("")).await.unwrap();
    next_frame(&mut socket).await;
    next_frame(&mut socket).await;
    socket.send(Message::binary(vec![4, 1, 2, 3])).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, "closed Some((1003, \"binary packets are not supported\"))");

    // Engine.IO errors: JSONP, malformed v3 bodies, and another version's requests.
    let get = |query: String| app.client.get(format!("{}/socket.io/?{query}", app.address)).send();
    let response = get("EIO=3&transport=polling&j=0".into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": 0, "message": "Transport unknown"}));
    let (client, _) = PollingV3::open(&app, "").await;
    // A length through the middle of an emoji, a missing length, v4's framing.
    for body in ["2:4👋", "42[\"x\"]", "42[\"x\"]\x1e2"] {
        let response = app.client.post(client.url()).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": 3, "message": "Bad request"}));
    }
    let response = get(format!("EIO=4&transport=polling&sid={}", client.sid)).await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": 3, "message": "Bad request"}));
}
backends!(socketio_v3_refusals, v3_refusals_are_socketio_2_errors);

#[actix_web::test]
async fn a_v3_client_that_stops_pinging_is_closed() {
    let mut settings = test_settings();
    settings.realtime.ping_interval_ms = 200;
    settings.realtime.ping_timeout_ms = 200;
    let app = crate::helpers::spawn_app_with(Backend::Memory, settings, None).await;

    // WebSocket: the server answers pings but never sends one, and closes after the silence.
    let websocket = async {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(app.ws_url("/socket.io/?EIO=3&transport=websocket")).await.unwrap();
        let open: Value = serde_json::from_str(next_frame(&mut socket).await.strip_prefix('0').unwrap()).unwrap();
        assert_eq!((open["pingInterval"].clone(), open["pingTimeout"].clone()), (json!(200), json!(200)));
        assert_eq!(next_frame(&mut socket).await, "40");
        socket.send(Message::text("2")).await.unwrap();
        assert_eq!(next_frame(&mut socket).await, "3");
        assert_eq!(next_frame(&mut socket).await, "closed Some((1001, \"no heartbeat\"))");
    };
    // Long-polling: polls are no sign of life; the session ends with a close packet.
    let polling = async {
        let (mut client, _) = PollingV3::open(&app, "").await;
        assert_eq!(client.next().await, "40");
        assert_eq!(client.next().await, "1");
        let response = app.client.get(client.url()).send().await.unwrap();
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"code": 1, "message": "Session ID unknown"}));
    };
    futures_util::join!(websocket, polling);
}
