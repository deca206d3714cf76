//! A real `socket.io-client` v4 (from npm, run by Node) against chatd, in both transports and both
//! authentication styles: `tests/socketio/client.cjs` drives it and checks every event.
//!
//! The client comes from `SOCKET_IO_CLIENT_DIR` (a folder holding `node_modules/socket.io-client`,
//! as `.ci/run` prepares it), else it is installed once with npm under Cargo's target folder.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::helpers::{Backend, both, spawn_app, token};

/// The folder holding `node_modules/socket.io-client`, installing it on first use.
fn socket_io_client() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::var_os("SOCKET_IO_CLIENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("socket.io-client"));
    let module = dir.join("node_modules").join("socket.io-client");
    if !module.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg("socket.io-client@4")
            .status()
            .unwrap_or_else(|e| panic!("this test needs Node.js and npm (apt-get install nodejs npm): {e}"));
        assert!(status.success(), "npm install socket.io-client@4 failed");
    }
    module
}

async fn a_real_socketio_client_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let module = socket_io_client();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/socketio/client.cjs");
    let address = app.address.clone();
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("CHATD_URL", address)
            .env("TOKEN_1", token(1))
            .env("TOKEN_2", token(2))
            .env("SOCKET_IO_CLIENT", module)
            .output()
            .unwrap_or_else(|e| panic!("this test needs Node.js (apt-get install nodejs): {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "socket.io-client checks failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all socket.io-client checks passed"), "{stdout}");
}
both!(socketio_client_v4, a_real_socketio_client_works);
