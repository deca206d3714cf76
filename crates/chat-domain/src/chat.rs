//! Chats: what a caller addresses (`/api/user/5`, `/api/topic/42`) and the conversation that
//! names, plus the inbox entries a message touches.

use std::fmt;

use crate::{DomainError, TopicId, UserId};

/// The two kinds of chat, as written in paths and inbox entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// A direct message between two users.
    User,
    /// A topic chat that any user may post in.
    Topic,
}

impl ChatKind {
    /// Parses the `:target` path segment.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        match text {
            "user" => Ok(Self::User),
            "topic" => Ok(Self::Topic),
            other => Err(DomainError::InvalidTarget(other.chars().take(64).collect())),
        }
    }

    /// `"user"` or `"topic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Topic => "topic",
        }
    }
}

/// A chat as seen from one user: the other participant of a DM, or a topic. It is what paths
/// address and what an inbox lists (as the member `user-<id>` or `topic-<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChatTarget {
    /// The DM with this user.
    User(UserId),
    /// This topic.
    Topic(TopicId),
}

impl ChatTarget {
    /// Parses `:target/:id` from a path.
    pub fn parse(kind: &str, id: &str) -> Result<Self, DomainError> {
        Ok(match ChatKind::parse(kind)? {
            ChatKind::User => Self::User(UserId::parse(id)?),
            ChatKind::Topic => Self::Topic(TopicId::parse(id)?),
        })
    }

    /// Parses an inbox member as the original wrote it: `user-<id>` or `topic-<id>`.
    pub fn parse_member(member: &str) -> Result<Self, DomainError> {
        let (kind, id) =
            member.split_once('-').ok_or_else(|| DomainError::argument(format!("Invalid inbox entry {member:?}")))?;
        Self::parse(kind, id)
    }

    /// The kind of chat.
    pub fn kind(self) -> ChatKind {
        match self {
            Self::User(_) => ChatKind::User,
            Self::Topic(_) => ChatKind::Topic,
        }
    }

    /// The user or topic id.
    pub fn id(self) -> u64 {
        match self {
            Self::User(user) => user.get(),
            Self::Topic(topic) => topic.get(),
        }
    }
}

/// Writes the inbox member form, `user-<id>` or `topic-<id>` (also the REST `inbox_key`).
impl fmt::Display for ChatTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written on every answer and inbox entry: pieces rather than `write!`'s interpreter.
        f.write_str(self.kind().as_str())?;
        f.write_str("-")?;
        f.write_str(itoa::Buffer::new().format(self.id()))
    }
}

/// A conversation: a DM between two users (kept in numeric order, `lo <= hi`) or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chat {
    /// A DM; `lo` is never greater than `hi`, so both users name the same conversation.
    Direct {
        /// The smaller user id.
        lo: UserId,
        /// The larger user id.
        hi: UserId,
    },
    /// A topic chat.
    Topic(TopicId),
}

impl Chat {
    /// The conversation `caller` means by `target`.
    pub fn between(caller: UserId, target: ChatTarget) -> Self {
        match target {
            ChatTarget::User(other) => Self::Direct { lo: caller.min(other), hi: caller.max(other) },
            ChatTarget::Topic(topic) => Self::Topic(topic),
        }
    }

    /// The chat as `viewer` sees it (for a DM, the other participant).
    pub fn seen_by(self, viewer: UserId) -> ChatTarget {
        match self {
            Self::Direct { lo, hi } => ChatTarget::User(if viewer == lo { hi } else { lo }),
            Self::Topic(topic) => ChatTarget::Topic(topic),
        }
    }

    /// The inbox entries a message from `author` refreshes: `(inbox owner, entry)`. A DM shows in
    /// both participants' inboxes; a topic only in the inbox of the user who posted, as in the
    /// original.
    pub fn inbox_entries_on_send(self, author: UserId) -> Vec<(UserId, ChatTarget)> {
        match self {
            Self::Direct { lo, hi } => vec![(lo, ChatTarget::User(hi)), (hi, ChatTarget::User(lo))],
            Self::Topic(topic) => vec![(author, ChatTarget::Topic(topic))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u64) -> UserId {
        UserId::new(n).expect("valid id")
    }

    #[test]
    fn both_participants_name_the_same_dm_in_numeric_order() {
        let a = Chat::between(user(1000), ChatTarget::User(user(99)));
        let b = Chat::between(user(99), ChatTarget::User(user(1000)));
        assert_eq!(a, b);
        assert_eq!(a, Chat::Direct { lo: user(99), hi: user(1000) });
        assert_eq!(a.seen_by(user(99)), ChatTarget::User(user(1000)));
        assert_eq!(a.seen_by(user(1000)), ChatTarget::User(user(99)));
    }

    #[test]
    fn targets_parse_from_paths_and_inbox_members() {
        let topic = ChatTarget::parse("topic", "42").expect("valid");
        assert_eq!(topic.to_string(), "topic-42");
        assert_eq!(ChatTarget::parse_member("topic-42"), Ok(topic));
        assert_eq!(ChatTarget::parse_member("user-7"), Ok(ChatTarget::User(user(7))));
        assert_eq!(ChatTarget::parse("group", "1"), Err(DomainError::InvalidTarget("group".into())));
        assert_eq!(DomainError::InvalidTarget("villain".into()).to_string(), r#"Invalid target "villain""#);
        assert!(ChatTarget::parse("user", "0").is_err());
        assert!(ChatTarget::parse_member("user-").is_err());
        assert!(ChatTarget::parse_member("nonsense").is_err());
    }

    #[test]
    fn a_dm_touches_both_inboxes_a_topic_only_the_posters() {
        let dm = Chat::between(user(5), ChatTarget::User(user(3)));
        assert_eq!(
            dm.inbox_entries_on_send(user(5)),
            vec![(user(3), ChatTarget::User(user(5))), (user(5), ChatTarget::User(user(3)))]
        );
        let topic = Chat::Topic(TopicId::new(42).expect("valid"));
        assert_eq!(
            topic.inbox_entries_on_send(user(5)),
            vec![(user(5), ChatTarget::Topic(TopicId::new(42).expect("valid")))]
        );
    }
}
