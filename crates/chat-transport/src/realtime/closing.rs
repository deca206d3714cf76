//! How a realtime WebSocket ends, on both doors: the close handshake within [`CLOSE_TIMEOUT`], then
//! the TCP connection, closed by the server as RFC 6455 has it.
//!
//! On chatd's own server ([`crate::serve`]) the WebSocket owns its TCP stream once the upgrade is
//! answered, and ending it is dropping it (see `socket.rs`). What follows is the other path, the
//! doors mounted in an app's own `HttpServer`, where actix-ws runs them and
//! actix-http owns the socket and would end it on its own terms. After a WebSocket's last frame it
//! waits for the client to close the connection (the "linger" after a response whose request body
//! is unread, up to `client_disconnect_timeout`, a second by default), while clients, as the RFC
//! asks, wait for the server to close first: every close took a second. And a connection whose
//! client stopped reading stays blocked in a write, where no timer of actix-http applies, until the
//! worker's shutdown timeout (30 s) lets go of it. So each connection's socket is remembered when
//! it is accepted ([`remember_sockets`], a duplicate of its descriptor), and the doors end it
//! themselves: once the handshake is done, `shutdown(Read)`, which actix-http takes for the
//! client's end of the connection (it writes what it still has, the close frame, and closes);
//! when the handshake does not complete in time, `shutdown(Both)`, which fails the blocked write.
//! Without a remembered socket (an app that did not install the hook), actix-http's own timeouts
//! apply as before.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError, Session};

/// How long a WebSocket's close handshake may take: our close frame out (after whatever is still
/// queued for the client) and, when the server closes first, the client's answer. A client that
/// does not read or answer in that time has its connection cut.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The TCP socket under a connection: a duplicate of the descriptor actix-http reads and writes,
/// for ending the connection from a realtime door.
#[derive(Debug, Clone)]
pub(crate) struct TcpHandle(Arc<std::net::TcpStream>);

impl TcpHandle {
    /// The socket of the connection `request` came on, if [`remember_sockets`] kept it.
    pub(crate) fn of(request: &HttpRequest) -> Option<Self> {
        request.conn_data::<Self>().cloned()
    }

    /// The client has nothing more to say: actix-http sends what it still has, then closes.
    fn finished(&self) {
        // Fails only when the connection is gone already.
        self.0.shutdown(std::net::Shutdown::Read).ok();
    }

    /// Ends the connection now, writes pending or not.
    fn abort(&self) {
        self.0.shutdown(std::net::Shutdown::Both).ok();
    }
}

/// For [`actix_web::HttpServer::on_connect`]: keeps each accepted TCP connection's socket in the
/// connection's data, so that the realtime doors can end their WebSockets promptly (see the
/// module's documentation). Costs one more file descriptor per open connection.
pub fn remember_sockets(connection: &dyn Any, data: &mut Extensions) {
    #[cfg(unix)]
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        match tcp.as_fd().try_clone_to_owned() {
            Ok(socket) => {
                data.insert(TcpHandle(Arc::new(std::net::TcpStream::from(socket))));
            }
            Err(error) => tracing::warn!(%error, "cannot keep a handle on a connection's socket"),
        }
    }
    #[cfg(not(unix))]
    let _ = (connection, data);
}

/// Waits for the client's close frame (or the end of its messages): what `next` gives is read
/// and dropped until then.
pub(crate) async fn answer(mut next: impl AsyncFnMut() -> Option<Result<AggregatedMessage, ProtocolError>>) {
    while let Some(Ok(message)) = next().await {
        if let AggregatedMessage::Close(_) = message {
            return;
        }
    }
}

/// Ends a WebSocket: sends `last` and the close frame with `reason`, waits for `answered` (the
/// client's close frame when the server closes first; nothing when the client did), all within
/// [`CLOSE_TIMEOUT`], then closes the TCP connection — cut, if the handshake did not complete.
pub(crate) async fn close(
    mut session: Session,
    last: Vec<String>,
    reason: Option<CloseReason>,
    answered: impl Future<Output = ()>,
    tcp: Option<&TcpHandle>,
) {
    let handshake = async {
        for text in last {
            if session.text(text).await.is_err() {
                return;
            }
        }
        // An error means the session is closed already: nothing more will come.
        if session.close(reason).await.is_ok() {
            answered.await;
        }
    };
    let completed = tokio::time::timeout(CLOSE_TIMEOUT, handshake).await.is_ok();
    match tcp {
        Some(tcp) if completed => tcp.finished(),
        Some(tcp) => tcp.abort(),
        None => {}
    }
}
