//! The inbox: one entry per chat, most recent first, each with its real latest message.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, backends, spawn_app};
use crate::ws_client::take_position;

async fn the_inbox_lists_chats_newest_first_with_their_latest_message(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(1, "/api/user/2", "to two, first").await;
    app.send_text(2, "/api/user/1", "two answers").await;
    app.send_text(1, "/api/user/2", "to two, third").await;
    app.send_text(3, "/api/user/1", "three says hi").await;
    app.send_text(1, "/api/topic/42", "in the topic").await;

    let inbox = app.get("/api/list", 1).await;
    assert_eq!(inbox.status, StatusCode::OK);
    let mut state = inbox.body["state"].clone();
    assert!(take_position(&mut state).is_some(), "the inbox's position");
    assert_eq!(
        state,
        json!({"key": "myplatform:inbox:1", "page": 1, "per_page": 10, "total": 3, "total_pages": 1, "unread_total": 2})
    );
    let entries = inbox.body["entries"].as_array().unwrap();
    assert_newest_first(entries);
    let entry = |kind: &str, id: u64| {
        entries
            .iter()
            .find(|e| e["type"] == json!(kind) && e["id"] == json!(id))
            .unwrap_or_else(|| panic!("{kind} {id}"))
    };
    let (topic, three, two) = (entry("topic", 42), entry("user", 3), entry("user", 2));
    // The original showed `latest: null` for chats with 3+ messages; chatd shows the real one.
    assert_eq!(two["latest"]["text"], json!("to two, third"));
    assert_eq!(two["latest"]["author"], json!(1));
    assert_eq!(two["user"], json!({"id": 2, "username": "user-2"}));
    assert_eq!(three["latest"]["text"], json!("three says hi"));
    assert_eq!(topic["latest"]["text"], json!("in the topic"));
    assert_eq!(topic["topic"], json!({"id": 42, "title": "topic-42"}));
    assert!(topic.get("user").is_none());
    assert_eq!(two["timestamp"], two["latest"]["timestamp"]);

    // The other side sees the DM; a topic shows only in the inbox of those who posted.
    let two = app.get("/api/list", 2).await;
    assert_eq!(two.body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(two.body["entries"][0]["latest"]["text"], json!("to two, third"));
    let four = app.get("/api/list", 4).await;
    assert_eq!(four.body["entries"], json!([]));
    assert_eq!(four.body["state"]["total"], json!(0));
    // An empty inbox is one empty page, as the original answered.
    assert_eq!(four.body["state"]["total_pages"], json!(1));
}
backends!(inbox_order, the_inbox_lists_chats_newest_first_with_their_latest_message);

/// Entries come newest first; chats updated in the same millisecond come in Redis's sorted-set
/// order (member text, descending), on both backends.
#[track_caller]
fn assert_newest_first(entries: &[serde_json::Value]) {
    let key = |e: &serde_json::Value| {
        (e["timestamp"]["epoch"].as_i64().unwrap(), format!("{}-{}", e["type"].as_str().unwrap(), e["id"]))
    };
    let keys: Vec<_> = entries.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
}

async fn the_inbox_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    for other in 2..=6 {
        app.send_text(1, &format!("/api/user/{other}"), &format!("to {other}")).await;
    }
    let ids = |body: &serde_json::Value| -> Vec<u64> {
        body["entries"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect()
    };
    let whole = app.get("/api/list", 1).await;
    assert_newest_first(whole.body["entries"].as_array().unwrap());
    let all = ids(&whole.body);
    let mut chats = all.clone();
    chats.sort();
    assert_eq!(chats, [2, 3, 4, 5, 6]);

    let first = app.get("/api/list?per_page=2", 1).await;
    assert_eq!(ids(&first.body), all[0..2]);
    assert_eq!(first.body["state"]["total_pages"], json!(3));
    assert_eq!(first.body["state"]["total"], json!(5));
    assert_eq!(ids(&app.get("/api/list?per_page=2&page=2", 1).await.body), all[2..4]);
    assert_eq!(ids(&app.get("/api/list?limit=2&page=3", 1).await.body), all[4..]);
    assert_eq!(ids(&app.get("/api/list?limit=2&page=4", 1).await.body), Vec::<u64>::new());
}
backends!(inbox_paging, the_inbox_pages);

async fn the_latest_message_stays_right_after_edits_and_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(1, "/api/user/2", "one").await;
    let two = app.send_text(2, "/api/user/1", "two").await;
    let three = app.send_text(1, "/api/user/2", "three").await;

    let edited =
        app.post(&format!("/api/user/2/{}", three["id"].as_str().unwrap()), 1, json!({"text": "three, edited"})).await;
    assert_eq!(edited.status, StatusCode::OK);
    let latest = |body: serde_json::Value| body["entries"][0]["latest"].clone();
    assert_eq!(latest(app.get("/api/list", 2).await.body)["text"], json!("three, edited"));

    let deleted = app.delete(&format!("/api/user/2/{}", three["id"].as_str().unwrap()), 1).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(latest(app.get("/api/list", 1).await.body)["id"], two["id"]);
    assert_eq!(latest(app.get("/api/list", 2).await.body)["text"], json!("two"));

    // Editing an older message leaves the latest alone.
    let one = app.get("/api/user/2", 1).await.body["messages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/user/2/{one}"), 1, json!({"text": "one, edited"})).await.status, StatusCode::OK);
    assert_eq!(latest(app.get("/api/list", 1).await.body)["text"], json!("two"));
    // Deleting everything leaves the chat in the inbox with no latest message.
    assert_eq!(app.delete(&format!("/api/user/2/{one}"), 1).await.status, StatusCode::OK);
    let two_id = two["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/user/1/{two_id}"), 2).await.status, StatusCode::OK);
    let inbox = app.get("/api/list", 1).await.body;
    assert_eq!(inbox["entries"][0]["latest"], json!(null));
    assert_eq!(inbox["state"]["total"], json!(1));
}
backends!(inbox_latest, the_latest_message_stays_right_after_edits_and_deletes);
