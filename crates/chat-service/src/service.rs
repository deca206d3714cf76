//! [`ChatService`]: the use cases, each a few calls to the store and the directory.

use std::collections::{BTreeSet, HashMap};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use chat_domain::{
    Caller, Chat, ChatTarget, DomainError, DomainHandle, Edit, HistoryQuery, IdempotencyKey, Message, MessageBody,
    MessageId, PageRequest, PagingLimits, TopicId, UserId,
};
use chat_identity::directory::degraded_profile;
use chat_identity::{Directory, Profile};
use chat_storage::{Appended, Change, ChatStore, Decide, Idempotency, LookupError};

use crate::{Changed, History, Inbox, InboxItem, NonZeroDuration, ReadMark, Sent, ServiceError};

/// The limits the use cases enforce, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The longest text a message may carry, in characters.
    pub max_text_chars: NonZeroUsize,
    /// Default and maximum page sizes.
    pub paging: PagingLimits,
    /// Sends per second one user may make, on average (0: no limit).
    pub sends_per_second: u32,
    /// Sends one user may make in a burst above the average.
    pub send_burst: NonZeroU32,
    /// How long a send's idempotency key is remembered.
    pub idempotency_ttl: NonZeroDuration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            max_text_chars: const { NonZeroUsize::new(4000).expect("not zero") },
            paging: PagingLimits::default(),
            sends_per_second: 20,
            send_burst: const { NonZeroU32::new(40).expect("not zero") },
            idempotency_ttl: NonZeroDuration::from_secs(const { NonZeroU64::new(86_400).expect("not zero") }),
        }
    }
}

/// Sends per user (and tenant), in this process.
type SendLimiter = RateLimiter<(DomainHandle, UserId), DashMapStateStore<(DomainHandle, UserId)>, DefaultClock>;

/// Keys of users idle long enough are dropped once the table grows past this many.
const LIMITER_TIDY_AT: usize = 100_000;

/// The chat use cases over a store and a directory of profiles.
///
/// ```
/// use std::sync::Arc;
///
/// use chat_domain::{Caller, ChatTarget, DomainHandle, HistoryQuery, MessageBody, MessageText, PageRequest, UserId};
/// use chat_identity::BuiltinDirectory;
/// use chat_service::{ChatService, ServiceSettings};
/// use chat_storage::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = ChatService::new(
///     Arc::new(MemoryStore::new()),
///     Arc::new(BuiltinDirectory::new()),
///     ServiceSettings::default(),
/// );
/// let tenant = DomainHandle::parse("example")?;
/// let (one, two) = (UserId::new(1)?, UserId::new(2)?);
/// let text = MessageBody::Text(MessageText::parse("hi".into(), service.settings().max_text_chars.get())?);
/// service.send(&tenant, &Caller::user_with_every_topic(one), ChatTarget::User(two), text, None).await?;
///
/// let page = HistoryQuery::Page(PageRequest::new(1, 10));
/// let history = service.history(&tenant, &Caller::user_with_every_topic(two), ChatTarget::User(one), page).await?;
/// assert_eq!(history.total, 1);
/// assert_eq!(history.messages[0].0.author, one);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChatService {
    store: Arc<dyn ChatStore>,
    directory: Arc<dyn Directory>,
    /// Tenants with a directory of their own (their own platform API); the others use `directory`.
    tenant_directories: HashMap<DomainHandle, Arc<dyn Directory>>,
    settings: ServiceSettings,
    sends: Option<Arc<SendLimiter>>,
}

impl ChatService {
    /// The use cases over these adapters.
    pub fn new(store: Arc<dyn ChatStore>, directory: Arc<dyn Directory>, settings: ServiceSettings) -> Self {
        let sends = NonZeroU32::new(settings.sends_per_second)
            .map(|rate| Arc::new(RateLimiter::dashmap(Quota::per_second(rate).allow_burst(settings.send_burst))));
        Self { store, directory, tenant_directories: HashMap::new(), settings, sends }
    }

    /// Gives `tenant` a directory of its own (its own platform API), used for its profiles in place
    /// of the one every other tenant shares.
    pub fn with_tenant_directory(mut self, tenant: DomainHandle, directory: Arc<dyn Directory>) -> Self {
        self.tenant_directories.insert(tenant, directory);
        self
    }

    /// Where `tenant`'s profiles come from.
    fn directory(&self, tenant: &DomainHandle) -> &dyn Directory {
        self.tenant_directories.get(tenant).unwrap_or(&self.directory).as_ref()
    }

    /// Refuses a send beyond the user's rate (per process: each instance counts its own requests).
    fn check_send_rate(&self, tenant: &DomainHandle, caller: UserId) -> Result<(), ServiceError> {
        let Some(limiter) = &self.sends else { return Ok(()) };
        if limiter.len() > LIMITER_TIDY_AT {
            limiter.retain_recent();
        }
        limiter.check_key(&(tenant.clone(), caller)).map_err(|not_until| ServiceError::RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// The limits in force (transports parse input with them).
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// Whether storage answers: what a readiness check asks.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    /// `caller` sends `body` to `target`. With an idempotency `key` the caller already sent with
    /// (within the ttl), nothing is written: the first send's message comes back (`replayed`), or
    /// [`ServiceError::IdempotencyKeyReused`] when that send was to another chat or said otherwise.
    pub async fn send(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        body: MessageBody,
        key: Option<IdempotencyKey>,
    ) -> Result<Sent, ServiceError> {
        caller.check(target)?;
        let caller = caller.user();
        if target == ChatTarget::User(caller) {
            return Err(DomainError::InvalidArgument("You cannot send a message to yourself".into()).into());
        }
        self.check_send_rate(tenant, caller)?;
        let chat = Chat::between(caller, target);
        let message = Message::new(caller, body);
        let idempotency = key.map(|key| Idempotency { key, ttl: self.settings.idempotency_ttl.get() });
        match self.store.append(tenant, chat, &message, idempotency.as_ref()).await? {
            Appended::Stored => Ok(Sent { chat, target, message, replayed: false }),
            Appended::Replayed { chat: first_chat, message: first }
                if first_chat == chat && first.body == message.body =>
            {
                Ok(Sent { chat, target, message: first, replayed: true })
            }
            Appended::Replayed { .. } => Err(ServiceError::IdempotencyKeyReused),
        }
    }

    /// One page of the chat `caller` has with `target`, with profiles and read positions. A cursor
    /// that names no message of the chat is refused.
    pub async fn history(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        query: HistoryQuery,
    ) -> Result<History, ServiceError> {
        caller.check(target)?;
        let chat = Chat::between(caller.user(), target);
        let stored = self.store.history(tenant, chat, query, caller.user()).await.map_err(|error| match error {
            LookupError::UnknownMessage | LookupError::EmptyChat => {
                ServiceError::from(DomainError::InvalidArgument("The cursor names no message of this chat".into()))
            }
            LookupError::Store(store) => store.into(),
        })?;
        let mut users: BTreeSet<UserId> = stored.messages.iter().map(|m| m.author).collect();
        let topics: Vec<TopicId> = match target {
            ChatTarget::User(other) => {
                users.insert(other);
                Vec::new()
            }
            ChatTarget::Topic(topic) => vec![topic],
        };
        let users: Vec<UserId> = users.into_iter().collect();
        let (user_profiles, topic_profiles) = tokio::join!(self.users(tenant, &users), self.topics(tenant, &topics));
        let peer = match target {
            ChatTarget::User(other) => profile_of(&user_profiles, other),
            ChatTarget::Topic(topic) => profile_of(&topic_profiles, topic),
        };
        let messages = stored
            .messages
            .into_iter()
            .map(|message| {
                let author = profile_of(&user_profiles, message.author);
                (message, author)
            })
            .collect();
        Ok(History {
            chat,
            query,
            total: stored.total,
            peer,
            messages,
            position: stored.position,
            more: stored.more,
            read: stored.read,
        })
    }

    /// `caller` has read the chat with `target` up to message `up_to` (`None`: its latest message):
    /// their read position moves there unless it is already there or later, and every device of
    /// theirs (and, in a DM, the other participant) hears it.
    pub async fn read(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        up_to: Option<MessageId>,
    ) -> Result<ReadMark, ServiceError> {
        caller.check(target)?;
        let chat = Chat::between(caller.user(), target);
        let state = self.store.read(tenant, chat, caller.user(), up_to).await.map_err(|error| match error {
            LookupError::UnknownMessage => ServiceError::from(DomainError::MessageNotFound),
            LookupError::EmptyChat => ServiceError::from(DomainError::ChatNotFound),
            LookupError::Store(store) => store.into(),
        })?;
        Ok(ReadMark { chat, target, message: state.message, unread: state.unread })
    }

    /// One page of `caller`'s inbox, with each chat's profile and latest message. A topic the caller
    /// posted in but is no longer granted keeps its entry, without its latest message.
    pub async fn inbox(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Inbox, ServiceError> {
        let stored = self.store.inbox(tenant, caller.user(), page).await?;
        let (mut users, mut topics) = (Vec::new(), Vec::new());
        for entry in &stored.entries {
            match entry.target {
                ChatTarget::User(user) => users.push(user),
                ChatTarget::Topic(topic) => topics.push(topic),
            }
        }
        let (user_profiles, topic_profiles) = tokio::join!(self.users(tenant, &users), self.topics(tenant, &topics));
        let items = stored
            .entries
            .into_iter()
            .map(|entry| InboxItem {
                profile: match entry.target {
                    ChatTarget::User(user) => profile_of(&user_profiles, user),
                    ChatTarget::Topic(topic) => profile_of(&topic_profiles, topic),
                },
                target: entry.target,
                updated: entry.updated,
                latest: entry.latest.filter(|_| caller.check(entry.target).is_ok()),
                unread: entry.unread,
            })
            .collect();
        Ok(Inbox { page, total: stored.total, items, position: stored.position, unread_total: stored.unread_total })
    }

    /// `caller` edits message `id` of the chat with `target` (see [`Message::edited`]).
    pub async fn edit(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        id: MessageId,
        edit: Edit,
    ) -> Result<Changed, ServiceError> {
        // An edit either changes the author's content or marks a recipient's message seen, never
        // both (`Message::edited`), and each has its own event. Marking seen also moves the
        // recipient's read position there.
        let reader = caller.user();
        let change = move |message| match edit.mark_seen {
            true => Change::MarkSeen { message, by: reader },
            false => Change::Replace(message),
        };
        let decide = |current: &Message| current.edited(reader, edit.clone()).map(change);
        self.change(tenant, caller, target, id, &decide).await
    }

    /// `caller` deletes message `id` of the chat with `target`; only its author may.
    pub async fn delete(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        id: MessageId,
    ) -> Result<Changed, ServiceError> {
        let decide = |current: &Message| current.check_delete(caller.user()).map(|()| Change::Remove);
        self.change(tenant, caller, target, id, &decide).await
    }

    async fn change(
        &self,
        tenant: &DomainHandle,
        caller: &Caller,
        target: ChatTarget,
        id: MessageId,
        decide: &Decide<'_>,
    ) -> Result<Changed, ServiceError> {
        caller.check(target)?;
        let chat = Chat::between(caller.user(), target);
        let message = self.store.modify(tenant, chat, id, decide).await?;
        Ok(Changed { chat, target, message })
    }

    async fn users(&self, tenant: &DomainHandle, ids: &[UserId]) -> HashMap<UserId, Profile> {
        if ids.is_empty() {
            return Default::default();
        }
        self.directory(tenant).users(ids).await
    }

    async fn topics(&self, tenant: &DomainHandle, ids: &[TopicId]) -> HashMap<TopicId, Profile> {
        if ids.is_empty() {
            return Default::default();
        }
        self.directory(tenant).topics(ids).await
    }
}

/// The profile of `id`, degraded to `{"id": N}` if the directory left it out.
fn profile_of<K: Copy + Eq + std::hash::Hash + Into<u64>>(profiles: &HashMap<K, Profile>, id: K) -> Profile {
    profiles.get(&id).cloned().unwrap_or_else(|| degraded_profile(id.into()))
}
