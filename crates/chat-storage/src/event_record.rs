//! The form events travel in through Redis pub/sub and rest in channel histories: compact JSON,
//! internal to chatd (clients never see it; transports build their own frames from the decoded
//! [`ChatEvent`]). A durable event is published as `<epoch>-<seq> <json>`, its position first.

use chat_domain::{Chat, ChatEvent, MessageId, Position, PresenceStatus, TopicId, UserId};
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
    New {
        chat: ChatRecord,
        message: String,
    },
    Updated {
        chat: ChatRecord,
        message: String,
    },
    Seen {
        chat: ChatRecord,
        message: String,
    },
    Deleted {
        chat: ChatRecord,
        id: String,
    },
    Read {
        chat: ChatRecord,
        reader: u64,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unread: Option<u64>,
    },
    Typing {
        chat: ChatRecord,
        user: u64,
    },
    Presence {
        user: u64,
        active: bool,
    },
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
        ChatEvent::Read { chat, reader, message, unread } => EventRecord::Read {
            chat: chat_out(*chat),
            reader: reader.get(),
            message: message.to_string(),
            unread: *unread,
        },
        ChatEvent::Typing { chat, user } => EventRecord::Typing { chat: chat_out(*chat), user: user.get() },
        ChatEvent::Presence { user, status } => {
            EventRecord::Presence { user: user.get(), active: *status == PresenceStatus::Active }
        }
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// The start of a `read` event's payload, for the scripts that decide its message and count: they
/// append `,"message":"<id>"`, then `,"unread":<n>` for the reader's own channel, then `}`.
pub(crate) fn read_head(chat: Chat, reader: UserId) -> String {
    let chat = serde_json::to_string(&chat_out(chat)).unwrap_or_default();
    format!(r#"{{"e":"Read","chat":{chat},"reader":{reader}"#)
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
        EventRecord::Read { chat, reader, message, unread } => ChatEvent::Read {
            chat: chat_in(chat)?,
            reader: UserId::new(reader).map_err(bad)?,
            message: MessageId::parse(&message).map_err(bad)?,
            unread,
        },
        EventRecord::Typing { chat, user } => {
            ChatEvent::Typing { chat: chat_in(chat)?, user: UserId::new(user).map_err(bad)? }
        }
        EventRecord::Presence { user, active } => ChatEvent::Presence {
            user: UserId::new(user).map_err(bad)?,
            status: if active { PresenceStatus::Active } else { PresenceStatus::Inactive },
        },
    })
}

/// The position (for a durable event) and the event a published payload carries.
pub(crate) fn decode_published(payload: &[u8]) -> Result<(Option<Position>, ChatEvent), StoreError> {
    if payload.first() == Some(&b'{') {
        return Ok((None, decode(payload)?));
    }
    let space = payload.iter().position(|b| *b == b' ').ok_or_else(|| bad("no position"))?;
    let position = std::str::from_utf8(&payload[..space]).map_err(bad)?.parse::<Position>().map_err(bad)?;
    Ok((Some(position), decode(&payload[space + 1..])?))
}

/// A history entry of `epoch`: its stream id `<seq>-<ms>` and its payload.
pub(crate) fn decode_entry(epoch: u64, id: &str, payload: &[u8]) -> Result<(Position, ChatEvent), StoreError> {
    let seq = id.split_once('-').and_then(|(seq, _)| seq.parse().ok()).ok_or_else(|| bad("bad entry id"))?;
    Ok((Position { epoch, seq }, decode(payload)?))
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
            ChatEvent::Read { chat: dm, reader: user(3), message: message.id, unread: Some(2) },
            ChatEvent::Read { chat: dm, reader: user(3), message: message.id, unread: None },
            ChatEvent::Presence { user: user(3), status: PresenceStatus::Inactive },
        ];
        for event in events {
            assert_eq!(decode(encode(&event).as_bytes()).expect("decodes"), event);
        }
        assert!(decode(b"{\"e\":\"New\"}").is_err());
        // What the scripts build from the head is what encode writes.
        let read = ChatEvent::Read { chat: dm, reader: user(3), message: message.id, unread: Some(7) };
        let built = format!(r#"{},"message":"{}","unread":7}}"#, read_head(dm, user(3)), message.id);
        assert_eq!(built, encode(&read));
        let receipt = ChatEvent::Read { chat: dm, reader: user(3), message: message.id, unread: None };
        assert_eq!(format!(r#"{},"message":"{}"}}"#, read_head(dm, user(3)), message.id), encode(&receipt));
        let deleted = ChatEvent::MessageDeleted { chat: dm, id: message.id };
        let published = format!("17-3 {}", encode(&deleted));
        let position = Position { epoch: 17, seq: 3 };
        assert_eq!(decode_published(published.as_bytes()).expect("decodes"), (Some(position), deleted.clone()));
        assert_eq!(decode_published(encode(&deleted).as_bytes()).expect("decodes"), (None, deleted.clone()));
        assert!(decode_published(b"17 {}").is_err());
        assert_eq!(
            decode_entry(17, "3-1700000000000", encode(&deleted).as_bytes()).expect("decodes"),
            (position, deleted)
        );
        assert!(decode(b"{\"e\":\"Typing\",\"chat\":{\"Dm\":[0,1]},\"user\":1}").is_err());
    }
}
