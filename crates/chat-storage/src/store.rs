//! The repository trait at the storage border and the values it returns.

use std::fmt::Debug;

use async_trait::async_trait;
use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, DomainError, DomainHandle, IdempotencyKey, Message, MessageId, PageRequest,
    Position, Timestamp, UserId,
};

use crate::{ModifyError, StoreError};

/// What a [`Decide`] callback wants done to a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store this version of the message in place of the current one (its author's edit).
    Replace(Message),
    /// Store this version, which differs from the current one only in being marked seen.
    MarkSeen(Message),
    /// Delete the message.
    Remove,
}

impl Change {
    /// The message to store in place of the current one, and the event that announces it; `None`
    /// for a removal.
    pub(crate) fn replacement(self, chat: Chat) -> Option<(Message, ChatEvent)> {
        match self {
            Self::Replace(message) => Some((message.clone(), ChatEvent::MessageUpdated { chat, message })),
            Self::MarkSeen(message) => Some((message.clone(), ChatEvent::MessageSeen { chat, message })),
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
    /// The position of the channel asked for, read with the page: every event up to it is
    /// reflected in the page, so resuming from it misses nothing.
    pub position: Position,
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

    /// One page of `chat`, counted from the newest message: page 1 holds the newest `per_page`
    /// messages, returned oldest first, with the position of `channel` (the reader's channel for
    /// a DM, the topic's for a topic).
    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        page: PageRequest,
        channel: Channel,
    ) -> Result<HistoryPage, StoreError>;

    /// One page of `owner`'s inbox, most recently updated first, with each chat's latest message
    /// and the position of the owner's channel.
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
