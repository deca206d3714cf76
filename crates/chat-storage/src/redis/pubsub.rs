//! Redis pub/sub for the event bus: one RESP3 connection per process that carries every
//! subscription, re-subscribes by itself after Redis comes back, and hands each message to the sink.
//! On a cluster the subscriptions are sharded (`SSUBSCRIBE`, to the node owning each channel's
//! slot) and follow their slots when they move.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chat_domain::{Channel, DomainHandle, Keyspace, Layout};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{Mutex, mpsc};

use super::store::{RedisSettings, unavailable};
use crate::StoreError;
use crate::event_record;
use crate::events::SinkSlot;

/// A connection that subscribes: classic pub/sub on one server, sharded on a cluster.
pub(super) trait Subscriber: Clone + Debug + Send + Sync + 'static {
    /// Starts hearing channel `name`.
    fn subscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send;
    /// Stops hearing channel `name`.
    fn unsubscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send;
}

impl Subscriber for ConnectionManager {
    fn subscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send {
        let (mut connection, name) = (self.clone(), name.to_owned());
        async move { ConnectionManager::subscribe(&mut connection, name).await }
    }

    fn unsubscribe(&self, name: &str) -> impl Future<Output = RedisResult<()>> + Send {
        let (mut connection, name) = (self.clone(), name.to_owned());
        async move { ConnectionManager::unsubscribe(&mut connection, name).await }
    }
}

/// This process's subscriptions.
#[derive(Debug)]
pub(super) struct PubSub<C = ConnectionManager> {
    prefix: String,
    /// How channels are named (tagged on a cluster).
    layout: Layout,
    connection: C,
    /// How many local subscribers each channel has; 0 while an UNSUBSCRIBE is owed (see
    /// [`Self::unsubscribe`]). Held across the SUBSCRIBE/UNSUBSCRIBE round trip, so that changes to
    /// one channel reach Redis in the order they were made.
    counts: Arc<Mutex<HashMap<String, usize>>>,
    pub(super) sink: Arc<SinkSlot>,
}

impl PubSub {
    /// Prepares the connection (made on first use) and starts the task that reads messages.
    pub(super) fn connect(settings: &RedisSettings) -> Result<Self, StoreError> {
        let invalid = |e: redis::RedisError| StoreError::Backend(format!("invalid Redis URL: {e}"));
        let info = settings.url.as_str().into_connection_info().map_err(invalid)?;
        let resp3 = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3)).map_err(invalid)?;
        let (pushes, received) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_push_sender(pushes)
            .set_automatic_resubscription();
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self::new(settings.prefix.clone(), Layout::Standalone, connection, received))
    }
}

impl<C: Subscriber> PubSub<C> {
    /// Subscriptions on `connection`, whose pushed messages arrive on `received`; starts the task
    /// that reads them.
    pub(super) fn new(
        prefix: String,
        layout: Layout,
        connection: C,
        received: mpsc::UnboundedReceiver<PushInfo>,
    ) -> Self {
        let sink = Arc::new(SinkSlot::default());
        tokio::spawn(read_messages(received, prefix.clone(), sink.clone()));
        Self { prefix, layout, connection, counts: Arc::default(), sink }
    }

    pub(super) async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let name = Keyspace::with_layout(&self.prefix, tenant, self.layout).channel(channel);
        let mut counts = self.counts.lock().await;
        let count = counts.get(&name).copied().unwrap_or(0);
        if count == 0 {
            self.connection.subscribe(&name).await.map_err(unavailable)?;
        }
        counts.insert(name, count + 1);
        Ok(())
    }

    /// Subscribes every channel that has local subscribers again (on a connection made anew, which
    /// holds none); a channel that fails is tried at the next call.
    pub(super) async fn resubscribe_all(&self) {
        let counts = self.counts.lock().await;
        for (name, _) in counts.iter().filter(|(_, count)| **count > 0) {
            if let Err(error) = self.connection.subscribe(name).await {
                tracing::warn!(%error, name, "subscribing again failed");
            }
        }
    }

    /// One local subscriber leaves `channel`; the last one unsubscribes in Redis.
    ///
    /// The subscriber is gone whatever Redis answers (the hub forgot it before asking). So when
    /// the UNSUBSCRIBE fails, the count goes to 0 but the entry stays, an UNSUBSCRIBE still owed:
    /// Redis may still hold the subscription, and the connection manager, which counts a channel
    /// as subscribed until Redis confirms otherwise, would subscribe it again after reconnecting,
    /// for nobody. A task sends the UNSUBSCRIBE once Redis takes it ([`settle`]); a subscribe in
    /// the meantime finds the count at 0 and subscribes for real, which ends the debt.
    pub(super) async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let name = Keyspace::with_layout(&self.prefix, tenant, self.layout).channel(channel);
        let mut counts = self.counts.lock().await;
        match counts.get(&name).copied() {
            Some(0 | 1) => match self.connection.unsubscribe(&name).await {
                Ok(()) => {
                    counts.remove(&name);
                }
                Err(error) => {
                    counts.insert(name.clone(), 0);
                    tokio::spawn(settle(Arc::downgrade(&self.counts), self.connection.clone(), name));
                    return Err(unavailable(error));
                }
            },
            Some(count) => {
                counts.insert(name, count - 1);
            }
            None => {}
        }
        Ok(())
    }
}

/// The first pause before an owed UNSUBSCRIBE is tried again; it doubles up to [`SETTLE_PAUSE_MAX`].
const SETTLE_PAUSE: Duration = Duration::from_millis(100);
const SETTLE_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Sends the UNSUBSCRIBE owed for `name` (see [`PubSub::unsubscribe`]) until Redis takes it, unless
/// the channel has subscribers again (or is settled already), or the store is gone.
async fn settle<C: Subscriber>(counts: Weak<Mutex<HashMap<String, usize>>>, connection: C, name: String) {
    let mut pause = SETTLE_PAUSE;
    loop {
        tokio::time::sleep(pause).await;
        let Some(counts) = counts.upgrade() else { return };
        let mut counts = counts.lock().await;
        if counts.get(&name) != Some(&0) {
            return;
        }
        if connection.unsubscribe(&name).await.is_ok() {
            counts.remove(&name);
            return;
        }
        pause = (pause * 2).min(SETTLE_PAUSE_MAX);
    }
}

/// Reads pushed messages until the connection manager goes away.
async fn read_messages(mut received: mpsc::UnboundedReceiver<PushInfo>, prefix: String, sink: Arc<SinkSlot>) {
    while let Some(push) = received.recv().await {
        if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
            continue;
        }
        let [Value::BulkString(name), Value::BulkString(payload)] = push.data.as_slice() else {
            continue;
        };
        metrics::counter!("chatd_bus_events_received_total").increment(1);
        let Some((tenant, channel)) = std::str::from_utf8(name).ok().and_then(|n| Keyspace::parse_channel(&prefix, n))
        else {
            continue;
        };
        match event_record::decode_published(payload) {
            Ok((position, event)) => sink.deliver(&tenant, channel, &Arc::new(event), position),
            Err(error) => tracing::warn!(%error, "dropping an unreadable event"),
        }
    }
}
