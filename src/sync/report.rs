use crate::cache::Failure;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    Full,
    Incremental,
}

/// The answer of a sync. The first four fields are the replaced system's
/// `{success, toolkits, tools, durationMs}`; the rest says what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub success: bool,
    /// Toolkits in the published index.
    pub toolkits: usize,
    /// Tools in the published index.
    pub tools: usize,
    pub duration_ms: u64,
    pub failed: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub mode: SyncMode,
    /// Why an incremental sync became a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Toolkits whose details and tools were fetched.
    pub fetched: usize,
    /// Toolkit objects written (content changed or new).
    pub written: usize,
    /// Toolkits left as they were (not fetched, or fetched and identical).
    pub unchanged: usize,
    /// Toolkits pruned after publishing.
    pub removed: Vec<String>,
    /// Whether a new meta was published.
    pub published: bool,
    pub upstream_requests: u64,
    pub sync_id: String,
    pub started_at: String,
}

impl SyncReport {
    pub fn new(sync_id: String, started_at: String, full: bool) -> Self {
        Self {
            success: false,
            toolkits: 0,
            tools: 0,
            duration_ms: 0,
            failed: Vec::new(),
            message: None,
            mode: if full {
                SyncMode::Full
            } else {
                SyncMode::Incremental
            },
            fallback: None,
            fetched: 0,
            written: 0,
            unchanged: 0,
            removed: Vec::new(),
            published: false,
            upstream_requests: 0,
            sync_id,
            started_at,
        }
    }
}
