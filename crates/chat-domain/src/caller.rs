//! Who acts: a user, and the topics their platform lets them read, post in and follow.

use std::sync::Arc;

use crate::{ChatTarget, DomainError, TopicId, UserId};

/// The topics a caller may use. A DM is never governed by this: it is always the caller's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TopicGrant {
    /// Every topic: chatd's default, as in the original service.
    #[default]
    All,
    /// Only these topics (sorted, without duplicates), as the caller's token lists them.
    Only(Arc<[TopicId]>),
}

impl TopicGrant {
    /// A grant of exactly these topics.
    pub fn only(topics: impl IntoIterator<Item = TopicId>) -> Self {
        let mut topics: Vec<TopicId> = topics.into_iter().collect();
        topics.sort_unstable();
        topics.dedup();
        Self::Only(topics.into())
    }

    /// Whether `topic` is granted.
    pub fn covers(&self, topic: TopicId) -> bool {
        match self {
            Self::All => true,
            Self::Only(topics) => topics.binary_search(&topic).is_ok(),
        }
    }
}

/// A user acting, with the topics granted to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    user: UserId,
    topics: TopicGrant,
}

impl Caller {
    /// `user`, granted `topics`.
    pub fn new(user: UserId, topics: TopicGrant) -> Self {
        Self { user, topics }
    }

    /// `user`, granted every topic (no topic access control configured).
    pub fn user_with_every_topic(user: UserId) -> Self {
        Self::new(user, TopicGrant::All)
    }

    /// The acting user.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The topics granted.
    pub fn topics(&self) -> &TopicGrant {
        &self.topics
    }

    /// Refuses a chat the caller may not use: a topic outside their grant
    /// ([`DomainError::TopicForbidden`]). Their own DMs are always theirs.
    pub fn check(&self, target: ChatTarget) -> Result<(), DomainError> {
        match target {
            ChatTarget::Topic(topic) if !self.topics.covers(topic) => Err(DomainError::TopicForbidden(topic)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u64) -> TopicId {
        TopicId::new(n).expect("valid id")
    }

    #[test]
    fn a_grant_covers_exactly_its_topics() {
        let grant = TopicGrant::only([topic(42), topic(7), topic(42)]);
        assert_eq!(grant, TopicGrant::Only(vec![topic(7), topic(42)].into()));
        assert!(grant.covers(topic(7)) && grant.covers(topic(42)));
        assert!(!grant.covers(topic(8)));
        assert!(!TopicGrant::only([]).covers(topic(1)));
        assert!(TopicGrant::All.covers(topic(1)));
    }

    #[test]
    fn dms_are_never_refused_topics_outside_the_grant_are() {
        let me = UserId::new(5).expect("valid id");
        let caller = Caller::new(me, TopicGrant::only([topic(42)]));
        assert_eq!(caller.check(ChatTarget::Topic(topic(42))), Ok(()));
        assert_eq!(caller.check(ChatTarget::Topic(topic(43))), Err(DomainError::TopicForbidden(topic(43))));
        assert_eq!(caller.check(ChatTarget::User(UserId::new(9).expect("valid id"))), Ok(()));
        assert_eq!(Caller::user_with_every_topic(me).check(ChatTarget::Topic(topic(43))), Ok(()));
    }
}
