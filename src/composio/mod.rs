//! The upstream: one client for the Composio v3 API (paging, retries with
//! backoff, a shared rate limit, timeouts, a body-size cap) and its errors.

mod client;
mod error;

pub use client::{ApiKey, ClientConfig, ComposioClient};
pub use error::{TransportKind, UpstreamError};
