//! A real browser for this test binary: one headless Chromium (Debian's `chromium`; `.ci/run`
//! installs it), started on first use and ended with the test process, which Node scripts drive with
//! puppeteer-core over the DevTools protocol — each test in browser contexts of its own.
//!
//! puppeteer-core comes from `PUPPETEER_CORE_DIR` (a folder holding `node_modules/puppeteer-core`,
//! as `.ci/run` prepares it), else it is installed once per test binary with npm under Cargo's
//! target folder. `CHROMIUM` names another Chromium (or Chrome) binary than `chromium`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// What puppeteer-core to install: a version that runs on Debian's Node.js (18 and later).
const PUPPETEER_CORE: &str = "puppeteer-core@24";

/// The running browser.
pub struct Browser {
    /// `ws://127.0.0.1:<port>/devtools/browser/<id>`, for `puppeteer.connect`.
    pub endpoint: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The shared browser of this test binary, started on first use.
    pub fn shared() -> &'static Browser {
        static BROWSER: OnceLock<Browser> = OnceLock::new();
        BROWSER.get_or_init(Browser::start)
    }

    fn start() -> Browser {
        let profile = tempfile::tempdir().expect("a temporary folder");
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let mut args = vec![
            "--headless".to_owned(),
            "--remote-debugging-port=0".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // Two pages chat with each other: neither may be throttled as a background one.
            "--disable-background-timer-throttling".to_owned(),
            "--disable-backgrounding-occluded-windows".to_owned(),
            "--disable-renderer-backgrounding".to_owned(),
            "--window-size=1100,700".to_owned(),
        ];
        #[allow(unsafe_code)]
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } == 0 {
            // Chromium's sandbox refuses to run as root (CI containers).
            args.push("--no-sandbox".to_owned());
        }
        args.push("about:blank".to_owned());
        let (started, result) = std::sync::mpsc::channel();
        // The browser is tied to the thread that forks it (PR_SET_PDEATHSIG fires when that thread
        // ends), so it is forked from a thread that lives as long as the process, and dies with it.
        std::thread::Builder::new()
            .name("chromium".into())
            .spawn(move || {
                let mut command = Command::new(&binary);
                command.args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
                #[allow(unsafe_code)]
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(error) => {
                        started.send(Err(format!("cannot start {binary}: {error}"))).ok();
                        return;
                    }
                };
                // Chromium says where its DevTools listen on stderr; the rest is read and dropped,
                // so that a full pipe never stalls it.
                let stderr = child.stderr.take().expect("piped stderr");
                let mut lines = Vec::new();
                let mut endpoint = None;
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if endpoint.is_none() {
                        if let Some(found) = line.strip_prefix("DevTools listening on ") {
                            endpoint = Some(found.trim().to_owned());
                            started.send(Ok(found.trim().to_owned())).ok();
                        } else {
                            lines.push(line);
                        }
                    }
                }
                if endpoint.is_none() {
                    started.send(Err(format!("{binary} exited: {}", lines.join("\n")))).ok();
                }
                child.wait().ok();
            })
            .expect("a thread to own chromium");
        match result.recv().expect("the chromium thread reports") {
            Ok(endpoint) => Browser { endpoint, _profile: profile },
            Err(error) => panic!(
                "{error}. The browser tests need Chromium: install it (`apt-get install chromium \
                 chromium-driver`; .ci/run does this on a fresh machine), or name one in CHROMIUM"
            ),
        }
    }
}

/// The folder of the puppeteer-core module, installing it on first use: one npm run for the whole
/// test binary.
pub fn puppeteer_core() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::var_os("PUPPETEER_CORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("puppeteer-core"));
    let module = dir.join("node_modules").join("puppeteer-core");
    if !module.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg(PUPPETEER_CORE)
            .status()
            .unwrap_or_else(|e| panic!("this test needs Node.js and npm (apt-get install nodejs npm): {e}"));
        assert!(status.success(), "npm install {PUPPETEER_CORE} failed");
    }
    module
}
