//! The [`ChatStore`] and [`EventBus`] of [`ClusterStore`]: each operation a script in its chat's
//! slot, then the fan-out to its users' slots ([`ClusterStore::complete`]).

use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::{
    Channel, Chat, ChatEvent, ChatTarget, DomainHandle, HistoryQuery, Keyspace, Message, MessageId, PageRequest,
    Position, Timestamp, UserId,
};
use futures_util::future::try_join_all;
use redis::AsyncCommands;

use super::{ClusterStore, Failpoint};
use crate::redis::shared;
use crate::redis::store::{
    MODIFY_ATTEMPTS, MODIFY_BACKOFF, decode_or_skip, message_id, part, position, status_of, unavailable,
};
use crate::{
    AlreadyAttached, Appended, ChatStore, Decide, EventBus, EventSink, HistoryPage, Idempotency, InboxEntry, InboxPage,
    LookupError, ModifyError, ReadState, Replay, StoreError, event_record, record,
};

impl ClusterStore {
    /// The fan-out a chat step left: finished at once when it can be (the rest waits for the
    /// repair pass; the write itself is safe, so this never fails the caller).
    async fn fan_out(&self, tenant: &DomainHandle, chat: Chat, pending: Vec<String>) {
        self.failpoint(Failpoint::AfterChatStep).await;
        if let Err(error) = self.complete(tenant, chat, pending).await {
            tracing::warn!(%error, "a fan-out is left for the repair pass");
        }
    }

    /// What an earlier use of `idempotency`'s key by `message`'s author in another chat answers:
    /// the key is claimed for `chat` in the author's slot when unused (the chat's own slot holds
    /// the answer itself), so a key reused for another chat is refused as on one server.
    async fn claimed_elsewhere(
        &self,
        keys: &Keyspace,
        chat: Chat,
        message: &Message,
        idempotency: &Idempotency,
    ) -> Result<Option<Appended>, StoreError> {
        let suffix = Keyspace::chat_suffix(chat);
        let ttl = u64::try_from(idempotency.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection().await?;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys.idempotency_claim(message.author, &idempotency.key))
            .arg(&suffix)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let Some(first_chat) = claimed.as_deref().and_then(Keyspace::parse_chat_suffix).filter(|first| *first != chat)
        else {
            return Ok(None);
        };
        let answer: Option<Vec<u8>> = connection
            .get(keys.chat_idempotency(first_chat, message.author, &idempotency.key))
            .await
            .map_err(unavailable)?;
        Ok(Some(match answer.map(|payload| event_record::decode(&payload)).transpose()? {
            Some(ChatEvent::NewMessage { chat, message }) => Appended::Replayed { chat, message },
            // That send's answer is gone (or never came): the key is still another chat's.
            _ => Appended::Replayed { chat: first_chat, message: message.clone() },
        }))
    }
}

#[async_trait]
impl ChatStore for ClusterStore {
    async fn append(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        message: &Message,
        idempotency: Option<&Idempotency>,
    ) -> Result<Appended, StoreError> {
        let keys = self.keys(tenant);
        if let Some(idempotency) = idempotency
            && let Some(replayed) = self.claimed_elsewhere(&keys, chat, message, idempotency).await?
        {
            return Ok(replayed);
        }
        let id = message.id.to_string();
        let event = ChatEvent::NewMessage { chat, message: message.clone() };
        let fanout = keys.fanout(chat);
        let mut call = self.cluster_scripts.chat_send.prepare_invoke();
        call.key(keys.chat(chat))
            .key(keys.chat_data(chat))
            .key(keys.chat_index(chat))
            .key(keys.chat_order(chat))
            .key(keys.chat_by(chat, message.author))
            .key(keys.chat_latest(chat))
            .key(&fanout)
            .key(self.bucket_of(&fanout))
            .key(keys.chat_read(chat));
        let topic_channel = match chat {
            Chat::Topic(topic) => {
                let channel = Channel::Topic(topic);
                call.key(keys.event_position(channel)).key(keys.event_history(channel));
                keys.channel(channel)
            }
            Chat::Direct { .. } => {
                let ChatTarget::User(recipient) = chat.seen_by(message.author) else { unreachable!("a DM") };
                call.key(keys.chat_by(chat, recipient));
                String::new()
            }
        };
        let inboxes = chat.inbox_entries_on_send(message.author);
        call.arg(&id)
            .arg(record::encode(message))
            .arg(message.timestamp.epoch_millis())
            .arg(message.timestamp.js_date_string())
            .arg(event_record::encode(&event))
            .arg(self.history.size)
            .arg(self.history_ttl_ms())
            .arg(idempotency.map(|i| i.ttl.as_millis().max(1).to_string()).unwrap_or_default())
            .arg(topic_channel)
            .arg(Keyspace::fanout_member(tenant, chat))
            .arg(message.author.get())
            .arg(inboxes.len());
        for (owner, entry) in inboxes {
            let counts = owner != message.author && matches!(chat, Chat::Direct { .. });
            call.arg(owner.get()).arg(entry.to_string()).arg(if counts { "1" } else { "0" });
        }
        if let Some(idempotency) = idempotency {
            call.key(keys.chat_idempotency(chat, message.author, &idempotency.key));
        }
        let mut connection = self.connection().await?;
        let answer: Vec<redis::Value> = call.invoke_async(&mut connection).await.map_err(unavailable)?;
        if status_of(&answer)? == 0 {
            let first: Vec<u8> = part(&answer, 1)?;
            return match event_record::decode(&first)? {
                ChatEvent::NewMessage { chat, message } => Ok(Appended::Replayed { chat, message }),
                _ => Err(StoreError::Backend("an idempotency key holds another event".into())),
            };
        }
        self.replicate(&mut connection, &fanout).await?;
        metrics::counter!("chatd_events_published_total").increment(1);
        self.fan_out(tenant, chat, part(&answer, 2)?).await;
        Ok(Appended::Stored)
    }

    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        query: HistoryQuery,
        reader: UserId,
    ) -> Result<HistoryPage, LookupError> {
        let keys = self.keys(tenant);
        // The position first: every event up to it was recorded after its chat step, so the page
        // read next reflects it.
        let channel = chat.channel_of(reader);
        let position =
            shared::replay(&self.scripts, &mut self.connection().await?, &keys, self.history, (channel, None, 1))
                .await?
                .now;
        let readers = chat.readers_shown_to(reader);
        let mut call = self.cluster_scripts.chat_history.prepare_invoke();
        call.key(keys.chat(chat))
            .key(keys.chat_data(chat))
            .key(keys.chat_index(chat))
            .key(keys.chat_order(chat))
            .key(keys.chat_read(chat));
        shared::history_args(&mut call, query, &readers);
        let answer: Vec<redis::Value> = call.invoke_async(&mut self.connection().await?).await.map_err(unavailable)?;
        match status_of(&answer)? {
            1 => {}
            -3 => return Err(LookupError::UnknownMessage),
            -1 => return Err(StoreError::Backend(NOT_MIGRATED.into()).into()),
            other => return Err(StoreError::Backend(format!("history answered {other}")).into()),
        }
        Ok(shared::history_page(&answer, (2, 3), query, readers, position)?)
    }

    async fn read(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        reader: UserId,
        up_to: Option<MessageId>,
    ) -> Result<ReadState, LookupError> {
        let keys = self.keys(tenant);
        let fanout = keys.fanout(chat);
        let mut call = self.cluster_scripts.chat_read.prepare_invoke();
        call.key(keys.chat_order(chat))
            .key(keys.chat_by(chat, reader))
            .key(keys.chat_read(chat))
            .key(keys.chat_index(chat))
            .key(&fanout)
            .key(self.bucket_of(&fanout))
            .arg(up_to.map(|id| id.to_string()).unwrap_or_default())
            .arg(reader.get())
            .arg(Timestamp::now().epoch_millis())
            .arg(if matches!(chat, Chat::Direct { .. }) { "1" } else { "0" })
            .arg(Keyspace::fanout_member(tenant, chat));
        let audience = chat.read_audience(reader);
        let head = event_record::read_head(chat, reader);
        call.arg(audience.len());
        for (channel, counts) in audience {
            let Channel::User(user) = channel else { unreachable!("read events go to users' channels") };
            call.arg(user.get()).arg(&head).arg(if counts { "1" } else { "0" });
        }
        let answer: Vec<redis::Value> = call.invoke_async(&mut self.connection().await?).await.map_err(unavailable)?;
        match status_of(&answer)? {
            -2 => Err(LookupError::EmptyChat),
            -3 => Err(LookupError::UnknownMessage),
            moved @ (0 | 1) => {
                let state = ReadState { message: message_id(part(&answer, 1)?)?, unread: part(&answer, 2)? };
                if moved == 1 {
                    metrics::counter!("chatd_events_published_total").increment(1);
                    self.fan_out(tenant, chat, part(&answer, 4)?).await;
                }
                Ok(state)
            }
            other => Err(StoreError::Backend(format!("read answered {other}")).into()),
        }
    }

    async fn inbox(&self, tenant: &DomainHandle, owner: UserId, page: PageRequest) -> Result<InboxPage, StoreError> {
        let keys = self.keys(tenant);
        let first = page.skip();
        let last = first + u64::from(page.per_page()) - 1;
        let channel = Channel::User(owner);
        let mut connection = self.connection().await?;
        let answer: Vec<redis::Value> = self
            .cluster_scripts
            .user_inbox
            .key(keys.event_position(channel))
            .key(keys.event_history(channel))
            .key(keys.inbox(owner))
            .key(keys.unread(owner))
            .arg(first)
            .arg(last)
            .arg(owner.get())
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let (epoch, seq, total, unread_total): (String, u64, u64, u64) =
            (part(&answer, 0)?, part(&answer, 1)?, part(&answer, 2)?, part(&answer, 3)?);
        let mut rows = Vec::new();
        for at in (4..answer.len()).step_by(3) {
            let (member, score, count): (String, String, u64) =
                (part(&answer, at)?, part(&answer, at + 1)?, part(&answer, at + 2)?);
            match ChatTarget::parse_member(&member) {
                Ok(target) => rows.push((target, score, count)),
                Err(error) => tracing::warn!(%error, member, "skipping an inbox entry"),
            }
        }
        // Each chat's side from its own slot, all at once.
        let summaries = rows.iter().map(|(target, ..)| {
            let chat = Chat::between(owner, *target);
            let mut connection = connection.clone();
            let call = {
                let mut call = self.cluster_scripts.chat_summary.prepare_invoke();
                call.key(keys.chat_latest(chat))
                    .key(keys.chat(chat))
                    .key(keys.chat_data(chat))
                    .key(keys.chat_order(chat))
                    .key(keys.chat_by(chat, owner))
                    .key(keys.chat_read(chat))
                    .arg(owner.get())
                    .arg(if matches!(chat, Chat::Topic(_)) { "1" } else { "0" });
                call
            };
            async move { call.invoke_async::<(Option<String>, u64)>(&mut connection).await.map_err(unavailable) }
        });
        let summaries = try_join_all(summaries).await?;
        let entries = rows
            .into_iter()
            .zip(summaries)
            .filter_map(|((target, score, count), (latest, topic_unread))| {
                let score: f64 = score.parse().ok()?;
                Some(InboxEntry {
                    target,
                    updated: Timestamp::from_epoch_millis(score as i64),
                    latest: latest.as_deref().and_then(decode_or_skip),
                    unread: match target {
                        ChatTarget::User(_) => count,
                        ChatTarget::Topic(_) => topic_unread,
                    },
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
        let (data_key, field) = (keys.chat_data(chat), id.to_string());
        let fanout = keys.fanout(chat);
        let mut connection = self.connection().await?;
        for attempt in 0..MODIFY_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(MODIFY_BACKOFF * attempt).await;
            }
            let stored: Option<String> = connection.hget(&data_key, &field).await.map_err(unavailable)?;
            let stored = stored.ok_or(ModifyError::NotFound)?;
            let current = record::decode(&stored)?;
            let change = decide(&current).map_err(ModifyError::Rejected)?;
            let planned = shared::plan(chat, id, current, change);
            let (operation, mine, counted, seen_by) =
                (planned.operation, planned.mine, planned.counted, planned.seen_by);
            let (replacement, result, event) = (planned.replacement, planned.result, planned.event);
            let mut call = self.cluster_scripts.chat_modify.prepare_invoke();
            call.key(&data_key)
                .key(keys.chat_latest(chat))
                .key(keys.chat_index(chat))
                .key(keys.chat_order(chat))
                .key(keys.chat_by(chat, mine))
                .key(keys.chat_read(chat))
                .key(keys.chat_by(chat, counted))
                .key(&fanout)
                .key(self.bucket_of(&fanout));
            let (topic_channel, participants) = match chat {
                Chat::Topic(topic) => {
                    let channel = Channel::Topic(topic);
                    call.key(keys.event_position(channel)).key(keys.event_history(channel));
                    (keys.channel(channel), vec![])
                }
                Chat::Direct { lo, hi } => (String::new(), vec![lo, hi]),
            };
            call.arg(&field)
                .arg(&stored)
                .arg(operation)
                .arg(replacement)
                .arg(event_record::encode(&event))
                .arg(Timestamp::now().epoch_millis())
                .arg(self.history.size)
                .arg(self.history_ttl_ms())
                .arg(counted.get())
                .arg(if participants.is_empty() { "0" } else { "1" })
                .arg(Keyspace::fanout_member(tenant, chat))
                .arg(topic_channel)
                .arg(participants.len());
            for user in &participants {
                call.arg(user.get());
            }
            let read_audience = seen_by.map(|reader| chat.read_audience(reader)).unwrap_or_default();
            let head = seen_by.map(|reader| event_record::read_head(chat, reader)).unwrap_or_default();
            call.arg(read_audience.len());
            for (channel, counts) in read_audience {
                let Channel::User(user) = channel else { unreachable!("read events go to users' channels") };
                call.arg(user.get()).arg(&head).arg(if counts { "1" } else { "0" });
            }
            let answer: Vec<redis::Value> = call.invoke_async(&mut connection).await.map_err(unavailable)?;
            if status_of(&answer)? == 1 {
                metrics::counter!("chatd_events_published_total").increment(1);
                if part::<u64>(&answer, 1)? > 0 {
                    self.fan_out(tenant, chat, part(&answer, 2)?).await;
                }
                return Ok(result);
            }
        }
        Err(ModifyError::Contended)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await.map_err(unavailable)?;
        Ok(())
    }
}

/// What a chat the cluster store cannot page means.
const NOT_MIGRATED: &str =
    "a chat written by the original service, not indexed: bring standalone data with `chatd migrate`";

#[async_trait]
impl EventBus for ClusterStore {
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<(), AlreadyAttached> {
        self.pubsub.sink.attach(sink)
    }

    async fn publish(&self, tenant: &DomainHandle, channels: &[Channel], event: &ChatEvent) -> Result<(), StoreError> {
        let keys = self.keys(tenant);
        let payload = event_record::encode(event);
        let connection = self.connection().await?;
        let sends = channels.iter().map(|channel| {
            let mut connection = connection.clone();
            let mut command = redis::cmd("SPUBLISH");
            command.arg(keys.channel(*channel)).arg(&payload);
            async move { command.query_async::<()>(&mut connection).await.map_err(unavailable) }
        });
        try_join_all(sends).await?;
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
        shared::replay(&self.scripts, &mut self.connection().await?, &keys, self.history, (channel, since, limit)).await
    }
}
