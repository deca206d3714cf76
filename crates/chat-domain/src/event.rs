//! Realtime events: every change to a chat (and typing and presence) as one value, and the pub/sub
//! channels it goes to.

use crate::{Chat, ChatTarget, Message, MessageId, TopicId, UserId};

/// A pub/sub channel: everything one user, or one topic's subscribers, should hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Every connection of this user.
    User(UserId),
    /// Every connection subscribed to this topic.
    Topic(TopicId),
}

/// Whether a user has a live connection somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceStatus {
    /// At least one connection, on some instance, is alive.
    Active,
    /// No live connection anywhere.
    Inactive,
}

impl PresenceStatus {
    /// `"active"` or `"inactive"`, as the original's `activity:<uid>` hash holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// Something that happened, to be pushed to the connections that should hear it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// A message was sent.
    NewMessage {
        /// Where.
        chat: Chat,
        /// What.
        message: Message,
    },
    /// Its author edited a message.
    MessageUpdated {
        /// Where.
        chat: Chat,
        /// The message as it is now.
        message: Message,
    },
    /// A recipient marked a message seen.
    MessageSeen {
        /// Where.
        chat: Chat,
        /// The message as it is now (`status` seen).
        message: Message,
    },
    /// A message was deleted.
    MessageDeleted {
        /// Where.
        chat: Chat,
        /// Which message.
        id: MessageId,
    },
    /// A user's read position in a chat moved forward, to `message`: every device of the reader
    /// hears it with the reader's `unread` count there (badges stay in step), and the other
    /// participant of a DM without it (the read receipt).
    Read {
        /// Where.
        chat: Chat,
        /// Who read.
        reader: UserId,
        /// The message read up to (inclusive).
        message: MessageId,
        /// Messages by others after it, for the reader's own devices; `None` in the receipt.
        unread: Option<u64>,
    },
    /// Someone is typing (not stored).
    Typing {
        /// Where.
        chat: Chat,
        /// Who.
        user: UserId,
    },
    /// A user came online or went offline.
    Presence {
        /// Who.
        user: UserId,
        /// Now.
        status: PresenceStatus,
    },
}

impl ChatEvent {
    /// The event's name on the wire (both realtime doors).
    pub fn name(&self) -> &'static str {
        match self {
            Self::NewMessage { .. } => "new-message",
            Self::MessageUpdated { .. } => "message-updated",
            Self::MessageSeen { .. } => "message-seen",
            Self::MessageDeleted { .. } => "message-deleted",
            Self::Read { .. } => "read",
            Self::Typing { .. } => "typing",
            Self::Presence { .. } => "presence",
        }
    }

    /// The chat the event is about, as `viewer` sees it (for a DM, the other participant).
    pub fn chat_seen_by(&self, viewer: UserId) -> Option<ChatTarget> {
        match self {
            Self::NewMessage { chat, .. }
            | Self::MessageUpdated { chat, .. }
            | Self::MessageSeen { chat, .. }
            | Self::MessageDeleted { chat, .. }
            | Self::Read { chat, .. }
            | Self::Typing { chat, .. } => Some(chat.seen_by(viewer)),
            Self::Presence { .. } => None,
        }
    }
}

impl Chat {
    /// The channels that hear about changes to this chat: both participants of a DM (all their
    /// connections, the sender's other devices included), or the topic's subscribers.
    pub fn audience(self) -> Vec<Channel> {
        match self {
            Self::Direct { lo, hi } => vec![Channel::User(lo), Channel::User(hi)],
            Self::Topic(topic) => vec![Channel::Topic(topic)],
        }
    }

    /// The channel through which `reader` hears about this chat: their own for a DM, the topic's
    /// for a topic.
    pub fn channel_of(self, reader: UserId) -> Channel {
        match self {
            Self::Direct { .. } => Channel::User(reader),
            Self::Topic(topic) => Channel::Topic(topic),
        }
    }

    /// The channels that hear that `reader` read here, each with whether its event carries the
    /// reader's unread count: the reader's own (every device of theirs), and in a DM the other
    /// participant's (the read receipt, without the count).
    pub fn read_audience(self, reader: UserId) -> Vec<(Channel, bool)> {
        match self.seen_by(reader) {
            ChatTarget::User(other) => vec![(Channel::User(reader), true), (Channel::User(other), false)],
            ChatTarget::Topic(_) => vec![(Channel::User(reader), true)],
        }
    }

    /// Whose read positions a history page of this chat shows `reader`: both participants of a DM
    /// (so each sees where the other has read up to), only the reader in a topic.
    pub fn readers_shown_to(self, reader: UserId) -> Vec<UserId> {
        match self {
            Self::Direct { lo, hi } => vec![lo, hi],
            Self::Topic(_) => vec![reader],
        }
    }

    /// The channels that hear that `typist` is typing here: the other participant of a DM, or
    /// the topic's subscribers.
    pub fn typing_audience(self, typist: UserId) -> Vec<Channel> {
        match self.seen_by(typist) {
            ChatTarget::User(other) => vec![Channel::User(other)],
            ChatTarget::Topic(topic) => vec![Channel::Topic(topic)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u64) -> UserId {
        UserId::new(n).expect("valid")
    }

    #[test]
    fn a_dm_is_heard_by_both_participants_and_typing_by_the_other() {
        let dm = Chat::between(user(2), ChatTarget::User(user(1)));
        assert_eq!(dm.audience(), [Channel::User(user(1)), Channel::User(user(2))]);
        assert_eq!(dm.typing_audience(user(2)), [Channel::User(user(1))]);
        let topic = Chat::Topic(TopicId::new(9).expect("valid"));
        assert_eq!(topic.audience(), [Channel::Topic(TopicId::new(9).expect("valid"))]);
        assert_eq!(topic.typing_audience(user(2)), topic.audience());
        assert_eq!(dm.channel_of(user(2)), Channel::User(user(2)));
        assert_eq!(dm.read_audience(user(2)), [(Channel::User(user(2)), true), (Channel::User(user(1)), false)]);
        assert_eq!(topic.read_audience(user(2)), [(Channel::User(user(2)), true)]);
        assert_eq!(dm.readers_shown_to(user(2)), [user(1), user(2)]);
        assert_eq!(topic.readers_shown_to(user(2)), [user(2)]);
        assert_eq!(topic.channel_of(user(2)), Channel::Topic(TopicId::new(9).expect("valid")));
    }

    #[test]
    fn each_viewer_sees_the_chat_from_their_side() {
        let dm = Chat::between(user(2), ChatTarget::User(user(1)));
        let event = ChatEvent::Typing { chat: dm, user: user(2) };
        assert_eq!(event.chat_seen_by(user(1)), Some(ChatTarget::User(user(2))));
        assert_eq!(event.chat_seen_by(user(2)), Some(ChatTarget::User(user(1))));
        assert_eq!(event.name(), "typing");
    }
}
