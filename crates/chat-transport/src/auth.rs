//! Who is calling: the JWT from the configured header (default `X-Auth-Token`) or
//! `Authorization: Bearer`, verified into a user and the topics granted to them.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use chat_domain::{Caller, DomainHandle};

use crate::{ApiError, ApiState};

/// The caller, if the request carries a token. A token that fails verification is an error even
/// where no authentication is needed (the original answered 401 `INVALID_TOKEN_ERR` on `GET /api`).
#[derive(Debug, Clone)]
pub(crate) struct MaybeCaller(pub(crate) Option<Caller>);

/// The caller of a route that needs one: 401 `NOT_AUTHENTICATED` without a token.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Caller);

/// The token a request carries in the configured header or as `Authorization: Bearer`.
pub(crate) fn token(request: &HttpRequest, state: &ApiState) -> Option<String> {
    let headers = request.headers();
    let from_header = headers.get(&state.inner.token_header).and_then(|v| v.to_str().ok()).map(str::trim);
    let from_bearer = || {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
    };
    from_header.filter(|t| !t.is_empty()).or_else(|| from_bearer().filter(|t| !t.is_empty())).map(str::to_owned)
}

fn caller(request: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let state = request.app_data::<web::Data<ApiState>>().ok_or_else(ApiError::state_missing)?;
    match token(request, state) {
        None => Ok(None),
        // A REST client sends its token with every request: checked once, remembered until it
        // expires. Checked with the identity of the tenant the request is for.
        Some(token) => {
            let tenant = crate::tenant::of(request, state);
            state.verifier(tenant).verify_remembered(&token, Some(tenant.as_str())).map(Some).map_err(ApiError::from)
        }
    }
}

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(request).map(MaybeCaller))
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(request).and_then(|user| user.map(Authenticated).ok_or_else(ApiError::not_authenticated)))
    }
}

/// Verifies `token`, presented to `tenant`, with that tenant's identity (a realtime connection's,
/// once).
pub(crate) fn verify(
    state: &ApiState,
    tenant: &DomainHandle,
    token: &str,
) -> Result<Caller, chat_identity::TokenError> {
    state.verifier(tenant).verify_for(token, Some(tenant.as_str()))
}

/// The token a realtime connection brings when it opens: `?token=` in the URL (browsers cannot set
/// headers on a WebSocket), else the headers.
pub(crate) fn connect_token(request: &HttpRequest, state: &ApiState) -> Option<String> {
    query_value(request, "token").or_else(|| token(request, state))
}

/// The first non-empty value of query parameter `key`.
pub(crate) fn query_value(request: &HttpRequest, key: &str) -> Option<String> {
    web::Query::<Vec<(String, String)>>::from_query(request.query_string()).ok().and_then(|query| {
        query.into_inner().into_iter().find_map(|(k, value)| (k == key && !value.is_empty()).then_some(value))
    })
}
