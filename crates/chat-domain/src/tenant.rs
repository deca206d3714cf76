//! The domain handle: the tenant name inside every key, so that several platforms (or sites of one
//! platform) share one Redis without seeing each other's chats.

use std::fmt;

use crate::DomainError;

/// A tenant's handle, as in `<prefix>:messages:<handle>:…`. Non-empty, at most 64 characters of
/// `[A-Za-z0-9._-]`, so it can never split or forge a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainHandle(String);

impl DomainHandle {
    /// Parses a handle from configuration.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(DomainError::argument(format!(
                "Invalid domain handle {text:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
            )))
        }
    }

    /// The handle as written in keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cannot_contain_key_separators() {
        assert!(DomainHandle::parse("myplatform").is_ok());
        assert!(DomainHandle::parse("site-2.example_x").is_ok());
        for bad in ["", "a:b", "a b", "a*", "ü", &"x".repeat(65)] {
            assert!(DomainHandle::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
