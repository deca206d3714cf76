//! A private `redis-server` for this test binary: started on first use on a unix socket in a
//! temporary folder, stopped when the test process ends.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running server.
pub struct RedisServer {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// The shared server of this test binary, started on first use.
    pub fn shared() -> &'static RedisServer {
        static SERVER: OnceLock<RedisServer> = OnceLock::new();
        SERVER.get_or_init(RedisServer::start)
    }

    /// `unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A connection for looking at what chatd wrote.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("the test redis-server answers")
    }

    fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let socket = dir.path().join("redis.sock");
        let mut args: Vec<String> = ["--port", "0", "--unixsocketperm", "700"].map(String::from).into();
        args.extend(["--unixsocket".into(), socket.display().to_string()]);
        args.extend(["--dir".into(), dir.path().display().to_string()]);
        spawn(args);
        wait_until_ready(&socket);
        RedisServer { socket, _dir: dir }
    }
}

/// Starts `redis-server` with `args`, to live as long as this test process. The child is tied to
/// the thread that forks it (PR_SET_PDEATHSIG fires when that thread ends), so it is forked from a
/// thread that lives as long as the process, and dies with it.
/// A test's server keeps nothing on disk and runs in the foreground.
pub fn spawn(args: Vec<String>) {
    let mut args = args;
    args.extend(["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"].map(String::from));
    let (started, result) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("redis-server".into())
        .spawn(move || {
            let mut command = Command::new("redis-server");
            command.args(args).stdout(Stdio::null()).stderr(Stdio::inherit());
            #[allow(unsafe_code)]
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            match command.spawn() {
                Ok(mut child) => {
                    started.send(Ok(())).ok();
                    child.wait().ok();
                }
                Err(error) => {
                    started.send(Err(error)).ok();
                }
            }
        })
        .expect("a thread to own redis-server");
    if let Err(error) = result.recv().expect("the redis-server thread reports") {
        panic!(
            "cannot start redis-server ({error}). The tests need a real Redis: install it \
             (`apt-get install redis-server`; .ci/run does this on a fresh machine)"
        );
    }
}

/// Waits until the server accepts a PING on its socket.
fn wait_until_ready(socket: &std::path::Path) {
    let url = format!("unix://{}", socket.display());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ping = redis::Client::open(url.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
        if ping.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "redis-server did not come up on {}", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}
