//! Resuming after a reconnect: positions on every durable event, `since` on both doors and on
//! topic subscriptions, exactly the missed events then the live stream, `recovered: false` outside
//! the window, the REST catch-up `/api/events`, and REST pages' `state.position`.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, backends, spawn_app, spawn_app_with, spawn_second_instance, test_settings, token,
};
use crate::process::ChatdProcess;
use crate::ws_client::{Incoming, WsClient};

/// The sequence number of a position (`<epoch>-<seq>`): tests may look inside what clients treat
/// as opaque.
fn seq(position: &Value) -> u64 {
    let text = position.as_str().unwrap_or_else(|| panic!("a position string, got {position}"));
    text.rsplit_once('-').and_then(|(_, seq)| seq.parse().ok()).unwrap_or_else(|| panic!("a position: {text}"))
}

fn epoch(position: &Value) -> &str {
    position.as_str().and_then(|text| text.split_once('-')).map(|(epoch, _)| epoch).expect("a position")
}

/// The next event's name and data, which must be durable (carry a position), position included.
async fn next_durable(client: &mut WsClient) -> (String, Value) {
    match client.next().await {
        Incoming::Event(name, mut data) => {
            let position = client.position.take().unwrap_or_else(|| panic!("{name} carries a position: {data}"));
            data["position"] = json!(position);
            (name, data)
        }
        closed => panic!("expected an event, got {closed:?}"),
    }
}

/// The data of the next frame, which must be `event`, position included.
async fn expect_positioned(client: &mut WsClient, event: &str) -> Value {
    let mut data = client.expect(event).await;
    data["position"] = json!(client.position.take().unwrap_or_else(|| panic!("{event} carries a position")));
    data
}

/// User 2 does everything that makes a durable event in the DM with user 1: a send, an edit,
/// user 1 marks it seen (which moves their read position), a second send, its delete. Returns the
/// names of the events in order.
async fn every_durable_change(app: &TestApp) -> Vec<&'static str> {
    let first = app.send_text(2, "/api/user/1", "one").await;
    let id = first["id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/user/1/{id}"), 2, json!({"text": "one, edited"})).await.assert_status(200);
    app.post(&format!("/api/user/2/{id}"), 1, json!({"status": "seen"})).await.assert_status(200);
    let second = app.send_text(2, "/api/user/1", "two").await;
    let id = second["id"].as_str().unwrap();
    app.delete(&format!("/api/user/1/{id}"), 2).await.assert_status(200);
    vec!["new-message", "message-updated", "message-seen", "read", "new-message", "message-deleted"]
}

async fn durable_events_carry_consecutive_positions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = WsClient::connect(app.ws_url(&format!("/ws?token={}", token(1)))).await;
    let authenticated = expect_positioned(&mut client, "authenticated").await;
    let start = seq(&authenticated["position"]);
    let names = every_durable_change(&app).await;
    for (offset, name) in names.iter().enumerate() {
        let (event, data) = next_durable(&mut client).await;
        assert_eq!(&event, name);
        assert_eq!(seq(&data["position"]), start + 1 + offset as u64, "{data}");
        assert_eq!(epoch(&data["position"]), epoch(&authenticated["position"]));
    }
    // Typing is ephemeral: no position.
    let mut typist = WsClient::authenticated(&app, 2).await;
    typist.send("typing", json!({"chat": {"type": "user", "id": 1}})).await;
    assert_eq!(client.expect("presence").await, json!({"user": 2, "status": "active"}));
    client.expect("typing").await;
    assert!(client.position.is_none(), "typing carries no position");
}
backends!(positions, durable_events_carry_consecutive_positions);

async fn a_client_resumes_with_exactly_what_it_missed(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    app.send_text(2, "/api/user/1", "before").await;
    let (_, seen) = next_durable(&mut client).await;
    client.close().await;

    let names = every_durable_change(&app).await;
    let (mut resumed, authenticated) = WsClient::resumed(&app, 1, seen["position"].as_str().unwrap()).await;
    assert_eq!(authenticated["recovered"], true, "{authenticated}");
    assert_eq!(authenticated["missed"], names.len(), "{authenticated}");
    let mut last = seq(&seen["position"]);
    for name in &names {
        let (event, data) = next_durable(&mut resumed).await;
        assert_eq!(&event, name);
        assert_eq!(seq(&data["position"]), last + 1, "in order, none skipped: {data}");
        last += 1;
    }
    assert_eq!(seq(&authenticated["position"]), last, "authenticated says where the missed events end");
    // Then the live stream, without a duplicate or a gap.
    app.send_text(2, "/api/user/1", "live").await;
    let (event, data) = next_durable(&mut resumed).await;
    assert_eq!(
        (event.as_str(), data["text"].clone(), seq(&data["position"])),
        ("new-message", json!("live"), last + 1)
    );

    // Resuming from where it is: recovered, nothing missed; `since` also works in `authenticate`.
    let mut by_event = WsClient::connect(app.ws_url("/ws")).await;
    by_event.send("authenticate", json!({"token": token(1), "since": data["position"]})).await;
    let authenticated = expect_positioned(&mut by_event, "authenticated").await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(0)));
    app.send_text(2, "/api/user/1", "next").await;
    assert_eq!(next_durable(&mut by_event).await.1["text"], "next");
}
backends!(resume, a_client_resumes_with_exactly_what_it_missed);

async fn a_client_resumes_on_another_instance() {
    let first = spawn_app(Backend::Redis).await;
    let second = spawn_second_instance(&first, test_settings()).await;
    let mut client = WsClient::authenticated(&first, 1).await;
    first.send_text(2, "/api/user/1", "seen on the first").await;
    let (_, seen) = next_durable(&mut client).await;
    drop(client);
    for text in ["a", "b", "c"] {
        first.send_text(2, "/api/user/1", text).await;
    }
    let (mut resumed, authenticated) = WsClient::resumed(&second, 1, seen["position"].as_str().unwrap()).await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(3)));
    for text in ["a", "b", "c"] {
        assert_eq!(next_durable(&mut resumed).await.1["text"], text);
    }
}

#[actix_web::test]
async fn resume_works_on_another_instance() {
    a_client_resumes_on_another_instance().await;
}

async fn positions_it_cannot_serve_are_not_recovered(backend: Backend) {
    let mut settings = test_settings();
    settings.realtime.history_size = 3;
    let app = spawn_app_with(backend, settings, None).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    app.send_text(2, "/api/user/1", "seen").await;
    let (_, seen) = next_durable(&mut client).await;
    let position = seen["position"].as_str().unwrap().to_owned();
    let (epoch, at) = (epoch(&seen["position"]).to_owned(), seq(&seen["position"]));
    client.close().await;
    for text in ["1", "2", "3", "4"] {
        app.send_text(2, "/api/user/1", text).await;
    }
    // Four missed, three kept: never a partial recovery. Nor from another epoch, from the future,
    // or from something that is not a position.
    let other_epoch = format!("{}-{at}", epoch.parse::<u64>().unwrap() + 1);
    let future = format!("{epoch}-{}", at + 100);
    for (live, since) in [position.as_str(), &other_epoch, &future, "garbage", "1-2-3"].into_iter().enumerate() {
        let (mut resumed, authenticated) = WsClient::resumed(&app, 1, since).await;
        assert_eq!(authenticated["recovered"], false, "since {since}: {authenticated}");
        assert!(authenticated.get("missed").is_none(), "{authenticated}");
        assert_eq!(seq(&authenticated["position"]), at + 4 + live as u64);
        app.send_text(2, "/api/user/1", "live").await;
        let (_, data) = next_durable(&mut resumed).await;
        assert_eq!(data["text"], "live", "no missed event is delivered, the live stream is");
        resumed.close().await;
    }
    // Within the window: the last three.
    let (mut resumed, authenticated) = WsClient::resumed(&app, 1, &format!("{epoch}-{}", at + 6)).await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(3)));
    for text in ["live", "live", "live"] {
        assert_eq!(next_durable(&mut resumed).await.1["text"], text);
    }
}
backends!(out_of_window, positions_it_cannot_serve_are_not_recovered);

async fn rest_pages_give_the_position_to_resume_from(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(2, "/api/user/1", "old").await;
    app.post("/api/topic/5", 1, json!({"type": "text", "text": "in the topic"})).await.assert_status(201);
    let history = app.get("/api/user/2", 1).await;
    let inbox = app.get("/api/list", 1).await;
    let topic = app.get("/api/topic/5", 1).await;
    let (dm_position, inbox_position) =
        (history.body["state"]["position"].clone(), inbox.body["state"]["position"].clone());
    assert_eq!(dm_position, inbox_position, "a DM page and the inbox show the caller's own channel");
    assert_eq!(seq(&dm_position), 1, "user 1's channel had one event: the DM message");
    assert_eq!(seq(&topic.body["state"]["position"]), 1, "the topic's channel had one event");

    // Loaded over REST, then connected from that position: nothing in between is lost.
    app.send_text(2, "/api/user/1", "after the page").await;
    let (mut resumed, authenticated) = WsClient::resumed(&app, 1, dm_position.as_str().unwrap()).await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(1)));
    assert_eq!(next_durable(&mut resumed).await.1["text"], "after the page");

    // The same for a topic, through `subscribe`.
    app.post("/api/topic/5", 3, json!({"type": "text", "text": "while away"})).await.assert_status(201);
    resumed.send("subscribe", json!({"topic": 5, "since": topic.body["state"]["position"]})).await;
    let subscribed = expect_positioned(&mut resumed, "subscribed").await;
    assert_eq!(subscribed["topic"], 5);
    assert_eq!(
        (subscribed["recovered"].clone(), subscribed["missed"].clone()),
        (json!(true), json!(1)),
        "{subscribed}"
    );
    let (event, data) = next_durable(&mut resumed).await;
    assert_eq!(
        (event.as_str(), data["text"].clone(), data["chat"].clone()),
        ("new-message", json!("while away"), json!({"type": "topic", "id": 5}))
    );
    assert_eq!(data["position"], subscribed["position"]);
    app.post("/api/topic/5", 3, json!({"type": "text", "text": "live"})).await.assert_status(201);
    assert_eq!(next_durable(&mut resumed).await.1["text"], "live");
}
backends!(rest_positions, rest_pages_give_the_position_to_resume_from);

async fn rest_catch_up_returns_what_the_socket_would_have(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = app.get("/api/list", 1).await.body["state"]["position"].clone();
    let mut live = WsClient::authenticated(&app, 1).await;
    let names = every_durable_change(&app).await;
    let mut delivered = Vec::new();
    for _ in &names {
        let (event, data) = next_durable(&mut live).await;
        delivered.push(json!({"event": event, "data": data}));
    }

    let all = app.get(&format!("/api/events?since={}", start.as_str().unwrap()), 1).await;
    all.assert_status(200);
    assert_eq!(all.body["events"], json!(delivered), "the same events, the same data");
    assert_eq!(all.body["recovered"], true);
    assert_eq!(all.body["position"], delivered.last().unwrap()["data"]["position"]);

    // Paged with `limit`: each answer goes on from the last.
    let mut since = start.as_str().unwrap().to_owned();
    let mut paged = Vec::new();
    loop {
        let page = app.get(&format!("/api/events?since={since}&limit=2"), 1).await;
        let events = page.body["events"].as_array().unwrap().clone();
        since = page.body["position"].as_str().unwrap().to_owned();
        paged.extend(events.iter().cloned());
        if events.len() < 2 {
            break;
        }
    }
    assert_eq!(json!(paged), json!(delivered));

    // Up to date; not a position; a topic; bad requests.
    let now = app.get(&format!("/api/events?since={since}"), 1).await;
    assert_eq!((now.body["events"].clone(), now.body["recovered"].clone()), (json!([]), json!(true)));
    let garbage = app.get("/api/events?since=garbage", 1).await;
    assert_eq!(garbage.body, json!({"events": [], "position": since, "recovered": false}));
    app.post("/api/topic/5", 3, json!({"type": "text", "text": "topic"})).await.assert_status(201);
    let topic = app.get("/api/events?since=0-0&topic=5", 1).await;
    assert_eq!(topic.body["recovered"], false, "0-0 is not of this epoch");
    let topic_start = topic.body["position"].as_str().unwrap();
    assert_eq!(seq(&topic.body["position"]), 1);
    let epoch_start = format!("{}-0", epoch(&topic.body["position"]));
    let topic = app.get(&format!("/api/events?since={epoch_start}&topic=5"), 1).await;
    assert_eq!(topic.body["events"][0]["data"]["text"], "topic");
    assert_eq!(topic.body["events"][0]["data"]["position"], topic_start);
    app.get("/api/events", 1).await.assert_error(400, "INVALID_ARGUMENT");
    app.get("/api/events?since=1-1&limit=0", 1).await.assert_error(400, "INVALID_ARGUMENT");
    app.get("/api/events?since=1-1&limit=ten", 1).await.assert_error(400, "INVALID_ARGUMENT");
    app.get("/api/events?since=1-1&limit=4294967296", 1).await.assert_error(400, "INVALID_ARGUMENT");
    assert_eq!(app.get("/api/events?since=1-1&limit=4294967295", 1).await.status, 200, "lowered to 1000");
    app.get("/api/events?since=1-1&topic=x", 1).await.assert_error(400, "INVALID_ARGUMENT");
    let anonymous = app.request(reqwest::Method::GET, "/api/events?since=1-1", None, None).await;
    anonymous.assert_error(401, "NOT_AUTHENTICATED");
}
backends!(catch_up, rest_catch_up_returns_what_the_socket_would_have);

async fn concurrent_senders_and_a_client_reconnecting_in_a_loop_lose_nothing(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = if backend.is_shared() { Some(spawn_second_instance(&first, test_settings()).await) } else { None };
    const SENDERS: u64 = 4;
    const EACH: usize = 40;
    let start = first.get("/api/list", 1).await.body["state"]["position"].as_str().unwrap().to_owned();
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let (address, client) = (first.address.clone(), first.client.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    let answer = client
                        .post(format!("{address}/api/user/1"))
                        .header("X-Auth-Token", token(10 + n))
                        .json(&json!({"type": "text", "text": format!("{n}/{i}")}))
                        .send()
                        .await
                        .expect("the send is answered");
                    assert_eq!(answer.status(), 201);
                }
            })
        })
        .collect();
    let total = SENDERS as usize * EACH;
    let mut received: Vec<Value> = Vec::new();
    let mut since = start;
    let mut round = 0;
    while received.len() < total {
        // Alternate instances (on Redis), read a few events, drop the connection, resume.
        let app = match (&second, round % 2) {
            (Some(second), 1) => second,
            _ => &first,
        };
        round += 1;
        let (mut client, authenticated) = WsClient::resumed(app, 1, &since).await;
        assert_eq!(authenticated["recovered"], true, "{authenticated}");
        for _ in 0..7 {
            if received.len() == total {
                break;
            }
            let (_, data) = next_durable(&mut client).await;
            since = data["position"].as_str().unwrap().to_owned();
            received.push(data);
        }
        drop(client);
    }
    for sender in senders {
        sender.await.expect("every sender finished");
    }
    let positions: Vec<u64> = received.iter().map(|data| seq(&data["position"])).collect();
    let first_seq = positions[0];
    assert_eq!(positions, (first_seq..first_seq + total as u64).collect::<Vec<_>>(), "no gap, no duplicate");
    let ids: HashSet<&str> = received.iter().map(|data| data["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), total, "every message once");
    // Each chat's messages arrived in their stored order.
    for n in 0..SENDERS {
        let stored = first.texts(&format!("/api/user/{}?per_page=100", 10 + n), 1).await;
        let arrived: Vec<String> = received
            .iter()
            .filter(|data| data["chat"]["id"] == 10 + n)
            .map(|data| data["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(arrived, stored);
    }
}
backends!(reconnect_loop, concurrent_senders_and_a_client_reconnecting_in_a_loop_lose_nothing);

async fn after_redis_lost_its_data_resume_says_not_recovered() {
    let app = spawn_app(Backend::Redis).await;
    let mut client = WsClient::authenticated(&app, 1).await;
    app.send_text(2, "/api/user/1", "before").await;
    let (_, seen) = next_durable(&mut client).await;
    client.close().await;
    // The data of this test's prefix is lost (as with FLUSHALL, without touching other tests).
    let mut redis = crate::redis_server::RedisServer::shared().connection().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}:*", app.prefix)).query_async(&mut redis).await.unwrap();
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.unwrap();

    app.send_text(2, "/api/user/1", "after").await;
    let (mut resumed, authenticated) = WsClient::resumed(&app, 1, seen["position"].as_str().unwrap()).await;
    assert_eq!(authenticated["recovered"], false, "{authenticated}");
    assert_ne!(epoch(&authenticated["position"]), epoch(&seen["position"]), "a new epoch");
    assert_eq!(seq(&authenticated["position"]), 1);
    app.send_text(2, "/api/user/1", "live").await;
    assert_eq!(next_durable(&mut resumed).await.1["text"], "live");
}

#[actix_web::test]
async fn a_flush_starts_a_new_epoch() {
    after_redis_lost_its_data_resume_says_not_recovered().await;
}

/// Sends a text from `from` to `to` through the chatd process at `address`.
async fn send_through(address: &str, from: u64, to: u64, text: &str) {
    let answer = reqwest::Client::new()
        .post(format!("{address}/api/user/{to}"))
        .header("X-Auth-Token", token(from))
        .json(&json!({"type": "text", "text": text}))
        .send()
        .await
        .expect("the send is answered");
    assert_eq!(answer.status(), 201);
}

#[actix_web::test]
async fn a_client_of_a_killed_instance_resumes_on_another() {
    let prefix = format!("resume-kill-{}", std::process::id());
    let mut doomed = ChatdProcess::start(&prefix, &[]).await;
    let survivor = ChatdProcess::start(&prefix, &[]).await;
    let mut client = WsClient::connect(doomed.ws_url(&format!("/ws?token={}", token(1)))).await;
    client.expect("authenticated").await;
    send_through(&survivor.address, 2, 1, "heard").await;
    assert_eq!(client.expect("new-message").await["text"], "heard");
    let since = client.position.clone().expect("a position");

    doomed.kill();
    assert!(matches!(client.next().await, Incoming::Closed(_)), "the connection died with its instance");
    for text in ["x", "y"] {
        send_through(&survivor.address, 2, 1, text).await;
    }
    let url =
        reqwest::Url::parse_with_params(&survivor.ws_url("/ws"), [("token", token(1)), ("since", since)]).unwrap();
    let mut resumed = WsClient::connect(url.as_str()).await;
    let authenticated = resumed.expect("authenticated").await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(2)));
    for text in ["x", "y"] {
        assert_eq!(resumed.expect("new-message").await["text"], text);
    }
}
