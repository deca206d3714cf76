//! Edits, read status and deletes, with their ownership rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, NULL, backends, spawn_app, token};

async fn the_author_edits_text_and_keeps_the_timestamp(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.send_text(388636, "/api/user/524376", "Hello, world!").await;
    let path = format!("/api/user/524376/{}", sent["id"].as_str().unwrap());
    let text = "Can't believe I started this chat with \"Hello, world!\" 😢";
    let edited = app.post(&path, 388636, json!({"text": text})).await;
    assert_eq!(edited.status, StatusCode::OK);
    assert_eq!(edited.body["state"], json!({"key": "myplatform:dm:388636-524376", "inbox_key": "user-524376"}));
    assert_eq!(edited.body["entry"]["text"], json!(text));
    assert_eq!(edited.body["entry"]["id"], sent["id"]);
    assert_eq!(edited.body["entry"]["timestamp"], sent["timestamp"]);
    assert_eq!(edited.body["entry"]["author"], json!(388636));
    assert_eq!(app.texts("/api/user/388636", 524376).await, [text]);
}
backends!(edit_text, the_author_edits_text_and_keeps_the_timestamp);

async fn only_the_author_edits_and_only_a_recipient_marks_seen(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.send_text(1, "/api/user/2", "mine").await;
    let id = sent["id"].as_str().unwrap();
    let before = app.snapshot(&[1, 2]).await;
    app.post(&format!("/api/user/1/{id}"), 2, json!({"text": "hijacked"})).await.assert_error(403, "FORBIDDEN");
    app.post(&format!("/api/user/2/{id}"), 1, json!({"status": "seen"})).await.assert_error(403, "FORBIDDEN");
    app.delete(&format!("/api/user/1/{id}"), 2).await.assert_error(403, "FORBIDDEN");
    assert_eq!(app.snapshot(&[1, 2]).await, before, "refused changes changed nothing");

    let seen = app.post(&format!("/api/user/1/{id}"), 2, json!({"status": "seen"})).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body["entry"]["status"], json!("seen"));
    assert_eq!(seen.body["entry"]["text"], json!("mine"));
    assert_eq!(seen.body["state"]["inbox_key"], json!("user-1"));
    let history = app.get("/api/user/2", 1).await;
    assert_eq!(history.body["messages"][0]["status"], json!("seen"));

    // In a topic anyone but the author may mark a message seen.
    let posted = app.send_text(1, "/api/topic/9", "topic post").await;
    let topic_path = format!("/api/topic/9/{}", posted["id"].as_str().unwrap());
    assert_eq!(app.post(&topic_path, 5, json!({"status": "seen"})).await.status, StatusCode::OK);
    app.post(&topic_path, 5, json!({"text": "not yours"})).await.assert_error(403, "FORBIDDEN");
}
backends!(ownership, only_the_author_edits_and_only_a_recipient_marks_seen);

async fn image_messages_are_edited_by_image(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.post("/api/user/2", 1, json!({"type": "image", "image": {"url": "a.png"}})).await;
    let path = format!("/api/user/2/{}", sent.body["entry"]["id"].as_str().unwrap());
    app.post(&path, 1, json!({"text": "text does not fit an image"})).await.assert_error(400, NULL);
    let edited = app.post(&path, 1, json!({"image": {"url": "b.png"}})).await;
    assert_eq!(edited.status, StatusCode::OK);
    assert_eq!(edited.body["entry"]["image"], json!({"url": "b.png"}));
}
backends!(edit_image, image_messages_are_edited_by_image);

async fn bad_edits_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.send_text(1, "/api/user/2", "original").await;
    let id = sent["id"].as_str().unwrap();
    let path = format!("/api/user/2/{id}");
    let before = app.snapshot(&[1, 2]).await;

    let nothing = app.post(&path, 1, json!({})).await;
    nothing.assert_error(400, NULL);
    assert_eq!(nothing.body["message"], json!("No valid data was supplied"));
    app.post(&path, 1, json!({"image": {"url": "x"}})).await.assert_error(400, NULL);
    app.post(&path, 1, json!({"text": 42})).await.assert_error(400, "INVALID_ARGUMENT");
    app.post(&path, 1, json!({"text": ""})).await.assert_error(400, "INVALID_ARGUMENT");
    app.post(&path, 1, json!({"status": "unseen"})).await.assert_error(400, "INVALID_ARGUMENT");
    let empty = app.request(Method::POST, &path, Some(&token(1)), Some(Vec::new())).await;
    empty.assert_error(400, NULL);
    let broken = app.request(Method::POST, &path, Some(&token(1)), Some(b"{".to_vec())).await;
    broken.assert_error(400, NULL);
    assert_eq!(broken.body["name"], json!("SyntaxError"));

    let unknown = app.post("/api/user/2/7d3f1c1e-0000-4000-8000-000000000000", 1, json!({"text": "x"})).await;
    unknown.assert_error(404, "NOT_FOUND");
    assert_eq!(unknown.body["message"], json!("Message not found"));
    app.post("/api/user/2/not-a-uuid", 1, json!({"text": "x"})).await.assert_error(404, "NOT_FOUND");
    app.delete("/api/user/2/not-a-uuid", 1).await.assert_error(404, "NOT_FOUND");
    // The right id in another conversation is not found either.
    app.post(&format!("/api/user/3/{id}"), 1, json!({"text": "x"})).await.assert_error(404, "NOT_FOUND");
    app.post(&format!("/api/usr/2/{id}"), 1, json!({"text": "x"})).await.assert_error(400, "MESSAGES_INVALID_TARGET");
    assert_eq!(app.snapshot(&[1, 2]).await, before, "rejected edits changed nothing");
}
backends!(bad_edits, bad_edits_are_refused_and_change_nothing);

async fn the_author_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    let keep = app.send_text(1, "/api/user/2", "keep").await;
    let drop = app.send_text(1, "/api/user/2", "drop").await;
    let path = format!("/api/user/2/{}", drop["id"].as_str().unwrap());
    let deleted = app.delete(&path, 1).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        deleted.body,
        json!({
            "state": {"key": "myplatform:dm:1-2", "inbox_key": "user-2"},
            "message": "Message deleted",
            "success": true,
        })
    );
    let history = app.get("/api/user/2", 1).await;
    assert_eq!(history.body["state"]["total"], json!(1));
    assert_eq!(history.body["messages"][0]["id"], keep["id"]);
    app.delete(&path, 1).await.assert_error(404, "NOT_FOUND");
}
backends!(delete, the_author_deletes);

async fn concurrent_edits_and_seen_marks_are_all_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.send_text(1, "/api/user/2", "v0").await;
    let id = sent["id"].as_str().unwrap().to_owned();
    let edits = (1..=10).map(|n| {
        let (app, id) = (&app, &id);
        async move { app.post(&format!("/api/user/2/{id}"), 1, json!({"text": format!("v{n}")})).await }
    });
    let seen = async { app.post(&format!("/api/user/1/{id}"), 2, json!({"status": "seen"})).await };
    let (edited, seen) = futures_util::join!(futures_util::future::join_all(edits), seen);
    assert!(edited.iter().all(|answer| answer.status == StatusCode::OK), "{edited:?}");
    assert_eq!(seen.status, StatusCode::OK);
    // Whatever the interleaving, no write was lost: the read status survives every edit, and the
    // stored text is one of the edits.
    let history = app.get("/api/user/2", 1).await;
    let message = &history.body["messages"][0];
    assert_eq!(message["status"], json!("seen"), "{message}");
    let text = message["text"].as_str().unwrap();
    assert!((1..=10).any(|n| text == format!("v{n}")), "{text}");
    assert_eq!(history.body["state"]["total"], json!(1));
}
backends!(concurrent_edits, concurrent_edits_and_seen_marks_are_all_kept);
