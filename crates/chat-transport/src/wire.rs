//! The wire JSON: what the original service's clients send and receive, converted to and from the
//! domain types here and nowhere else. Each type also describes itself for the OpenAPI document
//! (`ToSchema`), so the document follows the JSON chatd really writes.

use std::collections::BTreeMap;

use chat_domain::{
    Chat, ChatTarget, DomainError, DomainHandle, Edit, HistoryQuery, IsoText, Keyspace, Message, MessageBody,
    MessageId, MessageText, PageRequest, Position, Timestamp, UserId,
};
use chat_identity::Profile;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;
use crate::openapi::schemas;

/// An instant, `{"epoch": ms, "iso": "…Z"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Timestamp)]
pub(crate) struct TimestampOut {
    /// Milliseconds since the Unix epoch.
    epoch: i64,
    /// The same instant in UTC with exactly three fractional digits, as JavaScript's `toISOString()`.
    #[schema(value_type = String, format = DateTime, pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    #[serde(serialize_with = "iso_text")]
    iso: IsoText,
}

fn iso_text<S: serde::Serializer>(iso: &IsoText, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(iso.as_str())
}

/// Writes a message id as its text, without building a `String`.
fn message_id<S: serde::Serializer>(id: &MessageId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.encode(&mut [0; 36]))
}

impl From<Timestamp> for TimestampOut {
    fn from(at: Timestamp) -> Self {
        Self { epoch: at.epoch_millis(), iso: at.iso() }
    }
}

/// A message's author: the user id (send, edit, inbox and realtime answers), or the author's
/// profile (a history).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Author<'a> {
    Id(u64),
    Profile(&'a RawValue),
}

/// A message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub(crate) struct MessageOut<'m> {
    /// A UUID, lower case, hyphenated.
    #[schema(value_type = String, format = "uuid")]
    #[serde(serialize_with = "message_id")]
    id: MessageId,
    /// The author's user id, or in a history the author's profile.
    #[schema(schema_with = schemas::author)]
    author: Author<'m>,
    /// When it was sent; edits keep it.
    timestamp: TimestampOut,
    /// Which of `text` and `image` the message carries.
    #[serde(rename = "type")]
    #[schema(schema_with = schemas::message_type)]
    kind: &'static str,
    /// The text, exactly as sent (text messages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    text: Option<&'m str>,
    /// The image exactly as sent (image messages only), which chatd does not interpret: a non-empty
    /// object or string (a message the original service stored may hold any JSON value here).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value, required = false)]
    image: Option<&'m Value>,
    /// `"seen"` once a recipient has marked the message seen; absent until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schemas::seen, required = false)]
    status: Option<&'static str>,
}

impl<'m> MessageOut<'m> {
    /// The message with `author` as the author's profile (a history).
    pub(crate) fn with_author_profile(message: &'m Message, profile: &'m Profile) -> Self {
        Self::new(message, Author::Profile(profile.json()))
    }

    /// The message with `author` as the numeric id (send, edit, inbox).
    pub(crate) fn with_author_id(message: &'m Message) -> Self {
        Self::new(message, Author::Id(message.author.get()))
    }

    fn new(message: &'m Message, author: Author<'m>) -> Self {
        let (text, image) = message.body.fields();
        Self {
            id: message.id,
            author,
            timestamp: message.timestamp.into(),
            kind: message.body.type_name(),
            text,
            image,
            status: message.status.map(|s| s.as_str()),
        }
    }
}

/// `state` of a send, edit or delete answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChatState {
    /// The chat's key: `<handle>:dm:<lo>-<hi>` or `<handle>:topic:<id>`.
    #[schema(pattern = r"^[^:]+:(dm:[0-9]+-[0-9]+|topic:[0-9]+)$")]
    key: String,
    /// The chat as the caller addressed it: `user-<id>` or `topic-<id>`.
    #[schema(pattern = r"^(user|topic)-[0-9]+$")]
    inbox_key: String,
}

impl ChatState {
    pub(crate) fn new(handle: &DomainHandle, chat: Chat, target: ChatTarget) -> Self {
        Self { key: Keyspace::public_chat(handle, chat), inbox_key: target.to_string() }
    }
}

/// `state` of a paged answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PageState {
    /// The inbox or chat key: `<handle>:inbox:<uid>`, `<handle>:dm:<lo>-<hi>` or `<handle>:topic:<id>`.
    #[schema(pattern = r"^[^:]+:(inbox:[0-9]+|dm:[0-9]+-[0-9]+|topic:[0-9]+)$")]
    key: String,
    /// The page returned (1-based); absent for a page by cursor (`before`, `after`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, minimum = 1, maximum = 4294967295_u64, required = false)]
    page: Option<u32>,
    /// The page size used, after defaulting and clamping to the maximum.
    #[schema(value_type = u64, minimum = 1, maximum = 4294967295_u64)]
    per_page: u32,
    /// Entries in the whole inbox, or messages in the whole chat.
    total: u64,
    /// `ceil(total / per_page)`, and 1 when `total` is 0 (one empty page); absent for a page by
    /// cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, required = false)]
    total_pages: Option<u64>,
    /// The caller's realtime position as of this page — their own channel's for an inbox or a DM,
    /// the topic's for a topic — to connect (or subscribe) `since`, or to read `/api/events`
    /// from: every event after it is one the page does not show yet. Opaque.
    #[schema(value_type = String, example = "1764590000123456-42")]
    position: String,
    /// A page by cursor: whether the chat has more messages beyond it, the way it went (older for
    /// `before`, newer for `after`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    more: Option<bool>,
    /// A chat: where each participant has read up to (both of a DM, the caller in a topic), by user
    /// id — the latest remaining message at or before their read position, `null` if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schemas::read_positions, required = false)]
    read: Option<BTreeMap<String, Option<String>>>,
    /// An inbox: unread messages over all the caller's direct chats (topics count only in their
    /// own entries' `unread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    unread_total: Option<u64>,
}

impl PageState {
    /// The state of an inbox page.
    pub(crate) fn inbox(key: String, page: PageRequest, total: u64, position: Position, unread_total: u64) -> Self {
        Self {
            key,
            page: Some(page.page()),
            per_page: page.per_page(),
            total,
            total_pages: Some(page.total_pages(total)),
            position: position.to_string(),
            more: None,
            read: None,
            unread_total: Some(unread_total),
        }
    }

    /// The state of a history page, by number or by cursor.
    pub(crate) fn history(key: String, history: &chat_service::History) -> Self {
        let (page, total_pages, more) = match history.query {
            HistoryQuery::Page(page) => (Some(page.page()), Some(page.total_pages(history.total)), None),
            HistoryQuery::Before { .. } | HistoryQuery::After { .. } => (None, None, Some(history.more)),
        };
        Self {
            key,
            page,
            per_page: history.query.limit(),
            total: history.total,
            total_pages,
            position: history.position.to_string(),
            more,
            read: Some(read_positions(&history.read)),
            unread_total: None,
        }
    }
}

/// `{"<user id>": "<message id>" | null}`.
fn read_positions(read: &[(UserId, Option<MessageId>)]) -> BTreeMap<String, Option<String>> {
    read.iter().map(|(user, message)| (user.to_string(), message.map(|id| id.to_string()))).collect()
}

/// The answer to marking a chat read: `{"message": …, "unread": N}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReadOut {
    /// The latest remaining message at or before the caller's read position (`null` if every
    /// message read was deleted since).
    #[schema(format = "uuid")]
    message: Option<String>,
    /// Messages by others after the read position.
    unread: u64,
}

impl From<&chat_service::ReadMark> for ReadOut {
    fn from(mark: &chat_service::ReadMark) -> Self {
        Self { message: mark.message.map(|id| id.to_string()), unread: mark.unread }
    }
}

/// Parses a body that may be left out: empty, or JSON `null`, means `{}`.
pub(crate) fn parse_optional_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if serde_json::from_slice::<Value>(bytes).is_ok_and(|value| value.is_null()) {
        return Ok(Map::new());
    }
    parse_body(bytes)
}

/// The body of a read: `{"message": "<message id>"}`, or `{}` for the chat's latest message.
pub(crate) fn read_body(mut body: Map<String, Value>) -> Result<Option<MessageId>, DomainError> {
    match body.remove("message") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => MessageId::parse(&id).map(Some),
        Some(_) => Err(DomainError::InvalidArgument("message must be a message id".into())),
    }
}

/// The body of a read, for the OpenAPI document ([`read_body`] reads it).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = ReadBody)]
#[allow(dead_code)]
pub(crate) struct ReadBodyDoc {
    /// The message read up to (a message of this chat); absent or `null` for the chat's latest.
    #[schema(format = "uuid", required = false)]
    message: Option<String>,
}

/// One chat of an inbox: `{type, id, latest, timestamp, user|topic}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = InboxEntry)]
pub(crate) struct InboxEntryOut<'a> {
    /// A DM (`user`) or a topic chat (`topic`).
    #[serde(rename = "type")]
    #[schema(schema_with = schemas::target)]
    kind: &'static str,
    /// The other participant's user id, or the topic id: the chat is `/api/{type}/{id}`.
    #[schema(schema_with = schemas::id)]
    id: u64,
    /// The chat's latest remaining message (`author` is the user id); `null` once every message
    /// has been deleted, or for a topic the caller's token no longer grants.
    #[schema(schema_with = schemas::latest)]
    latest: Option<MessageOut<'a>>,
    /// When a message was last sent in the chat (the inbox's order); edits and deletes keep it.
    timestamp: TimestampOut,
    /// Messages by others after the caller's read position in the chat (all of them in a chat
    /// never read; the caller's own never count).
    unread: u64,
    /// The other participant's profile (DMs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schemas::profile, required = false)]
    user: Option<&'a RawValue>,
    /// The topic's profile (topic chats only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schemas::profile, required = false)]
    topic: Option<&'a RawValue>,
}

impl<'a> InboxEntryOut<'a> {
    pub(crate) fn new(item: &'a chat_service::InboxItem) -> Self {
        let (user, topic) = match item.target {
            ChatTarget::User(_) => (Some(item.profile.json()), None),
            ChatTarget::Topic(_) => (None, Some(item.profile.json())),
        };
        Self {
            kind: item.target.kind().as_str(),
            id: item.target.id(),
            latest: item.latest.as_ref().map(MessageOut::with_author_id),
            timestamp: item.updated.into(),
            unread: item.unread,
            user,
            topic,
        }
    }
}

/// The body of a send, for the OpenAPI document: [`message_body`] reads it (by hand, for the
/// original's error messages), and [`schemas::send_body`] describes it.
pub(crate) struct SendBody;

impl utoipa::PartialSchema for SendBody {
    fn schema() -> RefOr<Schema> {
        schemas::send_body().into()
    }
}

impl ToSchema for SendBody {}

/// The body of an edit, for the OpenAPI document: [`edit`] reads it, [`schemas::edit_body`]
/// describes it.
pub(crate) struct EditBody;

impl utoipa::PartialSchema for EditBody {
    fn schema() -> RefOr<Schema> {
        schemas::edit_body().into()
    }
}

impl ToSchema for EditBody {}

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
            None | Some(Value::Null) => Err(DomainError::MissingContent("text")),
            Some(text) => text_field(text, max_chars).map(MessageBody::Text),
        },
        Some("image") => match body.remove("image") {
            None | Some(Value::Null) => Err(DomainError::MissingContent("image")),
            Some(image) => image_field(image).map(MessageBody::Image),
        },
        _ => Err(DomainError::InvalidType(js_string(kind.as_ref()).chars().take(64).collect())),
    }
}

/// A JSON value as JavaScript's `String(value)` prints it (`undefined` for none), the way the
/// original service quoted an unknown `type` in its error message.
fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => match number.as_f64() {
            // JavaScript has one number type: `1.0` prints as `1`.
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e21 => format!("{float:.0}"),
            _ => number.to_string(),
        },
        // `[1, null, "a"].join()` is `1,,a`.
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| if item.is_null() { String::new() } else { js_string(Some(item)) })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_owned(),
        Some(other) => other.to_string(),
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

/// The paging query: `page`, `per_page` or `limit`. Each is ASCII digits, 1 to 4294967295.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// The page, 1-based (default 1). A page past the end is empty.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    page: Option<String>,
    /// Entries per page (default `chat.default_per_page`, 10); larger than `chat.max_per_page`
    /// (100) is lowered to it.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    per_page: Option<String>,
    /// The original's name for `per_page`, used when `per_page` is absent.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    limit: Option<String>,
}

impl PageQuery {
    pub(crate) fn parse(&self, limits: chat_domain::PagingLimits) -> Result<PageRequest, DomainError> {
        PageRequest::parse(self.page.as_deref(), self.per_page.as_deref(), self.limit.as_deref(), limits)
    }
}

/// A history's query: the page form (`page`, `per_page` or `limit`), or a cursor (`before` or
/// `after`, with `per_page` or `limit`).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryParams {
    /// The page, 1-based (default 1), counted from the newest message. A page past the start is
    /// empty. Not with `before` or `after`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    page: Option<String>,
    /// Messages per page (default `chat.default_per_page`, 10); larger than `chat.max_per_page`
    /// (100) is lowered to it.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    per_page: Option<String>,
    /// The original's name for `per_page`, used when `per_page` is absent.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    limit: Option<String>,
    /// A message id of this chat: the page holds the messages just before it (oldest first), and
    /// `state.more` says whether older ones remain.
    #[param(value_type = Option<String>, format = "uuid")]
    before: Option<String>,
    /// A message id of this chat: the page holds the messages just after it (oldest first), and
    /// `state.more` says whether newer ones remain.
    #[param(value_type = Option<String>, format = "uuid")]
    after: Option<String>,
}

impl HistoryParams {
    pub(crate) fn parse(&self, limits: chat_domain::PagingLimits) -> Result<HistoryQuery, DomainError> {
        HistoryQuery::parse(
            self.page.as_deref(),
            self.per_page.as_deref(),
            self.limit.as_deref(),
            self.before.as_deref(),
            self.after.as_deref(),
            limits,
        )
    }
}

/// The path of a chat, `/api/{target}/{id}`, as the handlers extract it (parsed with
/// `ChatTarget::parse`).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ChatPath {
    /// `user`: the caller's direct messages with user `id`; `topic`: topic `id`.
    #[param(schema_with = schemas::target)]
    pub(crate) target: String,
    /// A user or topic id: ASCII digits, 1 to 2^53−1.
    #[param(schema_with = schemas::id)]
    pub(crate) id: String,
}

/// The path of one message, `/api/{target}/{id}/{message_id}`.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct MessagePath {
    /// `user`: the caller's direct messages with user `id`; `topic`: topic `id`.
    #[param(schema_with = schemas::target)]
    pub(crate) target: String,
    /// A user or topic id: ASCII digits, 1 to 2^53−1.
    #[param(schema_with = schemas::id)]
    pub(crate) id: String,
    /// The message id, a UUID (any spelling: upper case and no hyphens are accepted too). Anything
    /// else is answered like an unknown message, 404.
    #[param(value_type = String, format = "uuid")]
    pub(crate) message_id: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_unknown_type_is_quoted_as_javascript_prints_it() {
        let quoted = |value: Value| js_string(Some(&value));
        assert_eq!(js_string(None), "undefined");
        assert_eq!(quoted(json!("video")), "video");
        assert_eq!(quoted(json!(null)), "null");
        assert_eq!(quoted(json!(true)), "true");
        assert_eq!(quoted(json!(42)), "42");
        assert_eq!(quoted(json!(1.0)), "1");
        assert_eq!(quoted(json!(-2.5)), "-2.5");
        assert_eq!(quoted(json!([1, null, "a", [2, 3]])), "1,,a,2,3");
        assert_eq!(quoted(json!({"a": 1})), "[object Object]");
        let body = |value: Value| message_body(value.as_object().cloned().unwrap_or_default(), 10);
        assert_eq!(body(json!({})), Err(DomainError::InvalidType("undefined".into())));
        assert_eq!(body(json!({"type": "x".repeat(100)})), Err(DomainError::InvalidType("x".repeat(64))));
        assert_eq!(body(json!({"type": "text"})), Err(DomainError::MissingContent("text")));
        assert_eq!(body(json!({"type": "image", "image": null})), Err(DomainError::MissingContent("image")));
    }
}
