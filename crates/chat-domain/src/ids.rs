//! Identifiers: user and topic ids (positive integers) and message ids (UUIDs).

use std::fmt;

use crate::DomainError;

/// The largest id chatd accepts: the largest integer a JavaScript client can hold exactly, so an id
/// survives the round trip through every client's JSON.
pub const MAX_ID: u64 = (1 << 53) - 1;

macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// The id `n`, if it is in `1..=MAX_ID`.
            pub fn new(n: u64) -> Result<Self, DomainError> {
                if (1..=MAX_ID).contains(&n) { Ok(Self(n)) } else { Err(Self::invalid()) }
            }

            /// Parses a path segment: ASCII digits only (no sign, no spaces), in `1..=MAX_ID`.
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Self::invalid());
                }
                text.parse::<u64>().map_err(|_| Self::invalid()).and_then(Self::new)
            }

            /// Reads an id from JSON — a JWT claim, a stored message's `author`: a number or a
            /// string of digits (the original accepted both), meaning the same id.
            pub fn from_json(value: &serde_json::Value) -> Result<Self, DomainError> {
                match value {
                    serde_json::Value::Number(n) => n.as_u64().ok_or_else(Self::invalid).and_then(Self::new),
                    serde_json::Value::String(s) => Self::parse(s),
                    _ => Err(Self::invalid()),
                }
            }

            fn invalid() -> DomainError {
                DomainError::argument(concat!("Invalid ", $what, " id: expected a positive integer"))
            }

            /// The number itself.
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

positive_id!(
    /// A platform user's id.
    UserId,
    "user"
);
positive_id!(
    /// A platform topic's id.
    TopicId,
    "topic"
);

/// A message's id: a UUID, written in its hyphenated lower-case form (as the original did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    /// A new random (v4) id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Its text (hyphenated, lower case) written into `buffer`, without allocating.
    pub fn encode(self, buffer: &mut [u8; 36]) -> &str {
        self.0.hyphenated().encode_lower(buffer)
    }

    /// Parses a message id; anything that is not a UUID is refused.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        uuid::Uuid::try_parse(text).map(Self).map_err(|_| DomainError::MessageNotFound)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_positive_integers_without_decoration() {
        assert_eq!(UserId::parse("42").map(UserId::get), Ok(42));
        assert_eq!(UserId::parse("007").map(UserId::get), Ok(7));
        for bad in ["", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "abc", "１", "9007199254740992"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} must be refused");
            assert!(TopicId::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(UserId::parse("9007199254740991").map(UserId::get), Ok(MAX_ID));
    }

    #[test]
    fn a_user_id_claim_may_be_a_number_or_a_numeric_string() {
        assert_eq!(UserId::from_json(&json!(388636)), UserId::parse("388636"));
        assert_eq!(UserId::from_json(&json!("388636")), UserId::parse("388636"));
        for bad in [json!(0), json!(-5), json!(1.5), json!(""), json!("x1"), json!(null), json!(true), json!([1])] {
            assert!(UserId::from_json(&bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn message_ids_are_uuids_in_canonical_form() {
        let id = MessageId::parse("A6AB410A-826B-45F1-AAE1-6F8D8A73D738").expect("a uuid");
        assert_eq!(id.to_string(), "a6ab410a-826b-45f1-aae1-6f8d8a73d738");
        assert_eq!(MessageId::parse("not-a-uuid"), Err(DomainError::MessageNotFound));
    }
}
