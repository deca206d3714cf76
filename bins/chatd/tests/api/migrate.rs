//! `chatd migrate`: a standalone deployment — the original's keys and chatd's own — copied into the
//! cluster layout by the real binary, then served by chatd on the cluster exactly as before; a
//! second run changes nothing, a dry run writes nothing, an interrupted run resumes, and the
//! verification catches a key missing in the target.

use std::collections::BTreeMap;
use std::process::Command;

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_on_prefix, token};
use crate::layout::load_original_fixture;
use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

/// What a run of `chatd migrate` printed, and how it ended.
struct Run {
    code: i32,
    stdout: String,
}

/// Runs `chatd migrate --from <the test redis-server> --to-cluster <the test cluster's nodes>` with
/// `args`, the prefix given by chatd's setting (`CHATD_REDIS__PREFIX`).
async fn migrate(prefix: &str, args: &[&str]) -> Run {
    migrate_with_setting(prefix, args).await
}

/// [`migrate`] with `CHATD_REDIS__PREFIX=<setting>` (which `--prefix` overrides).
async fn migrate_with_setting(setting: &str, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatd"));
    command
        .env_clear()
        .env("CHATD_REDIS__PREFIX", setting)
        .env("CHATD_LOG__FILTER", "warn")
        .arg("migrate")
        .arg("--from")
        .arg(RedisServer::shared().url())
        .arg("--to-cluster")
        .args(RedisCluster::shared().seeds())
        .args(args);
    let output = actix_web::rt::task::spawn_blocking(move || command.output().expect("chatd runs")).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // Shown when a test fails (the harness captures it otherwise): the command's whole output.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("chatd migrate {args:?}:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    Run { code: output.status.code().unwrap_or(-1), stdout }
}

/// A send with an `Idempotency-Key`: status and body.
async fn send_with_key(app: &TestApp, from: u64, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let answer = app
        .client
        .post(format!("{}{path}", app.address))
        .header("X-Auth-Token", token(from))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("the send is answered");
    (answer.status().as_u16(), answer.json().await.expect("a JSON body"))
}

/// The idempotent send of [`standalone_world`].
fn idempotent_send() -> (u64, &'static str, &'static str, Value) {
    (1, "/api/user/3", "retry-1", json!({"type": "text", "text": "sent once"}))
}

/// A standalone chatd whose Redis holds the original's data (chats it never indexed) and chatd's
/// own: DMs, a topic, reads, an edit, a delete and an idempotent send.
async fn standalone_world() -> TestApp {
    let app = spawn_app(Backend::Redis).await;
    load_original_fixture(&app.prefix).await;
    let one = app.send_text(1, "/api/user/2", "one").await;
    app.send_text(2, "/api/user/1", "two").await;
    let three = app.send_text(1, "/api/user/2", "three").await;
    app.send_text(1, "/api/user/2", "four").await;
    app.send_text(3, "/api/user/1", "from three").await;
    app.send_text(1, "/api/topic/77", "in a topic").await;
    let topic = app.send_text(2, "/api/topic/77", "me too").await;
    app.post("/api/user/1/read", 2, json!({"message": three["id"]})).await.assert_status(200);
    app.post("/api/topic/77/read", 1, json!({"message": topic["id"]})).await.assert_status(200);
    let edit = format!("/api/user/2/{}", three["id"].as_str().unwrap());
    app.post(&edit, 1, json!({"text": "three, edited"})).await.assert_status(200);
    app.delete(&format!("/api/user/2/{}", one["id"].as_str().unwrap()), 1).await.assert_status(200);
    let (from, path, key, body) = idempotent_send();
    assert_eq!(send_with_key(&app, from, path, key, &body).await.0, 201);
    app
}

/// Reads `GET /api/events` (from no position of theirs) on every channel [`answers`] shows a
/// position of — each user's own, and the topics' — as clients connected before a move would have:
/// it starts the channels' positions without reading, and so indexing, any chat.
async fn start_positions(app: &TestApp) {
    for user in USERS {
        app.get("/api/events?since=0-0", user).await.assert_status(200);
    }
    for (user, topic) in [(1, 77), (388636, 42)] {
        app.get(&format!("/api/events?since=0-0&topic={topic}"), user).await.assert_status(200);
    }
}

/// The users of [`standalone_world`].
const USERS: [u64; 7] = [1, 2, 3, 99, 1000, 388636, 524376];

/// Every answer the comparison looks at: each user's inbox, each chat's history as each of its
/// participants sees it, and the idempotent send retried.
async fn answers(app: &TestApp) -> BTreeMap<String, Value> {
    let mut answers = BTreeMap::new();
    for user in USERS {
        let inbox = app.get("/api/list?per_page=100", user).await;
        inbox.assert_status(200);
        answers.insert(format!("inbox of {user}"), inbox.body);
    }
    let chats = [
        (1, "/api/user/2"),
        (2, "/api/user/1"),
        (1, "/api/user/3"),
        (3, "/api/user/1"),
        (99, "/api/user/1000"),
        (1000, "/api/user/99"),
        (388636, "/api/user/524376"),
        (524376, "/api/user/388636"),
        (1, "/api/topic/77"),
        (2, "/api/topic/77"),
        (388636, "/api/topic/42"),
        (524376, "/api/topic/42"),
    ];
    for (user, path) in chats {
        let history = app.get(&format!("{path}?per_page=100"), user).await;
        history.assert_status(200);
        answers.insert(format!("{path} as {user}"), history.body);
    }
    let (from, path, key, body) = idempotent_send();
    let (status, replayed) = send_with_key(app, from, path, key, &body).await;
    answers.insert("the idempotent send retried".into(), json!({"status": status, "body": replayed}));
    answers
}

/// Every key under `prefix` on the cluster's primaries with its `DUMP` (its type and content),
/// but the migration's progress.
fn cluster_snapshot(prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let cluster = RedisCluster::shared();
    let mut keys = BTreeMap::new();
    for port in cluster.primaries() {
        let mut node = cluster.node(port);
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut node)
                .unwrap();
            for key in found {
                let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut node).unwrap();
                keys.insert(key, dump);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    keys.remove(&format!("{prefix}:migration"));
    keys
}

/// Every key under `prefix` on the test redis-server with its `DUMP`.
async fn source_snapshot(prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut redis = RedisServer::shared().connection().await;
    let names: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    let mut keys = BTreeMap::new();
    for key in names {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut redis).await.unwrap();
        keys.insert(key, dump);
    }
    keys
}

/// A cluster connection to the test cluster.
fn cluster_connection() -> redis::cluster::ClusterConnection {
    redis::cluster::ClusterClient::new(RedisCluster::shared().seeds()).unwrap().get_connection().unwrap()
}

#[actix_web::test]
async fn a_migrated_deployment_answers_on_the_cluster_as_it_did_standalone() {
    let standalone = standalone_world().await;
    let prefix = standalone.prefix.clone();
    // A second tenant under the prefix, with a DM the original wrote.
    let other = format!("{prefix}:messages:second");
    let mut redis = RedisServer::shared().connection().await;
    let message = r#"{"id":"b0b0b0b0-0000-4000-8000-000000000001","author":5,"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"hi"}"#;
    let _: () = redis.rpush(format!("{other}:dm:5-6"), "b0b0b0b0-0000-4000-8000-000000000001").await.unwrap();
    let _: () =
        redis.hset(format!("{other}:dm:5-6:data"), "b0b0b0b0-0000-4000-8000-000000000001", message).await.unwrap();
    let _: () = redis.zadd(format!("{other}:inbox:5"), "user-6", 1_795_613_394_837_u64).await.unwrap();

    // Clients were connected before the move: each channel has its position, which the move
    // carries over, so that they resume on the cluster where they stopped.
    start_positions(&standalone).await;
    let run = migrate(&prefix, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    // The original's chats were indexed first (chatd's own were already). How many by the chat
    // pass and how many through an inbox depends on the order SCAN meets them in; every one is
    // indexed either way (a second run finds none left, below).
    assert!(run.stdout.contains("7 chats, indexed ") && run.stdout.contains("8 inboxes, indexed 5"), "{}", run.stdout);
    assert!(run.stdout.contains("0 mismatch(es)"), "{}", run.stdout);
    let copied = cluster_snapshot(&prefix);
    let base = format!("{prefix}:messages:myplatform");
    for key in [
        format!("{base}:{{dm:1-2}}"),
        format!("{base}:{{dm:1-2}}:latest"),
        format!("{base}:{{dm:99-1000}}:index"),
        format!("{base}:{{topic:42}}:order"),
        format!("{base}:inbox:{{user:388636}}"),
        format!("{base}:history:{{user:2}}"),
        format!("{base}:{{dm:1-3}}:idempotency:1:retry-1"),
        format!("{base}:idempotency:{{user:1}}:retry-1"),
        format!("{other}:{{dm:5-6}}:data"),
        format!("{other}:{{dm:5-6}}:index"),
        format!("{other}:inbox:{{user:5}}"),
    ] {
        assert!(copied.contains_key(&key), "{key} is copied: {:#?}", copied.keys());
    }
    assert!(!copied.keys().any(|key| key.contains(":presence:") || (key.ends_with(":latest") && !key.contains('}'))));

    let expected = answers(&standalone).await;
    let cluster = spawn_on_prefix(Backend::Cluster, &prefix).await;
    let found = answers(&cluster).await;
    for (what, answer) in &expected {
        assert_eq!(found.get(what), Some(answer), "{what}");
    }
    let replay = &found["the idempotent send retried"];
    assert_eq!(replay["status"], 201, "{replay:#}");
    // The cluster's chatd goes on where the standalone one stopped.
    let next = cluster.send_text(2, "/api/user/1", "on the cluster").await;
    let texts = cluster.texts("/api/user/1?per_page=100", 2).await;
    assert_eq!(texts, ["two", "three, edited", "four", "on the cluster"], "{next:#}");
    // The second tenant's chat is served there too (read by the DM's participant, counted unread).
    let mut settings = crate::helpers::test_settings();
    settings.chat.handle = "second".into();
    let second = crate::helpers::spawn_app_with_prefix(Backend::Cluster, settings, &prefix).await;
    assert_eq!(second.texts("/api/user/5", 6).await, ["hi"]);
    let inbox = second.get("/api/list", 5).await;
    assert_eq!(inbox.body["entries"][0]["latest"]["text"], "hi", "{:#}", inbox.body);
    second.shut_down();
    cluster.shut_down();
    standalone.shut_down();
}

#[actix_web::test]
async fn a_second_run_changes_nothing_and_a_restarted_one_copies_the_same() {
    let standalone = standalone_world().await;
    let prefix = standalone.prefix.clone();
    assert_eq!(migrate(&prefix, &[]).await.code, 0);
    let source = source_snapshot(&prefix).await;
    let target = cluster_snapshot(&prefix);

    let again = migrate(&prefix, &[]).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(again.stdout.contains("an earlier run finished the copy"), "{}", again.stdout);
    assert!(again.stdout.contains("indexed 0;") && again.stdout.contains("indexed 0\n"), "{}", again.stdout);
    assert!(again.stdout.contains("0 mismatch(es)"), "{}", again.stdout);
    assert_eq!(source_snapshot(&prefix).await, source, "the source is unchanged");
    assert_eq!(cluster_snapshot(&prefix), target, "the target is unchanged");

    let restarted = migrate(&prefix, &["--restart"]).await;
    assert_eq!(restarted.code, 0, "{}", restarted.stdout);
    assert!(restarted.stdout.contains("chat lists"), "{}", restarted.stdout);
    assert_eq!(source_snapshot(&prefix).await, source);
    assert_eq!(cluster_snapshot(&prefix), target, "copying again gives the same keys");
    standalone.shut_down();
}

#[actix_web::test]
async fn a_dry_run_reports_and_writes_nothing() {
    let standalone = standalone_world().await;
    let prefix = standalone.prefix.clone();
    let source = source_snapshot(&prefix).await;

    // The prefix given by `--prefix` wins over chatd's setting.
    let run = migrate_with_setting("senna-sockets", &["--prefix", &prefix, "--dry-run"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    // The original's two DMs and topic wait to be indexed, and the inboxes holding them.
    assert!(run.stdout.contains("would index 3;"), "{}", run.stdout);
    assert!(run.stdout.contains("would copy"), "{}", run.stdout);
    assert!(run.stdout.contains("chat lists"), "{}", run.stdout);
    assert!(run.stdout.contains("idempotency results"), "{}", run.stdout);
    assert!(!run.stdout.contains("verify"), "{}", run.stdout);
    assert_eq!(source_snapshot(&prefix).await, source, "nothing written in the source, not even an index");
    let mut cluster = cluster_connection();
    let progress: bool = redis::cmd("EXISTS").arg(format!("{prefix}:migration")).query(&mut cluster).unwrap();
    assert!(!progress, "no progress kept");
    assert_eq!(cluster_snapshot(&prefix), BTreeMap::new(), "nothing written in the target");
    standalone.shut_down();
}

#[actix_web::test]
async fn an_interrupted_migration_resumes_where_it_stopped() {
    let standalone = standalone_world().await;
    let prefix = standalone.prefix.clone();

    let stopped = migrate(&prefix, &["--batch", "5", "--stop-after-batches", "1"]).await;
    assert_eq!(stopped.code, 0, "{}", stopped.stdout);
    assert!(stopped.stdout.contains("run again to resume"), "{}", stopped.stdout);
    let mut cluster = cluster_connection();
    let progress: BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(format!("{prefix}:migration")).query(&mut cluster).unwrap();
    assert_ne!(progress.get("cursor").map(String::as_str), Some("0"), "{progress:?}");
    assert!(!progress.contains_key("done"), "{progress:?}");

    let resumed = migrate(&prefix, &["--batch", "5"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stdout);
    assert!(resumed.stdout.contains("resumed where an earlier run stopped"), "{}", resumed.stdout);
    assert!(resumed.stdout.contains("0 mismatch(es)"), "{}", resumed.stdout);
    standalone.shut_down();
}

#[actix_web::test]
async fn the_verification_catches_a_key_missing_in_the_target() {
    let standalone = standalone_world().await;
    let prefix = standalone.prefix.clone();
    assert_eq!(migrate(&prefix, &[]).await.code, 0);
    let base = format!("{prefix}:messages:myplatform");
    let mut cluster = cluster_connection();
    let deleted: u32 = redis::cmd("DEL").arg(format!("{base}:{{dm:1-2}}:data")).query(&mut cluster).unwrap();
    assert_eq!(deleted, 1);
    let _: u32 =
        redis::cmd("ZREM").arg(format!("{base}:inbox:{{user:388636}}")).arg("topic-42").query(&mut cluster).unwrap();

    let run = migrate(&prefix, &["--verify-only"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("2 mismatch(es)"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("{base}:dm:1-2:data -> {base}:{{dm:1-2}}:data: expected hash of 3, found none of 0")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("{base}:inbox:{{user:388636}}: expected zset of 2, found zset of 1")),
        "{}",
        run.stdout
    );
    standalone.shut_down();
}
