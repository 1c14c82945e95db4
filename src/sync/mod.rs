//! The engine, as a sequence of steps a reader can follow
//! (`steps.rs`): gather → plan → fetch → aggregate → publish → prune. The
//! decisions are pure functions (`cache::plan`, and `planning` here for the
//! run's own: which toolkits, which fetched, the next meta); the steps only
//! sequence the I/O around them, each taking and returning named values.
//!
//! Write order is the consistency model: toolkit snapshots (immutable,
//! named by their content) and views first, then the change record, the
//! meta last (compare-and-swap on its ETag), deletions only after the meta
//! no longer names them. A reader that sees a meta reads the snapshots it
//! names, which no later sync overwrites: one sync's index and objects.

mod fetching;
mod lease;
mod notifying;
mod planning;
mod publishing;
mod report;
mod steps;

pub use lease::{dead_after, Lease, LeaseRecord, LEASE_SAFETY};
pub use notifying::{
    DeliveryState, NotificationFailure, NotificationsReport, MAX_NOTICES_PER_TARGET,
};
pub use report::{Repair, SyncMode, SyncReport, Timings};

use crate::cache::plan;
use crate::cache::{timestamp, MappingError, Slug};
use crate::composio::{cut, ComposioClient, UpstreamError};
use crate::store::{ObjectKey, Store, StoreError};
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// Which toolkits a sync keeps in the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// The project's: its auth configs' toolkits and the no-auth ones.
    #[default]
    Project,
    /// Every toolkit the listing names, and the project's besides (a custom
    /// or deprecated one the listing may leave out).
    Catalog,
    /// Exactly these (no auth-config call).
    Toolkits(Vec<Slug>),
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Which toolkits are synced; the shrink guard, pruning and the change
    /// feed follow it.
    pub scope: Scope,
    /// Platform toolkits that need no auth and so never show up in auth configs.
    pub no_auth_toolkits: Vec<Slug>,
    /// Toolkits fetched at once.
    pub concurrency: usize,
    /// The longest a lease holds.
    pub lease_ttl: Duration,
    /// How often a running sync renews its lease, so the next one can tell
    /// a dead holder from a live one long before the TTL.
    pub heartbeat: Duration,
    /// Time budget of a whole sync; a caller's deadline can only shorten it.
    pub timeout: Duration,
    /// Largest share (0..=1) of the published toolkits one sync may drop.
    pub max_shrink: f64,
    /// Bound of each store operation, so work after the deadline is bounded too.
    pub store_timeout: Duration,
    /// How long change records are kept.
    pub changes_retention: Duration,
    /// The most one sync spends delivering change notifications.
    pub notify_timeout: Duration,
    /// The read API's public URL, for the notices' `changesUrl`.
    pub public_base_url: Option<String>,
}

/// Store operations a sync may still make after its deadline that must end
/// while it holds its lease, each bounded by `store_timeout`: the writes in
/// flight (concurrent: one bound), the lease check, the change record and
/// the meta (up to three puts and two heads): 8, and one to spare. What
/// follows is safe late: the prune only starts while the lease holds by the
/// clock, the meta was a compare-and-swap, the release is conditional, and
/// the last run is a report. The lease must outlive the deadline by this
/// many bounds (and the 5 s safety margin).
pub const STORE_OPS_AFTER_DEADLINE: u32 = 9;

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

/// Hears every finished run's report (metrics, for one): the engine owns the
/// hook, so whoever listens depends on the engine, never the reverse.
pub type ReportSink = Arc<dyn Fn(&SyncReport) + Send + Sync>;

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
    report_sink: Option<ReportSink>,
    /// Where published change sets are announced.
    notifiers: Vec<Arc<dyn crate::notify::Notifier>>,
    /// Mappings at once: one per core. More only adds threads to the blocking
    /// pool, each with its own allocator arena, and memory, not speed.
    mapping: Arc<tokio::sync::Semaphore>,
}

impl SyncEngine {
    pub fn new(client: ComposioClient, store: Arc<dyn Store>, settings: SyncSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            client,
            store,
            settings,
            observer: None,
            report_sink: None,
            notifiers: Vec::new(),
            mapping: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Hands every finished run's report to `sink`, after the lease is released.
    pub fn with_report_sink(mut self, sink: ReportSink) -> Self {
        self.report_sink = Some(sink);
        self
    }

    /// Announces every published change set to `notifiers`, after the publish.
    pub fn with_notifiers(mut self, notifiers: Vec<Arc<dyn crate::notify::Notifier>>) -> Self {
        self.notifiers = notifiers;
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

    /// A run's life around its steps: the lease (renewed all along), the
    /// run, the lease released.
    async fn run_as(&self, sync_id: String, request: SyncRequest) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let before = self.client.stats();
        // The listings only read Composio, so they start with the lease: the
        // store's round trips before the plan are off the critical path. A
        // refused lease drops them.
        let listings = self.start_listings();
        let lease = self.acquire_lease(&sync_id).await?;
        let stop = tokio::sync::Notify::new();
        let held = async {
            let report = self
                .run_held(&sync_id, &request, (started, before), &lease, listings)
                .await;
            stop.notify_one();
            report
        };
        let (report, ()) = tokio::join!(held, self.keep_alive(&lease, &stop));
        self.release_lease(lease).await;
        if let Some(sink) = &self.report_sink {
            sink(&report);
        }
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

    /// The run while the lease is held: its steps, a panic or an abort
    /// turned into a failed report, the last run recorded.
    async fn run_held(
        &self,
        sync_id: &str,
        request: &SyncRequest,
        (started, before): (Instant, crate::composio::ClientStats),
        lease: &Lease,
        listings: tokio_util::task::AbortOnDropHandle<steps::Listings>,
    ) -> SyncReport {
        let started_at = timestamp(SystemTime::now());
        let mut report = SyncReport::new(sync_id.to_owned(), started_at.clone(), request.full);
        let run = steps::Run {
            request,
            deadline: self.deadline(started, request.deadline),
            started,
            lease,
            sync_id,
            started_at: &started_at,
        };
        let steps = self.steps(&run, &mut report, listings);
        let failure = match AssertUnwindSafe(steps).catch_unwind().await {
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
        report
    }

    /// The lease's heartbeat: renewed every `heartbeat` until `stop`, so a
    /// sync killed outright (no panic, no release) is told from a live one
    /// within `dead_after`, not the whole TTL.
    async fn keep_alive(&self, lease: &Lease, stop: &tokio::sync::Notify) {
        loop {
            tokio::select! {
                _ = stop.notified() => return,
                _ = tokio::time::sleep(self.settings.heartbeat) => {}
            }
            let error = match self.bounded(lease.renew(&*self.store)).await {
                Ok(Ok(true)) => continue,
                // Taken over: nothing more to renew.
                Ok(Ok(false)) => return stop.notified().await,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(%error, "could not renew the sync lease; trying again at the next beat");
        }
    }

    /// The engine's own timeout, shortened by the caller's deadline.
    fn deadline(&self, started: Instant, asked: Option<Instant>) -> Instant {
        let own = started + self.settings.timeout;
        asked.map_or(own, |d| d.min(own))
    }

    async fn acquire_lease(&self, sync_id: &str) -> Result<Lease, SyncError> {
        let dead_after = dead_after(self.settings.heartbeat, self.settings.store_timeout);
        let acquire = Lease::acquire(
            &*self.store,
            sync_id,
            self.settings.lease_ttl,
            Some(dead_after),
        );
        tokio::time::timeout(self.settings.store_timeout, acquire)
            .await
            .map_err(|_| {
                SyncError::Store(StoreError::backend(
                    "acquire",
                    ObjectKey::Lease,
                    format!("no answer within {:?}", self.settings.store_timeout),
                ))
            })?
    }

    async fn release_lease(&self, lease: Lease) {
        let error = match self.bounded(lease.release(&*self.store)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%error, "could not release the sync lease; it will expire");
    }

    /// A store operation bounded by `store_timeout`.
    async fn bounded<T>(&self, op: impl Future<Output = T>) -> Result<T, Abort> {
        tokio::time::timeout(self.settings.store_timeout, op)
            .await
            .map_err(|_| Abort::StoreTimeout(self.settings.store_timeout))
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
