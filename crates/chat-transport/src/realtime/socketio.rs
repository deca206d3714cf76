//! Socket.IO packets inside Engine.IO messages, protocol v5 (socket.io-client 3.x and 4.x) and v4
//! (socket.io-client 1.x and 2.x): decoding what a client sends and encoding what it expects back,
//! byte for byte.
//!
//! A packet is a type digit, then the namespace when it is not `/` (`/admin,`), then an ack id
//! (digits), then a JSON payload. The two protocols write packets alike; they differ in what
//! they mean (v4's type 4 is ERROR, any JSON; v5's is CONNECT_ERROR, an object; v4's CONNECT
//! carries no data), which the session decides. Binary packets are refused: chatd's events are
//! JSON only.

use std::fmt::Write as _;

use serde_json::Value;

use super::codec_error::CodecError;

/// The namespace every client joins unless it names another; never written on the wire.
const DEFAULT_NAMESPACE: &str = "/";

/// Event names socket.io-parser refuses to decode, because the Socket.IO and Node.js event
/// machinery gives them a meaning of their own; refusing them here too keeps a client from
/// posing as a lifecycle event.
const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// One Socket.IO packet.
///
/// A `namespace` is `/` or what a decoded packet named (`/` followed by no comma and no control
/// character); encoding writes it as is, so anything else would make an unreadable packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SocketPacket {
    /// `0`: the client joins a namespace (with its auth object, if any); the server's answer
    /// carries `{"sid": …}`.
    Connect {
        /// The namespace joined.
        namespace: String,
        /// The auth object from the client, or the server's `{"sid": …}`; always an object.
        data: Option<Value>,
    },
    /// `1`: either side leaves a namespace.
    Disconnect {
        /// The namespace left.
        namespace: String,
    },
    /// `2`: an event: `["name", args…]`, with an ack id when the sender wants an answer.
    Event {
        /// The namespace the event belongs to.
        namespace: String,
        /// The id to answer with an [`SocketPacket::Ack`], if the sender asked for one.
        ack: Option<u64>,
        /// The event name, the array's first element.
        name: String,
        /// The arguments after the name.
        args: Vec<Value>,
    },
    /// `3`: the answer to an event that carried an ack id.
    Ack {
        /// The namespace of the event answered.
        namespace: String,
        /// The event's ack id.
        id: u64,
        /// The answer's arguments.
        args: Vec<Value>,
    },
    /// `4`: the server refuses a CONNECT; `{"message": …}` (protocol v5), or any JSON, a string or
    /// the failing middleware's data (protocol v4's ERROR).
    ConnectError {
        /// The namespace refused.
        namespace: String,
        /// Why, usually `{"message": "…"}`; always an object or a string.
        data: Value,
    },
}

impl SocketPacket {
    /// Decodes one packet's text (the data of an Engine.IO message).
    ///
    /// Stricter than socket.io-parser where it is lax on purpose: an EVENT must have a string
    /// name and data, an ACK must have an id, and any JSON nested deeper than `serde_json`'s limit
    /// (128) is an error rather than a stack risk.
    pub(crate) fn decode(text: &str) -> Result<Self, CodecError> {
        let mut chars = text.chars();
        let kind = match chars.next().ok_or(CodecError::Empty)? {
            '0' => Kind::Connect,
            '1' => Kind::Disconnect,
            '2' => Kind::Event,
            '3' => Kind::Ack,
            '4' => Kind::ConnectError,
            '5' | '6' => return Err(CodecError::BinaryUnsupported),
            _ => return Err(CodecError::UnknownPacketType),
        };
        let (namespace, rest) = split_namespace(chars.as_str())?;
        let namespace = namespace.to_owned();
        match kind {
            Kind::Connect => match parse_json(rest)? {
                None => Ok(Self::Connect { namespace, data: None }),
                Some(data @ Value::Object(_)) => Ok(Self::Connect { namespace, data: Some(data) }),
                Some(_) => Err(CodecError::NotAnObject),
            },
            Kind::Disconnect if rest.is_empty() => Ok(Self::Disconnect { namespace }),
            Kind::Disconnect => Err(CodecError::UnexpectedData),
            Kind::Event => {
                let (ack, rest) = split_ack(rest)?;
                let mut items = parse_array(rest)?.into_iter();
                let Some(Value::String(name)) = items.next() else {
                    return Err(CodecError::MissingEventName);
                };
                if RESERVED_EVENTS.contains(&name.as_str()) {
                    return Err(CodecError::ReservedEventName);
                }
                Ok(Self::Event { namespace, ack, name, args: items.collect() })
            }
            Kind::Ack => {
                let (id, rest) = split_ack(rest)?;
                let id = id.ok_or(CodecError::BadAckId)?;
                let args = parse_array(rest)?;
                Ok(Self::Ack { namespace, id, args })
            }
            Kind::ConnectError => match parse_json(rest)? {
                Some(data @ (Value::Object(_) | Value::String(_))) => Ok(Self::ConnectError { namespace, data }),
                Some(_) => Err(CodecError::NotAnObject),
                None => Err(CodecError::MissingData),
            },
        }
    }

    /// Encodes the packet as socket.io-client expects it, e.g. `2["new-message",{"id":1}]`,
    /// `0{"sid":"abc"}`, `4{"message":"Not authorized"}`, `2/chat,7["x",1]`.
    ///
    /// All JSON goes through `serde_json`, which escapes every control character, so the text never
    /// holds a raw `\x1e` and can go into an Engine.IO polling payload as is. Reserved event
    /// names are not checked: the server chooses what it emits.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        match self {
            Self::Connect { namespace, data } => {
                text.push('0');
                push_namespace(&mut text, namespace);
                if let Some(data) = data {
                    text.push_str(&data.to_string());
                }
            }
            Self::Disconnect { namespace } => {
                text.push('1');
                push_namespace(&mut text, namespace);
            }
            Self::Event { namespace, ack, name, args } => {
                text.push('2');
                push_namespace(&mut text, namespace);
                if let Some(ack) = ack {
                    text.push_str(&ack.to_string());
                }
                push_array(&mut text, Some(name), args);
            }
            Self::Ack { namespace, id, args } => {
                text.push('3');
                push_namespace(&mut text, namespace);
                text.push_str(&id.to_string());
                push_array(&mut text, None, args);
            }
            Self::ConnectError { namespace, data } => {
                text.push('4');
                push_namespace(&mut text, namespace);
                text.push_str(&data.to_string());
            }
        }
        text
    }

    /// [`SocketPacket::encode`], with every non-ASCII character of the JSON written as a `\uXXXX`
    /// escape (a surrogate pair of them beyond U+FFFF), which every JSON parser reads back as the
    /// same character. Engine.IO v3 long-polling needs it: socket.io-client 1.x and 2.x count and
    /// decode a payload's non-ASCII text differently, but read ASCII alike. The namespace is
    /// written as it is. ASCII packets cost nothing more than `encode`.
    pub(crate) fn encode_ascii(&self) -> String {
        let text = self.encode();
        if text.is_ascii() {
            return text;
        }
        // Outside its strings JSON is ASCII, so every other character is inside one, where an
        // escape means the same. The type digit and the ack id are ASCII too.
        let json_start = 1 + namespace_len(self.namespace());
        let (head, json) = text.split_at(json_start);
        let mut ascii = String::with_capacity(text.len() + 16);
        ascii.push_str(head);
        for c in json.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    // Writing to a String cannot fail.
                    let _ = write!(ascii, "\\u{unit:04x}");
                }
            }
        }
        ascii
    }

    /// The namespace the packet belongs to.
    fn namespace(&self) -> &str {
        match self {
            Self::Connect { namespace, .. }
            | Self::Disconnect { namespace }
            | Self::Event { namespace, .. }
            | Self::Ack { namespace, .. }
            | Self::ConnectError { namespace, .. } => namespace,
        }
    }
}

/// The namespace a CONNECT names, without the query string that socket.io-client 1.x and 2.x
/// append to it when the application gives the namespace a `query` (`/admin?token=…`); socket.io
/// 2.x answered for the path alone.
pub(crate) fn namespace_path(namespace: &str) -> &str {
    namespace.split_once('?').map_or(namespace, |(path, _)| path)
}

/// The packet types chatd decodes, named so that the decoder's match is exhaustive.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
}

/// Splits off the namespace: `/name,` (or `/name` and nothing after it) when the text starts with
/// `/`, else the default.
fn split_namespace(text: &str) -> Result<(&str, &str), CodecError> {
    if !text.starts_with('/') {
        return Ok((DEFAULT_NAMESPACE, text));
    }
    // socket.io-parser 2.x (socket.io-client 1.x) writes the comma only before an ack id or data
    // (`0/admin`), later ones always; every version reads the namespace up to a comma or the end.
    let (namespace, rest) = text.split_once(',').unwrap_or((text, ""));
    if namespace.chars().any(char::is_control) {
        return Err(CodecError::BadNamespace);
    }
    Ok((namespace, rest))
}

/// Splits off the ack id: the leading digits, if any.
fn split_ack(text: &str) -> Result<(Option<u64>, &str), CodecError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, text));
    }
    // The digits are ASCII, so this byte index is a character boundary.
    let (digits, rest) = text.split_at(digits);
    let id = digits.bytes().try_fold(0u64, |id, digit| id.checked_mul(10)?.checked_add(u64::from(digit - b'0')));
    id.map(|id| (Some(id), rest)).ok_or(CodecError::BadAckId)
}

/// Parses the payload, if there is one.
fn parse_json(text: &str) -> Result<Option<Value>, CodecError> {
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|error| CodecError::json(&error))
}

/// Parses a payload that must be there and be an array (EVENT and ACK).
fn parse_array(text: &str) -> Result<Vec<Value>, CodecError> {
    match parse_json(text)? {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(CodecError::NotAnArray),
        None => Err(CodecError::MissingData),
    }
}

/// Writes the namespace and its comma, unless it is the default one (or empty, which means the
/// same), which socket.io-client expects to be left out.
fn push_namespace(text: &mut String, namespace: &str) {
    if namespace_len(namespace) > 0 {
        text.push_str(namespace);
        text.push(',');
    }
}

/// How many bytes [`push_namespace`] writes: none for the default namespace, else it and a comma.
fn namespace_len(namespace: &str) -> usize {
    if namespace.is_empty() || namespace == DEFAULT_NAMESPACE { 0 } else { namespace.len() + 1 }
}

/// Writes `[name, args…]` (or `[args…]`) without cloning the arguments into a new array.
fn push_array(text: &mut String, name: Option<&str>, args: &[Value]) {
    // Value's Display is infallible, unlike serde_json::to_string, and escapes the same way.
    let name = name.map(|name| Value::from(name).to_string());
    let items = name.into_iter().chain(args.iter().map(Value::to_string));
    text.push('[');
    for (index, item) in items.enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&item);
    }
    text.push(']');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::engineio::{EnginePacket, decode_payload, encode_payload};
    use super::*;

    fn round_trip(text: &str, packet: SocketPacket) {
        assert_eq!(SocketPacket::decode(text), Ok(packet.clone()), "decode {text:?}");
        assert_eq!(packet.encode(), text, "encode {packet:?}");
    }

    fn root() -> String {
        "/".to_owned()
    }

    #[test]
    fn connect_round_trips() {
        round_trip("0", SocketPacket::Connect { namespace: root(), data: None });
        round_trip(
            r#"0{"token":"abc"}"#,
            SocketPacket::Connect { namespace: root(), data: Some(json!({"token": "abc"})) },
        );
        round_trip(
            r#"0/admin,{"token":"x"}"#,
            SocketPacket::Connect { namespace: "/admin".to_owned(), data: Some(json!({"token": "x"})) },
        );
        round_trip("0/admin,", SocketPacket::Connect { namespace: "/admin".to_owned(), data: None });
        round_trip(r#"0{"sid":"abc"}"#, SocketPacket::Connect { namespace: root(), data: Some(json!({"sid": "abc"})) });
    }

    #[test]
    fn server_connect_inside_engine_message_is_exact() {
        let connect = SocketPacket::Connect { namespace: root(), data: Some(json!({"sid": "abc"})) };
        assert_eq!(EnginePacket::Message(connect.encode()).encode(), r#"40{"sid":"abc"}"#);
    }

    #[test]
    fn disconnect_round_trips() {
        round_trip("1", SocketPacket::Disconnect { namespace: root() });
        round_trip("1/admin,", SocketPacket::Disconnect { namespace: "/admin".to_owned() });
    }

    #[test]
    fn event_round_trips() {
        round_trip(
            r#"2["new-message",{"id":1}]"#,
            SocketPacket::Event {
                namespace: root(),
                ack: None,
                name: "new-message".to_owned(),
                args: vec![json!({"id": 1})],
            },
        );
        round_trip(
            r#"21["authenticate",{"token":"t"}]"#,
            SocketPacket::Event {
                namespace: root(),
                ack: Some(1),
                name: "authenticate".to_owned(),
                args: vec![json!({"token": "t"})],
            },
        );
        round_trip(
            r#"2/chat,["x"]"#,
            SocketPacket::Event { namespace: "/chat".to_owned(), ack: None, name: "x".to_owned(), args: vec![] },
        );
        round_trip(
            r#"2/chat,7["x",1]"#,
            SocketPacket::Event {
                namespace: "/chat".to_owned(),
                ack: Some(7),
                name: "x".to_owned(),
                args: vec![json!(1)],
            },
        );
        round_trip(
            r#"218446744073709551615["max",null,true,"s",[1,2],{"b":1,"a":2}]"#,
            SocketPacket::Event {
                namespace: root(),
                ack: Some(u64::MAX),
                name: "max".to_owned(),
                args: vec![json!(null), json!(true), json!("s"), json!([1, 2]), json!({"b": 1, "a": 2})],
            },
        );
        // An empty name is still a string; what it means is the router's business.
        round_trip(r#"2[""]"#, SocketPacket::Event { namespace: root(), ack: None, name: String::new(), args: vec![] });
    }

    #[test]
    fn event_encoding_is_byte_exact() {
        let packet = SocketPacket::Event {
            namespace: "/".to_owned(),
            ack: None,
            name: "new-message".to_owned(),
            args: vec![json!({"id": 1, "text": "hi", "author": {"id": 2}})],
        };
        assert_eq!(packet.encode(), r#"2["new-message",{"id":1,"text":"hi","author":{"id":2}}]"#);
        // An empty namespace means the default one.
        let packet = SocketPacket::Event { namespace: String::new(), ack: None, name: "x".to_owned(), args: vec![] };
        assert_eq!(packet.encode(), r#"2["x"]"#);
    }

    #[test]
    fn ack_round_trips() {
        round_trip(
            r#"31[{"ok":true}]"#,
            SocketPacket::Ack { namespace: root(), id: 1, args: vec![json!({"ok": true})] },
        );
        round_trip("30[]", SocketPacket::Ack { namespace: root(), id: 0, args: vec![] });
        round_trip(
            r#"3/chat,12["a","b"]"#,
            SocketPacket::Ack { namespace: "/chat".to_owned(), id: 12, args: vec![json!("a"), json!("b")] },
        );
    }

    #[test]
    fn connect_error_round_trips() {
        round_trip(
            r#"4{"message":"Not authorized"}"#,
            SocketPacket::ConnectError { namespace: root(), data: json!({"message": "Not authorized"}) },
        );
        round_trip(
            r#"4/admin,{"message":"Not authorized","data":{"code":403}}"#,
            SocketPacket::ConnectError {
                namespace: "/admin".to_owned(),
                data: json!({"message": "Not authorized", "data": {"code": 403}}),
            },
        );
        round_trip(
            r#"4"Not authorized""#,
            SocketPacket::ConnectError { namespace: root(), data: json!("Not authorized") },
        );
    }

    #[test]
    fn lenient_spellings_decode_to_the_canonical_packet() {
        // An explicit default namespace, leading zeros and JSON whitespace are all accepted.
        assert_eq!(SocketPacket::decode("1/,"), Ok(SocketPacket::Disconnect { namespace: root() }));
        // socket.io-client 1.x leaves out the comma when nothing follows the namespace.
        assert_eq!(
            SocketPacket::decode("0/admin"),
            Ok(SocketPacket::Connect { namespace: "/admin".to_owned(), data: None })
        );
        assert_eq!(
            SocketPacket::decode("0/admin?token=x"),
            Ok(SocketPacket::Connect { namespace: "/admin?token=x".to_owned(), data: None })
        );
        assert_eq!(SocketPacket::decode("1/admin"), Ok(SocketPacket::Disconnect { namespace: "/admin".to_owned() }));
        assert_eq!(
            SocketPacket::decode(r#"2007 [ "x" , 1 ] "#),
            Ok(SocketPacket::Event { namespace: root(), ack: Some(7), name: "x".to_owned(), args: vec![json!(1)] })
        );
    }

    #[test]
    fn unicode_and_emoji_are_preserved() {
        round_trip(
            "2/chät,[\"nouveau-message\",{\"text\":\"héllo 👋 世界\"}]",
            SocketPacket::Event {
                namespace: "/chät".to_owned(),
                ack: None,
                name: "nouveau-message".to_owned(),
                args: vec![json!({"text": "héllo 👋 世界"})],
            },
        );
        // Escaped input decodes to the same characters, which are then written out raw.
        assert_eq!(
            SocketPacket::decode(r#"2["m","\ud83d\udc4b"]"#).map(|packet| packet.encode()),
            Ok("2[\"m\",\"👋\"]".to_owned())
        );
    }

    #[test]
    fn ascii_encoding_escapes_json_text_only() {
        let packet = SocketPacket::Event {
            namespace: root(),
            ack: Some(12),
            name: "new-message".to_owned(),
            args: vec![json!({"text": "héllo 👋 世界", "clé": "a\"b"})],
        };
        let ascii = packet.encode_ascii();
        assert_eq!(ascii, r#"212["new-message",{"text":"h\u00e9llo \ud83d\udc4b \u4e16\u754c","cl\u00e9":"a\"b"}]"#);
        assert!(ascii.is_ascii());
        // It reads back as the very same packet.
        assert_eq!(SocketPacket::decode(&ascii), Ok(packet.clone()));
        assert_eq!(SocketPacket::decode(&ascii).map(|p| p.encode()), Ok(packet.encode()));
        // The namespace is not JSON and stays as written; an ASCII packet is unchanged.
        let refused = SocketPacket::ConnectError { namespace: "/chät".to_owned(), data: json!("Invalid namespace") };
        assert_eq!(refused.encode_ascii(), "4/chät,\"Invalid namespace\"");
        let error = SocketPacket::ConnectError { namespace: "/chät".to_owned(), data: json!("ü") };
        assert_eq!(error.encode_ascii(), r#"4/chät,"\u00fc""#);
        let plain = SocketPacket::Event { namespace: root(), ack: None, name: "x".to_owned(), args: vec![json!(1)] };
        assert_eq!(plain.encode_ascii(), plain.encode());
    }

    #[test]
    fn namespace_paths_drop_the_query() {
        assert_eq!(namespace_path("/admin?token=abc&x=1"), "/admin");
        assert_eq!(namespace_path("/admin"), "/admin");
        assert_eq!(namespace_path("/"), "/");
        assert_eq!(namespace_path("/?x"), "/");
    }

    #[test]
    fn object_key_order_is_kept() {
        let text = r#"2["m",{"z":1,"a":2,"m":3}]"#;
        assert_eq!(SocketPacket::decode(text).map(|packet| packet.encode()), Ok(text.to_owned()));
    }

    #[test]
    fn bad_packets_are_refused() {
        let cases: &[(&str, CodecError)] = &[
            ("", CodecError::Empty),
            ("7", CodecError::UnknownPacketType),
            ("9[\"x\"]", CodecError::UnknownPacketType),
            ("x", CodecError::UnknownPacketType),
            ("[\"x\"]", CodecError::UnknownPacketType),
            ("👋", CodecError::UnknownPacketType),
            (r#"51-["upload",{"_placeholder":true,"num":0}]"#, CodecError::BinaryUnsupported),
            (r#"61-0[{"_placeholder":true,"num":0}]"#, CodecError::BinaryUnsupported),
            // CONNECT data must be an object.
            ("0[]", CodecError::NotAnObject),
            ("0\"token\"", CodecError::NotAnObject),
            ("0123", CodecError::NotAnObject),
            ("0null", CodecError::NotAnObject),
            // DISCONNECT carries nothing.
            ("1{}", CodecError::UnexpectedData),
            ("1/admin,{}", CodecError::UnexpectedData),
            ("17", CodecError::UnexpectedData),
            // EVENT needs a non-empty array with a string name first.
            ("2", CodecError::MissingData),
            ("21", CodecError::MissingData),
            ("2/chat,", CodecError::MissingData),
            ("2[]", CodecError::MissingEventName),
            ("2[1,\"x\"]", CodecError::MissingEventName),
            ("2[null]", CodecError::MissingEventName),
            ("2[[\"x\"]]", CodecError::MissingEventName),
            ("2{\"event\":\"x\"}", CodecError::NotAnArray),
            ("2\"x\"", CodecError::NotAnArray),
            ("2[\"disconnect\"]", CodecError::ReservedEventName),
            ("2[\"connect\",{}]", CodecError::ReservedEventName),
            ("25[\"newListener\"]", CodecError::ReservedEventName),
            // Ack ids must fit in a u64.
            ("2999999999999999999999[\"x\"]", CodecError::BadAckId),
            ("218446744073709551616[\"x\"]", CodecError::BadAckId),
            // ACK needs an id and an array.
            ("3", CodecError::BadAckId),
            ("3[]", CodecError::BadAckId),
            ("31", CodecError::MissingData),
            ("31{}", CodecError::NotAnArray),
            ("399999999999999999999999[]", CodecError::BadAckId),
            // CONNECT_ERROR needs an object (or a legacy string).
            ("4", CodecError::MissingData),
            ("4[]", CodecError::NotAnObject),
            ("442", CodecError::NotAnObject),
            // Without a comma the namespace runs to the end, and an EVENT then lacks its data.
            ("2/chat[\"x\"]", CodecError::MissingData),
            // A namespace holds no control characters.
            ("2/ch\x1eat,[\"x\"]", CodecError::BadNamespace),
            ("0/ad\nmin", CodecError::BadNamespace),
            ("2/ch\nat,[\"x\"]", CodecError::BadNamespace),
        ];
        for (text, error) in cases {
            assert_eq!(SocketPacket::decode(text), Err(error.clone()), "{text:?}");
        }
    }

    #[test]
    fn bad_json_is_refused() {
        for text in ["2[\"x\"", "2[\"x\",]", "2[\"x\"] trailing", "2['x']", "0{token:1}", "31[\"\x1e\"]", "4{"] {
            assert!(matches!(SocketPacket::decode(text), Err(CodecError::BadJson(_))), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 10_000;
        let deep_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        for text in [
            format!("2{deep_array}"),
            format!("2[\"x\",{deep_array}]"),
            format!("31{deep_array}"),
            format!("0{deep_object}"),
            format!("4{deep_object}"),
        ] {
            match SocketPacket::decode(&text) {
                Err(CodecError::BadJson(message)) => {
                    assert!(message.contains("recursion limit"), "{message}");
                }
                other => panic!("expected a JSON error, got {other:?}"),
            }
        }
    }

    #[test]
    fn encoding_never_emits_a_raw_record_separator() {
        let packet = SocketPacket::Event {
            namespace: root(),
            ack: Some(3),
            name: "a\x1eb".to_owned(),
            args: vec![json!("\x1e"), json!({"k\x1e": ["\x1e\u{0}\n"]})],
        };
        let text = packet.encode();
        assert!(!text.contains('\x1e'), "{text:?}");
        assert!(text.contains(r"\u001e"), "{text:?}");
        let error = SocketPacket::ConnectError { namespace: root(), data: json!({"message": "bad\x1e"}) };
        assert_eq!(error.encode(), r#"4{"message":"bad\u001e"}"#);

        // So the packet survives a polling payload next to another one.
        let messages = [EnginePacket::Message(packet.encode()), EnginePacket::Message(error.encode())];
        let body = encode_payload(&messages);
        assert_eq!(body.matches('\x1e').count(), 1);
        let decoded = decode_payload(&body).expect("a payload");
        assert_eq!(decoded, messages);
        let EnginePacket::Message(first) = &decoded[0] else {
            panic!("expected a message, got {:?}", decoded[0]);
        };
        assert_eq!(SocketPacket::decode(first), Ok(packet));
    }
}
