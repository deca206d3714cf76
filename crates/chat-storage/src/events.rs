//! Realtime fan-out below the use cases: [`EventBus`] publishes an event to pub/sub channels and
//! keeps this process subscribed to the channels its connections need; whatever arrives is handed
//! to the [`EventSink`] (the realtime hub).
//!
//! Changes to chats are published by the store itself, inside the same atomic operation as the
//! write, so that every instance hears the events of one chat in the order they happened. Those
//! durable events are also recorded in each channel's history with their [`Position`], within the
//! [`HistoryWindow`], so that a client that reconnects gets what it missed ([`EventBus::replay`]).

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chat_domain::{Channel, ChatEvent, DomainHandle, Position};

use crate::StoreError;

/// Receives every event that arrives on a channel this process is subscribed to. Called from the
/// bus's own task (Redis) or from the publisher (memory): it must not block.
pub trait EventSink: Send + Sync + Debug {
    /// `event` arrived on `channel` of `tenant`, at `position` in the channel's history if it is
    /// durable.
    fn deliver(&self, tenant: &DomainHandle, channel: Channel, event: &Arc<ChatEvent>, position: Option<Position>);
}

/// Publish and subscribe, across every chatd instance that shares the backend.
#[async_trait]
pub trait EventBus: Send + Sync + Debug {
    /// Sets the one sink deliveries go to (a hub attaches itself). One backend feeds one hub: a
    /// second sink is refused, and the first keeps receiving.
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached>;

    /// Publishes `event` to `channels` (used for events that are not writes: typing, presence).
    async fn publish(&self, tenant: &DomainHandle, channels: &[Channel], event: &ChatEvent) -> Result<(), StoreError>;

    /// Starts hearing `channel` (counted: every `subscribe` needs its `unsubscribe`). Returns once
    /// the subscription is in place, so nothing published afterwards is missed.
    async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError>;

    /// Stops hearing `channel` once every subscriber of this process has left it.
    async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError>;

    /// `channel`'s position now, and, when `since` is given, up to `limit` of the durable events
    /// after it, oldest first. Atomic: no event is both after the position and missing from the
    /// list it starts. A channel that never had an event gets its epoch here.
    async fn replay(
        &self,
        tenant: &DomainHandle,
        channel: Channel,
        since: Option<Position>,
        limit: usize,
    ) -> Result<Replay, StoreError>;
}

/// [`EventBus::attach`] refused a second sink: this bus already delivers to another (a hub). Each
/// hub needs a backend of its own; share one hub instead of making a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this event bus already delivers to a hub: one backend feeds one hub")]
pub struct AlreadyAttached;

/// What [`EventBus::replay`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The channel's position at the time of reading (its last durable event).
    pub now: Position,
    /// The events after `since` (at most `limit`), each with its position; `None` when `since` was
    /// not given, or when the events after it cannot all be had: `since` is from another epoch or
    /// from the future, or some of the events after it have left the history window.
    pub missed: Option<Vec<(Position, ChatEvent)>>,
}

/// The checks of a resume from `since` when the channel is at `now` (the memory store's; the Redis
/// replay script makes the same ones in Lua): `Some` with the first sequence number to read, or
/// `None` when the events after `since` cannot all be had by count or epoch (the caller then checks
/// that the first of them is still kept).
pub(crate) fn resumable(since: Position, now: Position, window: chat_domain::HistoryWindow) -> Option<u64> {
    let within = since.epoch == now.epoch && since.seq <= now.seq && now.seq - since.seq <= window.size;
    within.then_some(since.seq + 1)
}

/// The sink slot both backends share.
#[derive(Debug, Default)]
pub(crate) struct SinkSlot(OnceLock<Arc<dyn EventSink>>);

impl SinkSlot {
    pub(crate) fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached> {
        self.0.set(sink).map_err(|_| AlreadyAttached)
    }

    pub(crate) fn deliver(
        &self,
        tenant: &DomainHandle,
        channel: Channel,
        event: &Arc<ChatEvent>,
        position: Option<Position>,
    ) {
        if let Some(sink) = self.0.get() {
            sink.deliver(tenant, channel, event, position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Ignore;

    impl EventSink for Ignore {
        fn deliver(&self, _: &DomainHandle, _: Channel, _: &Arc<ChatEvent>, _: Option<Position>) {}
    }

    #[test]
    fn a_second_sink_is_refused() {
        let slot = SinkSlot::default();
        assert_eq!(slot.attach(Arc::new(Ignore)), Ok(()));
        assert_eq!(slot.attach(Arc::new(Ignore)), Err(AlreadyAttached));
    }
}
