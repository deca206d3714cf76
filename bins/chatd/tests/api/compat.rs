//! Drop-in for the original's clients: every error the original had, with its status, `code`,
//! `name` and `message` word for word (plus its one-line `stack` outside production, none in
//! production), and routing as its Express answered it: trailing slashes and `HEAD`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatd::settings::Environment;
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, SECRET, TestApp, backends, sign, spawn_app, spawn_app_with, test_settings, token, token_for,
};

/// Seconds since the Unix epoch.
fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A JWT of these header and claims with this (possibly empty) signature part, made by hand.
fn handmade(header: Value, claims: Value, signature: &str) -> String {
    let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// One error of the original's table: the request, and the whole body it must get.
struct Row {
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    status: u16,
    code: Option<&'static str>,
    name: &'static str,
    message: String,
    /// The first line of the original's stack, after the name, where it is not the message.
    detail: Option<String>,
}

fn row(method: Method, path: impl Into<String>, token: Option<String>, body: Option<Value>) -> Row {
    Row {
        method,
        path: path.into(),
        token,
        body: body.map(|body| body.to_string().into_bytes()),
        status: 0,
        code: None,
        name: "",
        message: String::new(),
        detail: None,
    }
}

impl Row {
    fn answers(self, status: u16, code: Option<&'static str>, name: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, name, message: message.into(), ..self }
    }

    fn with_raw_body(self, body: Vec<u8>) -> Self {
        Self { body: Some(body), ..self }
    }

    fn with_detail(self, detail: impl Into<String>) -> Self {
        Self { detail: Some(detail.into()), ..self }
    }

    /// The body the original answered, with `stack` when not in production.
    fn expected(&self, stack: bool) -> Value {
        let mut body = json!({
            "error": true,
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "status": self.status,
        });
        if stack {
            body["stack"] = json!(format!("{}: {}", self.name, self.detail.as_deref().unwrap_or(&self.message)));
        }
        body
    }
}

/// Every row of original.md's "Error bodies, exactly", against `app` (which holds message `id`
/// from user 1 to user 2).
fn the_table(id: &str) -> Vec<Row> {
    const TOKEN: Option<&str> = Some("INVALID_TOKEN_ERR");
    let user = |claims: Value| Some(token_for(claims));
    let mine = || Some(token(1));
    let inbox = |token: Option<String>| row(Method::GET, "/api/list", token, None);
    let unsigned = handmade(json!({"alg": "HS256", "typ": "JWT"}), json!({"user_id": 1}), "");
    let alg_none = handmade(json!({"alg": "none", "typ": "JWT"}), json!({"user_id": 1}), "c2lnbmF0dXJl");
    let unknown = "7d3f1c1e-0000-4000-8000-000000000000";
    vec![
        inbox(None).answers(401, Some("NOT_AUTHENTICATED"), "UnauthenticatedError", "You are not authenticated"),
        inbox(Some("not-a-jwt".into()))
            .answers(401, TOKEN, "JsonWebTokenError", "Your token is invalid - please check it and try again")
            .with_detail("jwt malformed"),
        inbox(Some(sign(Algorithm::HS256, "another-secret", json!({"user_id": 1})))).answers(
            401,
            TOKEN,
            "JsonWebTokenError",
            "invalid signature",
        ),
        inbox(Some(unsigned)).answers(401, TOKEN, "JsonWebTokenError", "jwt signature is required"),
        inbox(Some(sign(Algorithm::HS512, SECRET, json!({"user_id": 1})))).answers(
            401,
            TOKEN,
            "JsonWebTokenError",
            "invalid algorithm",
        ),
        inbox(Some(alg_none)).answers(401, TOKEN, "JsonWebTokenError", "invalid algorithm"),
        inbox(user(json!({"user_id": 1, "exp": now() - 3600}))).answers(401, TOKEN, "TokenExpiredError", "jwt expired"),
        inbox(user(json!({"user_id": 1, "nbf": now() + 3600}))).answers(401, TOKEN, "NotBeforeError", "jwt not active"),
        inbox(user(json!({"sub": "1"}))).answers(
            401,
            TOKEN,
            "UnauthenticatedError",
            "Incorrect token - please try a different one",
        ),
        // The welcome reads tokens too, and refuses bad ones the same way.
        row(Method::GET, "/api", user(json!({"user_id": 0})), None).answers(
            401,
            TOKEN,
            "UnauthenticatedError",
            "Incorrect token - please try a different one",
        ),
        row(Method::GET, "/api/villain/2", mine(), None).answers(
            400,
            Some("MESSAGES_INVALID_TARGET"),
            "ArgumentError",
            r#"Invalid target "villain""#,
        ),
        row(Method::POST, "/api/villain/2", mine(), Some(json!({"type": "text", "text": "x"}))).answers(
            400,
            Some("MESSAGES_INVALID_TARGET"),
            "ArgumentError",
            r#"Invalid target "villain""#,
        ),
        row(Method::POST, "/api/user/2", mine(), Some(json!({"text": "x"}))).answers(
            400,
            Some("MESSAGES_INVALID_TYPE"),
            "ArgumentError",
            r#"Invalid type "undefined""#,
        ),
        row(Method::POST, "/api/user/2", mine(), Some(json!({"type": "video"}))).answers(
            400,
            Some("MESSAGES_INVALID_TYPE"),
            "ArgumentError",
            r#"Invalid type "video""#,
        ),
        row(Method::POST, "/api/user/2", mine(), Some(json!({"type": "text"}))).answers(
            400,
            None,
            "ArgumentError",
            "Missing text property for text-message",
        ),
        row(Method::POST, "/api/topic/42", mine(), Some(json!({"type": "image", "text": "no image"}))).answers(
            400,
            None,
            "ArgumentError",
            "Missing image property for image-message",
        ),
        row(Method::POST, format!("/api/user/2/{unknown}"), mine(), Some(json!({"text": "x"}))).answers(
            404,
            Some("NOT_FOUND"),
            "NotFound",
            "Message not found",
        ),
        row(Method::DELETE, format!("/api/user/2/{unknown}"), mine(), None).answers(
            404,
            Some("NOT_FOUND"),
            "NotFound",
            "Message not found",
        ),
        row(Method::POST, format!("/api/user/2/{id}"), mine(), Some(json!({"image": {"url": "x.png"}}))).answers(
            400,
            None,
            "ArgumentError",
            "No valid data was supplied",
        ),
        row(Method::POST, "/api/user/2", mine(), None).with_raw_body(b"{\"type\": ".to_vec()).answers(
            400,
            None,
            "SyntaxError",
            "The body is not valid JSON: EOF while parsing a value at line 1 column 9",
        ),
        row(Method::POST, "/api/user/2", mine(), Some(json!({"type": "image", "image": "x".repeat(1024 * 1024)})))
            .answers(413, None, "PayloadTooLargeError", "request entity too large"),
        row(Method::GET, "/api/nothing", None, None)
            .answers(
                404,
                Some("NOT_FOUND"),
                "RouteNotFoundError",
                "Route not found - please check your URL and try again",
            )
            .with_detail("Route at /api/nothing was not found"),
    ]
}

async fn every_original_error_is_answered_word_for_word(app: &TestApp, stack: bool) {
    let sent = app.send_text(1, "/api/user/2", "to be left alone").await;
    let before = app.snapshot(&[1, 2]).await;
    for row in the_table(sent["id"].as_str().unwrap()) {
        let answer = app.request(row.method.clone(), &row.path, row.token.as_deref(), row.body.clone()).await;
        assert_eq!(answer.status.as_u16(), row.status, "{} {}: {:#}", row.method, row.path, answer.body);
        assert_eq!(answer.body, row.expected(stack), "{} {}", row.method, row.path);
    }
    assert_eq!(app.snapshot(&[1, 2]).await, before, "refused requests changed nothing");
}

async fn in_development_with_the_stack_line(backend: Backend) {
    every_original_error_is_answered_word_for_word(&spawn_app(backend).await, true).await;
}
backends!(original_errors, in_development_with_the_stack_line);

async fn in_production_without_a_stack(backend: Backend) {
    let mut settings = test_settings();
    settings.env = Environment::Production;
    every_original_error_is_answered_word_for_word(&spawn_app_with(backend, settings, None).await, false).await;
}
backends!(original_errors_in_production, in_production_without_a_stack);

async fn chatd_s_own_errors_carry_the_stack_line_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.request(Method::PUT, "/api/list", Some(&token(1)), None).await;
    assert_eq!(
        answer.body,
        json!({
            "error": true,
            "code": "METHOD_NOT_ALLOWED",
            "name": "MethodNotAllowedError",
            "message": "Method not allowed on this route; it answers GET, HEAD",
            "status": 405,
            "stack": "MethodNotAllowedError: Method not allowed on this route; it answers GET, HEAD",
        })
    );
    let padded =
        app.client.get(format!("{}/api", app.address)).header("X-Padding", "p".repeat(20 * 1024)).send().await.unwrap();
    let body: Value = padded.json().await.unwrap();
    assert_eq!(
        body["stack"],
        json!("RequestHeaderFieldsTooLargeError: The request line and headers are larger than 16384 bytes")
    );
}
backends!(own_errors_stack, chatd_s_own_errors_carry_the_stack_line_too);

async fn a_trailing_slash_answers_like_the_path_without_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(1, "/api/user/5", "hello").await;
    for path in ["/api", "/api/list", "/api/user/5", "/api/topic/9", "/healthz", "/api/openapi.json"] {
        let bare = app.get(path, 1).await;
        let slashed = app.get(&format!("{path}/"), 1).await;
        assert_eq!(bare.status, StatusCode::OK, "{path}");
        assert_eq!((slashed.status, slashed.body), (bare.status, bare.body), "{path}/");
    }
    let sent = app.post("/api/user/5/", 1, json!({"type": "text", "text": "with a slash"})).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:#}", sent.body);
    let path = format!("/api/user/5/{}/", sent.body["entry"]["id"].as_str().unwrap());
    let edited = app.post(&path, 1, json!({"text": "edited with a slash"})).await;
    assert_eq!(edited.body["entry"]["text"], json!("edited with a slash"));
    assert_eq!(app.delete(&path, 1).await.status, StatusCode::OK);
    assert_eq!(app.texts("/api/user/1/", 5).await, ["hello"]);
    // The daemon's own route and the Socket.IO door (whose clients ask for `/socket.io/`) too.
    for path in ["/metrics/", "/socket.io?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=polling"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Errors too: a bad target with a slash is the same 400, and one slash is all that is forgiven.
    app.get("/api/group/5/", 1).await.assert_error(400, "MESSAGES_INVALID_TARGET");
    app.get("/api/list//", 1).await.assert_error(404, "NOT_FOUND");
}
backends!(trailing_slashes, a_trailing_slash_answers_like_the_path_without_it);

async fn head_answers_like_get_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send_text(1, "/api/user/5", "hello").await;
    let send = |method: Method, path: &str, token: Option<String>| {
        let mut request = app.client.request(method, format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        request.send()
    };
    for (path, token) in [
        ("/", None),
        ("/api", None),
        ("/api", Some(token(1))),
        ("/api/list", Some(token(1))),
        ("/api/list/", Some(token(1))),
        ("/api/user/5?per_page=5", Some(token(1))),
        ("/api/openapi.json", None),
        ("/healthz", None),
        ("/readyz", None),
        // Errors are answered like GET's too.
        ("/api/list", None),
        ("/api/nothing", None),
    ] {
        let get = send(Method::GET, path, token.clone()).await.unwrap();
        let head = send(Method::HEAD, path, token).await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.headers()["content-type"], get.headers()["content-type"], "{path}");
        let length = head.headers()["content-length"].to_str().unwrap().parse::<usize>().unwrap();
        let (get_body, head_body) = (get.bytes().await.unwrap(), head.bytes().await.unwrap());
        assert_eq!(length, get_body.len(), "HEAD {path} announces GET's length");
        assert!(head_body.is_empty(), "HEAD {path} has no body");
    }
    let metrics = send(Method::HEAD, "/metrics", None).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.bytes().await.unwrap().is_empty());
    // A path without GET answers HEAD as any other method it does not serve.
    let refused = send(Method::HEAD, "/api/user/5/7d3f1c1e-0000-4000-8000-000000000000", Some(token(1))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers()["allow"], "POST, DELETE");
}
backends!(head_requests, head_answers_like_get_without_a_body);
