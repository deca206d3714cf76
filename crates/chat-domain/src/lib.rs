//! chatd's vocabulary: ids, callers and their topic grants, chats, messages, paging, tenants and
//! Redis key naming — pure data and the rules that keep it valid. No IO and no framework types
//! live here.
//!
//! Every constructor parses: a value of these types is valid by construction, so the layers above
//! never re-check it ("parse, don't validate").

pub mod caller;
pub mod chat;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod message;
pub mod paging;
pub mod position;
pub mod tenant;
pub mod time;

pub use caller::{Caller, TopicGrant};
pub use chat::{Chat, ChatKind, ChatTarget};
pub use error::DomainError;
pub use event::{Channel, ChatEvent, PresenceStatus};
pub use idempotency::IdempotencyKey;
pub use ids::{MessageId, TopicId, UserId};
pub use keys::{Keyspace, Layout, StoredKey};
pub use message::{Edit, Message, MessageBody, MessageStatus, MessageText};
pub use paging::{HistoryQuery, PageRequest, PagingLimits};
pub use position::{HistoryWindow, MalformedPosition, Position};
pub use tenant::DomainHandle;
pub use time::{IsoText, Timestamp};
