//! chatd's identity layer: who is calling (JWT verification) and what users and topics look like
//! (the directory of public profiles, served by the platform API or by a built-in table).
//!
//! Nothing here reads the environment or knows HTTP status codes: the daemon builds the typed
//! settings ([`JwtSettings`], [`PlatformSettings`]) and hands the resulting
//! [`TokenVerifier`] and `Arc<dyn Directory>` to the layers above.

//!
//! The ports ([`Directory`], [`Profile`]) and the built-in directory are always here; the adapters
//! that pull in large dependencies are features, on by default: `jwt` ([`TokenVerifier`], with
//! jsonwebtoken and its crypto) and `platform` ([`PlatformDirectory`], with reqwest, rustls and
//! moka).

pub mod builtin;
pub mod directory;
pub mod error;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "platform")]
pub mod platform;
#[cfg(feature = "platform")]
pub mod profile_cache;

pub use builtin::BuiltinDirectory;
pub use directory::{Directory, Profile};
pub use error::IdentityError;
#[cfg(feature = "jwt")]
pub use jwt::{JwtSettings, TokenError, TokenVerifier};
#[cfg(feature = "platform")]
pub use platform::{PlatformDirectory, PlatformSettings};
#[cfg(feature = "platform")]
pub use profile_cache::ProfileStats;
