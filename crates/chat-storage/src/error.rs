//! Storage errors: what can go wrong below the use cases, with no Redis types in the API.

use chat_domain::DomainError;

/// A failure of the storage backend itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something chatd cannot make sense of.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Why a change to an existing message did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ModifyError {
    /// No message with that id in that chat.
    #[error("message not found")]
    NotFound,
    /// The rules refused the change (see [`chat_domain::Message::edited`]).
    #[error(transparent)]
    Rejected(DomainError),
    /// Others kept changing the message while this change was attempted.
    #[error("the message is being changed by others; try again")]
    Contended,
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a read of a chat by one of its messages did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The chat has no message with that id.
    #[error("message not found")]
    UnknownMessage,
    /// The chat has no message at all.
    #[error("the chat has no message")]
    EmptyChat,
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
