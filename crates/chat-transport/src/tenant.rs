//! Which tenant a request belongs to — its `Host` looked up in the configured table, else the
//! default domain handle — and, for a tenant with an identity of its own, how its tokens are
//! checked.

use std::collections::HashMap;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::HOST;
use actix_web::{FromRequest, HttpRequest, web};
use chat_domain::DomainHandle;
use chat_identity::TokenVerifier;

use crate::{ApiError, ApiState};

/// The `Host` → domain handle table, and the tenants' own token verifiers.
#[derive(Debug, Clone)]
pub struct Tenants {
    by_host: HashMap<String, DomainHandle>,
    default: DomainHandle,
    verifiers: HashMap<DomainHandle, TokenVerifier>,
}

impl Tenants {
    /// Requests whose host (without port, any case) is in `by_host` use that handle; all others
    /// use `default`.
    pub fn new(default: DomainHandle, by_host: impl IntoIterator<Item = (String, DomainHandle)>) -> Self {
        let by_host =
            by_host.into_iter().map(|(host, handle)| (strip_port(&host).to_ascii_lowercase(), handle)).collect();
        Self { by_host, default, verifiers: HashMap::new() }
    }

    /// Gives `tenant` an identity of its own: a token presented to it verifies with `verifier`
    /// only (the shared verifier serves the other tenants).
    pub fn with_verifier(mut self, tenant: DomainHandle, verifier: TokenVerifier) -> Self {
        self.verifiers.insert(tenant, verifier);
        self
    }

    /// `tenant`'s own verifier, if it has one.
    pub(crate) fn verifier(&self, tenant: &DomainHandle) -> Option<&TokenVerifier> {
        self.verifiers.get(tenant)
    }

    /// The handle for a request to `host` (a `Host` header value, port allowed).
    pub fn resolve(&self, host: Option<&str>) -> &DomainHandle {
        if self.by_host.is_empty() {
            return &self.default;
        }
        host.map(strip_port).and_then(|host| self.by_host.get(&host.to_ascii_lowercase())).unwrap_or(&self.default)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        return host.split_once(']').map_or(host, |(address, _)| &host[..=address.len()]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The tenant of this request.
#[derive(Debug, Clone)]
pub(crate) struct Tenant(pub(crate) DomainHandle);

/// The tenant `request` is for.
pub(crate) fn of<'a>(request: &HttpRequest, state: &'a ApiState) -> &'a DomainHandle {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    state.inner.tenants.resolve(host)
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let handle = request.app_data::<web::Data<ApiState>>().map(|state| of(request, state).clone());
        ready(handle.map(Tenant).ok_or_else(ApiError::state_missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_map_to_handles_without_port_or_case() {
        let handle = |h: &str| DomainHandle::parse(h).expect("valid");
        let tenants = Tenants::new(
            handle("main"),
            [("Chat.Example.com".to_owned(), handle("example")), ("other.test:8443".to_owned(), handle("other"))],
        );
        assert_eq!(tenants.resolve(Some("other.test")), &handle("other"));
        assert_eq!(tenants.resolve(Some("chat.example.com:8080")), &handle("example"));
        assert_eq!(tenants.resolve(Some("CHAT.EXAMPLE.COM")), &handle("example"));
        assert_eq!(tenants.resolve(Some("other.example.com")), &handle("main"));
        assert_eq!(tenants.resolve(Some("[::1]:3005")), &handle("main"));
        assert_eq!(tenants.resolve(None), &handle("main"));
    }
}
