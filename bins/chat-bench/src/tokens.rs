//! Tokens for the benchmark's users, signed with the secret chatd is started with.

use jsonwebtoken::{EncodingKey, Header};

/// The secret of the chatd instances the benchmark starts.
pub(crate) const SECRET: &str = "chat-bench-secret";

/// A token for `user`.
pub(crate) fn token(user: u64) -> String {
    let claims = serde_json::json!({ "user_id": user });
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap_or_default()
}
