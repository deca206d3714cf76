//! [`Adapters`]: the storage and identity implementations the use cases and the hub run on, as
//! trait objects, so that the caller picks them (Redis or memory, the platform API or the built-in
//! directory) and a test can hand in its own.

use std::sync::Arc;

use chat_identity::{BuiltinDirectory, Directory};
use chat_storage::{ChatStore, EventBus, MemoryStore, PresenceStore};

/// Where chats are stored, how events travel, where presence is kept and where profiles come from.
///
/// The store, the bus and presence are one backend: a write publishes its event atomically with
/// it. One backend feeds one [`Hub`](crate::Hub).
#[derive(Debug, Clone)]
pub struct Adapters {
    /// Where chats are stored.
    pub store: Arc<dyn ChatStore>,
    /// How realtime events travel between instances.
    pub bus: Arc<dyn EventBus>,
    /// Where presence is kept.
    pub presence: Arc<dyn PresenceStore>,
    /// Where profiles come from.
    pub directory: Arc<dyn Directory>,
}

impl Adapters {
    /// One backend (`RedisStore`, `MemoryStore`) as store, bus and presence, with `directory`.
    pub fn with_backend<B>(backend: Arc<B>, directory: Arc<dyn Directory>) -> Self
    where
        B: ChatStore + EventBus + PresenceStore + 'static,
    {
        Self { store: backend.clone(), bus: backend.clone(), presence: backend, directory }
    }

    /// A fresh in-memory store and the built-in directory (`{"id", "username": "user-N"}`
    /// profiles): chats live as long as the process, in this process only.
    pub fn in_memory() -> Self {
        Self::with_backend(Arc::new(MemoryStore::new()), Arc::new(BuiltinDirectory::new()))
    }
}
