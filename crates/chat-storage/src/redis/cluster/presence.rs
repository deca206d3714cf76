//! The [`PresenceStore`] of [`ClusterStore`]: the instances and their users' sets share one slot
//! (`{instances}`), each user's presence and activity theirs; a step that needs both reads the
//! live instances first and hands them to the user's script.

use async_trait::async_trait;
use chat_domain::{DomainHandle, Keyspace, Layout, Timestamp, UserId};
use futures_util::future::try_join_all;
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;

use super::ClusterStore;
use crate::redis::shared;
use crate::redis::store::{PRESENCE_BATCH, unavailable};
use crate::{Joined, PresenceStore, StoreError};

impl ClusterStore {
    fn instances(&self) -> String {
        Keyspace::instances_in(&self.prefix, Layout::Cluster)
    }

    /// The instances live at `now`.
    async fn live(&self, connection: &mut ClusterConnection, now: Timestamp) -> Result<Vec<String>, StoreError> {
        connection
            .zrangebyscore(self.instances(), format!("({}", now.epoch_millis()), "+inf")
            .await
            .map_err(unavailable)
    }

    /// Moves `instance`'s deadline to `until` (`fresh`: under a new name; else only while live).
    async fn vouch(&self, instance: &str, until: Timestamp, fresh: bool) -> Result<bool, StoreError> {
        let renewed: i64 = self
            .scripts
            .presence_renew
            .key(self.instances())
            .arg(instance)
            .arg(until.epoch_millis())
            .arg(Timestamp::now().epoch_millis())
            .arg(if fresh { "1" } else { "0" })
            .invoke_async(&mut self.connection().await?)
            .await
            .map_err(unavailable)?;
        Ok(renewed == 1)
    }

    /// Runs `USER_LEAVE` for the users of `presence_keys` and `instance`; returns those now live
    /// nowhere.
    async fn leave_all(
        &self,
        connection: &ClusterConnection,
        presence_keys: &[(DomainHandle, UserId)],
        instance: &str,
        live: &[String],
    ) -> Result<Vec<(DomainHandle, UserId)>, StoreError> {
        let leaves = presence_keys.iter().map(|(tenant, user)| {
            let keys = self.keys(tenant);
            let mut call = self.cluster_scripts.user_leave.prepare_invoke();
            call.key(keys.presence(*user)).key(keys.activity(*user)).arg(instance);
            for live in live {
                call.arg(live);
            }
            let mut connection = connection.clone();
            async move { call.invoke_async::<i64>(&mut connection).await.map_err(unavailable) }
        });
        let gone = try_join_all(leaves).await?;
        Ok(presence_keys.iter().zip(gone).filter(|(_, gone)| *gone == 1).map(|(who, _)| who.clone()).collect())
    }
}

#[async_trait]
impl PresenceStore for ClusterStore {
    async fn register(&self, instance: &str, until: Timestamp) -> Result<(), StoreError> {
        self.vouch(instance, until, true).await.map(|_| ())
    }

    async fn renew(&self, instance: &str, until: Timestamp) -> Result<bool, StoreError> {
        self.vouch(instance, until, false).await
    }

    async fn join(&self, tenant: &DomainHandle, users: &[UserId], instance: &str) -> Result<Joined, StoreError> {
        let keys = self.keys(tenant);
        let mut connection = self.connection().await?;
        let now = Timestamp::now();
        let live = self.live(&mut connection, now).await?;
        if !live.iter().any(|live| live == instance) {
            return Ok(Joined::Lapsed);
        }
        let mut arrived = Vec::new();
        for batch in users.chunks(PRESENCE_BATCH) {
            let presence_keys: Vec<String> = batch.iter().map(|user| keys.presence(*user)).collect();
            let _: () = connection
                .sadd(Keyspace::instance_users_in(&self.prefix, Layout::Cluster, instance), &presence_keys)
                .await
                .map_err(unavailable)?;
            let joins = batch.iter().map(|user| {
                let mut call = self.cluster_scripts.user_join.prepare_invoke();
                call.key(keys.presence(*user)).key(keys.activity(*user)).arg(instance).arg(now.epoch_millis());
                for live in &live {
                    call.arg(live);
                }
                let mut connection = connection.clone();
                async move { call.invoke_async::<i64>(&mut connection).await.map_err(unavailable) }
            });
            let joined = try_join_all(joins).await?;
            arrived.extend(batch.iter().zip(joined).filter(|(_, new)| *new == 1).map(|(user, _)| *user));
        }
        Ok(Joined::Arrived(arrived))
    }

    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        let live = self.live(&mut connection, Timestamp::now()).await?;
        let live: Vec<String> = live.into_iter().filter(|live| live != instance).collect();
        let gone = self.leave_all(&connection, &[(tenant.clone(), user)], instance, &live).await?;
        let _: () = connection
            .srem(
                Keyspace::instance_users_in(&self.prefix, Layout::Cluster, instance),
                self.keys(tenant).presence(user),
            )
            .await
            .map_err(unavailable)?;
        Ok(!gone.is_empty())
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError> {
        let mut connection = self.connection().await?;
        let mut gone = Vec::new();
        loop {
            let answer: Vec<redis::Value> = self
                .cluster_scripts
                .instance_sweep
                .key(self.instances())
                .arg(now.epoch_millis())
                .arg(PRESENCE_BATCH)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let [lapsed, live, presence_keys @ ..] = answer.as_slice() else { break };
            let lapsed: String = redis::from_redis_value_ref(lapsed).map_err(crate::redis::store::unreadable)?;
            let live: Vec<String> = redis::from_redis_value_ref(live).map_err(crate::redis::store::unreadable)?;
            let users: Vec<(DomainHandle, UserId)> = presence_keys
                .iter()
                .filter_map(|key| redis::from_redis_value_ref::<String>(key).ok())
                .filter_map(|key| Keyspace::parse_presence(&self.prefix, &key))
                .collect();
            gone.extend(self.leave_all(&connection, &users, &lapsed, &live).await?);
        }
        Ok(gone)
    }

    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(tenant);
        let mut connection = self.connection().await?;
        let live = self.live(&mut connection, now).await?;
        let held = try_join_all(users.iter().map(|user| {
            let mut connection = connection.clone();
            let key = keys.presence(*user);
            async move { connection.zrange::<_, Vec<String>>(key, 0, -1).await.map_err(unavailable) }
        }))
        .await?;
        Ok(shared::held_by_live(users, &held, &live))
    }

    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId, limit: usize) -> Result<Vec<UserId>, StoreError> {
        shared::dm_partners(&mut self.connection().await?, self.keys(tenant).inbox(user), limit).await
    }
}
