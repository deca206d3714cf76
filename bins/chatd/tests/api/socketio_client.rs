//! Real `socket.io-client`s (from npm, run by Node) against chatd: v4 (Engine.IO v4), driven by
//! `tests/socketio/client.cjs`, and the original service's clients 1.7 and 2.x (Engine.IO v3),
//! driven by `tests/socketio/old_client.cjs`; each in every transport and both authentication
//! styles, checking every event.
//!
//! The clients come from `SOCKET_IO_CLIENT_DIR` (a folder holding `node_modules/socket.io-client`,
//! `node_modules/socket.io-client-v1` and `node_modules/socket.io-client-v2`, as `.ci/run`
//! prepares it), else they are installed once per test binary with npm under Cargo's target folder.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::helpers::{Backend, backends, run_node_script, spawn_app, spawn_app_with, test_settings};

/// The clients, as npm installs them side by side in one folder: the module's folder name, and
/// what to ask npm for (the old generations under aliases, so that they do not clash).
const CLIENTS: [(&str, &str); 3] = [
    ("socket.io-client", "socket.io-client@4"),
    ("socket.io-client-v1", "socket.io-client-v1@npm:socket.io-client@1.7"),
    ("socket.io-client-v2", "socket.io-client-v2@npm:socket.io-client@2"),
];

/// The folder of the client module `name` (one of [`CLIENTS`]), installing what is missing on
/// first use: one npm run for the whole test binary.
fn socket_io_client(name: &str) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::var_os("SOCKET_IO_CLIENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("socket.io-client"));
    let modules = dir.join("node_modules");
    let missing: Vec<&str> =
        CLIENTS.iter().filter(|(module, _)| !modules.join(module).exists()).map(|(_, spec)| *spec).collect();
    if !missing.is_empty() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .args(&missing)
            .status()
            .unwrap_or_else(|e| panic!("this test needs Node.js and npm (apt-get install nodejs npm): {e}"));
        assert!(status.success(), "npm install {missing:?} failed");
    }
    modules.join(name)
}

/// Runs `script` (in `tests/socketio`) with Node against `address` and client module `module`,
/// and checks that it reports `passed`.
async fn run_node(script: &str, address: String, module: &str, passed: &'static str) {
    let module = socket_io_client(module);
    let client_name = module.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let env = vec![("SOCKET_IO_CLIENT", module.into_os_string()), ("CLIENT_NAME", client_name.into())];
    run_node_script(&format!("socketio/{script}"), address, env, passed).await;
}

async fn a_real_socketio_client_works(backend: Backend) {
    let app = spawn_app(backend).await;
    run_node("client.cjs", app.address.clone(), "socket.io-client", "all socket.io-client checks passed").await;
}
backends!(socketio_client_v4, a_real_socketio_client_works);

/// An old client (`socket.io-client-v1` or `-v2`) against a chatd with a short ping interval, so
/// that the client's pings (Engine.IO v3's heartbeat) go on while the script runs: a session the
/// server failed to keep alive, or whose pings it left unanswered, would end the script early.
async fn an_old_socketio_client_works(backend: Backend, module: &str, passed: &'static str) {
    let mut settings = test_settings();
    settings.realtime.ping_interval_ms = 300;
    settings.realtime.ping_timeout_ms = 5000;
    let app = spawn_app_with(backend, settings, None).await;
    run_node("old_client.cjs", app.address.clone(), module, passed).await;
}

async fn socket_io_client_1_7_works(backend: Backend) {
    an_old_socketio_client_works(backend, "socket.io-client-v1", "all socket.io-client-v1 checks passed").await;
}
backends!(socketio_client_v1, socket_io_client_1_7_works);

async fn socket_io_client_2_works(backend: Backend) {
    an_old_socketio_client_works(backend, "socket.io-client-v2", "all socket.io-client-v2 checks passed").await;
}
backends!(socketio_client_v2, socket_io_client_2_works);
