//! History by cursor: `before=<id>` / `after=<id>` pages hold the nearest messages that way, oldest
//! first, with `state.more`, and stay exact while messages are sent and deleted.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backends, spawn_app};

/// The texts of a cursor page and its `state.more`.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, bool) {
    let answer = app.get(&format!("/api/user/1?{query}"), 2).await;
    answer.assert_status(200);
    let texts = answer.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["text"].as_str().expect("text").to_owned())
        .collect();
    let state = &answer.body["state"];
    assert!(state.get("page").is_none() && state.get("total_pages").is_none(), "{state}");
    (texts, state["more"].as_bool().expect("state.more"))
}

fn texts(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

async fn cursor_pages_stay_exact_while_messages_come_and_go(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids: Vec<String> = Vec::new();
    for n in 1..=10 {
        let sent = app.send_text(1, "/api/user/2", &format!("m{n}")).await;
        ids.push(sent["id"].as_str().expect("an id").to_owned());
    }
    let id = |n: usize| ids[n - 1].clone();
    assert_eq!(page(&app, &format!("before={}&per_page=3", id(6))).await, (texts(&["m3", "m4", "m5"]), true));
    assert_eq!(page(&app, &format!("before={}&limit=3", id(3))).await, (texts(&["m1", "m2"]), false));
    assert_eq!(page(&app, &format!("after={}&per_page=3", id(5))).await, (texts(&["m6", "m7", "m8"]), true));
    assert_eq!(page(&app, &format!("after={}&per_page=2", id(8))).await, (texts(&["m9", "m10"]), false));

    // New messages and a delete shift page numbers, but not cursors.
    for n in 1..=3 {
        app.send_text(2, "/api/user/1", &format!("n{n}")).await;
    }
    app.delete(&format!("/api/user/2/{}", id(4)), 1).await.assert_status(200);
    assert_eq!(page(&app, &format!("before={}&per_page=3", id(6))).await, (texts(&["m2", "m3", "m5"]), true));
    assert_eq!(
        page(&app, &format!("after={}&per_page=10", id(8))).await,
        (texts(&["m9", "m10", "n1", "n2", "n3"]), false)
    );
    // The default size is the page form's.
    assert_eq!(page(&app, &format!("before={}", id(10))).await.0.len(), 8);
}
backends!(cursor_pages, cursor_pages_stay_exact_while_messages_come_and_go);

async fn bad_cursors_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = app.send_text(1, "/api/user/2", "only").await;
    let other = app.send_text(1, "/api/user/3", "elsewhere").await;
    let id = |message: &Value| message["id"].as_str().expect("an id").to_owned();
    let cases = [
        (format!("before={}", id(&other)), "The cursor names no message of this chat"),
        ("after=00000000-0000-4000-8000-000000000000".to_owned(), "The cursor names no message of this chat"),
        ("before=nope".to_owned(), "before must be a message id"),
        (format!("before={0}&after={0}", id(&sent)), "give either before or after, not both"),
        (format!("page=1&after={}", id(&sent)), "page cannot be combined with before or after"),
        (format!("after={}&per_page=0", id(&sent)), "per_page must be a positive integer"),
    ];
    for (query, message) in cases {
        let answer = app.get(&format!("/api/user/1?{query}"), 2).await;
        answer.assert_error(400, "INVALID_ARGUMENT");
        assert_eq!(answer.body["message"], json!(message), "{query}");
    }
    // In a chat with no messages any cursor is unknown.
    app.get(&format!("/api/user/9?before={}", id(&sent)), 2).await.assert_error(400, "INVALID_ARGUMENT");
}
backends!(bad_cursors, bad_cursors_are_refused);
