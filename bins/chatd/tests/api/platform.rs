//! A stand-in for the platform API on loopback: answers `/v1/users` and `/v1/topics` the way the
//! platform does, records every request, and can be told to fail.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The running stand-in.
#[derive(Clone)]
pub struct StandInPlatform {
    pub url: String,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Request>>,
    failing: AtomicBool,
}

/// One request the platform received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub path: String,
    pub fields: String,
    pub ids: Vec<u64>,
    pub user_agent: String,
}

/// The profile the stand-in serves for user `id`.
pub fn user_profile(id: u64) -> Value {
    json!({
        "id": id,
        "username": format!("Barry from Earth-{id}"),
        "role": {"id": 3, "handle": "registered", "value": "Registered"},
    })
}

/// The profile the stand-in serves for topic `id`.
pub fn topic_profile(id: u64) -> Value {
    json!({"id": id, "title": format!("Topic {id}"), "status": "published"})
}

impl StandInPlatform {
    /// Starts it on a free loopback port.
    pub fn start() -> Self {
        let state = Arc::new(State::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/", listener.local_addr().expect("bound"));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route(
                    "/v1/users",
                    web::get().to(|r: HttpRequest, s: web::Data<Arc<State>>| answer(r, s, user_profile)),
                )
                .route(
                    "/v1/topics",
                    web::get().to(|r: HttpRequest, s: web::Data<Arc<State>>| answer(r, s, topic_profile)),
                )
        })
        .workers(1)
        .listen(listener)
        .expect("listening")
        .run();
        actix_web::rt::spawn(server);
        Self { url, state }
    }

    /// Makes every following request fail with a 500 (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().expect("not poisoned").clone()
    }
}

async fn answer(request: HttpRequest, state: web::Data<Arc<State>>, profile: fn(u64) -> Value) -> HttpResponse {
    let query: Vec<(String, String)> = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let ids: Vec<u64> = param("ids").split(',').filter_map(|id| id.parse().ok()).collect();
    state.requests.lock().expect("not poisoned").push(Request {
        path: request.path().to_owned(),
        fields: param("fields"),
        ids: ids.clone(),
        user_agent: request.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
    });
    if state.failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("platform is down");
    }
    HttpResponse::Ok().json(json!({"entries": ids.into_iter().map(profile).collect::<Vec<_>>()}))
}
