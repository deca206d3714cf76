//! chatd embedded in a plain actix-web app, as a Rust service embedding chat-transport mounts it.
//! The realtime doors there run through actix-ws rather than on connections chatd's own server
//! takes over: the same behaviour on that path — events over both doors and the Engine.IO upgrade,
//! the close handshake, a slow consumer cut off and resuming, and the shutdown — and the second
//! descriptor per connection that path costs. Mounted under a host's `web::scope("/chat")`, chatd
//! keeps to its scope: the host's routes, errors and 404 stay the host's, while chatd's answers
//! (errors, the header limit) are what they are at chatd's root. And the library refuses settings
//! that cannot work, and a second hub on one backend.

use std::sync::Arc;
use std::time::Duration;

use chat_service::{Hub, HubSettings, NonZeroDuration, PresenceTtl};
use chat_storage::{AlreadyAttached, MemoryStore};
use chatd::startup::{self, Dependencies};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    HOST_ERROR, HOST_HOME, HOST_NOT_FOUND, TestApp, spawn_in_actix_web, spawn_under_a_scope, test_settings, token,
};
use crate::realtime_socketio;
use crate::realtime_ws::{self, slow_consumer_settings};
use crate::ws_client::{Incoming, WsClient};

#[actix_web::test]
async fn events_reach_both_doors_and_polling_upgrades() {
    let app = spawn_in_actix_web(test_settings()).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    let sent = app.send_text(2, "/api/user/1", "to the plain app").await;
    assert_eq!(client.expect("new-message").await["id"], sent["id"]);
    realtime_socketio::polling_then_upgrade_carries_every_event_of(app).await;
}

#[actix_web::test]
async fn a_client_close_ends_the_connection_at_once() {
    realtime_ws::a_client_close_ends_the_connection_of(spawn_in_actix_web(test_settings()).await).await;
    realtime_socketio::a_client_close_ends_the_connection_of(spawn_in_actix_web(test_settings()).await).await;
}

#[actix_web::test]
async fn a_slow_consumer_is_dropped_and_resumes() {
    realtime_ws::a_slow_consumer_is_dropped_from(spawn_in_actix_web(slow_consumer_settings()).await).await;
}

#[actix_web::test]
async fn shutdown_closes_connections_with_going_away() {
    let app = spawn_in_actix_web(test_settings()).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    app.shut_down();
    assert_eq!(client.next().await, Incoming::Closed(Some((1001, "server shutting down".into()))));
}

/// Through actix-ws, actix-http keeps the socket and the doors a duplicate of it (`remember_sockets`)
/// to end the connection: two descriptors per WebSocket, where chatd's own server holds one.
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn each_websocket_holds_two_file_descriptors() {
    let app = spawn_in_actix_web(test_settings()).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let _first = WsClient::authenticated(&app, 1).await;
    let before = realtime_ws::descriptors_on_port(port);
    let mut clients = Vec::new();
    for user in 2..7 {
        clients.push(WsClient::authenticated(&app, user).await);
    }
    assert_eq!(realtime_ws::descriptors_on_port(port) - before, 2 * clients.len());
}

/// `GET path` on the host (outside chatd's scope), with `header` when given: status and body text.
async fn host_get(app: &TestApp, path: &str, header: Option<(&str, String)>) -> (StatusCode, String) {
    let mut request = app.client.get(format!("{}{path}", app.host()));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the host answers");
    (response.status(), response.text().await.expect("a body"))
}

#[actix_web::test]
async fn under_a_scope_the_host_keeps_its_own_routes_errors_and_404() {
    let app = spawn_under_a_scope(test_settings()).await;
    assert_eq!(host_get(&app, "/", None).await, (StatusCode::OK, HOST_HOME.to_owned()));
    assert_eq!(host_get(&app, "/fails", None).await, (StatusCode::BAD_REQUEST, HOST_ERROR.to_owned()));
    assert_eq!(host_get(&app, "/nothing", None).await, (StatusCode::NOT_FOUND, HOST_NOT_FOUND.to_owned()));
    // chatd's operations endpoints were not mounted: `/healthz` is the host's 404, in or out of the scope.
    assert_eq!(host_get(&app, "/healthz", None).await, (StatusCode::NOT_FOUND, HOST_NOT_FOUND.to_owned()));
    // A head over chatd's limit is not chatd's business outside its scope.
    let large = Some(("x-padding", "x".repeat(20 * 1024)));
    assert_eq!(host_get(&app, "/", large).await, (StatusCode::OK, HOST_HOME.to_owned()));
}

#[actix_web::test]
async fn under_a_scope_chatd_serves_rest_and_realtime() {
    let app = spawn_under_a_scope(test_settings()).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    let sent = app.send_text(2, "/api/user/1", "under /chat").await;
    assert_eq!(client.expect("new-message").await["id"], sent["id"]);
    assert_eq!(app.texts("/api/user/2", 1).await, ["under /chat"]);
    realtime_socketio::polling_then_upgrade_carries_every_event_of(app).await;
}

#[actix_web::test]
async fn under_a_scope_chatd_errors_keep_the_error_body() {
    let app = spawn_under_a_scope(test_settings()).await;
    // chatd's own error, with the one-line stack of development.
    let unauthenticated = app.request(Method::GET, "/api/list", None, None).await;
    unauthenticated.assert_error(401, "NOT_AUTHENTICATED");
    assert_eq!(unauthenticated.body["stack"], json!("UnauthenticatedError: You are not authenticated"));
    // Errors actix makes itself get the error body too: an oversized body, an unknown path.
    let oversized = vec![b' '; 2 * chat_transport::DEFAULT_BODY_LIMIT];
    let too_large = app.request(Method::POST, "/api/user/2", Some(&token(1)), Some(oversized)).await;
    too_large.assert_error(413, crate::helpers::NULL);
    assert_eq!(too_large.body["name"], "PayloadTooLargeError");
    app.request(Method::GET, "/nothing", None, None).await.assert_error(404, "NOT_FOUND");
    app.request(Method::DELETE, "/api/list", Some(&token(1)), None).await.assert_error(405, "METHOD_NOT_ALLOWED");
    // The middleware's answers carry the request id.
    assert!(too_large.headers.contains_key("x-request-id"), "{:?}", too_large.headers);
}

#[actix_web::test]
async fn under_a_scope_the_header_limit_holds() {
    let app = spawn_under_a_scope(test_settings()).await;
    let request = app.client.get(format!("{}/api", app.address)).header("x-padding", "x".repeat(20 * 1024));
    let response = request.send().await.expect("chatd answers");
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body: serde_json::Value = response.json().await.expect("the error body");
    assert_eq!(body["code"], "HEADERS_TOO_LARGE", "{body:#}");
}

#[actix_web::test]
async fn a_second_hub_on_one_backend_is_refused() {
    let backend = Arc::new(MemoryStore::new());
    let first = Hub::new(backend.clone(), backend.clone(), HubSettings::default());
    assert!(first.is_ok());
    let second = Hub::new(backend.clone(), backend.clone(), HubSettings::default());
    assert_eq!(second.err(), Some(AlreadyAttached));
    // So is a chatd handed a backend that already feeds one.
    let settings = test_settings();
    let verifier = Dependencies::from_settings(&settings).unwrap().verifier;
    let directory = Arc::new(chat_identity::BuiltinDirectory::new());
    let error = startup::chat_api(&settings, Dependencies::with_backend(backend, directory, verifier)).unwrap_err();
    assert!(matches!(error, startup::StartupError::Attached(AlreadyAttached)), "{error}");
}

#[test]
fn settings_that_cannot_work_are_refused_by_their_types() {
    assert_eq!(
        NonZeroDuration::new(Duration::ZERO).map_err(|e| e.to_string()),
        Err("must be positive (got 0ns)".to_owned())
    );
    assert!(PresenceTtl::new(Duration::from_millis(29)).is_err());
    assert!(chat_transport::HeaderLimit::new(1023).is_err());
    // And chatd names the setting.
    for (change, setting) in [
        (
            (|s: &mut chatd::settings::Settings| s.realtime.ping_interval_ms = 0) as fn(&mut _),
            "realtime.ping_interval_ms",
        ),
        (|s| s.realtime.presence_ttl_ms = 29, "realtime.presence_ttl_ms"),
        (|s| s.realtime.queue_capacity = 0, "realtime.queue_capacity"),
    ] {
        let mut settings = test_settings();
        change(&mut settings);
        let dependencies = Dependencies::from_settings(&settings).unwrap();
        let error = startup::chat_api(&settings, dependencies).unwrap_err().to_string();
        assert!(error.contains(setting), "{error}");
    }
}
