//! The Redis stores: [`RedisStore`] on one server, in the original service's key layout, every
//! operation one script call (one round trip, atomic), on multiplexed connections that reconnect
//! by themselves; [`ClusterStore`] on a Redis Cluster, in the cluster layout.

#[macro_use]
mod scripts;
mod cluster;
mod migrate;
mod pubsub;
mod shared;
mod store;

pub use cluster::{ClusterSettings, ClusterStore, Failpoint};
pub use migrate::{
    CopyReport, IndexReport, Migration, MigrationSettings, Mismatch, Plan, Progress, VerifyReport, kind_of, plan,
    progress_key,
};
pub use store::{RedisSettings, RedisStore};
