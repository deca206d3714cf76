//! The Redis store: the original service's key layout, every operation one script call (one round
//! trip, atomic), on multiplexed connections that reconnect by themselves.

mod pubsub;
mod scripts;
mod store;

pub use store::{RedisSettings, RedisStore};
