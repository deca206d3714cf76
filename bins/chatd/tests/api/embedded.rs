//! The realtime doors mounted in a plain actix-web app (as a Rust service embedding chat-transport
//! mounts them), where they run through actix-ws rather than on connections chatd's own server
//! takes over: the same behaviour on that path — events over both doors and the Engine.IO upgrade,
//! the close handshake, a slow consumer cut off and resuming, and the shutdown — and the second
//! descriptor per connection that path costs.

use crate::helpers::{spawn_in_actix_web, test_settings};
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
