//! [`ChatApi`] and its builder: from the adapters and typed settings to the use cases, this
//! process's realtime hub and the routes, as separate pieces an actix-web app mounts where it
//! likes — at its root (as chatd does) or under a `web::scope` of its own.

use std::sync::Arc;

use actix_web::http::header::HeaderName;
use actix_web::web;
use actix_web::web::Bytes;
use chat_domain::DomainHandle;
use chat_identity::{Directory, TokenVerifier};
use chat_service::{Adapters, ChatService, Hub, HubSettings, ServiceSettings};
use chat_storage::AlreadyAttached;

use crate::{
    ApiParts, ApiState, ChatMiddleware, CorsOrigins, DEFAULT_BODY_LIMIT, HeaderLimit, RealtimeSettings, Tenants,
    openapi, realtime, routes,
};

/// chatd's HTTP API, built: the use cases and the realtime hub behind it, and the pieces to mount.
///
/// ```
/// use actix_web::{App, HttpResponse, web};
/// use chat_domain::DomainHandle;
/// use chat_identity::{JwtSettings, TokenVerifier};
/// use chat_service::Adapters;
/// use chat_transport::{ChatApi, Tenants};
///
/// # #[actix_web::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = TokenVerifier::new(&JwtSettings { secret: Some("a secret".into()), ..JwtSettings::default() })?;
/// let tenants = Tenants::new(DomainHandle::parse("example")?, []);
/// let chat = ChatApi::builder(Adapters::in_memory(), verifier, tenants).build()?;
///
/// // The host's own routes and 404 stay its own; chatd answers under /chat.
/// let app = move || {
///     App::new()
///         .route("/", web::get().to(|| async { HttpResponse::Ok().body("the host's home page") }))
///         .service(
///             web::scope("/chat")
///                 .wrap(chat.middleware())
///                 .configure(chat.rest_api())
///                 .configure(chat.realtime()),
///         )
/// };
/// # let _ = actix_web::test::init_service(app()).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChatApi {
    state: ApiState,
}

impl ChatApi {
    /// A builder of the API over `adapters`, checking tokens with `verifier` (for the tenants
    /// without one of their own, [`Tenants::with_verifier`]), serving `tenants`. Every other
    /// setting starts at its default.
    pub fn builder(adapters: Adapters, verifier: TokenVerifier, tenants: Tenants) -> ChatApiBuilder {
        ChatApiBuilder {
            adapters,
            verifier,
            tenants,
            tenant_directories: Vec::new(),
            service: ServiceSettings::default(),
            hub: HubSettings::default(),
            realtime: RealtimeSettings::default(),
            token_header: HeaderName::from_static("x-auth-token"),
            body_limit: DEFAULT_BODY_LIMIT,
            header_limit: HeaderLimit::DEFAULT,
            cors: CorsOrigins::None,
            error_stacks: false,
            openapi: openapi(),
        }
    }

    /// The use cases, to call directly (no HTTP).
    pub fn service(&self) -> &ChatService {
        self.state.service()
    }

    /// This process's realtime hub. [`Hub::shut_down`] closes every realtime connection with
    /// "going away" (1001): call it when the server stops.
    pub fn hub(&self) -> &Hub {
        self.state.hub()
    }

    /// The REST API: `/api` (the welcome), `/api/openapi.json`, `/api/list` (the inbox),
    /// `/api/events` (catching up), and the chats' `/api/{target}/{id}`, `…/read` and
    /// `…/{message_id}`. For `App::configure` or `Scope::configure`; it sets no default service.
    pub fn rest_api(&self) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
        let state = self.state.clone();
        move |config| routes::register_rest(config, &state)
    }

    /// The realtime doors: `/ws` (JSON frames) and `/socket.io/` (Socket.IO). Under a scope the
    /// paths are the scope's (`/chat/ws`; a Socket.IO client then sets `path: "/chat/socket.io"`).
    pub fn realtime(&self) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
        let state = self.state.clone();
        move |config| routes::register_realtime(config, &state)
    }

    /// The operations endpoints: `/` (what this service is), `/healthz` (liveness) and `/readyz`
    /// (readiness: storage answers). chatd adds `/metrics` itself; an embedding app may leave
    /// all of them out, or mount them where its probes look.
    pub fn operations(&self) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
        let state = self.state.clone();
        move |config| routes::register_operations(config, &state)
    }

    /// chatd's middleware stack, to wrap around what mounts the pieces (see [`ChatMiddleware`]).
    /// Make one per worker, inside the app factory.
    pub fn middleware(&self) -> ChatMiddleware {
        ChatMiddleware::new(self.state.clone())
    }
}

/// Builds a [`ChatApi`] (see [`ChatApi::builder`]). Each setting has a type that holds only values
/// that work, so [`Self::build`] refuses nothing but a backend that already feeds a hub.
#[derive(Debug)]
pub struct ChatApiBuilder {
    adapters: Adapters,
    verifier: TokenVerifier,
    tenants: Tenants,
    tenant_directories: Vec<(DomainHandle, Arc<dyn Directory>)>,
    service: ServiceSettings,
    hub: HubSettings,
    realtime: RealtimeSettings,
    token_header: HeaderName,
    body_limit: usize,
    header_limit: HeaderLimit,
    cors: CorsOrigins,
    error_stacks: bool,
    openapi: utoipa::openapi::OpenApi,
}

impl ChatApiBuilder {
    /// The use cases' limits (text length, paging, send rate, idempotency).
    pub fn service_settings(mut self, settings: ServiceSettings) -> Self {
        self.service = settings;
        self
    }

    /// The hub's limits (queues, connections, presence).
    pub fn hub_settings(mut self, settings: HubSettings) -> Self {
        self.hub = settings;
        self
    }

    /// Realtime timings and limits (authentication deadline, heartbeat, frame size, origins).
    pub fn realtime_settings(mut self, settings: RealtimeSettings) -> Self {
        self.realtime = settings;
        self
    }

    /// The header carrying the token (default `X-Auth-Token`; `Authorization: Bearer` is always
    /// read too).
    pub fn token_header(mut self, header: HeaderName) -> Self {
        self.token_header = header;
        self
    }

    /// Largest request body, in bytes (default [`DEFAULT_BODY_LIMIT`]); larger ones are answered
    /// 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Largest request head (default [`HeaderLimit::DEFAULT`]); larger ones are answered 431 by
    /// [`ChatMiddleware`].
    pub fn header_limit(mut self, limit: HeaderLimit) -> Self {
        self.header_limit = limit;
        self
    }

    /// Browser origins whose pages may read the answers (default none: no CORS headers); applied
    /// by [`ChatMiddleware`].
    pub fn cors(mut self, origins: CorsOrigins) -> Self {
        self.cors = origins;
        self
    }

    /// Whether error bodies carry the original's one-line `stack` (`<name>: <what happened>`), as
    /// it did outside production (default `false`). Never frames or internals.
    pub fn error_stacks(mut self, stacks: bool) -> Self {
        self.error_stacks = stacks;
        self
    }

    /// The OpenAPI document served at `GET /api/openapi.json` (default [`openapi()`]): chatd's,
    /// plus whatever routes the embedding app documents (`openapi().merge_from(…)`). Served as
    /// configured: with the text length and token header set here, and the `431` of the header
    /// limit on every operation.
    pub fn openapi(mut self, document: utoipa::openapi::OpenApi) -> Self {
        self.openapi = document;
        self
    }

    /// Gives `tenant` a directory of its own (its own platform API), used for its profiles in place
    /// of the adapters' one.
    pub fn tenant_directory(mut self, tenant: DomainHandle, directory: Arc<dyn Directory>) -> Self {
        self.tenant_directories.push((tenant, directory));
        self
    }

    /// The use cases, the hub (started on the current Tokio runtime, if any, for presence upkeep)
    /// and the routes' state. Refused when the adapters' bus already feeds a hub: one backend,
    /// one hub.
    pub fn build(self) -> Result<ChatApi, AlreadyAttached> {
        let Adapters { store, bus, presence, directory } = self.adapters;
        let hub = Hub::new(bus, presence, self.hub)?;
        let service = self
            .tenant_directories
            .into_iter()
            .fold(ChatService::new(store, directory, self.service), |service, (tenant, directory)| {
                service.with_tenant_directory(tenant, directory)
            });
        let mut document = self.openapi;
        openapi::as_configured(&mut document, service.settings().max_text_chars.get(), self.token_header.as_str());
        // Serialising the document's plain data cannot fail.
        let openapi_json = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
        let parts = ApiParts {
            service,
            hub,
            verifier: self.verifier,
            token_header: self.token_header,
            tenants: self.tenants,
            body_limit: self.body_limit,
            header_limit: self.header_limit,
            cors: self.cors,
            realtime: self.realtime,
            error_stacks: self.error_stacks,
        };
        let state =
            ApiState { inner: Arc::new(parts), sessions: Arc::new(realtime::Sessions::default()), openapi_json };
        Ok(ChatApi { state })
    }
}
