//! What a client may ask of an authenticated connection, the same on both doors: `subscribe` and
//! `unsubscribe` to a topic, and `typing`.

use chat_domain::{ChatTarget, TopicId};
use chat_service::{Connection, ResumeFrom, ServiceError};
use serde_json::{Value, json};

use super::payload;
use crate::ApiError;

/// The position a client asks to resume from in an event's data (`{"since": "<position>"}`): a
/// `since` that is not a string is one chatd cannot have made.
pub(crate) fn since_in(data: &Value) -> ResumeFrom {
    match &data["since"] {
        Value::Null => ResumeFrom::Now,
        Value::String(since) => ResumeFrom::parse(Some(since)),
        _ => ResumeFrom::Unreadable,
    }
}

/// The answer to a client event: data for its ack (Socket.IO) or the confirming event (`/ws`).
#[derive(Debug)]
pub(crate) enum Answer {
    /// Done; here is what to confirm, under this event name on `/ws`.
    Done { event: &'static str, data: Value },
    /// Done; nothing to confirm.
    Quiet,
}

/// Handles client event `name` with `data`. An `Err` is a message for an `error` event; the
/// connection stays open.
pub(crate) async fn handle(connection: &mut Connection, name: &str, data: &Value) -> Result<Answer, String> {
    match name {
        "subscribe" => {
            let topic = topic_of(data)?;
            let resumed = connection.subscribe_topic(topic, since_in(data)).await.map_err(refusal)?;
            Ok(Answer::Done { event: "subscribed", data: payload::subscribed(topic, &resumed) })
        }
        "unsubscribe" => {
            let topic = topic_of(data)?;
            connection.unsubscribe_topic(topic).await.map_err(refusal)?;
            Ok(Answer::Done { event: "unsubscribed", data: json!({"topic": topic.get()}) })
        }
        "typing" => {
            let chat = &data["chat"];
            let kind = chat["type"].as_str().unwrap_or_default();
            let id = match &chat["id"] {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            let target = ChatTarget::parse(kind, &id)
                .map_err(|e| format!("typing needs {{\"chat\": {{\"type\", \"id\"}}}}: {e}"))?;
            connection.typing(target).await.map_err(refusal)?;
            Ok(Answer::Quiet)
        }
        "authenticate" => Err("already authenticated".to_owned()),
        other => Err(format!("unknown event {:?}", other.chars().take(64).collect::<String>())),
    }
}

/// What a client is told when a use case refuses: the message REST gives for the same error (so
/// a storage failure says "Storage is unavailable, try again shortly", never Redis's own words;
/// the cause goes to the log).
fn refusal(error: ServiceError) -> String {
    ApiError::from(error).message().to_owned()
}

fn topic_of(data: &Value) -> Result<TopicId, String> {
    TopicId::from_json(&data["topic"]).map_err(|_| "expected {\"topic\": <positive integer>}".to_owned())
}
