//! Door 1: `/ws`, plain JSON frames `{"event", "data"}` both ways over one WebSocket.
//!
//! A connection authenticates with `?token=`, the token header or `Authorization: Bearer` on the
//! upgrade, or a first `authenticate` frame within the deadline; then it hears its user's events
//! (and its topics'), and may send `subscribe`, `unsubscribe` and `typing`.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use chat_domain::{Caller, DomainHandle};
use chat_service::{ResumeFrom, ServiceError};
use serde_json::Value;

use super::closing::{self, TcpHandle};
use super::commands::{self, Answer};
use super::frames::Frame;
use super::payload;
use super::refusal::Refusal;
use crate::ApiState;
use crate::auth;
use crate::tenant::Tenant;

/// `GET /ws`: upgrades to a WebSocket and runs the connection in its own task.
pub(crate) async fn door(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
    Tenant(tenant): Tenant,
) -> Result<HttpResponse, actix_web::Error> {
    super::check_origin(&request, state.realtime())?;
    let token = auth::connect_token(&request, &state);
    let since = auth::query_value(&request, "since");
    let (response, session, stream) = actix_ws::handle(&request, body)?;
    let limit = state.realtime().max_message_bytes;
    let stream = stream.max_frame_size(limit).aggregate_continuations().max_continuation_size(limit);
    let tcp = TcpHandle::of(&request);
    actix_web::rt::spawn(run(state.into_inner(), tenant, (token, since), session, tcp, stream));
    Ok(response)
}

async fn send(session: &mut Session, event: &str, data: &Value) -> bool {
    session.text(Frame::encode(event, data)).await.is_ok()
}

fn close_reason(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code, description: Some(description.to_owned()) })
}

/// The WebSocket's session and TCP socket, for ending the connection.
struct Closable {
    session: Session,
    tcp: Option<TcpHandle>,
}

impl Closable {
    /// Sends the frames `last`, then closes the connection with `reason` (see [`closing::close`]);
    /// `client_closed` when the client's close frame came (or its messages ended), so that there
    /// is no answer to wait for.
    async fn close(
        self,
        last: Vec<String>,
        reason: Option<CloseReason>,
        stream: &mut AggregatedMessageStream,
        client_closed: bool,
    ) {
        let answered = async {
            if !client_closed {
                closing::answer(async || stream.recv().await).await;
            }
        };
        closing::close(self.session, last, reason, answered, self.tcp.as_ref()).await;
    }
}

/// Refuses the connection the way the original did: `unauthorized`, then a close frame.
async fn refuse(closable: Closable, stream: &mut AggregatedMessageStream, message: &str) {
    let last = vec![Frame::encode("unauthorized", &payload::unauthorized(message))];
    closable.close(last, close_reason(CloseCode::Policy, "unauthorized"), stream, false).await;
}

/// Finds out who is connecting, and where they resume from: the token and `since` of the URL (or
/// the token headers), or those of a first `authenticate` frame. An `Err` is why the connection is
/// refused.
async fn authenticate(
    state: &ApiState,
    (token, since): (Option<String>, Option<String>),
    session: &mut Session,
    stream: &mut AggregatedMessageStream,
) -> Result<(Caller, ResumeFrom), String> {
    if let Some(token) = token {
        let caller = auth::verify(state, &token).map_err(|e| e.to_string())?;
        return Ok((caller, ResumeFrom::parse(since.as_deref())));
    }
    let deadline = tokio::time::sleep(state.realtime().auth_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Err("authentication timed out".to_owned()),
            message = stream.recv() => match message {
                Some(Ok(AggregatedMessage::Text(text))) => match Frame::decode(&text) {
                    Ok(frame) if frame.event == "authenticate" => {
                        // socketio-jwt's words, which the original's clients saw.
                        let token = frame.data["token"].as_str().ok_or("invalid token datatype")?;
                        let caller = auth::verify(state, token).map_err(|e| e.to_string())?;
                        return Ok((caller, commands::since_in(&frame.data)));
                    }
                    Ok(_) => {
                        send(session, "error", &payload::error(&Refusal::authenticate_first())).await;
                    }
                    Err(error) => {
                        send(session, "error", &payload::error(&error.into())).await;
                    }
                },
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    session.pong(&bytes).await.ok();
                }
                Some(Ok(AggregatedMessage::Pong(_) | AggregatedMessage::Binary(_))) => {}
                Some(Ok(AggregatedMessage::Close(_)) | Err(_)) | None => return Err("connection closed".to_owned()),
            },
        }
    }
}

async fn run(
    state: Arc<ApiState>,
    tenant: DomainHandle,
    credentials: (Option<String>, Option<String>),
    mut session: Session,
    tcp: Option<TcpHandle>,
    mut stream: AggregatedMessageStream,
) {
    // The steps that run once (authenticating, connecting, closing) are boxed while they run:
    // inline, the largest of them would size every idle connection's task; the loop stays inline.
    let (caller, since) = match Box::pin(authenticate(&state, credentials, &mut session, &mut stream)).await {
        Ok(authenticated) => authenticated,
        Err(message) => return Box::pin(refuse(Closable { session, tcp }, &mut stream, &message)).await,
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
            return Box::pin(Closable { session, tcp }.close(last, reason, &mut stream, false)).await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot register a realtime connection");
            let reason = close_reason(CloseCode::Again, "realtime is unavailable, try again");
            return Box::pin(Closable { session, tcp }.close(Vec::new(), reason, &mut stream, false)).await;
        }
    };
    if !send(&mut session, "authenticated", &payload::authenticated(user, &resumed)).await {
        return Box::pin(connection.close()).await;
    }
    let settings = state.realtime();
    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let overflow = connection.overflow();
    let mut client_closed = false;
    let reason = loop {
        if *stopping.borrow() {
            break close_reason(CloseCode::Away, "server shutting down");
        }
        tokio::select! {
            message = stream.recv() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let reply = match Frame::decode(&text) {
                            Ok(frame) => match commands::handle(&mut connection, &frame.event, &frame.data).await {
                                Ok(Answer::Done { event, data }) => Some((event, data)),
                                Ok(Answer::Quiet) => None,
                                Err(refusal) => Some(("error", payload::error(&refusal))),
                            },
                            Err(error) => Some(("error", payload::error(&error.into()))),
                        };
                        if let Some((event, data)) = reply
                            && !send(&mut session, event, &data).await
                        {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        if !send(&mut session, "error", &payload::error(&Refusal::binary_unsupported())).await {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => {
                        client_closed = true;
                        break close_reason(CloseCode::Normal, "bye");
                    }
                    Some(Err(ProtocolError::Overflow)) => break close_reason(CloseCode::Size, "message too large"),
                    Some(Err(error)) => break close_reason(CloseCode::Protocol, &error.to_string()),
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
                    sent = session.text(frame) => if sent.is_err() { break None },
                    () = overflow.happened() => break close_reason(CloseCode::Policy, "too slow: send queue full"),
                    _ = stopping.changed() => break close_reason(CloseCode::Away, "server shutting down"),
                }
            }
            () = overflow.happened() => break close_reason(CloseCode::Policy, "too slow: send queue full"),
            _ = ping.tick() => {
                if last_heard.elapsed() > settings.ping_interval + settings.ping_timeout {
                    break close_reason(CloseCode::Away, "no heartbeat");
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
            _ = stopping.changed() => break close_reason(CloseCode::Away, "server shutting down"),
        }
    };
    Box::pin(connection.close()).await;
    if let Some(reason) = reason {
        Box::pin(Closable { session, tcp }.close(Vec::new(), Some(reason), &mut stream, client_closed)).await;
    }
}
