//! The upstream: one client for the Composio v3 API (paging, retries with
//! backoff, an adaptive rate limit shared by every call, timeouts, a body-size
//! cap, no redirects) and its errors.

mod client;
mod error;
mod rate;

pub use client::{
    retry_after, ApiKey, ApiVersion, ClientConfig, ClientStats, ComposioClient, MAX_RETRY_AFTER,
    TRIGGER_SLUGS_PER_CALL,
};
pub use error::{cut, TransportKind, UpstreamError, MAX_UPSTREAM_TEXT};
pub use rate::{AdaptiveRate, RateSnapshot, ServerLimit};
