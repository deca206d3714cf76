//! A limit on the size of a request's head (request line and headers): larger heads are answered
//! 431 with the error body before any route runs.
//!
//! actix-http refuses heads over 128 KiB itself, with a bare 431 and no body; this limit sits well
//! below that, so every realistic oversized head gets the same JSON error as any other bad input.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::{ApiError, ApiState};

/// Default largest request head, in bytes: Node.js's default, which the original service had.
pub const DEFAULT_HEADER_LIMIT: usize = 16 * 1024;

/// The size of the head as sent: `METHOD target HTTP/1.1`, then `name: value` per header, each line
/// with its CRLF.
fn head_size(request: &ServiceRequest) -> usize {
    let target = request.uri().path_and_query().map_or(1, |target| target.as_str().len());
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    request_line
        + request.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum::<usize>()
}

/// Middleware (for `actix_web::middleware::from_fn`) answering a head over the configured limit
/// (`ApiParts::header_limit`) with 431 `HEADERS_TOO_LARGE`.
pub async fn header_limit<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let limit = request.app_data::<web::Data<ApiState>>().map(|state| state.inner.header_limit);
    match limit {
        Some(limit) if head_size(&request) > limit => {
            let response = ApiError::headers_too_large(limit).response(crate::error::shows_stack(request.request()));
            Ok(request.into_response(response).map_into_right_body())
        }
        _ => next.call(request).await.map(ServiceResponse::map_into_left_body),
    }
}
