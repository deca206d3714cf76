//! Door 1, `/ws`: authentication, every event to every kind of recipient, topics, typing, errors,
//! slow consumers and shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use chatd::settings::Settings;

use crate::helpers::{
    Backend, TestApp, backends, spawn_app, spawn_app_with, spawn_second_instance, test_settings, token, token_for,
};
use crate::ws_client::{Incoming, WsClient};

async fn every_way_to_authenticate_works(backend: Backend) {
    let app = spawn_app(backend).await;
    WsClient::authenticated(&app, 7).await;

    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request.headers_mut().insert("X-Auth-Token", token(7).parse().unwrap());
    let mut by_header = WsClient::connect(request).await;
    assert_eq!(by_header.expect("authenticated").await, json!({"user": 7}));

    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {}", token(7)).parse().unwrap());
    let mut by_bearer = WsClient::connect(request).await;
    assert_eq!(by_bearer.expect("authenticated").await, json!({"user": 7}));

    let mut by_event = WsClient::connect(app.ws_url("/ws")).await;
    by_event.send("subscribe", json!({"topic": 1})).await;
    assert_eq!(by_event.expect("error").await, json!({"code": "authenticate_first", "message": "authenticate first"}));
    by_event.send("authenticate", json!({"token": token(7)})).await;
    assert_eq!(by_event.expect("authenticated").await, json!({"user": 7}));
}
backends!(ws_authentication, every_way_to_authenticate_works);

fn assert_unauthorized(data: &Value) {
    let message = data["message"].as_str().expect("a message");
    assert_eq!(
        data,
        &json!({"message": message, "data": {"message": message, "code": "invalid_token", "type": "UnauthorizedError"}})
    );
}

async fn bad_and_missing_tokens_are_refused(backend: Backend) {
    let mut settings = test_settings();
    settings.realtime.auth_timeout_ms = 300;
    let app = spawn_app_with(backend, settings, None).await;
    // The original's words (socketio-jwt passing on Node's jsonwebtoken's).
    let expired = token_for(json!({"user_id": 1, "exp": 1_000_000_000}));
    let anonymous = token_for(json!({"sub": "1"}));
    for (url, message) in [
        (format!("/ws?token={expired}"), "jwt expired"),
        ("/ws?token=garbage".to_owned(), "jwt malformed"),
        (format!("/ws?token={anonymous}"), "Incorrect token - please try a different one"),
    ] {
        let mut client = WsClient::connect(app.ws_url(&url)).await;
        let data = client.expect("unauthorized").await;
        assert_unauthorized(&data);
        assert_eq!(data["message"], json!(message), "{url}");
        assert_eq!(client.next().await, Incoming::Closed(Some((1008, "unauthorized".into()))));
    }
    for (data, message) in
        [(json!({"token": "nope"}), "jwt malformed"), (json!({"token": 42}), "invalid token datatype")]
    {
        let mut bad_event = WsClient::connect(app.ws_url("/ws")).await;
        bad_event.send("authenticate", data).await;
        let refused = bad_event.expect("unauthorized").await;
        assert_unauthorized(&refused);
        assert_eq!(refused["message"], json!(message));
        assert_eq!(bad_event.next().await, Incoming::Closed(Some((1008, "unauthorized".into()))));
    }

    let mut silent = WsClient::connect(app.ws_url("/ws")).await;
    let data = silent.expect("unauthorized").await;
    assert_unauthorized(&data);
    assert_eq!(data["message"], json!("authentication timed out"));
    assert_eq!(silent.next().await, Incoming::Closed(Some((1008, "unauthorized".into()))));
}
backends!(ws_refusals, bad_and_missing_tokens_are_refused);

async fn dm_events_reach_both_participants_on_every_device(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut recipient = WsClient::authenticated(&app, 2).await;
    let mut other_device = WsClient::authenticated(&app, 1).await;
    let mut bystander = WsClient::authenticated(&app, 3).await;

    let sent = app.send_text(1, "/api/user/2", "hello").await;
    let mut expected = sent.clone();
    expected["chat"] = json!({"type": "user", "id": 1});
    assert_eq!(recipient.expect("new-message").await, expected);
    expected["chat"] = json!({"type": "user", "id": 2});
    assert_eq!(other_device.expect("new-message").await, expected);

    let id = sent["id"].as_str().unwrap();
    let edited = app.post(&format!("/api/user/2/{id}"), 1, json!({"text": "hello, edited"})).await;
    assert_eq!(edited.status, StatusCode::OK);
    let update = recipient.expect("message-updated").await;
    assert_eq!(update["text"], json!("hello, edited"));
    assert_eq!(update["chat"], json!({"type": "user", "id": 1}));
    assert_eq!(other_device.expect("message-updated").await["text"], json!("hello, edited"));

    let seen = app.post(&format!("/api/user/1/{id}"), 2, json!({"status": "seen"})).await;
    assert_eq!(seen.status, StatusCode::OK);
    let seen_event = recipient.expect("message-seen").await;
    assert_eq!((&seen_event["status"], &seen_event["text"]), (&json!("seen"), &json!("hello, edited")));
    assert_eq!(other_device.expect("message-seen").await["status"], json!("seen"));
    // Marking seen moved user 2's read position: their devices hear it, and user 1 the receipt.
    let read = json!({"chat": {"type": "user", "id": 1}, "user": 2, "message": id, "unread": 0});
    assert_eq!(recipient.expect("read").await, read);
    let receipt = json!({"chat": {"type": "user", "id": 2}, "user": 2, "message": id});
    assert_eq!(other_device.expect("read").await, receipt);

    assert_eq!(app.delete(&format!("/api/user/2/{id}"), 1).await.status, StatusCode::OK);
    assert_eq!(recipient.expect("message-deleted").await, json!({"id": id, "chat": {"type": "user", "id": 1}}));
    assert_eq!(other_device.expect("message-deleted").await, json!({"id": id, "chat": {"type": "user", "id": 2}}));

    // The bystander heard none of it: the next thing it hears is its own DM.
    app.send_text(2, "/api/user/3", "now you").await;
    assert_eq!(bystander.expect("new-message").await["text"], json!("now you"));
}
backends!(ws_dm_events, dm_events_reach_both_participants_on_every_device);

async fn topics_typing_and_client_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut reader = WsClient::authenticated(&app, 5).await;
    let mut writer = WsClient::authenticated(&app, 6).await;
    reader.subscribe(42).await;
    writer.subscribe(42).await;

    app.send_text(6, "/api/topic/42", "topic post").await;
    let event = reader.expect("new-message").await;
    assert_eq!(
        (event["text"].clone(), event["chat"].clone()),
        (json!("topic post"), json!({"type": "topic", "id": 42}))
    );

    writer.send("typing", json!({"chat": {"type": "user", "id": 5}})).await;
    assert_eq!(reader.expect("typing").await, json!({"chat": {"type": "user", "id": 6}, "user": 6}));
    writer.send("typing", json!({"chat": {"type": "topic", "id": 42}})).await;
    assert_eq!(reader.expect("typing").await, json!({"chat": {"type": "topic", "id": 42}, "user": 6}));
    // The writer heard its own topic post, but not its own typing: next comes a DM.
    assert_eq!(writer.expect("new-message").await["text"], json!("topic post"));
    app.send_text(7, "/api/user/6", "after typing").await;
    assert_eq!(writer.expect("new-message").await["text"], json!("after typing"));

    // Every refusal has a stable code beside its message.
    for (frame, code, message) in [
        (json!({"event": "dance", "data": {}}).to_string(), "unknown_event", "unknown event \"dance\""),
        (
            json!({"event": "subscribe", "data": {"topic": "x"}}).to_string(),
            "invalid_payload",
            "expected {\"topic\": <positive integer>}",
        ),
        (json!({"event": "typing", "data": {"chat": {"type": "room", "id": 1}}}).to_string(), "invalid_payload", ""),
        (
            json!({"event": "authenticate", "data": {"token": token(5)}}).to_string(),
            "already_authenticated",
            "already authenticated",
        ),
        ("not json".to_owned(), "invalid_frame", ""),
        (json!({"data": {}}).to_string(), "invalid_frame", "missing event name"),
    ] {
        reader.send_raw(frame).await;
        let error = reader.expect("error").await;
        assert_eq!(error["code"], json!(code), "{error}");
        if !message.is_empty() {
            assert_eq!(error, json!({"code": code, "message": message}));
        }
    }
    reader.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        reader.expect("error").await,
        json!({"code": "binary_unsupported", "message": "binary frames are not supported"})
    );

    reader.send("unsubscribe", json!({"topic": 42})).await;
    assert_eq!(reader.expect("unsubscribed").await, json!({"topic": 42}));
    app.send_text(6, "/api/topic/42", "unheard").await;
    app.send_text(6, "/api/user/5", "heard").await;
    assert_eq!(reader.expect("new-message").await["text"], json!("heard"));
}
backends!(ws_topics_and_typing, topics_typing_and_client_errors);

#[actix_web::test]
async fn events_cross_instances_through_redis() {
    let first = spawn_app(Backend::Redis).await;
    let second = spawn_second_instance(&first, test_settings()).await;
    let mut on_first = WsClient::authenticated(&first, 1).await;
    let mut on_second = WsClient::authenticated(&second, 2).await;
    let mut topic_on_second = WsClient::authenticated(&second, 3).await;
    topic_on_second.subscribe(9).await;

    // Sent through the first instance, heard on the second, and on the sender's own device.
    app_send(&first, 1, "/api/user/2", "across").await;
    assert_eq!(on_second.expect("new-message").await["text"], json!("across"));
    assert_eq!(on_first.expect("new-message").await["text"], json!("across"));
    app_send(&first, 1, "/api/topic/9", "topic across").await;
    assert_eq!(topic_on_second.expect("new-message").await["text"], json!("topic across"));

    // Events of one chat arrive in the order they happened.
    for n in 0..20 {
        let instance = if n % 2 == 0 { &first } else { &second };
        app_send(instance, 1, "/api/user/2", &format!("m{n}")).await;
    }
    for n in 0..20 {
        assert_eq!(on_second.expect("new-message").await["text"], json!(format!("m{n}")));
    }
}

async fn app_send(app: &crate::helpers::TestApp, from: u64, path: &str, text: &str) {
    app.send_text(from, path, text).await;
}

async fn a_slow_consumer_is_dropped_without_stalling_others(backend: Backend) {
    a_slow_consumer_is_dropped_from(spawn_app_with(backend, slow_consumer_settings(), None).await).await;
}
backends!(ws_slow_consumer, a_slow_consumer_is_dropped_without_stalling_others);

/// Settings under which a client that stops reading overflows its queue soon.
pub(crate) fn slow_consumer_settings() -> Settings {
    let mut settings = test_settings();
    settings.realtime.queue_capacity = 4;
    settings.chat.max_text_chars = 60_000;
    settings
}

/// A client that stops reading is closed as too slow (and resumes), while others go on (`app` runs
/// with [`slow_consumer_settings`]).
pub(crate) async fn a_slow_consumer_is_dropped_from(app: TestApp) {
    app.send_text(1, "/api/user/2", "we share a DM").await;
    // User 2 reads nothing while events are sent its way; user 1 hears the same events (its own
    // sends) on another connection, and user 2's presence.
    let mut slow = WsClient::connect_small(app.ws_url(&format!("/ws?token={}", token(2)))).await;
    assert_eq!(slow.expect("authenticated").await, json!({"user": 2}));
    let mut fast = WsClient::authenticated(&app, 1).await;
    assert_eq!(fast.expect("presence").await, json!({"user": 2, "status": "active"}));
    let text = "x".repeat(50_000);
    let mut dropped = false;
    let mut sent = 0;
    // Until chatd drops user 2's connection (its queue overflowed): user 1 hears user 2 leave.
    while !dropped {
        assert!(sent < 200, "200 events of 50 kB did not overflow the slow client's queue");
        app.send_text(1, "/api/user/2", &format!("{sent} {text}")).await;
        loop {
            match fast.next().await {
                Incoming::Event(name, data) if name == "new-message" => {
                    assert!(data["text"].as_str().unwrap().starts_with(&format!("{sent} ")), "in order");
                    break;
                }
                Incoming::Event(name, data) if name == "presence" => {
                    assert_eq!(data, json!({"user": 2, "status": "inactive"}));
                    dropped = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        sent += 1;
    }
    // The slow client, reading again within the close timeout, finds what it was sent before its
    // queue overflowed (after user 1's arrival), then the close.
    assert_eq!(slow.expect("presence").await, json!({"user": 1, "status": "active"}));
    let mut received = 0;
    let close = loop {
        match slow.next().await {
            Incoming::Event(name, _) => {
                assert_eq!(name, "new-message");
                received += 1;
            }
            closed @ Incoming::Closed(_) => break closed,
        }
    };
    assert!(received < sent, "the slow client was cut off ({received} of {sent} events)");
    assert_eq!(close, Incoming::Closed(Some((1008, "too slow: send queue full".into()))));

    // It resumes from the last event it read, and gets exactly the rest.
    let since = slow.position.clone().expect("the position of what it read last");
    let (mut resumed, authenticated) = WsClient::resumed(&app, 2, &since).await;
    assert_eq!(authenticated["recovered"], json!(true), "{authenticated}");
    assert_eq!(authenticated["missed"], json!(sent - received));
    for n in received..sent {
        let event = resumed.expect("new-message").await;
        assert!(event["text"].as_str().unwrap().starts_with(&format!("{n} ")), "message {n} comes next");
    }
}

async fn shutdown_closes_connections_with_going_away(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    app.shut_down();
    assert_eq!(client.next().await, Incoming::Closed(Some((1001, "server shutting down".into()))));
}
backends!(ws_shutdown, shutdown_closes_connections_with_going_away);

/// RFC 6455: once the close handshake is done, the server closes the TCP connection, and a
/// client waits for that. chatd does so at once, not after actix-http's linger (a second). Its
/// close frame echoes the client's (empty here).
async fn a_client_close_ends_the_connection_at_once(backend: Backend) {
    a_client_close_ends_the_connection_of(spawn_app(backend).await).await;
}
backends!(ws_client_close, a_client_close_ends_the_connection_at_once);

pub(crate) async fn a_client_close_ends_the_connection_of(app: TestApp) {
    let client = WsClient::authenticated(&app, 1).await;
    let (answer, took) = client.close_handshake().await;
    assert_eq!(answer, None, "an empty close frame answers the client's");
    assert!(took < Duration::from_millis(300), "the connection ended {took:?} after the client's close");
}

async fn oversized_frames_close_with_1009(backend: Backend) {
    let mut settings = test_settings();
    settings.realtime.max_message_bytes = 1024;
    let app = spawn_app_with(backend, settings, None).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    client.send("typing", json!({"padding": "x".repeat(2048)})).await;
    assert_eq!(client.next().await, Incoming::Closed(Some((1009, "message too large".into()))));
}
backends!(ws_frame_limit, oversized_frames_close_with_1009);

#[actix_web::test]
async fn an_instance_subscribes_to_exactly_the_channels_its_connections_need() {
    let app = spawn_app(Backend::Redis).await;
    let channels = || async {
        let mut redis = crate::redis_server::RedisServer::shared().connection().await;
        let mut names: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(format!("{}:events:*", app.prefix))
            .query_async(&mut redis)
            .await
            .unwrap();
        names.sort();
        names
    };
    let base = format!("{}:events:myplatform", app.prefix);
    let mut first = WsClient::authenticated(&app, 5).await;
    let second = WsClient::authenticated(&app, 5).await;
    first.subscribe(6).await;
    assert_eq!(channels().await, [format!("{base}:topic:6"), format!("{base}:user:5")]);
    first.close().await;
    assert_eq!(channels().await, [format!("{base}:user:5")], "user 5 still has a connection");
    second.close().await;
    assert!(channels().await.is_empty());
}

/// chatd's own server takes each WebSocket over from actix-http once the upgrade is answered: a
/// connection holds chatd's socket and nothing else (actix-http's path keeps a duplicate
/// descriptor to end it, see `embedded.rs`).
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn a_websocket_holds_one_file_descriptor_in_chatd() {
    let app = spawn_app(Backend::Memory).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    // The first connection may set up what every later one shares.
    let _first = WsClient::authenticated(&app, 1).await;
    let before = descriptors_on_port(port);
    let mut clients = Vec::new();
    for user in 2..12 {
        clients.push(WsClient::authenticated(&app, user).await);
    }
    assert_eq!(descriptors_on_port(port) - before, clients.len());
}

/// How many of this process's file descriptors are open on a TCP socket whose local port is
/// `port` (chatd's ends of its connections, and its listener): other tests of the process use
/// other ports.
#[cfg(target_os = "linux")]
pub(crate) fn descriptors_on_port(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    let sockets: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields[1].ends_with(&local).then(|| format!("socket:[{}]", fields[9]))
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| sockets.contains(target.to_string_lossy().as_ref()))
        .count()
}

/// An upgrade request that no door takes gets the answer any request would, and the connection
/// ends after it.
#[actix_web::test]
async fn an_upgrade_to_no_door_gets_the_json_404() {
    let app = spawn_app(Backend::Memory).await;
    let error = tokio_tungstenite::connect_async(app.ws_url("/nowhere")).await.expect_err("no WebSocket there");
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else { panic!("an HTTP answer: {error:?}") };
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = serde_json::from_slice(response.body().as_deref().expect("a body")).unwrap();
    assert_eq!((body["code"].clone(), body["status"].clone()), (json!("NOT_FOUND"), json!(404)));
}

/// A client may send its first frames right behind its upgrade request, before the `101` comes
/// back: chatd's server hands what actix-http had already read to the WebSocket, and nothing is
/// lost.
#[actix_web::test]
async fn frames_sent_right_behind_the_upgrade_request_are_read() {
    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketContext};
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

    let app = spawn_app(Backend::Memory).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut request = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token(1)
    )
    .into_bytes();
    // Two masked client frames, in the same write as the request.
    let mut frames = std::io::Cursor::new(Vec::new());
    let mut context = WebSocketContext::new(Role::Client, None);
    for topic in [1, 2] {
        let frame = json!({"event": "subscribe", "data": {"topic": topic}}).to_string();
        context.write(&mut frames, Message::Text(Utf8Bytes::from(frame))).unwrap();
    }
    context.flush(&mut frames).unwrap();
    request.extend(frames.into_inner());
    let mut tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    tcp.write_all(&request).await.unwrap();

    // The 101, then whatever came with it.
    let mut received = Vec::new();
    let head_end = loop {
        let mut chunk = [0_u8; 1024];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection ended before the upgrade was answered");
        received.extend_from_slice(&chunk[..n]);
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    assert!(received.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&received[..head_end]));
    let rest = received.split_off(head_end);
    let mut socket = tokio_tungstenite::WebSocketStream::from_partially_read(tcp, rest, Role::Client, None).await;
    let mut events = Vec::new();
    while events.len() < 3 {
        let message = tokio::time::timeout(crate::ws_client::PATIENCE, socket.next()).await.unwrap();
        if let Some(Ok(Message::Text(text))) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            events.push((frame["event"].as_str().unwrap().to_owned(), frame["data"]["topic"].clone()));
        }
    }
    assert_eq!(
        events,
        [
            ("authenticated".to_owned(), Value::Null),
            ("subscribed".to_owned(), json!(1)),
            ("subscribed".to_owned(), json!(2))
        ]
    );
}
