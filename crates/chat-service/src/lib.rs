//! chatd's use cases — send, edit, delete, history, inbox — over the storage and identity traits,
//! and the realtime hub that fans events out to live connections.
//! This is what a Rust service embedding chat calls; it knows nothing of HTTP.

mod adapters;
mod error;
mod realtime;
mod service;
mod settings;
mod views;
mod vouching;

pub use adapters::Adapters;
pub use error::ServiceError;
pub use realtime::{CatchUp, Connection, Delivery, Hub, HubSettings, Overflow, ResumeFrom, Resumed};
pub use service::{ChatService, ServiceSettings};
pub use settings::{InvalidSetting, NonZeroDuration, PresenceTtl};
pub use views::{Changed, History, Inbox, InboxItem, ReadMark, Sent};
