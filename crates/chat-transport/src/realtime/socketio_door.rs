//! Door 2: `/socket.io/`, for `socket.io-client` v4 (Engine.IO v4, Socket.IO protocol 5) and for
//! the original's clients, `socket.io-client` 1.x and 2.x (Engine.IO v3, Socket.IO protocol 4) —
//! HTTP long-polling with upgrade to WebSocket, or WebSocket alone; authentication by the token on
//! the first request (or v4's handshake `auth: {token}`), or by the original's `authenticate`
//! event; acks on client events.
//!
//! One session task serves both versions; its [`EngineVersion`] decides the payload framing, the
//! handshake, which side pings ([`Heartbeat`]), and who connects the main namespace (the v4
//! client sends CONNECT; for v3 the server connects it as soon as the session opens, as
//! socket.io 1.x and 2.x did).

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use chat_domain::{Caller, DomainHandle, UserId};
use chat_service::{Connection, Delivery, Overflow, ResumeFrom, Resumed, ServiceError};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::budget::Budgets;
use super::commands::{self, Answer};
use super::engineio::{self, EnginePacket, EngineQuery, EngineVersion, Handshake, Transport};
use super::heartbeat::{Beat, Heartbeat};
use super::payload;
use super::refusal::Refusal;
use super::sessions::{Inbound, Outbox, PollError, SessionHandle};
use super::socket::{self, Broken, Incoming, WebSocket};
use super::socketio::{self, SocketPacket};
use crate::ApiState;
use crate::auth;
use crate::tenant::Tenant;

/// Why a connection is closed when events it should have had were lost (the client resumes).
pub(super) const LOST_EVENTS: &str = "events were lost: reconnect to resume";

/// Packets queued for a polling client before it counts as gone.
const OUTBOX_CAPACITY: usize = 1024;

/// The `unauthorized` message for an `authenticate` event without a string `token`, socketio-jwt's
/// words.
const INVALID_TOKEN_DATATYPE: &str = "invalid token datatype";

/// `GET|POST /socket.io/`: the Engine.IO endpoint.
pub(crate) async fn door(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
    Tenant(tenant): Tenant,
) -> HttpResponse {
    if let Err(refused) = super::check_origin(&request, state.realtime()) {
        // Kept as the response's error, so that `error_bodies` gives it its `stack` like any other.
        return HttpResponse::from_error(refused);
    }
    let query = match EngineQuery::parse(request.query_string()) {
        Ok(query) => query,
        Err(error) => return engine_error(engineio::engine_error_code(&error)),
    };
    let method = request.method().clone();
    let version = query.version;
    match (query.transport, query.sid, method.as_str()) {
        (Transport::Polling, None, "GET") => open_polling(&request, state.into_inner(), tenant, version),
        (Transport::Websocket, None, "GET") => open_websocket(&request, body, state.into_inner(), tenant, version),
        (Transport::Polling, Some(sid), "GET") => poll(&state, &sid, version).await,
        (Transport::Polling, Some(sid), "POST") => post(&state, &sid, version, body).await,
        (Transport::Websocket, Some(sid), "GET") => upgrade(&request, body, &state, &sid, version).await,
        _ => engine_error(2),
    }
}

/// The session a request names, or the Engine.IO error code to answer: 1 "Session ID unknown"
/// when there is none here, 3 "Bad request" when the request speaks another protocol version
/// than the one the session was opened with.
fn session(state: &ApiState, sid: &str, version: EngineVersion) -> Result<Arc<SessionHandle>, u8> {
    match state.sessions().get(sid) {
        Some(session) if session.version == version => Ok(session),
        Some(_) => Err(3),
        None => Err(1),
    }
}

fn engine_error(code: u8) -> HttpResponse {
    HttpResponse::BadRequest().content_type("application/json").body(engineio::engine_error_body(code))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=UTF-8").body(body)
}

fn handshake(state: &ApiState, sid: &str, upgrades: Vec<&'static str>, version: EngineVersion) -> String {
    let settings = state.realtime();
    Handshake {
        sid: sid.to_owned(),
        upgrades,
        ping_interval_ms: settings.ping_interval.get().as_millis() as u64,
        ping_timeout_ms: settings.ping_timeout.as_millis() as u64,
        max_payload: (version == EngineVersion::V4).then_some(settings.max_message_bytes.get()),
    }
    .to_json()
}

fn new_sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// How a session starts: its first request's protocol, tenant, token and `since`.
struct Opening {
    version: EngineVersion,
    tenant: DomainHandle,
    token: Option<String>,
    since: Option<String>,
}

/// A session whose first transport is a WebSocket or long-polling, to run. Only a polling session
/// is registered (with its outbox and a channel for its later requests): a session that starts on a
/// WebSocket stays on it, so no later request names it, and it keeps none of that state.
fn start(state: Arc<ApiState>, opening: Opening, socket: Option<Socket>) -> SessionTask {
    let Opening { version, tenant, token, since } = opening;
    let sid = new_sid();
    let (output, received) = match socket {
        Some(socket) => (Output::Socket(socket), None),
        None => {
            let (inbound, received) = mpsc::channel(64);
            let outbox = Arc::new(Outbox::new(OUTBOX_CAPACITY, version));
            state.sessions().insert(sid.clone(), Arc::new(SessionHandle { inbound, outbox: outbox.clone(), version }));
            (Output::Polling(outbox), Some(received))
        }
    };
    let budgets = Budgets::new(state.realtime());
    SessionTask { state, version, tenant, sid, token, since, received, output, probe: None, budgets }
}

fn open_polling(
    request: &HttpRequest,
    state: Arc<ApiState>,
    tenant: DomainHandle,
    version: EngineVersion,
) -> HttpResponse {
    let token = auth::connect_token(request, &state);
    let since = auth::query_value(request, "since");
    let task = start(state.clone(), Opening { version, tenant, token, since }, None);
    let sid = task.sid.clone();
    actix_web::rt::spawn(task.run());
    let open = EnginePacket::Open(handshake(&state, &sid, vec!["websocket"], version));
    text(version.encode_payload([&open]))
}

/// Accepts a WebSocket for a session that starts on it, and runs the session there.
fn open_websocket(
    request: &HttpRequest,
    body: web::Payload,
    state: Arc<ApiState>,
    tenant: DomainHandle,
    version: EngineVersion,
) -> HttpResponse {
    let token = auth::connect_token(request, &state);
    let since = auth::query_value(request, "since");
    let opening = Opening { version, tenant, token, since };
    let limit = state.realtime().max_message_bytes.get();
    let accepted = socket::accept(request, body, limit, move |websocket| {
        start(state, opening, Some(Socket { websocket, opened: true })).run()
    });
    accepted.unwrap_or_else(HttpResponse::from_error)
}

async fn poll(state: &ApiState, sid: &str, version: EngineVersion) -> HttpResponse {
    let session = match session(state, sid, version) {
        Ok(session) => session,
        Err(code) => return engine_error(code),
    };
    match session.outbox.poll().await {
        Ok(payload) => text(payload),
        Err(PollError::BadRequest) => engine_error(3),
    }
}

async fn post(state: &ApiState, sid: &str, version: EngineVersion, body: web::Payload) -> HttpResponse {
    let session = match session(state, sid, version) {
        Ok(session) => session,
        Err(code) => return engine_error(code),
    };
    let limit = state.realtime().max_message_bytes.get();
    let bytes = match body.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return engine_error(3),
        Err(_) => {
            return HttpResponse::build(StatusCode::PAYLOAD_TOO_LARGE)
                .content_type("application/json")
                .body(engineio::engine_error_body(3));
        }
    };
    let packets = std::str::from_utf8(&bytes).ok().map(|body| version.decode_payload(body));
    match packets {
        Some(Ok(packets)) => {
            if session.inbound.send(Inbound::Packets(packets)).await.is_err() {
                return engine_error(1);
            }
            text("ok".to_owned())
        }
        _ => engine_error(3),
    }
}

async fn upgrade(
    request: &HttpRequest,
    body: web::Payload,
    state: &ApiState,
    sid: &str,
    version: EngineVersion,
) -> HttpResponse {
    let session = match session(state, sid, version) {
        Ok(session) => session,
        Err(code) => return engine_error(code),
    };
    let limit = state.realtime().max_message_bytes.get();
    let accepted = socket::accept(request, body, limit, move |websocket| async move {
        // The session's task may run on another worker; one that has ended lets the socket go.
        session.inbound.send(Inbound::Upgrade(websocket.movable())).await.ok();
    });
    accepted.unwrap_or_else(HttpResponse::from_error)
}

/// A WebSocket carrying Engine.IO packets.
struct Socket {
    websocket: WebSocket,
    /// Whether the session started on it (then it must be sent the open packet).
    opened: bool,
}

impl Socket {
    async fn text(&mut self, text: String) -> Result<(), End> {
        self.websocket.text(text).await.map_err(|_| End::Gone)
    }
}

/// Where the session's packets go.
// One per session, inside its task: boxing the socket would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Output {
    Polling(Arc<Outbox>),
    Socket(Socket),
}

/// Why a session ends.
enum End {
    /// The client closed its WebSocket (its close frame came, or its messages ended).
    Closed,
    /// The client left (an Engine.IO close, a Socket.IO disconnect, polling ended), or its
    /// transport broke.
    Gone,
    /// The server ends it with a reason (sent as the WebSocket close).
    Close(CloseCode, &'static str),
}

/// The Socket.IO state of a session.
struct Client {
    /// The main namespace "/" is connected (the v4 client's CONNECT was accepted, or the v3
    /// session opened); events are ignored until it is.
    connected: bool,
    /// Authenticated, with a live hub connection.
    connection: Option<Connection>,
    overflow: Option<Overflow>,
    /// When an unauthenticated connection must have authenticated by.
    deadline: Option<Instant>,
}

struct SessionTask {
    state: Arc<ApiState>,
    version: EngineVersion,
    tenant: DomainHandle,
    sid: String,
    token: Option<String>,
    /// The first request's `since`, for a client that authenticates without giving its own.
    since: Option<String>,
    /// A polling session's later requests (`None` for a session on a WebSocket from the start).
    received: Option<mpsc::Receiver<Inbound>>,
    output: Output,
    /// A WebSocket being probed for an upgrade (boxed: most sessions never have one, and the task
    /// keeps its own fields twice while it runs).
    probe: Option<Box<Socket>>,
    /// What the client may send per second.
    budgets: Budgets,
}

async fn next_inbound(received: Option<&mut mpsc::Receiver<Inbound>>) -> Option<Inbound> {
    match received {
        Some(received) => received.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_message(socket: Option<&mut Socket>) -> Option<Result<Incoming, Broken>> {
    match socket {
        Some(socket) => socket.websocket.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(connection: Option<&mut Connection>) -> Option<Delivery> {
    match connection {
        Some(connection) => connection.next_event().await,
        None => std::future::pending().await,
    }
}

async fn overflowed(overflow: Option<&Overflow>) {
    match overflow {
        Some(overflow) => overflow.happened().await,
        None => std::future::pending().await,
    }
}

async fn deadline(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The event `name` with `data`, on the main namespace.
fn event(name: &str, data: Value) -> SocketPacket {
    SocketPacket::Event { namespace: "/".into(), ack: None, name: name.to_owned(), args: vec![data] }
}

/// The ack `id` answering with `data`, on the main namespace.
fn ack(id: u64, data: Value) -> SocketPacket {
    SocketPacket::Ack { namespace: "/".into(), id, args: vec![data] }
}

impl SessionTask {
    /// The session, from its opening to its end. Not an `async fn`, whose `self` the future would
    /// keep twice (rust-lang/rust#62958): each idle session's task is this future.
    #[expect(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice")]
    fn run(mut self) -> impl Future<Output = ()> {
        async move {
            let _counted = super::Counted::open("socket.io");
            let settings = self.state.realtime().clone();
            // The authentication deadline runs from the session's start, so a client that never
            // connects a namespace (or was refused) does not linger.
            let auth_deadline = Some(Instant::now() + settings.auth_timeout);
            let mut client = Client { connected: false, connection: None, overflow: None, deadline: auth_deadline };
            let mut stopping = self.state.hub().stopping();
            let mut heartbeat = Heartbeat::new(self.version, settings.ping_interval.get(), settings.ping_timeout);
            // The steps that run once or seldom (opening, packets from the client, the ending) are
            // boxed while they run: inline, the largest of them would size every idle session's task
            // (6.5 KB instead of 1.x); the hot path, an event out, stays inline.
            let end = match Box::pin(self.open(&mut client)).await {
                Err(end) => end,
                Ok(()) => loop {
                    if *stopping.borrow() {
                        break End::Close(CloseCode::Away, "server shutting down");
                    }
                    let socket = match &mut self.output {
                        Output::Socket(socket) => Some(socket),
                        Output::Polling(_) => None,
                    };
                    let step = tokio::select! {
                        inbound = next_inbound(self.received.as_mut()) => match inbound {
                            Some(Inbound::Packets(packets)) => Box::pin(self.handle_all(&mut client, packets, &mut heartbeat)).await,
                            Some(Inbound::Upgrade(websocket)) => {
                                self.probe = Some(Box::new(Socket { websocket: websocket.into(), opened: false }));
                                Ok(())
                            }
                            None => Err(End::Gone),
                        },
                        message = next_message(socket) => match message {
                            Some(Ok(Incoming::Text(text))) => match EnginePacket::decode(&text) {
                                Ok(packet) => Box::pin(self.handle_all(&mut client, vec![packet], &mut heartbeat)).await,
                                Err(_) => Err(End::Close(CloseCode::Protocol, "malformed packet")),
                            },
                            Some(Ok(Incoming::Heard)) if !self.budgets.frames.spend() => {
                                Err(End::Close(CloseCode::Policy, "too many frames"))
                            }
                            Some(Ok(Incoming::Heard)) => Ok(()),
                            Some(Ok(Incoming::Binary)) => Err(End::Close(CloseCode::Unsupported, "binary packets are not supported")),
                            Some(Err(Broken::TooLarge)) => Err(End::Close(CloseCode::Size, "message too large")),
                            Some(Err(Broken::Protocol(_))) => Err(End::Close(CloseCode::Protocol, "protocol error")),
                            Some(Ok(Incoming::Close)) | None => Err(End::Closed),
                        },
                        message = next_message(self.probe.as_deref_mut()) => Box::pin(self.probe_step(message)).await,
                        delivery = next_event(client.connection.as_mut()) => match (delivery, client.connection.as_ref()) {
                            (Some(Delivery { event, position, .. }), Some(connection)) => {
                                let data = payload::event_data(&event, position, connection.user());
                                let packet = self.message(&self::event(event.name(), data));
                                self.send_event(packet, client.overflow.clone(), &mut stopping).await
                            }
                            (None, Some(connection)) if connection.lost_events() => {
                                Err(End::Close(CloseCode::Again, LOST_EVENTS))
                            }
                            _ => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
                        },
                        () = overflowed(client.overflow.as_ref()) => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
                        () = deadline(client.deadline) => {
                            Box::pin(self.unauthorized(&mut client, "authentication timed out")).await
                        }
                        beat = heartbeat.next() => match beat {
                            Beat::Ping => self.send(EnginePacket::Ping(None)).await,
                            Beat::Expired => Err(End::Close(CloseCode::Away, "no heartbeat")),
                            Beat::Idle => Ok(()),
                        },
                        _ = stopping.changed() => Err(End::Close(CloseCode::Away, "server shutting down")),
                    };
                    if let Err(end) = step {
                        break end;
                    }
                },
            };
            Box::pin(self.finish(client, end)).await;
        }
    }

    /// What a session says first: the open packet on a WebSocket it started on (polling answered
    /// the handshake request with it), then, on v3, the main namespace's connection.
    async fn open(&mut self, client: &mut Client) -> Result<(), End> {
        if let Output::Socket(socket) = &mut self.output
            && socket.opened
        {
            let open = EnginePacket::Open(handshake(&self.state, &self.sid, Vec::new(), self.version));
            socket.text(open.encode()).await?;
        }
        match self.version {
            EngineVersion::V3 => self.connect_main(client, self.token.clone(), self.since()).await,
            EngineVersion::V4 => Ok(()),
        }
    }

    /// The first request's `since`.
    fn since(&self) -> ResumeFrom {
        ResumeFrom::parse(self.since.as_deref())
    }

    /// The `since` of a CONNECT's auth or an `authenticate` event's data, else the first
    /// request's.
    fn since_in(&self, data: &Value) -> ResumeFrom {
        match commands::since_in(data) {
            ResumeFrom::Now => self.since(),
            asked => asked,
        }
    }

    /// Handles a probe WebSocket's message: `2probe` → `3probe`, then `5` switches to it.
    async fn probe_step(&mut self, message: Option<Result<Incoming, Broken>>) -> Result<(), End> {
        let Some(Ok(Incoming::Text(text))) = message else {
            // The probe failed; polling goes on.
            self.probe = None;
            return Ok(());
        };
        match EnginePacket::decode(&text) {
            Ok(EnginePacket::Ping(Some(probe))) if probe == "probe" => {
                if let Some(socket) = &mut self.probe {
                    let pong = EnginePacket::Pong(Some("probe".into())).encode();
                    if socket.text(pong).await.is_err() {
                        self.probe = None;
                        return Ok(());
                    }
                }
                // The client now waits for its pending poll to end before it sends the upgrade
                // packet (and holds back its own packets meanwhile): end that poll at once.
                if let Output::Polling(outbox) = &self.output {
                    outbox.push(EnginePacket::Noop);
                }
                Ok(())
            }
            Ok(EnginePacket::Upgrade) => {
                let Some(mut socket) = self.probe.take() else {
                    return Ok(());
                };
                if let Output::Polling(outbox) = &self.output {
                    for packet in outbox.upgrade() {
                        socket.text(packet.encode()).await?;
                    }
                }
                self.output = Output::Socket(*socket);
                Ok(())
            }
            _ => {
                self.probe = None;
                Ok(())
            }
        }
    }

    /// The Engine.IO message carrying `packet` in this session's protocol. v3 sessions send
    /// ASCII-only JSON ([`SocketPacket::encode_ascii`]), which both generations of v3 polling
    /// clients read alike; the same text over a WebSocket keeps one rule per session.
    fn message(&self, packet: &SocketPacket) -> EnginePacket {
        EnginePacket::Message(match self.version {
            EngineVersion::V3 => packet.encode_ascii(),
            EngineVersion::V4 => packet.encode(),
        })
    }

    async fn send(&mut self, packet: EnginePacket) -> Result<(), End> {
        match &mut self.output {
            Output::Polling(outbox) => {
                if outbox.push(packet) {
                    Ok(())
                } else {
                    Err(End::Close(CloseCode::Policy, "too slow: send queue full"))
                }
            }
            Output::Socket(socket) => socket.text(packet.encode()).await,
        }
    }

    /// Sends a Socket.IO packet.
    async fn send_socket(&mut self, packet: &SocketPacket) -> Result<(), End> {
        let message = self.message(packet);
        self.send(message).await
    }

    /// Sends an event; a client that stops reading blocks the send until its queue overflows (or
    /// the server stops).
    async fn send_event(
        &mut self,
        packet: EnginePacket,
        overflow: Option<Overflow>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        tokio::select! {
            sent = self.send(packet) => sent,
            () = overflowed(overflow.as_ref()) => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
            _ = stopping.changed() => Err(End::Close(CloseCode::Away, "server shutting down")),
        }
    }

    async fn handle_all(
        &mut self,
        client: &mut Client,
        packets: Vec<EnginePacket>,
        heartbeat: &mut Heartbeat,
    ) -> Result<(), End> {
        for packet in packets {
            if !self.budgets.frames.spend() {
                return Err(End::Close(CloseCode::Policy, "too many frames"));
            }
            heartbeat.heard(&packet);
            match packet {
                // Pings come from v3 clients (their heartbeat); answering a v4 client's costs nothing.
                EnginePacket::Ping(data) => self.send(EnginePacket::Pong(data)).await?,
                EnginePacket::Message(text) => self.handle_socket(client, &text).await?,
                EnginePacket::Close => return Err(End::Gone),
                EnginePacket::Pong(_) | EnginePacket::Open(_) | EnginePacket::Upgrade | EnginePacket::Noop => {}
            }
        }
        Ok(())
    }

    async fn handle_socket(&mut self, client: &mut Client, text: &str) -> Result<(), End> {
        let Ok(packet) = SocketPacket::decode(text) else {
            return Err(End::Close(CloseCode::Protocol, "malformed packet"));
        };
        match packet {
            SocketPacket::Connect { namespace, data } => match self.version {
                EngineVersion::V4 if namespace == "/" => {
                    let auth = data.unwrap_or(Value::Null);
                    let token = auth["token"].as_str().map(str::to_owned).or_else(|| self.token.clone());
                    let since = self.since_in(&auth);
                    self.connect_main(client, token, since).await
                }
                EngineVersion::V4 => {
                    let refused = json!({"message": "Invalid namespace"});
                    self.send_socket(&SocketPacket::ConnectError { namespace, data: refused }).await
                }
                // The server connected "/" when the session opened; socket.io-client 1.x and 2.x
                // never ask for it.
                EngineVersion::V3 if socketio::namespace_path(&namespace) == "/" => Ok(()),
                EngineVersion::V3 => {
                    // socket.io 2.x's answer, addressed to the namespace without its query.
                    let namespace = socketio::namespace_path(&namespace).to_owned();
                    let refused = SocketPacket::ConnectError { namespace, data: json!("Invalid namespace") };
                    self.send_socket(&refused).await
                }
            },
            SocketPacket::Disconnect { .. } => Err(End::Gone),
            SocketPacket::Event { name, args, ack, .. } if client.connected => {
                let data = args.into_iter().next().unwrap_or(Value::Null);
                self.handle_event(client, &name, &data, ack).await
            }
            SocketPacket::Event { .. } | SocketPacket::Ack { .. } | SocketPacket::ConnectError { .. } => Ok(()),
        }
    }

    /// Connects the main namespace, authenticated at once when the client brought a token (in the
    /// v4 CONNECT's auth, or on the first request). A bad token refuses the connection with the
    /// version's error packet: v4's CONNECT_ERROR with the `unauthorized` object, or v3's ERROR
    /// with its inner data, which is what socket.io 2.x sent for socketio-jwt's failing
    /// middleware (`err.data`). The session stays open either way; its deadline ends it.
    async fn connect_main(&mut self, client: &mut Client, token: Option<String>, since: ResumeFrom) -> Result<(), End> {
        let Some(token) = token else {
            self.send_connect().await?;
            // Connected, not yet authenticated: the session's deadline still runs.
            client.connected = true;
            return Ok(());
        };
        match auth::verify(&self.state, &self.tenant, &token) {
            Ok(caller) => {
                // CONNECT only once the hub hears this user's events: a client that sends (or is
                // sent) a message the moment it is connected must hear it.
                let (user, resumed) = self.register(client, caller, since).await?;
                self.send_connect().await?;
                client.connected = true;
                self.announce(user, &resumed, None).await
            }
            Err(error) => {
                let mut refused = payload::unauthorized(&error.to_string());
                if self.version == EngineVersion::V3
                    && let Some(data) = refused.get_mut("data").map(Value::take)
                {
                    refused = data;
                }
                self.send_socket(&SocketPacket::ConnectError { namespace: "/".into(), data: refused }).await
            }
        }
    }

    /// The server's CONNECT for "/": `0{"sid":…}` in protocol 5, a bare `0` in protocol 4.
    async fn send_connect(&mut self) -> Result<(), End> {
        let data = match self.version {
            EngineVersion::V3 => None,
            EngineVersion::V4 => Some(json!({"sid": new_sid()})),
        };
        self.send_socket(&SocketPacket::Connect { namespace: "/".into(), data }).await
    }

    async fn handle_event(
        &mut self,
        client: &mut Client,
        name: &str,
        data: &Value,
        ack: Option<u64>,
    ) -> Result<(), End> {
        if !self.budgets.events.spend() {
            return self.reply(ack, Err(Refusal::rate_limited())).await;
        }
        if name == "authenticate" && client.connection.is_none() {
            // socketio-jwt refused anything but a string token before looking at it.
            let Some(token) = data["token"].as_str() else {
                return self.unauthorized(client, INVALID_TOKEN_DATATYPE).await;
            };
            let since = self.since_in(data);
            return match auth::verify(&self.state, &self.tenant, token) {
                Ok(caller) => self.authenticated(client, caller, since, ack).await,
                Err(error) => self.unauthorized(client, &error.to_string()).await,
            };
        }
        let Some(connection) = client.connection.as_mut() else {
            return self.reply(ack, Err(Refusal::authenticate_first())).await;
        };
        let answer = commands::handle(connection, name, data).await;
        self.reply(ack, answer).await
    }

    /// Answers a client event: by ack when it asked for one, else by a confirming or error event.
    async fn reply(&mut self, ack: Option<u64>, answer: Result<Answer, Refusal>) -> Result<(), End> {
        let packet = match (ack, answer) {
            (Some(id), Ok(Answer::Done { data, .. })) => self::ack(id, data),
            (Some(id), Ok(Answer::Quiet)) => self::ack(id, json!({"ok": true})),
            (Some(id), Err(refusal)) => self::ack(id, payload::error_ack(&refusal)),
            (None, Ok(Answer::Done { event: name, data })) => event(name, data),
            (None, Ok(Answer::Quiet)) => return Ok(()),
            (None, Err(refusal)) => event("error", payload::error(&refusal)),
        };
        self.send_socket(&packet).await
    }

    async fn authenticated(
        &mut self,
        client: &mut Client,
        caller: Caller,
        since: ResumeFrom,
        ack: Option<u64>,
    ) -> Result<(), End> {
        let (user, resumed) = self.register(client, caller, since).await?;
        self.announce(user, &resumed, ack).await
    }

    /// Registers the connection with the hub as `caller`, whose events it hears from then on (after
    /// those it missed since `since`, when it asked).
    async fn register(
        &mut self,
        client: &mut Client,
        caller: Caller,
        since: ResumeFrom,
    ) -> Result<(UserId, Resumed), End> {
        let user = caller.user();
        let (connection, resumed) = match self.state.hub().connect(&self.tenant, caller, since).await {
            Ok(connected) => connected,
            Err(error @ ServiceError::TooManyConnections(_)) => {
                self.send_socket(&event("error", payload::error(&error.into()))).await?;
                return Err(End::Close(CloseCode::Policy, "too many connections"));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot register a realtime connection");
                return Err(End::Close(CloseCode::Again, "realtime is unavailable, try again"));
            }
        };
        client.overflow = Some(connection.overflow());
        client.connection = Some(connection);
        client.deadline = None;
        Ok((user, resumed))
    }

    /// Tells the client it is authenticated: the ack of its `authenticate` event, if it asked for
    /// one, and the `authenticated` event.
    async fn announce(&mut self, user: UserId, resumed: &Resumed, ack: Option<u64>) -> Result<(), End> {
        let data = payload::authenticated(user, resumed);
        if let Some(id) = ack {
            self.send_socket(&self::ack(id, data.clone())).await?;
        }
        self.send_socket(&event("authenticated", data)).await
    }

    /// The original's refusal: `unauthorized`, then the socket is disconnected.
    async fn unauthorized(&mut self, client: &mut Client, message: &str) -> Result<(), End> {
        client.deadline = None;
        self.send_socket(&event("unauthorized", payload::unauthorized(message))).await?;
        self.send_socket(&SocketPacket::Disconnect { namespace: "/".into() }).await?;
        Err(End::Close(CloseCode::Policy, "unauthorized"))
    }

    async fn finish(mut self, client: Client, end: End) {
        if let Output::Socket(_) = self.output {
            self.state.sessions().remove(&self.sid);
        }
        if let Some(connection) = client.connection {
            connection.close().await;
        }
        let client_closed = matches!(end, End::Closed);
        let reason = match end {
            End::Close(code, description) => Some(CloseReason { code, description: Some(description.into()) }),
            End::Closed | End::Gone => None,
        };
        match self.output {
            Output::Polling(outbox) => {
                if reason.is_some() {
                    outbox.push(EnginePacket::Close);
                }
                // A client in the middle of an upgrade may already have left polling for the
                // probed WebSocket: the last packets go there too (it reads only one of the two).
                if let Some(probe) = self.probe.take() {
                    let last = outbox.pending().iter().map(EnginePacket::encode).collect();
                    probe.websocket.close(last, reason, false).await;
                }
                outbox.close();
                // The last packets (an `unauthorized`, the close) wait for the client's next poll,
                // which names this session: it stays known until then, or for the close timeout.
                let _ = tokio::time::timeout(super::closing::CLOSE_TIMEOUT, outbox.drained()).await;
                self.state.sessions().remove(&self.sid);
            }
            Output::Socket(socket) => {
                let probe = async {
                    if let Some(probe) = self.probe.take() {
                        probe.websocket.close(Vec::new(), None, false).await;
                    }
                };
                tokio::join!(socket.websocket.close(Vec::new(), reason, client_closed), probe);
            }
        }
    }
}
