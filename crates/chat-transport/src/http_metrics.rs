//! Request metrics: `chatd_http_requests_total{route, method, status}` and
//! `chatd_http_request_duration_seconds{route}`, through the `metrics` facade (the daemon decides
//! where they go; chatd serves them as Prometheus text on `/metrics`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Middleware (for `actix_web::middleware::from_fn`) that counts and times every request by its
/// route pattern (`/api/{target}/{id}`, not the concrete path, to keep the series few).
pub(crate) async fn http_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().to_string();
    let response = next.call(request).await?;
    let mut route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    // `/api/list/` is the same route as `/api/list` (routing ignores a trailing slash).
    if route.len() > 1 && route.ends_with('/') {
        route.pop();
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("chatd_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("chatd_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}
