//! chatd's HTTP face: the actix-web routes of the original REST API, the wire JSON, and the one
//! mapping from every error to a status code and the error body.
//!
//! An embedding application mounts the API into its own `App` with [`configure`] and wraps it in
//! [`error_bodies`] so that every error, even one actix produces itself, has the same JSON shape.

mod auth;
mod error;
mod routes;
mod tenant;
mod wire;

use std::sync::Arc;

use actix_web::http::header::HeaderName;
use actix_web::web;
use chat_identity::TokenVerifier;
use chat_service::ChatService;

pub use error::{ApiError, error_bodies};
pub use tenant::Tenants;

/// Largest request body accepted (the original's limit).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Everything the routes need, cheap to clone into each worker.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<ApiStateInner>,
}

#[derive(Debug)]
struct ApiStateInner {
    service: ChatService,
    verifier: TokenVerifier,
    token_header: HeaderName,
    tenants: Tenants,
    body_limit: usize,
}

impl ApiState {
    /// The state of the API: the use cases, how to verify tokens and from which header, how
    /// requests map to tenants, and the largest body accepted.
    pub fn new(
        service: ChatService,
        verifier: TokenVerifier,
        token_header: HeaderName,
        tenants: Tenants,
        body_limit: usize,
    ) -> Self {
        Self {
            inner: Arc::new(ApiStateInner {
                service,
                verifier,
                token_header,
                tenants,
                body_limit,
            }),
        }
    }

    fn service(&self) -> &ChatService {
        &self.inner.service
    }
}

/// Registers the routes (`/`, `/api`, `/api/list`, `/api/{target}/{id}`,
/// `/api/{target}/{id}/{message_id}`) and the JSON 404 for every other path.
pub fn configure(state: ApiState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| routes::register(config, state)
}
