//! The real `chatd` binary as a child process on the test Redis: to be signalled or killed the way
//! an operator or a crash would.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::SECRET;
use crate::redis_server::RedisServer;
use crate::ws_client::{Incoming, PATIENCE, WsClient};

pub struct ChatdProcess {
    child: Child,
    pub address: String,
}

impl ChatdProcess {
    /// Starts `chatd` with keys under `prefix` and these extra environment variables, and waits
    /// until it answers.
    pub async fn start(prefix: &str, environment: &[(&str, &str)]) -> Self {
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
            .stderr(Stdio::inherit())
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
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM was delivered");
        self.child.wait().unwrap()
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
