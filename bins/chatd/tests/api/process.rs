//! The real `chatd` binary as a child process on the test Redis: to be signalled or killed the way
//! an operator or a crash would.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{SECRET, token};
use crate::realtime_socketio::next_text;
use crate::redis_server::RedisServer;
use crate::ws_client::{Incoming, PATIENCE, WsClient, connect_small};

pub struct ChatdProcess {
    child: Child,
    pub address: String,
}

impl ChatdProcess {
    /// Starts `chatd` with keys under `prefix` and these extra environment variables, and waits
    /// until it answers.
    pub async fn start(prefix: &str, environment: &[(&str, &str)]) -> Self {
        Self::launch(prefix, environment, Stdio::inherit()).await
    }

    /// Like [`Self::start`], with chatd's log (stderr) written to `log`.
    pub async fn start_logging(prefix: &str, environment: &[(&str, &str)], log: &std::path::Path) -> Self {
        Self::launch(prefix, environment, Stdio::from(std::fs::File::create(log).unwrap())).await
    }

    async fn launch(prefix: &str, environment: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .env_clear()
            .env("CHATD_HTTP__HOST", "127.0.0.1")
            .env("CHATD_HTTP__PORT", port.to_string())
            .env("CHATD_HTTP__WORKERS", "1")
            .env("CHATD_REDIS__URL", RedisServer::shared().url())
            .env("CHATD_REDIS__PREFIX", prefix)
            .env("CHATD_JWT__SECRET", SECRET)
            .env("CHATD_LOG__FILTER", "warn")
            .env("CHATD_LIMITS__SENDS_PER_SECOND", "0")
            .envs(environment.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the chatd binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        // Poll until the process answers: its readiness is the signal.
        while client.get(&address).send().await.is_err() {
            assert!(Instant::now() < deadline, "chatd did not start listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, address }
    }

    /// The `ws://` URL of a path.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.address.replacen("http://", "ws://", 1))
    }

    /// SIGKILL: no goodbye, no cleanup.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.wait().unwrap()
    }

    /// SIGSTOP: the process stalls (as under a long pause or an overloaded host) until resumed.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT: a paused process goes on.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} was delivered");
    }
}

impl Drop for ChatdProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[actix_web::test]
async fn sigterm_closes_websockets_with_going_away_and_exits_cleanly() {
    let mut chatd = ChatdProcess::start("chatd-sigterm", &[]).await;
    let mut client = WsClient::connect(chatd.ws_url(&format!("/ws?token={}", crate::helpers::token(1)))).await;
    assert_eq!(client.expect("authenticated").await, json!({"user": 1}));
    let status = actix_web::rt::task::spawn_blocking(move || chatd.terminate()).await.unwrap();
    assert_eq!(client.next().await, Incoming::Closed(Some((1001, "server shutting down".into()))));
    assert!(status.success(), "chatd exits 0 on SIGTERM: {status}");
}

/// Which door a client that stops reading uses.
#[derive(Clone, Copy)]
enum Door {
    Ws,
    SocketIo,
}

/// A client that stopped reading (its socket buffers full, chatd's writes to it blocked) holds
/// neither its connection nor the process: SIGTERM ends chatd promptly, not after
/// `http.shutdown_timeout_seconds`.
async fn sigterm_exits_promptly_though_a_client_stopped_reading(door: Door) {
    let mut chatd = ChatdProcess::start(
        "chatd-stuck-reader",
        &[("CHATD_REALTIME__QUEUE_CAPACITY", "4"), ("CHATD_CHAT__MAX_TEXT_CHARS", "60000")],
    )
    .await;
    let api = chatd.address.clone();
    let post = |text: String| {
        let client = reqwest::Client::new();
        let url = format!("{api}/api/user/2");
        async move {
            let answer = client
                .post(url)
                .header("X-Auth-Token", token(1))
                .json(&json!({"type": "text", "text": text}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
        }
    };
    // User 1 watches user 2's presence (they share a DM).
    post("we share a DM".into()).await;
    let mut watcher = WsClient::connect(chatd.ws_url(&format!("/ws?token={}", token(1)))).await;
    assert_eq!(watcher.expect("authenticated").await, json!({"user": 1}));
    // User 2 connects on a socket with a small receive buffer, authenticates, and never reads again.
    let stuck = match door {
        Door::Ws => {
            let mut stuck = connect_small(chatd.ws_url(&format!("/ws?token={}", token(2)))).await;
            assert!(next_text(&mut stuck).await.contains("\"authenticated\""));
            stuck
        }
        Door::SocketIo => {
            let url = chatd.ws_url(&format!("/socket.io/?EIO=4&transport=websocket&token={}", token(2)));
            let mut stuck = connect_small(url).await;
            assert!(next_text(&mut stuck).await.starts_with('0'));
            stuck.send(Message::text("40")).await.unwrap();
            assert!(next_text(&mut stuck).await.starts_with("40{"));
            assert!(next_text(&mut stuck).await.starts_with("42[\"authenticated\""));
            stuck
        }
    };
    // Events pile up until chatd gives up on user 2 (its queue overflowed behind the full socket):
    // user 1 hears user 2 leave. That is the signal that chatd's writes to the socket are blocked.
    let text = "x".repeat(50_000);
    let gave_up = async {
        loop {
            match watcher.next().await {
                Incoming::Event(name, data) if name == "presence" && data["status"] == "inactive" => {
                    assert_eq!(data["user"], json!(2));
                    return;
                }
                Incoming::Event(..) => {}
                closed @ Incoming::Closed(_) => panic!("the watcher was closed: {closed:?}"),
            }
        }
    };
    let flood = async {
        for n in 0..400 {
            post(format!("{n} {text}")).await;
        }
    };
    tokio::select! {
        () = gave_up => {}
        () = flood => panic!("400 events of 50 kB did not fill the socket"),
    }

    let started = Instant::now();
    let status = actix_web::rt::task::spawn_blocking(move || chatd.terminate()).await.unwrap();
    let took = started.elapsed();
    assert!(status.success(), "chatd exits 0 on SIGTERM: {status}");
    // The shutdown timeout is 30 s; a close handshake that cannot complete is cut after a second.
    assert!(took < Duration::from_secs(5), "chatd took {took:?} to exit");
    drop(stuck);
}

#[actix_web::test]
async fn sigterm_exits_promptly_though_a_ws_client_stopped_reading() {
    sigterm_exits_promptly_though_a_client_stopped_reading(Door::Ws).await;
}

#[actix_web::test]
async fn sigterm_exits_promptly_though_a_socketio_client_stopped_reading() {
    sigterm_exits_promptly_though_a_client_stopped_reading(Door::SocketIo).await;
}

#[actix_web::test]
async fn the_access_log_has_a_line_per_request_unless_it_is_filtered_out() {
    for (filter, logged) in [("info", true), ("info,chatd::http=warn", false)] {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut chatd =
            ChatdProcess::start_logging("chatd-access-log", &[("CHATD_LOG__FILTER", filter)], log.path()).await;
        assert!(reqwest::get(format!("{}/healthz", chatd.address)).await.unwrap().status().is_success());
        assert!(chatd.terminate().success());
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(text.contains("listening"), "{filter}: chatd logged at all: {text}");
        assert_eq!(text.contains("\"GET /healthz\" 200"), logged, "{filter}: {text}");
    }
}
