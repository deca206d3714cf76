//! The built-in directory: profiles from a JSON file, else minimal made-up ones. The embedded
//! default when no platform API is configured.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use chat_domain::{TopicId, UserId};

use crate::directory::{DirectoryId, entry_id};
use crate::{Directory, IdentityError, Profile};

/// Profiles from a fixed table, with defaults for everyone else: a user `N` unknown to the table
/// is `{"id": N, "username": "user-N"}`, a topic `N` is `{"id": N, "title": "topic-N"}`.
#[derive(Debug, Clone, Default)]
pub struct BuiltinDirectory {
    users: HashMap<u64, Profile>,
    topics: HashMap<u64, Profile>,
}

impl BuiltinDirectory {
    /// A directory with no table: every profile is a default one.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory whose table is read from a JSON file shaped like
    /// `{"users": [{"id": 1, "username": "alice", ...}], "topics": [{"id": 42, "title": "..."}]}`.
    /// Both lists are optional; each entry is an object whose `id` is a positive integer (or a
    /// string of digits) and is returned exactly as written.
    ///
    /// A missing, unreadable or malformed file, an unknown top-level key (a misspelt `user`
    /// would otherwise silently empty the table), an entry without a valid id, or an id listed
    /// twice is an [`IdentityError`] naming the file.
    pub fn from_json_file(path: &Path) -> Result<Self, IdentityError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| IdentityError::file(path, format!("cannot read it: {e}")))?;
        let document: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| IdentityError::file(path, format!("is not valid JSON: {e}")))?;
        let serde_json::Value::Object(sections) = document else {
            return Err(IdentityError::file(path, "must be a JSON object with \"users\" and/or \"topics\" lists"));
        };
        let mut directory = Self::new();
        for (name, section) in sections {
            let table = match name.as_str() {
                "users" => &mut directory.users,
                "topics" => &mut directory.topics,
                _ => {
                    return Err(IdentityError::file(
                        path,
                        format!("unknown key \"{name}\" (expected \"users\" and/or \"topics\")"),
                    ));
                }
            };
            let serde_json::Value::Array(entries) = section else {
                return Err(IdentityError::file(path, format!("\"{name}\" must be a list of profiles")));
            };
            for (index, entry) in entries.into_iter().enumerate() {
                let Some(id) = entry_id(&entry).filter(|_| entry.is_object()) else {
                    return Err(IdentityError::file(
                        path,
                        format!("{name}[{index}] must be an object with a positive integer \"id\""),
                    ));
                };
                match table.entry(id) {
                    Entry::Occupied(_) => {
                        return Err(IdentityError::file(path, format!("{name}[{index}]: id {id} is listed twice")));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(Profile::new(&entry));
                    }
                }
            }
        }
        Ok(directory)
    }

    fn lookup<I: DirectoryId>(
        table: &HashMap<u64, Profile>,
        ids: &[I],
        default: impl Fn(u64) -> Profile,
    ) -> HashMap<I, Profile> {
        ids.iter()
            .map(|&id| {
                let profile = table.get(&id.number()).cloned().unwrap_or_else(|| default(id.number()));
                (id, profile)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Directory for BuiltinDirectory {
    async fn users(&self, ids: &[UserId]) -> HashMap<UserId, Profile> {
        Self::lookup(&self.users, ids, |n| {
            Profile::new(&serde_json::json!({ "id": n, "username": format!("user-{n}") }))
        })
    }

    async fn topics(&self, ids: &[TopicId]) -> HashMap<TopicId, Profile> {
        Self::lookup(&self.topics, ids, |n| {
            Profile::new(&serde_json::json!({ "id": n, "title": format!("topic-{n}") }))
        })
    }
}
