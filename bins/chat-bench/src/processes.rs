//! What the benchmark starts, and stops again whatever happens: a private `redis-server` on a free
//! loopback port, `chatd` instances pointed at it, the reference server, and the Node.js Socket.IO
//! reference.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed when dropped.
#[derive(Debug)]
pub(crate) struct Owned(Child);

impl Owned {
    /// Owns `child` once something accepts connections on `port` (`what` names it in the error);
    /// a child that never does is killed.
    pub(crate) fn listening(child: Child, port: u16, what: &str) -> Result<Self, String> {
        let process = Self(child);
        wait_for_port(port, what)?;
        Ok(process)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not start listening on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A private Redis, persisting nothing.
#[derive(Debug)]
pub(crate) struct Redis {
    process: Owned,
    _dir: tempfile::TempDir,
    pub(crate) port: u16,
}

impl Redis {
    pub(crate) fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxclients", "20000", "--loglevel", "warning"])
            .arg("--slowlog-log-slower-than")
            .arg(crate::slowlog::THRESHOLD_MICROS.to_string())
            .arg("--slowlog-max-len")
            .arg(crate::slowlog::MAX_ENTRIES.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
        let process = Owned::listening(child, port, "redis-server")?;
        Ok(Self { process, _dir: dir, port })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// A running `chatd`.
#[derive(Debug)]
pub(crate) struct Chatd {
    process: Owned,
    pub(crate) port: u16,
}

impl Chatd {
    /// Starts `binary` on a free port against Redis on `redis_port`, with `settings` (environment
    /// variables) on top of the benchmark's own.
    pub(crate) fn start(
        binary: &Path,
        redis_port: u16,
        secret: &str,
        settings: &[(String, String)],
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let mut command = Command::new(binary);
        command.env_clear();
        // Settings to experiment with pass through (e.g. CHATD_HTTP__WORKERS).
        command.envs(std::env::vars().filter(|(key, _)| key.starts_with("CHATD_")));
        let child = command
            .env("CHATD_ENV", "production")
            .env("CHATD_HTTP__HOST", "127.0.0.1")
            .env("CHATD_HTTP__PORT", port.to_string())
            .env("CHATD_REDIS__URL", format!("redis://127.0.0.1:{redis_port}"))
            .env("CHATD_REDIS__PREFIX", "bench")
            .env("CHATD_JWT__SECRET", secret)
            .env("CHATD_LOG__FILTER", "warn")
            // The load comes from few users at far more than a person's rate.
            .env("CHATD_LIMITS__SENDS_PER_SECOND", "0")
            .envs(settings.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let process = Owned::listening(child, port, "chatd")?;
        Ok(Self { process, port })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Resident memory in KiB.
    pub(crate) fn resident_kib(&self) -> Option<u64> {
        resident_kib(self.pid())
    }
}

/// A process's resident memory, from `/proc/<pid>/status`, in KiB.
pub(crate) fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// The Node.js reference of the realtime scenario (`bins/chat-bench/node/server.js`: Socket.IO v4
/// with @socket.io/redis-adapter), installed from npm into a scratch folder on first use.
#[derive(Debug)]
pub(crate) struct NodeReference {
    process: Owned,
    pub(crate) port: u16,
}

impl NodeReference {
    const SERVER: &str = include_str!("../node/server.js");
    const PACKAGES: [&str; 4] = ["socket.io@4", "@socket.io/redis-adapter@8", "redis@4", "jsonwebtoken@9"];

    /// Starts it on Redis at `redis_port`, verifying tokens with `secret` — or says why it cannot
    /// (no Node.js or npm on this machine, or the install failed).
    pub(crate) fn start(redis_port: u16, secret: &str) -> Result<Self, String> {
        let folder = std::env::temp_dir().join("chat-bench-node-reference");
        std::fs::create_dir_all(&folder).map_err(|e| format!("cannot make {}: {e}", folder.display()))?;
        let installed = ["socket.io", "@socket.io/redis-adapter", "redis", "jsonwebtoken"]
            .iter()
            .all(|package| folder.join("node_modules").join(package).join("package.json").exists());
        if !installed {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&folder)
                .args(Self::PACKAGES)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("no npm here ({e})"))?;
            if !status.success() {
                return Err(format!("npm install {} failed: {status}", Self::PACKAGES.join(" ")));
            }
        }
        let script = folder.join("server.js");
        std::fs::write(&script, Self::SERVER).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let port = free_port().map_err(|e| e.to_string())?;
        let child = Command::new("node")
            .arg(&script)
            .args([port.to_string(), redis_port.to_string(), secret.to_owned()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("no Node.js here ({e})"))?;
        let process = Owned::listening(child, port, "the Node.js reference")?;
        Ok(Self { process, port })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The reference server ([`crate::reference`]): this binary again, on a free port.
#[derive(Debug)]
pub(crate) struct Reference {
    process: Owned,
    pub(crate) port: u16,
}

impl Reference {
    pub(crate) fn start(redis_port: u16) -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let binary = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args(["--reference-server", &port.to_string(), "--reference-redis", &redis_port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the reference server: {e}"))?;
        let process = Owned::listening(child, port, "the reference server")?;
        Ok(Self { process, port })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The `chatd` binary beside this one (both are built into the same target folder).
pub(crate) fn default_chatd_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("chatd")))
        .unwrap_or_else(|| PathBuf::from("chatd"))
}
