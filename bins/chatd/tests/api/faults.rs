//! Faults that really happen: Redis killed and restarted under a running chatd. Requests answer
//! 503 while it is gone, and chatd recovers by itself — REST and realtime fan-out alike — without
//! being restarted and without clients reconnecting.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_storage::{RedisSettings, RedisStore};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_on, test_settings};
use crate::ws_client::{PATIENCE, WsClient};

/// A redis-server of this test alone, on a unix socket that survives restarts.
struct PrivateRedis {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `appendonly yes` with `appendfsync always`: every acknowledged write is on disk.
    durable: bool,
}

impl PrivateRedis {
    fn start() -> Self {
        Self::start_with(false)
    }

    fn start_with(durable: bool) -> Self {
        let mut redis = Self { dir: tempfile::tempdir().unwrap(), child: None, durable };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// A store on this Redis under `prefix`, quick to notice it is gone (half a second).
    fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::connect(&RedisSettings {
            url: self.url(),
            prefix: prefix.into(),
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_millis(500),
            history: chat_domain::HistoryWindow::default(),
        })
        .unwrap()
    }

    /// How many subscribers this Redis counts for `channel` (`PUBSUB NUMSUB`).
    async fn numsub(&self, channel: &str) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut direct = client.get_multiplexed_async_connection().await.unwrap();
        let counts: Vec<(String, u64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(&mut direct).await.unwrap();
        counts[0].1
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn restart(&mut self) {
        let persistence: &[&str] =
            if self.durable { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--unixsocketperm", "700"])
            .args(persistence)
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        std::fs::remove_file(self.socket()).ok();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends "after" from user 1 to `path` as soon as chatd takes sends again (polling until a send is
/// accepted, within bounds): the message as stored.
async fn send_once_redis_is_back(app: &TestApp, path: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = app.post(path, 1, json!({"type": "text", "text": "after"})).await;
        if answer.status == StatusCode::CREATED {
            return answer.body["entry"].clone();
        }
        assert!(Instant::now() < deadline, "chatd did not recover: {:#}", answer.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn chatd_rides_out_a_redis_restart() {
    let mut redis = PrivateRedis::start();
    let store = redis.store("faults");
    let app = spawn_app_on(Arc::new(store), test_settings(), None).await;
    let mut listener = WsClient::authenticated(&app, 2).await;
    app.send_text(1, "/api/user/2", "before").await;
    assert_eq!(listener.expect("new-message").await["text"], json!("before"));

    redis.kill();
    let started = Instant::now();
    let down = app.post("/api/user/2", 1, json!({"type": "text", "text": "while down"})).await;
    down.assert_error(503, "STORAGE_UNAVAILABLE");
    assert!(down.headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(5), "answered promptly: {:?}", started.elapsed());
    app.get("/readyz", 1).await.assert_error(503, "STORAGE_UNAVAILABLE");

    redis.restart();
    // chatd re-subscribes on its own: poll the restarted Redis until user 2's channel has its
    // subscriber back (the signal), within bounds. Events published before that are lost: pub/sub
    // keeps nothing for absent subscribers.
    let deadline = Instant::now() + PATIENCE;
    while redis.numsub("faults:events:myplatform:user:2").await != 1 {
        assert!(Instant::now() < deadline, "chatd did not re-subscribe");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Requests go through again.
    let sent = send_once_redis_is_back(&app, "/api/user/2").await;
    // The same WebSocket hears it: the pub/sub subscription came back by itself.
    assert_eq!(listener.expect("new-message").await["id"], sent["id"]);
    assert_eq!(app.get("/readyz", 1).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn every_acknowledged_send_survives_redis_being_killed() {
    let mut redis = PrivateRedis::start_with(true);
    let store = redis.store("durable");
    let app = spawn_app_on(Arc::new(store), test_settings(), None).await;
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let senders = (0..8_u64).map(|sender| {
        let (app, acknowledged, stop) = (&app, &acknowledged, &stop);
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let answer = app
                    .post("/api/user/1000", 1 + sender, json!({"type": "text", "text": format!("{sender}/{n}")}))
                    .await;
                if answer.status == StatusCode::CREATED {
                    let id = answer.body["entry"]["id"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().push((1 + sender, id));
                } else {
                    answer.assert_error(503, "STORAGE_UNAVAILABLE");
                }
            }
        }
    });
    let chaos = async {
        // Kill Redis once some sends are in, and bring it back while the senders go on.
        while acknowledged.lock().unwrap().len() < 50 {
            tokio::task::yield_now().await;
        }
        redis.kill();
        let at_kill = acknowledged.lock().unwrap().len();
        redis.restart();
        while acknowledged.lock().unwrap().len() < at_kill + 50 {
            tokio::task::yield_now().await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    futures_util::join!(futures_util::future::join_all(senders), chaos);

    let client = redis::Client::open(redis.url()).unwrap();
    let mut direct = client.get_multiplexed_async_connection().await.unwrap();
    let acknowledged = acknowledged.into_inner().unwrap();
    for sender in 1..=8_u64 {
        let list: Vec<String> =
            redis::AsyncCommands::lrange(&mut direct, format!("durable:messages:myplatform:dm:{sender}-1000"), 0, -1)
                .await
                .unwrap();
        for (_, id) in acknowledged.iter().filter(|(from, _)| *from == sender) {
            assert_eq!(
                list.iter().filter(|stored| *stored == id).count(),
                1,
                "acknowledged {id} is stored exactly once"
            );
        }
    }
}

#[actix_web::test]
async fn a_topic_subscription_refused_while_redis_is_down_can_be_made_again() {
    let mut redis = PrivateRedis::start();
    let store = redis.store("resubscribe");
    let app = spawn_app_on(Arc::new(store), test_settings(), None).await;
    let mut listener = WsClient::authenticated(&app, 2).await;

    redis.kill();
    listener.send("subscribe", json!({"topic": 5})).await;
    // In REST's words, not Redis's.
    assert_eq!(
        listener.expect("error").await,
        json!({"code": "storage_unavailable", "message": "Storage is unavailable, try again shortly"})
    );
    redis.restart();
    // Once Redis is back, asking again subscribes for real: the topic's messages arrive.
    let deadline = Instant::now() + PATIENCE;
    loop {
        listener.send("subscribe", json!({"topic": 5})).await;
        match listener.next().await {
            crate::ws_client::Incoming::Event(name, data) if name == "subscribed" => {
                assert_eq!(data, json!({"topic": 5}));
                break;
            }
            crate::ws_client::Incoming::Event(name, _) if name == "error" => {
                assert!(Instant::now() < deadline, "the subscription never came through");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let sent = send_once_redis_is_back(&app, "/api/topic/5").await;
    let heard = listener.expect("new-message").await;
    assert_eq!((&heard["id"], &heard["chat"]), (&sent["id"], &json!({"type": "topic", "id": 5})));
}

#[actix_web::test]
async fn positions_survive_a_redis_restart_with_aof() {
    let mut redis = PrivateRedis::start_with(true);
    let app = spawn_app_on(Arc::new(redis.store("aof")), test_settings(), None).await;
    let mut listener = WsClient::authenticated(&app, 2).await;
    app.send_text(1, "/api/user/2", "before").await;
    listener.expect("new-message").await;
    let since = listener.position.clone().expect("a position");
    drop(listener);

    redis.kill();
    redis.restart();
    let first = send_once_redis_is_back(&app, "/api/user/2").await;
    let second = app.send_text(1, "/api/user/2", "after").await;
    // The history and its epoch came back from the append-only file: positions go on.
    let (mut resumed, authenticated) = WsClient::resumed(&app, 2, &since).await;
    assert_eq!((authenticated["recovered"].clone(), authenticated["missed"].clone()), (json!(true), json!(2)));
    assert_eq!(resumed.expect("new-message").await["id"], first["id"]);
    assert_eq!(resumed.expect("new-message").await["id"], second["id"]);
    let (epoch, seq) = since.split_once('-').unwrap();
    assert_eq!(resumed.position, Some(format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 2)));
}

#[actix_web::test]
async fn a_topic_unsubscribed_while_redis_is_down_stays_unsubscribed_when_it_is_back() {
    let mut redis = PrivateRedis::start();
    let store = redis.store("unsubscribe");
    let app = spawn_app_on(Arc::new(store), test_settings(), None).await;
    let mut listener = WsClient::authenticated(&app, 2).await;
    listener.subscribe(5).await;
    let (user, topic) = ("unsubscribe:events:myplatform:user:2", "unsubscribe:events:myplatform:topic:5");
    assert_eq!(redis.numsub(topic).await, 1);

    redis.kill();
    listener.send("unsubscribe", json!({"topic": 5})).await;
    assert_eq!(
        listener.expect("error").await,
        json!({"code": "storage_unavailable", "message": "Storage is unavailable, try again shortly"})
    );
    redis.restart();
    // The connection comes back with the channels chatd still wants (user 2's: the signal that
    // it re-subscribed) and, within bounds, without topic 5's, though Redis never confirmed
    // the UNSUBSCRIBE sent while it was down.
    let deadline = Instant::now() + PATIENCE;
    while redis.numsub(user).await != 1 {
        assert!(Instant::now() < deadline, "chatd did not re-subscribe");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while redis.numsub(topic).await != 0 {
        assert!(Instant::now() < deadline, "topic 5 came back with the reconnection, for nobody");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Once requests go through again (a subscribe reads the topic's position too), subscribing
    // again subscribes for real, and unsubscribing unsubscribes.
    send_once_redis_is_back(&app, "/api/topic/6").await;
    listener.subscribe(5).await;
    assert_eq!(redis.numsub(topic).await, 1);
    let sent = app.send_text(1, "/api/topic/5", "back").await;
    assert_eq!(listener.expect("new-message").await["id"], sent["id"]);
    listener.send("unsubscribe", json!({"topic": 5})).await;
    assert_eq!(listener.expect("unsubscribed").await, json!({"topic": 5}));
    assert_eq!(redis.numsub(topic).await, 0);
}
