//! The REST routes of the original service, each a thin handler: extract, call the use case,
//! shape the answer. Each handler's `#[utoipa::path]` is its entry in the OpenAPI document.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use chat_domain::{ChatTarget, DomainError, IdempotencyKey, Keyspace, MessageId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Authenticated, MaybeCaller};
use crate::openapi::responses::{
    BadDelete, BadEdit, BadHistory, BadPaging, BadRead, BadSend, Conflict, IdempotencyKeyReused, InvalidToken,
    MessageForbidden, MessageNotFound, NoRoute, PayloadTooLarge, RateLimited, ReadNotFound, StorageFailed,
    StorageUnavailable, TopicForbidden, Unauthenticated,
};
use crate::openapi::schemas;
use crate::tenant::Tenant;
use crate::wire::{
    self, ChatPath, ChatState, EditBody, HistoryParams, InboxEntryOut, MessageOut, MessagePath, PageQuery, PageState,
    ReadBodyDoc, ReadOut, SendBody,
};
use crate::{ApiError, ApiState};

/// Puts the state the handlers read (and the body and query settings) in `config`: each piece
/// does, so that any of them can be mounted alone.
fn register_state(config: &mut web::ServiceConfig, state: &ApiState) {
    config
        .app_data(web::Data::new(state.clone()))
        .app_data(web::PayloadConfig::new(state.inner.body_limit))
        .app_data(web::QueryConfig::default().error_handler(|error, _| ApiError::argument(error.to_string()).into()));
}

/// The REST API: `/api`, `/api/openapi.json`, `/api/list`, `/api/events` and the chats'
/// `/api/{target}/{id}…` routes.
pub(crate) fn register_rest(config: &mut web::ServiceConfig, state: &ApiState) {
    register_state(config, state);
    let rest: [Route; 7] = [
        ("/api", "GET, HEAD", |resource| resource.route(get_or_head().to(welcome))),
        ("/api/openapi.json", "GET, HEAD", |resource| resource.route(get_or_head().to(openapi_document))),
        ("/api/list", "GET, HEAD", |resource| resource.route(get_or_head().to(inbox))),
        ("/api/events", "GET, HEAD", |resource| resource.route(get_or_head().to(crate::catch_up::events))),
        ("/api/{target}/{id}", "GET, HEAD, POST", |resource| {
            resource.route(get_or_head().to(history)).route(web::post().to(send))
        }),
        ("/api/{target}/{id}/read", "POST", |resource| resource.route(web::post().to(read))),
        ("/api/{target}/{id}/{message_id}", "POST, DELETE", |resource| {
            resource.route(web::post().to(edit)).route(web::delete().to(delete))
        }),
    ];
    register_routes(config, &rest);
}

/// The realtime doors: `/ws` and `/socket.io/`.
pub(crate) fn register_realtime(config: &mut web::ServiceConfig, state: &ApiState) {
    register_state(config, state);
    register_routes(config, &crate::realtime::routes());
}

/// The operations endpoints: `/` (what this service is), `/healthz` (liveness) and `/readyz`
/// (readiness: storage answers).
pub(crate) fn register_operations(config: &mut web::ServiceConfig, state: &ApiState) {
    register_state(config, state);
    let operations: [Route; 3] = [
        ("/", "GET, HEAD", |resource| resource.route(get_or_head().to(about))),
        ("/healthz", "GET, HEAD", |resource| resource.route(get_or_head().to(healthz))),
        ("/readyz", "GET, HEAD", |resource| resource.route(get_or_head().to(readyz))),
    ];
    register_routes(config, &operations);
}

/// chatd's 404 for paths no route matches (`RouteNotFoundError`, with the error body), for the
/// `default_service` of the `App` or `web::scope` that mounts chatd — where chatd should answer
/// every path. Without it, unknown paths get whatever 404 the host app gives.
pub fn not_found() -> actix_web::Route {
    web::to(route_not_found)
}

/// One route: its path, the methods it answers (for the `Allow` of a 405), and what adds its
/// handlers to its resource.
pub type Route = (&'static str, &'static str, fn(actix_web::Resource) -> actix_web::Resource);

/// Registers each route at its path, and then each again at its path with one trailing slash:
/// routing is not strict about it, as the original's Express was not (`/api/list/` is
/// `/api/list`). The slashed paths come after all the others, as resources of their own, so that
/// matching the usual paths costs what it would without them (a resource of several patterns is
/// matched by a regex set, even where every pattern is plain text).
pub fn register_routes(config: &mut web::ServiceConfig, routes: &[Route]) {
    for &(path, allow, handlers) in routes {
        config.service(handlers(resource(path, allow)));
    }
    for &(path, allow, handlers) in routes.iter().filter(|(path, ..)| *path != "/") {
        config.service(handlers(resource(&format!("{path}/"), allow)));
    }
}

/// A resource whose other methods are answered 405 with `Allow: <allow>` and the error body.
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, ApiError>(ApiError::method_not_allowed(allow))
    }))
}

/// A route for `GET` and `HEAD`: HTTP's `HEAD` is the `GET` answer without its body (actix-http
/// leaves the body out, keeping its `Content-Length`), as Express answered it.
pub fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// What this service is.
#[derive(Serialize, ToSchema)]
struct About {
    /// `chatd`.
    name: &'static str,
    /// chatd's version.
    version: &'static str,
    description: &'static str,
}

/// What this service is.
///
/// No authentication; tokens are not read.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, description = "The service", body = About)))]
async fn about() -> HttpResponse {
    HttpResponse::Ok().json(About {
        name: "chatd",
        version: env!("CARGO_PKG_VERSION"),
        description: "Realtime chat beside your platform: REST API under /api",
    })
}

/// The answer of a health or readiness check.
#[derive(Serialize, ToSchema)]
struct Status {
    /// `ok` (health) or `ready` (readiness).
    #[schema(schema_with = schemas::health_status)]
    status: &'static str,
}

/// Whether the process answers.
///
/// For liveness probes: no storage is touched.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Status))
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Whether storage answers too.
///
/// For readiness probes, so that a load balancer sends no traffic to an instance that cannot
/// serve it.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = Status),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.service().ready().await?;
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

/// The original's welcome.
#[derive(Serialize, ToSchema)]
struct Welcome {
    /// Whether the request carried an accepted token.
    authenticated: bool,
    message: &'static str,
    #[schema(schema_with = schemas::always_true)]
    success: bool,
}

/// The original's welcome, saying whether the request's token was accepted.
///
/// Authentication is optional here, but a token that is sent and refused is a 401 (as in the
/// original).
#[utoipa::path(
    get,
    path = "/api",
    tag = "chat",
    security((), ("token" = []), ("bearer" = [])),
    responses((status = 200, description = "The welcome", body = Welcome), (status = 401, response = InvalidToken))
)]
async fn welcome(caller: MaybeCaller) -> HttpResponse {
    HttpResponse::Ok().json(Welcome {
        authenticated: caller.0.is_some(),
        message: "Welcome to a realtime chat API",
        success: true,
    })
}

/// This document.
///
/// No authentication; tokens are not read. Built once when chatd starts.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object))
)]
async fn openapi_document(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(state.openapi_json())
}

async fn route_not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found(request.path()))
}

/// A page of the caller's inbox.
#[derive(Serialize, ToSchema)]
#[schema(as = InboxPage)]
struct InboxAnswer<'a> {
    state: PageState,
    /// One entry per chat, most recently sent-to first.
    entries: Vec<InboxEntryOut<'a>>,
}

/// The caller's inbox.
///
/// One entry per chat, most recently sent-to first (ties in reverse order of `user-<id>` /
/// `topic-<id>` text). A DM is in both participants' inboxes from its first message; a topic is in
/// the inbox of each user who has posted in it. `state.key` is `<handle>:inbox:<caller id>`.
#[utoipa::path(
    get,
    path = "/api/list",
    tag = "chat",
    params(PageQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of the inbox (empty past the end)", body = InboxAnswer),
        (status = 400, response = BadPaging),
        (status = 401, response = Unauthenticated),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn inbox(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let page = query.parse(service.settings().paging)?;
    let inbox = service.inbox(&tenant, &caller, page).await?;
    Ok(HttpResponse::Ok().json(InboxAnswer {
        state: PageState::inbox(
            Keyspace::public_inbox(&tenant, caller.user()),
            inbox.page,
            inbox.total,
            inbox.position,
            inbox.unread_total,
        ),
        entries: inbox.items.iter().map(InboxEntryOut::new).collect(),
    }))
}

/// A page of a chat.
#[derive(Serialize, ToSchema)]
#[schema(as = HistoryPage)]
struct HistoryAnswer<'a> {
    /// `key` is the chat's key.
    state: PageState,
    /// The other participant's profile (a DM) or the topic's profile.
    #[schema(schema_with = schemas::profile)]
    entry: &'a serde_json::value::RawValue,
    /// The page's messages, oldest first, each `author` as the author's profile.
    #[schema(schema_with = schemas::history_messages)]
    messages: Vec<MessageOut<'a>>,
}

/// A page of a chat.
///
/// The caller's DM with user `id` (`target` = `user`), or topic `id` (`target` = `topic`). Page 1
/// holds the newest `per_page` messages, page 2 the ones before them, and so on; within a page
/// messages are oldest first. A chat with no messages, or a page past the start, has
/// `"messages": []`. A DM with oneself is a chat that sending never fills.
///
/// By cursor instead, `before=<message id>` (or `after=`) holds the messages just older (newer)
/// than that one, oldest first, with `state.more`; such pages stay exact while messages are sent
/// or deleted. `state.read` says where the participants have read up to.
#[utoipa::path(
    get,
    path = "/api/{target}/{id}",
    tag = "chat",
    params(ChatPath, HistoryParams),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of the chat", body = HistoryAnswer),
        (status = 400, response = BadHistory),
        (status = 401, response = Unauthenticated),
        (status = 403, response = TopicForbidden),
        (status = 404, response = NoRoute),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn history(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<ChatPath>,
    query: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.target, &path.id)?;
    let query = query.parse(service.settings().paging)?;
    let history = service.history(&tenant, &caller, target, query).await?;
    Ok(HttpResponse::Ok().json(HistoryAnswer {
        state: PageState::history(Keyspace::public_chat(&tenant, history.chat), &history),
        entry: history.peer.json(),
        messages: history
            .messages
            .iter()
            .map(|(message, author)| MessageOut::with_author_profile(message, author))
            .collect(),
    }))
}

/// A message just sent or edited.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageAnswer)]
struct EntryAnswer<'a> {
    state: ChatState,
    /// The message, `author` as the user id.
    #[schema(schema_with = schemas::message_by_id)]
    entry: MessageOut<'a>,
}

/// Send a message.
///
/// To user `id` (a DM; not the caller's own id) or to topic `id`. The message becomes the chat's
/// latest; a DM moves to the top of both participants' inboxes, a topic to the top of the sender's.
/// With an `Idempotency-Key`, a retry by the same caller within `chat.idempotency_ttl_seconds`
/// answers exactly the first answer (`Idempotent-Replayed: true`) and stores nothing.
#[utoipa::path(
    post,
    path = "/api/{target}/{id}",
    tag = "chat",
    params(
        ChatPath,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters \
            naming this send: a repeat of the key by the caller answers the first answer and stores nothing.",
            pattern = r"^[!-~]{1,255}$"),
    ),
    request_body(content = SendBody, description = "A text or an image message. Read as JSON whatever the \
        `Content-Type`; an empty body counts as `{}`."),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The message as stored", body = EntryAnswer, headers(
            ("Idempotent-Replayed" = String, description = "`true` when this answers a repeat of an \
                `Idempotency-Key`: the first send's answer, nothing stored"),
        ), links(
            ("EditMessage" = (operation_id = "edit", description = "Edit the message just sent", parameters(
                ("target" = "$request.path.target"),
                ("id" = "$request.path.id"),
                ("message_id" = "$response.body#/entry/id"),
            ))),
            ("DeleteMessage" = (operation_id = "delete", description = "Delete the message just sent", parameters(
                ("target" = "$request.path.target"),
                ("id" = "$request.path.id"),
                ("message_id" = "$response.body#/entry/id"),
            ))),
        )),
        (status = 400, response = BadSend),
        (status = 401, response = Unauthenticated),
        (status = 403, response = TopicForbidden),
        (status = 404, response = NoRoute),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 429, response = RateLimited),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn send(
    request: HttpRequest,
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<ChatPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.target, &path.id)?;
    let body = wire::message_body(wire::parse_body(&body)?, service.settings().max_text_chars.get())?;
    let key = idempotency_key(&request)?;
    let sent = service.send(&tenant, &caller, target, body, key).await?;
    let mut answer = HttpResponse::Created();
    if sent.replayed {
        answer.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(answer.json(EntryAnswer {
        state: ChatState::new(&tenant, sent.chat, sent.target),
        entry: MessageOut::with_author_id(&sent.message),
    }))
}

/// The header that marks the answer to a repeated `Idempotency-Key`.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The send's `Idempotency-Key`, if it has one (one only).
fn idempotency_key(request: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = request.headers().get_all("idempotency-key");
    let Some(value) = values.next() else { return Ok(None) };
    let refused = || {
        ApiError::from(DomainError::InvalidArgument("Idempotency-Key must be 1 to 255 visible ASCII characters".into()))
    };
    if values.next().is_some() {
        return Err(ApiError::from(DomainError::InvalidArgument("Idempotency-Key is given twice".into())));
    }
    let text = value.to_str().map_err(|_| refused())?;
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// Edit a message, or mark it seen.
///
/// Its author changes its text or image; anyone else in the chat marks it seen. All or nothing: if
/// any field that applies is not allowed for the caller, the answer is 403 and nothing changes. The
/// message keeps its id, author, timestamp and type, and the chat its place in inboxes.
#[utoipa::path(
    post,
    path = "/api/{target}/{id}/{message_id}",
    tag = "chat",
    params(MessagePath),
    request_body(content = EditBody, description = "Any of `text`, `image`, `status`. Read as JSON \
        whatever the `Content-Type`; an empty body counts as `{}`."),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The message after the edit", body = EntryAnswer),
        (status = 400, response = BadEdit),
        (status = 401, response = Unauthenticated),
        (status = 403, response = MessageForbidden),
        (status = 404, response = MessageNotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn edit(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<MessagePath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let service = state.service();
    let target = ChatTarget::parse(&path.target, &path.id)?;
    let id = MessageId::parse(&path.message_id)?;
    let edit = wire::edit(wire::parse_body(&body)?, service.settings().max_text_chars.get())?;
    let changed = service.edit(&tenant, &caller, target, id, edit).await?;
    Ok(HttpResponse::Ok().json(EntryAnswer {
        state: ChatState::new(&tenant, changed.chat, changed.target),
        entry: MessageOut::with_author_id(&changed.message),
    }))
}

/// Where the caller has read a chat up to.
#[derive(Serialize, ToSchema)]
struct ReadAnswer {
    state: ChatState,
    read: ReadOut,
}

/// Mark a chat read.
///
/// Moves the caller's read position in the chat forward to message `message` (a message of this
/// chat), or with `{}` to the chat's latest message; never backward: an older message changes
/// nothing and answers where the caller stands. A move is announced as a `read` event to every
/// device of the caller (with `unread`) and, in a DM, to the other participant (the read receipt).
#[utoipa::path(
    post,
    path = "/api/{target}/{id}/read",
    tag = "chat",
    params(ChatPath),
    request_body(content = Option<ReadBodyDoc>, description = "`{\"message\": \"<id>\"}`, or `{}` for the latest. \
        Optional: read as JSON whatever the `Content-Type`; no body, or `null`, counts as `{}`."),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Where the caller has read up to, and what remains unread", body = ReadAnswer),
        (status = 400, response = BadRead),
        (status = 401, response = Unauthenticated),
        (status = 403, response = TopicForbidden),
        (status = 404, response = ReadNotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn read(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<ChatPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let target = ChatTarget::parse(&path.target, &path.id)?;
    let up_to = wire::read_body(wire::parse_optional_body(&body)?)?;
    let mark = state.service().read(&tenant, &caller, target, up_to).await?;
    Ok(HttpResponse::Ok()
        .json(ReadAnswer { state: ChatState::new(&tenant, mark.chat, mark.target), read: (&mark).into() }))
}

/// A message deleted.
#[derive(Serialize, ToSchema)]
struct DeleteAnswer {
    state: ChatState,
    /// `Message deleted`.
    message: &'static str,
    #[schema(schema_with = schemas::always_true)]
    success: bool,
}

/// Delete one's own message.
///
/// Only its author may. The chat's total drops by one and each inbox's `latest` becomes the
/// previous remaining message (or `null`); the inbox entries stay, their `timestamp` unchanged.
/// Deleting it again is a 404. No body is read.
#[utoipa::path(
    delete,
    path = "/api/{target}/{id}/{message_id}",
    tag = "chat",
    params(MessagePath),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The message is gone", body = DeleteAnswer),
        (status = 400, response = BadDelete),
        (status = 401, response = Unauthenticated),
        (status = 403, response = MessageForbidden),
        (status = 404, response = MessageNotFound),
        (status = 409, response = Conflict),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
async fn delete(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, ApiError> {
    let target = ChatTarget::parse(&path.target, &path.id)?;
    let id = MessageId::parse(&path.message_id)?;
    let deleted = state.service().delete(&tenant, &caller, target, id).await?;
    Ok(HttpResponse::Ok().json(DeleteAnswer {
        state: ChatState::new(&tenant, deleted.chat, deleted.target),
        message: "Message deleted",
        success: true,
    }))
}
