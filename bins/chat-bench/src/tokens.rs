//! Tokens for the benchmark's users, signed with the secret chatd is started with — once per user
//! and thread, so that signing does not take the CPU the servers under test share with the load.

use std::cell::RefCell;
use std::collections::HashMap;

use jsonwebtoken::{EncodingKey, Header};

/// The secret of the chatd instances the benchmark starts.
pub(crate) const SECRET: &str = "chat-bench-secret";

thread_local! {
    static SIGNED: RefCell<HashMap<u64, String>> = RefCell::new(HashMap::new());
}

/// A token for `user`.
pub(crate) fn token(user: u64) -> String {
    SIGNED.with_borrow_mut(|signed| signed.entry(user).or_insert_with(|| sign(user)).clone())
}

fn sign(user: u64) -> String {
    let claims = serde_json::json!({ "user_id": user });
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap_or_default()
}
