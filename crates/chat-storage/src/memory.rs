//! The in-memory store: the embedded default when no Redis is configured. A real implementation
//! of [`ChatStore`] with the same behaviour as Redis (one lock makes every operation atomic), but
//! nothing survives a restart and nothing is shared between processes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chat_domain::{
    Chat, ChatTarget, DomainHandle, Message, MessageId, PageRequest, Timestamp, UserId,
};

use crate::{
    Change, ChatStore, Decide, HistoryPage, InboxEntry, InboxPage, ModifyError, StoreError,
};

/// Chats kept in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tenants: Mutex<HashMap<DomainHandle, Tenant>>,
}

#[derive(Debug, Default)]
struct Tenant {
    chats: HashMap<Chat, ChatLog>,
    inboxes: HashMap<UserId, Inbox>,
    last_active: HashMap<UserId, Timestamp>,
}

#[derive(Debug, Default)]
struct ChatLog {
    /// Message ids in the order they were sent.
    order: Vec<MessageId>,
    messages: HashMap<MessageId, Message>,
}

impl ChatLog {
    fn latest(&self) -> Option<&Message> {
        self.order.last().and_then(|id| self.messages.get(id))
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
        self.ranked
            .insert((at.epoch_millis(), entry.to_string(), entry));
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DomainHandle, Tenant>> {
        // A panic while holding the lock cannot leave a half-applied write (each operation
        // validates before it mutates), so the data is still consistent.
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
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
    ) -> Result<(), StoreError> {
        let mut tenants = self.lock();
        let tenant = tenants.entry(tenant.clone()).or_default();
        let log = tenant.chats.entry(chat).or_default();
        log.order.push(message.id);
        log.messages.insert(message.id, message.clone());
        for (owner, entry) in chat.inbox_entries_on_send(message.author) {
            tenant
                .inboxes
                .entry(owner)
                .or_default()
                .touch(entry, message.timestamp);
        }
        tenant.last_active.insert(message.author, message.timestamp);
        Ok(())
    }

    async fn history(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        page: PageRequest,
    ) -> Result<HistoryPage, StoreError> {
        let tenants = self.lock();
        let Some(log) = tenants.get(tenant).and_then(|t| t.chats.get(&chat)) else {
            return Ok(HistoryPage {
                total: 0,
                messages: Vec::new(),
            });
        };
        let (start, end) = page_bounds(log.order.len(), page);
        let messages = log.order[start..end]
            .iter()
            .filter_map(|id| log.messages.get(id).cloned())
            .collect();
        Ok(HistoryPage {
            total: log.order.len() as u64,
            messages,
        })
    }

    async fn inbox(
        &self,
        tenant: &DomainHandle,
        owner: UserId,
        page: PageRequest,
    ) -> Result<InboxPage, StoreError> {
        let tenants = self.lock();
        let Some(tenant) = tenants.get(tenant) else {
            return Ok(InboxPage {
                total: 0,
                entries: Vec::new(),
            });
        };
        let Some(inbox) = tenant.inboxes.get(&owner) else {
            return Ok(InboxPage {
                total: 0,
                entries: Vec::new(),
            });
        };
        let skip = usize::try_from(page.skip()).unwrap_or(usize::MAX);
        let entries = inbox
            .ranked
            .iter()
            .rev()
            .skip(skip)
            .take(page.per_page() as usize)
            .map(|(score, _, target)| InboxEntry {
                target: *target,
                updated: Timestamp::from_epoch_millis(*score),
                latest: tenant
                    .chats
                    .get(&Chat::between(owner, *target))
                    .and_then(ChatLog::latest)
                    .cloned(),
            })
            .collect();
        Ok(InboxPage {
            total: inbox.ranked.len() as u64,
            entries,
        })
    }

    async fn modify(
        &self,
        tenant: &DomainHandle,
        chat: Chat,
        id: MessageId,
        decide: &Decide<'_>,
    ) -> Result<Message, ModifyError> {
        let mut tenants = self.lock();
        let log = tenants
            .get_mut(tenant)
            .and_then(|t| t.chats.get_mut(&chat))
            .ok_or(ModifyError::NotFound)?;
        let current = log.messages.get(&id).ok_or(ModifyError::NotFound)?;
        match decide(current).map_err(ModifyError::Rejected)? {
            Change::Replace(updated) => {
                log.messages.insert(id, updated.clone());
                Ok(updated)
            }
            Change::Remove => {
                log.order.retain(|kept| *kept != id);
                log.messages.remove(&id).ok_or(ModifyError::NotFound)
            }
        }
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
