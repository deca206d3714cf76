//! The error body, `{"error": true, "code", "name", "message", "status"}` (plus `stack` outside
//! production), and the one place every error becomes a status code and that body. Where the
//! original service had an error, its status, code, name and message are kept word for word.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use chat_domain::DomainError;
use chat_identity::TokenError;
use chat_service::ServiceError;
use chat_storage::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    /// `None` where the original service sent `"code": null`.
    code: Option<&'static str>,
    name: &'static str,
    message: String,
    /// What the first line of `stack` says after the name, where that is not the message (the
    /// original's internal text: `Route at /api/nothing was not found`).
    detail: Option<String>,
    /// Seconds to wait before trying again (the `Retry-After` header).
    retry_after: Option<u64>,
    /// The methods a route does answer (the `Allow` header of a 405).
    allow: Option<&'static str>,
}

/// The body of every error answer (the original service's).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// Always `true`.
    #[schema(schema_with = crate::openapi::schemas::always_true)]
    error: bool,
    /// Stable, for programs: `INVALID_ARGUMENT`, `NOT_AUTHENTICATED`, …; `null` for the errors the
    /// original service sent without a code.
    #[schema(value_type = Option<String>)]
    code: Option<&'a str>,
    /// The error's class as the original named it: `ArgumentError`, `JsonWebTokenError`, …
    name: &'a str,
    /// For people.
    message: &'a str,
    /// The HTTP status again.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// Outside production only (`env`), as in the original: one line, `<name>: <what happened>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    stack: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, name: &'static str, message: impl Into<String>) -> Self {
        Self::uncoded(status, name, message).with_code(code)
    }

    /// An error the original service sent with `"code": null`.
    fn uncoded(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self { status, code: None, name, message: message.into(), detail: None, retry_after: None, allow: None }
    }

    fn with_code(self, code: &'static str) -> Self {
        Self { code: Some(code), ..self }
    }

    fn with_message(self, message: impl Into<String>) -> Self {
        Self { message: message.into(), ..self }
    }

    fn with_detail(self, detail: impl Into<String>) -> Self {
        Self { detail: Some(detail.into()), ..self }
    }

    /// 401: the request carries no token.
    pub fn not_authenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", "UnauthenticatedError", "You are not authenticated")
    }

    /// 401: the token is not valid, named and worded as the original's (Node's `jsonwebtoken`).
    pub fn invalid_token(error: &TokenError) -> Self {
        let refused = |name| Self::new(StatusCode::UNAUTHORIZED, "INVALID_TOKEN_ERR", name, error.to_string());
        match error {
            // The original answered a token that is no JWT at all in words of its own.
            TokenError::Malformed => refused("JsonWebTokenError")
                .with_detail(error.to_string())
                .with_message("Your token is invalid - please check it and try again"),
            TokenError::SignatureRequired | TokenError::Algorithm | TokenError::Signature | TokenError::BadClaim(_) => {
                refused("JsonWebTokenError")
            }
            TokenError::Expired => refused("TokenExpiredError"),
            TokenError::NotActive => refused("NotBeforeError"),
            TokenError::NoUserId => refused("UnauthenticatedError"),
            // chatd's own: the original had no topic access control.
            TokenError::BadTopics => {
                refused("UnauthorizedError").with_message("Invalid token: its topics claim is not a list of topic ids")
            }
            // chatd's own: a token for another tenant (`jwt.tenant_claim`).
            TokenError::OtherTenant => {
                refused("UnauthorizedError").with_message("Invalid token: not issued for this site")
            }
        }
    }

    /// 400: the body is not JSON (the original's body parser's `SyntaxError`).
    pub fn invalid_json(why: &str) -> Self {
        Self::uncoded(StatusCode::BAD_REQUEST, "SyntaxError", format!("The body is not valid JSON: {why}"))
    }

    /// 400: an argument is wrong.
    pub fn argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "ArgumentError", message)
    }

    /// 413: the body is over the limit (the original's body parser's words).
    fn payload_too_large() -> Self {
        Self::uncoded(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError", "request entity too large")
    }

    /// 431: the request line and headers are larger than `limit` bytes.
    pub(crate) fn headers_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            "RequestHeaderFieldsTooLargeError",
            format!("The request line and headers are larger than {limit} bytes"),
        )
    }

    /// 403: a browser page from an origin not on `realtime.allowed_origins`.
    pub(crate) fn origin_forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "ORIGIN_FORBIDDEN", "ForbiddenError", "This origin may not connect")
    }

    /// 405: the route exists, the method does not; `allow` lists the methods it does answer.
    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "MethodNotAllowedError",
                format!("Method not allowed on this route; it answers {allow}"),
            )
        }
    }

    /// 404: no route at `path`.
    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "RouteNotFoundError",
            "Route not found - please check your URL and try again",
        )
        .with_detail(format!("Route at {path} was not found"))
    }

    /// 500: the routes were mounted without their state — a wiring bug.
    pub(crate) fn state_missing() -> Self {
        tracing::error!("the chat API state is not registered in the app");
        Self::internal(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn internal(status: StatusCode) -> Self {
        Self::new(status, "INTERNAL_ERROR", "InternalServerError", "Something went wrong")
    }

    /// The error for a response actix made itself (an oversized body, a wrong method, …) to a
    /// request for `path`.
    fn from_status(status: StatusCode, path: &str) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::route_not_found(path),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "METHOD_NOT_ALLOWED", "MethodNotAllowedError", "Method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(),
            status if status.is_client_error() => {
                Self::new(status, "BAD_REQUEST", "BadRequestError", status.canonical_reason().unwrap_or("Bad request"))
            }
            status => Self::internal(status),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code; `None` for the errors the original sent with `"code": null`.
    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error's name, as the original named it (`ArgumentError`, `JsonWebTokenError`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The answer: status, headers and the error body, with the one-line `stack` when `stack`.
    pub(crate) fn response(&self, stack: bool) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        let stack = stack.then(|| format!("{}: {}", self.name, self.detail.as_deref().unwrap_or(&self.message)));
        response.json(ErrorBody {
            error: true,
            code: self.code,
            name: self.name,
            message: &self.message,
            status: self.status.as_u16(),
            stack,
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.name, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The body without `stack`; [`crate::ChatMiddleware`] adds it outside production.
    fn error_response(&self) -> HttpResponse<BoxBody> {
        self.response(false)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::InvalidTarget(_) => {
                Self::new(StatusCode::BAD_REQUEST, "MESSAGES_INVALID_TARGET", "ArgumentError", message)
            }
            DomainError::InvalidType(_) => {
                Self::new(StatusCode::BAD_REQUEST, "MESSAGES_INVALID_TYPE", "ArgumentError", message)
            }
            DomainError::MissingContent(_) | DomainError::NothingToApply => {
                Self::uncoded(StatusCode::BAD_REQUEST, "ArgumentError", message)
            }
            DomainError::InvalidArgument(_) => Self::argument(message),
            DomainError::MessageNotFound | DomainError::ChatNotFound => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "NotFound", message)
            }
            DomainError::NotAuthor | DomainError::NotRecipient => {
                Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", "ForbiddenError", message)
            }
            DomainError::TopicForbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, "TOPIC_FORBIDDEN", "ForbiddenError", message)
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        Self::invalid_token(&error)
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Domain(rule) => rule.into(),
            ServiceError::Conflict => Self::new(StatusCode::CONFLICT, "CONFLICT", "ConflictError", error.to_string()),
            ServiceError::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "UnprocessableEntityError",
                error.to_string(),
            ),
            ServiceError::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "TooManyRequestsError", error.to_string())
            },
            ServiceError::TooManyConnections(_) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_CONNECTIONS",
                "TooManyRequestsError",
                error.to_string(),
            ),
            ServiceError::TooManyTopics(_) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_TOPICS", "TooManyRequestsError", error.to_string())
            }
            ServiceError::Storage(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "storage unavailable");
                Self {
                    retry_after: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "STORAGE_UNAVAILABLE",
                        "ServiceUnavailableError",
                        "Storage is unavailable, try again shortly",
                    )
                }
            }
            ServiceError::Storage(cause) => {
                tracing::error!(%cause, "storage failed");
                Self::internal(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// Middleware (part of [`crate::ChatMiddleware`]) that gives every error response the error body,
/// so clients see one shape: those actix makes itself (an oversized body, a bad path) get one made
/// from their status, and when `stack` (outside production) chatd's own get their one-line
/// `stack`. It sees only the responses of what it wraps: chatd's routes, not a host app's.
pub(crate) fn error_bodies<B: 'static>(stack: bool) -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(move |response: ServiceResponse<B>| {
        let own = response.response().error().and_then(|error| error.as_error::<ApiError>());
        let is_json = || {
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("application/json"))
        };
        let error = match own {
            Some(error) if stack => error.clone(),
            // Already the error body (or another JSON answer of its own, like an Engine.IO error's).
            Some(_) => return Ok(ErrorHandlerResponse::Response(response.map_into_left_body())),
            None if is_json() => return Ok(ErrorHandlerResponse::Response(response.map_into_left_body())),
            None => ApiError::from_status(response.status(), response.request().path()),
        };
        let (request, _) = response.into_parts();
        let response = ServiceResponse::new(request, error.response(stack));
        Ok(ErrorHandlerResponse::Response(response.map_into_right_body()))
    })
}
