//! Redis key naming — the one place it lives. The standalone layout is the original service's, so a
//! deployment of it keeps its data: `<prefix>:messages:<handle>:dm:<lo>-<hi>`, `…:topic:<id>`, each
//! with a `:data` hash beside it, `…:inbox:<uid>` and `…:activity:<uid>`. The cluster layout
//! ([`Layout::Cluster`]) names the same keys with a hash tag around what decides their slot.

use crate::{Channel, Chat, DomainHandle, TopicId, UserId};

/// How keys are named in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The original service's names, for one Redis server (or a primary and its replicas).
    #[default]
    Standalone,
    /// For Redis Cluster: the same names, with a hash tag (the part between `{` and `}`, which
    /// alone decides a key's slot) around what groups keys. A chat's keys share its slot
    /// (`…:{dm:99-1000}:data`, `…:{topic:42}`), a user's keys and channel theirs
    /// (`…:inbox:{user:7}`, `…:events:<handle>:{user:7}`), and a topic's channel and event history
    /// its chat's (`{topic:42}`): what one script changes together is in one slot. Keys only this
    /// layout has: a chat's latest message ([`Keyspace::chat_latest`], in place of the tenant-wide
    /// [`Keyspace::latest`] hash), its idempotency results ([`Keyspace::chat_idempotency`]) and
    /// its pending fan-out ([`Keyspace::fanout`]) in its slot; the instances' keys share one slot
    /// of their own.
    Cluster,
}

/// The keys (and pub/sub channels) of one tenant under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    /// `<prefix>:messages:<handle>:`, the start of every key of the tenant.
    base: String,
    /// `<prefix>:events:<handle>:`, the start of every pub/sub channel of the tenant.
    events: String,
    layout: Layout,
}

impl Keyspace {
    /// The keys of `handle` under `prefix` (the original's `SOCK_REDIS_PREFIX`), in the original's
    /// layout.
    pub fn new(prefix: &str, handle: &DomainHandle) -> Self {
        Self::with_layout(prefix, handle, Layout::Standalone)
    }

    /// The keys of `handle` under `prefix` in `layout`.
    pub fn with_layout(prefix: &str, handle: &DomainHandle, layout: Layout) -> Self {
        let handle = handle.as_str();
        Self {
            base: [prefix, ":messages:", handle, ":"].concat(),
            events: [prefix, ":events:", handle, ":"].concat(),
            layout,
        }
    }

    /// How these keys are named.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `<prefix>:messages:<handle>:`. The inbox script derives a chat's keys from an inbox member
    /// by the rule in [`Self::chat_suffix`], appended to this base.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The message id list of a chat.
    pub fn chat(&self, chat: Chat) -> String {
        self.chat_key(chat, "")
    }

    /// The id → message JSON hash of a chat.
    pub fn chat_data(&self, chat: Chat) -> String {
        self.chat_key(chat, ":data")
    }

    /// Every chat's latest message (hash: chat suffix → message JSON), kept by chatd beside the
    /// original's keys so that an inbox page reads one hash instead of two keys per chat.
    pub fn latest(&self) -> String {
        [self.base.as_str(), "latest"].concat()
    }

    /// A chat's latest message JSON (cluster layout: a string in the chat's slot, in place of the
    /// field of [`Self::latest`]).
    pub fn chat_latest(&self, chat: Chat) -> String {
        self.chat_key(chat, ":latest")
    }

    /// The first answer to `author`'s send in `chat` with idempotency key `key` (cluster layout:
    /// in the chat's slot, beside [`Self::idempotency_claim`] in the author's).
    pub fn chat_idempotency(&self, chat: Chat, author: UserId, key: &crate::IdempotencyKey) -> String {
        Key::new(&self.base)
            .tagged(self.layout, |k| k.chat(chat))
            .text(":idempotency:")
            .number(author.get())
            .text(":")
            .text(key.as_str())
            .done()
    }

    /// Which chat `author` first used idempotency key `key` in (cluster layout: the chat's
    /// suffix, in the author's slot), so that a key reused for another chat is refused.
    pub fn idempotency_claim(&self, author: UserId, key: &crate::IdempotencyKey) -> String {
        [self.user_key("idempotency:", author).as_str(), ":", key.as_str()].concat()
    }

    /// A chat's pending fan-out (cluster layout): a hash of fan-out number → the record of what
    /// its write still owes other slots (inboxes, unread counts, users' events), removed once
    /// applied. Beside its `f` field of [`Self::chat_index`], the last number given.
    pub fn fanout(&self, chat: Chat) -> String {
        self.chat_key(chat, ":fanout")
    }

    /// A user's inbox (sorted set of `user-<id>` / `topic-<id>` by last send time).
    pub fn inbox(&self, owner: UserId) -> String {
        self.user_key("inbox:", owner)
    }

    /// A chat's order: a sorted set of its message ids, each scored with its ordinal (a number
    /// that grows with every message sent; messages the original service wrote get theirs,
    /// counting down from 0, when chatd first indexes the chat).
    pub fn chat_order(&self, chat: Chat) -> String {
        self.chat_key(chat, ":order")
    }

    /// The messages one author wrote in a chat: a sorted set of their ordinals (member and score).
    pub fn chat_by(&self, chat: Chat, author: UserId) -> String {
        Key::new(&self.base).tagged(self.layout, |key| key.chat(chat)).text(":by:").number(author.get()).done()
    }

    /// Where each reader of a chat has read up to: a hash of user id → ordinal.
    pub fn chat_read(&self, chat: Chat) -> String {
        self.chat_key(chat, ":read")
    }

    /// A chat's index state: a hash of `n` (the last ordinal given to a sent message), `p` (how
    /// many of the list's oldest entries — the original's — still wait to be indexed) and `o`
    /// (the lowest ordinal given to one of those).
    pub fn chat_index(&self, chat: Chat) -> String {
        self.chat_key(chat, ":index")
    }

    /// A user's unread state: a hash of `t` (unread messages over their direct chats' indexed
    /// messages), one field per direct chat (`dm:<lo>-<hi>`: its unread count), `i` (set once
    /// every chat in their inbox is indexed, so `t` is complete) and `w` (how many times a chat that
    /// still waits to be indexed joined their inbox: such a send clears `i`, and an indexing walk
    /// that began before it does not set `i` again).
    pub fn unread(&self, user: UserId) -> String {
        self.user_key("unread:", user)
    }

    /// A user's activity hash (`last_active`).
    pub fn activity(&self, user: UserId) -> String {
        self.user_key("activity:", user)
    }

    /// A user's presence: which instances hold a live connection of theirs, each scored with the
    /// epoch ms it joined (the user is active while one of them is live; see [`Self::instances`]).
    pub fn presence(&self, user: UserId) -> String {
        self.user_key("presence:", user)
    }

    /// The first answer to `owner`'s send with idempotency key `key` (a string: the send's
    /// `new-message` event payload, which names its chat), kept for the idempotency ttl.
    pub fn idempotency(&self, owner: UserId, key: &crate::IdempotencyKey) -> String {
        format!("{}idempotency:{owner}:{key}", self.base)
    }

    /// A channel's event history: a stream of its durable events, the entry id `<seq>-<epoch ms>`
    /// (see [`crate::Position`]).
    pub fn event_history(&self, channel: Channel) -> String {
        Key::new(&self.base).text("history:").tagged(self.layout, |key| key.channel(channel)).done()
    }

    /// A channel's position: a hash of its epoch (`e`) and the sequence number of its last durable
    /// event (`s`).
    pub fn event_position(&self, channel: Channel) -> String {
        Key::new(&self.base).text("position:").tagged(self.layout, |key| key.channel(channel)).done()
    }

    /// Every instance under `prefix` that vouches for presence, scored with its deadline (epoch
    /// ms): an instance is live until then. Beside it, `<this key>:<instance>` is the set of the
    /// presence keys ([`Self::presence`]) of the users the instance joined, so that any instance
    /// can sweep the users of one that lapsed.
    pub fn instances(prefix: &str) -> String {
        format!("{prefix}:instances")
    }

    /// The set of the presence keys of the users `instance` joined (see [`Self::instances`]).
    pub fn instance_users(prefix: &str, instance: &str) -> String {
        Self::instance_users_in(prefix, Layout::Standalone, instance)
    }

    /// [`Self::instance_users`] in `layout` (beside [`Self::instances_in`], in its slot).
    pub fn instance_users_in(prefix: &str, layout: Layout, instance: &str) -> String {
        format!("{}:{instance}", Self::instances_in(prefix, layout))
    }

    /// [`Self::instances`] in `layout`: in the cluster layout `<prefix>:{instances}`, so that it and
    /// every instance's set of users share one slot.
    pub fn instances_in(prefix: &str, layout: Layout) -> String {
        match layout {
            Layout::Standalone => Self::instances(prefix),
            Layout::Cluster => format!("{prefix}:{{instances}}"),
        }
    }

    /// Where the pending fan-outs of the chats of one hash slot are listed (cluster layout): a
    /// sorted set of `<handle>:<chat suffix>` by the time the first became pending, in the slot
    /// `tag` hashes to, so that the chat's write lists it atomically and any instance finds it.
    pub fn fanout_pending(prefix: &str, tag: &str) -> String {
        format!("{prefix}:fanout:{{{tag}}}")
    }

    /// The member of [`Self::fanout_pending`] naming `chat` of `handle`.
    pub fn fanout_member(handle: &DomainHandle, chat: Chat) -> String {
        Key::new(handle.as_str()).text(":").chat(chat).done()
    }

    /// The tenant and chat a [`Self::fanout_member`] names.
    pub fn parse_fanout_member(member: &str) -> Option<(DomainHandle, Chat)> {
        let (handle, suffix) = member.split_once(':')?;
        Some((DomainHandle::parse(handle).ok()?, Self::parse_chat_suffix(suffix)?))
    }

    /// The chat a [`Self::chat_suffix`] names.
    pub fn parse_chat_suffix(suffix: &str) -> Option<Chat> {
        let (kind, id) = suffix.split_once(':')?;
        match kind {
            "dm" => {
                let (lo, hi) = id.split_once('-')?;
                let (lo, hi) = (UserId::parse(lo).ok()?, UserId::parse(hi).ok()?);
                Some(Chat::between(lo, crate::ChatTarget::User(hi)))
            }
            "topic" => Some(Chat::Topic(TopicId::parse(id).ok()?)),
            _ => None,
        }
    }

    /// The tenant and user of a presence key under `prefix`, in either layout (the inverse of
    /// [`Self::presence`]).
    pub fn parse_presence(prefix: &str, key: &str) -> Option<(DomainHandle, UserId)> {
        let rest = key.strip_prefix(prefix)?.strip_prefix(":messages:")?;
        let (handle, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix("presence:")?;
        let user = match rest.strip_prefix("{user:") {
            Some(tagged) => tagged.strip_suffix('}')?,
            None => rest,
        };
        Some((DomainHandle::parse(handle).ok()?, UserId::parse(user).ok()?))
    }

    /// The pub/sub channel of a user (`…:events:<handle>:user:<id>`) or a topic (`…:topic:<id>`).
    pub fn channel(&self, channel: Channel) -> String {
        Key::new(&self.events).tagged(self.layout, |key| key.channel(channel)).done()
    }

    /// The tenant and channel a pub/sub channel name under `prefix` stands for (the inverse of
    /// [`Self::channel`]).
    pub fn parse_channel(prefix: &str, name: &str) -> Option<(DomainHandle, Channel)> {
        let rest = name.strip_prefix(prefix)?.strip_prefix(":events:")?;
        let (handle, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix('{').and_then(|tagged| tagged.strip_suffix('}')).unwrap_or(rest);
        let (kind, id) = rest.split_once(':')?;
        let channel = match kind {
            "user" => Channel::User(UserId::parse(id).ok()?),
            "topic" => Channel::Topic(TopicId::parse(id).ok()?),
            _ => return None,
        };
        Some((DomainHandle::parse(handle).ok()?, channel))
    }

    /// A chat's key as the REST API shows it in `state.key`: `<handle>:dm:<lo>-<hi>`, without
    /// the prefix.
    pub fn public_chat(handle: &DomainHandle, chat: Chat) -> String {
        Key::new(handle.as_str()).text(":").chat(chat).done()
    }

    /// An inbox's key as the REST API shows it: `<handle>:inbox:<uid>`.
    pub fn public_inbox(handle: &DomainHandle, owner: UserId) -> String {
        Key::new(handle.as_str()).text(":inbox:").number(owner.get()).done()
    }

    /// `<base><chat suffix><tail>`.
    fn chat_key(&self, chat: Chat, tail: &str) -> String {
        Key::new(&self.base).tagged(self.layout, |key| key.chat(chat)).text(tail).done()
    }

    /// `<base><kind><id>`; in the cluster layout `<base><kind>{user:<id>}`, the user's slot.
    fn user_key(&self, kind: &str, user: UserId) -> String {
        let key = Key::new(&self.base).text(kind);
        match self.layout {
            Layout::Standalone => key.number(user.get()),
            Layout::Cluster => key.tagged(self.layout, |key| key.channel(Channel::User(user))),
        }
        .done()
    }

    /// `dm:<lo>-<hi>` or `topic:<id>`: a chat's key after the base.
    pub fn chat_suffix(chat: Chat) -> String {
        Key::new("").chat(chat).done()
    }
}

/// What a key of the standalone layout holds: every key chatd (or the original service) keeps
/// under a tenant's base, by kind. [`Keyspace::parse_standalone`] reads one from a key name and
/// [`Keyspace::key_of`] names it again — in the same layout, or in another (the migration to
/// Redis Cluster names each standalone key in the cluster layout this way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// [`Keyspace::chat`]: the message id list.
    Chat(Chat),
    /// [`Keyspace::chat_data`].
    ChatData(Chat),
    /// [`Keyspace::chat_order`].
    ChatOrder(Chat),
    /// [`Keyspace::chat_by`].
    ChatBy(Chat, UserId),
    /// [`Keyspace::chat_read`].
    ChatRead(Chat),
    /// [`Keyspace::chat_index`].
    ChatIndex(Chat),
    /// [`Keyspace::latest`] (standalone only: the cluster layout has one
    /// [`Keyspace::chat_latest`] per chat instead).
    Latest,
    /// [`Keyspace::inbox`].
    Inbox(UserId),
    /// [`Keyspace::unread`].
    Unread(UserId),
    /// [`Keyspace::activity`].
    Activity(UserId),
    /// [`Keyspace::presence`].
    Presence(UserId),
    /// [`Keyspace::idempotency`] (standalone only: the cluster layout keeps the answer in the
    /// chat's slot, [`Keyspace::chat_idempotency`], and a claim in the owner's,
    /// [`Keyspace::idempotency_claim`]).
    Idempotency(UserId, crate::IdempotencyKey),
    /// [`Keyspace::event_history`].
    EventHistory(Channel),
    /// [`Keyspace::event_position`].
    EventPosition(Channel),
}

impl Keyspace {
    /// The tenant and kind of `key`, a key of the standalone layout under `prefix`; `None` for any
    /// other name (another prefix, a key of no known kind, or not the canonical spelling: a DM's
    /// lower id first, numbers without leading zeros).
    pub fn parse_standalone(prefix: &str, key: &str) -> Option<(DomainHandle, StoredKey)> {
        let rest = key.strip_prefix(prefix)?.strip_prefix(":messages:")?;
        let (handle, rest) = rest.split_once(':')?;
        let handle = DomainHandle::parse(handle).ok()?;
        let stored = Self::parse_stored(rest)?;
        (Self::new(prefix, &handle).key_of(&stored) == key).then_some((handle, stored))
    }

    /// The name of `stored` in this keyspace's layout.
    pub fn key_of(&self, stored: &StoredKey) -> String {
        match stored {
            StoredKey::Chat(chat) => self.chat(*chat),
            StoredKey::ChatData(chat) => self.chat_data(*chat),
            StoredKey::ChatOrder(chat) => self.chat_order(*chat),
            StoredKey::ChatBy(chat, author) => self.chat_by(*chat, *author),
            StoredKey::ChatRead(chat) => self.chat_read(*chat),
            StoredKey::ChatIndex(chat) => self.chat_index(*chat),
            StoredKey::Latest => self.latest(),
            StoredKey::Inbox(user) => self.inbox(*user),
            StoredKey::Unread(user) => self.unread(*user),
            StoredKey::Activity(user) => self.activity(*user),
            StoredKey::Presence(user) => self.presence(*user),
            StoredKey::Idempotency(owner, key) => self.idempotency(*owner, key),
            StoredKey::EventHistory(channel) => self.event_history(*channel),
            StoredKey::EventPosition(channel) => self.event_position(*channel),
        }
    }

    /// The kind of a standalone key from what follows the tenant's base (the name is checked by
    /// the caller, which spells it again).
    fn parse_stored(rest: &str) -> Option<StoredKey> {
        if rest == "latest" {
            return Some(StoredKey::Latest);
        }
        if let Some(tail) = rest.strip_prefix("idempotency:") {
            let (owner, key) = tail.split_once(':')?;
            return Some(StoredKey::Idempotency(UserId::parse(owner).ok()?, crate::IdempotencyKey::parse(key).ok()?));
        }
        let (kind, after) = rest.split_once(':')?;
        let user = || UserId::parse(after).ok();
        let channel = || {
            let (kind, id) = after.split_once(':')?;
            match kind {
                "user" => Some(Channel::User(UserId::parse(id).ok()?)),
                "topic" => Some(Channel::Topic(TopicId::parse(id).ok()?)),
                _ => None,
            }
        };
        match kind {
            "inbox" => return Some(StoredKey::Inbox(user()?)),
            "unread" => return Some(StoredKey::Unread(user()?)),
            "activity" => return Some(StoredKey::Activity(user()?)),
            "presence" => return Some(StoredKey::Presence(user()?)),
            "history" => return Some(StoredKey::EventHistory(channel()?)),
            "position" => return Some(StoredKey::EventPosition(channel()?)),
            _ => {}
        }
        // A chat's keys: `dm:<lo>-<hi>` or `topic:<id>`, then what follows the chat's own key.
        let (id, tail) = match after.split_once(':') {
            Some((id, tail)) => (id, Some(tail)),
            None => (after, None),
        };
        let chat = Self::parse_chat_suffix(&[kind, ":", id].concat())?;
        Some(match tail {
            None => StoredKey::Chat(chat),
            Some("data") => StoredKey::ChatData(chat),
            Some("order") => StoredKey::ChatOrder(chat),
            Some("read") => StoredKey::ChatRead(chat),
            Some("index") => StoredKey::ChatIndex(chat),
            Some(tail) => StoredKey::ChatBy(chat, UserId::parse(tail.strip_prefix("by:")?).ok()?),
        })
    }
}

/// A key or channel name, built in one allocation with numbers written by `itoa`: `format!` cost
/// about a thousand instructions a key, and a send builds twenty.
struct Key(String);

impl Key {
    fn new(start: &str) -> Self {
        let mut key = String::with_capacity(start.len() + 48);
        key.push_str(start);
        Self(key)
    }

    fn text(mut self, text: &str) -> Self {
        self.0.push_str(text);
        self
    }

    fn number(self, n: u64) -> Self {
        self.text(itoa::Buffer::new().format(n))
    }

    /// `dm:<lo>-<hi>` or `topic:<id>`.
    fn chat(self, chat: Chat) -> Self {
        match chat {
            Chat::Direct { lo, hi } => self.text("dm:").number(lo.get()).text("-").number(hi.get()),
            Chat::Topic(topic) => self.text("topic:").number(topic.get()),
        }
    }

    /// `user:<id>` or `topic:<id>`.
    /// What `part` writes, inside a hash tag in the cluster layout.
    fn tagged(self, layout: Layout, part: impl FnOnce(Self) -> Self) -> Self {
        match layout {
            Layout::Standalone => part(self),
            Layout::Cluster => part(self.text("{")).text("}"),
        }
    }

    fn channel(self, channel: Channel) -> Self {
        match channel {
            Channel::User(user) => self.text("user:").number(user.get()),
            Channel::Topic(topic) => self.text("topic:").number(topic.get()),
        }
    }

    fn done(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatTarget;

    #[test]
    fn the_cluster_layout_tags_each_key_with_its_chat_or_its_user() {
        let handle = DomainHandle::parse("myplatform").expect("valid");
        let keys = Keyspace::with_layout("senna-sockets", &handle, Layout::Cluster);
        let user = |n| UserId::new(n).expect("valid");
        let dm = Chat::between(user(1000), ChatTarget::User(user(99)));
        let topic = TopicId::new(42).expect("valid");
        assert_eq!(keys.chat(dm), "senna-sockets:messages:myplatform:{dm:99-1000}");
        assert_eq!(keys.chat_by(dm, user(99)), "senna-sockets:messages:myplatform:{dm:99-1000}:by:99");
        assert_eq!(keys.inbox(user(7)), "senna-sockets:messages:myplatform:inbox:{user:7}");
        assert_eq!(keys.channel(Channel::User(user(7))), "senna-sockets:events:myplatform:{user:7}");
        assert_eq!(keys.event_history(Channel::User(user(7))), "senna-sockets:messages:myplatform:history:{user:7}");
        assert_eq!(keys.event_position(Channel::Topic(topic)), "senna-sockets:messages:myplatform:position:{topic:42}");
        assert_eq!(keys.chat_latest(dm), "senna-sockets:messages:myplatform:{dm:99-1000}:latest");
        assert_eq!(keys.fanout(dm), "senna-sockets:messages:myplatform:{dm:99-1000}:fanout");
        let key = crate::IdempotencyKey::parse("k-1").expect("valid");
        assert_eq!(
            keys.chat_idempotency(dm, user(99), &key),
            "senna-sockets:messages:myplatform:{dm:99-1000}:idempotency:99:k-1"
        );
        assert_eq!(
            keys.idempotency_claim(user(99), &key),
            "senna-sockets:messages:myplatform:idempotency:{user:99}:k-1"
        );
        assert_eq!(Keyspace::instance_users_in("p", Layout::Cluster, "i-1"), "p:{instances}:i-1");
        let member = Keyspace::fanout_member(&handle, dm);
        assert_eq!(member, "myplatform:dm:99-1000");
        assert_eq!(Keyspace::parse_fanout_member(&member), Some((handle.clone(), dm)));
        assert_eq!(Keyspace::parse_fanout_member("myplatform:topic:42"), Some((handle.clone(), Chat::Topic(topic))));
        // Which keys share a slot is checked against a real cluster (tests/api/cluster_layout.rs).
        // Both layouts parse back.
        let channel = keys.channel(Channel::User(user(7)));
        assert_eq!(Keyspace::parse_channel("senna-sockets", &channel), Some((handle.clone(), Channel::User(user(7)))));
        assert_eq!(Keyspace::parse_presence("senna-sockets", &keys.presence(user(7))), Some((handle, user(7))));
    }

    #[test]
    fn every_standalone_key_parses_back_and_is_named_in_the_cluster_layout() {
        let handle = DomainHandle::parse("my.platform-1").expect("valid");
        let standalone = Keyspace::new("senna:sockets", &handle);
        let cluster = Keyspace::with_layout("senna:sockets", &handle, Layout::Cluster);
        let user = |n| UserId::new(n).expect("valid");
        let dm = Chat::between(user(1000), ChatTarget::User(user(99)));
        let topic = Chat::Topic(TopicId::new(42).expect("valid"));
        let key = crate::IdempotencyKey::parse("k:{1}").expect("valid");
        let kinds = [
            StoredKey::Chat(dm),
            StoredKey::ChatData(topic),
            StoredKey::ChatOrder(dm),
            StoredKey::ChatBy(dm, user(99)),
            StoredKey::ChatRead(topic),
            StoredKey::ChatIndex(dm),
            StoredKey::Latest,
            StoredKey::Inbox(user(7)),
            StoredKey::Unread(user(7)),
            StoredKey::Activity(user(7)),
            StoredKey::Presence(user(7)),
            StoredKey::Idempotency(user(7), key.clone()),
            StoredKey::EventHistory(Channel::User(user(7))),
            StoredKey::EventPosition(Channel::Topic(TopicId::new(42).expect("valid"))),
        ];
        for stored in kinds {
            let name = standalone.key_of(&stored);
            assert_eq!(Keyspace::parse_standalone("senna:sockets", &name), Some((handle.clone(), stored)), "{name}");
        }
        assert_eq!(cluster.key_of(&StoredKey::ChatBy(dm, user(99))), cluster.chat_by(dm, user(99)));
        assert_eq!(
            cluster.key_of(&StoredKey::EventHistory(Channel::User(user(7)))),
            "senna:sockets:messages:my.platform-1:history:{user:7}"
        );
        assert_eq!(
            Keyspace::parse_standalone("senna:sockets", "senna:sockets:messages:my.platform-1:idempotency:7:k:{1}"),
            Some((handle.clone(), StoredKey::Idempotency(user(7), key)))
        );
        // Not keys of the layout: another prefix, unknown kinds, names not spelled as chatd does.
        for other in [
            "other:messages:my.platform-1:dm:99-1000",
            "senna:sockets:instances",
            "senna:sockets:instances:a1",
            "senna:sockets:messages:my.platform-1:dm:1000-99",
            "senna:sockets:messages:my.platform-1:dm:099-1000",
            "senna:sockets:messages:my.platform-1:dm:99-1000:by:",
            "senna:sockets:messages:my.platform-1:dm:99-1000:extra",
            "senna:sockets:messages:my.platform-1:group:1",
            "senna:sockets:messages:my.platform-1:inbox:0",
            "senna:sockets:messages:my.platform-1:history:group:1",
            "senna:sockets:messages:my.platform-1:{dm:99-1000}",
            "senna:sockets:messages:bad/handle:inbox:7",
        ] {
            assert_eq!(Keyspace::parse_standalone("senna:sockets", other), None, "{other}");
        }
    }

    #[test]
    fn keys_follow_the_originals_layout() {
        let handle = DomainHandle::parse("myplatform").expect("valid");
        let keys = Keyspace::new("senna-sockets", &handle);
        let user = |n| UserId::new(n).expect("valid");
        let dm = Chat::between(user(1000), ChatTarget::User(user(99)));
        assert_eq!(keys.chat(dm), "senna-sockets:messages:myplatform:dm:99-1000");
        assert_eq!(keys.chat_data(dm), "senna-sockets:messages:myplatform:dm:99-1000:data");
        let topic = Chat::Topic(TopicId::new(42).expect("valid"));
        assert_eq!(keys.chat(topic), "senna-sockets:messages:myplatform:topic:42");
        assert_eq!(keys.inbox(user(388636)), "senna-sockets:messages:myplatform:inbox:388636");
        assert_eq!(keys.latest(), "senna-sockets:messages:myplatform:latest");
        assert_eq!(keys.activity(user(7)), "senna-sockets:messages:myplatform:activity:7");
        assert_eq!(keys.chat_order(dm), "senna-sockets:messages:myplatform:dm:99-1000:order");
        assert_eq!(keys.chat_by(dm, user(99)), "senna-sockets:messages:myplatform:dm:99-1000:by:99");
        assert_eq!(keys.chat_read(topic), "senna-sockets:messages:myplatform:topic:42:read");
        assert_eq!(keys.chat_index(topic), "senna-sockets:messages:myplatform:topic:42:index");
        assert_eq!(keys.unread(user(7)), "senna-sockets:messages:myplatform:unread:7");
        assert_eq!(Keyspace::public_chat(&handle, dm), "myplatform:dm:99-1000");
        let channel = keys.channel(Channel::User(user(7)));
        assert_eq!(channel, "senna-sockets:events:myplatform:user:7");
        assert_eq!(Keyspace::parse_channel("senna-sockets", &channel), Some((handle.clone(), Channel::User(user(7)))));
        let topic_channel = keys.channel(Channel::Topic(TopicId::new(42).expect("valid")));
        assert_eq!(topic_channel, "senna-sockets:events:myplatform:topic:42");
        assert!(Keyspace::parse_channel("other", &topic_channel).is_none());
        let presence = keys.presence(user(7));
        assert_eq!(presence, "senna-sockets:messages:myplatform:presence:7");
        assert_eq!(Keyspace::parse_presence("senna-sockets", &presence), Some((handle.clone(), user(7))));
        assert_eq!(Keyspace::instances("senna-sockets"), "senna-sockets:instances");
        assert_eq!(Keyspace::instance_users("senna-sockets", "a1.0"), "senna-sockets:instances:a1.0");
        assert!(Keyspace::parse_channel("senna-sockets", "senna-sockets:events:myplatform:group:1").is_none());
        assert_eq!(Keyspace::public_inbox(&handle, user(7)), "myplatform:inbox:7");
        assert_eq!(keys.event_history(Channel::User(user(7))), "senna-sockets:messages:myplatform:history:user:7");
        let topic_position = keys.event_position(Channel::Topic(TopicId::new(42).expect("valid")));
        assert_eq!(topic_position, "senna-sockets:messages:myplatform:position:topic:42");
    }
}
