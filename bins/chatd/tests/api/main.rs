//! chatd's behaviour suite: the real daemon on a random port, real HTTP clients, a real
//! redis-server and a local Redis Cluster started by the harness, and a stand-in platform API. One
//! test binary, one module per feature; each behaviour test runs on Redis, on the cluster and on
//! the in-memory store.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod browser;
mod helpers;
mod platform;
mod redis_cluster;
mod redis_server;

mod auth;
mod basics;
mod cluster_faults;
mod cluster_layout;
mod compat;
mod consistency;
mod cors;
mod cursor;
mod demo;
mod edits;
mod embedded;
mod faults;
mod history;
mod idempotency;
mod inbox;
mod layout;
mod limits;
mod migrate;
mod openapi;
mod presence;
mod process;
mod profiles;
mod reading;
mod realtime_socketio;
mod realtime_ws;
mod resume;
mod sending;
mod socketio_client;
mod tenants;
mod topic_access;
mod unavailable;
mod ws_client;
