//! This instance's standing in presence: the name it vouches under, its deadline, and the rule
//! for starting over under a new name once it lapsed (a lapsed name never comes back, since other
//! instances may have swept its users meanwhile).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::Timestamp;
use chat_storage::{PresenceStore, StoreError};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A new name, and the guard that keeps joins and leaves waiting meanwhile.
pub(crate) type StartedOver<'a> = (Arc<str>, RwLockWriteGuard<'a, Option<Arc<str>>>);

/// The instance's presence name, registered on first use.
#[derive(Debug)]
pub(crate) struct Vouching {
    store: Arc<dyn PresenceStore>,
    ttl: Duration,
    /// A name unique to this process; each registration adds a generation to it.
    base: String,
    generation: AtomicU64,
    /// The name in use (`None` until the first connection). Joins and leaves hold it read;
    /// starting over holds it written until every user here has joined again.
    name: RwLock<Option<Arc<str>>>,
}

impl Vouching {
    pub(crate) fn new(store: Arc<dyn PresenceStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            base: uuid::Uuid::new_v4().simple().to_string(),
            generation: AtomicU64::new(0),
            name: RwLock::new(None),
        }
    }

    /// The store presence is kept in.
    pub(crate) fn store(&self) -> &dyn PresenceStore {
        &*self.store
    }

    /// Until when a renewal made now vouches.
    fn deadline(&self) -> Timestamp {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2);
        Timestamp::from_epoch_millis(Timestamp::now().epoch_millis().saturating_add(ttl))
    }

    /// The name in use, registering one first if there is none yet.
    pub(crate) async fn name(&self) -> Result<RwLockReadGuard<'_, Arc<str>>, StoreError> {
        loop {
            if let Ok(name) = RwLockReadGuard::try_map(self.name.read().await, Option::as_ref) {
                return Ok(name);
            }
            let mut name = self.name.write().await;
            if name.is_none() {
                *name = Some(self.register().await?);
            }
        }
    }

    /// The name in use, if one was registered (leaving needs no new one).
    pub(crate) async fn registered(&self) -> Option<RwLockReadGuard<'_, Arc<str>>> {
        RwLockReadGuard::try_map(self.name.read().await, Option::as_ref).ok()
    }

    async fn register(&self) -> Result<Arc<str>, StoreError> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let name: Arc<str> = format!("{}.{generation}", self.base).into();
        self.store.register(&name, self.deadline()).await?;
        Ok(name)
    }

    /// Renews the name in use: one write. Returns the name when it had lapsed (nothing renewed).
    pub(crate) async fn renew(&self) -> Result<Option<Arc<str>>, StoreError> {
        let Some(name) = self.name.read().await.clone() else { return Ok(None) };
        Ok((!self.store.renew(&name, self.deadline()).await?).then_some(name))
    }

    /// After `lapsed` lapsed: registers a new name and returns it, with the name held written so
    /// that no join or leave runs until the caller drops the guard, having joined every user here
    /// again — or `None` when another caller already started over.
    pub(crate) async fn start_over(&self, lapsed: &str) -> Result<Option<StartedOver<'_>>, StoreError> {
        let mut name = self.name.write().await;
        if name.as_deref() != Some(lapsed) {
            return Ok(None);
        }
        let fresh = self.register().await?;
        *name = Some(fresh.clone());
        Ok(Some((fresh, name)))
    }
}
