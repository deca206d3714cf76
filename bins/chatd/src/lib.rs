//! The chatd daemon as a library: read the settings, build the adapters they name, inject them
//! into the use cases and routes, and serve. `main.rs` only parses arguments and calls this.

pub mod demo;
pub mod migrate;
pub mod settings;
pub mod startup;
pub mod telemetry;
