//! The in-memory store: the embedded default when no Redis is configured. A real implementation
//! of [`ChatStore`] with the same behaviour as Redis (one lock makes every operation atomic), but
//! nothing survives a restart and nothing is shared between processes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, DomainHandle, HistoryQuery, HistoryWindow, IdempotencyKey, Message,
    MessageId, PageRequest, Position, Timestamp, UserId,
};

use crate::events::{SinkSlot, resumable};
use crate::memory_presence::Vouching;
use crate::{
    AlreadyAttached, Appended, ChatStore, Decide, EventBus, EventSink, HistoryPage, Idempotency, InboxEntry, InboxPage,
    Joined, LookupError, ModifyError, PresenceStore, ReadState, Replay, StoreError,
};

/// Chats kept in this process's memory, and the in-process event bus: events go straight from the
/// writer to the sink, in the order of the writes.
#[derive(Debug)]
pub struct MemoryStore {
    tenants: Mutex<HashMap<DomainHandle, Tenant>>,
    subscriptions: Mutex<HashMap<(DomainHandle, Channel), usize>>,
    sink: SinkSlot,
    presence: Mutex<Vouching>,
    /// The epoch of every channel's history: this store's start (nothing outlives it).
    epoch: u64,
    window: HistoryWindow,
}

#[derive(Debug, Default)]
struct Tenant {
    histories: HashMap<Channel, ChannelHistory>,
    /// Per author and key: the first send, and until when it is remembered.
    idempotency: HashMap<(UserId, IdempotencyKey), (Timestamp, Chat, Message)>,
    chats: HashMap<Chat, ChatLog>,
    inboxes: HashMap<UserId, Inbox>,
    /// Per user: unread messages over their direct chats.
    unread_totals: HashMap<UserId, u64>,
    last_active: HashMap<UserId, Timestamp>,
}

/// Remembered idempotency keys of one tenant beyond which expired ones are dropped on the next send
/// that has a key.
const IDEMPOTENCY_TIDY_AT: usize = 10_000;

/// A channel's durable events.
#[derive(Debug, Default)]
struct ChannelHistory {
    /// The sequence number of its last durable event.
    seq: u64,
    /// The events still in the window (sequence number, when, event), oldest first.
    kept: VecDeque<(u64, Timestamp, ChatEvent)>,
}

/// One chat: its messages in sending order, each with an ordinal (1, 2, … as they are sent), and
/// where each reader has read up to.
#[derive(Debug, Default)]
struct ChatLog {
    /// `(ordinal, id)` of the remaining messages, ordinals ascending.
    order: Vec<(u64, MessageId)>,
    ordinals: HashMap<MessageId, u64>,
    messages: HashMap<MessageId, Message>,
    /// Per author, the ordinals of their remaining messages, ascending.
    by_author: HashMap<UserId, Vec<u64>>,
    /// Per reader, the ordinal read up to.
    read: HashMap<UserId, u64>,
    /// The last ordinal given.
    last: u64,
}

impl ChatLog {
    fn latest(&self) -> Option<&Message> {
        self.order.last().and_then(|(_, id)| self.messages.get(id))
    }

    fn push(&mut self, message: &Message) {
        self.last += 1;
        self.order.push((self.last, message.id));
        self.ordinals.insert(message.id, self.last);
        self.messages.insert(message.id, message.clone());
        self.by_author.entry(message.author).or_default().push(self.last);
    }

    /// Removes message `id`; returns it and its ordinal.
    fn remove(&mut self, id: MessageId) -> Option<(Message, u64)> {
        let message = self.messages.remove(&id)?;
        let ordinal = self.ordinals.remove(&id)?;
        if let Ok(index) = self.order.binary_search_by_key(&ordinal, |(o, _)| *o) {
            self.order.remove(index);
        }
        if let Some(mine) = self.by_author.get_mut(&message.author)
            && let Ok(index) = mine.binary_search(&ordinal)
        {
            mine.remove(index);
        }
        Some((message, ordinal))
    }

    /// Messages by others than `reader` after the reader's read position (all, when they never
    /// read): binary searches of the ordinals, never a scan.
    fn unread(&self, reader: UserId) -> u64 {
        let read = self.read.get(&reader).copied().unwrap_or(0);
        let all = self.order.len() - self.order.partition_point(|(o, _)| *o <= read);
        let mine = self.by_author.get(&reader).map_or(0, |mine| mine.len() - mine.partition_point(|o| *o <= read));
        (all - mine) as u64
    }

    /// The latest remaining message at or before `reader`'s read position.
    fn read_message(&self, reader: UserId) -> Option<MessageId> {
        let read = *self.read.get(&reader)?;
        let index = self.order.partition_point(|(o, _)| *o <= read);
        index.checked_sub(1).map(|index| self.order[index].1)
    }

    fn read_state(&self, reader: UserId) -> ReadState {
        ReadState { message: self.read_message(reader), unread: self.unread(reader) }
    }

    /// The messages of `query`, oldest first, and whether more lie beyond them that way.
    fn page(&self, query: HistoryQuery) -> Result<(Vec<Message>, bool), LookupError> {
        let range = match query {
            HistoryQuery::Page(page) => {
                let (start, end) = page_bounds(self.order.len(), page);
                (start, end, start > 0)
            }
            HistoryQuery::Before { id, limit } => {
                let end = self.index_of(id)?;
                let start = end.saturating_sub(limit as usize);
                (start, end, start > 0)
            }
            HistoryQuery::After { id, limit } => {
                let start = self.index_of(id)? + 1;
                let end = (start + limit as usize).min(self.order.len());
                (start, end, end < self.order.len())
            }
        };
        let (start, end, more) = range;
        let messages = self.order[start..end].iter().filter_map(|(_, id)| self.messages.get(id).cloned()).collect();
        Ok((messages, more))
    }

    fn index_of(&self, id: MessageId) -> Result<usize, LookupError> {
        let ordinal = self.ordinals.get(&id).ok_or(LookupError::UnknownMessage)?;
        self.order.binary_search_by_key(ordinal, |(o, _)| *o).map_err(|_| LookupError::UnknownMessage)
    }
}

/// A sorted set like Redis's: by score, then by member text, read from the top.
#[derive(Debug, Default)]
struct Inbox {
    scores: HashMap<ChatTarget, i64>,
    ranked: BTreeSet<(i64, String, ChatTarget)>,
}

impl Inbox {
    fn touch(&mut self, entry: ChatTarget, at: Timestamp) {
        if let Some(old) = self.scores.insert(entry, at.epoch_millis()) {
            self.ranked.remove(&(old, entry.to_string(), entry));
        }
        self.ranked.insert((at.epoch_millis(), entry.to_string(), entry));
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping the default history window.
    pub fn new() -> Self {
        Self::with_history(HistoryWindow::default())
    }

    /// An empty store keeping `window` of each channel's events for clients that resume.
    pub fn with_history(window: HistoryWindow) -> Self {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self {
            tenants: Mutex::default(),
            subscriptions: Mutex::default(),
            sink: SinkSlot::default(),
            presence: Mutex::default(),
            epoch: u64::try_from(started.as_micros()).unwrap_or(u64::MAX),
            window,
        }
    }

    fn vouching(&self) -> MutexGuard<'_, Vouching> {
        self.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DomainHandle, Tenant>> {
        // A panic while holding the lock cannot leave a half-applied write (each operation
        // validates before it mutates), so the data is still consistent.
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a durable `event` in the history of each of `channels` (trimmed to the window),
    /// then publishes it. Writers call it while holding the data lock, so events get their
    /// positions, and leave, in the order of the writes.
    fn record_and_publish(&self, handle: &DomainHandle, tenant: &mut Tenant, channels: &[Channel], event: ChatEvent) {
        let now = Timestamp::now();
        let positions: Vec<Position> = channels
            .iter()
            .map(|channel| {
                let history = tenant.histories.entry(*channel).or_default();
                history.seq += 1;
                history.kept.push_back((history.seq, now, event.clone()));
                while history.kept.len() as u64 > self.window.size {
                    history.kept.pop_front();
                }
                Position { epoch: self.epoch, seq: history.seq }
            })
            .collect();
        self.publish_now(handle, channels, event, &positions);
    }

    /// Moves `reader`'s read position in `chat` to `ordinal` (message `id`) if that is later, keeping
    /// the reader's total right and announcing it; returns whether it moved.
    fn move_read(
        &self,
        handle: &DomainHandle,
        tenant: &mut Tenant,
        chat: Chat,
        reader: UserId,
        (id, ordinal): (MessageId, u64),
    ) -> bool {
        let Some(log) = tenant.chats.get_mut(&chat) else { return false };
        if log.read.get(&reader).is_some_and(|read| *read >= ordinal) {
            return false;
        }
        let before = log.unread(reader);
        log.read.insert(reader, ordinal);
        let after = log.unread(reader);
        if let Chat::Direct { .. } = chat {
            let total = tenant.unread_totals.entry(reader).or_default();
            *total = total.saturating_sub(before - after);
        }
        for (channel, counts) in chat.read_audience(reader) {
            let event = ChatEvent::Read { chat, reader, message: id, unread: counts.then_some(after) };
            self.record_and_publish(handle, tenant, &[channel], event);
        }
        true
    }

    /// Hands `event` to the sink for each of `channels` someone here listens to, with its position
    /// there when it has one (`positions` is then parallel to `channels`).
    fn publish_now(&self, tenant: &DomainHandle, channels: &[Channel], event: ChatEvent, positions: &[Position]) {
        metrics::counter!("chatd_events_published_total").increment(1);
        let subscriptions = self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
        let event = Arc::new(event);
        for (index, channel) in channels.iter().enumerate() {
            if subscriptions.get(&(tenant.clone(), *channel)).is_some_and(|n| *n > 0) {
                self.sink.deliver(tenant, *channel, &event, positions.get(index).copied());
            }
        }
    }

    /// `channel`'s position in `tenant`.
    fn position(&self, tenant: Option<&Tenant>, channel: Channel) -> Position {
        let seq = tenant.and_then(|t| t.histories.get(&channel)).map_or(0, |history| history.seq);
        Position { epoch: self.epoch, seq }
    }
}

fn page_bounds(len: usize, page: PageRequest) -> (usize, usize) {
    let skip = usize::try_from(page.skip()).unwrap_or(usize::MAX);
    let end = len.saturating_sub(skip);
    let start = end.saturating_sub(page.per_page() as usize);
    (start, end)
}

#[async_trait]
impl ChatStore for MemoryStore {
    async fn append(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        message: &Message,
        idempotency: Option<&Idempotency>,
    ) -> Result<Appended, StoreError> {
        let tenant_handle = tenant;
        let mut tenants = self.lock();
        let tenant = tenants.entry(tenant.clone()).or_default();
        if let Some(idempotency) = idempotency {
            let now = Timestamp::now();
            let key = (message.author, idempotency.key.clone());
            if let Some((_, chat, first)) = tenant.idempotency.get(&key).filter(|(until, ..)| *until > now) {
                return Ok(Appended::Replayed { chat: *chat, message: first.clone() });
            }
            if tenant.idempotency.len() >= IDEMPOTENCY_TIDY_AT {
                tenant.idempotency.retain(|_, (until, ..)| *until > now);
            }
            let ttl = i64::try_from(idempotency.ttl.as_millis()).unwrap_or(i64::MAX / 2);
            let until = Timestamp::from_epoch_millis(now.epoch_millis().saturating_add(ttl));
            tenant.idempotency.insert(key, (until, chat, message.clone()));
        }
        tenant.chats.entry(chat).or_default().push(message);
        for (owner, entry) in chat.inbox_entries_on_send(message.author) {
            tenant.inboxes.entry(owner).or_default().touch(entry, message.timestamp);
            if owner != message.author && matches!(chat, Chat::Direct { .. }) {
                *tenant.unread_totals.entry(owner).or_default() += 1;
            }
        }
        tenant.last_active.insert(message.author, message.timestamp);
        let event = ChatEvent::NewMessage { chat, message: message.clone() };
        self.record_and_publish(tenant_handle, tenant, &chat.audience(), event);
        Ok(Appended::Stored)
    }

    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        query: HistoryQuery,
        reader: UserId,
    ) -> Result<HistoryPage, LookupError> {
        let tenants = self.lock();
        let tenant = tenants.get(tenant);
        let position = self.position(tenant, chat.channel_of(reader));
        let readers = chat.readers_shown_to(reader);
        let Some(log) = tenant.and_then(|t| t.chats.get(&chat)) else {
            if !matches!(query, HistoryQuery::Page(_)) {
                return Err(LookupError::UnknownMessage);
            }
            let read = readers.into_iter().map(|user| (user, None)).collect();
            return Ok(HistoryPage { total: 0, messages: Vec::new(), position, more: false, read });
        };
        let (messages, more) = log.page(query)?;
        let read = readers.into_iter().map(|user| (user, log.read_message(user))).collect();
        Ok(HistoryPage { total: log.order.len() as u64, messages, position, more, read })
    }

    async fn read(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        reader: UserId,
        up_to: Option<MessageId>,
    ) -> Result<ReadState, LookupError> {
        let handle = tenant;
        let mut tenants = self.lock();
        let tenant = tenants.entry(tenant.clone()).or_default();
        let log = tenant.chats.get(&chat).filter(|log| !log.order.is_empty()).ok_or(LookupError::EmptyChat)?;
        let target = match up_to {
            Some(id) => (id, *log.ordinals.get(&id).ok_or(LookupError::UnknownMessage)?),
            None => log.order.last().map(|(ordinal, id)| (*id, *ordinal)).ok_or(LookupError::EmptyChat)?,
        };
        self.move_read(handle, tenant, chat, reader, target);
        let log = tenant.chats.get(&chat).ok_or(LookupError::EmptyChat)?;
        Ok(log.read_state(reader))
    }

    async fn inbox(&self, tenant: &DomainHandle, owner: UserId, page: PageRequest) -> Result<InboxPage, StoreError> {
        let tenants = self.lock();
        let position = self.position(tenants.get(tenant), Channel::User(owner));
        let Some(tenant) = tenants.get(tenant) else {
            return Ok(InboxPage { total: 0, entries: Vec::new(), position, unread_total: 0 });
        };
        let Some(inbox) = tenant.inboxes.get(&owner) else {
            return Ok(InboxPage { total: 0, entries: Vec::new(), position, unread_total: 0 });
        };
        let skip = usize::try_from(page.skip()).unwrap_or(usize::MAX);
        let entries = inbox
            .ranked
            .iter()
            .rev()
            .skip(skip)
            .take(page.per_page() as usize)
            .map(|(score, _, target)| {
                let log = tenant.chats.get(&Chat::between(owner, *target));
                InboxEntry {
                    target: *target,
                    updated: Timestamp::from_epoch_millis(*score),
                    latest: log.and_then(ChatLog::latest).cloned(),
                    unread: log.map_or(0, |log| log.unread(owner)),
                }
            })
            .collect();
        let unread_total = tenant.unread_totals.get(&owner).copied().unwrap_or(0);
        Ok(InboxPage { total: inbox.ranked.len() as u64, entries, position, unread_total })
    }

    async fn modify(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        id: MessageId,
        decide: &Decide<'_>,
    ) -> Result<Message, ModifyError> {
        let handle = tenant;
        let mut tenants = self.lock();
        let tenant = tenants.get_mut(tenant).ok_or(ModifyError::NotFound)?;
        let log = tenant.chats.get_mut(&chat).ok_or(ModifyError::NotFound)?;
        let current = log.messages.get(&id).ok_or(ModifyError::NotFound)?;
        let change = decide(current).map_err(ModifyError::Rejected)?;
        let seen_by = change.seen_by();
        let (result, event) = match change.replacement(chat) {
            Some((updated, event)) => {
                log.messages.insert(id, updated.clone());
                (updated, event)
            }
            None => {
                let (removed, ordinal) = log.remove(id).ok_or(ModifyError::NotFound)?;
                if let ChatTarget::User(recipient) = chat.seen_by(removed.author)
                    && log.read.get(&recipient).is_none_or(|read| *read < ordinal)
                {
                    let total = tenant.unread_totals.entry(recipient).or_default();
                    *total = total.saturating_sub(1);
                }
                (removed, ChatEvent::MessageDeleted { chat, id })
            }
        };
        self.record_and_publish(handle, tenant, &chat.audience(), event);
        if let Some(reader) = seen_by {
            let ordinal = tenant.chats.get(&chat).and_then(|log| log.ordinals.get(&id).copied());
            if let Some(ordinal) = ordinal {
                self.move_read(handle, tenant, chat, reader, (id, ordinal));
            }
        }
        Ok(result)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl EventBus for MemoryStore {
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached> {
        self.sink.attach(sink)
    }

    async fn publish(&self, tenant: &DomainHandle, channels: &[Channel], event: &ChatEvent) -> Result<(), StoreError> {
        // Taking the data lock keeps these in order with the writes' events.
        let _writes = self.lock();
        self.publish_now(tenant, channels, event.clone(), &[]);
        Ok(())
    }

    async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
        *subscriptions.entry((tenant.clone(), channel)).or_default() += 1;
        Ok(())
    }

    async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (tenant.clone(), channel);
        if let Some(count) = subscriptions.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                subscriptions.remove(&key);
            }
        }
        Ok(())
    }

    async fn replay(
        &self,
        tenant: &DomainHandle,
        channel: Channel,
        since: Option<Position>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        let tenants = self.lock();
        let tenant = tenants.get(tenant);
        let now = self.position(tenant, channel);
        let Some(first) = since.and_then(|since| resumable(since, now, self.window)) else {
            return Ok(Replay { now, missed: None });
        };
        let ttl = i64::try_from(self.window.ttl.as_millis()).unwrap_or(i64::MAX);
        let oldest = Timestamp::now().epoch_millis().saturating_sub(ttl);
        let kept = tenant.and_then(|t| t.histories.get(&channel)).map(|history| &history.kept);
        let after: Vec<&(u64, Timestamp, ChatEvent)> =
            kept.into_iter().flatten().skip_while(|(seq, ..)| *seq < first).take(limit).collect();
        let complete = match after.first() {
            Some((seq, at, _)) => *seq == first && at.epoch_millis() >= oldest,
            None => first > now.seq,
        };
        let missed = complete.then(|| {
            after
                .into_iter()
                .map(|(seq, _, event)| (Position { epoch: self.epoch, seq: *seq }, event.clone()))
                .collect()
        });
        Ok(Replay { now, missed })
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn register(&self, instance: &str, until: Timestamp) -> Result<(), StoreError> {
        self.vouching().vouch(instance, until, true, Timestamp::now());
        Ok(())
    }

    async fn renew(&self, instance: &str, until: Timestamp) -> Result<bool, StoreError> {
        Ok(self.vouching().vouch(instance, until, false, Timestamp::now()))
    }

    async fn join(&self, tenant: &DomainHandle, users: &[UserId], instance: &str) -> Result<Joined, StoreError> {
        Ok(self.vouching().join(tenant, users, instance, Timestamp::now()))
    }

    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError> {
        Ok(self.vouching().leave(tenant, user, instance, Timestamp::now()))
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError> {
        Ok(self.vouching().expire(now))
    }

    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError> {
        Ok(self.vouching().active(tenant, users, now))
    }

    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId, limit: usize) -> Result<Vec<UserId>, StoreError> {
        let tenants = self.lock();
        let partners = tenants
            .get(tenant)
            .and_then(|t| t.inboxes.get(&user))
            .map(|inbox| {
                inbox
                    .ranked
                    .iter()
                    .rev()
                    .take(limit)
                    .filter_map(|(_, _, entry)| match entry {
                        ChatTarget::User(other) => Some(*other),
                        ChatTarget::Topic(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(partners)
    }
}
