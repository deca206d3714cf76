//! Presence below the use cases: which users have a live connection on some instance. Each
//! instance vouches for its users until a deadline and keeps renewing it; a user whose instances
//! all stop vouching (closed, or died without a word) becomes inactive — so presence never sticks
//! at "active" after a crash.

use std::fmt::Debug;

use async_trait::async_trait;
use chat_domain::{DomainHandle, Timestamp, UserId};

use crate::StoreError;

/// Where presence is kept (shared by every instance on the same backend).
#[async_trait]
pub trait PresenceStore: Send + Sync + Debug {
    /// `instance` vouches for `users` of `tenant` until `until`. Returns the users who were live
    /// nowhere before (they just became active; their `activity:<uid>` status now says so).
    async fn refresh(
        &self,
        tenant: &DomainHandle,
        users: &[UserId],
        instance: &str,
        until: Timestamp,
    ) -> Result<Vec<UserId>, StoreError>;

    /// `instance` no longer has a connection of `user`. Returns whether the user is now live
    /// nowhere (they just became inactive).
    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError>;

    /// Finds the users no instance has vouched for since before `now`, marks them inactive and
    /// returns them. Safe to run on every instance at once: each user is returned once.
    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError>;

    /// Which of `users` some instance vouches for at `now`: those who are active.
    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError>;

    /// The users `user` shares a DM with among the `limit` most recent entries of their inbox (its
    /// `user-<id>` entries), the most recently sent-to first. Bounded, so that a connect costs the
    /// same for a user with 100,000 chats as with 100.
    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId, limit: usize) -> Result<Vec<UserId>, StoreError>;
}
