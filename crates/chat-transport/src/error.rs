//! The error body, `{"error": true, "code", "name", "message", "status"}`, and the one place every
//! error becomes a status code and that body.

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
    code: Option<&'static str>,
    name: &'static str,
    message: String,
    /// Seconds to wait before trying again (the `Retry-After` header).
    retry_after: Option<u64>,
    /// The methods a route does answer (the `Allow` header of a 405).
    allow: Option<&'static str>,
}

/// The body of every error answer (the original service's, without `stack`).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// Always `true`.
    #[schema(schema_with = crate::openapi::schemas::always_true)]
    error: bool,
    /// Stable, for programs: `INVALID_ARGUMENT`, `NOT_AUTHENTICATED`, …
    #[schema(value_type = String)]
    code: Option<&'a str>,
    /// The error's class as the original named it: `ArgumentError`, `UnauthenticatedError`, …
    name: &'a str,
    /// For people; may change.
    message: &'a str,
    /// The HTTP status again.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, name: &'static str, message: impl Into<String>) -> Self {
        Self { status, code: Some(code), name, message: message.into(), retry_after: None, allow: None }
    }

    /// 401: the request carries no token.
    pub fn not_authenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", "UnauthenticatedError", "You are not authenticated")
    }

    /// 401: the token is not valid.
    pub fn invalid_token(error: &TokenError) -> Self {
        let message = match error {
            TokenError::Invalid(why) => format!("Invalid token: {why}"),
            TokenError::NoUserId => "Invalid token: it carries no valid user id".to_owned(),
            TokenError::BadTopics => "Invalid token: its topics claim is not a list of topic ids".to_owned(),
        };
        Self::new(StatusCode::UNAUTHORIZED, "INVALID_TOKEN_ERR", "UnauthorizedError", message)
    }

    /// 400: the body is not JSON.
    pub fn invalid_json(why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            "BadRequestError",
            format!("The body is not valid JSON: {why}"),
        )
    }

    /// 400: an argument is wrong.
    pub fn argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "ArgumentError", message)
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

    /// 404: no route at this path.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "RouteNotFoundError", "Route not found")
    }

    /// 500: the routes were mounted without their [`crate::ApiState`] — a wiring bug.
    pub(crate) fn state_missing() -> Self {
        tracing::error!("the chat API state is not registered in the app");
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The error for a response actix made itself (an oversized body, a wrong method, …).
    fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::route_not_found(),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "METHOD_NOT_ALLOWED", "MethodNotAllowedError", "Method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "PAYLOAD_TOO_LARGE", "PayloadTooLargeError", "The request body is too large")
            }
            status if status.is_client_error() => {
                Self::new(status, "BAD_REQUEST", "BadRequestError", status.canonical_reason().unwrap_or("Bad request"))
            }
            status => Self::new(status, "INTERNAL_ERROR", "InternalServerError", "Something went wrong"),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> Option<&'static str> {
        self.code
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

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        response.json(ErrorBody {
            error: true,
            code: self.code,
            name: self.name,
            message: &self.message,
            status: self.status.as_u16(),
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::InvalidTarget(_) => {
                Self::new(StatusCode::BAD_REQUEST, "MESSAGES_INVALID_TARGET", "ArgumentError", message)
            }
            DomainError::InvalidType => {
                Self::new(StatusCode::BAD_REQUEST, "MESSAGES_INVALID_TYPE", "ArgumentError", message)
            }
            DomainError::InvalidArgument(_) | DomainError::NothingToApply => Self::argument(message),
            DomainError::MessageNotFound => Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "NotFoundError", message),
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
                Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// Middleware that gives every error response without a JSON body (those actix makes itself: an
/// oversized body, an unknown method, a bad path) the error body, so clients see one shape.
pub fn error_bodies<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let error = ApiError::from_status(response.status());
        let (request, _) = response.into_parts();
        let response = ServiceResponse::new(request, error.error_response());
        Ok(ErrorHandlerResponse::Response(response.map_into_right_body()))
    })
}
