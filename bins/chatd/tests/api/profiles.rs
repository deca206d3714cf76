//! Profiles from the platform API: batched, de-duplicated, cached, and degraded — never an error —
//! when the platform fails.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, backends, spawn_app_with, test_settings};
use crate::platform::{StandInPlatform, topic_profile, user_profile};

async fn profiles_come_batched_and_cached_from_the_platform(backend: Backend) {
    let platform = StandInPlatform::start();
    let app = spawn_app_with(backend, test_settings(), Some(&platform)).await;
    for (from, text) in [(1, "a"), (2, "b"), (1, "c"), (2, "d")] {
        let to = if from == 1 { "/api/user/2" } else { "/api/user/1" };
        app.send_text(from, to, text).await;
    }
    app.send_text(1, "/api/topic/42", "topic").await;
    assert!(platform.requests().is_empty(), "sending needs no profiles");

    let history = app.get("/api/user/2", 1).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["entry"], user_profile(2));
    assert_eq!(history.body["messages"][0]["author"], user_profile(1));
    assert_eq!(history.body["messages"][1]["author"], user_profile(2));
    let requests = platform.requests();
    assert_eq!(requests.len(), 1, "one batched request: {requests:?}");
    assert_eq!(requests[0].path, "/v1/users");
    assert_eq!(requests[0].ids, [1, 2], "de-duplicated");
    assert_eq!(requests[0].fields, "id,username,role,picture_url,profile_url");
    assert_eq!(requests[0].user_agent, "Senna-Sockets-Server");

    // Served from the cache now.
    app.get("/api/user/2", 1).await;
    assert_eq!(platform.requests().len(), 1);

    let inbox = app.get("/api/list", 1).await;
    let entries = inbox.body["entries"].as_array().unwrap();
    let topic = entries.iter().find(|e| e["type"] == json!("topic")).unwrap();
    let user = entries.iter().find(|e| e["type"] == json!("user")).unwrap();
    assert_eq!(topic["topic"], topic_profile(42));
    assert_eq!(user["user"], user_profile(2));
    let requests = platform.requests();
    assert_eq!(requests.len(), 2, "only the topic was missing: {requests:?}");
    assert_eq!(requests[1].path, "/v1/topics");
    assert_eq!(requests[1].ids, [42]);
    assert_eq!(requests[1].fields, "id,title,status,cover_image_thumbnail");
}
backends!(platform_profiles, profiles_come_batched_and_cached_from_the_platform);

async fn a_failing_platform_degrades_profiles(backend: Backend) {
    let platform = StandInPlatform::start();
    platform.set_failing(true);
    let app = spawn_app_with(backend, test_settings(), Some(&platform)).await;
    app.send_text(1, "/api/user/2", "hello").await;
    let history = app.get("/api/user/2", 1).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["entry"], json!({"id": 2}));
    assert_eq!(history.body["messages"][0]["author"], json!({"id": 1}));
    let inbox = app.get("/api/list", 2).await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert_eq!(inbox.body["entries"][0]["user"], json!({"id": 1}));
    assert!(!platform.requests().is_empty(), "the platform was asked");

    // Once the platform is back, real profiles return.
    platform.set_failing(false);
    assert_eq!(app.get("/api/user/2", 1).await.body["entry"], user_profile(2));
}
backends!(failing_platform, a_failing_platform_degrades_profiles);
