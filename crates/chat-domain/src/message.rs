//! Messages and the rules for creating, editing and deleting them.

use crate::{DomainError, MessageId, Timestamp, UserId};

/// The text of a text message: a non-blank string of at most the configured number of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Parses text from a client. Characters are Unicode scalar values; the text is kept exactly as
    /// sent (no trimming), but text made only of whitespace is refused.
    pub fn parse(text: String, max_chars: usize) -> Result<Self, DomainError> {
        if text.trim().is_empty() {
            return Err(DomainError::argument("text must be a non-empty string"));
        }
        if text.chars().count() > max_chars {
            return Err(DomainError::argument(format!("text must be at most {max_chars} characters long")));
        }
        Ok(Self(text))
    }

    /// Text read back from storage, which was checked when it was written (or was written by the
    /// original service, which checked nothing): taken as it is.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageBody {
    /// `{"type": "text", "text": …}`.
    Text(MessageText),
    /// `{"type": "image", "image": …}`: any JSON value the platform's clients agree on.
    Image(serde_json::Value),
}

impl MessageBody {
    /// The body as the two optional fields both the stored and the wire JSON have: `text` for a
    /// text message, `image` for an image message.
    pub fn fields(&self) -> (Option<&str>, Option<&serde_json::Value>) {
        match self {
            Self::Text(text) => (Some(text.as_str()), None),
            Self::Image(image) => (None, Some(image)),
        }
    }

    /// The wire and storage name of the body's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
        }
    }
}

/// Read status of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// A recipient has seen the message.
    Seen,
}

impl MessageStatus {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seen => "seen",
        }
    }
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Who wrote it.
    pub author: UserId,
    /// When it was sent; edits keep it.
    pub timestamp: Timestamp,
    /// What it says.
    pub body: MessageBody,
    /// Read status, once a recipient has set one.
    pub status: Option<MessageStatus>,
}

impl Message {
    /// A new message from `author`, sent now.
    pub fn new(author: UserId, body: MessageBody) -> Self {
        Self { id: MessageId::random(), author, timestamp: Timestamp::now(), body, status: None }
    }

    /// This message after `editor` applies `edit`. The author may change the text of a text
    /// message or the image of an image message; anyone else in the chat may mark it seen. Fields
    /// that do not fit the message (text for an image, say) are ignored; when nothing is left the
    /// edit is refused.
    pub fn edited(&self, editor: UserId, edit: Edit) -> Result<Self, DomainError> {
        let new_body = match (&self.body, edit.text, edit.image) {
            (MessageBody::Text(_), Some(text), _) => Some(MessageBody::Text(text)),
            (MessageBody::Image(_), _, Some(image)) => Some(MessageBody::Image(image)),
            _ => None,
        };
        if new_body.is_none() && !edit.mark_seen {
            return Err(DomainError::NothingToApply);
        }
        if new_body.is_some() && editor != self.author {
            return Err(DomainError::NotAuthor);
        }
        if edit.mark_seen && editor == self.author {
            return Err(DomainError::NotRecipient);
        }
        let mut edited = self.clone();
        if let Some(body) = new_body {
            edited.body = body;
        }
        if edit.mark_seen {
            edited.status = Some(MessageStatus::Seen);
        }
        Ok(edited)
    }

    /// Whether `user` may delete this message: only its author may.
    pub fn check_delete(&self, user: UserId) -> Result<(), DomainError> {
        if user == self.author { Ok(()) } else { Err(DomainError::NotAuthor) }
    }
}

/// A change a user asks for on an existing message (`POST /api/:target/:id/:messageId`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    /// New text, for a text message.
    pub text: Option<MessageText>,
    /// New image, for an image message.
    pub image: Option<serde_json::Value>,
    /// `status: "seen"`.
    pub mark_seen: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(n: u64) -> UserId {
        UserId::new(n).expect("valid id")
    }

    fn text(s: &str) -> MessageText {
        MessageText::parse(s.to_owned(), 4000).expect("valid text")
    }

    fn text_message() -> Message {
        Message::new(user(1), MessageBody::Text(text("hello")))
    }

    #[test]
    fn text_must_be_present_and_within_the_limit() {
        assert!(MessageText::parse(String::new(), 10).is_err());
        assert!(MessageText::parse(" \n\t".into(), 10).is_err());
        assert!(MessageText::parse("ab".repeat(6), 10).is_err());
        // Characters, not bytes: ten emoji fit a limit of ten.
        assert!(MessageText::parse("😢".repeat(10), 10).is_ok());
        let exact = "\u{200F}mixed\0NUL ".to_owned();
        assert_eq!(MessageText::parse(exact.clone(), 20).map(|t| t.as_str().to_owned()), Ok(exact));
    }

    #[test]
    fn only_the_author_changes_the_content() {
        let message = text_message();
        let edit = Edit { text: Some(text("changed")), ..Edit::default() };
        let edited = message.edited(user(1), edit.clone()).expect("author may edit");
        assert_eq!(edited.body, MessageBody::Text(text("changed")));
        assert_eq!((edited.id, edited.timestamp), (message.id, message.timestamp));
        assert_eq!(message.edited(user(2), edit), Err(DomainError::NotAuthor));
    }

    #[test]
    fn only_a_recipient_marks_seen() {
        let message = text_message();
        let seen = Edit { mark_seen: true, ..Edit::default() };
        let edited = message.edited(user(2), seen.clone()).expect("recipient may mark seen");
        assert_eq!(edited.status, Some(MessageStatus::Seen));
        assert_eq!(edited.body, message.body);
        assert_eq!(message.edited(user(1), seen), Err(DomainError::NotRecipient));
    }

    #[test]
    fn fields_that_do_not_fit_the_message_are_not_an_edit() {
        let message = text_message();
        let image = Edit { image: Some(json!({"url": "x"})), ..Edit::default() };
        assert_eq!(message.edited(user(1), image), Err(DomainError::NothingToApply));
        assert_eq!(message.edited(user(1), Edit::default()), Err(DomainError::NothingToApply));

        let picture = Message::new(user(1), MessageBody::Image(json!({"url": "a"})));
        let retext = Edit { text: Some(text("no")), ..Edit::default() };
        assert_eq!(picture.edited(user(1), retext), Err(DomainError::NothingToApply));
    }

    #[test]
    fn only_the_author_deletes() {
        let message = text_message();
        assert_eq!(message.check_delete(user(1)), Ok(()));
        assert_eq!(message.check_delete(user(2)), Err(DomainError::NotAuthor));
    }
}
