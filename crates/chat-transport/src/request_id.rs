//! Request ids: every response carries `x-request-id` — the caller's own (when it is a sane token)
//! or a fresh one — and the request log line shows it, so a client's report finds its log line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The header, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn usable(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    (1..=64).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

/// Middleware (for `actix_web::middleware::from_fn`) that gives every response its request id.
pub(crate) async fn request_ids(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request.headers().get(&REQUEST_ID).filter(|id| usable(id)).cloned().unwrap_or_else(new_id);
    let mut response = next.call(request).await?;
    response.headers_mut().insert(REQUEST_ID, id);
    Ok(response)
}

/// 32 random hex digits (128 bits), like a UUID's simple form. From a fast generator seeded once
/// per thread: an id needs to be unique, not unguessable, and the system's generator cost a
/// system call on every request.
fn new_id() -> HeaderValue {
    let mut text = [0u8; 32];
    let text = uuid::Uuid::from_u128(fastrand::u128(..)).simple().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken_from_the_caller() {
        assert!(usable(&HeaderValue::from_static("abc-123_x.y")));
        assert!(!usable(&HeaderValue::from_static("")));
        assert!(!usable(&HeaderValue::from_static("has space")));
        assert!(!usable(&HeaderValue::from_str(&"x".repeat(65)).expect("ascii")));
    }

    #[test]
    fn new_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 32);
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit) && usable(&id), "{id:?}");
        }
    }
}
