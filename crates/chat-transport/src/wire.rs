//! The wire JSON: what the original service's clients send and receive, converted to and from the
//! domain types here and nowhere else.

use chat_domain::{
    Chat, ChatTarget, DomainError, DomainHandle, Edit, Keyspace, Message, MessageBody, MessageText, PageRequest,
    Timestamp,
};
use chat_identity::Profile;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ApiError;

/// `{"epoch": ms, "iso": "…Z"}`.
#[derive(Debug, Serialize)]
pub(crate) struct TimestampOut {
    epoch: i64,
    iso: String,
}

impl From<Timestamp> for TimestampOut {
    fn from(at: Timestamp) -> Self {
        Self { epoch: at.epoch_millis(), iso: at.iso() }
    }
}

/// A message; `A` is the author: the numeric id, or the author's profile in a history.
#[derive(Debug, Serialize)]
pub(crate) struct MessageOut<'m, A> {
    id: String,
    author: A,
    timestamp: TimestampOut,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'m str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'m Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

impl<'m, A> MessageOut<'m, A> {
    pub(crate) fn new(message: &'m Message, author: A) -> Self {
        let (text, image) = message.body.fields();
        Self {
            id: message.id.to_string(),
            author,
            timestamp: message.timestamp.into(),
            kind: message.body.type_name(),
            text,
            image,
            status: message.status.map(|s| s.as_str()),
        }
    }
}

impl<'m> MessageOut<'m, u64> {
    /// The message with `author` as the numeric id (send, edit, inbox).
    pub(crate) fn with_author_id(message: &'m Message) -> Self {
        Self::new(message, message.author.get())
    }
}

/// `state` of a send, edit or delete answer.
#[derive(Debug, Serialize)]
pub(crate) struct ChatState {
    key: String,
    inbox_key: String,
}

impl ChatState {
    pub(crate) fn new(handle: &DomainHandle, chat: Chat, target: ChatTarget) -> Self {
        Self { key: Keyspace::public_chat(handle, chat), inbox_key: target.to_string() }
    }
}

/// `state` of a paged answer.
#[derive(Debug, Serialize)]
pub(crate) struct PageState {
    key: String,
    page: u32,
    per_page: u32,
    total: u64,
    total_pages: u64,
}

impl PageState {
    pub(crate) fn new(key: String, page: PageRequest, total: u64) -> Self {
        Self { key, page: page.page(), per_page: page.per_page(), total, total_pages: page.total_pages(total) }
    }
}

/// One inbox entry: `{type, id, latest, timestamp, user|topic}`.
#[derive(Debug, Serialize)]
pub(crate) struct InboxEntryOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    latest: Option<MessageOut<'a, u64>>,
    timestamp: TimestampOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a Profile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a Profile>,
}

impl<'a> InboxEntryOut<'a> {
    pub(crate) fn new(item: &'a chat_service::InboxItem) -> Self {
        let (user, topic) = match item.target {
            ChatTarget::User(_) => (Some(&item.profile), None),
            ChatTarget::Topic(_) => (None, Some(&item.profile)),
        };
        Self {
            kind: item.target.kind().as_str(),
            id: item.target.id(),
            latest: item.latest.as_ref().map(MessageOut::with_author_id),
            timestamp: item.updated.into(),
            user,
            topic,
        }
    }
}

/// Parses a request body: empty means `{}` (as the original's body parser did).
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::argument("The body must be a JSON object")),
        Err(error) => Err(ApiError::invalid_json(&error.to_string())),
    }
}

/// Reads `text` as message text: a string within the limit.
fn text_field(value: Value, max_chars: usize) -> Result<MessageText, DomainError> {
    match value {
        Value::String(text) => MessageText::parse(text, max_chars),
        _ => Err(DomainError::InvalidArgument("text must be a string".into())),
    }
}

/// Reads `image`: whatever the platform's clients agree on, as long as it says something — a
/// non-empty object (such as `{"url": …, "width": …}`) or a non-empty string (a URL).
fn image_field(value: Value) -> Result<Value, DomainError> {
    match &value {
        Value::Object(fields) if !fields.is_empty() => Ok(value),
        Value::String(url) if !url.trim().is_empty() => Ok(value),
        _ => Err(DomainError::InvalidArgument("image must be a non-empty object or string".into())),
    }
}

/// A send body, `{"type": "text", "text": …}` or `{"type": "image", "image": …}`.
pub(crate) fn message_body(mut body: Map<String, Value>, max_chars: usize) -> Result<MessageBody, DomainError> {
    let kind = body.remove("type");
    match kind.as_ref().and_then(Value::as_str) {
        Some("text") => match body.remove("text") {
            None | Some(Value::Null) => Err(DomainError::InvalidArgument("text is required for text messages".into())),
            Some(text) => text_field(text, max_chars).map(MessageBody::Text),
        },
        Some("image") => match body.remove("image") {
            None | Some(Value::Null) => {
                Err(DomainError::InvalidArgument("image is required for image messages".into()))
            }
            Some(image) => image_field(image).map(MessageBody::Image),
        },
        _ => Err(DomainError::InvalidType),
    }
}

/// An edit body: any of `text`, `image`, `status: "seen"`.
pub(crate) fn edit(mut body: Map<String, Value>, max_chars: usize) -> Result<Edit, DomainError> {
    let text = match body.remove("text") {
        None | Some(Value::Null) => None,
        Some(text) => Some(text_field(text, max_chars)?),
    };
    let image = match body.remove("image") {
        None | Some(Value::Null) => None,
        Some(image) => Some(image_field(image)?),
    };
    let mark_seen = match body.remove("status") {
        None | Some(Value::Null) => false,
        Some(Value::String(status)) if status == "seen" => true,
        Some(_) => {
            return Err(DomainError::InvalidArgument("status can only be \"seen\"".into()));
        }
    };
    Ok(Edit { text, image, mark_seen })
}

/// The paging query: `page`, `per_page` or `limit`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery {
    page: Option<String>,
    per_page: Option<String>,
    limit: Option<String>,
}

impl PageQuery {
    pub(crate) fn parse(&self, limits: chat_domain::PagingLimits) -> Result<PageRequest, DomainError> {
        PageRequest::parse(self.page.as_deref(), self.per_page.as_deref(), self.limit.as_deref(), limits)
    }
}
