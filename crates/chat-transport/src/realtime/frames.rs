//! The plain `/ws` door's frames: every WebSocket text frame, either way, is the JSON object
//! `{"event": "<name>", "data": <any JSON>}`, for clients that do not speak Socket.IO.

use serde_json::Value;

use super::codec_error::CodecError;

/// One `/ws` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The event name; never empty.
    pub(crate) event: String,
    /// The event's data; `null` when the frame had none.
    pub(crate) data: Value,
}

impl Frame {
    /// Decodes a text frame: a JSON object with a non-empty string `event` and an optional
    /// `data` (missing means `null`). Other fields are ignored, so that clients may add their
    /// own (a request id, say) without breaking.
    ///
    /// JSON nested deeper than `serde_json`'s limit (128) is an error, not a stack overflow.
    pub(crate) fn decode(text: &str) -> Result<Self, CodecError> {
        if text.is_empty() {
            return Err(CodecError::Empty);
        }
        let Value::Object(mut fields) = serde_json::from_str(text).map_err(|error| CodecError::json(&error))? else {
            return Err(CodecError::NotAnObject);
        };
        let event = match fields.remove("event") {
            Some(Value::String(event)) if !event.is_empty() => event,
            _ => return Err(CodecError::MissingEventName),
        };
        let data = fields.remove("data").unwrap_or(Value::Null);
        Ok(Self { event, data })
    }

    /// Encodes a frame as `{"event":"…","data":…}`, keys in exactly that order. Takes the parts
    /// by reference so that one payload can be sent to many sockets without a copy.
    pub(crate) fn encode(event: &str, data: &Value) -> String {
        // Written by hand rather than through a map so the key order never depends on features;
        // Value's Display is infallible and escapes every control character.
        let event = Value::from(event).to_string();
        let data = data.to_string();
        let mut text = String::with_capacity(event.len() + data.len() + 20);
        text.push_str(r#"{"event":"#);
        text.push_str(&event);
        text.push_str(r#","data":"#);
        text.push_str(&data);
        text.push('}');
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frame(event: &str, data: Value) -> Frame {
        Frame { event: event.to_owned(), data }
    }

    #[test]
    fn frames_round_trip_byte_exact() {
        let cases = [
            (
                r#"{"event":"new-message","data":{"id":1,"text":"hi"}}"#,
                frame("new-message", json!({"id": 1, "text": "hi"})),
            ),
            (r#"{"event":"ping","data":null}"#, frame("ping", Value::Null)),
            (r#"{"event":"typing","data":[1,"two",true,2.5]}"#, frame("typing", json!([1, "two", true, 2.5]))),
            (r#"{"event":"n","data":0}"#, frame("n", json!(0))),
            (r#"{"event":"s","data":""}"#, frame("s", json!(""))),
        ];
        for (text, expected) in cases {
            assert_eq!(Frame::decode(text), Ok(expected.clone()), "{text}");
            assert_eq!(Frame::encode(&expected.event, &expected.data), text);
        }
    }

    #[test]
    fn data_is_optional_and_extra_fields_are_ignored() {
        assert_eq!(Frame::decode(r#"{"event":"ping"}"#), Ok(frame("ping", Value::Null)));
        assert_eq!(
            Frame::decode(r#" { "id" : 7, "data" : {"a":1}, "event" : "join", "x": [] } "#),
            Ok(frame("join", json!({"a": 1})))
        );
    }

    #[test]
    fn encoding_keeps_key_order_and_escapes() {
        assert_eq!(
            Frame::encode("m", &json!({"z": 1, "a": {"y": 2, "b": 3}})),
            r#"{"event":"m","data":{"z":1,"a":{"y":2,"b":3}}}"#
        );
        let text = Frame::encode("quo\"te\x1e", &json!("line\nsep\x1e"));
        assert_eq!(text, r#"{"event":"quo\"te\u001e","data":"line\nsep\u001e"}"#);
        assert!(!text.contains('\x1e'));
        assert_eq!(Frame::decode(&text), Ok(frame("quo\"te\x1e", json!("line\nsep\x1e"))));
    }

    #[test]
    fn unicode_and_emoji_are_preserved() {
        let text = r#"{"event":"nouveau-message","data":{"text":"héllo 👋 世界"}}"#;
        let decoded = Frame::decode(text).expect("a frame");
        assert_eq!(decoded.data, json!({"text": "héllo 👋 世界"}));
        assert_eq!(Frame::encode(&decoded.event, &decoded.data), text);
        assert_eq!(Frame::decode(r#"{"event":"\ud83d\udc4b"}"#), Ok(frame("👋", Value::Null)));
    }

    #[test]
    fn bad_frames_are_refused() {
        let cases: &[(&str, CodecError)] = &[
            ("", CodecError::Empty),
            ("[]", CodecError::NotAnObject),
            (r#"["event","x"]"#, CodecError::NotAnObject),
            (r#""event""#, CodecError::NotAnObject),
            ("42", CodecError::NotAnObject),
            ("null", CodecError::NotAnObject),
            ("{}", CodecError::MissingEventName),
            (r#"{"data":1}"#, CodecError::MissingEventName),
            (r#"{"event":""}"#, CodecError::MissingEventName),
            (r#"{"event":null}"#, CodecError::MissingEventName),
            (r#"{"event":1}"#, CodecError::MissingEventName),
            (r#"{"event":["x"]}"#, CodecError::MissingEventName),
            (r#"{"Event":"x"}"#, CodecError::MissingEventName),
        ];
        for (text, error) in cases {
            assert_eq!(Frame::decode(text), Err(error.clone()), "{text:?}");
        }
        for text in [" ", "{", r#"{"event":"x",}"#, r#"{"event":"x"} {}"#, "{'event':'x'}", "{\"event\":\"a\x1eb\"}"] {
            assert!(matches!(Frame::decode(text), Err(CodecError::BadJson(_))), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 10_000;
        let deep_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        for text in [deep_array.clone(), deep_object, format!(r#"{{"event":"x","data":{deep_array}}}"#)] {
            match Frame::decode(&text) {
                Err(CodecError::BadJson(message)) => {
                    assert!(message.contains("recursion limit"), "{message}");
                }
                other => panic!("expected a JSON error, got {other:?}"),
            }
        }
    }
}
