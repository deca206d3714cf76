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

use super::commands::{self, Answer};
use super::frames::Frame;
use super::payload;
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
    actix_web::rt::spawn(run(state.into_inner(), tenant, (token, since), session, stream));
    Ok(response)
}

async fn send(session: &mut Session, event: &str, data: &Value) -> bool {
    session.text(Frame::encode(event, data)).await.is_ok()
}

fn close_reason(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code, description: Some(description.to_owned()) })
}

/// Refuses the connection the way the original did: `unauthorized`, then a close frame.
async fn refuse(mut session: Session, message: &str) {
    send(&mut session, "unauthorized", &payload::unauthorized(message)).await;
    session.close(close_reason(CloseCode::Policy, "unauthorized")).await.ok();
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
                        send(session, "error", &payload::error("authenticate first")).await;
                    }
                    Err(error) => {
                        send(session, "error", &payload::error(&error.to_string())).await;
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
    mut stream: AggregatedMessageStream,
) {
    let (caller, since) = match authenticate(&state, credentials, &mut session, &mut stream).await {
        Ok(authenticated) => authenticated,
        Err(message) => return refuse(session, &message).await,
    };
    let user = caller.user();
    let _counted = super::Counted::open("ws");
    let hub = state.hub();
    let mut stopping = hub.stopping();
    let (mut connection, resumed) = match hub.connect(&tenant, caller, since).await {
        Ok(connected) => connected,
        Err(ServiceError::TooManyConnections(why)) => {
            send(&mut session, "error", &payload::error(why)).await;
            session.close(close_reason(CloseCode::Policy, "too many connections")).await.ok();
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot register a realtime connection");
            session.close(close_reason(CloseCode::Again, "realtime is unavailable, try again")).await.ok();
            return;
        }
    };
    if !send(&mut session, "authenticated", &payload::authenticated(user, &resumed)).await {
        return connection.close().await;
    }
    let settings = state.realtime();
    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let overflow = connection.overflow();
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
                                Err(message) => Some(("error", payload::error(&message))),
                            },
                            Err(error) => Some(("error", payload::error(&error.to_string()))),
                        };
                        if let Some((event, data)) = reply
                            && !send(&mut session, event, &data).await
                        {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        if !send(&mut session, "error", &payload::error("binary frames are not supported")).await {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => break close_reason(CloseCode::Normal, "bye"),
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
    connection.close().await;
    if let Some(reason) = reason {
        session.close(Some(reason)).await.ok();
    }
}
