//! What a client may ask of an authenticated connection, the same on both doors: `subscribe` and
//! `unsubscribe` to a topic, and `typing`.

use chat_domain::{ChatTarget, TopicId};
use chat_service::{Connection, ResumeFrom};
use serde_json::{Value, json};

use super::payload;
use super::refusal::Refusal;

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

/// Handles client event `name` with `data`. An `Err` is for an `error` event (or the ack); the
/// connection stays open.
pub(crate) async fn handle(connection: &mut Connection, name: &str, data: &Value) -> Result<Answer, Refusal> {
    match name {
        "subscribe" => {
            let topic = topic_of(data)?;
            let resumed = connection.subscribe_topic(topic, since_in(data)).await?;
            Ok(Answer::Done { event: "subscribed", data: payload::subscribed(topic, &resumed) })
        }
        "unsubscribe" => {
            let topic = topic_of(data)?;
            connection.unsubscribe_topic(topic).await?;
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
            let target = ChatTarget::parse(kind, &id).map_err(|e| {
                Refusal::invalid_payload(format!("typing needs {{\"chat\": {{\"type\", \"id\"}}}}: {e}"))
            })?;
            connection.typing(target).await?;
            Ok(Answer::Quiet)
        }
        "authenticate" => Err(Refusal::already_authenticated()),
        other => Err(Refusal::unknown_event(other)),
    }
}

fn topic_of(data: &Value) -> Result<TopicId, Refusal> {
    TopicId::from_json(&data["topic"]).map_err(|_| Refusal::invalid_payload("expected {\"topic\": <positive integer>}"))
}
