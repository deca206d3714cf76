//! chatd's HTTP face: the actix-web routes of the original REST API, the wire JSON, and the one
//! mapping from every error to a status code and the error body.
//!
//! [`ChatApi::builder`] takes the adapters (`chat_service::Adapters`), a token verifier, the
//! tenants and typed settings, and builds the use cases, the realtime hub and the routes. An app
//! mounts the pieces it wants — [`ChatApi::rest_api`], [`ChatApi::realtime`],
//! [`ChatApi::operations`] — at its root or in a `web::scope`, wrapped in
//! [`ChatApi::middleware`] (request ids, metrics, CORS, the header limit, and the JSON error body
//! on every error of chatd's routes, and of nothing else), and may give chatd's JSON 404
//! ([`not_found`]) as the default service where chatd answers every path. It serves that app with
//! [`serve`] — actix-web's `HttpServer`, but for WebSocket upgrades, which it takes over from
//! actix-http so that an open realtime connection keeps only what its WebSocket needs — or with
//! its own `HttpServer`, which then calls [`remember_sockets`] on each connection
//! (`.on_connect(remember_sockets)`) so that the realtime doors can close their WebSockets' TCP
//! connections promptly. The API describes itself in an OpenAPI 3.1 document ([`openapi`]),
//! served at `GET /api/openapi.json`.

mod api;
mod auth;
mod catch_up;
mod cors;
mod error;
mod header_limit;
mod http_metrics;
mod middleware;
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
use actix_web::web::Bytes;
use chat_identity::TokenVerifier;
use chat_service::{ChatService, Hub};

pub use api::{ChatApi, ChatApiBuilder};
pub use cors::CorsOrigins;
pub use error::ApiError;
pub use header_limit::HeaderLimit;
pub use middleware::ChatMiddleware;
pub use openapi::openapi;
pub use realtime::{CLOSE_TIMEOUT, Rate, RealtimeSettings, remember_sockets};
pub use request_id::REQUEST_ID;
pub use routes::{Route, get_or_head, not_found, register_routes, resource};
pub use server::{ServerSettings, serve};
pub use tenant::Tenants;

/// Largest request body accepted (the original's limit).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What the routes are built from (see [`ChatApiBuilder`]).
#[derive(Debug)]
struct ApiParts {
    service: ChatService,
    hub: Hub,
    /// How tokens are checked, for tenants without a verifier of their own.
    verifier: TokenVerifier,
    token_header: HeaderName,
    tenants: Tenants,
    body_limit: usize,
    header_limit: HeaderLimit,
    cors: CorsOrigins,
    realtime: RealtimeSettings,
    /// Whether error bodies carry the original's one-line `stack`.
    error_stacks: bool,
}

/// Everything the routes need, cheap to clone into each worker.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    inner: Arc<ApiParts>,
    sessions: Arc<realtime::Sessions>,
    /// The OpenAPI document as served, serialised once.
    openapi_json: Bytes,
}

impl ApiState {
    fn service(&self) -> &ChatService {
        &self.inner.service
    }

    /// How tokens presented to `tenant` are checked: its own verifier, or the shared one.
    fn verifier(&self, tenant: &chat_domain::DomainHandle) -> &TokenVerifier {
        self.inner.tenants.verifier(tenant).unwrap_or(&self.inner.verifier)
    }

    fn hub(&self) -> &Hub {
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
