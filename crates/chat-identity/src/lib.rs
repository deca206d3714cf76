//! chatd's identity layer: who is calling (JWT verification) and what users and topics look like
//! (the directory of public profiles, served by the platform API or by a built-in table).
//!
//! Nothing here reads the environment or knows HTTP status codes: the daemon builds the typed
//! settings ([`JwtSettings`], [`PlatformSettings`]) and hands the resulting
//! [`TokenVerifier`] and `Arc<dyn Directory>` to the layers above.

pub mod builtin;
pub mod directory;
pub mod error;
pub mod jwt;
pub mod platform;
pub mod profile_cache;

pub use builtin::BuiltinDirectory;
pub use directory::{Directory, Profile};
pub use error::IdentityError;
pub use jwt::{JwtSettings, TokenError, TokenVerifier};
pub use platform::{PlatformDirectory, PlatformSettings};
pub use profile_cache::ProfileStats;
