//! Redis unreachable: requests answer 503 `STORAGE_UNAVAILABLE` with `Retry-After`, promptly.

use std::sync::Arc;
use std::time::Duration;

use chat_storage::{RedisSettings, RedisStore};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app_on, test_settings, token};

#[actix_web::test]
async fn an_unreachable_redis_is_a_503_with_retry_after() {
    let nowhere = tempfile::tempdir().unwrap();
    let store = RedisStore::connect(&RedisSettings {
        url: format!("unix://{}/no-redis-here.sock", nowhere.path().display()),
        prefix: "unreachable".into(),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        history: chat_domain::HistoryWindow::default(),
    })
    .unwrap();
    let app = spawn_app_on(Arc::new(store), test_settings(), None).await;
    let send = Some(json!({"type": "text", "text": "x"}).to_string().into_bytes());
    for (method, path, body) in [
        (Method::GET, "/api/list", None),
        (Method::GET, "/api/user/2", None),
        (Method::POST, "/api/user/2", send),
        (Method::DELETE, "/api/user/2/7d3f1c1e-0000-4000-8000-000000000000", None),
    ] {
        let answer = app.request(method, path, Some(&token(1)), body).await;
        answer.assert_error(503, "STORAGE_UNAVAILABLE");
        assert_eq!(answer.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{path}");
    }
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    ready.assert_error(503, "STORAGE_UNAVAILABLE");
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, reqwest::StatusCode::OK, "the process itself is fine");
    // Input is still checked first: bad input is a 4xx, not a 503.
    app.get("/api/group/2", 1).await.assert_error(400, "MESSAGES_INVALID_TARGET");
}
