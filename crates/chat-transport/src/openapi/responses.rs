//! The error answers of the routes as named, reusable responses. Each says its status, the codes it
//! carries and when; its body is the `Error` schema narrowed to those codes and that status. The
//! codes and statuses themselves come from `ApiError` (error.rs), the one place errors are mapped.

use utoipa::ToResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// A header an error answer carries.
#[derive(Clone, Copy)]
enum Header {
    /// `Retry-After: <seconds>`.
    RetryAfter,
    /// `Allow: <methods>`.
    Allow,
}

/// The response: the `Error` body with `code` one of `codes` (`None`: `null`, as the original sent
/// for some errors) and `status` the status.
fn error(status: u16, codes: &[Option<&'static str>], description: &str, headers: &[Header]) -> Response {
    let types = if codes.contains(&None) { vec![Type::String, Type::Null] } else { vec![Type::String] };
    let narrowed = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new().schema_type(SchemaType::from_iter(types)).enum_values(Some(codes.iter().copied())),
        )
        .property("status", ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some([status])));
    let body = AllOfBuilder::new().item(Ref::from_schema_name("Error")).item(narrowed);
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(body)).build());
    for header in headers {
        response = match header {
            Header::RetryAfter => response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1))))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            ),
            Header::Allow => response.header(
                "Allow",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some("The methods this path answers, e.g. `GET, POST`."))
                    .build(),
            ),
        };
    }
    response.build()
}

/// One code of a response's list: a string, or `null`.
macro_rules! code {
    (null) => {
        None
    };
    ($code:literal) => {
        Some($code)
    };
}

/// Declares a unit type per named response, with its `ToResponse`.
macro_rules! error_responses {
    ($($name:ident: $status:literal [$($code:tt),+ $(,)?] $description:literal $(, $header:ident)*;)+) => {
        $(
            #[doc = $description]
            pub(crate) struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let response = error($status, &[$(code!($code)),+], $description, &[$(Header::$header),*]);
                    (stringify!($name), response.into())
                }
            }
        )+
    };
}

error_responses! {
    InvalidToken: 401 ["INVALID_TOKEN_ERR"]
        "A token was sent and refused (malformed, no signature, wrong algorithm, bad signature, \
         expired, not yet valid, no valid user id, a topics claim that is not a list of topic ids).";
    Unauthenticated: 401 ["NOT_AUTHENTICATED", "INVALID_TOKEN_ERR"]
        "No token (`NOT_AUTHENTICATED`), or a token that was refused (`INVALID_TOKEN_ERR`).";
    BadPaging: 400 ["INVALID_ARGUMENT"]
        "`page`, `per_page` or `limit` is not a positive integer up to 4294967295, or is given twice.";
    BadEvents: 400 ["INVALID_ARGUMENT"]
        "`since` is missing, `limit` is not a positive integer, or `topic` is not a positive integer \
         up to 2^53−1.";
    BadHistory: 400 ["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT"]
        "`target` is neither `user` nor `topic` (`MESSAGES_INVALID_TARGET`); the id is not a positive \
         integer up to 2^53−1, or `page`, `per_page` or `limit` is not a positive integer up to \
         4294967295 or is given twice, `before`/`after` is not a message id of this chat, both are \
         given, or either is given with `page` (`INVALID_ARGUMENT`).";
    BadDelete: 400 ["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT"]
        "`target` is neither `user` nor `topic` (`MESSAGES_INVALID_TARGET`); the id is not a positive \
         integer up to 2^53−1 (`INVALID_ARGUMENT`).";
    BadSend: 400 ["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT", "MESSAGES_INVALID_TYPE", "BAD_REQUEST", null]
        "`target` is neither `user` nor `topic` (`MESSAGES_INVALID_TARGET`); the id is malformed, the \
         message is to the caller's own user id, the body is not a JSON object, or `text`/`image` \
         breaks its rules (`INVALID_ARGUMENT`); `type` is not `text` or `image` \
         (`MESSAGES_INVALID_TYPE`); the body could not be read (`BAD_REQUEST`). As in the original, \
         `code` is `null` when `text`/`image` is missing (`ArgumentError`) or the body is not JSON \
         (`SyntaxError`).";
    BadRead: 400 ["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT", "BAD_REQUEST", null]
        "`target` is neither `user` nor `topic` (`MESSAGES_INVALID_TARGET`); the id is malformed, the \
         body is not a JSON object, or `message` is not a message id (`INVALID_ARGUMENT`); the body \
         could not be read (`BAD_REQUEST`); the body is not JSON (`SyntaxError`, `code` `null`).";
    BadEdit: 400 ["MESSAGES_INVALID_TARGET", "INVALID_ARGUMENT", "BAD_REQUEST", null]
        "`target` is neither `user` nor `topic` (`MESSAGES_INVALID_TARGET`); the id is malformed, the \
         body is not a JSON object, or `text`, `image` or `status` breaks its rules \
         (`INVALID_ARGUMENT`); the body could not be read (`BAD_REQUEST`). As in the original, `code` \
         is `null` when nothing in the body applies to this message — e.g. `{}`, or only `text` for an \
         image message (`ArgumentError`, \"No valid data was supplied\") — or the body is not JSON \
         (`SyntaxError`).";
    TopicForbidden: 403 ["TOPIC_FORBIDDEN"]
        "Topic access control is on (`jwt.topics_claim`) and the caller's token does not grant this \
         topic.";
    MessageForbidden: 403 ["FORBIDDEN", "TOPIC_FORBIDDEN"]
        "Changing the text or image of, or deleting, someone else's message; marking one's own message \
         seen (`FORBIDDEN`). Topic access control is on and the caller's token does not grant this topic \
         (`TOPIC_FORBIDDEN`).";
    NoRoute: 404 ["NOT_FOUND"]
        "No route matches: a path parameter is empty.";
    MessageNotFound: 404 ["NOT_FOUND"]
        "The message id is not a UUID, or names no message of this chat (already deleted, or in \
         another chat or tenant) — or a path parameter is empty, so that no route matches.";
    ReadNotFound: 404 ["NOT_FOUND"]
        "`message` is not a UUID or names no message of this chat (`Message not found`), or the chat has \
         no message at all (`Chat not found`) — or a path parameter is empty, so that no route matches.";
    IdempotencyKeyReused: 422 ["IDEMPOTENCY_KEY_REUSED"]
        "The `Idempotency-Key` was used by the caller, within `chat.idempotency_ttl_seconds`, for a \
         send to another chat or with another body. Nothing was stored.";
    Conflict: 409 ["CONFLICT"]
        "Redis store only: the change lost to concurrent changes of the same message 32 times in a row. \
         Safe to retry.";
    PayloadTooLarge: 413 [null]
        "The body is larger than `http.body_limit_bytes` (1 MiB by default).";
    RateLimited: 429 ["RATE_LIMITED"]
        "More sends than `limits.sends_per_second` / `limits.send_burst` allow this user; nothing was \
         stored.", RetryAfter;
    StorageFailed: 500 ["INTERNAL_ERROR"]
        "A storage failure other than unavailability, such as a stored message that cannot be read.";
    StorageUnavailable: 503 ["STORAGE_UNAVAILABLE"]
        "Redis cannot be reached or did not answer in time.", RetryAfter;
    HeadersTooLarge: 431 ["HEADERS_TOO_LARGE"]
        "The request line and headers are larger than `http.header_limit_bytes` (16 KiB by default).";
    MethodNotAllowed: 405 ["METHOD_NOT_ALLOWED"]
        "The path exists but does not answer this method (`HEAD` and `OPTIONS` included).", Allow;
}
