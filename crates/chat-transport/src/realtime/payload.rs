//! The JSON of server → client events, the same on both doors: the message as in the REST `entry`
//! plus `chat` as the receiving user sees it (and, for a durable event, its `position`), and the
//! handshake answers.

use chat_domain::{ChatEvent, ChatTarget, Position, TopicId, UserId};
use chat_service::Resumed;
use serde::Serialize;
use serde_json::{Value, json};

use super::refusal::Refusal;
use crate::wire::MessageOut;

/// `{"type": "user"|"topic", "id": N}`.
#[derive(Debug, Serialize)]
struct ChatOut {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
}

impl From<ChatTarget> for ChatOut {
    fn from(target: ChatTarget) -> Self {
        Self { kind: target.kind().as_str(), id: target.id() }
    }
}

#[derive(Debug, Serialize)]
struct MessageEvent<'a> {
    #[serde(flatten)]
    message: MessageOut<'a>,
    chat: ChatOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<String>,
}

/// The data of `event` for a connection of `viewer`, with the event's `position` in the channel
/// it came on when it is durable.
pub(crate) fn event_data(event: &ChatEvent, position: Option<Position>, viewer: UserId) -> Value {
    let chat = || ChatOut::from(event.chat_seen_by(viewer).unwrap_or(ChatTarget::User(viewer)));
    let position = position.map(|position| position.to_string());
    let data = match event {
        ChatEvent::NewMessage { message, .. }
        | ChatEvent::MessageUpdated { message, .. }
        | ChatEvent::MessageSeen { message, .. } => {
            serde_json::to_value(MessageEvent { message: MessageOut::with_author_id(message), chat: chat(), position })
        }
        ChatEvent::MessageDeleted { id, .. } => Ok(json!({"id": id.to_string(), "chat": chat(), "position": position})),
        ChatEvent::Read { reader, message, unread, .. } => {
            let mut data =
                json!({"chat": chat(), "user": reader.get(), "message": message.to_string(), "position": position});
            if let Some(unread) = unread {
                data["unread"] = json!(unread);
            }
            Ok(data)
        }
        ChatEvent::Typing { user, .. } => Ok(json!({"chat": chat(), "user": user.get()})),
        ChatEvent::Presence { user, status } => Ok(json!({"user": user.get(), "status": status.as_str()})),
    };
    // Serialising strings, numbers and JSON values cannot fail.
    data.unwrap_or(Value::Null)
}

/// `authenticated`'s data: who, and where their channel stands (and what was recovered).
pub(crate) fn authenticated(user: UserId, resumed: &Resumed) -> Value {
    let mut data = json!({"user": user.get()});
    add_resumed(&mut data, resumed);
    data
}

/// The answer to `subscribe`: the topic, and where it stands (and what was recovered).
pub(crate) fn subscribed(topic: TopicId, resumed: &Resumed) -> Value {
    let mut data = json!({"topic": topic.get()});
    add_resumed(&mut data, resumed);
    data
}

/// `position`, and when the client asked to resume, `recovered` (with `missed` when true).
fn add_resumed(data: &mut Value, resumed: &Resumed) {
    data["position"] = json!(resumed.position.to_string());
    match resumed.missed {
        Some(Some(missed)) => {
            data["recovered"] = json!(true);
            data["missed"] = json!(missed);
        }
        Some(None) => data["recovered"] = json!(false),
        None => {}
    }
}

/// `unauthorized`'s data, exactly as the original (socketio-jwt) sent it.
pub(crate) fn unauthorized(message: &str) -> Value {
    json!({
        "message": message,
        "data": {"message": message, "code": "invalid_token", "type": "UnauthorizedError"},
    })
}

/// The data of an `error` event: a client event that could not be handled.
pub(crate) fn error(refusal: &Refusal) -> Value {
    json!({"code": refusal.code(), "message": refusal.message()})
}

/// The Socket.IO ack of a refused client event: `error` is the message, as it always was.
pub(crate) fn error_ack(refusal: &Refusal) -> Value {
    json!({"error": refusal.message(), "code": refusal.code()})
}
