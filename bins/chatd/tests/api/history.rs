//! History pages: newest page first, oldest first within a page, real totals, both paging names.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, backends, spawn_app, spawn_app_with, test_settings};
use crate::ws_client::take_position;

async fn pages_count_from_the_newest_message(backend: Backend) {
    let app = spawn_app(backend).await;
    for n in 1..=25 {
        let from = if n % 2 == 0 { 1 } else { 2 };
        let to = if from == 1 { "/api/user/2" } else { "/api/user/1" };
        app.send_text(from, to, &format!("m{n}")).await;
    }
    let expected = |range: std::ops::RangeInclusive<u32>| range.map(|n| format!("m{n}")).collect::<Vec<_>>();

    let first = app.get("/api/user/2", 1).await;
    assert_eq!(first.status, StatusCode::OK);
    let mut state = first.body["state"].clone();
    let position = take_position(&mut state).expect("the page's position");
    assert!(position.ends_with("-25"), "user 1's channel had 25 events: {position}");
    assert_eq!(
        state,
        json!({
            "key": "myplatform:dm:1-2", "page": 1, "per_page": 10, "total": 25, "total_pages": 3,
            "read": {"1": null, "2": null},
        })
    );
    assert_eq!(first.body["entry"], json!({"id": 2, "username": "user-2"}));
    assert_eq!(app.texts("/api/user/2", 1).await, expected(16..=25));
    assert_eq!(app.texts("/api/user/2?page=2", 1).await, expected(6..=15));
    assert_eq!(app.texts("/api/user/2?page=3", 1).await, expected(1..=5));
    assert_eq!(app.texts("/api/user/2?page=2&per_page=7", 1).await, expected(12..=18));
    assert_eq!(app.texts("/api/user/2?limit=4", 1).await, expected(22..=25));
    assert_eq!(app.texts("/api/user/1?per_page=3&limit=4", 2).await, expected(23..=25));

    let past_the_end = app.get("/api/user/2?page=4", 1).await;
    assert_eq!(past_the_end.status, StatusCode::OK);
    assert_eq!(past_the_end.body["messages"], json!([]));
    assert_eq!(past_the_end.body["state"]["total"], json!(25));
    let far_past = app.get("/api/user/2?page=4294967295&per_page=100", 1).await;
    assert_eq!(far_past.status, StatusCode::OK);
    assert_eq!(far_past.body["messages"], json!([]));

    // Authors are profiles in a history.
    assert_eq!(first.body["messages"][9]["author"], json!({"id": 2, "username": "user-2"}));
    assert_eq!(first.body["messages"][8]["author"], json!({"id": 1, "username": "user-1"}));
}
backends!(paging, pages_count_from_the_newest_message);

async fn an_empty_conversation_is_an_empty_page(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/api/user/77", "/api/topic/5", "/api/user/77?page=9"] {
        let answer = app.get(path, 1).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.body["messages"], json!([]));
        assert_eq!(answer.body["state"]["total"], json!(0));
        // One empty page, never 0 pages, as the original answered.
        assert_eq!(answer.body["state"]["total_pages"], json!(1));
    }
}
backends!(empty_history, an_empty_conversation_is_an_empty_page);

async fn page_sizes_are_clamped_and_bad_paging_is_refused(backend: Backend) {
    let mut settings = test_settings();
    settings.chat.max_per_page = 5;
    settings.chat.default_per_page = 3;
    let app = spawn_app_with(backend, settings, None).await;
    for n in 1..=8 {
        app.send_text(1, "/api/user/2", &format!("m{n}")).await;
    }
    let default = app.get("/api/user/2", 1).await;
    assert_eq!(default.body["state"]["per_page"], json!(3));
    let clamped = app.get("/api/user/2?per_page=1000", 1).await;
    assert_eq!(clamped.body["state"]["per_page"], json!(5));
    assert_eq!(clamped.body["state"]["total_pages"], json!(2));
    assert_eq!(clamped.body["messages"].as_array().unwrap().len(), 5);

    for query in [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1.5",
        "per_page=0",
        "per_page=-3",
        "limit=x",
        "page=99999999999",
        "page=",
        // A bad `limit` is refused even beside a good `per_page`, which wins (found by schemathesis).
        "per_page=5&limit=-1.5",
    ] {
        for path in ["/api/user/2", "/api/list"] {
            let answer = app.get(&format!("{path}?{query}"), 1).await;
            answer.assert_error(400, "INVALID_ARGUMENT");
        }
    }
}
backends!(paging_limits, page_sizes_are_clamped_and_bad_paging_is_refused);

async fn reading_needs_valid_targets(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/api/users/2", 1).await.assert_error(400, "MESSAGES_INVALID_TARGET");
    app.get("/api/user/0", 1).await.assert_error(400, "INVALID_ARGUMENT");
    app.get("/api/topic/x", 1).await.assert_error(400, "INVALID_ARGUMENT");
}
backends!(history_targets, reading_needs_valid_targets);
