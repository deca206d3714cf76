//! Why a client event was refused, the same on both doors: a stable `code` for programs beside the
//! `message` for people (whose words clients may already match, so they stay as they were).
//!
//! The doors' own refusals have codes of their own; a refusal of the use cases (a topic not
//! granted, storage down, too many connections) takes its code and message from REST's mapping
//! ([`ApiError`]), its code in lower case, so one mapping decides both.

use std::borrow::Cow;

use chat_service::ServiceError;

use super::codec_error::CodecError;
use crate::ApiError;

/// A refused client event (or connection), for an `error` event or a Socket.IO ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    code: Cow<'static, str>,
    message: String,
}

impl Refusal {
    fn own(code: &'static str, message: impl Into<String>) -> Self {
        Self { code: Cow::Borrowed(code), message: message.into() }
    }

    /// Any event but `authenticate` before the connection is authenticated.
    pub(crate) fn authenticate_first() -> Self {
        Self::own("authenticate_first", "authenticate first")
    }

    /// `authenticate` on an authenticated connection.
    pub(crate) fn already_authenticated() -> Self {
        Self::own("already_authenticated", "already authenticated")
    }

    /// An event name chatd does not know; the message names it (its first 64 characters).
    pub(crate) fn unknown_event(name: &str) -> Self {
        Self::own("unknown_event", format!("unknown event {:?}", name.chars().take(64).collect::<String>()))
    }

    /// A known event whose data is not what it needs.
    pub(crate) fn invalid_payload(message: impl Into<String>) -> Self {
        Self::own("invalid_payload", message)
    }

    /// A client event past the connection's budget (`limits.client_events_per_second`).
    pub(crate) fn rate_limited() -> Self {
        Self::own("rate_limited", "too many events, slow down")
    }

    /// A binary `/ws` frame.
    pub(crate) fn binary_unsupported() -> Self {
        Self::own("binary_unsupported", "binary frames are not supported")
    }

    /// The stable code: snake_case, never changes for a given refusal.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The message, for people.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// A `/ws` frame that is not `{"event": "<name>", …}`.
impl From<CodecError> for Refusal {
    fn from(error: CodecError) -> Self {
        Self::own("invalid_frame", error.to_string())
    }
}

/// What REST answers for the same error: its message, and its code in lower case
/// (`STORAGE_UNAVAILABLE` → `storage_unavailable`). A storage failure so says "Storage is
/// unavailable, try again shortly", never Redis's own words; the cause goes to the log.
impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Self {
        let error = ApiError::from(error);
        // The errors the original sent with `"code": null` are all a bad request.
        let code = error.code().unwrap_or("BAD_REQUEST").to_ascii_lowercase();
        Self { code: Cow::Owned(code), message: error.message().to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::{DomainError, TopicId};
    use chat_storage::StoreError;

    use super::*;

    #[test]
    fn use_case_refusals_take_rest_code_and_message() {
        let topic = TopicId::from_json(&serde_json::json!(44)).expect("a topic id");
        let refusal = Refusal::from(ServiceError::Domain(DomainError::TopicForbidden(topic)));
        assert_eq!((refusal.code(), refusal.message()), ("topic_forbidden", "Topic 44 is not open to you"));
        let refusal = Refusal::from(ServiceError::Storage(StoreError::Unavailable("connection refused".into())));
        assert_eq!(
            (refusal.code(), refusal.message()),
            ("storage_unavailable", "Storage is unavailable, try again shortly")
        );
        let refusal = Refusal::from(ServiceError::TooManyConnections("too many connections for this user"));
        assert_eq!((refusal.code(), refusal.message()), ("too_many_connections", "too many connections for this user"));
    }

    #[test]
    fn door_refusals_keep_their_words() {
        assert_eq!(Refusal::unknown_event("dance").message(), "unknown event \"dance\"");
        assert_eq!(Refusal::from(CodecError::Empty).code(), "invalid_frame");
        assert_eq!(Refusal::from(CodecError::Empty).message(), "empty packet");
    }
}
