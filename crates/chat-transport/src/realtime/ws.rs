//! Door 1: `/ws`, plain JSON frames `{"event", "data"}` both ways over one WebSocket.
//!
//! A connection authenticates with `?token=`, the token header or `Authorization: Bearer` on the
//! upgrade, or a first `authenticate` frame within the deadline; then it hears its user's events
//! (and its topics'), and may send `subscribe`, `unsubscribe` and `typing`.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use chat_domain::{Caller, DomainHandle};
use chat_service::{ResumeFrom, ServiceError};
use serde_json::Value;

use super::budget::{Budget, Budgets};
use super::commands::{self, Answer};
use super::frames::Frame;
use super::payload;
use super::refusal::Refusal;
use super::socket::{self, Broken, Incoming, WebSocket};
use crate::ApiState;
use crate::auth;
use crate::tenant::Tenant;

/// `GET /ws`: upgrades to a WebSocket and runs the connection.
pub(crate) async fn door(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
    Tenant(tenant): Tenant,
) -> Result<HttpResponse, actix_web::Error> {
    super::check_origin(&request, state.realtime())?;
    let token = auth::connect_token(&request, &state);
    let since = auth::query_value(&request, "since");
    let limit = state.realtime().max_message_bytes.get();
    let state = state.into_inner();
    socket::accept(&request, body, limit, move |socket| run(state, tenant, (token, since), socket))
}

async fn send(socket: &mut WebSocket, event: &str, data: &Value) -> bool {
    socket.text(Frame::encode(event, data)).await.is_ok()
}

fn close_reason(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code, description: Some(description.to_owned()) })
}

/// Refuses the connection the way the original did: `unauthorized`, then a close frame.
async fn refuse(socket: WebSocket, message: &str) {
    let last = vec![Frame::encode("unauthorized", &payload::unauthorized(message))];
    socket.close(last, close_reason(CloseCode::Policy, "unauthorized"), false).await;
}

/// Why a connection is not let in.
enum Refused {
    /// Refused the original's way ([`refuse`]), for this reason.
    Unauthorized(String),
    /// It sent more frames than its budget before authenticating.
    TooManyFrames,
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Self::Unauthorized(message)
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Self {
        Self::Unauthorized(message.to_owned())
    }
}

/// Finds out who is connecting, and where they resume from: the token and `since` of the URL (or
/// the token headers), or those of a first `authenticate` frame. An `Err` is why the connection is
/// refused.
async fn authenticate(
    state: &ApiState,
    tenant: &DomainHandle,
    (token, since): (Option<String>, Option<String>),
    socket: &mut WebSocket,
    frames: &Budget,
) -> Result<(Caller, ResumeFrom), Refused> {
    if let Some(token) = token {
        let caller = auth::verify(state, tenant, &token).map_err(|e| e.to_string())?;
        return Ok((caller, ResumeFrom::parse(since.as_deref())));
    }
    let deadline = tokio::time::sleep(state.realtime().auth_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Err("authentication timed out".into()),
            message = socket.recv() => match message {
                Some(Ok(_)) if !frames.spend() => return Err(Refused::TooManyFrames),
                Some(Ok(Incoming::Text(text))) => match Frame::decode(&text) {
                    Ok(frame) if frame.event == "authenticate" => {
                        // socketio-jwt's words, which the original's clients saw.
                        let token = frame.data["token"].as_str().ok_or("invalid token datatype")?;
                        let caller = auth::verify(state, tenant, token).map_err(|e| e.to_string())?;
                        return Ok((caller, commands::since_in(&frame.data)));
                    }
                    Ok(_) => {
                        send(socket, "error", &payload::error(&Refusal::authenticate_first())).await;
                    }
                    Err(error) => {
                        send(socket, "error", &payload::error(&error.into())).await;
                    }
                },
                Some(Ok(Incoming::Heard | Incoming::Binary)) => {}
                Some(Ok(Incoming::Close) | Err(_)) | None => return Err("connection closed".into()),
            },
        }
    }
}

/// The connection, from authentication to its end. Not an `async fn`, whose arguments the future
/// would keep twice (rust-lang/rust#62958): each idle connection's task is this future.
#[expect(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice")]
fn run(
    state: Arc<ApiState>,
    tenant: DomainHandle,
    credentials: (Option<String>, Option<String>),
    mut socket: WebSocket,
) -> impl Future<Output = ()> {
    async move {
        // The steps that run once (authenticating, connecting, closing) are boxed while they run:
        // inline, the largest of them would size every idle connection's task; the loop stays inline.
        let budgets = Budgets::new(state.realtime());
        let (caller, since) =
            match Box::pin(authenticate(&state, &tenant, credentials, &mut socket, &budgets.frames)).await {
                Ok(authenticated) => authenticated,
                Err(Refused::Unauthorized(message)) => return Box::pin(refuse(socket, &message)).await,
                Err(Refused::TooManyFrames) => {
                    let reason = close_reason(CloseCode::Policy, "too many frames");
                    return Box::pin(socket.close(Vec::new(), reason, false)).await;
                }
            };
        let user = caller.user();
        let _counted = super::Counted::open("ws");
        let hub = state.hub();
        let mut stopping = hub.stopping();
        let (mut connection, resumed) = match Box::pin(hub.connect(&tenant, caller, since)).await {
            Ok(connected) => connected,
            Err(error @ ServiceError::TooManyConnections(_)) => {
                let last = vec![Frame::encode("error", &payload::error(&error.into()))];
                let reason = close_reason(CloseCode::Policy, "too many connections");
                return Box::pin(socket.close(last, reason, false)).await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot register a realtime connection");
                let reason = close_reason(CloseCode::Again, "realtime is unavailable, try again");
                return Box::pin(socket.close(Vec::new(), reason, false)).await;
            }
        };
        if !send(&mut socket, "authenticated", &payload::authenticated(user, &resumed)).await {
            return Box::pin(connection.close()).await;
        }
        let settings = state.realtime();
        let mut ping = tokio::time::interval(settings.ping_interval.get());
        ping.tick().await;
        let mut last_heard = Instant::now();
        let overflow = connection.overflow();
        let mut client_closed = false;
        let reason = loop {
            if *stopping.borrow() {
                break close_reason(CloseCode::Away, "server shutting down");
            }
            tokio::select! {
                message = socket.recv() => {
                    last_heard = Instant::now();
                    if matches!(message, Some(Ok(_))) && !budgets.frames.spend() {
                        break close_reason(CloseCode::Policy, "too many frames");
                    }
                    match message {
                        Some(Ok(Incoming::Text(text))) => {
                            let reply = match Frame::decode(&text) {
                                Ok(_) if !budgets.events.spend() => Some(("error", payload::error(&Refusal::rate_limited()))),
                                Ok(frame) => match commands::handle(&mut connection, &frame.event, &frame.data).await {
                                    Ok(Answer::Done { event, data }) => Some((event, data)),
                                    Ok(Answer::Quiet) => None,
                                    Err(refusal) => Some(("error", payload::error(&refusal))),
                                },
                                Err(error) => Some(("error", payload::error(&error.into()))),
                            };
                            if let Some((event, data)) = reply
                                && !send(&mut socket, event, &data).await
                            {
                                break None;
                            }
                        }
                        Some(Ok(Incoming::Binary)) => {
                            if !send(&mut socket, "error", &payload::error(&Refusal::binary_unsupported())).await {
                                break None;
                            }
                        }
                        Some(Ok(Incoming::Heard)) => {}
                        Some(Ok(Incoming::Close)) | None => {
                            client_closed = true;
                            break None;
                        }
                        Some(Err(Broken::TooLarge)) => break close_reason(CloseCode::Size, "message too large"),
                        Some(Err(Broken::Protocol(error))) => break close_reason(CloseCode::Protocol, &error),
                    }
                }
                delivery = connection.next_event() => {
                    let Some(delivery) = delivery else {
                        if connection.lost_events() {
                            break close_reason(CloseCode::Again, super::socketio_door::LOST_EVENTS);
                        }
                        break close_reason(CloseCode::Policy, "too slow: send queue full");
                    };
                    let frame = Frame::encode(delivery.event.name(), &payload::event_data(&delivery.event, delivery.position, user));
                    // A client that stops reading blocks this send; its queue then overflows.
                    tokio::select! {
                        sent = socket.text(frame) => if sent.is_err() { break None },
                        () = overflow.happened() => break close_reason(CloseCode::Policy, "too slow: send queue full"),
                        _ = stopping.changed() => break close_reason(CloseCode::Away, "server shutting down"),
                    }
                }
                () = overflow.happened() => break close_reason(CloseCode::Policy, "too slow: send queue full"),
                _ = ping.tick() => {
                    if last_heard.elapsed() > settings.ping_interval.get() + settings.ping_timeout {
                        break close_reason(CloseCode::Away, "no heartbeat");
                    }
                    if socket.ping().await.is_err() {
                        break None;
                    }
                }
                _ = stopping.changed() => break close_reason(CloseCode::Away, "server shutting down"),
            }
        };
        Box::pin(connection.close()).await;
        if reason.is_some() || client_closed {
            Box::pin(socket.close(Vec::new(), reason, client_closed)).await;
        }
    }
}
