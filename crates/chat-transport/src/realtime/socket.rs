//! A realtime door's WebSocket, whichever way it was accepted: through actix-ws, while actix-http
//! keeps the TCP connection (any actix-web app), or taken over from actix-http once the upgrade is
//! answered (chatd's own server, [`crate::serve`]), where an open connection holds nothing but
//! tungstenite's state and a small read buffer instead of actix-http's two 8 KiB buffers, its
//! payload channel and actix-ws' queue.
//!
//! The doors see one type either way: [`accept`] answers the upgrade and hands the door's session
//! a [`WebSocket`], which reads [`Incoming`] messages, sends text and pings, and closes the way
//! [`closing`] describes.

use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError, Session};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::closing::{self, TcpHandle};

/// What a taken-over WebSocket reads into at most at once: a client's frames are small (a
/// `typing`, a `subscribe`); a larger one takes several reads. Each open connection keeps this
/// much (tungstenite's default, 128 KiB, would be most of its memory).
const READ_BUFFER_BYTES: usize = 2048;

/// A message from the client, as the doors act on it.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A text message (continuations already joined).
    Text(String),
    /// A binary message, which neither door accepts.
    Binary,
    /// A ping (already answered) or a pong: the client is alive.
    Heard,
    /// The client's close frame.
    Close,
}

/// Why reading a WebSocket failed.
#[derive(Debug)]
pub(crate) enum Broken {
    /// A frame or message larger than `realtime.max_message_bytes`.
    TooLarge,
    /// A violation of RFC 6455, described.
    Protocol(String),
}

/// The client is gone: a send failed.
#[derive(Debug)]
pub(crate) struct Gone;

/// One WebSocket of a realtime door.
pub(crate) struct WebSocket(Inner);

enum Inner {
    /// Through actix-ws; actix-http reads and writes the socket.
    Actix {
        session: Session,
        messages: Messages,
        tcp: Option<TcpHandle>,
        /// The client's close frame, for the answer to echo.
        echo: Option<CloseReason>,
    },
    /// Taken over from actix-http: the TCP stream is this WebSocket's own.
    Owned(WebSocketStream<TcpStream>),
}

/// An actix-ws WebSocket's messages: read where it was accepted, or forwarded by a pump (see
/// [`Movable`]) to a task that may run on another worker.
enum Messages {
    Direct(AggregatedMessageStream),
    Pumped(mpsc::Receiver<Result<AggregatedMessage, ProtocolError>>),
}

impl Messages {
    async fn recv(&mut self) -> Option<Result<AggregatedMessage, ProtocolError>> {
        match self {
            Self::Direct(stream) => stream.recv().await,
            Self::Pumped(received) => received.recv().await,
        }
    }
}

impl WebSocket {
    /// Reads the next message; `None` once the connection has ended.
    pub(crate) async fn recv(&mut self) -> Option<Result<Incoming, Broken>> {
        match &mut self.0 {
            Inner::Actix { session, messages, echo, .. } => Some(match messages.recv().await? {
                Ok(AggregatedMessage::Text(text)) => Ok(Incoming::Text(String::from(&*text))),
                Ok(AggregatedMessage::Binary(_)) => Ok(Incoming::Binary),
                Ok(AggregatedMessage::Ping(bytes)) => {
                    session.pong(&bytes).await.ok()?;
                    Ok(Incoming::Heard)
                }
                Ok(AggregatedMessage::Pong(_)) => Ok(Incoming::Heard),
                Ok(AggregatedMessage::Close(reason)) => {
                    *echo = reason;
                    Ok(Incoming::Close)
                }
                Err(ProtocolError::Overflow) => Err(Broken::TooLarge),
                Err(error) => Err(Broken::Protocol(error.to_string())),
            }),
            // tungstenite answers pings itself.
            Inner::Owned(stream) => Some(match stream.next().await? {
                Ok(Message::Text(text)) => Ok(Incoming::Text(text.as_str().to_owned())),
                Ok(Message::Binary(_)) => Ok(Incoming::Binary),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(Incoming::Heard),
                Ok(Message::Close(_)) => Ok(Incoming::Close),
                Err(tungstenite::Error::Capacity(_)) => Err(Broken::TooLarge),
                Err(tungstenite::Error::Protocol(error)) => Err(Broken::Protocol(error.to_string())),
                Err(tungstenite::Error::Utf8(_)) => Err(Broken::Protocol("invalid UTF-8 in a text message".into())),
                Err(_) => return None,
            }),
        }
    }

    /// Sends a text message.
    pub(crate) async fn text(&mut self, text: String) -> Result<(), Gone> {
        match &mut self.0 {
            Inner::Actix { session, .. } => session.text(text).await.map_err(|_| Gone),
            Inner::Owned(stream) => stream.send(Message::text(text)).await.map_err(|_| Gone),
        }
    }

    /// Sends an empty ping.
    pub(crate) async fn ping(&mut self) -> Result<(), Gone> {
        match &mut self.0 {
            Inner::Actix { session, .. } => session.ping(b"").await.map_err(|_| Gone),
            Inner::Owned(stream) => stream.send(Message::Ping(Default::default())).await.map_err(|_| Gone),
        }
    }

    /// Ends the WebSocket: sends `last` and the close frame with `reason`, waits for the client's
    /// close frame, all within [`closing::CLOSE_TIMEOUT`], then closes the TCP connection — cut,
    /// if the handshake did not complete. When `client_closed` (its close frame came, or its
    /// messages ended), the close frame answers the client's, echoing its code as RFC 6455 has it,
    /// and there is nothing to wait for.
    pub(crate) async fn close(self, last: Vec<String>, reason: Option<CloseReason>, client_closed: bool) {
        match self.0 {
            Inner::Actix { session, mut messages, tcp, echo } => {
                let reason = if client_closed { echo } else { reason };
                let answered = async {
                    if !client_closed {
                        closing::answer(async || messages.recv().await).await;
                    }
                };
                closing::close(session, last, reason, answered, tcp.as_ref()).await;
            }
            Inner::Owned(mut stream) => {
                let handshake = async {
                    for text in last {
                        if stream.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    let frame = reason.map(|reason| CloseFrame {
                        code: u16::from(reason.code).into(),
                        reason: reason.description.unwrap_or_default().into(),
                    });
                    if client_closed {
                        // tungstenite answered the client's close frame: this sends the answer.
                        SinkExt::close(&mut stream).await.ok();
                        return;
                    }
                    if stream.close(frame).await.is_ok() {
                        while let Some(Ok(message)) = stream.next().await {
                            if let Message::Close(_) = message {
                                break;
                            }
                        }
                    }
                };
                tokio::time::timeout(closing::CLOSE_TIMEOUT, handshake).await.ok();
                // Dropped, the stream closes the TCP connection.
            }
        }
    }

    /// This WebSocket in a form that may be handed to a task on another worker (an Engine.IO
    /// upgrade finds its session wherever it runs): actix-ws' messages cannot leave the worker
    /// that accepted them, so a pump there forwards them.
    pub(crate) fn movable(self) -> Movable {
        Movable(match self.0 {
            Inner::Actix { session, messages, tcp, .. } => {
                let received = match messages {
                    Messages::Direct(stream) => pump(stream),
                    Messages::Pumped(received) => received,
                };
                MovableInner::Actix { session, received, tcp }
            }
            Inner::Owned(stream) => MovableInner::Owned(Box::new(stream)),
        })
    }
}

/// A [`WebSocket`] on its way to another task (see [`WebSocket::movable`]).
pub(crate) struct Movable(MovableInner);

enum MovableInner {
    Actix {
        session: Session,
        received: mpsc::Receiver<Result<AggregatedMessage, ProtocolError>>,
        tcp: Option<TcpHandle>,
    },
    /// Boxed: it is only on its way.
    Owned(Box<WebSocketStream<TcpStream>>),
}

impl From<Movable> for WebSocket {
    fn from(Movable(inner): Movable) -> Self {
        Self(match inner {
            MovableInner::Actix { session, received, tcp } => {
                Inner::Actix { session, messages: Messages::Pumped(received), tcp, echo: None }
            }
            MovableInner::Owned(stream) => Inner::Owned(*stream),
        })
    }
}

impl std::fmt::Debug for Movable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Movable")
    }
}

/// Reads an actix-ws WebSocket in the worker that accepted it (its stream cannot leave that
/// thread) and forwards each message — or the protocol error that ends it — to whichever task
/// runs the session.
fn pump(mut stream: AggregatedMessageStream) -> mpsc::Receiver<Result<AggregatedMessage, ProtocolError>> {
    let (forward, messages) = mpsc::channel(16);
    actix_web::rt::spawn(async move {
        while let Some(message) = stream.recv().await {
            let failed = message.is_err();
            if forward.send(message).await.is_err() || failed {
                break;
            }
        }
    });
    messages
}

/// A connection's session, running.
type Running = Pin<Box<dyn Future<Output = ()>>>;

/// Marks a request that came through chatd's server ([`crate::serve`]): a WebSocket accepted on
/// it is taken over from actix-http.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TakeOver;

/// In the extensions of the answer to an upgrade that [`accept`] took: what the server runs on
/// the connection once the answer is out.
pub(crate) struct TakenOver(Box<dyn FnOnce(TcpStream, Vec<u8>) -> Running>);

impl TakenOver {
    /// The session on the connection: its TCP stream, and what the client sent after its upgrade
    /// request (in the buffer actix-http had read it into). One allocation, the session's.
    pub(crate) fn run(self, tcp: TcpStream, read: Vec<u8>) -> Running {
        (self.0)(tcp, read)
    }
}

/// Answers a WebSocket upgrade (400 with actix-ws' reason when it is not a valid one) and runs
/// `serve` on the accepted WebSocket: in chatd's server, on the connection itself once the answer
/// is out; in any other actix-web app, in a task of its own beside actix-ws' session. Frames and
/// messages larger than `max_message_bytes` break the connection.
pub(crate) fn accept<F>(
    request: &HttpRequest,
    body: web::Payload,
    max_message_bytes: usize,
    serve: impl FnOnce(WebSocket) -> F + 'static,
) -> Result<HttpResponse, actix_web::Error>
where
    F: Future<Output = ()> + 'static,
{
    if request.extensions().contains::<TakeOver>() {
        let mut response =
            HttpResponse::from(actix_http::ws::handshake(request.head())?.finish().map_into_boxed_body());
        debug_assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            // Each message is written at once: nothing waits in a write buffer.
            .write_buffer_size(0)
            .max_frame_size(Some(max_message_bytes))
            .max_message_size(Some(max_message_bytes));
        response.extensions_mut().insert(TakenOver(Box::new(move |tcp, read| {
            Box::pin(async move {
                let stream = WebSocketStream::from_partially_read(tcp, read, Role::Server, Some(config)).await;
                serve(WebSocket(Inner::Owned(stream))).await;
            })
        })));
        return Ok(response);
    }
    let (response, session, stream) = actix_ws::handle(request, body)?;
    let messages = Messages::Direct(
        stream.max_frame_size(max_message_bytes).aggregate_continuations().max_continuation_size(max_message_bytes),
    );
    let socket = WebSocket(Inner::Actix { session, messages, tcp: TcpHandle::of(request), echo: None });
    actix_web::rt::spawn(serve(socket));
    Ok(response)
}
