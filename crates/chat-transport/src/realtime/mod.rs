//! The realtime doors onto the hub: `/ws` (plain JSON frames) and `/socket.io/` (Engine.IO v4 /
//! Socket.IO v5, and Engine.IO v3 / Socket.IO v4 for socket.io-client 1.x and 2.x), with their
//! protocol codecs as pure functions over text.

mod budget;
mod closing;
mod codec_error;
mod commands;
mod engineio;
mod engineio_v3;
mod frames;
mod heartbeat;
pub(crate) mod payload;
mod refusal;
mod sessions;
mod socket;
mod socketio;
mod socketio_door;
mod ws;

pub use budget::Rate;
pub use closing::{CLOSE_TIMEOUT, remember_sockets};
pub(crate) use sessions::Sessions;
pub(crate) use socket::{TakeOver, TakenOver};

/// Entry points for the fuzz targets: each decodes arbitrary text and checks that what it accepts
/// survives a round trip.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use std::borrow::Cow;

    use super::engineio::{self, EnginePacket, EngineQuery};
    use super::engineio_v3;
    use super::frames::Frame;
    use super::socketio::SocketPacket;

    /// Engine.IO packets, polling payloads of both versions and request queries.
    pub fn engineio(text: &str) {
        if let Ok(packet) = EnginePacket::decode(text) {
            // Re-encoding may normalise (`2` for an empty ping), but must decode to the same.
            assert_eq!(EnginePacket::decode(&packet.encode()).ok().map(|p| p.encode()), Some(packet.encode()));
        }
        if let Ok(packets) = engineio::decode_payload(text) {
            let again = engineio::decode_payload(&engineio::encode_payload(&packets));
            assert_eq!(again.map(|p| p.len()).ok(), Some(packets.len()));
        }
        engineio_v3_payload(text);
        let _ = EngineQuery::parse(text);
    }

    /// Engine.IO v3 polling payloads: the `<length>:` framing (whose records must come back
    /// exactly, UTF-16 lengths and all), and the undoing of engine.io-parser 1.x's UTF-8 encoding.
    fn engineio_v3_payload(text: &str) {
        let decoded: Option<Vec<EnginePacket>> = engineio_v3::split_payload(text)
            .ok()
            .and_then(|records| records.into_iter().map(|record| EnginePacket::decode(record).ok()).collect());
        if let Some(packets) = decoded {
            // Re-encoded, every record comes back as the same packet, its length counted alike.
            let body = engineio_v3::encode_payload(&packets);
            let again: Option<Vec<EnginePacket>> = engineio_v3::split_payload(&body)
                .ok()
                .and_then(|records| records.into_iter().map(|record| EnginePacket::decode(record).ok()).collect());
            assert_eq!(again.as_ref(), Some(&packets));
        }
        let _ = engineio_v3::decode_payload(text);
        if let Cow::Owned(decoded) = engineio_v3::undo_byte_string(text) {
            // What was undone was a UTF-8 encoding: encoding again gives the input back.
            let encoded: String = decoded.bytes().map(char::from).collect();
            assert_eq!(encoded, text);
        }
    }

    /// Socket.IO packets, in both encodings (the ASCII one is what Engine.IO v3 sessions send).
    pub fn socketio(text: &str) {
        if let Ok(packet) = SocketPacket::decode(text) {
            // Escaping changes no meaning: the ASCII text reads back as the plain one does.
            assert_eq!(SocketPacket::decode(&packet.encode_ascii()), SocketPacket::decode(&packet.encode()));
            assert_eq!(SocketPacket::decode(&packet.encode()), Ok(packet));
        }
    }

    /// `/ws` frames.
    pub fn ws_frame(text: &str) {
        if let Ok(frame) = Frame::decode(text) {
            assert_eq!(Frame::decode(&Frame::encode(&frame.event, &frame.data)), Ok(frame));
        }
    }
}

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use actix_web::web;
use chat_service::NonZeroDuration;

/// Timings and limits of realtime connections, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeSettings {
    /// How long a connection may take to authenticate.
    pub auth_timeout: Duration,
    /// How often the server pings each connection (a timer's period: never zero).
    pub ping_interval: NonZeroDuration,
    /// How long a connection may stay silent (no pong, no message) before it is closed.
    pub ping_timeout: Duration,
    /// Largest frame or packet a client may send.
    pub max_message_bytes: NonZeroUsize,
    /// Browser origins allowed to connect (the `Origin` header); empty allows any. Requests without
    /// an `Origin` (not from a browser) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Client events (`typing`, `subscribe`, …) one connection may send; one past it is answered
    /// with `rate_limited` and not acted on.
    pub client_events: Rate,
    /// Frames (WebSocket messages, Socket.IO packets) one connection may send; past it the
    /// connection is closed with 1008 `too many frames`.
    pub frames: Rate,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            auth_timeout: Duration::from_secs(15),
            ping_interval: NonZeroDuration::from_secs(const { NonZeroU64::new(25).expect("not zero") }),
            ping_timeout: Duration::from_secs(20),
            max_message_bytes: const { NonZeroUsize::new(64 * 1024).expect("not zero") },
            allowed_origins: Vec::new(),
            client_events: Rate { per_second: 20, burst: 40 },
            frames: Rate { per_second: 100, burst: 200 },
        }
    }
}

/// Refuses a browser connection from an origin not on the allow-list (403 with the error body).
pub(crate) fn check_origin(
    request: &actix_web::HttpRequest,
    settings: &RealtimeSettings,
) -> Result<(), crate::ApiError> {
    if settings.allowed_origins.is_empty() {
        return Ok(());
    }
    match request.headers().get(actix_web::http::header::ORIGIN).map(|origin| origin.to_str()) {
        None => Ok(()),
        Some(Ok(origin)) if settings.allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) => {
            Ok(())
        }
        Some(_) => Err(crate::ApiError::origin_forbidden()),
    }
}

/// Counts an open realtime connection in `chatd_realtime_connections{door}` for as long as it lives.
#[derive(Debug)]
pub(crate) struct Counted(&'static str);

impl Counted {
    pub(crate) fn open(door: &'static str) -> Self {
        metrics::gauge!("chatd_realtime_connections", "door" => door).increment(1.0);
        Self(door)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("chatd_realtime_connections", "door" => self.0).decrement(1.0);
    }
}

/// The two doors' routes (`/socket.io/` is the slashed form of `/socket.io`).
pub(crate) fn routes() -> [crate::routes::Route; 2] {
    [
        ("/ws", "GET", |resource| resource.route(web::get().to(ws::door))),
        ("/socket.io", "GET, POST", |resource| {
            resource.route(web::get().to(socketio_door::door)).route(web::post().to(socketio_door::door))
        }),
    ]
}
