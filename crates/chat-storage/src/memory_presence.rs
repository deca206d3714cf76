//! Presence kept in memory, for [`crate::MemoryStore`]: the same rules as the Redis scripts —
//! instances with deadlines, the users each joined — on plain maps.

use std::collections::{HashMap, HashSet};

use chat_domain::{DomainHandle, Timestamp, UserId};

use crate::Joined;

type User = (DomainHandle, UserId);

/// Every instance vouching for presence, and the users each holds.
#[derive(Debug, Default)]
pub(crate) struct Vouching {
    /// Per instance: its deadline, and the users it joined.
    instances: HashMap<String, (Timestamp, HashSet<User>)>,
    /// Per user: the instances that joined them.
    users: HashMap<User, HashSet<String>>,
}

/// Whether `instance` is among `instances` with a deadline after `now`.
fn is_live(instances: &HashMap<String, (Timestamp, HashSet<User>)>, instance: &str, now: Timestamp) -> bool {
    instances.get(instance).is_some_and(|(deadline, _)| *deadline > now)
}

impl Vouching {
    fn is_live(&self, instance: &str, now: Timestamp) -> bool {
        is_live(&self.instances, instance, now)
    }

    /// Whether a live instance holds `user`; drops the lapsed ones from the user's (as Redis's
    /// `live_in`).
    fn live_in(&mut self, user: &User, now: Timestamp) -> bool {
        let Some(held) = self.users.get_mut(user) else { return false };
        held.retain(|instance| is_live(&self.instances, instance, now));
        !held.is_empty()
    }

    pub(crate) fn vouch(&mut self, instance: &str, until: Timestamp, fresh: bool, now: Timestamp) -> bool {
        if !fresh && !self.is_live(instance, now) {
            return false;
        }
        self.instances.entry(instance.to_owned()).or_insert_with(|| (until, HashSet::new())).0 = until;
        true
    }

    pub(crate) fn join(&mut self, tenant: &DomainHandle, users: &[UserId], instance: &str, now: Timestamp) -> Joined {
        if !self.is_live(instance, now) {
            return Joined::Lapsed;
        }
        let mut arrived = Vec::new();
        for user in users {
            let key = (tenant.clone(), *user);
            if !self.live_in(&key, now) {
                arrived.push(*user);
            }
            self.users.entry(key.clone()).or_default().insert(instance.to_owned());
            if let Some((_, held)) = self.instances.get_mut(instance) {
                held.insert(key);
            }
        }
        Joined::Arrived(arrived)
    }

    pub(crate) fn leave(&mut self, tenant: &DomainHandle, user: UserId, instance: &str, now: Timestamp) -> bool {
        let key = (tenant.clone(), user);
        let was_live = self.live_in(&key, now);
        if let Some((_, held)) = self.instances.get_mut(instance) {
            held.remove(&key);
        }
        let Some(held) = self.users.get_mut(&key) else { return was_live };
        held.remove(instance);
        if !held.is_empty() {
            return false;
        }
        self.users.remove(&key);
        was_live
    }

    pub(crate) fn expire(&mut self, now: Timestamp) -> Vec<User> {
        let lapsed: Vec<String> =
            self.instances.iter().filter(|(_, (deadline, _))| *deadline <= now).map(|(name, _)| name.clone()).collect();
        let mut gone = Vec::new();
        for instance in lapsed {
            let Some((_, held)) = self.instances.remove(&instance) else { continue };
            for user in held {
                let dropped = self.users.get_mut(&user).is_some_and(|instances| instances.remove(&instance));
                if dropped && !self.live_in(&user, now) {
                    gone.push(user);
                }
            }
        }
        gone
    }

    pub(crate) fn active(&self, tenant: &DomainHandle, users: &[UserId], now: Timestamp) -> Vec<UserId> {
        let held = |user: &UserId| {
            self.users
                .get(&(tenant.clone(), *user))
                .is_some_and(|instances| instances.iter().any(|instance| self.is_live(instance, now)))
        };
        users.iter().copied().filter(held).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_epoch_millis(ms)
    }

    fn user(n: u64) -> UserId {
        UserId::new(n).expect("a valid id")
    }

    fn tenant() -> DomainHandle {
        DomainHandle::parse("t").expect("a valid handle")
    }

    #[test]
    fn the_users_of_a_lapsed_instance_are_swept_once() {
        let mut vouching = Vouching::default();
        vouching.vouch("a", at(100), true, at(0));
        vouching.vouch("b", at(100), true, at(0));
        assert_eq!(vouching.join(&tenant(), &[user(1), user(2)], "a", at(0)), Joined::Arrived(vec![user(1), user(2)]));
        assert_eq!(vouching.join(&tenant(), &[user(2)], "b", at(0)), Joined::Arrived(vec![]), "already active");
        vouching.vouch("b", at(300), false, at(50));

        assert_eq!(vouching.expire(at(99)), vec![], "not lapsed yet");
        // User 2 is still held by b.
        assert_eq!(vouching.expire(at(150)), vec![(tenant(), user(1))]);
        assert_eq!(vouching.expire(at(160)), vec![], "once");
        assert_eq!(vouching.active(&tenant(), &[user(1), user(2)], at(160)), vec![user(2)]);
        assert!(vouching.leave(&tenant(), user(2), "b", at(170)), "b held user 2 last");
    }

    #[test]
    fn a_lapsed_name_never_comes_back() {
        let mut vouching = Vouching::default();
        vouching.vouch("a", at(100), true, at(0));
        assert!(vouching.vouch("a", at(200), false, at(50)), "renewed while live");
        assert!(!vouching.vouch("a", at(400), false, at(250)), "lapsed");
        assert_eq!(vouching.join(&tenant(), &[user(1)], "a", at(250)), Joined::Lapsed);
        assert_eq!(vouching.active(&tenant(), &[user(1)], at(250)), vec![]);
    }

    #[test]
    fn leaving_after_a_sweep_announces_nothing_again() {
        let mut vouching = Vouching::default();
        vouching.vouch("a", at(100), true, at(0));
        vouching.join(&tenant(), &[user(1)], "a", at(0));
        assert_eq!(vouching.expire(at(150)), vec![(tenant(), user(1))]);
        assert!(!vouching.leave(&tenant(), user(1), "a", at(160)));
    }
}
