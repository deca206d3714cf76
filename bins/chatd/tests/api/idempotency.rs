//! Idempotent sends: `Idempotency-Key` makes a retried send answer the first answer, store nothing
//! and publish nothing; a reused key with another message is 422; concurrent retries make one
//! message.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backends, spawn_app, token};
use crate::ws_client::WsClient;

/// A send from `from` to `path` with these `Idempotency-Key` values: status, headers, body.
async fn send_with_keys(app: &TestApp, from: u64, path: &str, keys: &[&str], body: &Value) -> (u16, HeaderMap, Value) {
    let mut request = app.client.post(format!("{}{path}", app.address)).header("X-Auth-Token", token(from));
    for key in keys {
        request = request.header("Idempotency-Key", *key);
    }
    let answer = request.json(body).send().await.expect("the send is answered");
    let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
    (status, headers, answer.json().await.expect("a JSON body"))
}

fn replayed(headers: &HeaderMap) -> bool {
    headers.get("idempotent-replayed").is_some_and(|value| value == "true")
}

async fn a_retried_send_answers_the_first_answer_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut listener = WsClient::authenticated(&app, 2).await;
    let hello = json!({"type": "text", "text": "hello"});
    let (status, headers, first) = send_with_keys(&app, 1, "/api/user/2", &["send-1"], &hello).await;
    assert_eq!((status, replayed(&headers)), (201, false));
    let (status, headers, again) = send_with_keys(&app, 1, "/api/user/2", &["send-1"], &hello).await;
    assert_eq!((status, replayed(&headers)), (201, true));
    assert_eq!(again, first, "exactly the first answer");
    assert_eq!(app.texts("/api/user/2", 1).await, ["hello"]);
    // Published once: the next event is the next send.
    assert_eq!(listener.expect("new-message").await["id"], first["entry"]["id"]);
    app.send_text(1, "/api/user/2", "next").await;
    assert_eq!(listener.expect("new-message").await["text"], "next");

    // The key is the caller's own: another user's identical key is another send.
    let (status, headers, other) = send_with_keys(&app, 3, "/api/user/2", &["send-1"], &hello).await;
    assert_eq!((status, replayed(&headers)), (201, false));
    assert_ne!(other["entry"]["id"], first["entry"]["id"]);
    // Without a key, nothing changes: two sends, two messages.
    app.send_text(1, "/api/user/2", "next").await;
    assert_eq!(app.texts("/api/user/2", 1).await, ["hello", "next", "next"]);
}
backends!(idempotent_retry, a_retried_send_answers_the_first_answer_and_stores_nothing);

async fn a_reused_key_or_a_bad_one_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let hello = json!({"type": "text", "text": "hello"});
    send_with_keys(&app, 1, "/api/user/2", &["k"], &hello).await;
    let refusals: [(&str, &[&str], Value, u16, &str); 7] = [
        ("/api/user/2", &["k"], json!({"type": "text", "text": "something else"}), 422, "IDEMPOTENCY_KEY_REUSED"),
        ("/api/user/3", &["k"], hello.clone(), 422, "IDEMPOTENCY_KEY_REUSED"),
        ("/api/topic/7", &["k"], hello.clone(), 422, "IDEMPOTENCY_KEY_REUSED"),
        ("/api/user/2", &[""], hello.clone(), 400, "INVALID_ARGUMENT"),
        ("/api/user/2", &["with space"], hello.clone(), 400, "INVALID_ARGUMENT"),
        ("/api/user/2", &["a", "b"], hello.clone(), 400, "INVALID_ARGUMENT"),
        ("/api/user/2", &[&"k".repeat(256)], hello.clone(), 400, "INVALID_ARGUMENT"),
    ];
    for (path, keys, body, status, code) in refusals {
        let (got, _, answer) = send_with_keys(&app, 1, path, keys, &body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{path} {keys:?}: {answer}");
        assert_eq!(answer["error"], true, "{answer}");
        assert_eq!(answer["status"], status);
    }
    assert_eq!(app.texts("/api/user/2?per_page=100", 1).await, ["hello"], "a refused send stores nothing");
    assert_eq!(app.texts("/api/user/3", 1).await, Vec::<String>::new());
    assert_eq!(app.texts("/api/topic/7", 1).await, Vec::<String>::new());
    let (status, ..) = send_with_keys(&app, 1, "/api/user/2", &[&"k".repeat(255)], &hello).await;
    assert_eq!(status, 201, "255 visible characters are a key");
}
backends!(idempotent_refusals, a_reused_key_or_a_bad_one_is_refused_and_changes_nothing);

async fn concurrent_retries_of_one_key_make_one_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"type": "text", "text": "once"});
    let retries = (0..20).map(|_| send_with_keys(&app, 1, "/api/topic/9", &["retry-me"], &body));
    let answers = futures_util::future::join_all(retries).await;
    assert!(answers.iter().all(|(status, ..)| *status == 201), "{answers:?}");
    let first = &answers[0].2;
    assert!(answers.iter().all(|(_, _, answer)| answer == first), "20 identical answers");
    assert_eq!(answers.iter().filter(|(_, headers, _)| !replayed(headers)).count(), 1, "one stored it");
    assert_eq!(app.texts("/api/topic/9", 1).await, ["once"]);
}
backends!(idempotent_concurrency, concurrent_retries_of_one_key_make_one_message);
