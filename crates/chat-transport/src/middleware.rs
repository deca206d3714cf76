//! [`ChatMiddleware`]: chatd's middleware stack as one piece, to wrap around whatever mounts
//! chatd's routes — chatd's own `App`, or a `web::scope` of a host app — so that it sees chatd's
//! requests and answers, and nothing of the host's.

use actix_service::ServiceExt;
use actix_service::boxed::{self, BoxService};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::middleware::{Condition, Logger, Next, from_fn};
use futures_util::future::LocalBoxFuture;

use crate::ApiState;
use crate::cors::cors;
use crate::error::error_bodies;
use crate::header_limit::header_limit;
use crate::http_metrics::http_metrics;
use crate::request_id::request_ids;

/// chatd's middleware, outermost first:
///
/// 1. the access log: a line per request at info on target `chatd::http` (`%a "METHOD path"
///    status bytes time id=…`, the path without its query, which may carry a token), left out
///    when that target is not enabled;
/// 2. request ids: every answer carries `x-request-id` (the caller's own when it is sane);
/// 3. request metrics (`chatd_http_requests_total`, `chatd_http_request_duration_seconds`);
/// 4. CORS for the configured origins ([`crate::ChatApiBuilder::cors`]), outside the error bodies
///    so that error answers get the CORS headers too;
/// 5. the header limit ([`crate::ChatApiBuilder::header_limit`]): 431 `HEADERS_TOO_LARGE`;
/// 6. the error bodies: every error answer gets the JSON error body (those actix makes itself,
///    an oversized body or an unknown method, included), and outside production
///    ([`crate::ChatApiBuilder::error_stacks`]) the one-line `stack`.
///
/// Made by [`crate::ChatApi::middleware`], in the app factory (CORS is built once per worker).
/// Everything it needs it carries, so it works the same around an `App` or a `web::scope`; it sees
/// only the requests of what it wraps, and so never rewrites a host app's own answers.
#[derive(Debug, Clone)]
pub struct ChatMiddleware {
    state: ApiState,
}

impl ChatMiddleware {
    pub(crate) fn new(state: ApiState) -> Self {
        Self { state }
    }
}

impl<S, B> Transform<S, ServiceRequest> for ChatMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = BoxService<ServiceRequest, ServiceResponse<BoxBody>, actix_web::Error>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let parts = &self.state.inner;
        let (stack, limit) = (parts.error_stacks, parts.header_limit);
        let cors = Condition::new(parts.cors.enabled(), cors(&parts.cors, &parts.token_header));
        // actix's Logger formats every request up front; when its lines would be filtered out, it
        // is left out.
        let access_log = Condition::new(
            tracing::enabled!(target: "chatd::http", tracing::Level::INFO),
            // The path without the query: a realtime client may carry its token there.
            Logger::new("%a \"%{request}xi\" %s %b %Dms id=%{x-request-id}o")
                .custom_request_replace("request", |request| format!("{} {}", request.method(), request.path()))
                .log_target("chatd::http"),
        );
        Box::pin(async move {
            let service = error_bodies::<B>(stack).new_transform(service).await?;
            let service =
                from_fn(move |request: ServiceRequest, next: Next<_>| header_limit(limit, stack, request, next))
                    .new_transform(service)
                    .await?;
            let service = cors.new_transform(service).await?;
            let service = from_fn(http_metrics).new_transform(service).await?;
            let service = from_fn(request_ids).new_transform(service).await?;
            let service = access_log.new_transform(service).await?;
            // One body type and one service type, whatever the stack is made of.
            Ok(boxed::service(service.map(ServiceResponse::map_into_boxed_body)))
        })
    }
}
