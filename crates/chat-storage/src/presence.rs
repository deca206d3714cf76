//! Presence below the use cases: which users have a live connection on some instance. Each
//! instance vouches for itself — one deadline it keeps renewing — and records which of its users
//! are connected; a user is active while some instance holding a connection of theirs is live. An
//! instance that stops renewing (closed, or died without a word) lapses, and any instance sweeps
//! its users in bounded batches — so presence never sticks at "active" after a crash, and no upkeep
//! grows with the number of users an instance holds.

use std::fmt::Debug;

use async_trait::async_trait;
use chat_domain::{DomainHandle, Timestamp, UserId};

use crate::StoreError;

/// What [`PresenceStore::join`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The users are recorded; these of them were live nowhere before (they just became active).
    Arrived(Vec<UserId>),
    /// The instance had lapsed (its deadline passed; its users may have been swept): nothing was
    /// written. It must start again under a new name ([`PresenceStore::register`]) and join its
    /// users again.
    Lapsed,
}

/// Where presence is kept (shared by every instance on the same backend).
#[async_trait]
pub trait PresenceStore: Send + Sync + Debug {
    /// Starts vouching under `instance`, a name never used before, until `until`.
    async fn register(&self, instance: &str, until: Timestamp) -> Result<(), StoreError>;

    /// Moves `instance`'s deadline to `until` — one write, however many users it holds. Returns
    /// false, writing nothing, when the instance had lapsed: a lapsed name never comes back, since
    /// its users may have been swept meanwhile.
    async fn renew(&self, instance: &str, until: Timestamp) -> Result<bool, StoreError>;

    /// `users` of `tenant` have a connection on `instance` (their first there).
    async fn join(&self, tenant: &DomainHandle, users: &[UserId], instance: &str) -> Result<Joined, StoreError>;

    /// `instance` no longer has a connection of `user`. Returns whether the user is now live
    /// nowhere (they just became inactive).
    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError>;

    /// Sweeps the users of every instance whose deadline passed by `now`, marking inactive and
    /// returning those now live nowhere. Safe to run on every instance at once: each user of a
    /// lapsed instance is swept by one of them, and returned once.
    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError>;

    /// Which of `users` some live instance holds at `now`: those who are active.
    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError>;

    /// The users `user` shares a DM with among the `limit` most recent entries of their inbox (its
    /// `user-<id>` entries), the most recently sent-to first. Bounded, so that a connect costs the
    /// same for a user with 100,000 chats as with 100.
    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId, limit: usize) -> Result<Vec<UserId>, StoreError>;
}
