//! Finishing what a chat step owes other slots: each pending fan-out record of a chat is applied
//! to its users' slots in the chat's order (each user step once: it remembers the last number it
//! applied for the chat), then dropped. The writer does it at once; a crash between the steps
//! leaves the record, which the chat's next write or any instance's repair pass finishes.

use std::sync::Weak;
use std::time::Duration;

use chat_domain::{Channel, Chat, DomainHandle, Keyspace, Timestamp, UserId};
use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt};
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ClusterStore, slot_tags};
use crate::StoreError;
use crate::redis::store::unavailable;

/// A record this young may still be in its writer's hands: the repair pass leaves it.
const REPAIR_GRACE: Duration = Duration::from_secs(2);

/// Bucket reads a repair pass keeps in flight.
const REPAIR_IN_FLIGHT: usize = 256;

/// Chats with pending records one bucket read returns at most.
const REPAIR_CHATS: usize = 100;

/// Whom a record's entry is for (the rest of it is the user step's to read).
#[derive(Deserialize)]
struct Entry {
    u: String,
}

impl ClusterStore {
    /// Applies `pending` — a chat's records as `HGETALL` gives them (`[f, record, …]`) — in order,
    /// then drops those applied. Stops at the first that fails (a later one must not overtake it
    /// for any user); what is left waits for the next write or the repair pass.
    pub(super) async fn complete(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        pending: Vec<String>,
    ) -> Result<(), StoreError> {
        let keys = self.keys(tenant);
        let mut records: Vec<(u64, String)> =
            pending.chunks_exact(2).filter_map(|pair| Some((pair[0].parse().ok()?, pair[1].clone()))).collect();
        records.sort_unstable_by_key(|(f, _)| *f);
        let suffix = Keyspace::chat_suffix(chat);
        let connection = self.connection().await?;
        let mut applied = Vec::new();
        let mut outcome = Ok(());
        for (f, record) in &records {
            match self.apply_record(&connection, &keys, &suffix, *f, record).await {
                Ok(()) => applied.push(*f),
                Err(StoreError::Backend(error)) if error.starts_with(UNREADABLE) => {
                    tracing::error!(%error, %suffix, f, "dropping an unreadable fan-out record");
                    applied.push(*f);
                }
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        if !applied.is_empty() {
            let fanout = keys.fanout(chat);
            let mut call = self.cluster_scripts.fanout_done.prepare_invoke();
            call.key(&fanout).key(self.bucket_of(&fanout)).arg(Keyspace::fanout_member(tenant, chat));
            for f in applied {
                call.arg(f);
            }
            call.invoke_async::<()>(&mut connection.clone()).await.map_err(unavailable)?;
        }
        outcome
    }

    /// Runs the user steps of one record, its users' slots at once.
    async fn apply_record(
        &self,
        connection: &ClusterConnection,
        keys: &Keyspace,
        suffix: &str,
        f: u64,
        record: &str,
    ) -> Result<(), StoreError> {
        let unreadable = |error: String| StoreError::Backend(format!("{UNREADABLE}: {error}"));
        let entries: Vec<Box<RawValue>> = serde_json::from_str(record).map_err(|e| unreadable(e.to_string()))?;
        let now = Timestamp::now().epoch_millis();
        let steps = entries.iter().map(|entry| {
            let user = serde_json::from_str::<Entry>(entry.get())
                .map_err(|e| e.to_string())
                .and_then(|who| UserId::parse(&who.u).map_err(|e| e.to_string()))
                .map_err(unreadable);
            let mut connection = connection.clone();
            async move {
                let user = user?;
                let channel = Channel::User(user);
                self.cluster_scripts
                    .user_apply
                    .key(keys.unread(user))
                    .key(keys.inbox(user))
                    .key(keys.activity(user))
                    .key(keys.event_position(channel))
                    .key(keys.event_history(channel))
                    .arg(suffix)
                    .arg(f)
                    .arg(entry.get())
                    .arg(self.history.size)
                    .arg(self.history_ttl_ms())
                    .arg(keys.channel(channel))
                    .arg(now)
                    .invoke_async::<i64>(&mut connection)
                    .await
                    .map_err(unavailable)
            }
        });
        let applied = try_join_all(steps).await?;
        if applied.contains(&1) {
            metrics::counter!("chatd_fanout_steps_total").increment(applied.iter().filter(|a| **a == 1).count() as u64);
        }
        Ok(())
    }

    /// Finishes every fan-out that has waited longer than [`REPAIR_GRACE`], in every slot. Returns
    /// how many chats it finished.
    pub(super) async fn repair(&self) -> Result<usize, StoreError> {
        let mut connection = self.connection().await?;
        let cutoff = Timestamp::now().epoch_millis() - i64::try_from(REPAIR_GRACE.as_millis()).unwrap_or(0);
        let buckets: Vec<String> =
            slot_tags().values().map(|tag| Keyspace::fanout_pending(&self.prefix, tag)).collect();
        // One command per bucket (a cluster pipeline must stay in one slot), many in flight.
        let reads = futures_util::stream::iter(buckets).map(|bucket| {
            let mut connection = connection.clone();
            async move {
                connection
                    .zrangebyscore_limit::<_, _, _, Vec<String>>(bucket, "-inf", cutoff, 0, REPAIR_CHATS as isize)
                    .await
                    .map_err(unavailable)
            }
        });
        let waiting: Vec<Vec<String>> = reads.buffer_unordered(REPAIR_IN_FLIGHT).try_collect().await?;
        let waiting = waiting.into_iter().flatten();
        let mut finished = 0;
        for member in waiting {
            let Some((tenant, chat)) = Keyspace::parse_fanout_member(&member) else {
                tracing::warn!(member, "an unreadable pending fan-out entry");
                continue;
            };
            let pending: Vec<String> = self
                .cluster_scripts
                .fanout_pending
                .key(self.keys(&tenant).fanout(chat))
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            if pending.is_empty() {
                // Finished meanwhile by its writer; only the bucket entry is left.
                let fanout = self.keys(&tenant).fanout(chat);
                self.cluster_scripts
                    .fanout_done
                    .key(&fanout)
                    .key(self.bucket_of(&fanout))
                    .arg(&member)
                    .arg("0")
                    .invoke_async::<()>(&mut connection)
                    .await
                    .map_err(unavailable)?;
                continue;
            }
            // One chat whose users' slots are out of reach does not hold up the others.
            match self.complete(&tenant, chat, pending).await {
                Ok(()) => {
                    finished += 1;
                    metrics::counter!("chatd_fanout_repaired_total").increment(1);
                }
                Err(error) => tracing::warn!(%error, member, "a fan-out is still left; trying again later"),
            }
        }
        Ok(finished)
    }
}

/// What an unreadable record's error starts with (it is dropped, not retried forever).
const UNREADABLE: &str = "an unreadable fan-out record";

/// Runs [`ClusterStore::repair`] every `every` (the first after one interval) while the store
/// lives.
pub(super) async fn repair_forever(store: Weak<ClusterStore>, every: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(store) = store.upgrade() else { return };
        match store.repair().await {
            Ok(0) => {}
            Ok(finished) => tracing::info!(finished, "finished fan-outs a crash or an outage had left"),
            Err(error) => tracing::warn!(%error, "the fan-out repair pass failed; trying again later"),
        }
    }
}
