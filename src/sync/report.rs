use crate::cache::Failure;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    Full,
    Incremental,
}

/// A toolkit whose object was not what the index said, and was rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Repair {
    pub slug: String,
    pub reason: String,
}

/// Where the time went, in milliseconds. `plan` and `fetch` and `publish` are
/// wall-clock phases; within `fetch`, `map` and `write` are summed over
/// toolkits (they overlap the network waits and each other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    /// From the start: lease taken, meta, auth configs, listing and store
    /// listing read (at once); plan and diff made.
    pub plan: u64,
    /// Tool pages fetched, mapped and written (wall clock).
    pub fetch: u64,
    /// Mapping and hashing, summed over toolkits.
    pub map: u64,
    /// Toolkit object writes, summed over toolkits.
    pub write: u64,
    /// Lease check, meta published, objects pruned.
    pub publish: u64,
}

/// The answer of a sync. The first four fields are the replaced system's
/// `{success, toolkits, tools, durationMs}`; the rest says what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// This full sync resumed a full pass that ran out of time, begun then:
    /// what that pass had synced was not fetched again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_full_pass: Option<String>,
    /// Toolkits whose tools were fetched.
    pub fetched: usize,
    /// Toolkit objects written (content changed, new, or repaired).
    pub written: usize,
    /// Toolkits in the published index served from their last good copy.
    #[serde(default)]
    pub stale: usize,
    /// Toolkits left as they were (not fetched, or fetched and identical).
    pub unchanged: usize,
    /// Toolkits whose object had been changed or deleted behind the index's back.
    #[serde(default)]
    pub repaired: Vec<Repair>,
    /// Toolkits pruned after publishing.
    pub removed: Vec<String>,
    /// Deletes that failed; kept in the meta and retried by the next sync.
    #[serde(default)]
    pub pending_deletes: Vec<String>,
    /// Tools added, removed, changed and deprecated by this publish (the change feed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::cache::changes::ChangeCounts>,
    /// Whether the change feed's record of them was written.
    #[serde(default)]
    pub changes_recorded: bool,
    /// Whether a new meta was published.
    pub published: bool,
    /// Temporary files that killed writes left in a directory store, removed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leftovers_removed: usize,
    /// Toolkit snapshots no meta names any more (two publishes old, or a
    /// killed sync's), removed after the publish.
    #[serde(default)]
    pub snapshots_removed: usize,
    /// Change notifications sent after the publish (absent when none are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::NotificationsReport>,
    pub upstream_requests: u64,
    /// 429 answers seen.
    #[serde(default)]
    pub upstream_throttled: u64,
    /// Requests sent again after an error or a 429.
    #[serde(default)]
    pub upstream_retries: u64,
    /// The request rate the client settled on (requests per second), when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_rps: Option<f64>,
    #[serde(default)]
    pub timings: Timings,
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
            resumed_full_pass: None,
            fetched: 0,
            written: 0,
            stale: 0,
            unchanged: 0,
            repaired: Vec::new(),
            removed: Vec::new(),
            pending_deletes: Vec::new(),
            changes: None,
            changes_recorded: false,
            published: false,
            leftovers_removed: 0,
            snapshots_removed: 0,
            notifications: None,
            upstream_requests: 0,
            upstream_throttled: 0,
            upstream_retries: 0,
            settled_rps: None,
            timings: Timings::default(),
            sync_id,
            started_at,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
