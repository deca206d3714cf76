//! The form events travel in through Redis pub/sub: compact JSON, internal to chatd (clients never
//! see it; transports build their own frames from the decoded [`ChatEvent`]).

use chat_domain::{Chat, ChatEvent, MessageId, PresenceStatus, TopicId, UserId};
use serde::{Deserialize, Serialize};

use crate::{StoreError, record};

#[derive(Serialize, Deserialize)]
enum ChatRecord {
    Dm(u64, u64),
    Topic(u64),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "e")]
enum EventRecord {
    New { chat: ChatRecord, message: String },
    Updated { chat: ChatRecord, message: String },
    Seen { chat: ChatRecord, message: String },
    Deleted { chat: ChatRecord, id: String },
    Typing { chat: ChatRecord, user: u64 },
    Presence { user: u64, active: bool },
}

fn chat_out(chat: Chat) -> ChatRecord {
    match chat {
        Chat::Direct { lo, hi } => ChatRecord::Dm(lo.get(), hi.get()),
        Chat::Topic(topic) => ChatRecord::Topic(topic.get()),
    }
}

fn chat_in(chat: ChatRecord) -> Result<Chat, StoreError> {
    let user = |n| UserId::new(n).map_err(bad);
    Ok(match chat {
        ChatRecord::Dm(lo, hi) => Chat::Direct { lo: user(lo)?, hi: user(hi)? },
        ChatRecord::Topic(topic) => Chat::Topic(TopicId::new(topic).map_err(bad)?),
    })
}

fn bad(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable event: {error}"))
}

/// The pub/sub payload of `event`.
pub(crate) fn encode(event: &ChatEvent) -> String {
    let record = match event {
        ChatEvent::NewMessage { chat, message } => {
            EventRecord::New { chat: chat_out(*chat), message: record::encode(message) }
        }
        ChatEvent::MessageUpdated { chat, message } => {
            EventRecord::Updated { chat: chat_out(*chat), message: record::encode(message) }
        }
        ChatEvent::MessageSeen { chat, message } => {
            EventRecord::Seen { chat: chat_out(*chat), message: record::encode(message) }
        }
        ChatEvent::MessageDeleted { chat, id } => EventRecord::Deleted { chat: chat_out(*chat), id: id.to_string() },
        ChatEvent::Typing { chat, user } => EventRecord::Typing { chat: chat_out(*chat), user: user.get() },
        ChatEvent::Presence { user, status } => {
            EventRecord::Presence { user: user.get(), active: *status == PresenceStatus::Active }
        }
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// The event a pub/sub payload carries.
pub(crate) fn decode(payload: &[u8]) -> Result<ChatEvent, StoreError> {
    let record: EventRecord = serde_json::from_slice(payload).map_err(bad)?;
    Ok(match record {
        EventRecord::New { chat, message } => {
            ChatEvent::NewMessage { chat: chat_in(chat)?, message: record::decode(&message)? }
        }
        EventRecord::Updated { chat, message } => {
            ChatEvent::MessageUpdated { chat: chat_in(chat)?, message: record::decode(&message)? }
        }
        EventRecord::Seen { chat, message } => {
            ChatEvent::MessageSeen { chat: chat_in(chat)?, message: record::decode(&message)? }
        }
        EventRecord::Deleted { chat, id } => {
            ChatEvent::MessageDeleted { chat: chat_in(chat)?, id: MessageId::parse(&id).map_err(bad)? }
        }
        EventRecord::Typing { chat, user } => {
            ChatEvent::Typing { chat: chat_in(chat)?, user: UserId::new(user).map_err(bad)? }
        }
        EventRecord::Presence { user, active } => ChatEvent::Presence {
            user: UserId::new(user).map_err(bad)?,
            status: if active { PresenceStatus::Active } else { PresenceStatus::Inactive },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{ChatTarget, Message, MessageBody, MessageText};

    #[test]
    fn every_event_survives_the_trip() {
        let user = |n| UserId::new(n).expect("valid");
        let dm = Chat::between(user(5), ChatTarget::User(user(3)));
        let message = Message::new(user(5), MessageBody::Text(MessageText::from_stored("hi 😢".into())));
        let events = [
            ChatEvent::NewMessage { chat: dm, message: message.clone() },
            ChatEvent::MessageUpdated { chat: Chat::Topic(TopicId::new(4).expect("valid")), message: message.clone() },
            ChatEvent::MessageSeen { chat: dm, message: message.clone() },
            ChatEvent::MessageDeleted { chat: dm, id: message.id },
            ChatEvent::Typing { chat: dm, user: user(3) },
            ChatEvent::Presence { user: user(3), status: PresenceStatus::Inactive },
        ];
        for event in events {
            assert_eq!(decode(encode(&event).as_bytes()).expect("decodes"), event);
        }
        assert!(decode(b"{\"e\":\"New\"}").is_err());
        assert!(decode(b"{\"e\":\"Typing\",\"chat\":{\"Dm\":[0,1]},\"user\":1}").is_err());
    }
}
