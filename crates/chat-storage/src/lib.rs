//! chatd's storage: the [`ChatStore`] trait the use cases need, the Redis implementation that
//! speaks the original service's key layout, and an in-memory one that is the embedded default.
//!
//! Only this crate issues Redis commands; it knows nothing of HTTP or wire JSON.

mod error;
mod memory;
mod record;
mod redis;
mod store;

pub use error::{ModifyError, StoreError};
pub use memory::MemoryStore;
pub use redis::{RedisSettings, RedisStore};
pub use store::{Change, ChatStore, Decide, HistoryPage, InboxEntry, InboxPage};
