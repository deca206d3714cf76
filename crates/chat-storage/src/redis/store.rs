//! [`RedisStore`]: the [`ChatStore`] on Redis.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use std::sync::Arc;

use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, DomainHandle, HistoryWindow, Keyspace, Message, MessageId, PageRequest,
    Position, Timestamp, UserId,
};
use deadpool_redis::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use deadpool_redis::redis::{self, AsyncCommands, RedisError};

use super::pubsub::PubSub;
use super::scripts::Scripts;
use crate::{
    Appended, ChatStore, Decide, EventBus, EventSink, HistoryPage, Idempotency, InboxEntry, InboxPage, ModifyError,
    PresenceStore, Replay, StoreError, event_record, record,
};

/// How often a change is tried when other writers keep changing the same message. Every round
/// lets at least one writer through, so this bounds the wait of the unluckiest of many.
const MODIFY_ATTEMPTS: u32 = 32;

/// The pause before the n-th retry grows with n, to let competing writers finish.
const MODIFY_BACKOFF: Duration = Duration::from_micros(250);

/// Where Redis is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port/db`, `rediss://…` or `unix:///path/to/socket`.
    pub url: String,
    /// The first part of every key (the original's `SOCK_REDIS_PREFIX`).
    pub prefix: String,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one command may wait for its answer.
    pub response_timeout: Duration,
    /// How much of each channel's event history is kept for clients that resume.
    pub history: HistoryWindow,
}

/// Chats in Redis, in the original service's layout, and the event bus on Redis pub/sub.
///
/// Each thread that uses the store gets its own multiplexed connection, made on first use, whose
/// I/O task runs on that thread's runtime: an actix worker's requests then never hop threads to
/// reach Redis, and no pool checkout (with its `PING`) sits on the hot path.
#[derive(Debug)]
pub struct RedisStore {
    /// Tells this store's connections apart from other stores' in the thread-local table.
    id: u64,
    prefix: String,
    history: HistoryWindow,
    client: redis::Client,
    config: ConnectionManagerConfig,
    scripts: Scripts,
    pubsub: PubSub,
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connection of each store.
    static CONNECTIONS: RefCell<HashMap<u64, ConnectionManager>> = RefCell::new(HashMap::new());
}

impl RedisStore {
    /// Opens the connections. They are made lazily and re-made whenever Redis goes away, so this
    /// succeeds while Redis is down (requests then fail as unavailable until it is back); a bad URL
    /// is an error at once. Must run inside a Tokio runtime (it starts the pub/sub reader).
    pub fn connect(settings: &RedisSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| StoreError::Backend(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(1);
        Ok(Self {
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            prefix: settings.prefix.clone(),
            history: settings.history,
            client,
            config,
            scripts: Scripts::new(),
            pubsub: PubSub::connect(settings)?,
        })
    }

    /// This thread's connection (made lazily: it connects, and reconnects, by itself).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        CONNECTIONS.with(|connections| {
            if let Some(connection) = connections.borrow().get(&self.id) {
                return Ok(connection.clone());
            }
            let connection = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
                .map_err(unavailable)?;
            connections.borrow_mut().insert(self.id, connection.clone());
            Ok(connection)
        })
    }

    fn keys(&self, tenant: &DomainHandle) -> Keyspace {
        Keyspace::new(&self.prefix, tenant)
    }

    /// The history window's ttl in ms, as the scripts take it.
    fn history_ttl_ms(&self) -> u64 {
        u64::try_from(self.history.ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Adds what a write script needs to record its event in the histories of `chat`'s audience and
    /// publish it there: per channel its position and history keys, then the window, the script's
    /// own `between` arguments, and the channel names.
    fn record_in_audience(
        &self,
        call: &mut redis::ScriptInvocation<'_>,
        keys: &Keyspace,
        chat: Chat,
        between: &[&str],
    ) {
        let audience = chat.audience();
        for channel in &audience {
            call.key(keys.event_position(*channel)).key(keys.event_history(*channel));
        }
        call.arg(self.history.size).arg(self.history_ttl_ms());
        for arg in between {
            call.arg(*arg);
        }
        for channel in audience {
            call.arg(keys.channel(channel));
        }
    }
}

/// A position read from Redis: the epoch as the scripts wrote it, and the sequence number.
fn position(epoch: &str, seq: u64) -> Result<Position, StoreError> {
    let epoch = epoch.parse().map_err(|_| StoreError::Backend(format!("unreadable epoch {epoch:?}")))?;
    Ok(Position { epoch, seq })
}

/// Maps a Redis failure to a storage error without leaking Redis types upward.
pub(super) fn unavailable(error: RedisError) -> StoreError {
    metrics::counter!("chatd_redis_errors_total").increment(1);
    // Redis restarting (LOADING), busy with a script, or a replica without its primary: all pass.
    let transient = matches!(error.code(), Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN"));
    if transient
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
    {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Backend(error.to_string())
    }
}

/// Decodes stored messages, skipping (and logging) any that cannot be read, so that one damaged
/// record never hides the rest of a chat.
fn decode_or_skip(json: &str) -> Option<Message> {
    record::decode(json).inspect_err(|error| tracing::warn!(%error, "skipping a stored message")).ok()
}

#[async_trait]
impl ChatStore for RedisStore {
    async fn append(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        message: &Message,
        idempotency: Option<&Idempotency>,
    ) -> Result<Appended, StoreError> {
        let keys = self.keys(tenant);
        let id = message.id.to_string();
        let mut call = self.scripts.append.prepare_invoke();
        let inboxes = chat.inbox_entries_on_send(message.author);
        let event = ChatEvent::NewMessage { chat, message: message.clone() };
        call.key(keys.chat(chat))
            .key(keys.chat_data(chat))
            .key(keys.activity(message.author))
            .key(keys.latest())
            .arg(&id)
            .arg(record::encode(message))
            .arg(message.timestamp.epoch_millis())
            .arg(message.timestamp.js_date_string())
            .arg(event_record::encode(&event))
            .arg(Keyspace::chat_suffix(chat))
            .arg(inboxes.len());
        for (owner, entry) in inboxes {
            call.key(keys.inbox(owner)).arg(entry.to_string());
        }
        let idempotency_ttl = idempotency.map(|i| i.ttl.as_millis().max(1).to_string()).unwrap_or_default();
        self.record_in_audience(&mut call, &keys, chat, &[&idempotency_ttl]);
        if let Some(idempotency) = idempotency {
            call.key(keys.idempotency(message.author, &idempotency.key));
        }
        match call.invoke_async::<redis::Value>(&mut self.connection()?).await.map_err(unavailable)? {
            redis::Value::BulkString(first) => match event_record::decode(&first)? {
                ChatEvent::NewMessage { chat, message } => Ok(Appended::Replayed { chat, message }),
                _ => Err(StoreError::Backend("an idempotency key holds another event".into())),
            },
            _ => {
                metrics::counter!("chatd_events_published_total").increment(1);
                Ok(Appended::Stored)
            }
        }
    }

    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        page: PageRequest,
        channel: Channel,
    ) -> Result<HistoryPage, StoreError> {
        let keys = self.keys(tenant);
        let skip = i64::try_from(page.skip()).unwrap_or(i64::MAX - 1);
        let first = -(skip.saturating_add(i64::from(page.per_page())));
        let last = -(skip + 1);
        let (total, records, epoch, seq): (u64, Vec<Option<String>>, String, u64) = self
            .scripts
            .history
            .key(keys.chat(chat))
            .key(keys.chat_data(chat))
            .key(keys.event_position(channel))
            .key(keys.event_history(channel))
            .arg(first)
            .arg(last)
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        let messages = records.iter().flatten().filter_map(|json| decode_or_skip(json)).collect();
        Ok(HistoryPage { total, messages, position: position(&epoch, seq)? })
    }

    async fn inbox(&self, tenant: &DomainHandle, owner: UserId, page: PageRequest) -> Result<InboxPage, StoreError> {
        let keys = self.keys(tenant);
        let first = page.skip();
        let last = first + u64::from(page.per_page()) - 1;
        let mut connection = self.connection()?;
        // Plain commands, no script: the owner's position with the page (atomic, so that resuming
        // from it misses nothing the page does not show), then the page's latest messages.
        let channel = Channel::User(owner);
        let read_page = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(keys.event_position(channel))
            .arg("e")
            .arg("s")
            .zcard(keys.inbox(owner))
            .zrevrange_withscores(keys.inbox(owner), first as isize, last as isize)
            .clone();
        let ((mut epoch, mut seq), mut total, mut page): ((Option<String>, Option<u64>), u64, Vec<(String, f64)>) =
            read_page.query_async(&mut connection).await.map_err(unavailable)?;
        if epoch.is_none() {
            // The owner's channel never had an event: give it its epoch, then read again.
            self.replay(tenant, channel, None, 0).await?;
            ((epoch, seq), total, page) = read_page.query_async(&mut connection).await.map_err(unavailable)?;
        }
        let position = position(epoch.as_deref().unwrap_or_default(), seq.unwrap_or(0))?;
        let rows: Vec<(ChatTarget, Timestamp)> = page
            .into_iter()
            .filter_map(|(member, score)| {
                let target = ChatTarget::parse_member(&member)
                    .inspect_err(|error| tracing::warn!(%error, member, "skipping an inbox entry"))
                    .ok()?;
                Some((target, Timestamp::from_epoch_millis(score as i64)))
            })
            .collect();
        let chats: Vec<Chat> = rows.iter().map(|(target, _)| Chat::between(owner, *target)).collect();
        let mut latest: Vec<Option<String>> = if chats.is_empty() {
            Vec::new()
        } else {
            let fields: Vec<String> = chats.iter().map(|chat| Keyspace::chat_suffix(*chat)).collect();
            redis::cmd("HMGET")
                .arg(keys.latest())
                .arg(&fields)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?
        };
        // Chats the original service wrote have no latest-message entry yet: read and record it.
        let missing: Vec<usize> = (0..chats.len()).filter(|index| latest[*index].is_none()).collect();
        if !missing.is_empty() {
            let mut call = self.scripts.latest_backfill.prepare_invoke();
            call.key(keys.latest());
            for index in &missing {
                call.key(keys.chat(chats[*index]))
                    .key(keys.chat_data(chats[*index]))
                    .arg(Keyspace::chat_suffix(chats[*index]));
            }
            let found: Vec<Option<String>> = call.invoke_async(&mut connection).await.map_err(unavailable)?;
            for (index, message) in missing.into_iter().zip(found) {
                latest[index] = message;
            }
        }
        // The page and the latest messages are two reads: a message sent in between shows as the
        // latest, while `updated` stays the score the page was ordered by (the original's
        // timestamp), so that the entries' order and timestamps always agree.
        let entries = rows
            .into_iter()
            .zip(latest)
            .map(|((target, updated), latest)| InboxEntry {
                target,
                updated,
                latest: latest.as_deref().and_then(decode_or_skip),
            })
            .collect();
        Ok(InboxPage { total, entries, position })
    }

    async fn modify(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        id: MessageId,
        decide: &Decide<'_>,
    ) -> Result<Message, ModifyError> {
        let keys = self.keys(tenant);
        let (data_key, list_key, field) = (keys.chat_data(chat), keys.chat(chat), id.to_string());
        let (latest_key, latest_field) = (keys.latest(), Keyspace::chat_suffix(chat));
        let mut connection = self.connection()?;
        for attempt in 0..MODIFY_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(MODIFY_BACKOFF * attempt).await;
            }
            let stored: Option<String> = connection.hget(&data_key, &field).await.map_err(unavailable)?;
            let stored = stored.ok_or(ModifyError::NotFound)?;
            let current = record::decode(&stored)?;
            let change = decide(&current).map_err(ModifyError::Rejected)?;
            let (operation, replacement, result, event) = match change.replacement(chat) {
                Some((updated, event)) => ("set", record::encode(&updated), updated, event),
                None => ("del", String::new(), current, ChatEvent::MessageDeleted { chat, id }),
            };
            let mut call = self.scripts.compare_and_set.prepare_invoke();
            call.key(&data_key)
                .key(&list_key)
                .key(&latest_key)
                .arg(&field)
                .arg(&stored)
                .arg(operation)
                .arg(replacement)
                .arg(event_record::encode(&event))
                .arg(&latest_field)
                .arg(Timestamp::now().epoch_millis());
            self.record_in_audience(&mut call, &keys, chat, &[]);
            let applied: i64 = call.invoke_async(&mut connection).await.map_err(unavailable)?;
            if applied == 1 {
                metrics::counter!("chatd_events_published_total").increment(1);
                return Ok(result);
            }
        }
        Err(ModifyError::Contended)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        redis::cmd("PING").query_async::<String>(&mut connection).await.map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for RedisStore {
    fn attach(&self, sink: Arc<dyn EventSink>) {
        self.pubsub.sink.attach(sink);
    }

    async fn publish(&self, tenant: &DomainHandle, channels: &[Channel], event: &ChatEvent) -> Result<(), StoreError> {
        let keys = self.keys(tenant);
        let payload = event_record::encode(event);
        let mut pipeline = redis::pipe();
        for channel in channels {
            pipeline.publish(keys.channel(*channel), &payload).ignore();
        }
        pipeline.query_async::<()>(&mut self.connection()?).await.map_err(unavailable)?;
        metrics::counter!("chatd_events_published_total").increment(1);
        Ok(())
    }

    async fn subscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        self.pubsub.subscribe(tenant, channel).await
    }

    async fn unsubscribe(&self, tenant: &DomainHandle, channel: Channel) -> Result<(), StoreError> {
        self.pubsub.unsubscribe(tenant, channel).await
    }

    async fn replay(
        &self,
        tenant: &DomainHandle,
        channel: Channel,
        since: Option<Position>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        let keys = self.keys(tenant);
        let oldest = Timestamp::now().epoch_millis().saturating_sub(i64::try_from(self.history_ttl_ms()).unwrap_or(0));
        type Entry = (String, HashMap<String, Vec<u8>>);
        let (epoch, seq, recovered, entries): (String, u64, i64, Vec<Entry>) = self
            .scripts
            .replay
            .key(keys.event_position(channel))
            .key(keys.event_history(channel))
            .arg(since.map(|since| since.epoch.to_string()).unwrap_or_default())
            .arg(since.map_or(0, |since| since.seq))
            .arg(limit.max(1))
            .arg(self.history.size)
            .arg(oldest)
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        let now = position(&epoch, seq)?;
        let missed = match recovered {
            1 => Some(
                entries
                    .iter()
                    .map(|(id, fields)| {
                        let payload = fields.get("d").map(Vec::as_slice).unwrap_or_default();
                        event_record::decode_entry(now.epoch, id, payload)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        Ok(Replay { now, missed })
    }
}

#[async_trait]
impl PresenceStore for RedisStore {
    async fn refresh(
        &self,
        tenant: &DomainHandle,
        users: &[UserId],
        instance: &str,
        until: Timestamp,
    ) -> Result<Vec<UserId>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(tenant);
        let mut call = self.scripts.presence_refresh.prepare_invoke();
        for user in users {
            call.key(keys.presence(*user)).key(keys.activity(*user));
        }
        call.key(Keyspace::presence_index(&self.prefix))
            .arg(instance)
            .arg(until.epoch_millis())
            .arg(Timestamp::now().epoch_millis());
        let arrived: Vec<usize> = call.invoke_async(&mut self.connection()?).await.map_err(unavailable)?;
        Ok(arrived.into_iter().filter_map(|position| users.get(position.checked_sub(1)?).copied()).collect())
    }

    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError> {
        let keys = self.keys(tenant);
        let gone: i64 = self
            .scripts
            .presence_leave
            .key(keys.presence(user))
            .key(keys.activity(user))
            .key(Keyspace::presence_index(&self.prefix))
            .arg(instance)
            .arg(Timestamp::now().epoch_millis())
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        Ok(gone == 1)
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError> {
        let gone: Vec<String> = self
            .scripts
            .presence_expire
            .key(Keyspace::presence_index(&self.prefix))
            .arg(now.epoch_millis())
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        Ok(gone.iter().filter_map(|key| Keyspace::parse_presence(&self.prefix, key)).collect())
    }

    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(tenant);
        let after_now = format!("({}", now.epoch_millis());
        let mut pipeline = redis::pipe();
        for user in users {
            pipeline.zcount(keys.presence(*user), &after_now, "+inf");
        }
        let vouchers: Vec<u64> = pipeline.query_async(&mut self.connection()?).await.map_err(unavailable)?;
        Ok(users.iter().zip(vouchers).filter(|(_, vouchers)| *vouchers > 0).map(|(user, _)| *user).collect())
    }

    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId) -> Result<Vec<UserId>, StoreError> {
        let members: Vec<String> =
            self.connection()?.zrevrange(self.keys(tenant).inbox(user), 0, -1).await.map_err(unavailable)?;
        Ok(members
            .iter()
            .filter_map(|member| match ChatTarget::parse_member(member) {
                Ok(ChatTarget::User(other)) => Some(other),
                _ => None,
            })
            .collect())
    }
}
