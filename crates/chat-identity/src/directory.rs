//! The directory of public profiles: the border trait the use cases call to decorate messages and
//! inbox entries with who wrote them and where.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chat_domain::{TopicId, UserId};
use serde_json::value::RawValue;

/// A user's or topic's public profile as the platform API returns it: a JSON object, passed
/// through to clients as-is. Kept as its JSON text and shared, so that a page showing it costs a
/// reference count and a copy of bytes, not a clone and a walk of the object.
#[derive(Clone)]
pub struct Profile(Arc<RawValue>);

impl Profile {
    /// The profile `value` (a JSON object, as the sources give).
    pub fn new(value: &serde_json::Value) -> Self {
        // A `Value` always serialises (the default, `null`, is never reached).
        Self(Arc::from(serde_json::value::to_raw_value(value).unwrap_or_default()))
    }

    /// Its JSON text, to write into an answer as it is.
    pub fn json(&self) -> &RawValue {
        &self.0
    }

    /// Its JSON, parsed (for a caller that reads its fields).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl From<serde_json::Value> for Profile {
    fn from(value: serde_json::Value) -> Self {
        Self::new(&value)
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Profile {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl PartialEq<serde_json::Value> for Profile {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.to_value() == *other
    }
}

/// Where profiles come from: the platform API ([`crate::PlatformDirectory`]) or a built-in table
/// ([`crate::BuiltinDirectory`]). The daemon picks one and hands it down as `Arc<dyn Directory>`.
///
/// Profiles decorate chat; they never gate it. So the methods cannot fail: a profile the source
/// cannot supply becomes the degraded profile `{"id": N}` ([`degraded_profile`]).
#[async_trait::async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Profiles of these users. Never fails: every requested id is in the answer; an id the
    /// source does not know, or any failure of the source, yields the degraded profile
    /// `{"id": N}`. Duplicate ids are allowed and answered once.
    async fn users(&self, ids: &[UserId]) -> HashMap<UserId, Profile>;

    /// Profiles of these topics, with the same guarantees as [`Directory::users`].
    async fn topics(&self, ids: &[TopicId]) -> HashMap<TopicId, Profile>;
}

/// The profile given when nothing better is known: `{"id": id}`.
pub fn degraded_profile(id: u64) -> Profile {
    Profile::new(&serde_json::json!({ "id": id }))
}

/// What the directories need to know about an id, so one implementation serves users and topics.
pub(crate) trait DirectoryId: Copy + Eq + Ord + std::hash::Hash + Send + Sync + 'static {
    /// The number itself.
    fn number(self) -> u64;
}

impl DirectoryId for UserId {
    fn number(self) -> u64 {
        self.get()
    }
}

impl DirectoryId for TopicId {
    fn number(self) -> u64 {
        self.get()
    }
}

/// Reads the `id` of a profile entry: a JSON number or a string of digits (the platform API and
/// profile files write either), positive. `None` for anything else.
pub(crate) fn entry_id(entry: &serde_json::Value) -> Option<u64> {
    let id = match entry.get("id")? {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        _ => return None,
    };
    (id > 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_id_is_a_positive_number_or_string_of_digits() {
        assert_eq!(entry_id(&json!({"id": 7})), Some(7));
        assert_eq!(entry_id(&json!({"id": "7"})), Some(7));
        for bad in [
            json!({"id": 0}),
            json!({"id": -1}),
            json!({"id": 1.5}),
            json!({"id": ""}),
            json!({"id": "7a"}),
            json!({"id": null}),
            json!({}),
            json!([7]),
            json!(7),
        ] {
            assert_eq!(entry_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_degraded_profile_is_just_the_id() {
        assert_eq!(degraded_profile(42), json!({"id": 42}));
    }
}
