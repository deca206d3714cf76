//! The realtime hub: this process's live connections, which channels each listens to, and the
//! fan-out of every event the bus delivers to the connections that should hear it; and resuming:
//! a connection that starts from a position gets the durable events it missed, then the live
//! stream, with no gap and no duplicate (each channel's positions tell what it already has).
//!
//! The registry is a mutex-guarded map rather than a task owning it, because delivery is a short
//! synchronous fan-out (`try_send` into each connection's bounded queue) that a task would only
//! add a hop and an allocation to; the lock is never held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};

use chat_domain::{
    Caller, Channel, Chat, ChatEvent, ChatTarget, DomainHandle, Position, PresenceStatus, Timestamp, TopicId, UserId,
};
use chat_storage::{AlreadyAttached, EventBus, EventSink, Joined, PresenceStore, Replay, StoreError};
use tokio::sync::{Notify, watch};

use crate::vouching::Vouching;
use crate::{PresenceTtl, ServiceError};

/// Limits of the hub, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSettings {
    /// Events queued for one connection before it counts as too slow and is dropped.
    pub queue_capacity: NonZeroUsize,
    /// How long this instance vouches for its users' presence; it renews every third of it, and a
    /// user whose instances all stop renewing becomes inactive within about this long.
    pub presence_ttl: PresenceTtl,
    /// Open connections one user may have in this process.
    pub connections_per_user: usize,
    /// Open connections this process accepts in all.
    pub connections_total: usize,
    /// Topics one connection may hear at once (each is a pub/sub subscription of this instance
    /// and an entry in the hub's registry, so a client must not make them grow without bound).
    pub topics_per_connection: usize,
    /// The most missed events one resume delivers (the history window's size).
    pub replay_limit: usize,
    /// How many of a user's most recent inbox entries are looked at for the DM partners who hear
    /// their presence and whose presence a new connection hears.
    pub presence_partners: NonZeroUsize,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            queue_capacity: const { NonZeroUsize::new(256).expect("not zero") },
            presence_ttl: PresenceTtl::DEFAULT,
            connections_per_user: 20,
            connections_total: 100_000,
            topics_per_connection: 100,
            replay_limit: 1_000,
            presence_partners: const { NonZeroUsize::new(1_000).expect("not zero") },
        }
    }
}

/// The hub of this process: cheap to clone, shared by every connection.
///
/// ```
/// use std::sync::Arc;
///
/// use chat_domain::{Caller, Channel, ChatEvent, ChatTarget, DomainHandle, UserId};
/// use chat_service::{Hub, HubSettings, ResumeFrom};
/// use chat_storage::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = Arc::new(MemoryStore::new());
/// let hub = Hub::new(backend.clone(), backend, HubSettings::default())?;
/// let tenant = DomainHandle::parse("example")?;
/// let (one, two) = (UserId::new(1)?, UserId::new(2)?);
/// let (mut listening, _) = hub.connect(&tenant, Caller::user_with_every_topic(two), ResumeFrom::Now).await?;
///
/// // User 1, on a connection of their own, types to user 2, who hears it on their channel.
/// let (typing, _) = hub.connect(&tenant, Caller::user_with_every_topic(one), ResumeFrom::Now).await?;
/// typing.typing(ChatTarget::User(two)).await?;
/// let heard = loop {
///     let delivery = listening.next_event().await.expect("the connection is open");
///     if let ChatEvent::Typing { .. } = delivery.event.as_ref() {
///         break delivery;
///     }
/// };
/// assert_eq!(heard.channel, Channel::User(two));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    bus: Arc<dyn EventBus>,
    /// This instance's name in presence, and the store it is kept in.
    vouching: Vouching,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    settings: HubSettings,
    stopping: watch::Sender<bool>,
    maintenance: Once,
}

#[derive(Debug, Default)]
struct Registry {
    connections: HashMap<u64, Listener>,
    listeners: HashMap<(DomainHandle, Channel), HashSet<u64>>,
    /// Local connections per user.
    present: HashMap<(DomainHandle, UserId), usize>,
}

#[derive(Debug)]
struct Listener {
    user: UserId,
    /// Bounded; flume's queue allocates as events arrive (tokio's takes 2 KiB per connection
    /// up front, most of an idle connection's memory besides its socket).
    queue: flume::Sender<Delivery>,
    overflowed: Arc<Notify>,
    /// Until the presence snapshot is queued: the users whose presence events this connection was
    /// handed meanwhile (they are newer than anything the snapshot could say about them).
    heard_presence: Option<HashSet<UserId>>,
}

impl Registry {
    fn listen(&mut self, id: u64, tenant: &DomainHandle, channel: Channel) {
        self.listeners.entry((tenant.clone(), channel)).or_default().insert(id);
    }

    fn forget(&mut self, id: u64, tenant: &DomainHandle, channel: Channel) {
        let key = (tenant.clone(), channel);
        if let Some(ids) = self.listeners.get_mut(&key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.listeners.remove(&key);
            }
        }
    }
}

/// Hands bus deliveries to the hub without keeping it alive.
#[derive(Debug)]
struct Deliveries(Weak<HubInner>);

impl EventSink for Deliveries {
    fn deliver(&self, tenant: &DomainHandle, channel: Channel, event: &Arc<ChatEvent>, position: Option<Position>) {
        if let Some(hub) = self.0.upgrade() {
            hub.fan_out(tenant, &Delivery { channel, event: event.clone(), position });
        }
    }
}

/// An event for a connection: the channel it came on, and its position there if it is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The channel it came on.
    pub channel: Channel,
    /// What happened.
    pub event: Arc<ChatEvent>,
    /// Where it is in the channel's history (durable events only).
    pub position: Option<Position>,
}

/// Where a client asks to resume a channel from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// Nothing to resume: start with the live stream.
    Now,
    /// After this position.
    After(Position),
    /// A position chatd cannot have made: treated as one outside the window.
    Unreadable,
}

impl ResumeFrom {
    /// The client's `since`, if it gave one.
    pub fn parse(since: Option<&str>) -> Self {
        match since.map(str::parse::<Position>) {
            None => Self::Now,
            Some(Ok(position)) => Self::After(position),
            Some(Err(_)) => Self::Unreadable,
        }
    }

    /// Whether the client asked to resume at all.
    pub fn asked(self) -> bool {
        self != Self::Now
    }

    fn position(self) -> Option<Position> {
        match self {
            Self::After(position) => Some(position),
            Self::Now | Self::Unreadable => None,
        }
    }
}

/// Where a channel stood when a connection started hearing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// The channel's position then: the live events after it follow.
    pub position: Position,
    /// When the client asked to resume: `Some(n)` when the n events it missed come first, `None`
    /// when they could not be had (outside the window, another epoch, unreadable) and none come.
    pub missed: Option<Option<usize>>,
}

/// The durable events a client missed, read without a connection (`Hub::catch_up`).
#[derive(Debug, Clone, PartialEq)]
pub struct CatchUp {
    /// The events after the position asked for, oldest first, with their positions.
    pub events: Vec<(Position, ChatEvent)>,
    /// Where to continue from: the last event's position, or the channel's when none.
    pub position: Position,
    /// Whether the events after the position asked for could all be had; when not, `events` is
    /// empty and the client reloads.
    pub recovered: bool,
}

impl HubInner {
    /// The DM partners who hear `user`'s presence (and whose presence `user` hears): those among
    /// their most recent inbox entries.
    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId) -> Result<Vec<UserId>, StoreError> {
        self.vouching.store().dm_partners(tenant, user, self.settings.presence_partners.get()).await
    }

    /// Tells the users who share a DM with `user` that their status changed.
    async fn announce(&self, tenant: &DomainHandle, user: UserId, status: PresenceStatus) {
        match self.dm_partners(tenant, user).await {
            Ok(partners) => self.announce_to(tenant, user, status, &partners).await,
            Err(error) => tracing::warn!(%error, "cannot announce presence"),
        }
    }

    /// Tells `partners` that `user`'s status changed.
    async fn announce_to(&self, tenant: &DomainHandle, user: UserId, status: PresenceStatus, partners: &[UserId]) {
        let channels: Vec<Channel> = partners.iter().copied().map(Channel::User).collect();
        if channels.is_empty() {
            return;
        }
        if let Err(error) = self.bus.publish(tenant, &channels, &ChatEvent::Presence { user, status }).await {
            tracing::warn!(%error, "cannot announce presence");
        }
    }

    /// `user`'s first connection here: records it, and tells `partners` when the user just became
    /// active.
    async fn join(&self, tenant: &DomainHandle, user: UserId, partners: &[UserId]) -> Result<(), StoreError> {
        let lapsed = {
            let name = self.vouching.name().await?;
            match self.vouching.store().join(tenant, &[user], &name).await? {
                Joined::Arrived(arrived) => {
                    if arrived.contains(&user) {
                        self.announce_to(tenant, user, PresenceStatus::Active, partners).await;
                    }
                    return Ok(());
                }
                Joined::Lapsed => Arc::clone(&name),
            }
        };
        // The user is in the registry already: starting over joins them with everyone else.
        self.start_over(&lapsed).await;
        Ok(())
    }

    /// After this instance's name `lapsed` (the process stalled past its deadline, or Redis lost
    /// its data): vouches under a new one and joins every user here again, announcing those who
    /// had turned inactive meanwhile.
    async fn start_over(&self, lapsed: &str) {
        // The guard keeps joins and leaves waiting until every user here has joined again.
        let (fresh, _guard) = match self.vouching.start_over(lapsed).await {
            Ok(Some(started)) => started,
            Ok(None) => return,
            Err(error) => return tracing::warn!(%error, "cannot renew presence"),
        };
        let mut by_tenant: HashMap<DomainHandle, Vec<UserId>> = HashMap::new();
        for (tenant, user) in self.registry().present.keys() {
            by_tenant.entry(tenant.clone()).or_default().push(*user);
        }
        for (tenant, users) in by_tenant {
            match self.vouching.store().join(&tenant, &users, &fresh).await {
                Ok(Joined::Arrived(arrived)) => {
                    for user in arrived {
                        self.announce(&tenant, user, PresenceStatus::Active).await;
                    }
                }
                // Lapsed again already: the next renewal starts over once more.
                Ok(Joined::Lapsed) => {}
                Err(error) => tracing::warn!(%error, "cannot renew presence"),
            }
        }
    }

    /// One round of presence upkeep: renew this instance (one write, however many users it holds),
    /// and sweep the users of instances that lapsed (one that died).
    async fn maintain_presence(&self) {
        match self.vouching.renew().await {
            Ok(None) => {}
            Ok(Some(lapsed)) => self.start_over(&lapsed).await,
            Err(error) => tracing::warn!(%error, "cannot renew presence"),
        }
        match self.vouching.store().expire(Timestamp::now()).await {
            Ok(gone) => {
                for (tenant, user) in gone {
                    self.announce(&tenant, user, PresenceStatus::Inactive).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot expire presence"),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fan_out(&self, tenant: &DomainHandle, delivery: &Delivery) {
        let mut registry = self.registry();
        let Registry { connections, listeners, .. } = &mut *registry;
        let Some(ids) = listeners.get(&(tenant.clone(), delivery.channel)) else {
            return;
        };
        let mut too_slow = Vec::new();
        // Someone typing in a topic does not need to hear it on their own connections.
        let (typist, presence_of) = match delivery.event.as_ref() {
            ChatEvent::Typing { user, .. } => (Some(*user), None),
            ChatEvent::Presence { user, .. } => (None, Some(*user)),
            _ => (None, None),
        };
        for id in ids {
            let Some(listener) = connections.get_mut(id) else {
                continue;
            };
            if typist == Some(listener.user) {
                continue;
            }
            if let (Some(user), Some(heard)) = (presence_of, listener.heard_presence.as_mut()) {
                heard.insert(user);
            }
            if listener.queue.try_send(delivery.clone()).is_err() {
                // Full (the client stopped reading) or closed (it is going away): either way it
                // gets nothing more, and a full one is told to close.
                listener.overflowed.notify_one();
                too_slow.push(*id);
            }
        }
        metrics::counter!("chatd_events_delivered_total").increment(ids.len().saturating_sub(too_slow.len()) as u64);
        if !too_slow.is_empty() {
            metrics::counter!("chatd_connections_dropped_slow_total").increment(too_slow.len() as u64);
        }
        for id in too_slow {
            if let Some(listener) = connections.remove(&id) {
                drop(listener);
            }
        }
    }

    /// Queues, for new connection `id`, a `presence` `active` event for each of the user's DM
    /// `partners` who is active now (the most recently sent-to first, at most half the queue), so
    /// that a client knows who is online without waiting for changes. A partner whose presence
    /// event reached the connection in the meantime is left out: that event is newer.
    async fn send_presence_snapshot(&self, tenant: &DomainHandle, id: u64, partners: &[UserId]) {
        let partners = &partners[..partners.len().min(self.settings.queue_capacity.get() / 2)];
        let active = self.vouching.store().active(tenant, partners, Timestamp::now()).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the presence snapshot");
            Vec::new()
        });
        let mut registry = self.registry();
        let Some(listener) = registry.connections.get_mut(&id) else { return };
        let heard = listener.heard_presence.take().unwrap_or_default();
        for partner in active.into_iter().filter(|partner| !heard.contains(partner)) {
            let event = Arc::new(ChatEvent::Presence { user: partner, status: PresenceStatus::Active });
            let delivery = Delivery { channel: Channel::User(listener.user), event, position: None };
            if listener.queue.try_send(delivery).is_err() {
                break;
            }
        }
    }
}

impl Hub {
    /// A hub fed by `bus` (it attaches itself as the bus's sink), keeping presence in `presence`.
    /// Refused when `bus` already feeds a hub: one backend, one hub (clone the hub to share it).
    pub fn new(
        bus: Arc<dyn EventBus>,
        presence: Arc<dyn PresenceStore>,
        settings: HubSettings,
    ) -> Result<Self, AlreadyAttached> {
        let inner = Arc::new(HubInner {
            bus: bus.clone(),
            vouching: Vouching::new(presence, settings.presence_ttl.get()),
            registry: Mutex::new(Registry::default()),
            next_id: AtomicU64::new(1),
            settings,
            stopping: watch::Sender::new(false),
            maintenance: Once::new(),
        });
        bus.attach(Arc::new(Deliveries(Arc::downgrade(&inner))))?;
        let hub = Self { inner };
        // Every instance sweeps for users of dead instances, with or without connections of its
        // own; outside a runtime (a plain unit test) it starts with the first connection.
        if tokio::runtime::Handle::try_current().is_ok() {
            hub.start_maintenance();
        }
        Ok(hub)
    }

    /// Tells every connection that this process is stopping (their transports close them with
    /// "going away").
    pub fn shut_down(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Changes to `true` when the process is stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Registers a live connection of `caller`. It hears every event on the user's channel after
    /// the returned position — first those it missed after `since`, when it asked and they can be
    /// had — and may follow the topics granted to the caller.
    pub async fn connect(
        &self,
        tenant: &DomainHandle,
        caller: Caller,
        since: ResumeFrom,
    ) -> Result<(Connection, Resumed), ServiceError> {
        let user = caller.user();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, events) = flume::bounded(self.inner.settings.queue_capacity.get());
        let overflowed = Arc::new(Notify::new());
        let first_here = {
            let mut registry = self.inner.registry();
            let settings = &self.inner.settings;
            if registry.connections.len() >= settings.connections_total {
                return Err(ServiceError::TooManyConnections("this server has as many connections as it accepts"));
            }
            if registry.present.get(&(tenant.clone(), user)).is_some_and(|n| *n >= settings.connections_per_user) {
                return Err(ServiceError::TooManyConnections("too many connections for this user"));
            }
            let heard_presence = Some(HashSet::new());
            registry.connections.insert(id, Listener { user, queue, overflowed: overflowed.clone(), heard_presence });
            registry.listen(id, tenant, Channel::User(user));
            let count = registry.present.entry((tenant.clone(), user)).or_default();
            *count += 1;
            *count == 1
        };
        self.start_maintenance();
        let mut connection = Connection {
            id,
            tenant: tenant.clone(),
            caller,
            topics: HashSet::new(),
            events,
            overflowed,
            hub: self.clone(),
            closed: false,
            seen: HashMap::new(),
            backlog: VecDeque::new(),
            lost: false,
        };
        self.inner.bus.subscribe(tenant, Channel::User(user)).await?;
        let resumed = connection.start_hearing(Channel::User(user), since).await?;
        // Both the announcement of this user and the snapshot for this connection go to the user's
        // DM partners: read them once.
        let partners = self.inner.dm_partners(tenant, user).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the user's DM partners for presence");
            Vec::new()
        });
        if first_here {
            self.inner.join(tenant, user, &partners).await?;
        }
        self.inner.send_presence_snapshot(tenant, id, &partners).await;
        Ok((connection, resumed))
    }

    /// The durable events `caller` missed after `since` on their channel, or on `topic`'s (which
    /// must be granted to them): at most `limit`, then where to continue from.
    pub async fn catch_up(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        topic: Option<TopicId>,
        since: ResumeFrom,
        limit: usize,
    ) -> Result<CatchUp, ServiceError> {
        let channel = match topic {
            Some(topic) => {
                caller.check(ChatTarget::Topic(topic))?;
                Channel::Topic(topic)
            }
            None => Channel::User(caller.user()),
        };
        let Replay { now, missed } = self.inner.bus.replay(tenant, channel, since.position(), limit).await?;
        Ok(match missed {
            Some(events) => {
                let position = events.last().map_or(now, |(position, _)| *position);
                CatchUp { events, position, recovered: true }
            }
            None => CatchUp { events: Vec::new(), position: now, recovered: false },
        })
    }

    /// Starts presence upkeep (once, from inside the runtime).
    fn start_maintenance(&self) {
        self.inner.maintenance.call_once(|| {
            let hub = Arc::downgrade(&self.inner);
            // At least 10 ms (`PresenceTtl::MIN` / 3).
            let every = self.inner.settings.presence_ttl.get() / 3;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(hub) = hub.upgrade() else { break };
                    hub.maintain_presence().await;
                }
            });
        });
    }
}

/// One live connection: its queue of events and what it listens to. Dropping it unregisters it.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    tenant: DomainHandle,
    caller: Caller,
    topics: HashSet<TopicId>,
    events: flume::Receiver<Delivery>,
    overflowed: Arc<Notify>,
    hub: Hub,
    closed: bool,
    /// Per channel, the position of the last durable event this connection was given (or the
    /// channel's when it started hearing it): anything at or before it is a duplicate.
    seen: HashMap<Channel, Position>,
    /// Missed events to give before the next live one.
    backlog: VecDeque<Delivery>,
    /// Events were lost that could not be had again: the connection is over.
    lost: bool,
}

impl Connection {
    /// Whose connection this is.
    pub fn user(&self) -> UserId {
        self.caller.user()
    }

    /// The next event for this connection, in the order they happened per channel: missed events
    /// first, then live ones, none twice. A live event that shows a gap (the bus lost events while
    /// reconnecting to Redis, say) is preceded by the events of the gap, read from the channel's
    /// history; `None` when the connection is over (dropped as too slow, or a gap that cannot be
    /// filled: the client then resumes, and learns whether it can).
    pub async fn next_event(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.backlog.pop_front() {
                return Some(delivery);
            }
            let delivery = self.events.recv_async().await.ok()?;
            let Some(position) = delivery.position else { return Some(delivery) };
            let seen = self.seen.get(&delivery.channel).copied();
            match seen {
                Some(seen) if position.covered_by(seen) => continue,
                Some(seen) if seen.epoch == position.epoch && position.seq > seen.seq + 1 => {
                    if let Err(error) = self.fill_gap(delivery.channel, seen).await {
                        tracing::warn!(%error, "cannot fill a gap in a connection's events");
                        self.lost = true;
                        return None;
                    }
                    self.backlog.push_back(delivery);
                }
                _ => {
                    self.seen.insert(delivery.channel, position);
                    return Some(delivery);
                }
            }
        }
    }

    /// Whether the connection ended because events it should have had were lost (it is then
    /// closed so that the client resumes, and learns whether it can).
    pub fn lost_events(&self) -> bool {
        self.lost
    }

    /// Queues the durable events of `channel` after `seen`, from its history.
    async fn fill_gap(&mut self, channel: Channel, seen: Position) -> Result<(), ServiceError> {
        let limit = self.hub.inner.settings.replay_limit;
        let replay = self.hub.inner.bus.replay(&self.tenant, channel, Some(seen), limit).await?;
        let lost = || ServiceError::Storage(chat_storage::StoreError::Unavailable("events left the history".into()));
        let missed = replay.missed.ok_or_else(lost)?;
        metrics::counter!("chatd_events_refilled_total").increment(missed.len() as u64);
        self.queue_missed(channel, missed);
        Ok(())
    }

    /// Puts `missed` events of `channel` in the backlog, and counts them seen.
    fn queue_missed(&mut self, channel: Channel, missed: Vec<(Position, ChatEvent)>) {
        if let Some((last, _)) = missed.last() {
            self.seen.insert(channel, *last);
        }
        for (position, event) in missed {
            self.backlog.push_back(Delivery { channel, event: Arc::new(event), position: Some(position) });
        }
    }

    /// Reads where `channel` (already subscribed) stands and, when the client asked, what it
    /// missed after `since`, which then comes before any live event of the channel.
    async fn start_hearing(&mut self, channel: Channel, since: ResumeFrom) -> Result<Resumed, ServiceError> {
        let limit = self.hub.inner.settings.replay_limit;
        let Replay { now, missed } = self.hub.inner.bus.replay(&self.tenant, channel, since.position(), limit).await?;
        let missed = since.asked().then(|| {
            missed.map(|missed| {
                let count = missed.len();
                self.queue_missed(channel, missed);
                count
            })
        });
        self.seen.insert(channel, now);
        if let Some(recovered) = missed {
            let recovered = if recovered.is_some() { "true" } else { "false" };
            metrics::counter!("chatd_resumes_total", "recovered" => recovered).increment(1);
        }
        Ok(Resumed { position: now, missed })
    }

    /// The signal that the connection fell too far behind and was dropped from every channel; the
    /// transport then closes it. Separate from the connection so it can be awaited while an event
    /// is being sent.
    pub fn overflow(&self) -> Overflow {
        Overflow(self.overflowed.clone())
    }

    /// Starts hearing `topic`'s events, if the topic is granted to the caller: those after the
    /// returned position, preceded by the ones missed after `since` when the client asked and they
    /// can be had. Already subscribed, it answers where the connection is in the topic.
    pub async fn subscribe_topic(&mut self, topic: TopicId, since: ResumeFrom) -> Result<Resumed, ServiceError> {
        self.caller.check(ChatTarget::Topic(topic))?;
        let channel = Channel::Topic(topic);
        let limit = self.hub.inner.settings.topics_per_connection;
        if !self.topics.contains(&topic) && self.topics.len() >= limit {
            metrics::counter!("chatd_realtime_refused_total", "limit" => "topics_per_connection").increment(1);
            return Err(ServiceError::TooManyTopics(limit));
        }
        if !self.topics.insert(topic) {
            let position = match self.seen.get(&channel) {
                Some(position) => *position,
                None => self.hub.inner.bus.replay(&self.tenant, channel, None, 1).await?.now,
            };
            return Ok(Resumed { position, missed: None });
        }
        self.hub.inner.registry().listen(self.id, &self.tenant, channel);
        let resumed = match self.hub.inner.bus.subscribe(&self.tenant, channel).await {
            Ok(()) => {
                let resumed = self.start_hearing(channel, since).await;
                if resumed.is_err() {
                    self.hub.inner.bus.unsubscribe(&self.tenant, channel).await.ok();
                }
                resumed
            }
            Err(error) => Err(error.into()),
        };
        if resumed.is_err() {
            // Not subscribed after all: forget it, so that asking again really subscribes.
            self.topics.remove(&topic);
            self.seen.remove(&channel);
            self.hub.inner.registry().forget(self.id, &self.tenant, channel);
        }
        resumed
    }

    /// Stops hearing `topic`'s events.
    pub async fn unsubscribe_topic(&mut self, topic: TopicId) -> Result<(), ServiceError> {
        if self.topics.remove(&topic) {
            self.seen.remove(&Channel::Topic(topic));
            self.backlog.retain(|delivery| delivery.channel != Channel::Topic(topic));
            self.hub.inner.registry().forget(self.id, &self.tenant, Channel::Topic(topic));
            self.hub.inner.bus.unsubscribe(&self.tenant, Channel::Topic(topic)).await?;
        }
        Ok(())
    }

    /// Tells the other side of `target` (or the topic's subscribers) that this user is typing.
    pub async fn typing(&self, target: ChatTarget) -> Result<(), ServiceError> {
        let user = self.user();
        if target == ChatTarget::User(user) {
            return Ok(());
        }
        self.caller.check(target)?;
        let chat = Chat::between(user, target);
        let event = ChatEvent::Typing { chat, user };
        self.hub.inner.bus.publish(&self.tenant, &chat.typing_audience(user), &event).await?;
        Ok(())
    }

    /// Unregisters the connection and gives up its subscriptions.
    pub async fn close(mut self) {
        self.closed = true;
        let (channels, last_here) = self.forget_all();
        release(self.hub.inner.clone(), self.tenant.clone(), self.user(), channels, last_here).await;
    }

    /// Removes the connection from the registry; returns its channels and whether it was the
    /// user's last connection in this process.
    fn forget_all(&mut self) -> (Vec<Channel>, bool) {
        let mut channels: Vec<Channel> = self.topics.drain().map(Channel::Topic).collect();
        channels.push(Channel::User(self.user()));
        let mut registry = self.hub.inner.registry();
        registry.connections.remove(&self.id);
        for channel in &channels {
            registry.forget(self.id, &self.tenant, *channel);
        }
        let key = (self.tenant.clone(), self.user());
        let last_here = match registry.present.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                registry.present.remove(&key);
                true
            }
            None => false,
        };
        (channels, last_here)
    }
}

/// See [`Connection::overflow`].
#[derive(Debug, Clone)]
pub struct Overflow(Arc<Notify>);

impl Overflow {
    /// Resolves once the connection's queue overflowed.
    pub async fn happened(&self) {
        self.0.notified().await;
    }
}

async fn release(hub: Arc<HubInner>, tenant: DomainHandle, user: UserId, channels: Vec<Channel>, last_here: bool) {
    for channel in channels {
        if let Err(error) = hub.bus.unsubscribe(&tenant, channel).await {
            tracing::warn!(%error, "could not unsubscribe");
        }
    }
    if !last_here {
        return;
    }
    // Never registered: no connection of this instance ever joined.
    let Some(name) = hub.vouching.registered().await else { return };
    match hub.vouching.store().leave(&tenant, user, &name).await {
        Ok(true) => hub.announce(&tenant, user, PresenceStatus::Inactive).await,
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not record presence"),
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (channels, last_here) = self.forget_all();
        let released = release(self.hub.inner.clone(), self.tenant.clone(), self.user(), channels, last_here);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(released);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_domain::{Message, MessageBody, MessageText, TopicGrant};
    use chat_storage::{ChatStore, MemoryStore, StoreError};

    use super::*;

    /// The memory bus, losing the deliveries of chosen sequence numbers on their way to the hub,
    /// as Redis pub/sub loses what is published while it reconnects.
    #[derive(Debug)]
    struct Lossy {
        store: Arc<MemoryStore>,
        lose: Vec<u64>,
    }

    #[derive(Debug)]
    struct Losing {
        sink: Arc<dyn EventSink>,
        lose: Vec<u64>,
    }

    impl EventSink for Losing {
        fn deliver(&self, tenant: &DomainHandle, channel: Channel, event: &Arc<ChatEvent>, at: Option<Position>) {
            if !at.is_some_and(|at| self.lose.contains(&at.seq)) {
                self.sink.deliver(tenant, channel, event, at);
            }
        }
    }

    #[async_trait::async_trait]
    impl EventBus for Lossy {
        fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached> {
            self.store.attach(Arc::new(Losing { sink, lose: self.lose.clone() }))
        }

        async fn publish(
            &self,
            tenant: &DomainHandle,
            channels: &[Channel],
            event: &ChatEvent,
        ) -> Result<(), StoreError> {
            self.store.publish(tenant, channels, event).await
        }

        async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
            self.store.subscribe(tenant, channel).await
        }

        async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
            self.store.unsubscribe(tenant, channel).await
        }

        async fn replay(
            &self,
            tenant: &DomainHandle,
            channel: Channel,
            since: Option<Position>,
            limit: usize,
        ) -> Result<Replay, StoreError> {
            self.store.replay(tenant, channel, since, limit).await
        }
    }

    fn text(text: &str) -> Message {
        Message::new(user(2), MessageBody::Text(MessageText::parse(text.to_owned(), 100).expect("valid text")))
    }

    #[tokio::test]
    async fn events_the_bus_lost_are_read_from_the_history_in_their_place() {
        let store = Arc::new(MemoryStore::new());
        let hub =
            Hub::new(Arc::new(Lossy { store: store.clone(), lose: vec![2, 3] }), store.clone(), HubSettings::default())
                .expect("the bus feeds no other hub");
        let tenant = DomainHandle::parse("test").expect("a valid handle");
        let caller = Caller::new(user(1), TopicGrant::All);
        let (mut connection, _) = hub.connect(&tenant, caller, ResumeFrom::Now).await.expect("connected");
        let dm = Chat::between(user(2), ChatTarget::User(user(1)));
        for word in ["one", "two", "three", "four"] {
            store.append(&tenant, dm, &text(word), None).await.expect("stored");
        }
        let mut heard = Vec::new();
        while heard.len() < 4 {
            let next = tokio::time::timeout(Duration::from_secs(10), connection.next_event());
            let delivery = next.await.expect("the next event in time").expect("an event");
            if let ChatEvent::NewMessage { message, .. } = delivery.event.as_ref() {
                heard.push((delivery.position.expect("durable").seq, message.body.clone()));
            }
        }
        let words: Vec<(u64, MessageBody)> = ["one", "two", "three", "four"]
            .iter()
            .enumerate()
            .map(|(n, word)| (n as u64 + 1, text(word).body))
            .collect();
        assert_eq!(heard, words, "2 and 3 were lost on the bus and come from the history, in order");
        assert!(!connection.lost_events());
    }

    fn user(n: u64) -> UserId {
        UserId::new(n).expect("a valid id")
    }

    /// A hub on a memory store in which users 1 and 2 share a DM and user 2 is online elsewhere.
    async fn hub_with_partner_online() -> (Hub, DomainHandle) {
        let store = Arc::new(MemoryStore::new());
        let tenant = DomainHandle::parse("test").expect("a valid handle");
        let text = MessageText::parse("hi".to_owned(), 10).expect("valid text");
        let message = Message::new(user(1), MessageBody::Text(text));
        store.append(&tenant, Chat::between(user(1), ChatTarget::User(user(2))), &message, None).await.expect("stored");
        let far_future = Timestamp::from_epoch_millis(i64::MAX / 2);
        store.register("elsewhere", far_future).await.expect("registered");
        let joined = store.join(&tenant, &[user(2)], "elsewhere").await.expect("joined");
        assert_eq!(joined, Joined::Arrived(vec![user(2)]));
        (Hub::new(store.clone(), store, HubSettings::default()).expect("the bus feeds no other hub"), tenant)
    }

    /// Registers connection `id` of user 1 as `connect` does, before its snapshot.
    fn register(hub: &Hub, id: u64, heard: &[UserId]) -> flume::Receiver<Delivery> {
        let (queue, events) = flume::bounded(8);
        let listener = Listener {
            user: user(1),
            queue,
            overflowed: Arc::default(),
            heard_presence: Some(heard.iter().copied().collect()),
        };
        hub.inner.registry().connections.insert(id, listener);
        events
    }

    #[tokio::test]
    async fn the_snapshot_names_active_partners_unless_a_newer_event_already_did() {
        let (hub, tenant) = hub_with_partner_online().await;
        let partners = [user(2)];
        let fresh = register(&hub, 1, &[]);
        hub.inner.send_presence_snapshot(&tenant, 1, &partners).await;
        let event = fresh.try_recv().expect("a snapshot entry").event;
        assert_eq!(*event, ChatEvent::Presence { user: user(2), status: PresenceStatus::Active });
        assert!(fresh.try_recv().is_err(), "one active partner, one event");

        // User 2's presence event reached this connection while the snapshot was being read: the
        // snapshot must not follow it with what may be an older state.
        let raced = register(&hub, 2, &[user(2)]);
        hub.inner.send_presence_snapshot(&tenant, 2, &partners).await;
        assert!(raced.try_recv().is_err(), "no stale snapshot entry");
        assert!(hub.inner.registry().connections[&2].heard_presence.is_none(), "tracking ends with the snapshot");
    }
}
