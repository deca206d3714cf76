//! The stored form of a message: the original service's JSON, `{id, author, timestamp: ISO-8601,
//! type, text|image, [status]}`. Writing is exact; reading is lenient, because the original checked
//! nothing (`text: 42` was stored) and wrote `author` as a string when the token's id was one.

use chat_domain::{Message, MessageBody, MessageId, MessageStatus, MessageText, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StoreError;

#[derive(Serialize)]
struct RecordOut<'m> {
    #[serde(serialize_with = "as_text")]
    id: MessageId,
    author: u64,
    timestamp: &'m str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'m str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'m Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Deserialize)]
struct RecordIn {
    id: String,
    author: Value,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<Value>,
    image: Option<Value>,
    status: Option<String>,
}

/// The JSON stored for `message`.
pub(crate) fn encode(message: &Message) -> String {
    let (text, image) = message.body.fields();
    let timestamp = message.timestamp.iso();
    let record = RecordOut {
        id: message.id,
        author: message.author.get(),
        timestamp: timestamp.as_str(),
        kind: message.body.type_name(),
        text,
        image,
        status: message.status.map(MessageStatus::as_str),
    };
    // Serialising plain strings, numbers and a serde_json::Value cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// Writes a value as its text, without building a `String` first.
fn as_text<S: serde::Serializer>(value: &impl std::fmt::Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Reads a stored message, as chatd or the original wrote it.
pub(crate) fn decode(json: &str) -> Result<Message, StoreError> {
    let corrupt = |why: String| StoreError::Backend(format!("unreadable stored message: {why}"));
    let record: RecordIn = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let id = MessageId::parse(&record.id).map_err(|_| corrupt(format!("bad id {:?}", record.id)))?;
    let author = UserId::from_json(&record.author).map_err(|e| corrupt(e.to_string()))?;
    let timestamp = match &record.timestamp {
        Value::String(iso) => Timestamp::parse_iso(iso).map_err(|e| corrupt(e.to_string()))?,
        Value::Number(n) => {
            Timestamp::from_epoch_millis(n.as_i64().ok_or_else(|| corrupt(format!("bad timestamp {n}")))?)
        }
        other => return Err(corrupt(format!("bad timestamp {other}"))),
    };
    let body = match (record.kind.as_deref(), record.text, record.image) {
        (Some("image"), _, Some(image)) => MessageBody::Image(image),
        (Some("text"), Some(Value::String(text)), _) => MessageBody::Text(MessageText::from_stored(text)),
        // The original stored any JSON value as text; show it as written.
        (Some("text"), Some(other), _) => MessageBody::Text(MessageText::from_stored(other.to_string())),
        (kind, _, _) => {
            return Err(corrupt(format!("message {id} has no usable body (type {kind:?})")));
        }
    };
    let status = match record.status.as_deref() {
        Some("seen") => Some(MessageStatus::Seen),
        _ => None,
    };
    Ok(Message { id, author, timestamp, body, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_originals_json_exactly() {
        let json = r#"{"id":"b62aa160-8129-4772-be7a-a4626bed5890","author":388636,"timestamp":"2026-11-25T13:29:55.030Z","type":"text","text":"Can't believe I started this chat with \"Hello, world!\" 😢"}"#;
        let message = decode(json).expect("readable");
        assert_eq!(encode(&message), json);

        let seen = r#"{"id":"01d45f3a-8cbd-4e57-a46c-70df00c41c48","author":524376,"timestamp":"2026-11-25T13:29:55.290Z","type":"text","text":"this one was edited","status":"seen"}"#;
        assert_eq!(encode(&decode(seen).expect("readable")), seen);

        let image = r#"{"id":"68c12f9f-d3fc-438c-9c39-91532aa68df0","author":388636,"timestamp":"2026-11-25T13:29:54.965Z","type":"image","image":{"url":"https://example.com/cat.png","width":640,"height":480}}"#;
        assert_eq!(encode(&decode(image).expect("readable")), image);
    }

    #[test]
    fn reads_what_the_original_let_through() {
        let string_author = r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":"388636","timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":42}"#;
        let message = decode(string_author).expect("readable");
        assert_eq!(message.author.get(), 388636);
        assert_eq!(message.body, MessageBody::Text(MessageText::from_stored("42".into())));
    }

    #[test]
    fn unreadable_records_are_errors_not_panics() {
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"id":"x","author":1,"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"a"}"#,
            r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":1,"timestamp":"2026-11-25T13:29:54.837Z","type":"video"}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
