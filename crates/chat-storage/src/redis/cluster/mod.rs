//! [`ClusterStore`]: chats on a Redis Cluster, in the cluster layout (`Layout::Cluster`: each
//! chat's keys in one hash slot, each user's in another), events on sharded pub/sub.
//!
//! A write that reaches more than its chat — a send reaches both participants' inboxes, counts and
//! channels — is a chat step (one script in the chat's slot: the message, and a fan-out record of
//! what the users' slots still owe) followed by one user step per user (one script in the user's
//! slot, applying their entry of the record once, in the chat's order). The record stays until
//! every user step ran; whoever writes to the chat next, and every instance's repair pass, finish
//! what a crash left. See docs/ARCHITECTURE.md, "Redis Cluster".

mod fanout;
mod presence;
mod scripts;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chat_domain::{DomainHandle, HistoryWindow, Keyspace, Layout};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{ProtocolVersion, RedisResult};
use tokio::sync::{OnceCell, mpsc};

use super::pubsub::{PubSub, Subscriber};
use super::scripts::Scripts;
use super::store::unavailable;
use crate::StoreError;
use scripts::ClusterScripts;

/// Where the cluster is and how chatd uses it.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Seed nodes (`redis://host:port`); the rest of the cluster is learnt from them.
    pub seeds: Vec<String>,
    /// The first part of every key.
    pub prefix: String,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one command may wait for its answer.
    pub response_timeout: Duration,
    /// How much of each channel's event history is kept for clients that resume.
    pub history: HistoryWindow,
    /// Replicas that must hold a message before a send is acknowledged (`WAIT`; 0: none).
    pub ack_replicas: u32,
    /// How often every instance looks for fan-outs a crash left unfinished.
    pub repair_interval: Duration,
    /// Test-only: where to stop as if killed (see [`Failpoint`]).
    pub failpoint: Option<Failpoint>,
}

/// A place where a test makes chatd stop dead, to show that what it leaves heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// After a write's chat step, before any user step: the process logs
    /// `failpoint after-chat-step reached` and the request never finishes (the test then
    /// kills the process).
    AfterChatStep,
}

impl Failpoint {
    /// The failpoint a name stands for (`after-chat-step`).
    pub fn parse(name: &str) -> Option<Self> {
        (name == "after-chat-step").then_some(Self::AfterChatStep)
    }
}

/// A multiplexed cluster connection, made on first use (so that chatd starts while the cluster is
/// unreachable), which follows MOVED and ASK by itself — and is made anew from the seeds when the
/// cluster's primaries change ([`watch_topology`]): the redis crate keeps reconnecting to a
/// primary that died, and never learns of its promoted replica unless told MOVED.
#[derive(Clone)]
pub(super) struct LazyCluster {
    client: redis::cluster::ClusterClient,
    connection: Arc<std::sync::RwLock<Arc<OnceCell<ClusterConnection>>>>,
}

impl std::fmt::Debug for LazyCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyCluster").field("connected", &self.current().initialized()).finish()
    }
}

impl LazyCluster {
    fn new(client: redis::cluster::ClusterClient) -> Self {
        Self { client, connection: Arc::default() }
    }

    fn current(&self) -> Arc<OnceCell<ClusterConnection>> {
        self.connection.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    async fn get(&self) -> RedisResult<ClusterConnection> {
        self.current().get_or_try_init(|| self.client.get_async_connection()).await.cloned()
    }

    /// Drops the connection: the next use makes a new one, which reads the slots afresh.
    fn reset(&self) {
        *self.connection.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::default();
    }
}

impl Subscriber for LazyCluster {
    fn subscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send {
        let (cluster, name) = (self.clone(), name.to_owned());
        async move { cluster.get().await?.ssubscribe(name).await }
    }

    fn unsubscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send {
        let (cluster, name) = (self.clone(), name.to_owned());
        async move { cluster.get().await?.sunsubscribe(name).await }
    }
}

/// Chats on a Redis Cluster, and the event bus and presence on it.
#[derive(Debug)]
pub struct ClusterStore {
    prefix: String,
    history: HistoryWindow,
    ack_replicas: u32,
    response_timeout: Duration,
    failpoint: Option<Failpoint>,
    data: LazyCluster,
    events: LazyCluster,
    scripts: Scripts,
    cluster_scripts: ClusterScripts,
    pubsub: PubSub<LazyCluster>,
}

impl ClusterStore {
    /// Prepares the connections (made on first use, re-made as nodes come and go) and starts the
    /// repair pass. A bad seed URL is an error at once. Must run inside a Tokio runtime.
    pub fn connect(settings: &ClusterSettings) -> Result<Arc<Self>, StoreError> {
        if settings.seeds.is_empty() {
            return Err(StoreError::Backend("no cluster seed node given".into()));
        }
        let invalid = |e: redis::RedisError| StoreError::Backend(format!("invalid Redis Cluster seed: {e}"));
        let builder = || {
            ClusterClientBuilder::new(settings.seeds.clone())
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.response_timeout)
                .retries(3)
                .min_retry_wait(50)
                .max_retry_wait(500)
        };
        let data = LazyCluster::new(builder().build().map_err(invalid)?);
        let (pushes, received) = mpsc::unbounded_channel();
        let events = LazyCluster::new(
            builder().use_protocol(ProtocolVersion::RESP3).push_sender(pushes).build().map_err(invalid)?,
        );
        let store = Arc::new(Self {
            prefix: settings.prefix.clone(),
            history: settings.history,
            ack_replicas: settings.ack_replicas,
            response_timeout: settings.response_timeout,
            failpoint: settings.failpoint,
            data,
            events: events.clone(),
            scripts: Scripts::new(),
            cluster_scripts: ClusterScripts::new(),
            pubsub: PubSub::new(settings.prefix.clone(), Layout::Cluster, events, received),
        });
        tokio::spawn(fanout::repair_forever(Arc::downgrade(&store), settings.repair_interval));
        tokio::spawn(watch_topology(Arc::downgrade(&store)));
        Ok(store)
    }

    async fn connection(&self) -> Result<ClusterConnection, StoreError> {
        self.data.get().await.map_err(unavailable)
    }

    fn keys(&self, tenant: &DomainHandle) -> Keyspace {
        Keyspace::with_layout(&self.prefix, tenant, Layout::Cluster)
    }

    /// The history window's ttl in ms, as the scripts take it.
    fn history_ttl_ms(&self) -> u64 {
        super::shared::history_ttl_ms(self.history)
    }

    /// The pending-fan-out bucket of the slot `key` is in.
    fn bucket_of(&self, key: &str) -> String {
        Keyspace::fanout_pending(&self.prefix, slot_tag(Slot::for_key(key)))
    }

    /// Waits until `ack_replicas` replicas of the primary owning `key` hold every write made so far
    /// on this connection; an error when they do not in time (the write stays, unacknowledged).
    async fn replicate(&self, connection: &mut ClusterConnection, key: &str) -> Result<(), StoreError> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        if self.ack_replicas == 0 {
            return Ok(());
        }
        let timeout = u64::try_from(self.response_timeout.as_millis() / 2).unwrap_or(1000).max(1);
        let route = Route::with_key(key, SlotAddr::Master);
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.ack_replicas).arg(timeout);
        let acked = connection
            .route_command(wait, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)))
            .await
            .map_err(unavailable)?;
        let acked: u32 = redis::from_redis_value(acked).map_err(super::store::unreadable)?;
        if acked < self.ack_replicas {
            return Err(StoreError::Unavailable(format!(
                "the write reached {acked} of the {} replicas asked for",
                self.ack_replicas
            )));
        }
        Ok(())
    }

    /// Stops here for good when `failpoint` is the one set (tests only).
    async fn failpoint(&self, failpoint: Failpoint) {
        if self.failpoint == Some(failpoint) {
            tracing::warn!("failpoint after-chat-step reached");
            std::future::pending::<()>().await;
        }
    }
}

/// How often each instance reads which primary serves which slots.
const TOPOLOGY_CHECK: Duration = Duration::from_secs(1);

/// Reads the slot map every [`TOPOLOGY_CHECK`]; when its primaries changed (a failover, a slot
/// moved to a new shard) or it cannot be read, makes both connections anew from the seeds, and
/// subscribes every channel again on the new one.
async fn watch_topology(store: std::sync::Weak<ClusterStore>) {
    let mut known: Option<Vec<(u16, u16, String)>> = None;
    let mut ticker = tokio::time::interval(TOPOLOGY_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(store) = store.upgrade() else { return };
        let read = match store.data.get().await {
            Ok(mut connection) => slot_map(&mut connection).await,
            Err(error) => Err(error),
        };
        let changed = match (&known, &read) {
            (Some(known), Ok(read)) => known != read,
            (None, Ok(_)) => false,
            (_, Err(_)) => known.is_some(),
        };
        if changed {
            tracing::warn!(error = ?read.as_ref().err(), "the cluster's primaries changed: reconnecting from the seeds");
            store.data.reset();
            store.events.reset();
            store.pubsub.resubscribe_all().await;
            metrics::counter!("chatd_cluster_reconnects_total").increment(1);
        }
        if let Ok(read) = read {
            known = Some(read);
        }
    }
}

/// Which primary (`host:port`) serves each slot range, in order.
async fn slot_map(connection: &mut ClusterConnection) -> RedisResult<Vec<(u16, u16, String)>> {
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(connection).await?;
    let mut map = Vec::with_capacity(ranges.len());
    for range in ranges {
        let redis::Value::Array(parts) = range else { continue };
        let (Some(first), Some(last), Some(redis::Value::Array(primary))) = (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let first: u16 = redis::from_redis_value_ref(first)?;
        let last: u16 = redis::from_redis_value_ref(last)?;
        let host: String = primary.first().map(redis::from_redis_value_ref).transpose()?.unwrap_or_default();
        let port: u16 = primary.get(1).map(redis::from_redis_value_ref).transpose()?.unwrap_or_default();
        map.push((first, last, format!("{host}:{port}")));
    }
    map.sort_unstable();
    Ok(map)
}

/// For each of the 16,384 hash slots, a short string in that slot: the hash tag that puts a key in
/// the slot (found once, by trying numbers in base 36).
fn slot_tags() -> &'static HashMap<Slot, String> {
    static TAGS: OnceLock<HashMap<Slot, String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = HashMap::with_capacity(SLOTS);
        let mut n: u64 = 0;
        while tags.len() < SLOTS {
            let tag = base36(n);
            tags.entry(Slot::for_key(&tag)).or_insert(tag);
            n += 1;
        }
        tags
    })
}

/// The tag of [`slot_tags`] for `slot`.
fn slot_tag(slot: Slot) -> &'static str {
    slot_tags().get(&slot).map(String::as_str).unwrap_or_default()
}

/// Hash slots in a Redis Cluster.
const SLOTS: usize = 16_384;

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_tag_in_it() {
        assert_eq!(slot_tags().len(), SLOTS);
        for chat_key in ["p:messages:h:{dm:1-2}", "p:messages:h:{topic:7}:fanout", "x"] {
            let bucket = Keyspace::fanout_pending("p", slot_tag(Slot::for_key(chat_key)));
            assert_eq!(Slot::for_key(&bucket), Slot::for_key(chat_key), "{bucket}");
        }
    }
}
