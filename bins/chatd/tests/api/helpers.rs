//! `spawn_app`: a real chatd on a random port, on Redis (the test binary's own redis-server, a key
//! prefix per test) or on the in-memory store, with an HTTP client and token minting.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_identity::{BuiltinDirectory, Directory, PlatformDirectory, PlatformSettings};
use chat_storage::{
    ChatStore, ClusterSettings, ClusterStore, EventBus, MemoryStore, PresenceStore, RedisSettings, RedisStore,
};
use chatd::settings::Settings;
use chatd::startup::{Application, Dependencies};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::platform::StandInPlatform;
use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

/// The secret every test chatd verifies tokens with.
pub const SECRET: &str = "test-secret-of-the-suite";

/// Which store a test chatd runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The test binary's redis-server, in the original's layout.
    Redis,
    /// The test binary's Redis Cluster (`redis_cluster.rs`), in the cluster layout.
    Cluster,
    Memory,
}

impl Backend {
    /// Whether several chatd instances can share it (Redis, on one server or a cluster).
    pub fn is_shared(self) -> bool {
        !matches!(self, Self::Memory)
    }
}

/// Runs one behaviour test against every backend: `backends!(name, async_fn)` defines
/// `name::redis`, `name::cluster` and `name::memory`, each calling `async_fn(Backend)`.
macro_rules! backends {
    ($name:ident, $case:ident) => {
        mod $name {
            #[actix_web::test]
            async fn redis() {
                super::$case($crate::helpers::Backend::Redis).await
            }

            #[actix_web::test]
            async fn cluster() {
                super::$case($crate::helpers::Backend::Cluster).await
            }

            #[actix_web::test]
            async fn memory() {
                super::$case($crate::helpers::Backend::Memory).await
            }
        }
    };
}
pub(crate) use backends;

/// A running chatd and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    /// The key prefix of this test (Redis only); no other test writes under it.
    pub prefix: String,
    pub client: reqwest::Client,
    /// Stops this chatd as SIGTERM would.
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts the status, showing the body when it is another.
    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "status of {:#}", self.body);
    }

    /// Asserts the error body of the original: `{error: true, code, name, message, status}`, with
    /// this `code` (a string, or [`NULL`] where the original sent `"code": null`).
    #[track_caller]
    pub fn assert_error<'c>(&self, status: u16, code: impl Into<Option<&'c str>>) {
        let code = code.into();
        assert_eq!(self.status.as_u16(), status, "status of {:#}", self.body);
        assert_eq!(self.body["error"], json!(true), "{:#}", self.body);
        assert_eq!(self.body["code"], json!(code), "{:#}", self.body);
        assert_eq!(self.body["status"], json!(status), "{:#}", self.body);
        assert!(self.body["name"].as_str().is_some_and(|n| !n.is_empty()), "{:#}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{:#}", self.body);
    }
}

/// The `code` of the errors the original service sent with `"code": null`.
pub const NULL: Option<&str> = None;

/// Unique names for each test's prefix.
pub fn unique(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{kind}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Settings a test chatd starts from: port 0, one worker, the suite's secret.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.http.workers = Some(1);
    settings.jwt.secret = Some(SECRET.into());
    // Tests send in quick bursts; the limit has its own test.
    settings.limits.sends_per_second = 0;
    settings
}

/// A chatd on `backend` with default test settings and the built-in directory.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, test_settings(), None).await
}

/// A chatd on `backend` with these settings, with profiles from `platform` when given.
pub async fn spawn_app_with(backend: Backend, settings: Settings, platform: Option<&StandInPlatform>) -> TestApp {
    spawn_instance(backend, settings, &unique("chatd-test"), platform).await
}

/// Another chatd instance beside `app`, on the same Redis (or cluster) and key prefix.
pub async fn spawn_second_instance(app: &TestApp, settings: Settings) -> TestApp {
    assert!(app.backend.is_shared(), "instances share data only through Redis");
    spawn_instance(app.backend, settings, &app.prefix, None).await
}

/// A chatd on `backend` with default test settings, on an existing key prefix: another backend's
/// data moved there (`migrate.rs`).
pub async fn spawn_on_prefix(backend: Backend, prefix: &str) -> TestApp {
    spawn_app_with_prefix(backend, test_settings(), prefix).await
}

/// [`spawn_on_prefix`] with these settings.
pub async fn spawn_app_with_prefix(backend: Backend, settings: Settings, prefix: &str) -> TestApp {
    spawn_instance(backend, settings, prefix, None).await
}

async fn spawn_instance(
    backend: Backend,
    mut settings: Settings,
    prefix: &str,
    platform: Option<&StandInPlatform>,
) -> TestApp {
    settings.redis.prefix = prefix.to_owned();
    let history = settings.realtime.history_window().expect("a valid history window");
    let mut app = match backend {
        Backend::Redis => {
            let redis = RedisStore::connect(&RedisSettings {
                url: RedisServer::shared().url(),
                prefix: prefix.to_owned(),
                connect_timeout: std::time::Duration::from_secs(2),
                response_timeout: std::time::Duration::from_secs(5),
                history,
            })
            .expect("connect to the test redis-server");
            spawn_app_on(Arc::new(redis), settings, platform).await
        }
        Backend::Cluster => {
            let cluster = ClusterStore::connect(&ClusterSettings {
                seeds: RedisCluster::shared().seeds(),
                prefix: prefix.to_owned(),
                connect_timeout: std::time::Duration::from_secs(2),
                response_timeout: std::time::Duration::from_secs(5),
                history,
                ack_replicas: settings.redis.ack_replicas,
                repair_interval: std::time::Duration::from_millis(settings.redis.repair_interval_ms),
                failpoint: None,
            })
            .expect("connect to the test cluster");
            spawn_app_on(cluster, settings, platform).await
        }
        Backend::Memory => spawn_app_on(Arc::new(MemoryStore::with_history(history)), settings, platform).await,
    };
    app.backend = backend;
    app
}

/// A chatd on the given backend.
pub async fn spawn_app_on<B>(backend: Arc<B>, settings: Settings, platform: Option<&StandInPlatform>) -> TestApp
where
    B: ChatStore + EventBus + PresenceStore + 'static,
{
    let directory: Arc<dyn Directory> = match platform {
        Some(platform) => Arc::new(
            PlatformDirectory::new(PlatformSettings { api_url: platform.url.clone(), ..PlatformSettings::default() })
                .expect("valid platform settings"),
        ),
        None => Arc::new(BuiltinDirectory::new()),
    };
    let verifier = Dependencies::from_settings(&settings).expect("valid settings").verifier;
    let dependencies = Dependencies::with_backend(backend, directory, verifier);
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let application = Application::build_with(&settings, listener, dependencies).expect("chatd builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    TestApp::serving(address, &settings, |stopped| async {
        application.run_until(stopped).await.ok();
    })
}

/// Serves an app `configure` sets up in a plain actix-web `HttpServer` (one worker) on a free port,
/// as an embedding app would; the returned app's `address` ends in `path`. Stopping it shuts `hub`
/// down, then the server.
fn serve_in_actix_web<F>(settings: &Settings, hub: chat_service::Hub, path: &str, configure: F) -> TestApp
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = format!("http://127.0.0.1:{}{path}", listener.local_addr().unwrap().port());
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .on_connect(chat_transport::remember_sockets)
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listens")
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    TestApp::serving(address, settings, |stopped| async move {
        stopped.await;
        hub.shut_down();
        handle.stop(true).await;
    })
}

/// chatd's API on the in-memory store and the built-in directory, as an embedding app builds it.
fn memory_chat_api(settings: &Settings) -> chat_transport::ChatApi {
    let history = settings.realtime.history_window().expect("a valid history window");
    let verifier = Dependencies::from_settings(settings).expect("valid settings").verifier;
    let dependencies = Dependencies::with_backend(
        Arc::new(MemoryStore::with_history(history)),
        Arc::new(BuiltinDirectory::new()),
        verifier,
    );
    chatd::startup::chat_api(settings, dependencies).expect("valid settings")
}

/// chatd's routes mounted in a plain actix-web `HttpServer` on the in-memory store, as an app
/// embedding chat-transport mounts them: there the realtime doors run through actix-ws, not on
/// connections taken over by chatd's own server.
pub async fn spawn_in_actix_web(settings: Settings) -> TestApp {
    let chat = memory_chat_api(&settings);
    let hub = chat.hub().clone();
    serve_in_actix_web(&settings, hub, "", move |app| {
        app.configure(chat.rest_api()).configure(chat.realtime()).configure(chat.operations());
    })
}

/// The host app of [`spawn_under_a_scope`]: its home page, its own error and its own 404.
pub const HOST_HOME: &str = "the host's home page";
pub const HOST_ERROR: &str = "the host's own error";
pub const HOST_NOT_FOUND: &str = "the host's own 404";

/// An existing actix-web app with routes, an error and a 404 of its own, mounting chatd's REST API
/// and realtime doors under `/chat` in chatd's middleware, with chatd's 404 for unknown paths under
/// it, on the in-memory store. The returned app's `address` ends in `/chat`, so the usual helpers
/// talk to chatd; [`TestApp::host`] is the host's origin.
pub async fn spawn_under_a_scope(settings: Settings) -> TestApp {
    let chat = memory_chat_api(&settings);
    let hub = chat.hub().clone();
    serve_in_actix_web(&settings, hub, "/chat", move |app| {
        use actix_web::{HttpResponse, web};
        app.route("/", web::get().to(|| async { HttpResponse::Ok().body(HOST_HOME) }))
            .route("/fails", web::get().to(|| async { HttpResponse::BadRequest().body(HOST_ERROR) }))
            .service(
                web::scope("/chat")
                    .wrap(chat.middleware())
                    .configure(chat.rest_api())
                    .configure(chat.realtime())
                    .default_service(chat_transport::not_found()),
            )
            .default_service(web::to(|| async { HttpResponse::NotFound().body(HOST_NOT_FOUND) }));
    })
}

/// A token for `user` signed with the suite's secret.
pub fn token(user: u64) -> String {
    token_for(json!({ "user_id": user }))
}

/// A token with these claims, HS256 with the suite's secret.
pub fn token_for(claims: Value) -> String {
    sign(Algorithm::HS256, SECRET, claims)
}

/// A token with these claims, signed with `algorithm` and `secret`.
pub fn sign(algorithm: Algorithm, secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("a token")
}

impl TestApp {
    /// The app at `address`, run by `serve` (in a task of its own) until its `stopped` resolves:
    /// when [`Self::shut_down`] is called.
    fn serving<F: Future<Output = ()> + 'static>(
        address: String,
        settings: &Settings,
        serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()>>>) -> F,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        actix_web::rt::spawn(serve(Box::pin(async {
            stopped.await.ok();
        })));
        Self {
            address,
            backend: Backend::Memory,
            prefix: settings.redis.prefix.clone(),
            client: reqwest::Client::new(),
            stop: std::sync::Mutex::new(Some(stop)),
        }
    }

    /// Stops chatd the way SIGTERM does.
    pub fn shut_down(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            stop.send(()).ok();
        }
    }

    /// The origin of the server (`address` without the path of a scope it is mounted under).
    pub fn host(&self) -> &str {
        let start = self.address.find("://").map_or(0, |scheme| scheme + 3);
        self.address[start..].find('/').map_or(&self.address, |path| &self.address[..start + path])
    }

    /// The `ws://` URL of a path.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.address.replacen("http://", "ws://", 1))
    }

    /// Sends a request with an optional token and an optional raw body.
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body);
        }
        let response = request.send().await.expect("chatd answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("a JSON body, got {status} {:?}", String::from_utf8_lossy(&bytes)));
        Answer { status, headers, body }
    }

    /// `GET path` as `user`.
    pub async fn get(&self, path: &str, user: u64) -> Answer {
        self.request(Method::GET, path, Some(&token(user)), None).await
    }

    /// `POST path` with a JSON body as `user`.
    pub async fn post(&self, path: &str, user: u64, body: Value) -> Answer {
        self.request(Method::POST, path, Some(&token(user)), Some(body.to_string().into_bytes())).await
    }

    /// `DELETE path` as `user`.
    pub async fn delete(&self, path: &str, user: u64) -> Answer {
        self.request(Method::DELETE, path, Some(&token(user)), None).await
    }

    /// Sends a text message from `from` to `path` (`/api/user/2`) and returns its entry.
    pub async fn send_text(&self, from: u64, path: &str, text: &str) -> Value {
        let answer = self.post(path, from, json!({"type": "text", "text": text})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:#}", answer.body);
        answer.body["entry"].clone()
    }

    /// The texts of a history page, oldest first.
    pub async fn texts(&self, path: &str, user: u64) -> Vec<String> {
        let answer = self.get(path, user).await;
        assert_eq!(answer.status, StatusCode::OK, "{:#}", answer.body);
        answer.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Everything this test's chatd stored: every key under its prefix with its content (Redis),
    /// or the visible state of the given users' inboxes and chats (memory, cluster). Compared before and
    /// after a rejected request to show it changed nothing.
    pub async fn snapshot(&self, users: &[u64]) -> Value {
        match self.backend {
            Backend::Redis => redis_snapshot(&self.prefix).await,
            Backend::Memory | Backend::Cluster => {
                let mut state = serde_json::Map::new();
                for &user in users {
                    let inbox = self.get("/api/list?per_page=100", user).await;
                    state.insert(format!("inbox:{user}"), inbox.body["entries"].clone());
                    for &other in users {
                        if other != user {
                            let chat = self.get(&format!("/api/user/{other}?per_page=100"), user).await;
                            state.insert(format!("dm:{user}:{other}"), chat.body["messages"].clone());
                        }
                    }
                }
                Value::Object(state)
            }
        }
    }
}

/// Every key under `prefix`, with its type and content.
pub async fn redis_snapshot(prefix: &str) -> Value {
    let mut connection = RedisServer::shared().connection().await;
    let mut keys: Vec<String> = connection.keys(format!("{prefix}:*")).await.expect("KEYS");
    keys.sort();
    let mut state = serde_json::Map::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await.expect("TYPE");
        let value = match kind.as_str() {
            "list" => json!(connection.lrange::<_, Vec<String>>(&key, 0, -1).await.expect("LRANGE")),
            "hash" => {
                json!(connection.hgetall::<_, std::collections::BTreeMap<String, String>>(&key).await.expect("HGETALL"))
            }
            "zset" => json!(connection.zrange_withscores::<_, Vec<(String, f64)>>(&key, 0, -1).await.expect("ZRANGE")),
            other => json!(format!("unexpected type {other}")),
        };
        state.insert(key, json!({"type": kind, "value": value}));
    }
    Value::Object(state)
}

/// Runs the Node script at `script` (under this package's `tests/`) against `address` with tokens
/// of users 1 and 2 (`CHATD_URL`, `TOKEN_1`, `TOKEN_2`) and `env`, and checks that it ends well and
/// reports `passed`; its output is in the panic otherwise.
pub async fn run_node_script(
    script: &str,
    address: String,
    env: Vec<(&'static str, std::ffi::OsString)>,
    passed: &str,
) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(path)
            .env("CHATD_URL", address)
            .env("TOKEN_1", token(1))
            .env("TOKEN_2", token(2))
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("this test needs Node.js (apt-get install nodejs): {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(passed), "{stdout}");
}
