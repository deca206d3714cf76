//! chatd's use cases — send, edit, delete, history, inbox — over the storage and identity traits.
//! This is what a Rust service embedding chat calls; it knows nothing of HTTP.

mod error;
mod service;
mod views;

pub use error::ServiceError;
pub use service::{ChatService, ServiceSettings};
pub use views::{Changed, History, Inbox, InboxItem, Sent};
