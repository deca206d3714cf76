//! Turning settings into a running server: build the adapters, inject them into the use cases and
//! the routes, bind, serve.

use std::net::TcpListener;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use actix_web::App;
use actix_web::dev::Server;
use actix_web::http::header::HeaderName;
use chat_domain::{DomainHandle, HistoryWindow, PagingLimits};
use chat_identity::{BuiltinDirectory, Directory, JwtSettings, PlatformDirectory, PlatformSettings, TokenVerifier};
use chat_service::{Adapters, Hub, HubSettings, NonZeroDuration, PresenceTtl, ServiceSettings};
use chat_storage::{
    AlreadyAttached, ChatStore, ClusterSettings, ClusterStore, EventBus, Failpoint, MemoryStore, PresenceStore,
    RedisSettings, RedisStore,
};
use chat_transport::{ChatApi, CorsOrigins, HeaderLimit, Rate, RealtimeSettings, ServerSettings, Tenants};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::{Environment, JwtConfig, PlatformConfig, Settings};

/// The secret used in development when none is configured, so that `cargo run` works at once.
/// Production refuses to start with it.
pub const DEVELOPMENT_JWT_SECRET: &str = "chatd-development-secret";

/// Why chatd cannot start. Each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The storage backend handed in already feeds a realtime hub (a backend serves one chatd).
    #[error("storage: {0}")]
    Attached(#[from] AlreadyAttached),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// What was asked for.
        address: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The adapters chatd runs on, built from settings — or handed in by a test.
#[derive(Debug, Clone)]
pub struct Dependencies {
    /// Storage (one backend as store, event bus and presence) and the directory of profiles.
    pub adapters: Adapters,
    /// How tokens are checked.
    pub verifier: TokenVerifier,
}

impl Dependencies {
    /// Builds each adapter the settings ask for: Redis or memory, platform API or built-in
    /// directory, the pinned JWT algorithm.
    pub fn from_settings(settings: &Settings) -> Result<Self, StartupError> {
        let directory = directory(&settings.platform)?;
        let verifier = verifier(&settings.jwt, settings.env, "jwt")?;
        let history = settings.realtime.history_window().map_err(StartupError::Config)?;
        if let Some(cluster) = cluster(settings, history)? {
            return Ok(Self::with_backend(cluster, directory, verifier));
        }
        Ok(match redis(settings, history)? {
            Some(redis) => Self::with_backend(redis, directory, verifier),
            None => Self::with_backend(Arc::new(MemoryStore::with_history(history)), directory, verifier),
        })
    }

    /// One backend (Redis or memory) as store, bus and presence, with these identity adapters.
    pub fn with_backend<B>(backend: Arc<B>, directory: Arc<dyn Directory>, verifier: TokenVerifier) -> Self
    where
        B: ChatStore + EventBus + PresenceStore + 'static,
    {
        Self { adapters: Adapters::with_backend(backend, directory), verifier }
    }
}

/// The Redis backend the settings ask for, or `None` for the in-memory one.
fn redis(settings: &Settings, history: HistoryWindow) -> Result<Option<Arc<RedisStore>>, StartupError> {
    let config = &settings.redis;
    let Some(url) = config.effective_url() else {
        tracing::warn!(
            "no Redis configured: using the in-memory store; chats are lost on restart and not shared between instances"
        );
        return Ok(None);
    };
    let redis = RedisSettings {
        url: url.expose_secret().to_owned(),
        prefix: config.prefix.clone(),
        connect_timeout: Duration::from_millis(config.connect_timeout_ms),
        response_timeout: Duration::from_millis(config.response_timeout_ms),
        history,
    };
    let store = RedisStore::connect(&redis).map_err(|e| StartupError::Config(format!("redis.url: {e}")))?;
    tracing::info!(prefix = %config.prefix, "using Redis");
    Ok(Some(Arc::new(store)))
}

/// The Redis Cluster backend, when `redis.cluster` names seed nodes.
fn cluster(settings: &Settings, history: HistoryWindow) -> Result<Option<Arc<ClusterStore>>, StartupError> {
    let config = &settings.redis;
    if config.cluster.is_empty() {
        return Ok(None);
    }
    if config.repair_interval_ms == 0 {
        return Err(StartupError::Config("redis.repair_interval_ms: must be positive".into()));
    }
    let failpoint = match std::env::var("CHATD_FAILPOINT") {
        Ok(name) => Some(Failpoint::parse(&name).ok_or_else(|| {
            StartupError::Config(format!("CHATD_FAILPOINT: unknown failpoint {name:?} (known: after-chat-step)"))
        })?),
        Err(_) => None,
    };
    let store = ClusterStore::connect(&ClusterSettings {
        seeds: config.cluster.clone(),
        prefix: config.prefix.clone(),
        connect_timeout: Duration::from_millis(config.connect_timeout_ms),
        response_timeout: Duration::from_millis(config.response_timeout_ms),
        history,
        ack_replicas: config.ack_replicas,
        repair_interval: Duration::from_millis(config.repair_interval_ms),
        failpoint,
    })
    .map_err(|e| StartupError::Config(format!("redis.cluster: {e}")))?;
    tracing::info!(prefix = %config.prefix, seeds = ?config.cluster, "using Redis Cluster");
    Ok(Some(store))
}

fn directory(config: &PlatformConfig) -> Result<Arc<dyn Directory>, StartupError> {
    if let Some(api_url) = &config.api_url {
        let platform = PlatformDirectory::new(PlatformSettings {
            api_url: api_url.clone(),
            user_agent: config.user_agent.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            cache_ttl: Duration::from_secs(config.cache_ttl_seconds),
            cache_stale: Duration::from_secs(config.cache_stale_seconds),
            cache_capacity: config.cache_capacity,
        })
        .map_err(|e| StartupError::Config(e.to_string()))?;
        tracing::info!(api_url, "profiles from the platform API");
        return Ok(Arc::new(platform));
    }
    let builtin = match &config.profiles_file {
        Some(path) => BuiltinDirectory::from_json_file(path).map_err(|e| StartupError::Config(e.to_string()))?,
        None => BuiltinDirectory::new(),
    };
    tracing::info!(profiles_file = ?config.profiles_file, "no platform API configured: using the built-in directory");
    Ok(Arc::new(builtin))
}

/// The verifier of the JWT settings `config`, which are at `scope` (`jwt`, or a tenant's
/// `tenants.<handle>.jwt`) in the configuration. Only the top-level settings fall back on the
/// development secret, in development.
fn verifier(config: &JwtConfig, env: Environment, scope: &str) -> Result<TokenVerifier, StartupError> {
    // The algorithm names are case-sensitive (`HS256`); a wrong spelling is refused by the verifier.
    let is_hmac = config.algorithm.starts_with("HS");
    // A key file is only read for the algorithms that use one.
    let public_key_pem = match (&config.public_key, &config.public_key_file) {
        _ if is_hmac => None,
        (Some(pem), _) => Some(pem.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| StartupError::Config(format!("{scope}.public_key_file {}: {e}", path.display())))?,
        ),
        (None, None) => None,
    };
    let secret = match (&config.secret, env) {
        (Some(secret), _) => Some(secret.clone()),
        (None, _) if !is_hmac => None,
        (None, _) if scope != "jwt" => {
            return Err(StartupError::Config(format!("{scope}.secret is required for {}", config.algorithm)));
        }
        (None, Environment::Production) => {
            return Err(StartupError::Config(format!(
                "jwt.secret is required in production for {} (set CHATD_JWT__SECRET or SOCK_JWT_SECRET)",
                config.algorithm
            )));
        }
        (None, Environment::Development) => {
            tracing::warn!(
                "jwt.secret is not set: using the development secret; production refuses to start like this"
            );
            Some(SecretString::from(DEVELOPMENT_JWT_SECRET))
        }
    };
    TokenVerifier::new(&JwtSettings {
        algorithm: config.algorithm.clone(),
        secret,
        public_key_pem,
        user_claim: config.user_claim.clone(),
        topics_claim: Some(config.topics_claim.trim()).filter(|claim| !claim.is_empty()).map(str::to_owned),
        leeway_seconds: config.leeway_seconds,
        tenant_claim: Some(config.tenant_claim.trim()).filter(|claim| !claim.is_empty()).map(str::to_owned),
    })
    // The verifier names the top-level settings (`jwt.…`); a tenant's are under its scope.
    .map_err(|e| StartupError::Config(e.to_string().replacen("jwt.", &format!("{scope}."), 1)))
}

/// The tenants with an identity of their own (`tenants.<handle>`): each one's verifier and
/// directory, where it has them. Every handle must be a tenant of this chatd (`chat.handle` or a
/// value of `chat.tenants`), and a tenant's `jwt.header` the shared one: the header is read before
/// the tenant is known.
type Identities = Vec<(DomainHandle, Option<TokenVerifier>, Option<Arc<dyn Directory>>)>;

fn tenant_identities(settings: &Settings) -> Result<Identities, StartupError> {
    let known = |handle: &str| settings.chat.handle == handle || settings.chat.tenants.values().any(|h| h == handle);
    settings
        .tenants
        .iter()
        .map(|(handle, tenant)| {
            let scope = format!("tenants.{handle}");
            let parsed = DomainHandle::parse(handle).map_err(|e| StartupError::Config(format!("{scope}: {e}")))?;
            if !known(handle) {
                return Err(StartupError::Config(format!(
                    "{scope}: no tenant has this handle (it is neither chat.handle nor a value of chat.tenants)"
                )));
            }
            let verifier = match &tenant.jwt {
                Some(jwt) if jwt.header != settings.jwt.header => {
                    return Err(StartupError::Config(format!(
                        "{scope}.jwt.header: the token header is chatd-wide (jwt.header), not a tenant's"
                    )));
                }
                Some(jwt) => Some(verifier(jwt, settings.env, &format!("{scope}.jwt"))?),
                None => None,
            };
            let directory = tenant.platform.as_ref().map(directory).transpose()?;
            Ok((parsed, verifier, directory))
        })
        .collect()
}

/// chatd's API from the settings and the adapters: each setting turned into the library's type
/// for it, refused with a message naming the setting when it cannot hold that value.
pub fn chat_api(settings: &Settings, dependencies: Dependencies) -> Result<ChatApi, StartupError> {
    let chat = &settings.chat;
    let handle = |text: &str, setting: &str| {
        DomainHandle::parse(text).map_err(|e| StartupError::Config(format!("{setting}: {e}")))
    };
    let tenants = chat
        .tenants
        .iter()
        .map(|(host, tenant)| Ok((host.clone(), handle(tenant, &format!("chat.tenants.{host}"))?)))
        .collect::<Result<Vec<_>, StartupError>>()?;
    let mut tenants = Tenants::new(handle(&chat.handle, "chat.handle")?, tenants);
    if chat.max_per_page == 0 || chat.max_per_page > 1000 {
        return Err(StartupError::Config("chat.max_per_page must be between 1 and 1000".into()));
    }
    let refused = |message: &str| StartupError::Config(message.to_owned());
    let limits = &settings.limits;
    let service_settings = ServiceSettings {
        sends_per_second: limits.sends_per_second,
        // Documented: a burst of 0 counts as 1.
        send_burst: NonZeroU32::new(limits.send_burst).unwrap_or(NonZeroU32::MIN),
        max_text_chars: NonZeroUsize::new(chat.max_text_chars)
            .ok_or_else(|| refused("chat.max_text_chars must be positive"))?,
        paging: PagingLimits { default_per_page: chat.default_per_page, max_per_page: chat.max_per_page },
        idempotency_ttl: NonZeroU64::new(chat.idempotency_ttl_seconds)
            .map(NonZeroDuration::from_secs)
            .ok_or_else(|| refused("chat.idempotency_ttl_seconds must be positive"))?,
    };
    let header_limit = HeaderLimit::new(settings.http.header_limit_bytes)
        .map_err(|e| StartupError::Config(format!("http.header_limit_bytes {e}")))?;
    let token_header = HeaderName::try_from(settings.jwt.header.as_str()).map_err(|_| {
        StartupError::Config(format!("jwt.header {:?} is not a valid header name", settings.jwt.header))
    })?;
    let realtime = &settings.realtime;
    let positive = || {
        refused("realtime.queue_capacity, realtime.max_message_bytes and realtime.presence_partners must be positive")
    };
    let hub_settings = HubSettings {
        queue_capacity: NonZeroUsize::new(realtime.queue_capacity).ok_or_else(positive)?,
        connections_per_user: limits.connections_per_user,
        connections_total: limits.connections_total,
        topics_per_connection: limits.topics_per_connection,
        presence_ttl: PresenceTtl::new(Duration::from_millis(realtime.presence_ttl_ms))
            .map_err(|e| StartupError::Config(format!("realtime.presence_ttl_ms {e}")))?,
        replay_limit: usize::try_from(realtime.history_window().map_err(StartupError::Config)?.size)
            .unwrap_or(usize::MAX),
        presence_partners: NonZeroUsize::new(realtime.presence_partners).ok_or_else(positive)?,
    };
    let realtime_settings = RealtimeSettings {
        auth_timeout: Duration::from_millis(realtime.auth_timeout_ms),
        ping_interval: NonZeroU64::new(realtime.ping_interval_ms)
            .map(NonZeroDuration::from_millis)
            .ok_or_else(|| refused("realtime.ping_interval_ms must be positive"))?,
        ping_timeout: Duration::from_millis(realtime.ping_timeout_ms),
        max_message_bytes: NonZeroUsize::new(realtime.max_message_bytes).ok_or_else(positive)?,
        allowed_origins: realtime.allowed_origins.clone(),
        client_events: Rate { per_second: limits.client_events_per_second, burst: limits.client_event_burst },
        frames: Rate { per_second: limits.frames_per_second, burst: limits.frame_burst },
    };
    let cors = CorsOrigins::parse(&settings.http.cors_origins)
        .map_err(|e| StartupError::Config(format!("http.cors_origins: {e}")))?;
    let mut directories = Vec::new();
    for (tenant, verifier, directory) in tenant_identities(settings)? {
        if let Some(verifier) = verifier {
            tenants = tenants.with_verifier(tenant.clone(), verifier);
        }
        directories.extend(directory.map(|directory| (tenant, directory)));
    }
    let builder = ChatApi::builder(dependencies.adapters, dependencies.verifier, tenants)
        .service_settings(service_settings)
        .hub_settings(hub_settings)
        .realtime_settings(realtime_settings)
        .token_header(token_header)
        .body_limit(settings.http.body_limit_bytes)
        .header_limit(header_limit)
        .cors(cors)
        .error_stacks(settings.env != Environment::Production)
        .openapi(chat_transport::openapi().merge_from(<crate::telemetry::MetricsDoc as utoipa::OpenApi>::openapi()));
    let builder = directories
        .into_iter()
        .fold(builder, |builder, (tenant, directory)| builder.tenant_directory(tenant, directory));
    Ok(builder.build()?)
}

/// A chatd bound to its listener, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    hub: Hub,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the adapters from `settings`, binds `http.host:http.port`, and prepares the server.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind { address, source })?;
        Self::build_with(settings, listener, Dependencies::from_settings(settings)?)
    }

    /// Prepares the server on a bound `listener` with the given adapters.
    pub fn build_with(
        settings: &Settings,
        listener: TcpListener,
        dependencies: Dependencies,
    ) -> Result<Self, StartupError> {
        let bind_error = |address: String| move |source| StartupError::Bind { address, source };
        let port = listener.local_addr().map_err(bind_error("listener".into()))?.port();
        crate::telemetry::install_metrics();
        let chat = chat_api(settings, dependencies)?;
        let hub = chat.hub().clone();
        let demo = crate::demo::Demo::from_settings(settings);
        let app = move || {
            App::new()
                .wrap(chat.middleware())
                // The REST routes first: they are most of the traffic, and actix tries routes in
                // order.
                .configure(chat.rest_api())
                .configure(chat.realtime())
                .configure(chat.operations())
                .configure(|config| {
                    chat_transport::register_routes(
                        config,
                        &[("/metrics", "GET, HEAD", |resource| {
                            resource.route(chat_transport::get_or_head().to(crate::telemetry::metrics))
                        })],
                    )
                })
                .configure(crate::demo::configure(demo.clone()))
                .default_service(chat_transport::not_found())
        };
        // chatd handles the signals itself (the server does not), to close realtime connections
        // before stopping.
        let server_settings = ServerSettings {
            // Documented: 0 workers count as 1.
            workers: settings.http.workers.map(|workers| NonZeroUsize::new(workers).unwrap_or(NonZeroUsize::MIN)),
            shutdown_timeout: Duration::from_secs(settings.http.shutdown_timeout_seconds),
        };
        let server =
            chat_transport::serve(listener, &server_settings, app).map_err(bind_error(format!("port {port}")))?;
        Ok(Self { port, server, hub })
    }

    /// The port it listens on (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// This instance's realtime hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serves until `shutdown` resolves; then stops accepting, closes realtime connections with
    /// "going away" (1001), finishes in-flight requests (at most `http.shutdown_timeout_seconds`)
    /// and returns.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            () = shutdown => {}
        }
        tracing::info!("shutting down");
        self.hub.shut_down();
        // The server must keep being driven while it stops.
        let ((), result) = tokio::join!(handle.stop(true), server);
        result
    }

    /// Serves until SIGINT or SIGTERM (see [`Self::run_until`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(termination()).await
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn termination() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                interrupt.await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    interrupt.await.ok();
}
