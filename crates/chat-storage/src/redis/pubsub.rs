//! Redis pub/sub for the event bus: one RESP3 connection per process that carries every
//! subscription, re-subscribes by itself after Redis comes back, and hands each message to the sink.

use std::collections::HashMap;
use std::sync::Arc;

use chat_domain::{Channel, DomainHandle, Keyspace};
use deadpool_redis::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use deadpool_redis::redis::{self, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Mutex, mpsc};

use super::store::{RedisSettings, unavailable};
use crate::StoreError;
use crate::event_record;
use crate::events::SinkSlot;

/// This process's subscriptions.
#[derive(Debug)]
pub(super) struct PubSub {
    prefix: String,
    connection: ConnectionManager,
    /// How many local subscribers each channel has. Held across the SUBSCRIBE/UNSUBSCRIBE round
    /// trip, so that changes to one channel reach Redis in the order they were made.
    counts: Mutex<HashMap<String, usize>>,
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
        let sink = Arc::new(SinkSlot::default());
        tokio::spawn(read_messages(received, settings.prefix.clone(), sink.clone()));
        Ok(Self { prefix: settings.prefix.clone(), connection, counts: Mutex::new(HashMap::new()), sink })
    }

    pub(super) async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let name = Keyspace::new(&self.prefix, tenant).channel(channel);
        let mut counts = self.counts.lock().await;
        let count = counts.get(&name).copied().unwrap_or(0);
        if count == 0 {
            self.connection.clone().subscribe(&name).await.map_err(unavailable)?;
        }
        counts.insert(name, count + 1);
        Ok(())
    }

    pub(super) async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let name = Keyspace::new(&self.prefix, tenant).channel(channel);
        let mut counts = self.counts.lock().await;
        match counts.get(&name).copied() {
            Some(1) => {
                counts.remove(&name);
                self.connection.clone().unsubscribe(&name).await.map_err(unavailable)?;
            }
            Some(count) => {
                counts.insert(name, count - 1);
            }
            None => {}
        }
        Ok(())
    }
}

/// Reads pushed messages until the connection manager goes away.
async fn read_messages(mut received: mpsc::UnboundedReceiver<PushInfo>, prefix: String, sink: Arc<SinkSlot>) {
    while let Some(push) = received.recv().await {
        if push.kind != PushKind::Message {
            continue;
        }
        let [Value::BulkString(name), Value::BulkString(payload)] = push.data.as_slice() else {
            continue;
        };
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
