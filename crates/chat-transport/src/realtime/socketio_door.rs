//! Door 2: `/socket.io/`, Engine.IO v4 and Socket.IO v5 for `socket.io-client` v4 — HTTP
//! long-polling with upgrade to WebSocket, or WebSocket alone; heartbeats from the server;
//! authentication by the handshake's `auth: {token}` (or the token on the first request), or by
//! the original's `authenticate` event; acks on client events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use chat_domain::{Caller, DomainHandle};
use chat_service::{Connection, Overflow, ServiceError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::commands::{self, Answer};
use super::engineio::{self, EnginePacket, EngineQuery, Handshake, Transport};
use super::payload;
use super::sessions::{Inbound, Outbox, PollError, SessionHandle, pump};
use super::socketio::SocketPacket;
use crate::ApiState;
use crate::auth;
use crate::tenant::Tenant;

/// How long the close frame may take to go out after the packets already written (an
/// `unauthorized`, say).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
        return actix_web::ResponseError::error_response(&refused);
    }
    let query = match EngineQuery::parse(request.query_string()) {
        Ok(query) => query,
        Err(error) => return engine_error(engineio::engine_error_code(&error)),
    };
    let method = request.method().clone();
    match (query.transport, query.sid, method.as_str()) {
        (Transport::Polling, None, "GET") => open_polling(&request, state.into_inner(), tenant),
        (Transport::Websocket, None, "GET") => open_websocket(&request, body, state.into_inner(), tenant),
        (Transport::Polling, Some(sid), "GET") => poll(&state, &sid).await,
        (Transport::Polling, Some(sid), "POST") => post(&state, &sid, body).await,
        (Transport::Websocket, Some(sid), "GET") => upgrade(&request, body, &state, &sid).await,
        _ => engine_error(2),
    }
}

fn engine_error(code: u8) -> HttpResponse {
    HttpResponse::BadRequest().content_type("application/json").body(engineio::engine_error_body(code))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=UTF-8").body(body)
}

fn handshake(state: &ApiState, sid: &str, upgrades: Vec<&'static str>) -> String {
    let settings = state.realtime();
    Handshake {
        sid: sid.to_owned(),
        upgrades,
        ping_interval_ms: settings.ping_interval.as_millis() as u64,
        ping_timeout_ms: settings.ping_timeout.as_millis() as u64,
        max_payload: settings.max_message_bytes,
    }
    .to_json()
}

fn new_sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Starts a session whose first transport is a WebSocket or long-polling.
fn start(state: Arc<ApiState>, tenant: DomainHandle, token: Option<String>, socket: Option<Socket>) -> String {
    let sid = new_sid();
    let (inbound, received) = mpsc::channel(64);
    let outbox = Arc::new(Outbox::new(OUTBOX_CAPACITY));
    state.sessions().insert(sid.clone(), Arc::new(SessionHandle { inbound, outbox: outbox.clone() }));
    let output = match socket {
        Some(socket) => Output::Socket(socket),
        None => Output::Polling(outbox),
    };
    let task = SessionTask { state, tenant, sid: sid.clone(), token, received, output, probe: None };
    actix_web::rt::spawn(task.run());
    sid
}

fn open_polling(request: &HttpRequest, state: Arc<ApiState>, tenant: DomainHandle) -> HttpResponse {
    let sid = start(state.clone(), tenant, auth::connect_token(request, &state), None);
    text(EnginePacket::Open(handshake(&state, &sid, vec!["websocket"])).encode())
}

fn websocket(
    request: &HttpRequest,
    body: web::Payload,
    state: &ApiState,
) -> Result<(HttpResponse, Session, Messages), actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(request, body)?;
    let limit = state.realtime().max_message_bytes;
    let stream = stream.max_frame_size(limit).aggregate_continuations().max_continuation_size(limit);
    Ok((response, session, pump(stream)))
}

fn open_websocket(
    request: &HttpRequest,
    body: web::Payload,
    state: Arc<ApiState>,
    tenant: DomainHandle,
) -> HttpResponse {
    match websocket(request, body, &state) {
        Ok((response, session, messages)) => {
            let token = auth::connect_token(request, &state);
            let socket = Socket { session, messages, opened: true };
            start(state, tenant, token, Some(socket));
            response
        }
        Err(error) => HttpResponse::from_error(error),
    }
}

async fn poll(state: &ApiState, sid: &str) -> HttpResponse {
    let Some(session) = state.sessions().get(sid) else {
        return engine_error(1);
    };
    match session.outbox.poll().await {
        Ok(payload) => text(payload),
        Err(PollError::BadRequest) => engine_error(3),
    }
}

async fn post(state: &ApiState, sid: &str, body: web::Payload) -> HttpResponse {
    let Some(session) = state.sessions().get(sid) else {
        return engine_error(1);
    };
    let limit = state.realtime().max_message_bytes;
    let bytes = match body.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return engine_error(3),
        Err(_) => {
            return HttpResponse::build(StatusCode::PAYLOAD_TOO_LARGE)
                .content_type("application/json")
                .body(engineio::engine_error_body(3));
        }
    };
    let packets = std::str::from_utf8(&bytes).ok().map(engineio::decode_payload);
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

async fn upgrade(request: &HttpRequest, body: web::Payload, state: &ApiState, sid: &str) -> HttpResponse {
    let Some(session) = state.sessions().get(sid) else {
        return engine_error(1);
    };
    match websocket(request, body, state) {
        Ok((response, socket, messages)) => {
            if session.inbound.send(Inbound::Upgrade(socket, messages)).await.is_err() {
                return engine_error(1);
            }
            response
        }
        Err(error) => HttpResponse::from_error(error),
    }
}

/// What a WebSocket's pump forwards.
type Messages = mpsc::Receiver<Result<AggregatedMessage, ProtocolError>>;

/// A WebSocket carrying Engine.IO packets.
struct Socket {
    session: Session,
    messages: Messages,
    /// Whether the session started on it (then it must be sent the open packet).
    opened: bool,
}

/// Where the session's packets go.
enum Output {
    Polling(Arc<Outbox>),
    Socket(Socket),
}

/// Why a session ends.
enum End {
    /// The client closed it, or its transport broke.
    Gone,
    /// The server ends it with a reason (sent as the WebSocket close).
    Close(CloseCode, &'static str),
}

/// The Socket.IO state of a session.
struct Client {
    /// The client sent CONNECT for "/".
    connected: bool,
    /// Authenticated, with a live hub connection.
    connection: Option<Connection>,
    overflow: Option<Overflow>,
    /// When an unauthenticated connection must have authenticated by.
    deadline: Option<Instant>,
}

struct SessionTask {
    state: Arc<ApiState>,
    tenant: DomainHandle,
    sid: String,
    token: Option<String>,
    received: mpsc::Receiver<Inbound>,
    output: Output,
    /// A WebSocket being probed for an upgrade.
    probe: Option<Socket>,
}

async fn next_message(socket: Option<&mut Socket>) -> Option<Result<AggregatedMessage, ProtocolError>> {
    match socket {
        Some(socket) => socket.messages.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(connection: Option<&mut Connection>) -> Option<Arc<chat_domain::ChatEvent>> {
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

fn event(name: &str, data: Value) -> EnginePacket {
    let packet = SocketPacket::Event { namespace: "/".into(), ack: None, name: name.to_owned(), args: vec![data] };
    EnginePacket::Message(packet.encode())
}

impl SessionTask {
    async fn run(mut self) {
        let _counted = super::Counted::open("socket.io");
        let settings = self.state.realtime().clone();
        // The authentication deadline runs from the session's start, so a client that never
        // connects a namespace (or was refused) does not linger.
        let auth_deadline = Some(Instant::now() + settings.auth_timeout);
        let mut client = Client { connected: false, connection: None, overflow: None, deadline: auth_deadline };
        let mut stopping = self.state.hub().stopping();
        let mut ping = tokio::time::interval(settings.ping_interval);
        ping.tick().await;
        let mut awaiting_pong: Option<Instant> = None;
        let mut started = false;
        let end = loop {
            if !started {
                started = true;
                if let Output::Socket(socket) = &mut self.output
                    && socket.opened
                {
                    let open = EnginePacket::Open(handshake(&self.state, &self.sid, Vec::new()));
                    if socket.session.text(open.encode()).await.is_err() {
                        break End::Gone;
                    }
                }
            }
            if *stopping.borrow() {
                break End::Close(CloseCode::Away, "server shutting down");
            }
            let socket = match &mut self.output {
                Output::Socket(socket) => Some(socket),
                Output::Polling(_) => None,
            };
            let step = tokio::select! {
                inbound = self.received.recv() => match inbound {
                    Some(Inbound::Packets(packets)) => self.handle_all(&mut client, packets, &mut awaiting_pong).await,
                    Some(Inbound::Upgrade(session, messages)) => {
                        self.probe = Some(Socket { session, messages, opened: false });
                        Ok(())
                    }
                    None => Err(End::Gone),
                },
                message = next_message(socket) => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => match EnginePacket::decode(&text) {
                        Ok(packet) => self.handle_all(&mut client, vec![packet], &mut awaiting_pong).await,
                        Err(_) => Err(End::Close(CloseCode::Protocol, "malformed packet")),
                    },
                    Some(Ok(AggregatedMessage::Ping(bytes))) => match &mut self.output {
                        Output::Socket(socket) => socket.session.pong(&bytes).await.map_err(|_| End::Gone),
                        Output::Polling(_) => Ok(()),
                    },
                    Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                    Some(Ok(AggregatedMessage::Binary(_))) => Err(End::Close(CloseCode::Unsupported, "binary packets are not supported")),
                    Some(Err(ProtocolError::Overflow)) => Err(End::Close(CloseCode::Size, "message too large")),
                    Some(Err(_)) => Err(End::Close(CloseCode::Protocol, "protocol error")),
                    Some(Ok(AggregatedMessage::Close(_))) | None => Err(End::Gone),
                },
                message = next_message(self.probe.as_mut()) => self.probe_step(message).await,
                event = next_event(client.connection.as_mut()) => match (event, client.connection.as_ref()) {
                    (Some(event), Some(connection)) => {
                        let user = connection.user();
                        let packet = self::event(event.name(), payload::event_data(&event, user));
                        self.send_event(packet, client.overflow.clone()).await
                    }
                    _ => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
                },
                () = overflowed(client.overflow.as_ref()) => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
                () = deadline(client.deadline) => {
                    self.unauthorized(&mut client, "authentication timed out").await
                }
                _ = ping.tick() => {
                    match awaiting_pong {
                        Some(since) if since.elapsed() > settings.ping_timeout => Err(End::Close(CloseCode::Away, "no heartbeat")),
                        Some(_) => Ok(()),
                        None => {
                            awaiting_pong = Some(Instant::now());
                            self.send(EnginePacket::Ping(None)).await
                        }
                    }
                }
                _ = stopping.changed() => Err(End::Close(CloseCode::Away, "server shutting down")),
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.finish(client, end).await;
    }

    /// Handles a probe WebSocket's message: `2probe` → `3probe`, then `5` switches to it.
    async fn probe_step(&mut self, message: Option<Result<AggregatedMessage, ProtocolError>>) -> Result<(), End> {
        let Some(Ok(AggregatedMessage::Text(text))) = message else {
            // The probe failed; polling goes on.
            self.probe = None;
            return Ok(());
        };
        match EnginePacket::decode(&text) {
            Ok(EnginePacket::Ping(Some(probe))) if probe == "probe" => {
                if let Some(socket) = &mut self.probe {
                    let pong = EnginePacket::Pong(Some("probe".into())).encode();
                    if socket.session.text(pong).await.is_err() {
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
                        if socket.session.text(packet.encode()).await.is_err() {
                            return Err(End::Gone);
                        }
                    }
                }
                self.output = Output::Socket(socket);
                Ok(())
            }
            _ => {
                self.probe = None;
                Ok(())
            }
        }
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
            Output::Socket(socket) => socket.session.text(packet.encode()).await.map_err(|_| End::Gone),
        }
    }

    /// Sends an event; a client that stops reading blocks the send until its queue overflows.
    async fn send_event(&mut self, packet: EnginePacket, overflow: Option<Overflow>) -> Result<(), End> {
        tokio::select! {
            sent = self.send(packet) => sent,
            () = overflowed(overflow.as_ref()) => Err(End::Close(CloseCode::Policy, "too slow: send queue full")),
        }
    }

    async fn handle_all(
        &mut self,
        client: &mut Client,
        packets: Vec<EnginePacket>,
        awaiting_pong: &mut Option<Instant>,
    ) -> Result<(), End> {
        for packet in packets {
            match packet {
                EnginePacket::Pong(_) => *awaiting_pong = None,
                EnginePacket::Ping(data) => self.send(EnginePacket::Pong(data)).await?,
                EnginePacket::Message(text) => self.handle_socket(client, &text).await?,
                EnginePacket::Close => return Err(End::Gone),
                EnginePacket::Open(_) | EnginePacket::Upgrade | EnginePacket::Noop => {}
            }
        }
        Ok(())
    }

    async fn handle_socket(&mut self, client: &mut Client, text: &str) -> Result<(), End> {
        let Ok(packet) = SocketPacket::decode(text) else {
            return Err(End::Close(CloseCode::Protocol, "malformed packet"));
        };
        match packet {
            SocketPacket::Connect { namespace, data } => {
                if namespace != "/" {
                    let error = SocketPacket::ConnectError { namespace, data: json!({"message": "Invalid namespace"}) };
                    return self.send(EnginePacket::Message(error.encode())).await;
                }
                let token = data
                    .as_ref()
                    .and_then(|auth| auth["token"].as_str())
                    .map(str::to_owned)
                    .or_else(|| self.token.clone());
                match token {
                    Some(token) => match auth::verify(&self.state, &token) {
                        Ok(caller) => {
                            self.send_connect().await?;
                            client.connected = true;
                            self.authenticated(client, caller, None).await
                        }
                        Err(error) => {
                            let message = error.to_string();
                            let refused =
                                SocketPacket::ConnectError { namespace, data: payload::unauthorized(&message) };
                            self.send(EnginePacket::Message(refused.encode())).await
                        }
                    },
                    None => {
                        self.send_connect().await?;
                        // Connected, not yet authenticated: the session's deadline still runs.
                        client.connected = true;
                        Ok(())
                    }
                }
            }
            SocketPacket::Disconnect { .. } => Err(End::Gone),
            SocketPacket::Event { name, args, ack, .. } if client.connected => {
                let data = args.into_iter().next().unwrap_or(Value::Null);
                self.handle_event(client, &name, &data, ack).await
            }
            SocketPacket::Event { .. } | SocketPacket::Ack { .. } | SocketPacket::ConnectError { .. } => Ok(()),
        }
    }

    async fn send_connect(&mut self) -> Result<(), End> {
        let connect = SocketPacket::Connect { namespace: "/".into(), data: Some(json!({"sid": new_sid()})) };
        self.send(EnginePacket::Message(connect.encode())).await
    }

    async fn handle_event(
        &mut self,
        client: &mut Client,
        name: &str,
        data: &Value,
        ack: Option<u64>,
    ) -> Result<(), End> {
        if name == "authenticate" && client.connection.is_none() {
            // socketio-jwt refused anything but a string token before looking at it.
            let Some(token) = data["token"].as_str() else {
                return self.unauthorized(client, INVALID_TOKEN_DATATYPE).await;
            };
            return match auth::verify(&self.state, token) {
                Ok(caller) => self.authenticated(client, caller, ack).await,
                Err(error) => self.unauthorized(client, &error.to_string()).await,
            };
        }
        let Some(connection) = client.connection.as_mut() else {
            return self.reply(ack, Err("authenticate first".to_owned())).await;
        };
        let answer = commands::handle(connection, name, data).await;
        self.reply(ack, answer).await
    }

    /// Answers a client event: by ack when it asked for one, else by a confirming or error event.
    async fn reply(&mut self, ack: Option<u64>, answer: Result<Answer, String>) -> Result<(), End> {
        let packet = match (ack, answer) {
            (Some(id), Ok(Answer::Done { data, .. })) => ack_packet(id, data),
            (Some(id), Ok(Answer::Quiet)) => ack_packet(id, json!({"ok": true})),
            (Some(id), Err(message)) => ack_packet(id, json!({"error": message})),
            (None, Ok(Answer::Done { event: name, data })) => event(name, data),
            (None, Ok(Answer::Quiet)) => return Ok(()),
            (None, Err(message)) => event("error", payload::error(&message)),
        };
        self.send(packet).await
    }

    async fn authenticated(&mut self, client: &mut Client, caller: Caller, ack: Option<u64>) -> Result<(), End> {
        let user = caller.user();
        let connection = match self.state.hub().connect(&self.tenant, caller).await {
            Ok(connection) => connection,
            Err(ServiceError::TooManyConnections(why)) => {
                self.send(event("error", payload::error(why))).await?;
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
        if let Some(id) = ack {
            self.send(ack_packet(id, payload::authenticated(user))).await?;
        }
        self.send(event("authenticated", payload::authenticated(user))).await
    }

    /// The original's refusal: `unauthorized`, then the socket is disconnected.
    async fn unauthorized(&mut self, client: &mut Client, message: &str) -> Result<(), End> {
        client.deadline = None;
        self.send(event("unauthorized", payload::unauthorized(message))).await?;
        let disconnect = SocketPacket::Disconnect { namespace: "/".into() };
        self.send(EnginePacket::Message(disconnect.encode())).await?;
        Err(End::Close(CloseCode::Policy, "unauthorized"))
    }

    async fn finish(mut self, client: Client, end: End) {
        self.state.sessions().remove(&self.sid);
        if let Some(connection) = client.connection {
            connection.close().await;
        }
        let reason = match end {
            End::Close(code, description) => Some(CloseReason { code, description: Some(description.into()) }),
            End::Gone => None,
        };
        match self.output {
            Output::Polling(outbox) => {
                if reason.is_some() {
                    outbox.push(EnginePacket::Close);
                }
                // A client in the middle of an upgrade may already have left polling for the
                // probed WebSocket: the last packets go there too (it reads only one of the two).
                if let Some(mut probe) = self.probe.take() {
                    for packet in outbox.pending() {
                        if probe.session.text(packet.encode()).await.is_err() {
                            break;
                        }
                    }
                    let _ = tokio::time::timeout(CLOSE_GRACE, probe.session.close(reason)).await;
                }
                outbox.close();
            }
            Output::Socket(socket) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.session.close(reason)).await;
                if let Some(probe) = self.probe.take() {
                    probe.session.close(None).await.ok();
                }
            }
        }
    }
}

fn ack_packet(id: u64, data: Value) -> EnginePacket {
    EnginePacket::Message(SocketPacket::Ack { namespace: "/".into(), id, args: vec![data] }.encode())
}
