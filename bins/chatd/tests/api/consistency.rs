//! Nothing half-written: after concurrent sends, edits and deletes from both sides — and after a
//! chatd killed with SIGKILL in the middle of a load — every conversation's order, list, data
//! hash, latest message and inboxes agree.

use std::collections::{BTreeMap, BTreeSet};

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app, token};
use crate::process::ChatdProcess;
use crate::redis_server::RedisServer;

/// Checks the DM between `a` and `b` (a < b) under `prefix`; returns how many messages it holds.
/// The chat's order holds exactly the messages of its data hash; its list (the original's) holds
/// them in the same order, and the ids of deleted ones (a delete leaves those in the list).
async fn assert_dm_consistent(prefix: &str, a: u64, b: u64) -> usize {
    let mut redis = RedisServer::shared().connection().await;
    let base = format!("{prefix}:messages:myplatform");
    let list: Vec<String> = redis.lrange(format!("{base}:dm:{a}-{b}"), 0, -1).await.unwrap();
    let order: Vec<String> = redis.zrange(format!("{base}:dm:{a}-{b}:order"), 0, -1).await.unwrap();
    let data: BTreeMap<String, String> = redis.hgetall(format!("{base}:dm:{a}-{b}:data")).await.unwrap();
    assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), list.len(), "no id twice in the list");
    assert_eq!(order.iter().collect::<BTreeSet<_>>(), data.keys().collect(), "the order and the data hash agree");
    let listed: Vec<&String> = list.iter().filter(|id| data.contains_key(*id)).collect();
    assert_eq!(listed, order.iter().collect::<Vec<_>>(), "the list holds them all, in the same order");
    let latest: Option<String> = redis.hget(format!("{base}:latest"), format!("dm:{a}-{b}")).await.unwrap();
    assert_eq!(latest.as_ref(), order.last().map(|id| &data[id]), "the latest message is the order's last");
    if !order.is_empty() {
        for (owner, other) in [(a, b), (b, a)] {
            let score: Option<f64> =
                redis.zscore(format!("{base}:inbox:{owner}"), format!("user-{other}")).await.unwrap();
            assert!(score.is_some(), "the DM is in {owner}'s inbox");
        }
    }
    order.len()
}

#[actix_web::test]
async fn concurrent_sends_edits_and_deletes_leave_everything_agreeing() {
    let app = spawn_app(Backend::Redis).await;
    let work = (0..40).map(|n| {
        let app = &app;
        async move {
            let (from, to) = if n % 2 == 0 { (1, "/api/user/2") } else { (2, "/api/user/1") };
            let sent = app.post(to, from, json!({"type": "text", "text": format!("m{n}")})).await;
            assert_eq!(sent.status, StatusCode::CREATED);
            let id = sent.body["entry"]["id"].as_str().unwrap().to_owned();
            match n % 4 {
                0 => assert_eq!(app.delete(&format!("{to}/{id}"), from).await.status, StatusCode::OK),
                1 => assert_eq!(
                    app.post(&format!("{to}/{id}"), from, json!({"text": "edited"})).await.status,
                    StatusCode::OK
                ),
                _ => {}
            }
        }
    });
    futures_util::future::join_all(work).await;
    assert_eq!(assert_dm_consistent(&app.prefix, 1, 2).await, 30);
    // What the API shows agrees too.
    let inbox = app.get("/api/list", 1).await;
    let history = app.get("/api/user/2?per_page=1", 1).await;
    assert_eq!(inbox.body["entries"][0]["latest"], {
        let mut last = history.body["messages"][0].clone();
        last["author"] = last["author"]["id"].clone();
        last
    });
}

#[actix_web::test]
async fn a_chatd_killed_mid_load_leaves_no_conversation_half_written() {
    let prefix = format!("sigkill-{}", std::process::id());
    let mut chatd = ChatdProcess::start(&prefix, &[]).await;
    let client = reqwest::Client::new();
    let address = chatd.address.clone();
    let mut senders = Vec::new();
    for pair in 0..8_u64 {
        let (client, address) = (client.clone(), address.clone());
        senders.push(actix_web::rt::spawn(async move {
            let (a, b) = (100 + pair, 200 + pair);
            for n in 0.. {
                let result = client
                    .post(format!("{address}/api/user/{b}"))
                    .header("X-Auth-Token", token(a))
                    .json(&json!({"type": "text", "text": format!("load {n}")}))
                    .send()
                    .await;
                if result.is_err() {
                    return n;
                }
            }
            unreachable!("the loop ends when chatd is gone")
        }));
    }
    // Let the load run until some messages are in, then kill chatd without warning.
    let mut redis = RedisServer::shared().connection().await;
    loop {
        let stored: u64 = redis.llen(format!("{prefix}:messages:myplatform:dm:100-200")).await.unwrap();
        if stored >= 20 {
            break;
        }
        tokio::task::yield_now().await;
    }
    chatd.kill();
    let mut total = 0;
    for (pair, sender) in senders.into_iter().enumerate() {
        sender.await.unwrap();
        total += assert_dm_consistent(&prefix, 100 + pair as u64, 200 + pair as u64).await;
    }
    assert!(total >= 20);
}
