//! Sending messages: the answer's shape, both participants seeing it, and every bad input refused
//! with a 4xx that changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, NULL, backends, spawn_app, spawn_app_with, test_settings, token};

async fn a_text_message_is_stored_and_answered_like_the_original(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.post("/api/user/524376", 388636, json!({"type": "text", "text": "Hello, world!"})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["state"], json!({"key": "myplatform:dm:388636-524376", "inbox_key": "user-524376"}));
    let entry = &answer.body["entry"];
    assert_eq!(entry["author"], json!(388636));
    assert_eq!(entry["type"], json!("text"));
    assert_eq!(entry["text"], json!("Hello, world!"));
    assert!(uuid::Uuid::parse_str(entry["id"].as_str().unwrap()).is_ok(), "{entry}");
    let epoch = entry["timestamp"]["epoch"].as_i64().unwrap();
    let iso = entry["timestamp"]["iso"].as_str().unwrap();
    assert_eq!(time_from_iso(iso), epoch, "iso and epoch name the same instant");
    // Both participants read it.
    assert_eq!(app.texts("/api/user/524376", 388636).await, ["Hello, world!"]);
    assert_eq!(app.texts("/api/user/388636", 524376).await, ["Hello, world!"]);
}
backends!(text_message, a_text_message_is_stored_and_answered_like_the_original);

fn time_from_iso(iso: &str) -> i64 {
    // 2026-11-25T13:29:54.837Z → epoch ms, via chat-domain's own parser.
    chat_domain::Timestamp::parse_iso(iso).unwrap().epoch_millis()
}

async fn image_messages_carry_any_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let image = json!({"url": "https://example.com/cat.png", "width": 640, "height": 480, "tags": ["cat"]});
    let answer = app.post("/api/user/2", 1, json!({"type": "image", "image": image})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["entry"]["image"], image);
    assert!(answer.body["entry"].get("text").is_none());
    let history = app.get("/api/user/1", 2).await;
    assert_eq!(history.body["messages"][0]["image"], image);
    assert_eq!(history.body["messages"][0]["type"], json!("image"));

    // Numbers come back exactly as sent, to the last digit (not the nearest shorter float).
    let exact = r#"{"type": "image", "image": {"ratio": 3.0666666666666663e55, "scale": 0.30000000000000004}}"#;
    let answer = app.request(Method::POST, "/api/user/2", Some(&token(1)), Some(exact.as_bytes().to_vec())).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let raw = app.client.get(format!("{}/api/user/1", app.address)).header("X-Auth-Token", token(2)).send().await;
    let raw = raw.unwrap().text().await.unwrap();
    assert!(
        raw.contains(r#""ratio":3.0666666666666663e+55"#) && raw.contains(r#""scale":0.30000000000000004"#),
        "{raw}"
    );
}
backends!(image_message, image_messages_carry_any_json);

async fn text_round_trips_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let texts = [
        "emoji 😢👍🏽",
        "\u{200F}שלום RTL mark",
        "NUL \u{0} inside",
        "  leading and trailing  ",
        "quotes \" and \\ backslash",
    ];
    for text in texts {
        app.send_text(1, "/api/user/2", text).await;
    }
    assert_eq!(app.texts("/api/user/2", 1).await, texts);
}
backends!(exact_text, text_round_trips_exactly);

async fn topic_messages_reach_everyone_in_the_topic(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.post("/api/topic/42", 1, json!({"type": "text", "text": "first"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["state"], json!({"key": "myplatform:topic:42", "inbox_key": "topic-42"}));
    app.send_text(2, "/api/topic/42", "second").await;
    let history = app.get("/api/topic/42", 3).await;
    assert_eq!(history.body["entry"], json!({"id": 42, "title": "topic-42"}));
    assert_eq!(history.body["messages"][0]["author"], json!({"id": 1, "username": "user-1"}));
    assert_eq!(history.body["messages"][1]["author"], json!({"id": 2, "username": "user-2"}));
}
backends!(topic_messages, topic_messages_reach_everyone_in_the_topic);

/// A bad send and the error it must get.
struct BadSend {
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: Option<&'static str>,
}

fn bad(path: &'static str, body: Value, status: u16, code: impl Into<Option<&'static str>>) -> BadSend {
    BadSend { path, body: body.to_string().into_bytes(), status, code: code.into() }
}

async fn bad_sends_are_refused_and_change_nothing(backend: Backend) {
    let mut settings = test_settings();
    settings.chat.max_text_chars = 10;
    let app = spawn_app_with(backend, settings, None).await;
    app.send_text(1, "/api/user/2", "before").await;
    let before = app.snapshot(&[1, 2]).await;

    let cases = [
        bad("/api/user/2", json!({"text": "no type"}), 400, "MESSAGES_INVALID_TYPE"),
        bad("/api/user/2", json!({"type": "video", "text": "x"}), 400, "MESSAGES_INVALID_TYPE"),
        bad("/api/user/2", json!({"type": 1, "text": "x"}), 400, "MESSAGES_INVALID_TYPE"),
        bad("/api/user/2", json!({"type": "text"}), 400, NULL),
        bad("/api/user/2", json!({"type": "text", "text": null}), 400, NULL),
        bad("/api/user/2", json!({"type": "text", "text": 42}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "text", "text": ["a"]}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "text", "text": {"a": 1}}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "text", "text": ""}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "text", "text": "   "}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "text", "text": "eleven char"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "image"}), 400, NULL),
        bad("/api/user/2", json!({"type": "image", "image": null}), 400, NULL),
        bad("/api/user/2", json!({"type": "image", "image": false}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "image", "image": 0}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "image", "image": ""}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "image", "image": {}}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!({"type": "image", "image": []}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2", json!(["type", "text"]), 400, "INVALID_ARGUMENT"),
        bad("/api/user/1", json!({"type": "text", "text": "me"}), 400, "INVALID_ARGUMENT"),
        bad("/api/group/2", json!({"type": "text", "text": "x"}), 400, "MESSAGES_INVALID_TARGET"),
        bad("/api/user/0", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/-2", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2.5", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/abc", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/99999999999999999999", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/user/2%3A3", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        bad("/api/topic/*", json!({"type": "text", "text": "x"}), 400, "INVALID_ARGUMENT"),
        BadSend { path: "/api/user/2", body: b"{\"type\": \"text\", ".to_vec(), status: 400, code: NULL },
        BadSend { path: "/api/user/2", body: b"not json".to_vec(), status: 400, code: NULL },
        BadSend { path: "/api/user/2", body: vec![b'"', 0xff, 0xfe, b'"'], status: 400, code: NULL },
        BadSend {
            path: "/api/user/2",
            body: br#"{"type": "text", "text": "lone \ud800 surrogate"}"#.to_vec(),
            status: 400,
            code: NULL,
        },
        BadSend {
            path: "/api/user/2",
            body: format!(r#"{{"type": "image", "image": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            status: 400,
            code: NULL,
        },
    ];
    for case in cases {
        let answer = app.request(Method::POST, case.path, Some(&token(1)), Some(case.body.clone())).await;
        assert_eq!(
            answer.status.as_u16(),
            case.status,
            "{} {:?}: {:#}",
            case.path,
            String::from_utf8_lossy(&case.body),
            answer.body
        );
        answer.assert_error(case.status, case.code);
    }
    assert_eq!(app.snapshot(&[1, 2]).await, before, "rejected sends changed nothing");
}
backends!(bad_sends, bad_sends_are_refused_and_change_nothing);

async fn bodies_over_one_megabyte_are_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.snapshot(&[1, 2]).await;
    let huge = json!({"type": "image", "image": "x".repeat(1024 * 1024)}).to_string().into_bytes();
    let answer = app.request(Method::POST, "/api/user/2", Some(&token(1)), Some(huge)).await;
    answer.assert_error(413, NULL);
    assert_eq!(answer.body["message"], json!("request entity too large"));
    // Just under the limit is fine.
    let fits = json!({"type": "image", "image": "x".repeat(1000 * 1000)}).to_string().into_bytes();
    let answer = app.request(Method::POST, "/api/user/2", Some(&token(1)), Some(fits)).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_ne!(app.snapshot(&[1, 2]).await, before);
}
backends!(body_limit, bodies_over_one_megabyte_are_413);

async fn heads_over_the_header_limit_are_431_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let send = |padding: usize| {
        app.client
            .post(format!("{}/api/user/2", app.address))
            .header("X-Auth-Token", token(1))
            .header("X-Padding", "p".repeat(padding))
            .json(&json!({"type": "text", "text": "padded"}))
            .send()
    };
    let before = app.snapshot(&[1, 2]).await;
    let refused = send(20 * 1024).await.expect("chatd answers");
    assert_eq!(refused.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(refused.headers().contains_key("x-request-id"));
    let body: Value = refused.json().await.expect("the error body");
    assert_eq!(body["code"], json!("HEADERS_TOO_LARGE"), "{body:#}");
    assert_eq!(body["message"], json!("The request line and headers are larger than 16384 bytes"));
    // Past the HTTP layer's own limit (128 KiB) it refuses the head itself: still 431.
    let far_over = send(200 * 1024).await.expect("chatd answers");
    assert_eq!(far_over.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(app.snapshot(&[1, 2]).await, before, "refused requests changed nothing");
    // A head just under the limit is served.
    assert_eq!(send(15 * 1024).await.expect("chatd answers").status(), StatusCode::CREATED);
}
backends!(header_limit, heads_over_the_header_limit_are_431_and_change_nothing);
