//! Engine.IO, protocol v4 (under socket.io-client 3.x and 4.x) and v3 (under socket.io-client 1.x
//! and 2.x): packets, HTTP long-polling payloads, the handshake, the request query and the error
//! bodies. Pure text in, text out. The packets are the same in both versions; v4 separates polling
//! payloads with `\x1e`, v3 frames them as `<length>:<packet>` (`engineio_v3.rs`).
//!
//! Only text packets exist here: chatd's events are JSON, so binary packets (base64 `b…` records
//! over polling, binary frames over WebSocket) are refused instead of carried.

use serde_json::json;

use super::codec_error::CodecError;

/// Separates packets in an HTTP long-polling payload. It can never appear inside a packet that
/// carries JSON, because JSON escapes every control character (`\u001e`).
const RECORD_SEPARATOR: char = '\x1e';

/// Longest session id accepted in a query; ids chatd hands out are far shorter, and a cap keeps
/// a hostile query from making the session lookup hash megabytes.
const MAX_SID_LEN: usize = 128;

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnginePacket {
    /// `0`: the server's handshake, with [`Handshake::to_json`] as its data.
    Open(String),
    /// `1`: either side closes the session.
    Close,
    /// `2`: heartbeat; `2probe` when a client probes a WebSocket before upgrading to it.
    Ping(Option<String>),
    /// `3`: heartbeat answer; `3probe` answers the probe.
    Pong(Option<String>),
    /// `4`: the application data, here one Socket.IO packet's text.
    Message(String),
    /// `5`: the client switches to the WebSocket it probed.
    Upgrade,
    /// `6`: nothing; the server answers a pending poll with it during an upgrade.
    Noop,
}

impl EnginePacket {
    /// Decodes one text packet: a type digit, then the data.
    ///
    /// Close, upgrade and noop must carry no data: no client sends any, so extra bytes mean
    /// a confused or hostile peer. An empty ping / pong data decodes as `None`.
    pub(crate) fn decode(text: &str) -> Result<Self, CodecError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(CodecError::Empty)?;
        let data = chars.as_str();
        // Ping and pong data is optional; `2` and `2` + "" are the same packet on the wire.
        let optional = || (!data.is_empty()).then(|| data.to_owned());
        let no_data = |packet: Self| {
            if data.is_empty() { Ok(packet) } else { Err(CodecError::UnexpectedData) }
        };
        match kind {
            '0' => Ok(Self::Open(data.to_owned())),
            '1' => no_data(Self::Close),
            '2' => Ok(Self::Ping(optional())),
            '3' => Ok(Self::Pong(optional())),
            '4' => Ok(Self::Message(data.to_owned())),
            '5' => no_data(Self::Upgrade),
            '6' => no_data(Self::Noop),
            'b' => Err(CodecError::BinaryUnsupported),
            _ => Err(CodecError::UnknownPacketType),
        }
    }

    /// Encodes the packet as its text form.
    ///
    /// The data is written as is: a [`EnginePacket::Message`] must hold text made by a JSON
    /// encoder (the Socket.IO codec), which is what keeps a raw `\x1e` out of polling payloads.
    pub(crate) fn encode(&self) -> String {
        let (kind, data) = self.parts();
        let mut text = String::with_capacity(1 + data.len());
        text.push(kind);
        text.push_str(data);
        text
    }

    /// The type digit and the data, which together are the packet's text.
    pub(crate) fn parts(&self) -> (char, &str) {
        match self {
            Self::Open(data) => ('0', data.as_str()),
            Self::Close => ('1', ""),
            Self::Ping(data) => ('2', data.as_deref().unwrap_or_default()),
            Self::Pong(data) => ('3', data.as_deref().unwrap_or_default()),
            Self::Message(data) => ('4', data.as_str()),
            Self::Upgrade => ('5', ""),
            Self::Noop => ('6', ""),
        }
    }
}

/// The Engine.IO protocol a session speaks, from the `EIO` query parameter of its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineVersion {
    /// `EIO=3`, socket.io-client 1.x and 2.x (Socket.IO protocol 4): polling payloads framed as
    /// `<length>:<packet>`, the client pings, the server connects the main namespace by itself.
    V3,
    /// `EIO=4`, socket.io-client 3.x and 4.x (Socket.IO protocol 5): polling payloads separated
    /// by `\x1e`, the server pings, the client connects each namespace.
    V4,
}

impl EngineVersion {
    /// Decodes an HTTP long-polling body of this version; a body with any bad packet is refused
    /// whole.
    pub(crate) fn decode_payload(self, body: &str) -> Result<Vec<EnginePacket>, CodecError> {
        match self {
            Self::V3 => super::engineio_v3::decode_payload(body),
            Self::V4 => decode_payload(body),
        }
    }

    /// Encodes packets as one HTTP long-polling body of this version.
    pub(crate) fn encode_payload<'a>(self, packets: impl IntoIterator<Item = &'a EnginePacket>) -> String {
        match self {
            Self::V3 => super::engineio_v3::encode_payload(packets),
            Self::V4 => encode_payload(packets),
        }
    }
}

/// Decodes an Engine.IO v4 HTTP long-polling body: packets separated by `\x1e`.
///
/// Fails on an empty body and on any empty or undecodable record, so that a half-understood
/// body is never half-applied.
pub(crate) fn decode_payload(body: &str) -> Result<Vec<EnginePacket>, CodecError> {
    if body.is_empty() {
        return Err(CodecError::Empty);
    }
    body.split(RECORD_SEPARATOR).map(EnginePacket::decode).collect()
}

/// Encodes packets as one Engine.IO v4 long-polling body. No packets give an empty string, which is not
/// a valid body: answer a poll with at least one packet (a noop when there is nothing to say).
pub(crate) fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a EnginePacket>) -> String {
    let mut body = String::new();
    for (index, packet) in packets.into_iter().enumerate() {
        if index > 0 {
            body.push(RECORD_SEPARATOR);
        }
        body.push_str(&packet.encode());
    }
    body
}

/// The open packet's data: the session id and the timings the client must keep to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// The new session's id, which the client repeats as `sid` in every later request.
    pub(crate) sid: String,
    /// Transports the client may upgrade to (`["websocket"]` on polling, `[]` on a WebSocket).
    pub(crate) upgrades: Vec<&'static str>,
    /// How often the server pings, in milliseconds.
    pub(crate) ping_interval_ms: u64,
    /// How long the server waits for the pong, in milliseconds.
    pub(crate) ping_timeout_ms: u64,
    /// Largest polling body the server accepts, in bytes; the client batches below it. Engine.IO
    /// v4 only: a v3 handshake has no such field (engine.io 3 sent none).
    pub(crate) max_payload: Option<usize>,
}

impl Handshake {
    /// `{"sid":"…","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
    /// keys in that order (`serde_json`'s `preserve_order` keeps them as written), without
    /// `maxPayload` when there is none.
    pub(crate) fn to_json(&self) -> String {
        let mut handshake = json!({
            "sid": self.sid,
            "upgrades": self.upgrades,
            "pingInterval": self.ping_interval_ms,
            "pingTimeout": self.ping_timeout_ms,
        });
        if let (Some(max_payload), Some(fields)) = (self.max_payload, handshake.as_object_mut()) {
            fields.insert("maxPayload".to_owned(), max_payload.into());
        }
        handshake.to_string()
    }
}

/// The transport an Engine.IO request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTP long-polling: GET receives, POST sends.
    Polling,
    /// One WebSocket per session.
    Websocket,
}

/// The query of an Engine.IO request: `EIO=3|4`, `transport=polling|websocket`, `sid=…` (absent on
/// the handshake), `t=…` (a cache buster) and `b64=1` (a v3 client without binary support; chatd
/// sends no binary) ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineQuery {
    /// The protocol the client speaks.
    pub(crate) version: EngineVersion,
    /// The requested transport.
    pub(crate) transport: Transport,
    /// The session the request belongs to; `None` asks for a new session.
    pub(crate) sid: Option<String>,
}

impl EngineQuery {
    /// Parses a raw query string (without the `?`).
    ///
    /// Values are compared as raw tokens: the ones that matter never need percent-encoding.
    /// Parameters other than `EIO`, `transport`, `sid` and `j` are ignored, because
    /// socket.io-client adds `t` (and `b64`) and lets applications add their own. A repeated
    /// `EIO`, `transport` or `sid` is refused rather than resolved by guessing, and so is `j`
    /// (JSONP polling, whose answers would have to be scripts).
    pub(crate) fn parse(query_string: &str) -> Result<Self, CodecError> {
        let mut eio = None;
        let mut transport = None;
        let mut sid = None;
        for pair in query_string.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut eio,
                "transport" => &mut transport,
                "sid" => &mut sid,
                "j" => return Err(CodecError::JsonpUnsupported),
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(CodecError::BadQuery);
            }
        }
        // The transport is checked first, as the reference server does, so that the error code
        // a client sees matches the one it would get from Node.
        let transport = match transport {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::Websocket,
            _ => return Err(CodecError::UnknownTransport),
        };
        let version = match eio {
            Some("4") => EngineVersion::V4,
            Some("3") => EngineVersion::V3,
            _ => return Err(CodecError::UnsupportedProtocolVersion),
        };
        let sid = sid.map(parse_sid).transpose()?;
        Ok(Self { version, transport, sid })
    }
}

/// Checks a session id: only the URL-safe characters ids are made of, so that it can be logged
/// and looked up without escaping.
fn parse_sid(sid: &str) -> Result<String, CodecError> {
    let well_formed = !sid.is_empty()
        && sid.len() <= MAX_SID_LEN
        && sid.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if well_formed { Ok(sid.to_owned()) } else { Err(CodecError::BadSessionId) }
}

/// The standard Engine.IO error codes and messages, indexed by code.
const ENGINE_ERRORS: [&str; 6] = [
    "Transport unknown",
    "Session ID unknown",
    "Bad handshake method",
    BAD_REQUEST_MESSAGE,
    "Forbidden",
    "Unsupported protocol version",
];

/// The standard code for "Bad request", used for any failure without a more specific code.
const BAD_REQUEST: u8 = 3;

/// The message that goes with [`BAD_REQUEST`].
const BAD_REQUEST_MESSAGE: &str = "Bad request";

/// The JSON body the Engine.IO server answers a bad request with: `{"code":N,"message":"…"}`.
///
/// Codes 0–5 are the standard ones; any other code is answered as 3 "Bad request", so that a
/// client only ever sees a code the protocol defines.
pub(crate) fn engine_error_body(code: u8) -> String {
    let (code, message) = match ENGINE_ERRORS.get(usize::from(code)) {
        Some(message) => (code, *message),
        None => (BAD_REQUEST, BAD_REQUEST_MESSAGE),
    };
    json!({ "code": code, "message": message }).to_string()
}

/// The Engine.IO error code for a failed [`EngineQuery::parse`]: 0 for the transport (JSONP
/// included, a transport chatd does not have), 1 for a session id (a malformed id is as unknown as
/// a stale one), 5 for the version, 3 otherwise.
pub(crate) const fn engine_error_code(error: &CodecError) -> u8 {
    match error {
        CodecError::UnknownTransport | CodecError::JsonpUnsupported => 0,
        CodecError::BadSessionId => 1,
        CodecError::UnsupportedProtocolVersion => 5,
        _ => BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str, packet: EnginePacket) {
        assert_eq!(EnginePacket::decode(text), Ok(packet.clone()), "decode {text:?}");
        assert_eq!(packet.encode(), text, "encode {packet:?}");
    }

    #[test]
    fn every_packet_type_round_trips_byte_exact() {
        round_trip(
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            EnginePacket::Open(
                r#"{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
                    .to_owned(),
            ),
        );
        round_trip("1", EnginePacket::Close);
        round_trip("2", EnginePacket::Ping(None));
        round_trip("2probe", EnginePacket::Ping(Some("probe".to_owned())));
        round_trip("3", EnginePacket::Pong(None));
        round_trip("3probe", EnginePacket::Pong(Some("probe".to_owned())));
        round_trip("4hello", EnginePacket::Message("hello".to_owned()));
        round_trip("5", EnginePacket::Upgrade);
        round_trip("6", EnginePacket::Noop);
    }

    #[test]
    fn socket_io_text_rides_in_a_message_untouched() {
        round_trip(r#"40{"sid":"abc"}"#, EnginePacket::Message(r#"0{"sid":"abc"}"#.to_owned()));
        round_trip(r#"42["new-message",{"id":1}]"#, EnginePacket::Message(r#"2["new-message",{"id":1}]"#.to_owned()));
        round_trip("4", EnginePacket::Message(String::new()));
    }

    #[test]
    fn empty_ping_data_is_no_data() {
        assert_eq!(EnginePacket::Ping(Some(String::new())).encode(), "2");
        assert_eq!(EnginePacket::Pong(Some(String::new())).encode(), "3");
    }

    #[test]
    fn unicode_and_emoji_are_preserved() {
        let text = "42[\"m\",\"héllo 👋 世界\"]";
        let packet = EnginePacket::decode(text).expect("a message");
        assert_eq!(packet, EnginePacket::Message("2[\"m\",\"héllo 👋 世界\"]".to_owned()));
        assert_eq!(packet.encode(), text);
    }

    #[test]
    fn bad_packets_are_refused() {
        assert_eq!(EnginePacket::decode(""), Err(CodecError::Empty));
        for text in ["7", "8", "9", "x", "{", " 4", "é4", "👋"] {
            assert_eq!(EnginePacket::decode(text), Err(CodecError::UnknownPacketType), "{text:?}");
        }
        assert_eq!(EnginePacket::decode("bAQIDBA=="), Err(CodecError::BinaryUnsupported));
        assert_eq!(EnginePacket::decode("b"), Err(CodecError::BinaryUnsupported));
        for text in ["1x", "5probe", "6 "] {
            assert_eq!(EnginePacket::decode(text), Err(CodecError::UnexpectedData), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_opaque_here() {
        // The Engine.IO layer never parses the JSON it carries, so depth cannot hurt it.
        let deep = format!("4{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            EnginePacket::decode(&deep),
            Ok(EnginePacket::Message(data)) if data.len() == 20_000
        ));
    }

    #[test]
    fn payloads_split_and_join_on_the_record_separator() {
        let body = "4hello\x1e2\x1e6\x1e42[\"m\",\"👋\"]";
        let packets = vec![
            EnginePacket::Message("hello".to_owned()),
            EnginePacket::Ping(None),
            EnginePacket::Noop,
            EnginePacket::Message("2[\"m\",\"👋\"]".to_owned()),
        ];
        assert_eq!(decode_payload(body), Ok(packets.clone()));
        assert_eq!(encode_payload(&packets), body);
        assert_eq!(decode_payload("6"), Ok(vec![EnginePacket::Noop]));
        assert_eq!(encode_payload([&EnginePacket::Noop]), "6");
        assert_eq!(encode_payload(&[]), "");
    }

    #[test]
    fn bad_payloads_are_refused_whole() {
        assert_eq!(decode_payload(""), Err(CodecError::Empty));
        for body in ["4a\x1e\x1e2", "4a\x1e", "\x1e4a", "\x1e"] {
            assert_eq!(decode_payload(body), Err(CodecError::Empty), "{body:?}");
        }
        assert_eq!(decode_payload("4a\x1ebAQID\x1e2"), Err(CodecError::BinaryUnsupported));
        assert_eq!(decode_payload("4a\x1e9"), Err(CodecError::UnknownPacketType));
    }

    #[test]
    fn each_version_frames_payloads_its_own_way() {
        let packets = [EnginePacket::Message("2[\"m\",\"👋\"]".to_owned()), EnginePacket::Noop];
        assert_eq!(EngineVersion::V4.encode_payload(&packets), "42[\"m\",\"👋\"]\x1e6");
        assert_eq!(EngineVersion::V3.encode_payload(&packets), "12:42[\"m\",\"👋\"]1:6");
        for version in [EngineVersion::V3, EngineVersion::V4] {
            assert_eq!(version.decode_payload(&version.encode_payload(&packets)).as_deref(), Ok(&packets[..]));
        }
        // Neither reads the other's framing.
        assert!(EngineVersion::V3.decode_payload("4a\x1e6").is_err());
        assert_eq!(EngineVersion::V4.decode_payload("1:6"), Err(CodecError::UnexpectedData));
    }

    #[test]
    fn handshake_json_is_exact() {
        let handshake = Handshake {
            sid: "lv_VI97HAXpY6yYWAAAC".to_owned(),
            upgrades: vec!["websocket"],
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload: Some(1_000_000),
        };
        assert_eq!(
            handshake.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(
            EnginePacket::Open(handshake.to_json()).encode(),
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        let on_websocket = Handshake { upgrades: vec![], ..handshake.clone() };
        assert!(on_websocket.to_json().contains(r#""upgrades":[],"#));
        // As engine.io 3 sent it: no maxPayload.
        let v3 = Handshake { max_payload: None, ..handshake };
        assert_eq!(
            v3.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#
        );
    }

    #[test]
    fn handshake_sid_is_json_escaped() {
        let handshake = Handshake {
            sid: "a\"\x1e".to_owned(),
            upgrades: vec![],
            ping_interval_ms: 1,
            ping_timeout_ms: 1,
            max_payload: Some(1),
        };
        let json = handshake.to_json();
        assert!(json.starts_with(r#"{"sid":"a\"\u001e","#), "{json}");
        assert!(!json.contains('\x1e'));
    }

    #[test]
    fn queries_parse() {
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=polling&t=N8hyd6w"),
            Ok(EngineQuery { version: EngineVersion::V4, transport: Transport::Polling, sid: None })
        );
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=polling&t=N8hyd7H&sid=lv_VI97HAXpY6yYWAAAC"),
            Ok(EngineQuery {
                version: EngineVersion::V4,
                transport: Transport::Polling,
                sid: Some("lv_VI97HAXpY6yYWAAAC".to_owned())
            })
        );
        assert_eq!(
            EngineQuery::parse("transport=websocket&sid=ab-c_9&EIO=4"),
            Ok(EngineQuery {
                version: EngineVersion::V4,
                transport: Transport::Websocket,
                sid: Some("ab-c_9".to_owned())
            })
        );
        // Application parameters, odd pairs and empty segments are none of Engine.IO's business.
        assert_eq!(
            EngineQuery::parse("&EIO=4&&transport=websocket&token=a%20b&flag&x==y&"),
            Ok(EngineQuery { version: EngineVersion::V4, transport: Transport::Websocket, sid: None })
        );
        // What socket.io-client 1.x and 2.x send (in Node, without binary support: b64=1).
        assert_eq!(
            EngineQuery::parse("token=abc&EIO=3&transport=polling&t=MZx5b2c&b64=1"),
            Ok(EngineQuery { version: EngineVersion::V3, transport: Transport::Polling, sid: None })
        );
        assert_eq!(
            EngineQuery::parse("EIO=3&transport=websocket&sid=abc"),
            Ok(EngineQuery {
                version: EngineVersion::V3,
                transport: Transport::Websocket,
                sid: Some("abc".to_owned())
            })
        );
    }

    #[test]
    fn bad_queries_are_refused() {
        let cases = [
            ("", CodecError::UnknownTransport),
            ("EIO=4", CodecError::UnknownTransport),
            ("EIO=4&transport=", CodecError::UnknownTransport),
            ("EIO=4&transport=flashsocket", CodecError::UnknownTransport),
            ("EIO=4&transport=webtransport", CodecError::UnknownTransport),
            ("EIO=4&transport=Polling", CodecError::UnknownTransport),
            ("EIO=4&transport", CodecError::UnknownTransport),
            ("transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=2&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=5&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=03&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=40&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("eio=4&transport=polling", CodecError::UnsupportedProtocolVersion),
            ("EIO=4&transport=polling&sid=", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid=a%20b", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid=a.b", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid=a/b", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid=a=b", CodecError::BadSessionId),
            ("EIO=4&transport=polling&sid=ü", CodecError::BadSessionId),
            ("EIO=4&EIO=4&transport=polling", CodecError::BadQuery),
            ("EIO=4&transport=polling&transport=websocket", CodecError::BadQuery),
            ("EIO=4&transport=polling&sid=a&sid=b", CodecError::BadQuery),
            ("EIO=3&transport=polling&j=0", CodecError::JsonpUnsupported),
            ("j=1&EIO=4&transport=polling", CodecError::JsonpUnsupported),
            ("EIO=3&transport=polling&sid=abc&j", CodecError::JsonpUnsupported),
        ];
        for (query, error) in cases {
            assert_eq!(EngineQuery::parse(query), Err(error), "{query:?}");
        }
        let long = format!("EIO=4&transport=polling&sid={}", "a".repeat(MAX_SID_LEN + 1));
        assert_eq!(EngineQuery::parse(&long), Err(CodecError::BadSessionId));
        let longest = format!("EIO=4&transport=polling&sid={}", "a".repeat(MAX_SID_LEN));
        assert!(EngineQuery::parse(&longest).is_ok());
    }

    #[test]
    fn error_bodies_are_the_standard_ones() {
        let expected = [
            r#"{"code":0,"message":"Transport unknown"}"#,
            r#"{"code":1,"message":"Session ID unknown"}"#,
            r#"{"code":2,"message":"Bad handshake method"}"#,
            r#"{"code":3,"message":"Bad request"}"#,
            r#"{"code":4,"message":"Forbidden"}"#,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ];
        for (code, body) in (0u8..).zip(expected) {
            assert_eq!(engine_error_body(code), body);
        }
        assert_eq!(engine_error_body(6), expected[3]);
        assert_eq!(engine_error_body(u8::MAX), expected[3]);
    }

    #[test]
    fn query_errors_map_to_engine_codes() {
        let code = |query| engine_error_code(&EngineQuery::parse(query).expect_err("a bad query"));
        assert_eq!(code("EIO=4&transport=carrier-pigeon"), 0);
        assert_eq!(code("EIO=4&transport=polling&sid=!"), 1);
        assert_eq!(code("EIO=4&transport=polling&sid=a&sid=b"), 3);
        assert_eq!(code("EIO=2&transport=polling"), 5);
        assert_eq!(code("EIO=3&transport=polling&j=0"), 0);
        assert_eq!(engine_error_code(&CodecError::Empty), 3);
    }
}
