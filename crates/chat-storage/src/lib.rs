//! chatd's storage: the [`ChatStore`] trait the use cases need, the Redis implementation that
//! speaks the original service's key layout, and an in-memory one that is the embedded default —
//! and, on the same backends, the [`EventBus`] that carries realtime events between instances.
//!
//! Only this crate issues Redis commands; it knows nothing of HTTP or wire JSON.

mod error;
#[cfg(feature = "redis")]
mod event_record;
mod events;
mod memory;
mod memory_presence;
mod presence;
#[cfg(feature = "redis")]
mod record;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use error::{LookupError, ModifyError, StoreError};
pub use events::{AlreadyAttached, EventBus, EventSink, Replay};
pub use memory::MemoryStore;
pub use presence::{Joined, PresenceStore};
#[cfg(feature = "redis")]
pub use redis::{ClusterSettings, ClusterStore, Failpoint, RedisSettings, RedisStore};
/// `chatd migrate`: a standalone deployment copied into the cluster layout.
#[cfg(feature = "redis")]
pub mod migration {
    pub use crate::redis::{
        CopyReport, IndexReport, Migration, MigrationSettings, Mismatch, Plan, Progress, VerifyReport, kind_of, plan,
        progress_key,
    };
}
pub use store::{Appended, Change, ChatStore, Decide, HistoryPage, Idempotency, InboxEntry, InboxPage, ReadState};
