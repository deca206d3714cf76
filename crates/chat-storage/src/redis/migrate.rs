//! [`Migration`]: a standalone deployment (the original's layout, chatd's additions included)
//! copied into the cluster layout of a Redis Cluster — `chatd migrate`.
//!
//! Three passes over the source, each a `SCAN` of the keys under the prefix (never `KEYS`):
//! 1. **Index** ([`Migration::index`]): every chat gets its index as chatd would build it on first
//!    read (`ChatStore::history` for each chat list, `ChatStore::inbox` for each inbox), through
//!    [`RedisStore`] itself — the cluster store does not index chats the original wrote, so a chat
//!    must reach the cluster indexed. This writes chatd's own index keys into the source, nothing
//!    else.
//! 2. **Copy** ([`Migration::copy`]): every key, by [`plan`], to its name in the cluster layout with
//!    its type and remaining ttl (`DUMP` / `RESTORE … REPLACE`); the tenant-wide `latest` hash
//!    becomes one string per chat, an idempotency result the pair of keys the cluster store keeps;
//!    presence and instances are left (they are rebuilt by the live instances). The `SCAN` cursor is
//!    kept in the target ([`progress_key`]) after each batch, so a run that stopped resumes there;
//!    every write replaces, so a batch copied twice gives the same keys.
//! 3. **Verify** ([`Migration::verify`]): every source key is compared with its copy — the length of
//!    each list, hash, sorted set, stream and string (so per chat its list, order and data; per user
//!    their inbox) — and each mismatch reported.

use std::collections::BTreeMap;
use std::time::Duration;

use chat_domain::{
    Chat, ChatEvent, DomainHandle, HistoryQuery, HistoryWindow, IdempotencyKey, Keyspace, Layout, PageRequest,
    StoredKey, UserId,
};
use futures_util::{StreamExt, TryStreamExt};
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Value};

use super::store::{RedisSettings, RedisStore, unavailable};
use crate::{ChatStore, StoreError, event_record};

/// How many target writes one batch keeps in flight at once.
const IN_FLIGHT: usize = 64;

/// How many inbox entries one indexing read asks for.
const INBOX_PAGE: u32 = 1000;

/// Where the data is and where it goes.
#[derive(Debug, Clone)]
pub struct MigrationSettings {
    /// The standalone Redis (`redis://host:port/db`).
    pub source: String,
    /// Seed nodes of the target cluster.
    pub seeds: Vec<String>,
    /// The key prefix, the same on both sides.
    pub prefix: String,
    /// How many keys one `SCAN` step asks for (its `COUNT`); the cursor is saved after each.
    pub batch: usize,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one command may wait for its answer.
    pub response_timeout: Duration,
    /// The event history window of the store that indexes (it records no event while indexing).
    pub history: HistoryWindow,
}

/// What a long pass tells whoever shows its progress (`chatd migrate` draws a bar).
pub trait Progress {
    /// A pass starts; `total` is how many keys it will go through, when known.
    fn start(&self, pass: &str, total: Option<u64>);
    /// `keys` more keys went through.
    fn advance(&self, keys: u64);
    /// The pass is over.
    fn finish(&self);
}

/// What the indexing pass found (and, unless a dry run, did).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// Keys under the prefix.
    pub keys: u64,
    /// Chats (their message lists).
    pub chats: u64,
    /// Chats that were (or, in a dry run, would be) indexed.
    pub chats_indexed: u64,
    /// Inboxes.
    pub inboxes: u64,
    /// Inboxes whose unread state was (or would be) completed.
    pub inboxes_indexed: u64,
}

/// What the copy did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Source keys by kind (see [`kind_of`]); `latest messages` counts the chats of the `latest`
    /// hashes, each one key of the target.
    pub kinds: BTreeMap<&'static str, u64>,
    /// The cursor an earlier run stopped at, when this one resumed there.
    pub resumed_at: Option<u64>,
    /// An earlier run had finished: nothing was copied (run again with `restart` to copy anew).
    pub already_done: bool,
    /// Keys of no kind chatd knows, copied under the same name (the first few).
    pub unknown: Vec<String>,
    /// Entries that could not be read (a `latest` field naming no chat, an idempotency result
    /// that is no send), left out.
    pub unreadable: Vec<String>,
    /// The run stopped after the batches it was allowed (a test hook): the copy is not finished.
    pub stopped: bool,
}

/// One key whose copy differs from its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The source key (and field, for a `latest` entry).
    pub source: String,
    /// Its name in the target.
    pub target: String,
    /// What the source holds (type and length).
    pub expected: String,
    /// What the target holds.
    pub found: String,
}

/// What the verification compared, and what differed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chats compared (list, order, data, reads and index each a key).
    pub chats: u64,
    /// Inboxes compared.
    pub inboxes: u64,
    /// Source keys (and `latest` entries) compared in all.
    pub keys: u64,
    /// What differed.
    pub mismatches: Vec<Mismatch>,
}

/// Where a source key goes: the one function that knows (tested key by key below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Copied as it is, to this name.
    Rename(String),
    /// The tenant-wide `latest` hash: each field (a chat's suffix) becomes that chat's
    /// [`Keyspace::chat_latest`] in these (cluster) keys.
    Latest(Keyspace),
    /// An idempotency result of `owner`'s `key`: becomes [`Keyspace::chat_idempotency`] of the
    /// chat its send went to and [`Keyspace::idempotency_claim`] (see [`Plan::idempotency_keys`]).
    Idempotency {
        /// The tenant's cluster keys.
        keys: Keyspace,
        /// Who sent.
        owner: UserId,
        /// With which key.
        key: IdempotencyKey,
    },
    /// Not copied: presence and instances (live state the running instances rebuild), and the
    /// migration's own progress.
    Skip,
    /// A key of no kind chatd knows: copied under the same name.
    Unknown,
}

impl Plan {
    /// The target keys of an idempotency result whose send went to `chat`: the answer, in the
    /// chat's slot, and the claim (holding the chat's suffix), in the owner's.
    pub fn idempotency_keys(keys: &Keyspace, owner: UserId, key: &IdempotencyKey, chat: Chat) -> (String, String) {
        (keys.chat_idempotency(chat, owner, key), keys.idempotency_claim(owner, key))
    }
}

/// Where the source key `key` under `prefix` goes in the cluster layout.
pub fn plan(prefix: &str, key: &str) -> Plan {
    let instances = Keyspace::instances(prefix);
    if key == progress_key(prefix)
        || key == instances
        || key.strip_prefix(instances.as_str()).is_some_and(|rest| rest.starts_with(':'))
    {
        return Plan::Skip;
    }
    let Some((handle, stored)) = Keyspace::parse_standalone(prefix, key) else { return Plan::Unknown };
    let keys = Keyspace::with_layout(prefix, &handle, Layout::Cluster);
    match stored {
        StoredKey::Presence(_) => Plan::Skip,
        StoredKey::Latest => Plan::Latest(keys),
        StoredKey::Idempotency(owner, key) => Plan::Idempotency { keys, owner, key },
        stored => Plan::Rename(keys.key_of(&stored)),
    }
}

/// The key, in the target, that holds a migration's progress: a hash of `cursor` (the source
/// `SCAN` cursor after the last batch copied), `keys` (source keys gone through), `source`,
/// `started`, `updated` and, once the copy is complete, `done` (each a time in epoch ms).
pub fn progress_key(prefix: &str) -> String {
    format!("{prefix}:migration")
}

/// What a source key is, for the reports.
pub fn kind_of(prefix: &str, key: &str) -> &'static str {
    if matches!(plan(prefix, key), Plan::Skip) {
        return "skipped (presence, instances)";
    }
    let Some((_, stored)) = Keyspace::parse_standalone(prefix, key) else { return "other (copied as is)" };
    match stored {
        StoredKey::Chat(_) => "chat lists",
        StoredKey::ChatData(_) => "chat data",
        StoredKey::ChatOrder(_) => "chat orders",
        StoredKey::ChatBy(..) => "chat authors",
        StoredKey::ChatRead(_) => "read positions",
        StoredKey::ChatIndex(_) => "chat indexes",
        StoredKey::Latest => "latest hashes",
        StoredKey::Inbox(_) => "inboxes",
        StoredKey::Unread(_) => "unread states",
        StoredKey::Activity(_) => "activity",
        StoredKey::Presence(_) => "skipped (presence, instances)",
        StoredKey::Idempotency(..) => "idempotency results",
        StoredKey::EventHistory(_) => "event histories",
        StoredKey::EventPosition(_) => "event positions",
    }
}

/// A key's type and length (elements, or bytes of a string): `{type, n}`, `{'none', 0}` when it
/// does not exist. Runs on either side (one key: in its slot on the cluster).
const SIZE: &str = r"
local t = redis.call('TYPE', KEYS[1])['ok']
local n = 0
if t == 'list' then
  n = redis.call('LLEN', KEYS[1])
elseif t == 'hash' then
  n = redis.call('HLEN', KEYS[1])
elseif t == 'zset' then
  n = redis.call('ZCARD', KEYS[1])
elseif t == 'set' then
  n = redis.call('SCARD', KEYS[1])
elseif t == 'stream' then
  n = redis.call('XLEN', KEYS[1])
elseif t == 'string' then
  n = redis.call('STRLEN', KEYS[1])
end
return {t, n}
";

/// A standalone deployment and the cluster it moves to.
pub struct Migration {
    prefix: String,
    batch: usize,
    source_name: String,
    source: MultiplexedConnection,
    store: RedisStore,
    target: ClusterConnection,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration").field("prefix", &self.prefix).field("source", &self.source_name).finish()
    }
}

impl Migration {
    /// Connects to both sides (an error when either does not answer). Must run inside a Tokio
    /// runtime.
    pub async fn connect(settings: &MigrationSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.source.as_str())
            .map_err(|e| StoreError::Backend(format!("invalid source Redis URL: {e}")))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout));
        let source = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| StoreError::Unavailable(format!("the source Redis: {e}")))?;
        let store = RedisStore::connect(&RedisSettings {
            url: settings.source.clone(),
            prefix: settings.prefix.clone(),
            connect_timeout: settings.connect_timeout,
            response_timeout: settings.response_timeout,
            history: settings.history,
        })?;
        if settings.seeds.is_empty() {
            return Err(StoreError::Backend("no cluster seed node given".into()));
        }
        let target = ClusterClientBuilder::new(settings.seeds.clone())
            .connection_timeout(settings.connect_timeout)
            .response_timeout(settings.response_timeout)
            .build()
            .map_err(|e| StoreError::Backend(format!("invalid Redis Cluster seed: {e}")))?
            .get_async_connection()
            .await
            .map_err(|e| StoreError::Unavailable(format!("the Redis Cluster: {e}")))?;
        Ok(Self {
            prefix: settings.prefix.clone(),
            batch: settings.batch.max(1),
            source_name: without_password(&settings.source),
            source,
            store,
            target,
        })
    }

    /// One `SCAN` step over the source's keys under the prefix: the next cursor and the keys.
    async fn scan(&self, cursor: u64) -> Result<(u64, Vec<String>), StoreError> {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:*", glob_escape(&self.prefix)))
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.source.clone())
            .await
            .map_err(unavailable)?;
        // Every key chatd (or the original) writes is UTF-8. Another name is read lossily: its key
        // is then not found under that name, and neither copied nor compared (see `copy_batch`).
        Ok((next, keys.into_iter().map(|key| String::from_utf8_lossy(&key).into_owned()).collect()))
    }

    /// One `HSCAN` step over the source's hash at `key`: the next cursor and the fields with
    /// their values.
    async fn hscan(&self, key: &str, cursor: u64) -> Result<(u64, Vec<(String, Vec<u8>)>), StoreError> {
        redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.source.clone())
            .await
            .map_err(unavailable)
    }

    /// Pass 1: every chat of the source indexed (`dry_run`: only counted), so that the cluster
    /// store can serve it. Idempotent: an indexed chat or inbox is left as it is.
    pub async fn index(&self, dry_run: bool, progress: &dyn Progress) -> Result<IndexReport, StoreError> {
        let mut report = IndexReport::default();
        progress.start(if dry_run { "survey" } else { "index" }, None);
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan(cursor).await?;
            report.keys += keys.len() as u64;
            let mut chats = Vec::new();
            let mut inboxes = Vec::new();
            for key in &keys {
                match Keyspace::parse_standalone(&self.prefix, key) {
                    Some((handle, StoredKey::Chat(chat))) => chats.push((handle, chat)),
                    Some((handle, StoredKey::Inbox(user))) => inboxes.push((handle, user)),
                    _ => {}
                }
            }
            let mut states = redis::pipe();
            for (handle, chat) in &chats {
                states.hget(Keyspace::new(&self.prefix, handle).chat_index(*chat), "p");
            }
            for (handle, user) in &inboxes {
                states.hget(Keyspace::new(&self.prefix, handle).unread(*user), "i");
            }
            let states: Vec<Option<String>> = if chats.is_empty() && inboxes.is_empty() {
                Vec::new()
            } else {
                states.query_async(&mut self.source.clone()).await.map_err(unavailable)?
            };
            let (chat_states, inbox_states) = states.split_at(chats.len());
            report.chats += chats.len() as u64;
            report.inboxes += inboxes.len() as u64;
            for ((handle, chat), pending) in chats.iter().zip(chat_states) {
                if pending.as_deref() == Some("0") {
                    continue;
                }
                report.chats_indexed += 1;
                if !dry_run {
                    self.index_chat(handle, *chat).await?;
                }
            }
            for ((handle, user), indexed) in inboxes.iter().zip(inbox_states) {
                if indexed.as_deref() == Some("1") {
                    continue;
                }
                report.inboxes_indexed += 1;
                if !dry_run {
                    self.index_inbox(handle, *user).await?;
                }
            }
            progress.advance(keys.len() as u64);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        progress.finish();
        Ok(report)
    }

    /// Indexes one chat as its first read would (reading its newest message as a participant).
    async fn index_chat(&self, handle: &DomainHandle, chat: Chat) -> Result<(), StoreError> {
        let reader = match chat {
            Chat::Direct { lo, .. } => lo,
            // Any reader does: a topic's index is the same for all.
            Chat::Topic(_) => UserId::new(1).map_err(|e| StoreError::Backend(e.to_string()))?,
        };
        let query = HistoryQuery::Page(PageRequest::new(1, 1));
        self.store.history(handle, chat, query, reader).await.map(drop).map_err(|error| match error {
            crate::LookupError::Store(error) => error,
            other => StoreError::Backend(format!("indexing {}: {other}", Keyspace::public_chat(handle, chat))),
        })
    }

    /// Reads a whole inbox as its owner would: every chat in it indexed, the owner's unread state
    /// marked complete, each chat's latest message recorded.
    async fn index_inbox(&self, handle: &DomainHandle, user: UserId) -> Result<(), StoreError> {
        let mut page = 1;
        loop {
            let read = self.store.inbox(handle, user, PageRequest::new(page, INBOX_PAGE)).await?;
            if u64::from(page) * u64::from(INBOX_PAGE) >= read.total {
                return Ok(());
            }
            page += 1;
        }
    }

    /// Pass 2: every key copied into the cluster layout (`dry_run`: only counted, nothing written
    /// anywhere). Resumes where an unfinished run stopped; does nothing after a finished one unless
    /// `restart`. `total` (the keys the index pass counted) sizes the progress; `stop_after` ends
    /// the run after that many batches, as an interruption would (a test hook).
    pub async fn copy(
        &self,
        dry_run: bool,
        restart: bool,
        total: Option<u64>,
        stop_after: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<CopyReport, StoreError> {
        let mut report = CopyReport::default();
        let progress_key = progress_key(&self.prefix);
        let mut target = self.target.clone();
        let saved: BTreeMap<String, String> = target.hgetall(&progress_key).await.map_err(unavailable)?;
        if restart && !dry_run {
            let _: () = target.del(&progress_key).await.map_err(unavailable)?;
        }
        let saved = if restart { BTreeMap::new() } else { saved };
        if let Some(from) = saved.get("source")
            && *from != self.source_name
        {
            return Err(StoreError::Backend(format!(
                "the target holds the progress of a migration from {from}, not {}: pass the same --from, \
                 or --restart to copy anew from this one",
                self.source_name
            )));
        }
        if saved.contains_key("done") {
            report.already_done = true;
            return Ok(report);
        }
        let mut cursor: u64 = saved.get("cursor").and_then(|cursor| cursor.parse().ok()).unwrap_or(0);
        let mut gone_through: u64 = saved.get("keys").and_then(|keys| keys.parse().ok()).unwrap_or(0);
        if cursor != 0 {
            report.resumed_at = Some(cursor);
        } else if !dry_run {
            let now = now_ms();
            let _: () = target
                .hset_multiple(&progress_key, &[("source", self.source_name.clone()), ("started", now.to_string())])
                .await
                .map_err(unavailable)?;
        }
        progress.start(if dry_run { "plan" } else { "copy" }, total);
        progress.advance(gone_through);
        let mut batches = 0;
        loop {
            let (next, keys) = self.scan(cursor).await?;
            self.copy_batch(&keys, dry_run, &mut report).await?;
            gone_through += keys.len() as u64;
            progress.advance(keys.len() as u64);
            if !dry_run {
                let mut state = vec![
                    ("cursor", next.to_string()),
                    ("keys", gone_through.to_string()),
                    ("updated", now_ms().to_string()),
                ];
                if next == 0 {
                    state.push(("done", now_ms().to_string()));
                }
                let _: () = target.hset_multiple(&progress_key, &state).await.map_err(unavailable)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
            batches += 1;
            if stop_after.is_some_and(|most| batches >= most) {
                report.stopped = true;
                break;
            }
        }
        progress.finish();
        Ok(report)
    }

    /// Copies one batch of source keys (`dry_run`: counts them).
    async fn copy_batch(&self, keys: &[String], dry_run: bool, report: &mut CopyReport) -> Result<(), StoreError> {
        let plans: Vec<Plan> = keys.iter().map(|key| plan(&self.prefix, key)).collect();
        for (key, plan) in keys.iter().zip(&plans) {
            if !matches!(plan, Plan::Latest(_)) {
                *report.kinds.entry(kind_of(&self.prefix, key)).or_default() += 1;
            }
            if matches!(plan, Plan::Unknown) && report.unknown.len() < 20 {
                report.unknown.push(key.clone());
            }
        }
        // Read what is copied in one pipeline: per key its dump (or, for an idempotency result,
        // its value) and remaining ttl.
        let copied: Vec<(&String, &Plan)> =
            keys.iter().zip(&plans).filter(|(_, plan)| !matches!(plan, Plan::Skip | Plan::Latest(_))).collect();
        let mut read = redis::pipe();
        for (key, plan) in &copied {
            match plan {
                Plan::Idempotency { .. } => read.get(*key),
                _ => read.cmd("DUMP").arg(*key),
            };
            read.pttl(*key);
        }
        let values: Vec<Value> = if copied.is_empty() {
            Vec::new()
        } else {
            read.query_async(&mut self.source.clone()).await.map_err(unavailable)?
        };
        let mut writes: Vec<redis::Cmd> = Vec::new();
        for ((key, plan), pair) in copied.iter().zip(values.chunks(2)) {
            let [value, ttl] = pair else { continue };
            let ttl: i64 = redis::from_redis_value(ttl.clone()).map_err(super::store::unreadable)?;
            // Gone meanwhile (a ttl ran out), or a name that is not UTF-8 (read lossily): reported.
            let (Value::BulkString(value), false) = (value, ttl == -2) else {
                if !matches!(plan, Plan::Idempotency { .. }) && key.contains(char::REPLACEMENT_CHARACTER) {
                    report.unreadable.push((*key).clone());
                }
                continue;
            };
            match plan {
                Plan::Rename(name) => writes.push(restore(name, ttl, value)),
                Plan::Unknown => writes.push(restore(key, ttl, value)),
                Plan::Idempotency { keys, owner, key: idempotency } => {
                    let Ok(ChatEvent::NewMessage { chat, .. }) = event_record::decode(value) else {
                        report.unreadable.push((*key).clone());
                        continue;
                    };
                    let (answer, claim) = Plan::idempotency_keys(keys, *owner, idempotency, chat);
                    writes.push(set(&answer, ttl, value));
                    writes.push(set(&claim, ttl, Keyspace::chat_suffix(chat).as_bytes()));
                }
                Plan::Latest(_) | Plan::Skip => {}
            }
        }
        if !dry_run {
            self.write_all(writes).await?;
        }
        for (key, plan) in keys.iter().zip(&plans) {
            if let Plan::Latest(cluster) = plan {
                self.copy_latest(key, cluster, dry_run, report).await?;
            }
        }
        Ok(())
    }

    /// Copies a `latest` hash, field by field (`HSCAN`), each to its chat's latest key.
    async fn copy_latest(
        &self,
        key: &str,
        cluster: &Keyspace,
        dry_run: bool,
        report: &mut CopyReport,
    ) -> Result<(), StoreError> {
        let mut cursor = 0;
        loop {
            let (next, fields) = self.hscan(key, cursor).await?;
            let mut writes = Vec::new();
            for (field, value) in fields {
                let Some(chat) = Keyspace::parse_chat_suffix(&field) else {
                    report.unreadable.push(format!("{key} {field}"));
                    continue;
                };
                *report.kinds.entry("latest messages").or_default() += 1;
                writes.push(set(&cluster.chat_latest(chat), -1, &value));
            }
            if !dry_run {
                self.write_all(writes).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Sends `writes` to the cluster, [`IN_FLIGHT`] at a time (each to its key's node).
    async fn write_all(&self, writes: Vec<redis::Cmd>) -> Result<(), StoreError> {
        futures_util::stream::iter(writes)
            .map(|command| {
                let mut target = self.target.clone();
                async move { command.query_async::<()>(&mut target).await.map_err(unavailable) }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    /// Pass 3: every source key compared with its copy (type and length; a `latest` entry or an
    /// idempotency result by value).
    pub async fn verify(&self, progress: &dyn Progress, total: Option<u64>) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        progress.start("verify", total);
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan(cursor).await?;
            let mut copies = Vec::new();
            for key in &keys {
                match plan(&self.prefix, key) {
                    Plan::Skip => {}
                    Plan::Rename(name) => copies.push((key.as_str(), name)),
                    Plan::Unknown => copies.push((key.as_str(), key.clone())),
                    Plan::Latest(cluster) => self.verify_latest(key, &cluster, &mut report).await?,
                    Plan::Idempotency { keys, owner, key: idempotency } => {
                        self.verify_idempotency(key, &keys, owner, &idempotency, &mut report).await?;
                    }
                }
            }
            self.verify_copies(&copies, &mut report).await?;
            progress.advance(keys.len() as u64);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        progress.finish();
        Ok(report)
    }

    /// Compares the type and length of each source key with its copy's: one pipeline to the
    /// source, the copies [`IN_FLIGHT`] at a time.
    async fn verify_copies(&self, copies: &[(&str, String)], report: &mut VerifyReport) -> Result<(), StoreError> {
        if copies.is_empty() {
            return Ok(());
        }
        let mut sizes = redis::pipe();
        for (key, _) in copies {
            sizes.add_command(size(key));
        }
        let expected: Vec<(String, u64)> = sizes.query_async(&mut self.source.clone()).await.map_err(unavailable)?;
        let found: Vec<(String, u64)> = futures_util::stream::iter(copies)
            .map(|(_, name)| {
                let (mut target, command) = (self.target.clone(), size(name));
                async move { command.query_async(&mut target).await.map_err(unavailable) }
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        for (((key, name), expected), found) in copies.iter().zip(expected).zip(found) {
            if expected.0 == "none" {
                continue; // gone meanwhile (a ttl ran out)
            }
            match Keyspace::parse_standalone(&self.prefix, key) {
                Some((_, StoredKey::Chat(_))) => report.chats += 1,
                Some((_, StoredKey::Inbox(_))) => report.inboxes += 1,
                _ => {}
            }
            report.keys += 1;
            if found != expected {
                report.mismatches.push(Mismatch {
                    source: (*key).to_owned(),
                    target: name.clone(),
                    expected: format!("{} of {}", expected.0, expected.1),
                    found: format!("{} of {}", found.0, found.1),
                });
            }
        }
        Ok(())
    }

    /// Compares an idempotency result with the answer and claim it became.
    async fn verify_idempotency(
        &self,
        key: &str,
        keys: &Keyspace,
        owner: UserId,
        idempotency: &IdempotencyKey,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let Some(value): Option<Vec<u8>> = self.source.clone().get(key).await.map_err(unavailable)? else {
            return Ok(());
        };
        let Ok(ChatEvent::NewMessage { chat, .. }) = event_record::decode(&value) else { return Ok(()) };
        let (answer, claim) = Plan::idempotency_keys(keys, owner, idempotency, chat);
        report.keys += 1;
        let mut target = self.target.clone();
        let found: Option<Vec<u8>> = target.get(&answer).await.map_err(unavailable)?;
        let claimed: Option<String> = target.get(&claim).await.map_err(unavailable)?;
        let suffix = Keyspace::chat_suffix(chat);
        if found.as_ref() != Some(&value) || claimed.as_ref() != Some(&suffix) {
            report.mismatches.push(Mismatch {
                source: key.to_owned(),
                target: format!("{answer} and {claim}"),
                expected: format!("the send's answer, claimed for {suffix}"),
                found: format!(
                    "{} answer, claim {}",
                    if found.as_ref() == Some(&value) { "the same" } else { "another or no" },
                    claimed.as_deref().unwrap_or("missing")
                ),
            });
        }
        Ok(())
    }

    async fn verify_latest(&self, key: &str, cluster: &Keyspace, report: &mut VerifyReport) -> Result<(), StoreError> {
        let mut cursor = 0;
        loop {
            let (next, fields) = self.hscan(key, cursor).await?;
            for (field, value) in fields {
                let Some(chat) = Keyspace::parse_chat_suffix(&field) else { continue };
                report.keys += 1;
                let name = cluster.chat_latest(chat);
                let found: Option<Vec<u8>> = self.target.clone().get(&name).await.map_err(unavailable)?;
                if found.as_ref() != Some(&value) {
                    report.mismatches.push(Mismatch {
                        source: format!("{key} {field}"),
                        target: name,
                        expected: "the chat's latest message".into(),
                        found: if found.is_some() { "another message" } else { "none" }.into(),
                    });
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// `EVAL` of [`SIZE`] for `key` (routed to the key's node on the cluster).
fn size(key: &str) -> redis::Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(SIZE).arg(1).arg(key);
    command
}

/// `RESTORE name ttl value REPLACE` (ttl -1: none).
fn restore(name: &str, ttl: i64, value: &[u8]) -> redis::Cmd {
    let mut command = redis::cmd("RESTORE");
    command.arg(name).arg(ttl.max(0)).arg(value).arg("REPLACE");
    command
}

/// `SET name value [PX ttl]` (ttl -1: none).
fn set(name: &str, ttl: i64, value: &[u8]) -> redis::Cmd {
    let mut command = redis::cmd("SET");
    command.arg(name).arg(value);
    if ttl > 0 {
        command.arg("PX").arg(ttl);
    }
    command
}

/// `text` with the glob characters of `SCAN … MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A Redis URL without its credentials, to be shown and stored.
fn without_password(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

fn now_ms() -> i64 {
    chat_domain::Timestamp::now().epoch_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{Channel, ChatTarget, TopicId};

    #[test]
    fn every_standalone_key_goes_to_its_cluster_name() {
        let p = "senna-sockets";
        let handle = DomainHandle::parse("myplatform").expect("valid");
        let cluster = Keyspace::with_layout(p, &handle, Layout::Cluster);
        let base = "senna-sockets:messages:myplatform";
        let rename = |old: &str, new: &str| {
            assert_eq!(plan(p, &format!("{base}:{old}")), Plan::Rename(format!("{base}:{new}")), "{old}");
        };
        rename("dm:99-1000", "{dm:99-1000}");
        rename("dm:99-1000:data", "{dm:99-1000}:data");
        rename("dm:99-1000:order", "{dm:99-1000}:order");
        rename("dm:99-1000:by:99", "{dm:99-1000}:by:99");
        rename("dm:99-1000:read", "{dm:99-1000}:read");
        rename("topic:42:index", "{topic:42}:index");
        rename("topic:42", "{topic:42}");
        rename("inbox:7", "inbox:{user:7}");
        rename("unread:7", "unread:{user:7}");
        rename("activity:7", "activity:{user:7}");
        rename("history:user:7", "history:{user:7}");
        rename("position:topic:42", "position:{topic:42}");

        assert_eq!(plan(p, &format!("{base}:latest")), Plan::Latest(cluster.clone()));
        let user = |n| UserId::new(n).expect("valid");
        let key = IdempotencyKey::parse("retry:1").expect("valid");
        assert_eq!(
            plan(p, &format!("{base}:idempotency:99:retry:1")),
            Plan::Idempotency { keys: cluster.clone(), owner: user(99), key: key.clone() }
        );
        let dm = Chat::between(user(99), ChatTarget::User(user(1000)));
        assert_eq!(
            Plan::idempotency_keys(&cluster, user(99), &key, dm),
            (
                format!("{base}:{{dm:99-1000}}:idempotency:99:retry:1"),
                format!("{base}:idempotency:{{user:99}}:retry:1")
            )
        );
        // The cluster store names them so.
        assert_eq!(
            Plan::idempotency_keys(&cluster, user(99), &key, dm),
            (cluster.chat_idempotency(dm, user(99), &key), cluster.idempotency_claim(user(99), &key))
        );
        assert_eq!(
            cluster.chat_latest(Chat::Topic(TopicId::new(42).expect("valid"))),
            format!("{base}:{{topic:42}}:latest")
        );
        assert_eq!(
            plan(p, &format!("{base}:history:topic:42")),
            Plan::Rename(cluster.event_history(Channel::Topic(TopicId::new(42).expect("valid"))))
        );

        for skipped in [
            format!("{base}:presence:7"),
            "senna-sockets:instances".into(),
            "senna-sockets:instances:host-1.42".into(),
            "senna-sockets:migration".into(),
        ] {
            assert_eq!(plan(p, &skipped), Plan::Skip, "{skipped}");
        }
        for unknown in [format!("{base}:dm:1000-99"), format!("{base}:something"), "senna-sockets:instancesx".into()] {
            assert_eq!(plan(p, &unknown), Plan::Unknown, "{unknown}");
        }
        assert_eq!(kind_of(p, &format!("{base}:dm:99-1000:data")), "chat data");
        assert_eq!(kind_of(p, "senna-sockets:instances"), "skipped (presence, instances)");
    }

    #[test]
    fn helpers_escape_and_hide() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(without_password("redis://:secret@host:6379/0"), "redis://host:6379/0");
        assert_eq!(without_password("redis://host:6379"), "redis://host:6379");
    }
}
