//! chatd on a Redis Cluster when things break or move: the process killed between a send's chat
//! step and its user steps (the test-only failpoint `after-chat-step`), a primary killed under
//! send load with `redis.ack_replicas = 1`, and a shard added with a chat's slots moved to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_storage::{ClusterSettings, ClusterStore};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on, test_settings, token, unique};
use crate::process::ChatdProcess;
use crate::redis_cluster::RedisCluster;
use crate::ws_client::{Incoming, PATIENCE, WsClient};

/// Polls `read` until `done` holds for what it read, for at most `within`; returns the last read.
async fn until<F: Future<Output = Value>>(
    within: Duration,
    read: impl Fn() -> F,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let value = read().await;
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The members of `user`'s inbox, read from the cluster itself (not through chatd).
fn inbox_in_redis(cluster: &RedisCluster, prefix: &str, user: u64) -> Vec<String> {
    let key = format!("{prefix}:messages:myplatform:inbox:{{user:{user}}}");
    let mut node = cluster.node(cluster.owner(cluster.slot(&key)));
    redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query(&mut node).expect("ZRANGE")
}

/// The ids of a DM's messages, read from the cluster itself.
fn chat_in_redis(cluster: &RedisCluster, prefix: &str, lo: u64, hi: u64) -> Vec<String> {
    let key = format!("{prefix}:messages:myplatform:{{dm:{lo}-{hi}}}");
    let mut node = cluster.node(cluster.owner(cluster.slot(&key)));
    redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut node).expect("LRANGE")
}

#[actix_web::test]
async fn a_send_killed_between_its_steps_is_whole_after_a_restart() {
    let cluster = RedisCluster::shared();
    let prefix = unique("chatd-crash");
    let seeds = serde_json::to_string(&cluster.seeds()).unwrap();
    let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}.log"));
    let mut chatd = ChatdProcess::start_logging(
        &prefix,
        &[("CHATD_REDIS__CLUSTER", &seeds), ("CHATD_FAILPOINT", "after-chat-step")],
        &log,
    )
    .await;
    let url = format!("{}/api/user/2", chatd.address);
    let send = actix_web::rt::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("X-Auth-Token", token(1))
            .json(&json!({"type": "text", "text": "through a crash"}))
            .send()
            .await
    });
    // chatd says when it has stopped between the steps; then it is killed there.
    let deadline = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("failpoint after-chat-step reached") {
        assert!(Instant::now() < deadline, "chatd never reached the failpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chatd.kill();
    assert!(send.await.unwrap().is_err(), "the send was never answered");
    // The chat step is in, the user steps are not: the crash fell between them.
    assert_eq!(chat_in_redis(cluster, &prefix, 1, 2).len(), 1);
    assert_eq!(inbox_in_redis(cluster, &prefix, 2), Vec::<String>::new());

    let chatd =
        ChatdProcess::start(&prefix, &[("CHATD_REDIS__CLUSTER", &seeds), ("CHATD_REDIS__REPAIR_INTERVAL_MS", "100")])
            .await;
    let client = reqwest::Client::new();
    let get = |path: &'static str, user: u64| {
        let request = client.get(format!("{}{path}", chatd.address)).header("X-Auth-Token", token(user));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // The repair pass finishes the fan-out: each inbox gets the chat, the recipient its count.
    let inbox = until(Duration::from_secs(30), || get("/api/list", 2), |inbox| inbox["entries"][0].is_object()).await;
    assert_eq!(inbox["entries"][0]["latest"]["text"], json!("through a crash"), "{inbox}");
    assert_eq!(inbox["entries"][0]["unread"], json!(1), "{inbox}");
    assert_eq!(inbox["state"]["unread_total"], json!(1), "{inbox}");
    let author = get("/api/list", 1).await;
    assert_eq!(author["entries"][0]["latest"]["text"], json!("through a crash"), "{author}");
    assert_eq!(author["entries"][0]["unread"], json!(0), "{author}");
    let history = get("/api/user/1", 2).await;
    assert_eq!(history["messages"][0]["text"], json!("through a crash"), "{history}");
    // The recipient's channel got its event once: a client resuming from before it hears it.
    let position = inbox["state"]["position"].as_str().unwrap();
    let epoch = position.split_once('-').unwrap().0;
    let events = client
        .get(format!("{}/api/events?since={epoch}-0", chatd.address))
        .header("X-Auth-Token", token(2))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let new_messages: Vec<&Value> =
        events["events"].as_array().into_iter().flatten().filter(|e| e["event"] == json!("new-message")).collect();
    assert_eq!(new_messages.len(), 1, "{events}");
    assert_eq!(inbox_in_redis(cluster, &prefix, 2), ["user-1"]);
}

/// A chatd in this process on `cluster`, acknowledging sends once `ack_replicas` replicas hold
/// them.
async fn spawn_on(cluster: &RedisCluster, ack_replicas: u32) -> TestApp {
    let settings = test_settings();
    let store = ClusterStore::connect(&ClusterSettings {
        seeds: cluster.seeds(),
        prefix: unique("chatd-failover"),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_secs(2),
        history: settings.realtime.history_window().unwrap(),
        ack_replicas,
        repair_interval: Duration::from_millis(500),
        failpoint: None,
    })
    .expect("connects");
    spawn_app_on(store, settings, None).await
}

/// Sender 1's partner: one whose channel (`{user:N}`) lies on the same primary as their DM
/// (`{dm:1-N}`), so that losing that primary hits the chat step, the fan-out and the
/// subscription at once. The other senders' partners are 100 above them.
fn partners(cluster: &RedisCluster) -> impl Fn(u64) -> u64 + Clone + 'static {
    let first = (105..10_000)
        .find(|n| {
            cluster.owner(cluster.slot(&format!("{{dm:1-{n}}}")))
                == cluster.owner(cluster.slot(&format!("{{user:{n}}}")))
        })
        .expect("some partner shares a primary with the DM");
    move |sender| if sender == 1 { first } else { sender + 100 }
}

#[actix_web::test]
async fn a_primary_lost_under_load_loses_no_acknowledged_send() {
    let cluster = RedisCluster::private();
    let app = Arc::new(spawn_on(&cluster, 1).await);
    let partner = partners(&cluster);
    let listener = partner(1);
    // Where the partner's channel was before anything, and a device of theirs, live throughout.
    let start = app.get("/api/list", listener).await.body["state"]["position"].as_str().unwrap().to_owned();
    let mut live = WsClient::authenticated(&app, listener).await;
    let last_words = "after the failover";
    let live = actix_web::rt::spawn(async move {
        // Read all along (a device that stops reading is dropped as a slow consumer).
        loop {
            match live.next().await {
                Incoming::Event(name, data) if name == "new-message" && data["text"] == json!(last_words) => return,
                Incoming::Event(..) => {}
                Incoming::Closed(close) => panic!("the live device was closed: {close:?}"),
            }
        }
    });
    // Senders, each in a DM of its own, until told to stop; each keeps the texts acknowledged and
    // checks every other answer is a 503 with Retry-After.
    const SENDERS: u64 = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (1..=SENDERS)
        .map(|sender| {
            let (app, stop, partner) = (app.clone(), stop.clone(), partner.clone());
            actix_web::rt::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut refused = 0;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let text = format!("{sender}-{n}");
                    let answer = app
                        .client
                        .post(format!("{}/api/user/{}", app.address, partner(sender)))
                        .header("X-Auth-Token", token(sender))
                        .header("Idempotency-Key", text.clone())
                        .json(&json!({"type": "text", "text": text}))
                        .send()
                        .await
                        .expect("chatd answers");
                    match answer.status().as_u16() {
                        201 => acknowledged.push(text),
                        503 => {
                            assert!(answer.headers().contains_key("retry-after"), "a 503 says when to retry");
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("a send answered {other}: {}", answer.text().await.unwrap_or_default()),
                    }
                }
                (acknowledged, refused)
            })
        })
        .collect();

    // Once sends go through, the primary holding sender 1's chat and their partner's channel dies.
    let chat_slot = cluster.slot(&format!("{{dm:1-{listener}}}"));
    let primary = cluster.owner(chat_slot);
    let sends = || {
        let path = format!("/api/user/{listener}");
        let app = app.clone();
        async move {
            let answer = app.post(&path, 1, json!({"type": "text", "text": "probe"})).await;
            json!(answer.status.as_u16())
        }
    };
    let healthy = until(PATIENCE, sends, |status| *status == json!(201)).await;
    assert_eq!(healthy, json!(201), "sends go through before the failover");
    cluster.kill(primary);
    // The replica is promoted; the lost node comes back as its replica (with ack_replicas = 1 a
    // shard acknowledges only while it has a replica). chatd follows by itself, no restart.
    let promoted =
        until(Duration::from_secs(30), || async { json!(cluster.owner(chat_slot)) }, |owner| *owner != json!(primary))
            .await;
    assert_ne!(promoted, json!(primary), "a replica took over");
    cluster.revive(primary);
    let recovered = until(Duration::from_secs(30), sends, |status| *status == json!(201)).await;
    assert_eq!(recovered, json!(201), "chatd takes sends again after the failover");
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for (sender, task) in (1..=SENDERS).zip(senders) {
        let (acknowledged, _refused) = task.await.unwrap();
        let mut stored = std::collections::HashSet::new();
        for page in 1.. {
            let path = format!("/api/user/{}?per_page=100&page={page}", partner(sender));
            let history = app.get(&path, sender).await;
            history.assert_status(200);
            let messages = history.body["messages"].as_array().unwrap();
            if messages.is_empty() {
                break;
            }
            stored.extend(messages.iter().filter_map(|m| m["text"].as_str().map(str::to_owned)));
        }
        for text in &acknowledged {
            assert!(stored.contains(text), "acknowledged {text} is kept after the failover");
        }
        if sender == 1 {
            sent = acknowledged;
        }
    }
    // A device of the partner that resumes from before it all gets every acknowledged message,
    // once the fan-outs the failover interrupted are finished (the repair pass).
    let heard = |since: String| {
        let app = app.clone();
        async move {
            let (mut heard, mut since) = (Vec::new(), since);
            loop {
                let page = app.get(&format!("/api/events?since={since}&limit=1000"), listener).await;
                page.assert_status(200);
                assert_eq!(page.body["recovered"], json!(true), "{}", page.body);
                let events = page.body["events"].as_array().unwrap();
                heard.extend(events.iter().filter_map(|e| e["data"]["text"].as_str()).map(|text| json!(text)));
                since = page.body["position"].as_str().unwrap().to_owned();
                if events.len() < 1000 {
                    return Value::Array(heard);
                }
            }
        }
    };
    let all_heard = |heard: &Value| sent.iter().all(|text| heard.as_array().unwrap().contains(&json!(text)));
    let resumed = until(Duration::from_secs(30), || heard(start.clone()), all_heard).await;
    for text in &sent {
        assert!(
            resumed.as_array().unwrap().contains(&json!(text)),
            "{text} is in the partner's channel for a resuming device"
        );
    }
    // The device that stayed connected hears what is sent now: its subscription followed the
    // channel to the promoted replica.
    app.send_text(1, &format!("/api/user/{listener}"), last_words).await;
    live.await.expect("the live device heard it");
}

#[actix_web::test]
async fn a_shard_added_takes_over_slots_while_chats_go_on() {
    let cluster = RedisCluster::private();
    let app = Arc::new(spawn_on(&cluster, 0).await);
    let partner = partners(&cluster)(1);
    let path = format!("/api/user/{partner}");
    let mut live = WsClient::authenticated(&app, partner).await;
    app.send_text(1, &path, "before the move").await;
    assert_eq!(live.expect("new-message").await["text"], json!("before the move"));

    // A fourth shard; the slot of the chat and of the partner's channel move to it.
    let shard = cluster.add_primary();
    let (chat_slot, channel_slot) =
        (cluster.slot(&format!("{{dm:1-{partner}}}")), cluster.slot(&format!("{{user:{partner}}}")));
    cluster.move_slot(chat_slot, shard);
    if channel_slot != chat_slot {
        cluster.move_slot(channel_slot, shard);
    }
    // chatd follows the move (a send may meet it mid-way and be refused with a 503 meanwhile).
    let sent =
        until(
            PATIENCE,
            || {
                let (app, path) = (app.clone(), path.clone());
                async move {
                    json!(app.post(&path, 1, json!({"type": "text", "text": "after the move"})).await.status.as_u16())
                }
            },
            |status| *status == json!(201),
        )
        .await;
    assert_eq!(sent, json!(201), "sends go on after the move");
    let history = app.get(&format!("{path}?per_page=100"), 1).await;
    let texts: Vec<&str> =
        history.body["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts.first(), Some(&"before the move"), "{texts:?}");
    assert_eq!(texts.last(), Some(&"after the move"), "{texts:?}");
    // The device connected all along hears it: its subscription followed the channel's slot.
    loop {
        match live.next().await {
            Incoming::Event(name, data) if name == "new-message" && data["text"] == json!("after the move") => break,
            Incoming::Event(..) => {}
            Incoming::Closed(close) => panic!("the device was closed: {close:?}"),
        }
    }
    let inbox = app.get("/api/list", partner).await;
    assert_eq!(inbox.body["entries"][0]["latest"]["text"], json!("after the move"), "{}", inbox.body);
}
