//! composio-schema-cache: keeps a fresh, trustworthy copy of Composio tool
//! schemas in a store (S3 or a directory) and serves it.

pub mod agent;
pub mod app;
pub mod cache;
pub mod composio;
pub mod config;
#[cfg(feature = "testkit")]
pub mod emulator;
pub mod http;
pub mod lambda;
pub mod notify;
pub mod search;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod wire;
