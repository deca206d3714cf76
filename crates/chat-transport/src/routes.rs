//! The REST routes of the original service, each a thin handler: extract, call the use case,
//! shape the answer.

use actix_web::{HttpResponse, web};
use chat_domain::{ChatTarget, Keyspace, MessageId};
use serde::Serialize;
use serde_json::json;

use crate::auth::{Authenticated, Caller};
use crate::tenant::Tenant;
use crate::wire::{self, ChatState, InboxEntryOut, MessageOut, PageQuery, PageState};
use crate::{ApiError, ApiState};

pub(crate) fn register(config: &mut web::ServiceConfig, state: ApiState) {
    let body_limit = state.inner.body_limit;
    config
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(web::QueryConfig::default().error_handler(|error, _| ApiError::argument(error.to_string()).into()))
        .configure(crate::realtime::register)
        .service(resource("/", "GET").route(web::get().to(about)))
        .service(resource("/healthz", "GET").route(web::get().to(healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(readyz)))
        .service(resource("/api", "GET").route(web::get().to(welcome)))
        .service(resource("/api/list", "GET").route(web::get().to(inbox)))
        .service(resource("/api/{target}/{id}", "GET, POST").route(web::get().to(history)).route(web::post().to(send)))
        .service(
            resource("/api/{target}/{id}/{message_id}", "POST, DELETE")
                .route(web::post().to(edit))
                .route(web::delete().to(delete)),
        )
        .default_service(web::to(not_found));
}

/// A resource whose other methods are answered 405 with `Allow: <allow>` and the error body.
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, ApiError>(ApiError::method_not_allowed(allow))
    }))
}

/// `GET /`: what this service is.
async fn about() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "chatd",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Realtime chat beside your platform: REST API under /api",
    }))
}

/// `GET /healthz`: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: storage answers too (503 with the error body otherwise), so a load balancer
/// sends no traffic to an instance that cannot serve it.
async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.service().ready().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// `GET /api`: the original's welcome, saying whether the token authenticated.
async fn welcome(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "authenticated": caller.0.is_some(),
        "message": "Welcome to a realtime chat API",
        "success": true,
    }))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}

#[derive(Serialize)]
struct InboxAnswer<'a> {
    state: PageState,
    entries: Vec<InboxEntryOut<'a>>,
}

/// `GET /api/list`: the caller's inbox, most recent first.
async fn inbox(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let page = query.parse(service.settings().paging)?;
    let inbox = service.inbox(&tenant, caller, page).await?;
    Ok(HttpResponse::Ok().json(InboxAnswer {
        state: PageState::new(Keyspace::public_inbox(&tenant, caller), inbox.page, inbox.total),
        entries: inbox.items.iter().map(InboxEntryOut::new).collect(),
    }))
}

#[derive(Serialize)]
struct HistoryAnswer<'a> {
    state: PageState,
    entry: &'a serde_json::Value,
    messages: Vec<MessageOut<'a, &'a serde_json::Value>>,
}

/// `GET /api/{target}/{id}`: a page of a chat, authors as profiles.
async fn history(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.0, &path.1)?;
    let page = query.parse(service.settings().paging)?;
    let history = service.history(&tenant, caller, target, page).await?;
    Ok(HttpResponse::Ok().json(HistoryAnswer {
        state: PageState::new(Keyspace::public_chat(&tenant, history.chat), history.page, history.total),
        entry: &history.peer,
        messages: history.messages.iter().map(|(message, author)| MessageOut::new(message, author)).collect(),
    }))
}

#[derive(Serialize)]
struct EntryAnswer<'a> {
    state: ChatState,
    entry: MessageOut<'a, u64>,
}

/// `POST /api/{target}/{id}`: send a message.
async fn send(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.0, &path.1)?;
    let body = wire::message_body(wire::parse_body(&body)?, service.settings().max_text_chars)?;
    let sent = service.send(&tenant, caller, target, body).await?;
    Ok(HttpResponse::Created().json(EntryAnswer {
        state: ChatState::new(&tenant, sent.chat, sent.target),
        entry: MessageOut::with_author_id(&sent.message),
    }))
}

/// `POST /api/{target}/{id}/{message_id}`: edit text or image, or mark seen.
async fn edit(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.0, &path.1)?;
    let id = MessageId::parse(&path.2)?;
    let edit = wire::edit(wire::parse_body(&body)?, service.settings().max_text_chars)?;
    let changed = service.edit(&tenant, caller, target, id, edit).await?;
    Ok(HttpResponse::Ok().json(EntryAnswer {
        state: ChatState::new(&tenant, changed.chat, changed.target),
        entry: MessageOut::with_author_id(&changed.message),
    }))
}

#[derive(Serialize)]
struct DeleteAnswer {
    state: ChatState,
    message: &'static str,
    success: bool,
}

/// `DELETE /api/{target}/{id}/{message_id}`: delete one's own message.
async fn delete(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let target = ChatTarget::parse(&path.0, &path.1)?;
    let id = MessageId::parse(&path.2)?;
    let deleted = state.service().delete(&tenant, caller, target, id).await?;
    Ok(HttpResponse::Ok().json(DeleteAnswer {
        state: ChatState::new(&tenant, deleted.chat, deleted.target),
        message: "Message deleted",
        success: true,
    }))
}
