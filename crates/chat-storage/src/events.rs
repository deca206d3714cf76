//! Realtime fan-out below the use cases: [`EventBus`] publishes an event to pub/sub channels and
//! keeps this process subscribed to the channels its connections need; whatever arrives is handed
//! to the [`EventSink`] (the realtime hub).
//!
//! Changes to chats are published by the store itself, inside the same atomic operation as the
//! write, so that every instance hears the events of one chat in the order they happened.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chat_domain::{Channel, ChatEvent, DomainHandle};

use crate::StoreError;

/// Receives every event that arrives on a channel this process is subscribed to. Called from the
/// bus's own task (Redis) or from the publisher (memory): it must not block.
pub trait EventSink: Send + Sync + Debug {
    /// `event` arrived on `channel` of `tenant`.
    fn deliver(&self, tenant: &DomainHandle, channel: Channel, event: &Arc<ChatEvent>);
}

/// Publish and subscribe, across every chatd instance that shares the backend.
#[async_trait]
pub trait EventBus: Send + Sync + Debug {
    /// Sets the one sink deliveries go to. A second call is ignored.
    fn attach(&self, sink: Arc<dyn EventSink>);

    /// Publishes `event` to `channels` (used for events that are not writes: typing, presence).
    async fn publish(&self, tenant: &DomainHandle, channels: &[Channel], event: &ChatEvent) -> Result<(), StoreError>;

    /// Starts hearing `channel` (counted: every `subscribe` needs its `unsubscribe`). Returns once
    /// the subscription is in place, so nothing published afterwards is missed.
    async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError>;

    /// Stops hearing `channel` once every subscriber of this process has left it.
    async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError>;
}

/// The sink slot both backends share.
#[derive(Debug, Default)]
pub(crate) struct SinkSlot(OnceLock<Arc<dyn EventSink>>);

impl SinkSlot {
    pub(crate) fn attach(&self, sink: Arc<dyn EventSink>) {
        if self.0.set(sink).is_err() {
            tracing::warn!("an event sink is already attached; ignoring another");
        }
    }

    pub(crate) fn deliver(&self, tenant: &DomainHandle, channel: Channel, event: &Arc<ChatEvent>) {
        if let Some(sink) = self.0.get() {
            sink.deliver(tenant, channel, event);
        }
    }
}
