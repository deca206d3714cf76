//! chatd's HTTP face: the actix-web routes of the original REST API, the wire JSON, and the one
//! mapping from every error to a status code and the error body.
//!
//! An embedding application mounts the API into its own `App` with [`configure`] and wraps it in
//! [`error_bodies`] so that every error, even one actix produces itself, has the same JSON shape
//! (and in [`header_limit`] to answer oversized heads with it too). It serves that app with
//! [`serve`] — actix-web's `HttpServer`, but for WebSocket upgrades, which it takes over from
//! actix-http so that an open realtime connection keeps only what its WebSocket needs — or with
//! its own `HttpServer`, which then calls [`remember_sockets`] on each connection
//! (`.on_connect(remember_sockets)`) so that the realtime doors can close their WebSockets' TCP
//! connections promptly. The API describes itself in an OpenAPI 3.1 document ([`openapi`]),
//! served at `GET /api/openapi.json`.

mod auth;
mod catch_up;
mod cors;
mod error;
mod header_limit;
mod http_metrics;
mod openapi;
mod realtime;
mod request_id;
mod routes;
mod server;
mod tenant;
mod wire;

/// The realtime protocol decoders, for the fuzz targets in `fuzz/` only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use realtime::fuzzing;

use std::sync::Arc;

use actix_web::http::header::HeaderName;
use actix_web::web;
use actix_web::web::Bytes;
use chat_identity::TokenVerifier;
use chat_service::{ChatService, Hub};

pub use cors::{CorsOrigins, cors};
pub use error::{ApiError, error_bodies};
pub use header_limit::{DEFAULT_HEADER_LIMIT, header_limit};
pub use http_metrics::http_metrics;
pub use openapi::openapi;
pub use realtime::{CLOSE_TIMEOUT, Rate, RealtimeSettings, remember_sockets};
pub use request_id::{REQUEST_ID, request_ids};
pub use routes::{Route, get_or_head, register_routes, resource};
pub use server::{ServerSettings, serve};
pub use tenant::Tenants;

/// Largest request body accepted (the original's limit).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What the routes are built from.
#[derive(Debug)]
pub struct ApiParts {
    /// The use cases.
    pub service: ChatService,
    /// This process's realtime hub.
    pub hub: Hub,
    /// How tokens are checked, for tenants without a verifier of their own (see
    /// [`Tenants::with_verifier`]).
    pub verifier: TokenVerifier,
    /// The header carrying the token (`Authorization: Bearer` is always read too).
    pub token_header: HeaderName,
    /// `Host` → domain handle.
    pub tenants: Tenants,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Largest request head (request line and headers), in bytes; see [`header_limit`].
    pub header_limit: usize,
    /// Realtime timings and limits.
    pub realtime: RealtimeSettings,
    /// Whether error bodies carry the original's one-line `stack` (`<name>: <what happened>`), as
    /// it did outside production. Never frames or internals.
    pub error_stacks: bool,
    /// The OpenAPI document served at `GET /api/openapi.json`: [`openapi()`], plus whatever routes
    /// the embedding application serves itself. Served as configured: with this chatd's text length
    /// and token header, and the `431` of [`header_limit`] on every operation.
    pub openapi: utoipa::openapi::OpenApi,
}

/// Everything the routes need, cheap to clone into each worker.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<ApiParts>,
    sessions: Arc<realtime::Sessions>,
    /// The OpenAPI document as served, serialised once.
    openapi_json: Bytes,
}

impl ApiState {
    /// The state of the API.
    pub fn new(mut parts: ApiParts) -> Self {
        let max_text_chars = parts.service.settings().max_text_chars;
        openapi::as_configured(&mut parts.openapi, max_text_chars, parts.token_header.as_str());
        // Serialising the document's plain data cannot fail.
        let openapi_json = Bytes::from(serde_json::to_vec(&parts.openapi).unwrap_or_default());
        Self { inner: Arc::new(parts), sessions: Arc::default(), openapi_json }
    }

    fn service(&self) -> &ChatService {
        &self.inner.service
    }

    /// The header carrying the token (what [`cors`] must let browsers send).
    pub fn token_header(&self) -> &HeaderName {
        &self.inner.token_header
    }

    /// How tokens presented to `tenant` are checked: its own verifier, or the shared one.
    fn verifier(&self, tenant: &chat_domain::DomainHandle) -> &TokenVerifier {
        self.inner.tenants.verifier(tenant).unwrap_or(&self.inner.verifier)
    }

    /// This process's realtime hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    fn sessions(&self) -> &realtime::Sessions {
        &self.sessions
    }

    fn realtime(&self) -> &RealtimeSettings {
        &self.inner.realtime
    }

    /// The OpenAPI document, as served (a cheap clone of the bytes).
    fn openapi_json(&self) -> Bytes {
        self.openapi_json.clone()
    }
}

/// Registers the REST routes (`/`, `/healthz`, `/readyz`, `/api`, `/api/openapi.json`, `/api/list`,
/// `/api/{target}/{id}`, `/api/{target}/{id}/{message_id}`), the realtime doors (`/ws`, `/socket.io/`) and the JSON 404
/// for every other path. Each path also answers with one trailing slash, and each `GET` route
/// `HEAD` (see [`register_routes`], which an embedding app can use for routes of its own).
pub fn configure(state: ApiState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| routes::register(config, state)
}
