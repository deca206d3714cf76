//! The demo chat at `/demo/`: its page and files, `demo.enabled`, the development token endpoint
//! (only in development with the development secret; a 404 with chatd's error body otherwise), and
//! the page itself in a real browser — two users chatting, driven by
//! `tests/browser/demo_chat.cjs`.

use std::path::PathBuf;

use chatd::settings::{Environment, Settings};
use chatd::startup::DEVELOPMENT_JWT_SECRET;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::browser::{Browser, puppeteer_core};
use crate::helpers::{Answer, Backend, TestApp, backends, run_node_script, spawn_app, spawn_app_with, test_settings};

/// Test settings as `cargo run` has them: no JWT secret, so the development secret.
fn development() -> Settings {
    let mut settings = test_settings();
    settings.jwt.secret = None;
    settings
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(format!("{}{path}", app.address)).send().await.unwrap()
}

/// `GET path` without a token, as JSON.
async fn get_json(app: &TestApp, path: &str) -> Answer {
    app.request(Method::GET, path, None, None).await
}

#[actix_web::test]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let app = spawn_app(Backend::Memory).await;
    for (path, content_type, contains) in [
        ("/demo/", "text/html; charset=utf-8", r#"name="message""#),
        ("/demo/app.js", "text/javascript; charset=utf-8", "new WebSocket("),
        ("/demo/style.css", "text/css; charset=utf-8", ".message"),
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(response.text().await.unwrap().contains(contains), "{path}");
    }
    // The test hook's URL, without the trailing slash, lands on the page with its query.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(format!("{}/demo?token=abc&chat=user-2", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "demo/?token=abc&chat=user-2");
    // HEAD like GET; other methods are chatd's 405.
    let head = app.client.head(format!("{}/demo/", app.address)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let post = app.request(Method::POST, "/demo/", None, None).await;
    post.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(post.headers["allow"], "GET, HEAD");
    // Not part of the REST API: the OpenAPI document does not list it.
    let document = get_json(&app, "/api/openapi.json").await;
    let paths = document.body["paths"].as_object().unwrap();
    assert!(paths.keys().all(|path| !path.starts_with("/demo")), "{:?}", paths.keys());
}

#[actix_web::test]
async fn in_development_with_the_development_secret_the_page_gets_tokens_for_any_user() {
    let app = spawn_app_with(Backend::Memory, development(), None).await;
    let answer = get_json(&app, "/demo/token?user=7").await;
    answer.assert_status(200);
    assert_eq!(answer.body["user"], json!(7));
    assert_eq!(answer.headers["cache-control"], "no-store");
    let minted = answer.body["token"].as_str().unwrap().to_owned();
    // chatd takes it as user 7's.
    let list = app.request(Method::GET, "/api/list", Some(&minted), None).await;
    list.assert_status(200);
    assert_eq!(list.body["state"]["key"], json!("myplatform:inbox:7"));
    // Not a user id: chatd's 400.
    for query in ["", "?user=", "?user=0", "?user=seven", "?user=-1", "?user=9007199254740992"] {
        get_json(&app, &format!("/demo/token{query}")).await.assert_error(400, "INVALID_ARGUMENT");
    }
}

#[actix_web::test]
async fn the_tokens_carry_the_claims_chatd_is_configured_to_require() {
    let mut settings = development();
    settings.jwt.user_claim = "sub".into();
    settings.jwt.topics_claim = "topics".into();
    let app = spawn_app_with(Backend::Memory, settings, None).await;
    let minted = get_json(&app, "/demo/token?user=3").await.body["token"].as_str().unwrap().to_owned();
    // Every topic is open to it.
    let topic = app.request(Method::GET, "/api/topic/77", Some(&minted), None).await;
    topic.assert_status(200);
}

/// `/demo/token` is a route only where the page may mint tokens; elsewhere it is an unknown path.
#[track_caller]
fn assert_no_route(answer: &Answer) {
    answer.assert_error(404, "NOT_FOUND");
    assert_eq!(answer.body["name"], json!("RouteNotFoundError"), "{:#}", answer.body);
}

#[actix_web::test]
async fn with_a_real_secret_there_are_no_tokens_but_the_page_takes_a_pasted_one() {
    // The suite's own secret, as a deployment has its platform's.
    let app = spawn_app(Backend::Memory).await;
    assert_no_route(&get_json(&app, "/demo/token?user=7").await);
    assert_eq!(get(&app, "/demo/").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn in_production_there_is_no_demo_and_never_tokens() {
    let mut settings = test_settings();
    settings.env = Environment::Production;
    let app = spawn_app_with(Backend::Memory, settings.clone(), None).await;
    let page = get_json(&app, "/demo/").await;
    assert_no_route(&page);
    assert!(page.body.get("stack").is_none(), "no stack in production: {:#}", page.body);
    assert_no_route(&get_json(&app, "/demo/token?user=7").await);

    // Turned on in production, with the development secret itself configured: the page, no tokens.
    settings.demo.enabled = Some(true);
    settings.jwt.secret = Some(DEVELOPMENT_JWT_SECRET.into());
    let app = spawn_app_with(Backend::Memory, settings, None).await;
    assert_eq!(get(&app, "/demo/").await.status(), StatusCode::OK);
    assert_no_route(&get_json(&app, "/demo/token?user=7").await);
}

#[actix_web::test]
async fn demo_enabled_false_turns_it_off() {
    let mut settings = development();
    settings.demo.enabled = Some(false);
    let app = spawn_app_with(Backend::Memory, settings, None).await;
    for path in ["/demo/", "/demo", "/demo/app.js", "/demo/token?user=7"] {
        assert_no_route(&get_json(&app, path).await);
    }
}

/// Where this test binary keeps the screenshots of the browser tests.
fn screenshot_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-screenshots").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two users chat on the demo page, each in a page of their own in the test binary's Chromium.
async fn two_users_chat_in_a_real_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    // A chat that already has a message, so that each is the other's DM partner (presence).
    app.send_text(2, "/api/user/1", "Hey, are you there?").await;
    let endpoint = Browser::shared().endpoint.clone();
    let puppeteer = puppeteer_core();
    let screenshots = screenshot_dir(&format!("{backend:?}").to_lowercase());
    let env = vec![
        ("PUPPETEER_CORE", puppeteer.into_os_string()),
        ("BROWSER_ENDPOINT", endpoint.into()),
        ("SCREENSHOT_DIR", screenshots.clone().into_os_string()),
    ];
    run_node_script("browser/demo_chat.cjs", app.address.clone(), env, "all demo chat checks passed").await;
    for file in ["user-1.png", "user-2.png", "demo.png"] {
        let path = screenshots.join(file);
        assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0), "no screenshot {}", path.display());
    }
    // Kept for people: where to look.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("demo chat screenshots: {}", screenshots.display());
    }
}
backends!(demo_chat_in_a_browser, two_users_chat_in_a_real_browser);
