//! The demo chat at `/demo/`: a small page (HTML, JavaScript and CSS from `bins/chatd/demo/`,
//! embedded in the binary) on which a newcomer picks a user and a chat and chats live over `/ws`
//! and the REST API; and, in development with the development secret only, `GET /demo/token?user=N`,
//! which hands out a token for any user. On by default in development, off in production
//! (`demo.enabled`). Not part of the REST API: not in the OpenAPI document.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::UserId;
use chat_transport::{ApiError, get_or_head, resource};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::settings::{Environment, Settings};
use crate::startup::DEVELOPMENT_JWT_SECRET;

/// The page's files, as they are in the repository: no build step.
const FILES: [(&str, &str, &str); 3] = [
    ("/demo/", "text/html; charset=utf-8", include_str!("../demo/index.html")),
    ("/demo/app.js", "text/javascript; charset=utf-8", include_str!("../demo/app.js")),
    ("/demo/style.css", "text/css; charset=utf-8", include_str!("../demo/style.css")),
];

/// The page loads nothing but its own files and talks to nothing but this chatd (`'self'` covers
/// `ws:`/`wss:` to the same host).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The demo, as the settings configure it.
#[derive(Debug, Clone)]
pub struct Demo {
    /// How development tokens are made, when this chatd may hand them out.
    tokens: Option<DevTokens>,
}

/// What a development token holds besides the user id, and how it is signed: with the
/// development secret, in the configured algorithm, with the configured claims.
#[derive(Debug, Clone)]
struct DevTokens {
    algorithm: Algorithm,
    user_claim: String,
    /// Claims every token carries: all topics when topic access control is on, the default
    /// tenant when tokens must name theirs.
    claims: Map<String, Value>,
}

impl Demo {
    /// The demo `demo.enabled` asks for (by default: in development only), or `None`.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        if !settings.demo.enabled(settings.env) {
            return None;
        }
        let tokens = DevTokens::from_settings(settings);
        let url = format!("http://{}:{}/demo/", settings.http.host, settings.http.port);
        match tokens {
            Some(_) => tracing::info!(%url, "the demo chat is on, handing out development tokens at /demo/token"),
            None => tracing::info!(%url, "the demo chat is on; it takes tokens pasted in (no development secret)"),
        }
        Some(Self { tokens })
    }
}

impl DevTokens {
    /// Tokens may be made only in development, and only when tokens are checked with the built-in
    /// development secret — the one secret anyone may sign with anyway. Never in production, nor
    /// with a secret or key of the platform's.
    fn from_settings(settings: &Settings) -> Option<Self> {
        let jwt = &settings.jwt;
        let algorithm = match jwt.algorithm.as_str() {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => return None,
        };
        let development_secret =
            jwt.secret.as_ref().is_none_or(|secret| secret.expose_secret() == DEVELOPMENT_JWT_SECRET);
        if settings.env != Environment::Development || !development_secret {
            return None;
        }
        let mut claims = Map::new();
        if !jwt.topics_claim.trim().is_empty() {
            claims.insert(jwt.topics_claim.trim().to_owned(), json!("*"));
        }
        if !jwt.tenant_claim.trim().is_empty() {
            claims.insert(jwt.tenant_claim.trim().to_owned(), json!(settings.chat.handle));
        }
        Some(Self { algorithm, user_claim: jwt.user_claim.clone(), claims })
    }

    fn token(&self, user: UserId) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = self.claims.clone();
        claims.insert(self.user_claim.clone(), json!(user.get()));
        let key = EncodingKey::from_secret(DEVELOPMENT_JWT_SECRET.as_bytes());
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &key)
    }
}

/// Registers the demo's routes (none when `demo` is `None`: `/demo/` is then an unknown path, as
/// `/demo/token` is whenever this chatd hands out no tokens).
pub fn configure(demo: Option<Demo>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let Some(demo) = demo else { return };
        config.service(resource("/demo", "GET, HEAD").route(get_or_head().to(to_folder)));
        for (path, content_type, body) in FILES {
            config.service(
                resource(path, "GET, HEAD").route(get_or_head().to(move || async move { file(content_type, body) })),
            );
        }
        if let Some(tokens) = demo.tokens {
            config.service(
                resource("/demo/token", "GET, HEAD").app_data(web::Data::new(tokens)).route(get_or_head().to(token)),
            );
        }
    }
}

/// `/demo` → `/demo/`, where the page's relative links work; relative, so that it holds under a
/// proxy's path prefix too.
async fn to_folder(request: HttpRequest) -> HttpResponse {
    let location = match request.query_string() {
        "" => "demo/".to_owned(),
        query => format!("demo/?{query}"),
    };
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, location)).finish()
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .body(body)
}

#[derive(Deserialize)]
struct TokenQuery {
    user: Option<String>,
}

/// `GET /demo/token?user=N`: `{"user": N, "token": "<jwt>"}`.
async fn token(tokens: web::Data<DevTokens>, query: web::Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    let user = query.user.as_deref().ok_or_else(|| ApiError::argument("user is required: /demo/token?user=<id>"))?;
    let user = UserId::parse(user)?;
    let token = match tokens.token(user) {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "cannot sign a development token");
            // Given chatd's error body by `error_bodies`, as every bare 5xx.
            return Ok(HttpResponse::InternalServerError().finish());
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(json!({ "user": user.get(), "token": token })))
}
