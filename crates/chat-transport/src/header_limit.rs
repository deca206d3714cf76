//! A limit on the size of a request's head (request line and headers): larger heads are answered
//! 431 with the error body before any route runs.
//!
//! actix-http refuses heads over 128 KiB itself, with a bare 431 and no body; this limit sits well
//! below that, so every realistic oversized head gets the same JSON error as any other bad input.
//! It is part of [`crate::ChatMiddleware`], which carries its [`HeaderLimit`] itself: it holds
//! wherever the middleware wraps (an `App`, or a `web::scope` of the host's).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use chat_service::InvalidSetting;

use crate::ApiError;

/// The largest request head (request line and headers) accepted, in bytes: 1024 to 65536.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeaderLimit(usize);

impl HeaderLimit {
    /// Node.js's default, which the original service had: 16 KiB.
    pub const DEFAULT: Self = Self(16 * 1024);

    /// `bytes`, if it is between 1024 and 65536: below, ordinary requests (a token, a user agent)
    /// would not fit; above, heads that actix-http reads whole anyway would pass.
    pub fn new(bytes: usize) -> Result<Self, InvalidSetting> {
        if (1024..=65536).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(InvalidSetting::new("between 1024 and 65536", bytes))
        }
    }

    /// The limit in bytes.
    pub const fn get(self) -> usize {
        self.0
    }
}

impl Default for HeaderLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The size of the head as sent: `METHOD target HTTP/1.1`, then `name: value` per header, each line
/// with its CRLF.
fn head_size(request: &ServiceRequest) -> usize {
    let target = request.uri().path_and_query().map_or(1, |target| target.as_str().len());
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    request_line
        + request.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum::<usize>()
}

/// Middleware (for `actix_web::middleware::from_fn`) answering a head over `limit` with 431
/// `HEADERS_TOO_LARGE` (with the one-line `stack` when `stack`).
pub(crate) async fn header_limit<B: MessageBody>(
    limit: HeaderLimit,
    stack: bool,
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if head_size(&request) > limit.get() {
        let response = ApiError::headers_too_large(limit.get()).response(stack);
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_outside_1024_to_65536_is_refused() {
        for refused in [0, 1023, 65537] {
            assert!(HeaderLimit::new(refused).is_err(), "{refused}");
        }
        assert_eq!(HeaderLimit::new(1024).map(HeaderLimit::get), Ok(1024));
        assert_eq!(HeaderLimit::new(65536).map(HeaderLimit::get), Ok(65536));
    }
}
