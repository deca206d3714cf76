//! The cluster key layout (`Layout::Cluster`, issue 14) against a real Redis Cluster: what one
//! script changes together — a chat's keys, a user's keys and channel, a topic's chat and event
//! history — lies in one slot, which Redis itself enforces (a script over keys of several slots is
//! refused with CROSSSLOT, as the original's layout is); and chats spread over every primary.

use chat_domain::{Channel, Chat, ChatTarget, DomainHandle, Keyspace, Layout, TopicId, UserId};

use crate::redis_cluster::RedisCluster;

fn user(id: u64) -> UserId {
    UserId::new(id).unwrap()
}

/// The keys one script changes together, per group, in `layout`.
fn groups(layout: Layout) -> Vec<Vec<String>> {
    let keys = Keyspace::with_layout("cluster-layout", &DomainHandle::parse("site").unwrap(), layout);
    let dm = Chat::between(user(7), ChatTarget::User(user(8)));
    let topic = TopicId::new(42).unwrap();
    vec![
        vec![
            keys.chat(dm),
            keys.chat_data(dm),
            keys.chat_order(dm),
            keys.chat_by(dm, user(7)),
            keys.chat_read(dm),
            keys.chat_index(dm),
        ],
        vec![
            keys.inbox(user(7)),
            keys.unread(user(7)),
            keys.activity(user(7)),
            keys.presence(user(7)),
            keys.event_history(Channel::User(user(7))),
            keys.event_position(Channel::User(user(7))),
        ],
        vec![
            keys.chat(Chat::Topic(topic)),
            keys.chat_data(Chat::Topic(topic)),
            keys.event_history(Channel::Topic(topic)),
            keys.event_position(Channel::Topic(topic)),
        ],
    ]
}

/// Runs one script over `keys` on the primary serving the first key's slot.
fn script_over(cluster: &RedisCluster, keys: &[String]) -> redis::RedisResult<usize> {
    let owner = cluster.owner(cluster.slot(&keys[0]));
    let mut eval = redis::cmd("EVAL");
    eval.arg("for _, key in ipairs(KEYS) do redis.call('SET', key, 'x') end return #KEYS").arg(keys.len()).arg(keys);
    eval.query(&mut cluster.node(owner))
}

#[test]
fn what_one_script_changes_together_lies_in_one_slot() {
    let cluster = RedisCluster::shared();
    for group in groups(Layout::Cluster) {
        assert_eq!(script_over(cluster, &group).expect("one slot: one script"), group.len());
    }
    for group in groups(Layout::Standalone) {
        let refused = script_over(cluster, &group).expect_err("the original's names span slots");
        assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    }
    // A user's channel is in their keys' slot, a topic's in its chat's: their events can be
    // published (SPUBLISH) by the script that writes them.
    let keys = Keyspace::with_layout("cluster-layout", &DomainHandle::parse("site").unwrap(), Layout::Cluster);
    assert_eq!(cluster.slot(&keys.channel(Channel::User(user(7)))), cluster.slot(&keys.inbox(user(7))));
    let topic = TopicId::new(42).unwrap();
    assert_eq!(cluster.slot(&keys.channel(Channel::Topic(topic))), cluster.slot(&keys.chat(Chat::Topic(topic))));
}

#[test]
fn chats_and_users_spread_over_every_primary() {
    let cluster = RedisCluster::shared();
    let keys = Keyspace::with_layout("cluster-layout", &DomainHandle::parse("site").unwrap(), Layout::Cluster);
    let mut primaries = cluster.primaries();
    primaries.sort_unstable();
    assert_eq!(primaries.len(), 3);
    let owners = |names: Vec<String>| {
        let mut owners: Vec<u16> = names.iter().map(|name| cluster.owner(cluster.slot(name))).collect();
        owners.sort_unstable();
        owners.dedup();
        owners
    };
    let chats = (1..=64).map(|n| keys.chat(Chat::between(user(n), ChatTarget::User(user(n + 1))))).collect();
    assert_eq!(owners(chats), primaries);
    let inboxes = (1..=64).map(|n| keys.inbox(user(n))).collect();
    assert_eq!(owners(inboxes), primaries);
}
