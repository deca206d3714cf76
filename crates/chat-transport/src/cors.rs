//! CORS for browser pages on other origins (`http.cors_origins`): preflights are answered, and the
//! REST answers (errors included) and Socket.IO long-polling become readable by those pages.
//!
//! Requests from other origins are still served, just without CORS headers (the browser then keeps
//! the answer from the page); clients that are not browsers are never affected.

use actix_cors::Cors;
use actix_web::http::header::{self, HeaderName};

use crate::REQUEST_ID;

/// The origins allowed to read chatd's answers from a browser page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all: only pages on chatd's own origin (or behind the same proxy).
    #[default]
    None,
    /// Any origin (configured as `*`); tokens travel in headers, not cookies, so no page can act
    /// for a user without that user's token.
    Any,
    /// These origins (`https://app.example.com`), compared without case.
    Only(Vec<String>),
}

impl CorsOrigins {
    /// Reads `http.cors_origins`: empty, `["*"]`, or origins `scheme://host[:port]` without a path.
    pub fn parse(origins: &[String]) -> Result<Self, String> {
        if origins.is_empty() {
            return Ok(Self::None);
        }
        if origins.iter().any(|origin| origin == "*") {
            return if origins.len() == 1 { Ok(Self::Any) } else { Err("\"*\" must be the only entry".to_owned()) };
        }
        origins
            .iter()
            .map(|origin| {
                let uri: actix_web::http::Uri = origin.parse().map_err(|_| format!("{origin:?} is not an origin"))?;
                let plain = matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
                    && !origin.ends_with('/');
                if plain {
                    Ok(origin.to_ascii_lowercase())
                } else {
                    Err(format!("{origin:?} is not an origin (scheme://host[:port])"))
                }
            })
            .collect::<Result<_, _>>()
            .map(Self::Only)
    }

    /// Whether any origin is allowed, i.e. whether the CORS middleware is needed.
    pub fn enabled(&self) -> bool {
        *self != Self::None
    }
}

/// The CORS middleware for `origins`: methods `GET`, `POST`, `DELETE`; the request headers chatd
/// reads (`token_header`, `Authorization`, `Content-Type`, `X-Request-Id`); the response headers a
/// client needs exposed (`Retry-After`, `Allow`, `X-Request-Id`); preflights cached for an hour.
/// Build one per worker (it is not `Send`); wrap it outside the error bodies so that error
/// answers get the CORS headers too.
pub(crate) fn cors(origins: &CorsOrigins, token_header: &HeaderName) -> Cors {
    let cors = match origins {
        CorsOrigins::None => Cors::default(),
        CorsOrigins::Any => Cors::default().allow_any_origin(),
        CorsOrigins::Only(allowed) => {
            let allowed = allowed.clone();
            Cors::default().allowed_origin_fn(move |origin, _| {
                origin.to_str().is_ok_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
            })
        }
    };
    cors.allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([token_header.clone(), header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([header::RETRY_AFTER, header::ALLOW, REQUEST_ID])
        .max_age(3600)
        .block_on_origin_mismatch(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_plain_scheme_host_port() {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(CorsOrigins::parse(&[]), Ok(CorsOrigins::None));
        assert_eq!(CorsOrigins::parse(&strings(&["*"])), Ok(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse(&strings(&["https://App.example.com", "http://localhost:5173"])),
            Ok(CorsOrigins::Only(strings(&["https://app.example.com", "http://localhost:5173"])))
        );
        for bad in
            ["app.example.com", "https://app.example.com/", "https://app.example.com/chat", "ftp://x", "*.example.com"]
        {
            assert!(CorsOrigins::parse(&strings(&[bad])).is_err(), "{bad:?} must be refused");
        }
        assert!(CorsOrigins::parse(&strings(&["*", "https://app.example.com"])).is_err());
    }
}
