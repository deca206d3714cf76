//! The reference server: a bare actix-web server answering chat-bench's three REST requests with
//! chatd's own Redis work — one call of chat-storage's `RedisStore` each (`append`, `history`,
//! `inbox`: the same scripts, keys and decoding chatd runs) — and nothing else: no signature
//! check (the user is read from the token's payload), no profiles, no validation, no realtime, no
//! metrics, a bare JSON answer. It runs as a process of its own (`chat-bench --reference-server
//! PORT --reference-redis PORT`), so that chatd's figures can also be read as a share of what a
//! server doing exactly chatd's Redis work reaches on the same machine in the same run: the share
//! is chatd's own overhead, apart from its Redis layout's cost (which the CPU columns show).

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{
    Chat, ChatTarget, DomainHandle, HistoryQuery, HistoryWindow, Message, MessageBody, MessageText, PageRequest, UserId,
};
use chat_storage::{ChatStore, RedisSettings, RedisStore};

/// Keys of the reference's data start with this, apart from chatd's.
const PREFIX: &str = "chatbench-reference";

struct Shared {
    store: RedisStore,
    tenant: DomainHandle,
}

/// Serves on `port` against Redis on `redis_port` until killed.
pub(crate) fn serve(port: u16, redis_port: u16) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let store = RedisStore::connect(&RedisSettings {
            url: format!("redis://127.0.0.1:{redis_port}"),
            prefix: PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            history: HistoryWindow::default(),
        })
        .map_err(|e| e.to_string())?;
        let tenant = DomainHandle::parse("default").map_err(|e| e.to_string())?;
        let shared = web::Data::new(Shared { store, tenant });
        HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/api/list", web::get().to(inbox))
                .route("/api/user/{id}", web::get().to(history))
                .route("/api/user/{id}", web::post().to(send))
        })
        .bind(("127.0.0.1", port))
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}

/// The `user_id` in the token's payload (the `x-auth-token` header chat-bench sends), unverified.
fn user(request: &HttpRequest) -> Option<UserId> {
    let token = request.headers().get("x-auth-token")?.to_str().ok()?;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let id = serde_json::from_slice::<serde_json::Value>(&payload).ok()?.get("user_id")?.as_u64()?;
    UserId::new(id).ok()
}

/// The DM between the caller and the user in the path, when both are ids.
fn direct(request: &HttpRequest, other: u64) -> Option<(UserId, Chat)> {
    let caller = user(request)?;
    Some((caller, Chat::between(caller, ChatTarget::User(UserId::new(other).ok()?))))
}

/// `{"id":…,"author":…,"text":…}`: enough of a message to be an answer.
fn json(message: &Message) -> String {
    let text = match &message.body {
        MessageBody::Text(text) => text.as_str(),
        MessageBody::Image(_) => "",
    };
    format!(r#"{{"id":"{}","author":{},"text":{}}}"#, message.id, message.author, serde_json::Value::from(text))
}

/// The body is read (a keep-alive connection whose request body is left unread is closed) and not
/// looked at: every message says the same.
async fn send(
    request: HttpRequest,
    path: web::Path<u64>,
    _body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some((caller, chat)) = direct(&request, path.into_inner()) else {
        return HttpResponse::Unauthorized().finish();
    };
    let message = Message::new(caller, MessageBody::Text(MessageText::from_stored("benchmark message".to_owned())));
    match shared.store.append(&shared.tenant, chat, &message, None).await {
        Ok(_) => {
            HttpResponse::Created().content_type("application/json").body(format!(r#"{{"entry":{}}}"#, json(&message)))
        }
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn history(request: HttpRequest, path: web::Path<u64>, shared: web::Data<Shared>) -> HttpResponse {
    let Some((reader, chat)) = direct(&request, path.into_inner()) else {
        return HttpResponse::Unauthorized().finish();
    };
    let query = HistoryQuery::Page(PageRequest::new(1, 10));
    match shared.store.history(&shared.tenant, chat, query, reader).await {
        Ok(page) => answer(format!(r#"{{"messages":[{}]}}"#, joined(page.messages.iter().map(json)))),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn inbox(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let Some(owner) = user(&request) else { return HttpResponse::Unauthorized().finish() };
    match shared.store.inbox(&shared.tenant, owner, PageRequest::new(1, 10)).await {
        Ok(page) => answer(format!(
            r#"{{"entries":[{}]}}"#,
            joined(page.entries.iter().map(|entry| format!(
                r#"{{"chat":"{}","unread":{},"latest":{}}}"#,
                entry.target,
                entry.unread,
                entry.latest.as_ref().map_or_else(|| "null".to_owned(), json)
            )))
        )),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

fn joined(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(",")
}

fn answer(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body)
}
