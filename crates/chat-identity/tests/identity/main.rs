//! The identity crate's behaviour tests, one module per feature (one test binary, because
//! linking is the slow part).

mod builtin;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "platform")]
mod platform;
