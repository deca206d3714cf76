//! [`RedisStore`]: the [`ChatStore`] on Redis.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use std::sync::Arc;

use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, DomainHandle, HistoryQuery, HistoryWindow, Keyspace, Message, MessageId,
    PageRequest, Position, Timestamp, UserId,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError};

use super::pubsub::PubSub;
use super::scripts::Scripts;
use crate::{
    AlreadyAttached, Appended, ChatStore, Decide, EventBus, EventSink, HistoryPage, Idempotency, InboxEntry, InboxPage,
    Joined, LookupError, ModifyError, PresenceStore, ReadState, Replay, StoreError, event_record, record,
};

/// How often a change is tried when other writers keep changing the same message. Every round
/// lets at least one writer through, so this bounds the wait of the unluckiest of many.
pub(super) const MODIFY_ATTEMPTS: u32 = 32;

/// The pause before the n-th retry grows with n, to let competing writers finish.
pub(super) const MODIFY_BACKOFF: Duration = Duration::from_micros(250);

/// How many of a chat's entries one indexing step reads and indexes: each step is one short script,
/// so indexing a chat the original service wrote never blocks Redis for long.
const INDEX_STEP: usize = 500;

/// How many inbox entries one step of indexing a user's direct chats looks at.
const INDEX_USER_STEP: usize = 1000;

/// What a script that needs a chat's index answers when the chat must be indexed first.
const NEEDS_INDEX: i64 = -1;

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
        super::shared::history_ttl_ms(self.history)
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

impl RedisStore {
    /// Adds the keys and arguments with which a script announces a `read` by `reader` in `chat`:
    /// per channel of [`Chat::read_audience`] its position and history keys, and its (payload
    /// head, channel, counts) arguments, after the number of channels.
    fn announce_read(&self, call: &mut redis::ScriptInvocation<'_>, keys: &Keyspace, chat: Chat, reader: UserId) {
        let audience = chat.read_audience(reader);
        let head = event_record::read_head(chat, reader);
        call.arg(audience.len());
        for (channel, counts) in audience {
            call.key(keys.event_position(channel)).key(keys.event_history(channel));
            call.arg(&head).arg(keys.channel(channel)).arg(if counts { "1" } else { "0" });
        }
    }

    /// Indexes the entries of `chat` the original service wrote (or chatd wrote before it kept an
    /// index), newest first, one short script per step; returns once none waits.
    async fn index_chat(&self, keys: &Keyspace, chat: Chat) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        loop {
            type Pending = (u64, i64, Vec<String>, Vec<Option<String>>);
            let (pending, _, ids, records): Pending = self
                .scripts
                .index_read
                .key(keys.chat(chat))
                .key(keys.chat_data(chat))
                .key(keys.chat_index(chat))
                .arg(INDEX_STEP)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            if pending == 0 {
                return Ok(());
            }
            let mut authors: Vec<UserId> = Vec::new();
            let mut call = self.scripts.index_write.prepare_invoke();
            call.key(keys.chat_index(chat)).key(keys.chat_order(chat));
            let (dm, lo, hi) = match chat {
                Chat::Direct { lo, hi } => ("1", lo.to_string(), hi.to_string()),
                Chat::Topic(_) => ("0", String::new(), String::new()),
            };
            call.arg(pending).arg(ids.len()).arg(dm).arg(lo).arg(hi).arg(Keyspace::chat_suffix(chat));
            for (id, json) in ids.iter().zip(&records) {
                let author = json.as_deref().and_then(|json| record::decode(json).ok()).map(|message| message.author);
                let slot = author.map_or(0, |author| match authors.iter().position(|known| *known == author) {
                    Some(index) => index + 1,
                    None => {
                        authors.push(author);
                        authors.len()
                    }
                });
                call.arg(id).arg(slot);
            }
            for author in &authors {
                call.key(keys.chat_by(chat, *author)).arg(author.get());
            }
            if let Chat::Direct { lo, hi } = chat {
                call.key(keys.unread(lo)).key(keys.unread(hi));
            }
            let _applied: i64 = call.invoke_async(&mut connection).await.map_err(unavailable)?;
        }
    }

    /// An inbox page of direct chats only, with plain commands (an inbox page's common case): the
    /// owner's position and the page, then the page's latest messages, counts, total and whether
    /// the inbox is indexed, with the position once more. All of it is as of the first position
    /// when the position read last is the same, since every change to a DM's inbox entry, latest
    /// message or count, and to the total, comes with an event on the owner's channel — two
    /// pipelines, no `MULTI`. `None` when that does not hold, or the page has a topic, a chat the
    /// original wrote, or a channel without an epoch: the `INBOX` script reads those at once.
    async fn inbox_of_direct_chats(
        &self,
        keys: &Keyspace,
        owner: UserId,
        first: u64,
        last: u64,
    ) -> Result<Option<InboxPage>, StoreError> {
        let mut connection = self.connection()?;
        let (position_key, inbox, unread) =
            (keys.event_position(Channel::User(owner)), keys.inbox(owner), keys.unread(owner));
        type Head = ((Option<String>, Option<u64>), u64, Vec<(String, f64)>);
        let (position_read, total, page): Head = redis::pipe()
            .cmd("HMGET")
            .arg(&position_key)
            .arg("e")
            .arg("s")
            .zcard(&inbox)
            .zrevrange_withscores(&inbox, first as isize, last as isize)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let Some(epoch) = position_read.0.clone() else { return Ok(None) };
        let mut rows = Vec::with_capacity(page.len());
        for (member, score) in &page {
            match ChatTarget::parse_member(member) {
                Ok(target @ ChatTarget::User(_)) => rows.push((target, Timestamp::from_epoch_millis(*score as i64))),
                _ => return Ok(None),
            }
        }
        let fields: Vec<String> =
            rows.iter().map(|(target, _)| Keyspace::chat_suffix(Chat::between(owner, *target))).collect();
        let mut details = redis::pipe();
        if !fields.is_empty() {
            details.cmd("HMGET").arg(keys.latest()).arg(&fields);
        }
        details
            .cmd("HMGET")
            .arg(&unread)
            .arg("i")
            .arg("t")
            .arg(&fields)
            .cmd("HMGET")
            .arg(&position_key)
            .arg("e")
            .arg("s");
        type Details = (Vec<Option<String>>, Vec<Option<u64>>, (Option<String>, Option<u64>));
        let (latest, state, position_again): Details = if fields.is_empty() {
            let (state, position_again) = details.query_async(&mut connection).await.map_err(unavailable)?;
            (Vec::new(), state, position_again)
        } else {
            details.query_async(&mut connection).await.map_err(unavailable)?
        };
        let [indexed, unread_total, counts @ ..] = state.as_slice() else { return Ok(None) };
        if position_again != position_read || (total > 0 && *indexed != Some(1)) || latest.iter().any(Option::is_none) {
            return Ok(None);
        }
        let entries = rows
            .into_iter()
            .zip(latest)
            .zip(counts)
            .map(|(((target, updated), latest), unread)| InboxEntry {
                target,
                updated,
                latest: latest.as_deref().and_then(decode_or_skip),
                unread: unread.unwrap_or(0),
            })
            .collect();
        let position = position(&epoch, position_read.1.unwrap_or(0))?;
        Ok(Some(InboxPage { total, entries, position, unread_total: unread_total.unwrap_or(0) }))
    }

    /// Runs a script that needs `chat`'s index, indexing the chat first when the script says so.
    async fn invoke_indexed(
        &self,
        call: &redis::ScriptInvocation<'_>,
        keys: &Keyspace,
        chat: Chat,
    ) -> Result<Vec<redis::Value>, StoreError> {
        let mut connection = self.connection()?;
        let answer: Vec<redis::Value> = call.invoke_async(&mut connection).await.map_err(unavailable)?;
        if status_of(&answer)? != NEEDS_INDEX {
            return Ok(answer);
        }
        self.index_chat(keys, chat).await?;
        call.invoke_async(&mut connection).await.map_err(unavailable)
    }

    /// Indexes every chat in `owner`'s inbox that waits to be, then marks the inbox indexed (so the
    /// owner's unread total is complete). Walks the inbox by score (a send only raises a score), in
    /// steps.
    async fn index_user(&self, keys: &Keyspace, owner: UserId) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let (inbox, unread) = (keys.inbox(owner), keys.unread(owner));
        let joined: Option<String> =
            redis::cmd("HGET").arg(&unread).arg("w").query_async(&mut connection).await.map_err(unavailable)?;
        let (mut from, mut at_from, mut seen) = (f64::NEG_INFINITY, 0usize, false);
        loop {
            let lower = if from.is_finite() { from.to_string() } else { "-inf".to_owned() };
            let step: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(&inbox)
                .arg(&lower)
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(at_from)
                .arg(INDEX_USER_STEP)
                .arg("WITHSCORES")
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let chats: Vec<Chat> = step
                .iter()
                .filter_map(|(member, _)| ChatTarget::parse_member(member).ok())
                .map(|target| Chat::between(owner, target))
                .collect();
            let mut states = redis::pipe();
            for chat in &chats {
                states.hget(keys.chat_index(*chat), "p").exists(keys.chat(*chat));
            }
            let states: Vec<(Option<u64>, bool)> = if chats.is_empty() {
                Vec::new()
            } else {
                states.query_async(&mut connection).await.map_err(unavailable)?
            };
            for (chat, (pending, exists)) in chats.iter().zip(states) {
                if pending.map_or(exists, |pending| pending > 0) {
                    self.index_chat(keys, *chat).await?;
                }
            }
            let Some((_, last)) = step.last() else { break };
            seen = true;
            let same = step.iter().rev().take_while(|(_, score)| score == last).count();
            at_from = if *last == from { at_from + same } else { same };
            from = *last;
            if step.len() < INDEX_USER_STEP {
                break;
            }
        }
        // An empty inbox is walked again next time (one command); its first send marks it.
        if !seen {
            return Ok(());
        }
        self.scripts
            .mark_indexed
            .key(&unread)
            .arg(joined.unwrap_or_default())
            .invoke_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

/// The first number of a script's answer, which tells what it did.
pub(super) fn status_of(answer: &[redis::Value]) -> Result<i64, StoreError> {
    match answer.first() {
        Some(value) => redis::from_redis_value_ref(value).map_err(unreadable),
        None => Err(StoreError::Backend("an empty script answer".into())),
    }
}

/// The `i`-th element of a script's answer.
pub(super) fn part<T: redis::FromRedisValue>(answer: &[redis::Value], i: usize) -> Result<T, StoreError> {
    let value = answer.get(i).ok_or_else(|| StoreError::Backend("a short script answer".into()))?;
    redis::from_redis_value_ref(value).map_err(unreadable)
}

pub(super) fn unreadable(error: redis::ParsingError) -> StoreError {
    StoreError::Backend(format!("an unreadable script answer: {error}"))
}

/// A message id the scripts returned.
pub(super) fn message_id(id: Option<String>) -> Result<Option<MessageId>, StoreError> {
    id.map(|id| MessageId::parse(&id).map_err(|_| StoreError::Backend(format!("unreadable message id {id:?}"))))
        .transpose()
}

/// A position read from Redis: the epoch as the scripts wrote it, and the sequence number.
pub(super) fn position(epoch: &str, seq: u64) -> Result<Position, StoreError> {
    let epoch = epoch.parse().map_err(|_| StoreError::Backend(format!("unreadable epoch {epoch:?}")))?;
    Ok(Position { epoch, seq })
}

/// Maps a Redis failure to a storage error without leaking Redis types upward.
pub(super) fn unavailable(error: RedisError) -> StoreError {
    metrics::counter!("chatd_redis_errors_total").increment(1);
    // Redis restarting (LOADING), busy with a script, or a replica without its primary: all pass;
    // on a cluster also a slot without its primary (CLUSTERDOWN) or a node not reached yet, until
    // a replica takes over.
    let transient = matches!(error.code(), Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN"));
    if transient
        || error.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || error.is_cluster_error()
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
pub(super) fn decode_or_skip(json: &str) -> Option<Message> {
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
            .key(keys.chat_index(chat))
            .key(keys.chat_order(chat))
            .key(keys.chat_by(chat, message.author))
            .arg(&id)
            .arg(record::encode(message))
            .arg(message.timestamp.epoch_millis())
            .arg(message.timestamp.js_date_string())
            .arg(event_record::encode(&event))
            .arg(Keyspace::chat_suffix(chat))
            .arg(inboxes.len());
        for (owner, entry) in inboxes {
            let counts = owner != message.author && matches!(chat, Chat::Direct { .. });
            call.key(keys.inbox(owner)).key(keys.unread(owner)).arg(entry.to_string()).arg(if counts {
                "1"
            } else {
                "0"
            });
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
        query: HistoryQuery,
        reader: UserId,
    ) -> Result<HistoryPage, LookupError> {
        let keys = self.keys(tenant);
        let readers = chat.readers_shown_to(reader);
        let channel = chat.channel_of(reader);
        let mut call = self.scripts.history.prepare_invoke();
        call.key(keys.chat(chat))
            .key(keys.chat_data(chat))
            .key(keys.event_position(channel))
            .key(keys.event_history(channel))
            .key(keys.chat_index(chat))
            .key(keys.chat_order(chat))
            .key(keys.chat_read(chat));
        super::shared::history_args(&mut call, query, &readers);
        let answer = self.invoke_indexed(&call, &keys, chat).await?;
        match status_of(&answer)? {
            1 => {}
            -3 => return Err(LookupError::UnknownMessage),
            other => return Err(StoreError::Backend(format!("history answered {other}")).into()),
        }
        let (epoch, seq): (String, u64) = (part(&answer, 3)?, part(&answer, 4)?);
        Ok(super::shared::history_page(&answer, (2, 5), query, readers, position(&epoch, seq)?)?)
    }

    async fn read(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        reader: UserId,
        up_to: Option<MessageId>,
    ) -> Result<ReadState, LookupError> {
        let keys = self.keys(tenant);
        let mut call = self.scripts.read.prepare_invoke();
        call.key(keys.chat(chat))
            .key(keys.chat_index(chat))
            .key(keys.chat_order(chat))
            .key(keys.chat_by(chat, reader))
            .key(keys.chat_read(chat))
            .key(keys.unread(reader))
            .arg(up_to.map(|id| id.to_string()).unwrap_or_default())
            .arg(reader.get())
            .arg(Timestamp::now().epoch_millis())
            .arg(self.history.size)
            .arg(self.history_ttl_ms())
            .arg(match chat {
                Chat::Direct { .. } => Keyspace::chat_suffix(chat),
                Chat::Topic(_) => String::new(),
            });
        self.announce_read(&mut call, &keys, chat, reader);
        let answer = self.invoke_indexed(&call, &keys, chat).await?;
        match status_of(&answer)? {
            -2 => Err(LookupError::EmptyChat),
            -3 => Err(LookupError::UnknownMessage),
            moved @ (0 | 1) => {
                if moved == 1 {
                    metrics::counter!("chatd_events_published_total").increment(1);
                }
                Ok(ReadState { message: message_id(part(&answer, 1)?)?, unread: part(&answer, 2)? })
            }
            other => Err(StoreError::Backend(format!("read answered {other}")).into()),
        }
    }

    async fn inbox(&self, tenant: &DomainHandle, owner: UserId, page: PageRequest) -> Result<InboxPage, StoreError> {
        let keys = self.keys(tenant);
        let first = page.skip();
        let last = first + u64::from(page.per_page()) - 1;
        if let Some(page) = self.inbox_of_direct_chats(&keys, owner, first, last).await? {
            return Ok(page);
        }
        let channel = Channel::User(owner);
        let mut call = self.scripts.inbox.prepare_invoke();
        call.key(keys.event_position(channel))
            .key(keys.event_history(channel))
            .key(keys.inbox(owner))
            .key(keys.latest())
            .key(keys.unread(owner))
            .arg(first)
            .arg(last)
            .arg(owner.get())
            .arg(keys.base());
        type Row = (String, String, Option<String>, i64);
        type Page = (String, u64, u64, u64, Vec<Row>);
        let mut connection = self.connection()?;
        let mut answer: Vec<redis::Value> = call.invoke_async(&mut connection).await.map_err(unavailable)?;
        // Chats (or a whole inbox) the original service wrote are indexed once, when first read.
        if status_of(&answer)? == NEEDS_INDEX {
            self.index_user(&keys, owner).await?;
            answer = call.invoke_async(&mut connection).await.map_err(unavailable)?;
        }
        let page = |answer: &[redis::Value]| -> Result<Page, StoreError> {
            let rows = (4..answer.len())
                .step_by(4)
                .map(|at| Ok((part(answer, at)?, part(answer, at + 1)?, part(answer, at + 2)?, part(answer, at + 3)?)))
                .collect::<Result<_, StoreError>>()?;
            Ok((part(answer, 0)?, part(answer, 1)?, part(answer, 2)?, part(answer, 3)?, rows))
        };
        let mut page_read = page(&answer)?;
        let waiting: Vec<Chat> = page_read
            .4
            .iter()
            .filter(|(.., unread)| *unread == NEEDS_INDEX)
            .filter_map(|(member, ..)| ChatTarget::parse_member(member).ok())
            .map(|target| Chat::between(owner, target))
            .collect();
        if !waiting.is_empty() {
            for chat in waiting {
                self.index_chat(&keys, chat).await?;
            }
            page_read = page(&call.invoke_async::<Vec<redis::Value>>(&mut connection).await.map_err(unavailable)?)?;
        }
        let (epoch, seq, total, unread_total, rows) = page_read;
        let entries = rows
            .into_iter()
            .filter_map(|(member, score, latest, unread)| {
                let target = ChatTarget::parse_member(&member)
                    .inspect_err(|error| tracing::warn!(%error, member, "skipping an inbox entry"))
                    .ok()?;
                let score: f64 = score.parse().ok()?;
                Some(InboxEntry {
                    target,
                    updated: Timestamp::from_epoch_millis(score as i64),
                    latest: latest.as_deref().and_then(decode_or_skip),
                    unread: u64::try_from(unread).unwrap_or(0),
                })
            })
            .collect();
        Ok(InboxPage { total, entries, position: position(&epoch, seq)?, unread_total })
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
            let planned = super::shared::plan(chat, id, current, change);
            let (operation, mine, counted, seen_by) =
                (planned.operation, planned.mine, planned.counted, planned.seen_by);
            let (replacement, result, event) = (planned.replacement, planned.result, planned.event);
            let mut call = self.scripts.compare_and_set.prepare_invoke();
            call.key(&data_key)
                .key(&list_key)
                .key(&latest_key)
                .key(keys.chat_index(chat))
                .key(keys.chat_order(chat))
                .key(keys.chat_by(chat, mine))
                .key(keys.chat_read(chat))
                .key(keys.unread(counted));
            let dm = if matches!(chat, Chat::Direct { .. }) { "1" } else { "0" };
            let mut read_channels = Vec::new();
            if let Some(reader) = seen_by {
                for (channel, counts) in chat.read_audience(reader) {
                    call.key(keys.event_position(channel)).key(keys.event_history(channel));
                    read_channels.push((keys.channel(channel), counts));
                }
            }
            call.arg(&field)
                .arg(&stored)
                .arg(operation)
                .arg(replacement)
                .arg(event_record::encode(&event))
                .arg(&latest_field)
                .arg(Timestamp::now().epoch_millis());
            let head = seen_by.map(|reader| event_record::read_head(chat, reader)).unwrap_or_default();
            let mut read_args: Vec<String> = vec![counted.to_string(), dm.to_owned(), read_channels.len().to_string()];
            for (name, counts) in read_channels {
                read_args.extend([head.clone(), name, if counts { "1" } else { "0" }.to_owned()]);
            }
            let read_args: Vec<&str> = read_args.iter().map(String::as_str).collect();
            self.record_in_audience(&mut call, &keys, chat, &read_args);
            let applied: i64 = call.invoke_async(&mut connection).await.map_err(unavailable)?;
            if applied == NEEDS_INDEX {
                self.index_chat(&keys, chat).await?;
                continue;
            }
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
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached> {
        self.pubsub.sink.attach(sink)
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
        super::shared::replay(&self.scripts, &mut self.connection()?, &keys, self.history, (channel, since, limit))
            .await
    }
}

impl RedisStore {
    /// Moves `instance`'s deadline to `until` (`fresh`: under a new name; else only while live).
    async fn vouch(&self, instance: &str, until: Timestamp, fresh: bool) -> Result<bool, StoreError> {
        let renewed: i64 = self
            .scripts
            .presence_renew
            .key(Keyspace::instances(&self.prefix))
            .arg(instance)
            .arg(until.epoch_millis())
            .arg(Timestamp::now().epoch_millis())
            .arg(if fresh { "1" } else { "0" })
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        Ok(renewed == 1)
    }
}

/// Users one presence script call takes at most (joining, or sweeping a lapsed instance): each
/// costs Redis a few small commands (a sweep of 64 took 2.2 ms on a busy 2-CPU machine, so 32
/// keeps a call near a millisecond), and upkeep never holds Redis up, however many users an
/// instance holds.
pub(super) const PRESENCE_BATCH: usize = 32;

#[async_trait]
impl PresenceStore for RedisStore {
    async fn register(&self, instance: &str, until: Timestamp) -> Result<(), StoreError> {
        self.vouch(instance, until, true).await.map(|_| ())
    }

    async fn renew(&self, instance: &str, until: Timestamp) -> Result<bool, StoreError> {
        self.vouch(instance, until, false).await
    }

    async fn join(&self, tenant: &DomainHandle, users: &[UserId], instance: &str) -> Result<Joined, StoreError> {
        let keys = self.keys(tenant);
        let (instances, members) =
            (Keyspace::instances(&self.prefix), Keyspace::instance_users(&self.prefix, instance));
        let mut arrived = Vec::new();
        for batch in users.chunks(PRESENCE_BATCH) {
            let mut call = self.scripts.presence_join.prepare_invoke();
            call.key(&instances).key(&members);
            for user in batch {
                call.key(keys.presence(*user)).key(keys.activity(*user));
            }
            call.arg(instance).arg(Timestamp::now().epoch_millis());
            let answer: Vec<usize> = call.invoke_async(&mut self.connection()?).await.map_err(unavailable)?;
            let Some((1, positions)) = answer.split_first() else { return Ok(Joined::Lapsed) };
            arrived.extend(positions.iter().filter_map(|position| batch.get(position.checked_sub(1)?).copied()));
        }
        Ok(Joined::Arrived(arrived))
    }

    async fn leave(&self, tenant: &DomainHandle, user: UserId, instance: &str) -> Result<bool, StoreError> {
        let keys = self.keys(tenant);
        let gone: i64 = self
            .scripts
            .presence_leave
            .key(keys.presence(user))
            .key(keys.activity(user))
            .key(Keyspace::instances(&self.prefix))
            .key(Keyspace::instance_users(&self.prefix, instance))
            .arg(instance)
            .arg(Timestamp::now().epoch_millis())
            .invoke_async(&mut self.connection()?)
            .await
            .map_err(unavailable)?;
        Ok(gone == 1)
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<(DomainHandle, UserId)>, StoreError> {
        let mut gone = Vec::new();
        // One batch per call, so that other clients' commands run between them.
        loop {
            let answer: Vec<String> = self
                .scripts
                .presence_sweep
                .key(Keyspace::instances(&self.prefix))
                .arg(now.epoch_millis())
                .arg(PRESENCE_BATCH)
                .invoke_async(&mut self.connection()?)
                .await
                .map_err(unavailable)?;
            let Some((swept, keys)) = answer.split_first() else { break };
            if swept != "1" {
                break;
            }
            gone.extend(keys.iter().filter_map(|key| Keyspace::parse_presence(&self.prefix, key)));
        }
        Ok(gone)
    }

    async fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Result<Vec<UserId>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // The live instances (a handful), then each user's: one round trip of small commands.
        let keys = self.keys(tenant);
        let mut pipeline = redis::pipe();
        pipeline.zrangebyscore(Keyspace::instances(&self.prefix), format!("({}", now.epoch_millis()), "+inf");
        for user in users {
            pipeline.zrange(keys.presence(*user), 0, -1);
        }
        let answers: Vec<Vec<String>> = pipeline.query_async(&mut self.connection()?).await.map_err(unavailable)?;
        let Some((live, held)) = answers.split_first() else { return Ok(Vec::new()) };
        Ok(super::shared::held_by_live(users, held, live))
    }

    async fn dm_partners(&self, tenant: &DomainHandle, user: UserId, limit: usize) -> Result<Vec<UserId>, StoreError> {
        super::shared::dm_partners(&mut self.connection()?, self.keys(tenant).inbox(user), limit).await
    }
}
