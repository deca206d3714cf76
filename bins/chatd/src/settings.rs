//! chatd's configuration, read once at start-up: built-in defaults ← `chatd.toml` ← `CHATD_*`
//! environment variables (nested with `__`) ← the original service's `SOCK_*` names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chat_domain::HistoryWindow;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::SecretString;
use serde::Deserialize;

/// The original service's environment variables and the settings they set. They keep working and
/// win over everything else, so a deployment of the original can switch without touching its
/// environment.
const ORIGINAL_VARIABLES: &[(&str, &str)] = &[
    ("SOCK_ENV", "env"),
    ("SOCK_DOMAIN_HANDLE", "chat.handle"),
    ("SOCK_HTTP_HOST", "http.host"),
    ("SOCK_HTTP_PORT", "http.port"),
    ("SOCK_REDIS_HOST", "redis.host"),
    ("SOCK_REDIS_PORT", "redis.port"),
    ("SOCK_REDIS_PREFIX", "redis.prefix"),
    ("SOCK_JWT_ALGORITHM", "jwt.algorithm"),
    ("SOCK_JWT_HEADER", "jwt.header"),
    ("SOCK_JWT_SECRET", "jwt.secret"),
    ("SOCK_API_URL", "platform.api_url"),
    ("SOCK_API_USER_AGENT", "platform.user_agent"),
];

/// The settings whose values are text. An environment variable setting one of them is taken
/// verbatim: figment would otherwise parse `SOCK_JWT_SECRET=12345` as a number (which a text
/// setting refuses) and rewrite `0123`, `true`, `"quoted"` or `[list]`. Each `chat.tenants.<host>`
/// is text too.
const TEXT_SETTINGS: &[&str] = &[
    "env",
    "http.host",
    "redis.url",
    "redis.host",
    "redis.prefix",
    "chat.handle",
    "jwt.algorithm",
    "jwt.header",
    "jwt.secret",
    "jwt.public_key",
    "jwt.public_key_file",
    "jwt.user_claim",
    "jwt.topics_claim",
    "jwt.tenant_claim",
    "platform.api_url",
    "platform.user_agent",
    "platform.profiles_file",
    "log.format",
    "log.filter",
];

/// The configuration file read when none is named and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "chatd.toml";

/// Every setting of chatd. `docs/configuration.md` describes each key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `development` or `production`.
    pub env: Environment,
    /// The HTTP listener.
    pub http: HttpSettings,
    /// Redis; unset means the in-memory store.
    pub redis: RedisConfig,
    /// Chat rules and tenants.
    pub chat: ChatConfig,
    /// Token verification.
    pub jwt: JwtConfig,
    /// Where profiles come from.
    pub platform: PlatformConfig,
    /// Tenants with an identity of their own, by domain handle.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Realtime connections.
    pub realtime: RealtimeConfig,
    /// Abuse limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The demo chat at `/demo/`.
    pub demo: DemoConfig,
}

/// Development relaxes safety defaults (a built-in JWT secret); production refuses them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The default.
    #[default]
    Development,
    /// Refuses to start without a configured JWT secret or key.
    Production,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Interface to listen on (the original's `SOCK_HTTP_HOST`).
    pub host: String,
    /// Port (`SOCK_HTTP_PORT`); 0 picks a free one.
    pub port: u16,
    /// Worker threads; unset means one per CPU.
    pub workers: Option<usize>,
    /// Largest request body in bytes (413 beyond it).
    pub body_limit_bytes: usize,
    /// Largest request head (request line and headers) in bytes (431 beyond it).
    pub header_limit_bytes: usize,
    /// Browser origins whose pages may read chatd's answers (CORS); `["*"]` for any, empty for none.
    pub cors_origins: Vec<String>,
    /// Seconds in-flight requests may take to finish once chatd is told to stop.
    pub shutdown_timeout_seconds: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 3005,
            workers: None,
            body_limit_bytes: chat_transport::DEFAULT_BODY_LIMIT,
            header_limit_bytes: chat_transport::HeaderLimit::DEFAULT.get(),
            cors_origins: Vec::new(),
            shutdown_timeout_seconds: 30,
        }
    }
}

/// `[redis]`. Redis is used when `url`, `host` or `port` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`, `rediss://…` or `unix:///path.sock`.
    pub url: Option<SecretString>,
    /// Host, when no URL is given (`SOCK_REDIS_HOST`; default `localhost`).
    pub host: Option<String>,
    /// Port, when no URL is given (`SOCK_REDIS_PORT`; default 6379).
    pub port: Option<u16>,
    /// Prefix of every key (`SOCK_REDIS_PREFIX`).
    pub prefix: String,
    /// Milliseconds one connection attempt may take.
    pub connect_timeout_ms: u64,
    /// Milliseconds one command may wait for its answer.
    pub response_timeout_ms: u64,
    /// Seed nodes of a Redis Cluster (`["redis://host:port", …]`); when set, chatd uses the cluster
    /// (in the cluster layout) instead of `url`/`host`/`port`.
    pub cluster: Vec<String>,
    /// Cluster only: replicas that must hold a write before it is acknowledged (`WAIT`); 0: none.
    pub ack_replicas: u32,
    /// Cluster only: milliseconds between two passes looking for fan-outs a crash left unfinished.
    pub repair_interval_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: None,
            port: None,
            prefix: "senna-sockets".into(),
            connect_timeout_ms: 2000,
            response_timeout_ms: 2000,
            cluster: Vec::new(),
            ack_replicas: 0,
            repair_interval_ms: 30_000,
        }
    }
}

impl RedisConfig {
    /// The URL to connect to, or `None` for the in-memory store.
    pub fn effective_url(&self) -> Option<SecretString> {
        if let Some(url) = &self.url {
            return Some(url.clone());
        }
        if self.host.is_none() && self.port.is_none() {
            return None;
        }
        let host = self.host.as_deref().unwrap_or("localhost");
        let port = self.port.unwrap_or(6379);
        Some(format!("redis://{host}:{port}").into())
    }
}

/// `[chat]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// The domain handle in every key (`SOCK_DOMAIN_HANDLE`).
    pub handle: String,
    /// Request `Host` → domain handle, for several tenants on one chatd.
    pub tenants: BTreeMap<String, String>,
    /// Longest message text, in characters.
    pub max_text_chars: usize,
    /// `per_page` when none is given.
    pub default_per_page: u32,
    /// Larger `per_page` values are clamped to this.
    pub max_per_page: u32,
    /// Seconds a send's `Idempotency-Key` is remembered. Positive.
    pub idempotency_ttl_seconds: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            handle: "myplatform".into(),
            tenants: BTreeMap::new(),
            max_text_chars: 4000,
            default_per_page: 10,
            max_per_page: 100,
            idempotency_ttl_seconds: 86_400,
        }
    }
}

/// `[jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The one algorithm accepted (`SOCK_JWT_ALGORITHM`).
    pub algorithm: String,
    /// The header carrying the token (`SOCK_JWT_HEADER`); `Authorization: Bearer` also works.
    pub header: String,
    /// HMAC secret for HS* (`SOCK_JWT_SECRET`).
    pub secret: Option<SecretString>,
    /// PEM public key for RS*/PS*/ES*/EdDSA, inline.
    pub public_key: Option<String>,
    /// PEM public key for RS*/PS*/ES*/EdDSA, from a file.
    pub public_key_file: Option<PathBuf>,
    /// The claim holding the user id.
    pub user_claim: String,
    /// The claim listing the topics a user may use; empty: every topic is open to every user.
    pub topics_claim: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The claim naming the tenant (domain handle) a token was issued for; when set, a token
    /// verifies only for the tenant it names. Empty: off.
    pub tenant_claim: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: "HS256".into(),
            header: "X-Auth-Token".into(),
            secret: None,
            public_key: None,
            public_key_file: None,
            user_claim: "user_id".into(),
            topics_claim: String::new(),
            leeway_seconds: 5,
            tenant_claim: String::new(),
        }
    }
}

/// `[tenants.<handle>]`: a tenant's own identity. What it leaves out, it shares with every other
/// tenant (the top-level `[jwt]` and `[platform]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// How this tenant's tokens are checked, in place of `[jwt]` (whose defaults it starts from,
    /// not from its values).
    pub jwt: Option<JwtConfig>,
    /// Where this tenant's profiles come from, in place of `[platform]`.
    pub platform: Option<PlatformConfig>,
}

/// `[platform]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformConfig {
    /// The platform API serving `/v1/users` and `/v1/topics` (`SOCK_API_URL`); unset means the
    /// built-in directory.
    pub api_url: Option<String>,
    /// User-Agent sent to it (`SOCK_API_USER_AGENT`).
    pub user_agent: String,
    /// Milliseconds a profile request may take.
    pub timeout_ms: u64,
    /// Seconds a profile stays cached (refreshed in the background from ¾ of it on).
    pub cache_ttl_seconds: u64,
    /// Seconds past its TTL a cached profile is still served while the platform API fails.
    pub cache_stale_seconds: u64,
    /// Profiles cached at most.
    pub cache_capacity: u64,
    /// Profiles for the built-in directory (`{"users": [...], "topics": [...]}`).
    pub profiles_file: Option<PathBuf>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            api_url: None,
            user_agent: "Senna-Sockets-Server".into(),
            timeout_ms: 2000,
            cache_ttl_seconds: 60,
            cache_stale_seconds: 3600,
            cache_capacity: 100_000,
            profiles_file: None,
        }
    }
}

/// `[realtime]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Milliseconds a connection may take to authenticate (the original's 15 s).
    pub auth_timeout_ms: u64,
    /// Milliseconds between the server's pings.
    pub ping_interval_ms: u64,
    /// Milliseconds a connection may stay silent after a ping before it is closed.
    pub ping_timeout_ms: u64,
    /// Largest WebSocket frame or Socket.IO packet a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Events queued for one connection before it counts as too slow and is disconnected.
    pub queue_capacity: usize,
    /// Browser origins (`Origin` header) allowed to open realtime connections; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Milliseconds an instance vouches for its users' presence (renewed every third of it); a
    /// user whose instance died turns inactive within about this long.
    pub presence_ttl_ms: u64,
    /// Durable events kept per channel (a user's or a topic's) for clients that resume; a client
    /// that missed more reloads over REST. Positive.
    pub history_size: u64,
    /// Seconds a durable event is kept for clients that resume (a channel with no event for this
    /// long drops its history). Positive.
    pub history_ttl_seconds: u64,
    /// A user's most recent inbox entries whose DM partners hear their presence (and whose
    /// presence their new connections hear). Positive.
    pub presence_partners: usize,
}

impl RealtimeConfig {
    /// The history window, if both its settings are positive.
    pub fn history_window(&self) -> Result<HistoryWindow, String> {
        if self.history_size == 0 || self.history_ttl_seconds == 0 {
            return Err("realtime.history_size and realtime.history_ttl_seconds must be positive".into());
        }
        Ok(HistoryWindow { size: self.history_size, ttl: std::time::Duration::from_secs(self.history_ttl_seconds) })
    }
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            auth_timeout_ms: 15_000,
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_message_bytes: 64 * 1024,
            queue_capacity: 256,
            allowed_origins: Vec::new(),
            presence_ttl_ms: 30_000,
            history_size: 1_000,
            history_ttl_seconds: 86_400,
            presence_partners: 1000,
        }
    }
}

/// `[limits]`. Each instance enforces them on its own requests and connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sends per second one user may make on average; 0 turns the limit off.
    pub sends_per_second: u32,
    /// Sends one user may make at once above that average.
    pub send_burst: u32,
    /// Open realtime connections one user may have on an instance.
    pub connections_per_user: usize,
    /// Open realtime connections an instance accepts in all.
    pub connections_total: usize,
    /// Topics one realtime connection may hear at once; a `subscribe` past it is refused.
    pub topics_per_connection: usize,
    /// Client events (`typing`, `subscribe`, …) one realtime connection may send per second on
    /// average; one past it is answered with `rate_limited` and not acted on. `0` turns it off.
    pub client_events_per_second: u32,
    /// Client events one connection may send at once above that average.
    pub client_event_burst: u32,
    /// Frames (WebSocket messages, Socket.IO packets) one realtime connection may send per second
    /// on average; past it the connection is closed with 1008 `too many frames`. `0` turns it off.
    pub frames_per_second: u32,
    /// Frames one connection may send at once above that average.
    pub frame_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            sends_per_second: 20,
            send_burst: 40,
            connections_per_user: 20,
            connections_total: 100_000,
            topics_per_connection: 100,
            client_events_per_second: 20,
            client_event_burst: 40,
            frames_per_second: 100,
            frame_burst: 200,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `chatd=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info".into() }
    }
}

/// `[demo]`: the demo chat in the browser at `/demo/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Whether `/demo/` is served; unset means on in development and off in production.
    pub enabled: Option<bool>,
}

impl DemoConfig {
    /// Whether the demo is served in `env`.
    pub fn enabled(&self, env: Environment) -> bool {
        self.enabled.unwrap_or(env == Environment::Development)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Settings {
    /// Loads the settings from `config_file` (or `chatd.toml` if it exists) and the environment.
    // figment's error is large, but this runs once at start-up, where its detail is worth more.
    #[allow(clippy::result_large_err)]
    pub fn load(config_file: Option<&Path>) -> Result<Self, figment::Error> {
        Self::figment(config_file).extract()
    }

    /// The layered sources, in increasing priority. A named file must exist; the default one is
    /// optional.
    pub fn figment(config_file: Option<&Path>) -> Figment {
        let file = match config_file {
            Some(path) => Toml::file_exact(path),
            None => Toml::file(DEFAULT_CONFIG_FILE),
        };
        let node_env = Variables(Env::raw().only(&["NODE_ENV"]).map(|_| "env".into()));
        // CHATD_CONFIG names the file; CHATD_FAILPOINT is read by start-up, for tests only.
        let chatd = Variables(Env::prefixed("CHATD_").ignore(&["CONFIG", "FAILPOINT"]).split("__"));
        let original = Variables(
            Env::raw()
                .filter(|key| ORIGINAL_VARIABLES.iter().any(|(name, _)| key.as_str().eq_ignore_ascii_case(name)))
                .map(|key| {
                    let setting = ORIGINAL_VARIABLES
                        .iter()
                        .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
                        .map_or("", |(_, setting)| setting);
                    setting.into()
                }),
        );
        Figment::new().merge(file).merge(node_env).merge(chatd).merge(original)
    }
}

/// An environment layer: like [`Env`] itself, except that the values of [`TEXT_SETTINGS`] are
/// kept exactly as written instead of being parsed.
struct Variables(Env);

impl Provider for Variables {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, text) in self.0.iter() {
            let value = if is_text_setting(key.as_str()) {
                Value::from(text)
            } else {
                text.parse().unwrap_or_else(|never: std::convert::Infallible| match never {})
            };
            if let Value::Dict(_, nested) = figment::util::nest(key.as_str(), value) {
                merge(&mut dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn is_text_setting(key: &str) -> bool {
    TEXT_SETTINGS.contains(&key)
        || key.strip_prefix("chat.tenants.").is_some_and(|host| !host.is_empty())
        // A tenant's own `jwt.*` and `platform.*` are text where the top-level ones are.
        || key
            .strip_prefix("tenants.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(_, setting)| TEXT_SETTINGS.contains(&setting))
}

/// Merges `from` into `into`, tables key by key (so `SOCK_REDIS_HOST` and `SOCK_REDIS_PORT` both
/// land in `redis`).
fn merge(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, nested)) => merge(existing, nested),
            (Some(slot), value) => *slot = value,
            (None, value) => {
                into.insert(key, value);
            }
        }
    }
}
