//! What the use cases return: domain values joined with the profiles a client shows.

use chat_domain::PageRequest;
use chat_domain::{Chat, ChatTarget, HistoryQuery, Message, MessageId, Position, Timestamp, UserId};
use chat_identity::Profile;

/// A message that was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The conversation it went to.
    pub chat: Chat,
    /// The chat as the sender addressed it (the inbox entry it refreshed on the sender's side).
    pub target: ChatTarget,
    /// The stored message.
    pub message: Message,
    /// Whether this was a retry of an earlier send with the same idempotency key: nothing was
    /// written, and `message` is the one the first send stored.
    pub replayed: bool,
}

/// A message after an edit, or the message a delete removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The conversation.
    pub chat: Chat,
    /// The chat as the caller addressed it.
    pub target: ChatTarget,
    /// The message as it is now (edit) or was (delete).
    pub message: Message,
}

/// A page of a chat's history.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The conversation.
    pub chat: Chat,
    /// The page that was asked for.
    pub query: HistoryQuery,
    /// Messages in the whole conversation.
    pub total: u64,
    /// The other participant's profile, or the topic's.
    pub peer: Profile,
    /// The page's messages, oldest first, each with its author's profile.
    pub messages: Vec<(Message, Profile)>,
    /// The position of the reader's channel (a DM) or the topic's, as of this page: a client that
    /// resumes from it misses nothing the page does not show.
    pub position: Position,
    /// Whether the chat has more messages beyond the page, the way it went.
    pub more: bool,
    /// Where the participants (both of a DM, the caller in a topic) have read up to: the latest
    /// remaining message at or before each one's read position.
    pub read: Vec<(UserId, Option<MessageId>)>,
}

/// Where a reader stands in a chat after marking it read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMark {
    /// The conversation.
    pub chat: Chat,
    /// The chat as the reader addressed it.
    pub target: ChatTarget,
    /// The latest remaining message at or before the read position.
    pub message: Option<MessageId>,
    /// Messages by others after it.
    pub unread: u64,
}

/// A page of an inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    /// The page that was asked for.
    pub page: PageRequest,
    /// Chats in the whole inbox.
    pub total: u64,
    /// The page's chats, most recently updated first.
    pub items: Vec<InboxItem>,
    /// The owner's channel position as of this page (see [`History::position`]).
    pub position: Position,
    /// Unread messages over all the owner's direct chats.
    pub unread_total: u64,
}

/// One chat of an inbox page.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// The chat as the inbox owner sees it.
    pub target: ChatTarget,
    /// When a message was last sent in it.
    pub updated: Timestamp,
    /// Its latest message, if any remains (and the caller may read the chat).
    pub latest: Option<Message>,
    /// The other participant's or the topic's profile.
    pub profile: Profile,
    /// Messages by others after the owner's read position there.
    pub unread: u64,
}
