//! The repository trait at the storage border and the values it returns.

use std::fmt::Debug;

use async_trait::async_trait;
use chat_domain::{
    Chat, ChatEvent, ChatTarget, DomainError, DomainHandle, HistoryQuery, IdempotencyKey, Message, MessageId,
    PageRequest, Position, Timestamp, UserId,
};

use crate::{LookupError, ModifyError, StoreError};

/// What a [`Decide`] callback wants done to a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store this version of the message in place of the current one (its author's edit).
    Replace(Message),
    /// Store this version, which differs from the current one only in being marked seen by `by`
    /// (whose read position in the chat then moves to it, if that is later).
    MarkSeen {
        /// The message, marked seen.
        message: Message,
        /// The recipient who saw it.
        by: UserId,
    },
    /// Delete the message.
    Remove,
}

impl Change {
    /// The recipient whose read position this change moves (a `MarkSeen`'s).
    pub(crate) fn seen_by(&self) -> Option<UserId> {
        match self {
            Self::MarkSeen { by, .. } => Some(*by),
            Self::Replace(_) | Self::Remove => None,
        }
    }

    /// The message to store in place of the current one, and the event that announces it; `None`
    /// for a removal.
    pub(crate) fn replacement(self, chat: Chat) -> Option<(Message, ChatEvent)> {
        match self {
            Self::Replace(message) => Some((message.clone(), ChatEvent::MessageUpdated { chat, message })),
            Self::MarkSeen { message, .. } => Some((message.clone(), ChatEvent::MessageSeen { chat, message })),
            Self::Remove => None,
        }
    }
}

/// Decides, from the current version of a message, what to do with it. It may run more than once
/// (when another writer changed the message in between), so it must be a pure function.
pub type Decide<'a> = dyn Fn(&Message) -> Result<Change, DomainError> + Send + Sync + 'a;

/// A send that a retry with the same key (by the same author) must not repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key.
    pub key: IdempotencyKey,
    /// How long the first answer is remembered.
    pub ttl: std::time::Duration,
}

/// What [`ChatStore::append`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// The message was stored (and announced).
    Stored,
    /// Nothing was written: the author's key was already used, for this message in this chat.
    Replayed {
        /// The chat the first send went to.
        chat: Chat,
        /// The message the first send stored.
        message: Message,
    },
}

/// One page of a chat's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Messages in the whole chat.
    pub total: u64,
    /// This page's messages, oldest first.
    pub messages: Vec<Message>,
    /// The position of the reader's channel, read with the page: every event up to it is
    /// reflected in the page, so resuming from it misses nothing.
    pub position: Position,
    /// Whether the chat has more messages beyond this page, the way it went (older for a page
    /// number or `before`, newer for `after`).
    pub more: bool,
    /// Where each participant has read up to (both of a DM, the reader of a topic): the latest
    /// remaining message at or before their read position, `None` when they never read (or every
    /// message they read was deleted).
    pub read: Vec<(UserId, Option<MessageId>)>,
}

/// A reader's state in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The latest remaining message at or before the read position (`None`: none).
    pub message: Option<MessageId>,
    /// Messages by others after the read position.
    pub unread: u64,
}

/// One chat in an inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    /// The chat, as the inbox owner sees it.
    pub target: ChatTarget,
    /// When the chat last had a message sent in it (the inbox score).
    pub updated: Timestamp,
    /// The chat's latest message, if it still has one.
    pub latest: Option<Message>,
    /// Messages by others after the owner's read position there.
    pub unread: u64,
}

/// One page of an inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    /// Chats in the whole inbox.
    pub total: u64,
    /// This page's chats, most recently updated first.
    pub entries: Vec<InboxEntry>,
    /// The owner's channel position, read with the page (as [`HistoryPage::position`]).
    pub position: Position,
    /// The owner's unread messages over all their direct chats (topics count only in their own
    /// entries: a topic send would otherwise write once per member).
    pub unread_total: u64,
}

/// Where chats live. Every method is one atomic operation: no reader ever sees part of a write.
///
/// `tenant` scopes every call; two tenants never see each other's data.
#[async_trait]
pub trait ChatStore: Send + Sync + Debug {
    /// Appends `message` to `chat`, refreshes the inbox entries of the chat (see
    /// [`Chat::inbox_entries_on_send`]) and the author's `last_active`, all at once — unless
    /// `idempotency`'s key was used by the author within its ttl: then nothing is written and the
    /// first send is returned. The check and the write are one atomic step, so concurrent sends
    /// with one key store one message.
    async fn append(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        message: &Message,
        idempotency: Option<&Idempotency>,
    ) -> Result<Appended, StoreError>;

    /// One page of `chat` as `reader` asks for it (by page number, counted from the newest message,
    /// or by cursor), oldest first, with the position of the reader's channel for the chat
    /// ([`Chat::channel_of`]) and the participants' read positions, all read at once. An unknown
    /// cursor is [`LookupError::UnknownMessage`].
    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        query: HistoryQuery,
        reader: UserId,
    ) -> Result<HistoryPage, LookupError>;

    /// Moves `reader`'s read position in `chat` forward to message `up_to` (`None`: the chat's
    /// latest), never backward, and announces it (a `read` event to the reader's channel and, in a
    /// DM, a receipt to the other participant's) — unless the position is already there or later.
    /// Returns the reader's state afterwards. The counters, the position and the events are one
    /// atomic step.
    async fn read(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        reader: UserId,
        up_to: Option<MessageId>,
    ) -> Result<ReadState, LookupError>;

    /// One page of `owner`'s inbox, most recently updated first, with each chat's latest message
    /// and unread count, the owner's total and the position of the owner's channel.
    async fn inbox(&self, tenant: &DomainHandle, owner: UserId, page: PageRequest) -> Result<InboxPage, StoreError>;

    /// Changes message `id` of `chat` as `decide` says, given its current version; returns the
    /// message as it is afterwards (or as it was, when removed). The decision and the write are
    /// atomic: if the message changed in between, `decide` runs again on the new version.
    async fn modify(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        id: MessageId,
        decide: &Decide<'_>,
    ) -> Result<Message, ModifyError>;

    /// Whether the backend answers (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError>;
}
