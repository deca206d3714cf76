//! Redis only: chatd writes the original service's key layout exactly, reads data the original
//! left behind, and makes each send one atomic script call.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::redis_server::RedisServer;
use crate::ws_client::take_position;

#[actix_web::test]
async fn a_send_writes_the_originals_layout() {
    let app = spawn_app(Backend::Redis).await;
    let dm = app.send_text(1000, "/api/user/99", "numeric ordering: 99 < 1000").await;
    let topic = app.send_text(1000, "/api/topic/42", "in a topic").await;
    let base = format!("{}:messages:myplatform", app.prefix);
    let mut redis = RedisServer::shared().connection().await;

    let list: Vec<String> = redis.lrange(format!("{base}:dm:99-1000"), 0, -1).await.unwrap();
    assert_eq!(list, [dm["id"].as_str().unwrap()]);
    let data: BTreeMap<String, String> = redis.hgetall(format!("{base}:dm:99-1000:data")).await.unwrap();
    let stored = format!(
        r#"{{"id":{},"author":1000,"timestamp":{},"type":"text","text":"numeric ordering: 99 < 1000"}}"#,
        dm["id"], dm["timestamp"]["iso"]
    );
    assert_eq!(data, BTreeMap::from([(dm["id"].as_str().unwrap().to_owned(), stored)]));

    let epoch = |entry: &Value| entry["timestamp"]["epoch"].as_f64().unwrap();
    let inbox_99: Vec<(String, f64)> = redis.zrange_withscores(format!("{base}:inbox:99"), 0, -1).await.unwrap();
    assert_eq!(inbox_99, [("user-1000".to_owned(), epoch(&dm))]);
    let inbox_1000: Vec<(String, f64)> = redis.zrange_withscores(format!("{base}:inbox:1000"), 0, -1).await.unwrap();
    assert_eq!(inbox_1000, [("user-99".to_owned(), epoch(&dm)), ("topic-42".to_owned(), epoch(&topic))]);

    let topic_list: Vec<String> = redis.lrange(format!("{base}:topic:42"), 0, -1).await.unwrap();
    assert_eq!(topic_list, [topic["id"].as_str().unwrap()]);
    let last_active: String = redis.hget(format!("{base}:activity:1000"), "last_active").await.unwrap();
    assert!(last_active.ends_with(" GMT+0000 (Coordinated Universal Time)"), "{last_active}");

    let mut keys: Vec<String> = redis.keys(format!("{}:*", app.prefix)).await.unwrap();
    keys.sort();
    let suffixes: Vec<_> = keys.iter().map(|k| k.trim_start_matches(&base).to_owned()).collect();
    assert_eq!(
        suffixes,
        [
            ":activity:1000",
            ":dm:99-1000",
            ":dm:99-1000:by:1000",
            ":dm:99-1000:data",
            ":dm:99-1000:index",
            ":dm:99-1000:order",
            ":history:topic:42",
            ":history:user:1000",
            ":history:user:99",
            ":inbox:1000",
            ":inbox:99",
            ":latest",
            ":position:topic:42",
            ":position:user:1000",
            ":position:user:99",
            ":topic:42",
            ":topic:42:by:1000",
            ":topic:42:data",
            ":topic:42:index",
            ":topic:42:order",
            ":unread:1000",
            ":unread:99"
        ]
    );
}

#[actix_web::test]
async fn a_send_is_one_atomic_script_call() {
    let app = spawn_app(Backend::Redis).await;
    // The first send loads the script; the one watched is a plain EVALSHA.
    app.send_text(1, "/api/user/2", "warm up").await;
    let client = redis::Client::open(RedisServer::shared().url()).unwrap();
    let monitor = client.get_async_monitor().await.unwrap();
    app.send_text(1, "/api/user/2", "watched").await;
    let sentinel = format!("end-of-{}", app.prefix);
    let mut redis = RedisServer::shared().connection().await;
    redis::cmd("ECHO").arg(&sentinel).query_async::<String>(&mut redis).await.unwrap();

    let mut lines = Vec::new();
    let mut stream = monitor.into_on_message::<String>();
    while let Some(line) = stream.next().await {
        if line.contains(&sentinel) {
            break;
        }
        // This test's chat keys only (not, say, the presence sweep, which runs on its own clock).
        if line.contains(&format!("{}:messages:", app.prefix)) {
            lines.push(line);
        }
    }
    let (in_scripts, top_level): (Vec<_>, Vec<_>) = lines.iter().partition(|line| line.contains(" lua] "));
    assert_eq!(top_level.len(), 1, "one command from chatd: {top_level:#?}");
    assert!(top_level[0].contains("\"EVALSHA\""), "{}", top_level[0]);
    let writes: Vec<_> = ["\"RPUSH\"", "\"HSET\"", "\"ZADD\""]
        .iter()
        .map(|command| in_scripts.iter().filter(|line| line.contains(command)).count())
        .collect();
    // RPUSH the id; HSET the message, last_active and the latest message; ZADD the chat's order,
    // the author's messages there and both inboxes — all inside the script.
    assert_eq!(writes, [1, 3, 4], "{in_scripts:#?}");
}

/// Loads the original's fixture under this test's prefix.
pub async fn load_original_fixture(prefix: &str) {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/original-redis.json")).expect("the fixture is JSON");
    let original_prefix = fixture["prefix"].as_str().unwrap();
    let mut redis = RedisServer::shared().connection().await;
    for (key, entry) in fixture["keys"].as_object().unwrap() {
        let key = key.replacen(original_prefix, prefix, 1);
        let value = &entry["value"];
        match entry["type"].as_str().unwrap() {
            "list" => {
                let items: Vec<&str> = value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                let _: () = redis.rpush(&key, items).await.unwrap();
            }
            "hash" => {
                let fields: Vec<(&str, &str)> =
                    value.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
                let _: () = redis.hset_multiple(&key, &fields).await.unwrap();
            }
            "zset" => {
                for member in value.as_array().unwrap() {
                    let _: () =
                        redis.zadd(&key, member[0].as_str().unwrap(), member[1].as_f64().unwrap()).await.unwrap();
                }
            }
            other => panic!("unexpected type {other} in the fixture"),
        }
    }
}

#[actix_web::test]
async fn chatd_reads_and_extends_what_the_original_wrote() {
    let app = spawn_app(Backend::Redis).await;
    load_original_fixture(&app.prefix).await;

    let history = app.get("/api/user/524376", 388636).await;
    assert_eq!(history.status, StatusCode::OK);
    let mut state = history.body["state"].clone();
    let position = take_position(&mut state).expect("the page's position");
    assert!(position.ends_with("-0"), "the original recorded no events: {position}");
    assert_eq!(
        state,
        json!({
            "key": "myplatform:dm:388636-524376", "page": 1, "per_page": 10, "total": 5, "total_pages": 1,
            "read": {"388636": null, "524376": null},
        })
    );
    let messages = history.body["messages"].as_array().unwrap();
    let ids: Vec<_> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "a6ab410a-826b-45f1-aae1-6f8d8a73d738",
            "f0418e07-ed2d-4220-a5e6-99e2ea459050",
            "68c12f9f-d3fc-438c-9c39-91532aa68df0",
            "b62aa160-8129-4772-be7a-a4626bed5890",
            "01d45f3a-8cbd-4e57-a46c-70df00c41c48",
        ]
    );
    assert_eq!(messages[0]["text"], json!("Hello, world!"));
    assert_eq!(messages[0]["timestamp"], json!({"epoch": 1795613394837_i64, "iso": "2026-11-25T13:29:54.837Z"}));
    assert_eq!(messages[0]["author"], json!({"id": 388636, "username": "user-388636"}));
    assert_eq!(messages[2]["image"], json!({"url": "https://example.com/cat.png", "width": 640, "height": 480}));
    assert_eq!(messages[4]["status"], json!("seen"));

    let inbox = app.get("/api/list", 388636).await;
    let entries = inbox.body["entries"].as_array().unwrap();
    assert_eq!(inbox.body["state"]["total"], json!(2));
    assert_eq!((entries[0]["type"].clone(), entries[0]["id"].clone()), (json!("user"), json!(524376)));
    assert_eq!(entries[0]["latest"]["id"], json!("01d45f3a-8cbd-4e57-a46c-70df00c41c48"));
    assert_eq!(entries[0]["timestamp"]["epoch"], json!(1795613395533_i64));
    assert_eq!((entries[1]["type"].clone(), entries[1]["id"].clone()), (json!("topic"), json!(42)));
    assert_eq!(entries[1]["latest"]["text"], json!("second post in topic 42"));
    // The entry's timestamp is the inbox score — when 388636 last posted in the topic — even though
    // the topic's latest message (by 524376) is newer.
    assert_eq!(entries[1]["timestamp"], json!({"epoch": 1795613395159_i64, "iso": "2026-11-25T13:29:55.159Z"}));
    assert_eq!(entries[1]["latest"]["timestamp"]["epoch"], json!(1795613395224_i64));

    // 99 < 1000 numerically, so both sides find dm:99-1000.
    assert_eq!(app.texts("/api/user/1000", 99).await, ["numeric ordering: 99 < 1000"]);
    assert_eq!(app.get("/api/list", 99).await.body["entries"][0]["latest"]["author"], json!(1000));

    // chatd keeps writing the same conversation in the same format.
    let sent = app.send_text(524376, "/api/user/388636", "chatd was here").await;
    let edited = app
        .post("/api/user/524376/b62aa160-8129-4772-be7a-a4626bed5890", 388636, json!({"text": "edited by chatd"}))
        .await;
    assert_eq!(edited.status, StatusCode::OK);
    assert_eq!(edited.body["entry"]["timestamp"]["iso"], json!("2026-11-25T13:29:55.030Z"));
    let history = app.get("/api/user/524376?per_page=2", 388636).await;
    assert_eq!(history.body["state"]["total"], json!(6));
    assert_eq!(history.body["messages"][1]["id"], sent["id"]);
    let mut redis = RedisServer::shared().connection().await;
    let stored: String = redis
        .hget(
            format!("{}:messages:myplatform:dm:388636-524376:data", app.prefix),
            "b62aa160-8129-4772-be7a-a4626bed5890",
        )
        .await
        .unwrap();
    assert_eq!(
        stored,
        r#"{"id":"b62aa160-8129-4772-be7a-a4626bed5890","author":388636,"timestamp":"2026-11-25T13:29:55.030Z","type":"text","text":"edited by chatd"}"#
    );
}

/// `user`'s unread count per inbox entry, and their `unread_total`.
async fn unread_of(app: &crate::helpers::TestApp, user: u64) -> (Vec<(String, u64)>, u64) {
    let inbox = app.get("/api/list?per_page=100", user).await;
    inbox.assert_status(200);
    let counts = inbox.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (format!("{}-{}", entry["type"].as_str().unwrap(), entry["id"]), entry["unread"].as_u64().unwrap())
        })
        .collect();
    (counts, inbox.body["state"]["unread_total"].as_u64().unwrap())
}

fn counts(entries: &[(&str, u64)]) -> Vec<(String, u64)> {
    entries.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect()
}

#[actix_web::test]
async fn the_originals_chats_count_as_unread_from_the_start() {
    let app = spawn_app(Backend::Redis).await;
    load_original_fixture(&app.prefix).await;
    // A send before anything was read or indexed: the original's messages still count.
    let new = app.send_text(524376, "/api/user/388636", "new").await;
    assert_eq!(unread_of(&app, 388636).await, (counts(&[("user-524376", 3), ("topic-42", 1)]), 3));
    assert_eq!(unread_of(&app, 524376).await, (counts(&[("user-388636", 3), ("topic-42", 1)]), 3));
    assert_eq!(unread_of(&app, 99).await, (counts(&[("user-1000", 1)]), 1));
    assert_eq!(unread_of(&app, 1000).await, (counts(&[("user-99", 0)]), 0));

    let dm = "/api/user/524376";
    let history = app.get(dm, 388636).await;
    assert_eq!(history.body["state"]["read"], json!({"388636": null, "524376": null}));
    let read =
        app.post(&format!("{dm}/read"), 388636, json!({"message": "f0418e07-ed2d-4220-a5e6-99e2ea459050"})).await;
    read.assert_status(200);
    assert_eq!(read.body["read"], json!({"message": "f0418e07-ed2d-4220-a5e6-99e2ea459050", "unread": 2}));
    // The original's messages keep their order for cursors too.
    let page = app.get(&format!("{dm}?before=01d45f3a-8cbd-4e57-a46c-70df00c41c48&per_page=2"), 388636).await;
    let ids: Vec<_> = page.body["messages"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!("68c12f9f-d3fc-438c-9c39-91532aa68df0"), json!("b62aa160-8129-4772-be7a-a4626bed5890")]);
    assert_eq!(page.body["state"]["more"], json!(true));
    let page = app.get(&format!("{dm}?after=01d45f3a-8cbd-4e57-a46c-70df00c41c48"), 388636).await;
    assert_eq!(page.body["messages"][0]["id"], new["id"]);
    // Deleting one of the original's unread messages uncounts it.
    app.delete("/api/user/388636/01d45f3a-8cbd-4e57-a46c-70df00c41c48", 524376).await.assert_status(200);
    assert_eq!(unread_of(&app, 388636).await, (counts(&[("user-524376", 1), ("topic-42", 1)]), 1));
    let history = app.get("/api/user/388636", 524376).await;
    assert_eq!(
        history.body["state"]["read"],
        json!({"388636": "f0418e07-ed2d-4220-a5e6-99e2ea459050", "524376": null})
    );
}

/// A DM between users 1 and 2 of 1,200 messages in the original's layout (list and data hash, no
/// index, in both inboxes): message k (1-based) says "k" and is user 1's when k is a multiple of 3.
/// Returns the app and the ids, oldest first.
async fn a_long_chat_of_the_original() -> (TestApp, Vec<String>) {
    let app = spawn_app(Backend::Redis).await;
    let base = format!("{}:messages:myplatform", app.prefix);
    let mut redis = RedisServer::shared().connection().await;
    let ids: Vec<String> = (1..=1200).map(|k| format!("00000000-0000-4000-8000-{k:012}")).collect();
    let records: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let k = index + 1;
            let author = if k.is_multiple_of(3) { 1 } else { 2 };
            let json = format!(
                r#"{{"id":"{id}","author":{author},"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"{k}"}}"#
            );
            (id.clone(), json)
        })
        .collect();
    let _: () = redis.rpush(format!("{base}:dm:1-2"), &ids).await.unwrap();
    let _: () = redis.hset_multiple(format!("{base}:dm:1-2:data"), &records).await.unwrap();
    let _: () = redis.zadd(format!("{base}:inbox:1"), "user-2", 1795613394837_i64).await.unwrap();
    let _: () = redis.zadd(format!("{base}:inbox:2"), "user-1", 1795613394837_i64).await.unwrap();
    (app, ids)
}

fn texts(answer: &crate::helpers::Answer) -> Vec<String> {
    answer.body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn a_long_chat_of_the_original_is_indexed_in_steps() {
    let (app, ids) = a_long_chat_of_the_original().await;

    assert_eq!(unread_of(&app, 1).await, (counts(&[("user-2", 800)]), 800));
    assert_eq!(unread_of(&app, 2).await, (counts(&[("user-1", 400)]), 400));
    let page = app.get(&format!("/api/user/2?before={}&per_page=3", ids[699]), 1).await;
    assert_eq!(texts(&page), ["697", "698", "699"]);
    let page = app.get(&format!("/api/user/2?after={}&per_page=3", ids[1197]), 1).await;
    assert_eq!(
        (texts(&page), page.body["state"]["more"].clone()),
        (vec!["1199".to_owned(), "1200".to_owned()], json!(false))
    );
    let read = app.post("/api/user/2/read", 1, json!({"message": ids[599]})).await;
    assert_eq!(read.body["read"], json!({"message": ids[599], "unread": 400}));
    assert_eq!(unread_of(&app, 1).await, (counts(&[("user-2", 400)]), 400));
}

#[actix_web::test]
async fn deletes_in_a_long_chat_leave_pages_and_the_latest_message_exact() {
    let (app, ids) = a_long_chat_of_the_original().await;
    // The first delete indexes the chat (in steps), then takes the message out of its order: the
    // id stays in the original's list, and every page shows exactly the remaining messages.
    app.delete(&format!("/api/user/2/{}", ids[599]), 1).await.assert_status(200);
    let mut remaining: Vec<String> = (1..=1200).filter(|&k| k != 600).map(|k| k.to_string()).collect();
    let page = |skip: usize, per_page: usize, remaining: &[String]| -> Vec<String> {
        remaining[remaining.len() - skip - per_page..remaining.len() - skip].to_vec()
    };
    let answer = app.get("/api/user/2?page=6&per_page=100", 1).await;
    assert_eq!((texts(&answer), answer.body["state"]["total"].clone()), (page(500, 100, &remaining), json!(1199)));
    let answer = app.get("/api/user/1?page=1&per_page=10", 2).await;
    assert_eq!(texts(&answer), page(0, 10, &remaining));
    let mut redis = RedisServer::shared().connection().await;
    let list: Vec<String> = redis.lrange(format!("{}:messages:myplatform:dm:1-2", app.prefix), 0, -1).await.unwrap();
    assert_eq!(list, ids, "the list keeps the deleted id");

    // Deleting the latest makes the one before it the latest; editing that one edits the latest.
    app.delete(&format!("/api/user/2/{}", ids[1199]), 1).await.assert_status(200);
    remaining.pop();
    let inbox = app.get("/api/list", 1).await;
    assert_eq!(inbox.body["entries"][0]["latest"]["text"], json!("1199"));
    app.post(&format!("/api/user/1/{}", ids[1198]), 2, json!({"text": "edited"})).await.assert_status(200);
    let inbox = app.get("/api/list", 2).await;
    assert_eq!(inbox.body["entries"][0]["latest"]["text"], json!("edited"));
    let answer = app.get("/api/user/2?page=12&per_page=100", 1).await;
    assert_eq!((texts(&answer), answer.body["state"]["total"].clone()), (page(1100, 98, &remaining), json!(1198)));
}
