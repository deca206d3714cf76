//! Presence: DM partners hear a user come and go, across devices and instances; a new connection
//! hears which partners are active; the original's `activity:<uid>` hash mirrors it; and a user
//! whose instance dies does not stay "active" — with upkeep whose Redis calls stay small however
//! many users an instance holds, and an instance that stalls past its deadline coming back right.

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, backends, spawn_app, spawn_app_with, spawn_second_instance, test_settings, token,
};
use crate::process::ChatdProcess;
use crate::redis_server::RedisServer;
use crate::ws_client::{PATIENCE, WsClient};

async fn activity_status(app: &TestApp, user: u64) -> Option<String> {
    let mut redis = RedisServer::shared().connection().await;
    redis.hget(format!("{}:messages:myplatform:activity:{user}", app.prefix), "status").await.unwrap()
}

/// The users of the next `n` events `client` hears, each an `active` presence, in id order.
async fn active_heard(client: &mut WsClient, n: usize) -> Vec<u64> {
    let mut users = Vec::new();
    for _ in 0..n {
        let event = client.expect("presence").await;
        let user = event["user"].as_u64().expect("a user id");
        assert_eq!(event, json!({"user": user, "status": "active"}));
        users.push(user);
    }
    users.sort_unstable();
    users
}

async fn dm_partners_hear_a_user_come_and_go(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(1, "/api/user/2", "we share a DM").await;
    let mut one = WsClient::authenticated(&app, 1).await;
    let mut stranger = WsClient::authenticated(&app, 3).await;

    let phone = WsClient::authenticated(&app, 2).await;
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "active"}));
    if backend == Backend::Redis {
        assert_eq!(activity_status(&app, 2).await.as_deref(), Some("active"));
    }
    // A second device changes nothing; closing one of two changes nothing.
    let laptop = WsClient::authenticated(&app, 2).await;
    phone.close().await;
    app.send_text(2, "/api/user/1", "still here").await;
    assert_eq!(one.expect("new-message").await["text"], json!("still here"));

    laptop.close().await;
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "inactive"}));
    if backend == Backend::Redis {
        assert_eq!(activity_status(&app, 2).await.as_deref(), Some("inactive"));
    }
    // The stranger shares no DM with user 2 and heard none of it.
    app.send_text(1, "/api/user/3", "hi stranger").await;
    assert_eq!(stranger.expect("new-message").await["text"], json!("hi stranger"));
}
backends!(presence_events, dm_partners_hear_a_user_come_and_go);

async fn a_new_connection_hears_which_partners_are_active(backend: Backend) {
    let app = spawn_app(backend).await;
    for partner in [5, 4, 2] {
        app.send_text(1, &format!("/api/user/{partner}"), "we share a DM").await;
    }
    let _two = WsClient::authenticated(&app, 2).await;
    // User 4 is connected to another instance (with Redis, presence is shared by every instance).
    let second = if backend.is_shared() { Some(spawn_second_instance(&app, test_settings()).await) } else { None };
    let _four = WsClient::authenticated(second.as_ref().unwrap_or(&app), 4).await;
    let _stranger = WsClient::authenticated(&app, 3).await;

    // User 1 hears, after `authenticated`, who of their DM partners is active: 2 and 4 (in inbox
    // order, which the sends above may leave tied); not 5 (offline), not 3 (no DM).
    let mut one = WsClient::authenticated(&app, 1).await;
    assert_eq!(active_heard(&mut one, 2).await, [2, 4]);
    app.send_text(5, "/api/user/1", "next").await;
    assert_eq!(one.expect("new-message").await["text"], json!("next"), "no other presence event came first");
}
backends!(presence_snapshot, a_new_connection_hears_which_partners_are_active);

#[actix_web::test]
async fn a_user_on_an_instance_that_dies_turns_inactive() {
    let mut settings = test_settings();
    settings.realtime.presence_ttl_ms = 600;
    let app = spawn_app_with(Backend::Redis, settings, None).await;
    app.send_text(1, "/api/user/2", "we share a DM").await;
    let mut one = WsClient::authenticated(&app, 1).await;

    let mut doomed = ChatdProcess::start(&app.prefix, &[("CHATD_REALTIME__PRESENCE_TTL_MS", "600")]).await;
    let url = format!("{}/ws?token={}", doomed.address.replacen("http://", "ws://", 1), crate::helpers::token(2));
    let mut two = WsClient::connect(url).await;
    two.expect("authenticated").await;
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "active"}));

    // SIGKILL: no goodbye, no cleanup. The other instance notices the silence.
    doomed.kill();
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "inactive"}));
    assert_eq!(activity_status(&app, 2).await.as_deref(), Some("inactive"));
}

async fn presence_goes_to_the_most_recent_partners_only(backend: Backend) {
    let mut settings = test_settings();
    settings.realtime.presence_partners = 2;
    let app = spawn_app_with(backend, settings, None).await;
    // User 1's inbox, most recent first: 5, 4, 3, 2 (sends in one millisecond tie, and a tie is
    // ordered by member, the same way).
    for partner in [2, 3, 4, 5] {
        app.send_text(1, &format!("/api/user/{partner}"), "we share a DM").await;
    }
    let mut partners = Vec::new();
    for partner in [2, 3, 4, 5] {
        partners.push(WsClient::authenticated(&app, partner).await);
    }

    // User 1's connection hears the two most recent partners' presence, and only theirs.
    let mut one = WsClient::authenticated(&app, 1).await;
    assert_eq!(active_heard(&mut one, 2).await, [4, 5]);
    app.send_text(2, "/api/user/1", "from an older chat").await;
    assert_eq!(one.expect("new-message").await["text"], json!("from an older chat"), "no other presence event");

    // And only those two heard user 1 arrive (user 2 hears its own send on every device).
    assert_eq!(partners[0].expect("new-message").await["text"], json!("from an older chat"));
    for (partner, client) in [2, 3, 4, 5].into_iter().zip(&mut partners) {
        if partner >= 4 {
            assert_eq!(client.expect("presence").await, json!({"user": 1, "status": "active"}), "user {partner}");
        }
        app.send_text(1, &format!("/api/user/{partner}"), "after").await;
        assert_eq!(client.expect("new-message").await["text"], json!("after"), "user {partner}");
    }
}
backends!(presence_partners, presence_goes_to_the_most_recent_partners_only);

/// For each command in `MONITOR` `lines`, how many distinct presence keys under `prefix` it and the
/// commands it ran (a script's, which `MONITOR` shows right after it, marked `lua`) touched.
fn presence_keys_per_call(lines: &[String], prefix: &str) -> Vec<usize> {
    let mut calls: Vec<std::collections::HashSet<&str>> = Vec::new();
    let marker = format!("{prefix}:messages:");
    for line in lines {
        if !line.contains(" lua] ") || calls.is_empty() {
            calls.push(std::collections::HashSet::new());
        }
        let touched = line.split('"').filter(|part| part.starts_with(&marker) && part.contains(":presence:"));
        calls.last_mut().expect("a call").extend(touched);
    }
    calls.iter().map(std::collections::HashSet::len).collect()
}

#[actix_web::test]
async fn presence_upkeep_stays_small_however_many_users_an_instance_holds() {
    const USERS: u64 = 150;
    let mut settings = test_settings();
    settings.realtime.presence_ttl_ms = 600;
    let app = spawn_app_with(Backend::Redis, settings, None).await;
    for user in 2..2 + USERS {
        app.send_text(1, &format!("/api/user/{user}"), "we share a DM").await;
    }
    let mut one = WsClient::authenticated(&app, 1).await;
    let monitor = redis::Client::open(RedisServer::shared().url()).unwrap().get_async_monitor().await.unwrap();
    let mut lines = monitor.into_on_message::<String>();

    let mut doomed = ChatdProcess::start(&app.prefix, &[("CHATD_REALTIME__PRESENCE_TTL_MS", "600")]).await;
    let mut sockets = Vec::new();
    for user in 2..2 + USERS {
        let mut socket = WsClient::connect(doomed.ws_url(&format!("/ws?token={}", token(user)))).await;
        socket.expect("authenticated").await;
        sockets.push(socket);
    }
    assert_eq!(active_heard(&mut one, USERS as usize).await, (2..2 + USERS).collect::<Vec<_>>());
    // A few renewals (each instance's: one write to the instances) with every user connected.
    let renewal = format!("\"ZADD\" \"{}:instances\"", app.prefix);
    let mut seen = Vec::new();
    let renewed = async {
        while seen.iter().filter(|line: &&String| line.contains(&renewal)).count() < 6 {
            seen.push(lines.next().await.expect("MONITOR goes on"));
        }
    };
    tokio::time::timeout(PATIENCE, renewed).await.expect("the instances renew themselves");

    // The instance dies; the other sweeps its users.
    doomed.kill();
    let mut gone = Vec::new();
    for _ in 0..USERS {
        let event = one.expect("presence").await;
        assert_eq!(event["status"], json!("inactive"), "{event}");
        gone.push(event["user"].as_u64().expect("a user id"));
    }
    gone.sort_unstable();
    assert_eq!(gone, (2..2 + USERS).collect::<Vec<_>>(), "each user once");
    assert_eq!(activity_status(&app, 2 + USERS - 1).await.as_deref(), Some("inactive"));

    let sentinel = format!("end-of-{}", app.prefix);
    let mut redis = RedisServer::shared().connection().await;
    redis::cmd("ECHO").arg(&sentinel).query_async::<String>(&mut redis).await.unwrap();
    while let Some(line) = lines.next().await {
        if line.contains(&sentinel) {
            break;
        }
        seen.push(line);
    }
    // The sweep takes the dead instance's users 32 at a time; no call ever touches them all.
    let widest = presence_keys_per_call(&seen, &app.prefix).into_iter().max();
    assert_eq!(widest, Some(32), "the most users' presence one Redis call touched");
}

#[actix_web::test]
async fn an_instance_that_stalls_past_its_deadline_starts_over() {
    let mut settings = test_settings();
    settings.realtime.presence_ttl_ms = 600;
    let app = spawn_app_with(Backend::Redis, settings, None).await;
    app.send_text(1, "/api/user/2", "we share a DM").await;
    let mut one = WsClient::authenticated(&app, 1).await;
    let stalled = ChatdProcess::start(&app.prefix, &[("CHATD_REALTIME__PRESENCE_TTL_MS", "600")]).await;
    let mut two = WsClient::connect(stalled.ws_url(&format!("/ws?token={}", token(2)))).await;
    two.expect("authenticated").await;
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "active"}));

    // Past its deadline the other instance sweeps its users, as if it had died ...
    stalled.pause();
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "inactive"}));
    // ... and once it goes on, it finds its name lapsed, vouches under a new one and joins its
    // users again.
    stalled.resume();
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "active"}));
    assert_eq!(activity_status(&app, 2).await.as_deref(), Some("active"));
    // Under the new name, leaving works as ever.
    two.close().await;
    assert_eq!(one.expect("presence").await, json!({"user": 2, "status": "inactive"}));
}
