//! The use cases' error: a broken rule of the domain, a conflict, or a storage failure.

use chat_domain::DomainError;
use chat_storage::{ModifyError, StoreError};

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's input or action broke a rule (a 4xx for a transport).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The idempotency key was used for a send to another chat or with another body.
    #[error("This Idempotency-Key was used for another message")]
    IdempotencyKeyReused,
    /// Concurrent changes to the same message kept winning; the caller may retry.
    #[error("the message is being changed by others; try again")]
    Conflict,
    /// The caller sends faster than allowed; they may try again after this long.
    #[error("too many messages; try again in {} ms", retry_after.as_millis())]
    RateLimited {
        /// When the next send will be accepted.
        retry_after: std::time::Duration,
    },
    /// The caller has as many realtime connections open as allowed (per user, or in total).
    #[error("{0}")]
    TooManyConnections(&'static str),
    /// A realtime connection already hears as many topics as one may (`limits.topics_per_connection`).
    #[error("a connection may hear at most {0} topics: unsubscribe from one first")]
    TooManyTopics(usize),
    /// Storage failed (a 5xx for a transport).
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl From<ModifyError> for ServiceError {
    fn from(error: ModifyError) -> Self {
        match error {
            ModifyError::NotFound => Self::Domain(DomainError::MessageNotFound),
            ModifyError::Rejected(rule) => Self::Domain(rule),
            ModifyError::Contended => Self::Conflict,
            ModifyError::Store(store) => Self::Storage(store),
        }
    }
}
