//! The one error type of the domain: every way a request can break a rule of chat.

/// A rule of the domain that an input or an action broke. Each variant is something the caller
/// did wrong (never an IO failure), so the transport answers it with a 4xx.
///
/// Where the original service had the same error, the text is the original's, word for word
/// (its clients show it); chatd's own rules say what was wrong in the same plain style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The chat kind in a path was neither `user` nor `topic` (at most its first 64 characters).
    #[error("Invalid target \"{0}\"")]
    InvalidTarget(String),
    /// A message's `type` was missing or unknown: what the client sent, as JavaScript would print
    /// it (`undefined` when absent), at most 64 characters.
    #[error("Invalid type \"{0}\"")]
    InvalidType(String),
    /// A text message without `text`, or an image message without `image` (the kind named).
    #[error("Missing {0} property for {0}-message")]
    MissingContent(&'static str),
    /// An argument (id, text, paging value, …) was malformed; the text says which and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// An edit carried nothing that applies to the message.
    #[error("No valid data was supplied")]
    NothingToApply,
    /// The message id does not name a message of this chat.
    #[error("Message not found")]
    MessageNotFound,
    /// The chat has no message (nobody wrote in it, or every message was deleted).
    #[error("Chat not found")]
    ChatNotFound,
    /// Someone other than the author tried to change or delete a message.
    #[error("Only the author of a message can change or delete it")]
    NotAuthor,
    /// The caller's grant does not include this topic (topic access control is configured).
    #[error("Topic {0} is not open to you")]
    TopicForbidden(crate::TopicId),
    /// The author tried to mark their own message as seen.
    #[error("Only a recipient of a message can mark it as seen")]
    NotRecipient,
}

impl DomainError {
    pub(crate) fn argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }
}
