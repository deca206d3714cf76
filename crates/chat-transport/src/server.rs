//! chatd's HTTP server: actix-web's `HttpServer`, but for WebSocket upgrades, which it takes over
//! from actix-http once they are answered, so that an open realtime connection keeps only what its
//! WebSocket needs.
//!
//! An upgrade request (`Upgrade: websocket`) goes through the same app, middleware and routes as
//! any other, marked so that a realtime door answering it does not hand the socket to actix-ws but
//! leaves its session in the answer (see [`crate::realtime`]'s `socket` module). The server
//! writes the `101` and runs that session on the TCP stream itself. Any other answer to an upgrade
//! request (a refusal, a 404) is written as it is, and the connection closes after it.

use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::{ConnectionType, HttpService, Request, Response, h1};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config,
};
use actix_web::HttpMessage;
use actix_web::dev::AppConfig;
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use futures_util::SinkExt;

use crate::realtime::{TakeOver, TakenOver};

/// How the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Worker threads (`None`: one per CPU).
    pub workers: Option<NonZeroUsize>,
    /// How long a graceful stop waits for in-flight requests and open connections.
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { workers: None, shutdown_timeout: Duration::from_secs(30) }
    }
}

/// Serves the app `factory` builds (once per worker) on `listener`, as `HttpServer::new(factory)
/// .listen(listener)` would with signals disabled, WebSocket upgrades taken over (see the module's
/// documentation). Returns the running server.
pub fn serve<F, I, S, B>(listener: TcpListener, settings: &ServerSettings, factory: F) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let address = listener.local_addr()?;
    let mut builder = Server::build().disable_signals().shutdown_timeout(settings.shutdown_timeout.as_secs());
    if let Some(workers) = settings.workers {
        builder = builder.workers(workers.get());
    }
    let stopping = builder.graceful_shutdown_signal();
    let server = builder
        .listen(format!("chatd-{address}"), listener, move || {
            let upgrades = factory.clone();
            let stopping = stopping.clone();
            let requests = factory().into_factory().map_err(|error| error.into().error_response());
            HttpService::build()
                // actix-web's HttpServer defaults.
                .client_disconnect_timeout(Duration::from_secs(1))
                // Idle keep-alive connections close as soon as a graceful stop begins.
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .local_addr(address)
                .upgrade(fn_factory(move || {
                    let app = upgrades().into_factory().new_service(AppConfig::default());
                    async move {
                        let app = Rc::new(app.await.map_err(|error| tracing::error!(?error, "cannot build the app"))?);
                        Ok::<_, ()>(fn_service(move |(request, framed)| upgrade(app.clone(), request, framed)))
                    }
                }))
                .finish(map_config(requests, |()| AppConfig::default()))
                .tcp()
        })?
        .run();
    Ok(server)
}

/// Serves one upgrade request through the app: a WebSocket a door took runs here, on its
/// connection; any other answer is written, and the connection ends. Only the session's run is
/// inline (the rest is boxed while it runs): this future is part of the connection's task for as
/// long as the WebSocket lives. (Not an `async fn`, whose arguments the future would keep twice,
/// rust-lang/rust#62958.)
fn upgrade<S, B>(
    app: Rc<S>,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> impl Future<Output = Result<(), actix_web::Error>>
where
    S: Service<Request>,
    S::Error: Into<actix_web::Error>,
    S::Response: Into<Response<B>>,
    B: MessageBody + 'static,
{
    let answered = Box::pin(answer(app, request, framed));
    async move {
        if let Some((session, tcp, read)) = answered.await? {
            session.run(tcp, read).await;
        }
        Ok(())
    }
}

/// Answers an upgrade request through the app. When a door took the WebSocket, its session, with
/// the TCP stream and what the client sent after its request; otherwise nothing, the answer
/// written and the connection to end.
async fn answer<S, B>(
    app: Rc<S>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<Option<(TakenOver, TcpStream, Vec<u8>)>, actix_web::Error>
where
    S: Service<Request>,
    S::Error: Into<actix_web::Error>,
    S::Response: Into<Response<B>>,
    B: MessageBody + 'static,
{
    request.extensions_mut().insert(TakeOver);
    let response: Response<_> = match app.call(request).await {
        Ok(response) => response.into().map_into_boxed_body(),
        Err(error) => error.into().error_response().into(),
    };
    let (mut response, body) = response.into_parts();
    let taken = response.extensions_mut().remove::<TakenOver>();
    match taken {
        Some(session) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed.send(h1::Message::Item((response, BodySize::None))).await?;
            // actix-http's buffers (8 KiB each way) and codec go here; what the client sent after
            // its request stays for the WebSocket.
            let parts = framed.into_parts();
            Ok(Some((session, parts.io, parts.read_buf.to_vec())))
        }
        _ => {
            let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
            response.head_mut().set_connection_type(ConnectionType::Close);
            // One write: head and body.
            framed.feed(h1::Message::Item((response, BodySize::Sized(body.len() as u64)))).await?;
            framed.feed(h1::Message::Chunk(Some(body))).await?;
            framed.feed(h1::Message::Chunk(None)).await?;
            framed.flush().await?;
            Ok(None)
        }
    }
}
