//! The stored form of a message: the original service's JSON, `{id, author, timestamp: ISO-8601,
//! type, text|image, [status]}`. Writing is exact; reading is lenient, because the original checked
//! nothing (`text: 42` was stored) and wrote `author` as a string when the token's id was one.

use std::borrow::Cow;

use chat_domain::{Message, MessageBody, MessageId, MessageStatus, MessageText, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::StoreError;

#[derive(Serialize)]
struct RecordOut<'m> {
    #[serde(serialize_with = "message_id")]
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

/// A stored message as read: borrowed from the stored text where it can be (every page reads ten
/// of these), each field as loose as the original was.
#[derive(Deserialize)]
struct RecordIn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    author: Value,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    image: Option<Value>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
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

/// Writes a message id as its text, without building a `String`.
fn message_id<S: serde::Serializer>(id: &MessageId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.encode(&mut [0; 36]))
}

/// A stored timestamp: ISO-8601 text (chatd and the original) or epoch milliseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stamp<'a> {
    Iso(#[serde(borrow)] Cow<'a, str>),
    Millis(i64),
}

/// Reads a stored message, as chatd or the original wrote it.
pub(crate) fn decode(json: &str) -> Result<Message, StoreError> {
    let corrupt = |why: String| StoreError::Backend(format!("unreadable stored message: {why}"));
    let record: RecordIn = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let id = MessageId::parse(&record.id).map_err(|_| corrupt(format!("bad id {:?}", record.id)))?;
    let author = UserId::from_json(&record.author).map_err(|e| corrupt(e.to_string()))?;
    let timestamp = match serde_json::from_str::<Stamp<'_>>(record.timestamp.get()) {
        Ok(Stamp::Iso(iso)) => Timestamp::parse_iso(&iso).map_err(|e| corrupt(e.to_string()))?,
        Ok(Stamp::Millis(millis)) => Timestamp::from_epoch_millis(millis),
        Err(_) => return Err(corrupt(format!("bad timestamp {}", record.timestamp.get()))),
    };
    let text = match record.text {
        None => None,
        Some(raw) => Some(match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
            Ok(text) => text.into_owned(),
            // The original stored any JSON value as text; show it as written.
            Err(_) => serde_json::from_str::<Value>(raw.get()).map_err(|e| corrupt(e.to_string()))?.to_string(),
        }),
    };
    let body = match (record.kind.as_deref(), text, record.image) {
        (Some("image"), _, Some(image)) => MessageBody::Image(image),
        (Some("text"), Some(text), _) => MessageBody::Text(MessageText::from_stored(text)),
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

        let odd = r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":7,"timestamp":1795613394837,"type":"text","text":{"b": [1, 2]},"status":"seen"}"#;
        let message = decode(odd).expect("readable");
        assert_eq!(message.timestamp.epoch_millis(), 1_795_613_394_837);
        assert_eq!(message.body, MessageBody::Text(MessageText::from_stored(r#"{"b":[1,2]}"#.into())));
        assert_eq!(message.status, Some(MessageStatus::Seen));
        let escaped = r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":7,"timestamp":"2026-11-25T13:29:54.837Z","type":"te\u0078t","text":"\"quoted\""}"#;
        assert_eq!(
            decode(escaped).expect("readable").body,
            MessageBody::Text(MessageText::from_stored("\"quoted\"".into()))
        );
    }

    #[test]
    fn unreadable_records_are_errors_not_panics() {
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"id":"x","author":1,"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"a"}"#,
            r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":1,"timestamp":"2026-11-25T13:29:54.837Z","type":"video"}"#,
            r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":1,"timestamp":1.5,"type":"text","text":"a"}"#,
            r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":1,"timestamp":null,"type":"text","text":"a"}"#,
            r#"{"id":"a6ab410a-826b-45f1-aae1-6f8d8a73d738","author":1,"type":"text","text":"a"}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
