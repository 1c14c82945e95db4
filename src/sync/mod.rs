//! The engine: plan → diff → fetch → aggregate → publish → prune. The
//! decisions are pure functions in `cache::plan`; this module sequences the
//! I/O around them.
//!
//! Write order is the consistency model: toolkit objects first, the meta last
//! (compare-and-swap on its ETag), deletions only after the meta no longer
//! names them. A reader that sees a meta can read every object it names.

mod lease;
mod report;

pub use lease::{Lease, LeaseRecord};
pub use report::{Repair, SyncMode, SyncReport, Timings};

use crate::cache::changes::{changes_between, ChangeCounts, ChangeRecord, ToolChange};
use crate::cache::plan::{self, Decision, FetchOutcome, FetchReason, Listed, StoredEtags};
use crate::cache::{
    known_tools, map_toolkit, timestamp, EncodedToolkit, Failure, IndexEntry, MappingError, Meta,
    Slug, ToolkitInfo, UpstreamToolkit,
};
use crate::composio::{cut, ComposioClient, UpstreamError};
use crate::store::{ChangesName, ETag, ObjectKey, PutCondition, Store, StoreError};
use crate::wire::{AuthConfig, ToolkitSummary};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Platform toolkits that need no auth and so never show up in auth configs.
    pub no_auth_toolkits: Vec<Slug>,
    /// Toolkits fetched at once.
    pub concurrency: usize,
    /// How long a lease holds if its holder dies.
    pub lease_ttl: Duration,
    /// Time budget of a whole sync; a caller's deadline can only shorten it.
    pub timeout: Duration,
    /// Largest share (0..=1) of the published toolkits one sync may drop.
    pub max_shrink: f64,
    /// Bound of each store operation, so work after the deadline is bounded too.
    pub store_timeout: Duration,
    /// How long change records are kept.
    pub changes_retention: Duration,
}

/// Store operations a sync may still make after its deadline that must end
/// while it holds its lease, each bounded by `store_timeout`: the writes in
/// flight (concurrent: one bound), the lease check and the meta (up to three
/// puts and two heads): 7, and one to spare. What follows is safe late: the
/// prune only starts while the lease holds by the clock, the meta was a
/// compare-and-swap, the release is conditional, and the change record and
/// the last run are reports. The lease must outlive the deadline by this
/// many bounds.
pub const STORE_OPS_AFTER_DEADLINE: u32 = 8;

#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Refetch every toolkit, whatever the listing says.
    pub full: bool,
    /// Stop fetching at this instant and publish what finished (a Lambda's deadline).
    pub deadline: Option<Instant>,
    /// Publish even if the plan drops more than `max_shrink` of the cache.
    pub allow_shrink: bool,
}

impl SyncRequest {
    /// Refetch everything, no deadline beyond the engine's own timeout.
    pub fn full() -> Self {
        Self {
            full: true,
            ..Self::default()
        }
    }
}

/// Progress, for the CLI's bar and for logs.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    Planned { to_fetch: usize, unchanged: usize },
    Fetched { slug: Slug, tools: usize },
    Failed { slug: String, error: String },
}

pub type Observer = Arc<dyn Fn(SyncEvent) + Send + Sync>;

/// A sync that could not start. Every failure after the start is a report
/// with `success: false` instead.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a sync is already running (owner {}, since {})", .0.owner, .0.acquired_at)]
    Busy(LeaseRecord),
    #[error("the cache store is unavailable; no sync was started: {0}")]
    Store(StoreError),
}

/// Why one toolkit could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("the sync's time budget ran out before this toolkit finished")]
    OutOfTime,
}

/// Why a sync published nothing.
#[derive(Debug, thiserror::Error)]
enum Abort {
    #[error("listing the project's auth configs failed: {0}")]
    AuthConfigs(UpstreamError),
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    #[error("the store did not answer within {0:?}; nothing more was written")]
    StoreTimeout(Duration),
    #[error(transparent)]
    AllFailed(#[from] plan::AllFailed),
    #[error(transparent)]
    Shrink(#[from] plan::Shrink),
    #[error("another sync published a newer meta meanwhile; this one was not published")]
    Superseded,
    #[error(
        "this sync's lease expired or was taken over: it stopped writing and published nothing"
    )]
    LeaseLost,
}

/// What the HTTP edge needs of a sync: a trait object, so a binary that
/// never builds an engine (the read function) never links one.
#[async_trait::async_trait]
pub trait Syncer: Send + Sync + 'static {
    async fn sync(&self, request: SyncRequest) -> Result<SyncReport, SyncError>;
}

#[async_trait::async_trait]
impl Syncer for SyncEngine {
    async fn sync(&self, request: SyncRequest) -> Result<SyncReport, SyncError> {
        self.run(request).await
    }
}

#[derive(Clone)]
pub struct SyncEngine {
    client: ComposioClient,
    store: Arc<dyn Store>,
    settings: SyncSettings,
    observer: Option<Observer>,
    /// Mappings at once: one per core. More only adds threads to the blocking
    /// pool, each with its own allocator arena, and memory, not speed.
    mapping: Arc<tokio::sync::Semaphore>,
}

/// The project's auth configs and Composio's toolkit listing.
type Listings = (
    Result<Vec<AuthConfig>, UpstreamError>,
    Result<Vec<ToolkitSummary>, UpstreamError>,
);

/// The published state a sync starts from.
struct Previous {
    index: Vec<IndexEntry>,
    pending_deletes: Vec<Slug>,
    unfinished_full_pass: Option<String>,
    /// The meta's tag, for the compare-and-swap; `None` before the first sync.
    etag: Option<ETag>,
}

/// One fetched toolkit, settled: what happened and what it cost.
struct Settled {
    slug: Slug,
    reason: FetchReason,
    outcome: FetchOutcome,
    /// The sync's time budget ran out before this toolkit was fetched.
    out_of_time: bool,
    map_time: Duration,
    write_time: Duration,
}

impl SyncEngine {
    pub fn new(client: ComposioClient, store: Arc<dyn Store>, settings: SyncSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            client,
            store,
            settings,
            observer: None,
            mapping: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn emit(&self, event: SyncEvent) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Runs one sync. `Err` only when it could not start (another sync holds
    /// the lease, the store is unreachable); every other failure, a panic
    /// included, is a report with `success: false`, and the lease is released.
    pub async fn run(&self, request: SyncRequest) -> Result<SyncReport, SyncError> {
        let sync_id = uuid::Uuid::new_v4().to_string();
        // Every log line of this sync carries its id.
        let span = tracing::info_span!("sync", syncId = %sync_id);
        self.run_as(sync_id, request).instrument(span).await
    }

    async fn run_as(&self, sync_id: String, request: SyncRequest) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let before = self.client.stats();
        // The listings only read Composio, so they start with the lease: the
        // store's round trips before the plan are off the critical path. A
        // refused lease drops them.
        let listings = self.start_listings();
        let lease = tokio::time::timeout(
            self.settings.store_timeout,
            Lease::acquire(&*self.store, &sync_id, self.settings.lease_ttl),
        )
        .await
        .map_err(|_| {
            SyncError::Store(StoreError::backend(
                "acquire",
                ObjectKey::Lease,
                format!("no answer within {:?}", self.settings.store_timeout),
            ))
        })??;

        let mut report = SyncReport::new(sync_id, timestamp(SystemTime::now()), request.full);
        let own_deadline = started + self.settings.timeout;
        let deadline = request
            .deadline
            .map_or(own_deadline, |d| d.min(own_deadline));
        let sync = self.sync(&request, deadline, &lease, &mut report, started, listings);
        let failure = match AssertUnwindSafe(sync).catch_unwind().await {
            Ok(Ok(())) => None,
            Ok(Err(abort)) => Some(abort.to_string()),
            Err(panic) => Some(format!(
                "internal error: the sync panicked ({}); nothing more was written",
                panic_message(panic.as_ref())
            )),
        };
        if let Some(message) = failure {
            let message = self.client.redact(&message);
            tracing::error!(error = %message, "sync not published");
            report.success = false;
            report.message = Some(message);
        }
        let after = self.client.stats();
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.upstream_requests = after.requests - before.requests;
        report.upstream_throttled = after.throttled - before.throttled;
        report.upstream_retries = after.retries - before.retries;
        report.settled_rps = after.rate.map(|r| (r * 100.0).round() / 100.0);
        self.record_last_run(&report).await;
        match self.bounded(lease.release(&*self.store)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not release the sync lease; it will expire")
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the sync lease; it will expire")
            }
        }
        crate::telemetry::record_sync(&report);
        tracing::info!(
            success = report.success,
            toolkits = report.toolkits,
            tools = report.tools,
            fetched = report.fetched,
            written = report.written,
            failed = report.failed.len(),
            duration_ms = report.duration_ms,
            "sync finished"
        );
        Ok(report)
    }

    async fn sync(
        &self,
        request: &SyncRequest,
        deadline: Instant,
        lease: &Lease,
        report: &mut SyncReport,
        started: Instant,
        listings: AbortOnDropHandle<Listings>,
    ) -> Result<(), Abort> {
        // Plan: what is published, what the store holds, what the project has.
        let (previous, stored, listings) = tokio::join!(
            self.read_previous(),
            self.bounded(self.store.list()),
            listings
        );
        let previous = previous?;
        let (configs, listing) =
            listings.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let configs = configs.map_err(Abort::AuthConfigs)?;
        let stored: StoredEtags = stored??
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Toolkit(slug) => Some((slug, o.etag.0)),
                _ => None,
            })
            .collect();
        let plan = plan::plan_toolkits(
            configs.into_iter().map(|c| c.toolkit.slug),
            &self.settings.no_auth_toolkits,
            |raw| self.client.redact(raw),
        );
        if !request.allow_shrink {
            plan::shrink_guard(&previous.index, &plan.slugs, self.settings.max_shrink)?;
        }
        let listing: Option<HashMap<String, ToolkitSummary>> = match listing {
            Ok(items) => Some(
                items
                    .into_iter()
                    .map(|t| (t.slug.to_ascii_lowercase(), t))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "toolkit listing failed; fetching every toolkit with its details");
                if !request.full {
                    report.mode = SyncMode::Full;
                    report.fallback = Some(cut(&format!("toolkit listing failed: {e}")));
                }
                None
            }
        };
        let listed: Option<HashMap<String, Listed>> = listing.as_ref().map(|l| {
            l.iter()
                .map(|(slug, t)| {
                    let listed = Listed {
                        version: t.meta.version.clone(),
                        updated_at: t.meta.updated_at.clone(),
                    };
                    (slug.clone(), listed)
                })
                .collect()
        });
        let previous_by_slug: HashMap<&Slug, &IndexEntry> =
            previous.index.iter().map(|e| (&e.slug, e)).collect();
        let mode = match (&previous.unfinished_full_pass, request.full) {
            (Some(since), true) => {
                report.resumed_full_pass = Some(since.clone());
                plan::Mode::ResumeFull { since }
            }
            (None, true) => plan::Mode::Full,
            (_, false) => plan::Mode::Incremental,
        };
        let mut kept = Vec::new();
        let mut to_fetch = Vec::new();
        for decision in plan::diff(
            &plan.slugs,
            &previous_by_slug,
            &stored,
            listed.as_ref(),
            mode,
        ) {
            match decision {
                Decision::Keep(entry) => kept.push(*entry),
                Decision::Fetch { slug, reason } => to_fetch.push((slug, reason)),
            }
        }
        // Biggest first: the longest chain of tool pages starts at once.
        let expected_tools = |slug: &Slug| -> u64 {
            let listed = listing
                .as_ref()
                .and_then(|l| l.get(slug.as_str()))
                .and_then(|t| t.meta.tools_count.as_ref())
                .and_then(|n| n.as_u64());
            listed
                .or_else(|| previous_by_slug.get(slug).map(|e| e.tool_count as u64))
                .unwrap_or(0)
        };
        to_fetch.sort_by_key(|(slug, _)| std::cmp::Reverse(expected_tools(slug)));
        self.emit(SyncEvent::Planned {
            to_fetch: to_fetch.len(),
            unchanged: kept.len(),
        });
        report.timings.plan = started.elapsed().as_millis() as u64;

        // Fetch, map, write. Two stages: the concurrency bound is for
        // Composio, so a slot frees as soon as a toolkit is fetched.
        let phase = Instant::now();
        let concurrency = self.settings.concurrency.max(1);
        let listing = &listing;
        let settled: Vec<Result<Settled, Abort>> = futures::stream::iter(to_fetch)
            .map(|(slug, reason)| async move {
                let summary = listing.as_ref().and_then(|l| l.get(slug.as_str()));
                let fetched =
                    tokio::time::timeout_at(deadline.into(), self.fetch(&slug, summary)).await;
                (slug, reason, fetched.unwrap_or(Err(FetchError::OutOfTime)))
            })
            .buffer_unordered(concurrency)
            .map(|(slug, reason, fetched)| {
                let previous = previous_by_slug.get(&slug).copied();
                self.settle(slug, reason, fetched, previous, &stored, lease)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        report.fetched = settled.len();
        let mut outcomes = Vec::with_capacity(settled.len());
        let mut store_failure = None;
        let mut out_of_time = false;
        // Summed as durations: many toolkits under a millisecond each still add up.
        let (mut map_time, mut write_time) = (Duration::ZERO, Duration::ZERO);
        for result in settled {
            let settled = match result {
                Ok(settled) => settled,
                Err(abort) => {
                    store_failure.get_or_insert(abort);
                    continue;
                }
            };
            out_of_time |= settled.out_of_time;
            map_time += settled.map_time;
            write_time += settled.write_time;
            if let (FetchReason::Repair(reason), FetchOutcome::Synced { written: true, .. }) =
                (&settled.reason, &settled.outcome)
            {
                report.repaired.push(Repair {
                    slug: settled.slug.to_string(),
                    reason: reason.clone(),
                });
            }
            outcomes.push((settled.slug, settled.outcome));
        }
        report.repaired.sort_by(|a, b| a.slug.cmp(&b.slug));
        report.timings.fetch = phase.elapsed().as_millis() as u64;
        report.timings.map = map_time.as_millis() as u64;
        report.timings.write = write_time.as_millis() as u64;
        if let Some(abort) = store_failure {
            return Err(abort);
        }

        // Aggregate (pure), then publish by compare-and-swap and prune.
        let aggregate = plan::aggregate(
            &previous.index,
            &previous.pending_deletes,
            &stored,
            kept,
            outcomes,
            plan.refused,
        );
        let aggregate = match aggregate {
            Ok(aggregate) => aggregate,
            Err(all_failed) => {
                report.fetched = all_failed.fetched;
                report.failed = all_failed.failures.clone();
                return Err(all_failed.into());
            }
        };
        report.fetched = aggregate.fetched;
        report.written = aggregate.written;
        report.unchanged = aggregate.unchanged;
        report.failed = aggregate.failures.clone();
        // The plan passed the guard; failed fetches can still empty the index
        // (objects to repair while Composio is down): same guard, same override.
        if !request.allow_shrink {
            let publishing: Vec<Slug> = aggregate.index.iter().map(|e| e.slug.clone()).collect();
            plan::shrink_guard(&previous.index, &publishing, self.settings.max_shrink)?;
        }

        let phase = Instant::now();
        if !self.bounded(lease.held_in_store(&*self.store)).await?? {
            return Err(Abort::LeaseLost);
        }
        let changes = changes_between(&previous.index, &aggregate.index);
        let last_synced_at = timestamp(SystemTime::now());
        let changes_record = (!changes.is_empty())
            .then(|| ChangesName::new(&last_synced_at, &report.sync_id))
            .flatten();
        let meta = Meta {
            last_synced_at,
            toolkit_count: aggregate.index.len(),
            total_tool_count: aggregate.index.iter().map(|e| e.tool_count).sum(),
            sync_duration_ms: started.elapsed().as_millis() as u64,
            sync_id: report.sync_id.clone(),
            toolkits: aggregate.index,
            failed: aggregate.failures,
            pending_deletes: aggregate
                .to_delete
                .iter()
                .chain(&aggregate.held)
                .cloned()
                .collect(),
            // A full pass that ran out of time goes on next time from where
            // it began; an incremental run leaves the mark as it found it.
            unfinished_full_pass: match (request.full, out_of_time) {
                (true, true) => Some(
                    previous
                        .unfinished_full_pass
                        .clone()
                        .unwrap_or_else(|| report.started_at.clone()),
                ),
                (true, false) => None,
                (false, _) => previous.unfinished_full_pass.clone(),
            },
            changes_record: changes_record.as_ref().map(|n| n.as_str().to_owned()),
        };
        self.publish(&meta, previous.etag).await?;
        report.published = true;
        report.success = true;
        report.toolkits = meta.toolkit_count;
        report.tools = meta.total_tool_count;
        report.stale = meta.toolkits.iter().filter(|e| e.stale).count();
        report.changes = Some(ChangeCounts::of(&changes));
        report.changes_recorded = self
            .record_changes(
                &report.sync_id,
                &meta.last_synced_at,
                changes_record,
                changes,
            )
            .await;
        let (removed, pending) = if lease.held_by_clock() {
            self.prune(aggregate.to_delete).await
        } else {
            // A late prune could delete what a sync that took over re-added:
            // the deletes stay pending in the meta for the next sync.
            tracing::warn!("the lease ran out before pruning; the next sync deletes");
            let pending = aggregate.to_delete.iter().map(Slug::to_string).collect();
            (Vec::new(), pending)
        };
        report.removed = removed;
        report.pending_deletes = pending;
        report.timings.publish = phase.elapsed().as_millis() as u64;
        Ok(())
    }

    fn start_listings(&self) -> AbortOnDropHandle<Listings> {
        let client = self.client.clone();
        let listings =
            async move { tokio::join!(client.list_auth_configs(), client.list_toolkits()) };
        AbortOnDropHandle::new(tokio::spawn(listings.in_current_span()))
    }

    /// A store operation bounded by `store_timeout`.
    async fn bounded<T>(&self, op: impl Future<Output = T>) -> Result<T, Abort> {
        tokio::time::timeout(self.settings.store_timeout, op)
            .await
            .map_err(|_| Abort::StoreTimeout(self.settings.store_timeout))
    }

    /// The published index, its pending deletes and the meta's tag.
    async fn read_previous(&self) -> Result<Previous, Abort> {
        let Some(object) = self.bounded(self.store.get(&ObjectKey::Meta)).await?? else {
            return Ok(Previous {
                index: Vec::new(),
                pending_deletes: Vec::new(),
                unfinished_full_pass: None,
                etag: None,
            });
        };
        match serde_json::from_slice::<Meta>(&object.body) {
            Ok(meta) => Ok(Previous {
                index: meta.toolkits,
                pending_deletes: meta.pending_deletes,
                unfinished_full_pass: meta.unfinished_full_pass,
                etag: Some(object.etag),
            }),
            Err(e) => {
                // Unreadable: start from nothing, but still replace it by CAS.
                tracing::warn!(error = %e, "previous meta is unreadable; syncing from scratch");
                Ok(Previous {
                    index: Vec::new(),
                    pending_deletes: Vec::new(),
                    unfinished_full_pass: None,
                    etag: Some(object.etag),
                })
            }
        }
    }

    /// A listed toolkit costs one call (its tools: the listing has the rest);
    /// an unlisted one also needs its detail call.
    async fn fetch(
        &self,
        slug: &Slug,
        listed: Option<&ToolkitSummary>,
    ) -> Result<UpstreamToolkit, FetchError> {
        match listed {
            Some(summary) => {
                let tools = self.client.list_tools(slug).await?;
                Ok(UpstreamToolkit {
                    info: ToolkitInfo::from_summary(summary),
                    tools,
                })
            }
            None => {
                let (detail, tools) =
                    tokio::try_join!(self.client.get_toolkit(slug), self.client.list_tools(slug))?;
                Ok(UpstreamToolkit {
                    info: ToolkitInfo::from_detail(&detail),
                    tools,
                })
            }
        }
    }

    /// Maps a fetched toolkit (off the I/O threads) and writes its object if
    /// it changed. A failed write aborts the sync: no meta may name it.
    async fn settle(
        &self,
        slug: Slug,
        reason: FetchReason,
        fetched: Result<UpstreamToolkit, FetchError>,
        previous: Option<&IndexEntry>,
        stored: &StoredEtags,
        lease: &Lease,
    ) -> Result<Settled, Abort> {
        let settled = |outcome, map_time, write_time| Settled {
            slug: slug.clone(),
            reason: reason.clone(),
            outcome,
            out_of_time: false,
            map_time,
            write_time,
        };
        let upstream = match fetched {
            Ok(upstream) => upstream,
            Err(e) => {
                let out_of_time = matches!(e, FetchError::OutOfTime);
                let mut failed = settled(self.failed(&slug, e), Duration::ZERO, Duration::ZERO);
                failed.out_of_time = out_of_time;
                return Ok(failed);
            }
        };
        let mapping_started = Instant::now();
        let asked = slug.clone();
        let known = previous.map(known_tools).unwrap_or_default();
        let core = self
            .mapping
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mapped = tokio::task::spawn_blocking(move || {
            let _core = core;
            map_toolkit(&asked, &upstream, &known)
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let map_time = mapping_started.elapsed();
        let encoded: EncodedToolkit = match mapped {
            Ok(encoded) => encoded,
            Err(e) => {
                return Ok(settled(
                    self.failed(&slug, e.into()),
                    map_time,
                    Duration::ZERO,
                ))
            }
        };
        self.emit(SyncEvent::Fetched {
            slug: slug.clone(),
            tools: encoded.tools.len(),
        });
        let write = plan::needs_write(previous, stored, &encoded.content_hash);
        let write_started = Instant::now();
        let etag = if write {
            if !lease.held_by_clock() {
                return Err(Abort::LeaseLost);
            }
            let key = ObjectKey::Toolkit(slug.clone());
            let body = encoded.body.clone();
            Some(
                self.bounded(self.store.put(&key, body, PutCondition::Overwrite))
                    .await??
                    .0,
            )
        } else {
            previous.and_then(|p| p.etag.clone())
        };
        let entry = IndexEntry {
            slug: slug.clone(),
            name: encoded.name,
            logo: encoded.logo,
            tool_count: encoded.tools.len(),
            version: encoded.version,
            updated_at: encoded.updated_at,
            content_hash: encoded.content_hash,
            etag,
            synced_at: timestamp(SystemTime::now()),
            stale: false,
            last_error: None,
            tools: encoded.tools,
        };
        let write_time = write_started.elapsed();
        tracing::debug!(
            toolkit = %slug,
            tools = entry.tool_count,
            map_ms = map_time.as_millis() as u64,
            write_ms = write_time.as_millis() as u64,
            written = write,
            "toolkit settled"
        );
        let outcome = FetchOutcome::Synced {
            entry: Box::new(entry),
            written: write,
        };
        Ok(settled(outcome, map_time, write_time))
    }

    fn failed(&self, slug: &Slug, error: FetchError) -> FetchOutcome {
        let error = cut(&self.client.redact(&error.to_string()));
        tracing::warn!(toolkit = %slug, %error, "toolkit failed");
        self.emit(SyncEvent::Failed {
            slug: slug.to_string(),
            error: error.clone(),
        });
        FetchOutcome::Failed(Failure {
            slug: slug.to_string(),
            error,
        })
    }

    /// The meta, by compare-and-swap on the tag the sync started from. A 409
    /// (a conditional write in flight) decided nothing: re-read the tag and,
    /// if the meta is still ours to replace, try again.
    async fn publish(&self, meta: &Meta, base: Option<ETag>) -> Result<(), Abort> {
        const ATTEMPTS: u32 = 3;
        let body = Bytes::from(serde_json::to_vec(meta).expect("meta serializes"));
        let condition = match &base {
            Some(etag) => PutCondition::IfMatch(etag.clone()),
            None => PutCondition::IfAbsent,
        };
        for attempt in 1..=ATTEMPTS {
            let put = self
                .store
                .put(&ObjectKey::Meta, body.clone(), condition.clone());
            match self.bounded(put).await? {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed { .. }) => return Err(Abort::Superseded),
                Err(StoreError::Conflict { key }) if attempt < ATTEMPTS => {
                    let now = self.bounded(self.store.etag(&ObjectKey::Meta)).await??;
                    if now != base {
                        return Err(Abort::Superseded);
                    }
                    tracing::warn!(%key, attempt, "conditional write conflict on the meta; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Deletes, concurrently and bounded in time, the objects the new meta no
    /// longer names. Returns (deleted, still pending); pending ones stay in
    /// the meta's `pendingDeletes` and the next sync retries them.
    async fn prune(&self, to_delete: Vec<Slug>) -> (Vec<String>, Vec<String>) {
        let deletes = futures::stream::iter(to_delete.clone())
            .map(|slug| async move {
                let result = self.store.delete(&ObjectKey::Toolkit(slug.clone())).await;
                if let Err(e) = &result {
                    tracing::warn!(toolkit = %slug, error = %e, "could not prune a toolkit; the next sync retries");
                }
                (slug, result.is_ok())
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>();
        let done: HashMap<Slug, bool> = match self.bounded(deletes).await {
            Ok(results) => results.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "pruning ran out of time; the next sync retries");
                HashMap::new()
            }
        };
        let (mut removed, mut pending) = (Vec::new(), Vec::new());
        for slug in to_delete {
            if done.get(&slug).copied().unwrap_or(false) {
                removed.push(slug.to_string());
            } else {
                pending.push(slug.to_string());
            }
        }
        (removed, pending)
    }

    /// The change feed's record of this publish (none when nothing changed),
    /// and records past their retention deleted. Best effort: the meta is
    /// already published; a record that could not be written is reported.
    async fn record_changes(
        &self,
        sync_id: &str,
        at: &str,
        name: Option<ChangesName>,
        changes: Vec<ToolChange>,
    ) -> bool {
        let mut recorded = true;
        if !changes.is_empty() {
            let Some(name) = name else {
                return false;
            };
            let record = ChangeRecord {
                sync_id: sync_id.to_owned(),
                at: at.to_owned(),
                changes,
            };
            let body =
                Bytes::from(serde_json::to_vec(&record).expect("a change record serializes"));
            let key = ObjectKey::Changes(name);
            let put = self.store.put(&key, body, PutCondition::IfAbsent);
            recorded = matches!(self.bounded(put).await, Ok(Ok(_)));
            if !recorded {
                tracing::warn!("could not record this sync's changes");
            }
        }
        let oldest_kept = timestamp(SystemTime::now() - self.settings.changes_retention);
        let expired = async {
            let listed = self.store.list_changes().await?;
            for object in listed {
                if let ObjectKey::Changes(name) = &object.key {
                    if name.at() < oldest_kept.as_str() {
                        self.store.delete(&object.key).await?;
                    }
                }
            }
            Ok::<_, StoreError>(())
        };
        match self.bounded(expired).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not prune old change records"),
            Err(e) => tracing::warn!(error = %e, "could not prune old change records"),
        }
        recorded
    }

    async fn record_last_run(&self, report: &SyncReport) {
        let Ok(body) = serde_json::to_vec_pretty(report) else {
            return;
        };
        let put = self
            .store
            .put(&ObjectKey::LastRun, body.into(), PutCondition::Overwrite);
        match self.bounded(put).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not record the last run"),
            Err(e) => tracing::warn!(error = %e, "could not record the last run"),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    cut(&text)
}
