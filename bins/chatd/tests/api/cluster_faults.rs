//! chatd on a Redis Cluster when things break: the process killed between a send's chat step and
//! its user steps (the test-only failpoint `after-chat-step`), and a primary killed under send
//! load with `redis.ack_replicas = 1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_storage::{ClusterSettings, ClusterStore};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on, test_settings, token, unique};
use crate::process::ChatdProcess;
use crate::redis_cluster::RedisCluster;
use crate::ws_client::PATIENCE;

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

/// A chatd in this process on `cluster`, acknowledging sends once a replica holds them.
async fn spawn_on(cluster: &RedisCluster) -> TestApp {
    let settings = test_settings();
    let store = ClusterStore::connect(&ClusterSettings {
        seeds: cluster.seeds(),
        prefix: unique("chatd-failover"),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_secs(2),
        history: settings.realtime.history_window().unwrap(),
        ack_replicas: 1,
        repair_interval: Duration::from_millis(500),
        failpoint: None,
    })
    .expect("connects");
    spawn_app_on(store, settings, None).await
}

#[actix_web::test]
async fn a_primary_lost_under_load_loses_no_acknowledged_send() {
    let cluster = RedisCluster::private();
    let app = Arc::new(spawn_on(&cluster).await);
    // Senders, each in a DM of its own, until told to stop; each keeps the texts acknowledged and
    // checks every other answer is a 503 with Retry-After.
    const SENDERS: u64 = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (1..=SENDERS)
        .map(|sender| {
            let (app, stop) = (app.clone(), stop.clone());
            actix_web::rt::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut refused = 0;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let text = format!("{sender}-{n}");
                    let answer = app
                        .client
                        .post(format!("{}/api/user/{}", app.address, sender + 100))
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

    // Once sends go through, the primary holding sender 1's chat dies.
    let chat_key = "{dm:1-101}"; // the slot of sender 1's chat
    let primary = cluster.owner(cluster.slot(chat_key));
    let healthy = until(PATIENCE, || app_text_count(&app, 1), |count| count.as_u64() >= Some(5)).await;
    assert!(healthy.as_u64() >= Some(5), "sends go through before the failover");
    cluster.kill(primary);
    // chatd recovers by itself once the replica is promoted: sender 1's chat takes sends again.
    let before = Instant::now();
    let killed_at = app_text_count(&app, 1).await.as_u64().unwrap_or(0);
    let recovered =
        until(Duration::from_secs(30), || app_text_count(&app, 1), |count| count.as_u64() > Some(killed_at + 5)).await;
    assert!(recovered.as_u64() > Some(killed_at + 5), "chatd took sends again after the failover");
    assert_ne!(cluster.owner(cluster.slot(chat_key)), primary, "a replica took over");
    stop.store(true, Ordering::Relaxed);
    let mut refusals = 0;
    for (sender, task) in (1..=SENDERS).zip(senders) {
        let (acknowledged, refused) = task.await.unwrap();
        refusals += refused;
        let mut stored = std::collections::HashSet::new();
        for page in 1.. {
            let history = app.get(&format!("/api/user/{}?per_page=100&page={page}", sender + 100), sender).await;
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
    }
    tracing::info!(refusals, elapsed = ?before.elapsed(), "failover");
}

/// How many messages sender 1's chat holds, as chatd answers (null while it cannot answer).
async fn app_text_count(app: &TestApp, sender: u64) -> Value {
    let answer = app.get(&format!("/api/user/{}?per_page=1", sender + 100), sender).await;
    if answer.status.as_u16() == 200 { answer.body["state"]["total"].clone() } else { Value::Null }
}
