//! The identity crate's behaviour tests, one module per feature (one test binary, because
//! linking is the slow part).

mod builtin;
mod jwt;
mod platform;
