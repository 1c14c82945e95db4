//! One sync, step by step. Each step takes and returns named values; only
//! `SyncEngine::steps` writes the report, from what the steps give back.
//!
//! | step | what it does | gives |
//! |---|---|---|
//! | gather | reads what is published, what the store holds, what the project has | [`Gathered`] |
//! | plan | decides which toolkits to keep and which to fetch, and why (pure) | [`RunPlan`] |
//! | fetch | fetches, maps and writes the toolkits to fetch | [`Fetched`] |
//! | aggregate | the next index from what was kept and fetched (pure) | [`plan::Aggregate`] |
//! | publish | the meta, by compare-and-swap, once the lease is confirmed | [`Published`] |
//! | record, prune | the change feed's record; objects no longer named deleted | report fields |

use super::planning::{self, Gathered, Previous, RunPlan};
use super::{Abort, SyncEngine, SyncEvent, SyncReport, SyncRequest};
use crate::cache::changes::{ChangeCounts, ToolChange};
use crate::cache::plan::{self, FetchOutcome, StoredEtags};
use crate::cache::{Meta, Slug};
use crate::composio::UpstreamError;
use crate::store::{ChangesName, ObjectKey};
use crate::wire::{AuthConfig, ToolkitSummary};
use std::time::{Duration, Instant};
use tokio_util::task::AbortOnDropHandle;

/// What one run carries from step to step.
pub(super) struct Run<'r> {
    pub request: &'r SyncRequest,
    /// Fetching stops here; what finished is published.
    pub deadline: Instant,
    pub started: Instant,
    pub lease: &'r super::Lease,
    pub sync_id: &'r str,
    /// When the run began (RFC 3339), where a full pass that runs out of time begins.
    pub started_at: &'r str,
}

/// The project's auth configs and Composio's toolkit listing.
pub(super) type Listings = (
    Result<Vec<AuthConfig>, UpstreamError>,
    Result<Vec<ToolkitSummary>, UpstreamError>,
);

/// What the fetch step ended with.
pub(super) struct Fetched {
    /// Toolkits whose fetch was tried, a write that failed included.
    pub attempted: usize,
    pub outcomes: Vec<(Slug, FetchOutcome)>,
    /// Toolkits whose object was not what the index said, and was rewritten.
    pub repaired: Vec<super::Repair>,
    /// The sync's time budget ran out before some toolkit was fetched.
    pub out_of_time: bool,
    /// Mapping and writing, summed over toolkits.
    pub map_time: Duration,
    pub write_time: Duration,
    /// A store write failed: nothing may be published.
    pub store_failure: Option<Abort>,
}

/// A published meta and what it changed.
pub(super) struct Published {
    pub meta: Meta,
    /// The store's tag of the meta as published.
    pub etag: crate::store::ETag,
    pub changes: Vec<ToolChange>,
    /// The change record this meta names, to be written next.
    pub changes_record: Option<ChangesName>,
}

impl SyncEngine {
    /// The run, in order. The report is written here only, from what each
    /// step gives back, so a step that fails leaves what the earlier ones said.
    pub(super) async fn steps(
        &self,
        run: &Run<'_>,
        report: &mut SyncReport,
        listings: AbortOnDropHandle<Listings>,
    ) -> Result<(), Abort> {
        let gathered = self.gather(listings).await?;
        let redact = |raw: &str| self.client.redact(raw);
        let plan = planning::plan_run(&gathered, run.request, &self.settings, redact)?;
        report.planned(&plan, run.started.elapsed());
        report.leftovers_removed = gathered.leftovers_removed;
        self.emit(SyncEvent::Planned {
            to_fetch: plan.to_fetch.len(),
            unchanged: plan.kept.len(),
        });

        let phase = Instant::now();
        // Before the deadline and beside the fetches: the records a killed
        // sync left go while Composio is being read, not after the deadline.
        let (mut fetched, cleared) = tokio::join!(
            self.fetch_all(run, &gathered, plan.to_fetch),
            self.clear_unpublished_records(&gathered.previous)
        );
        report.fetched_all(&mut fetched, phase.elapsed());
        if let Some(abort) = fetched.store_failure {
            return Err(abort);
        }
        cleared?;

        let previous = &gathered.previous;
        let aggregate = plan::aggregate(
            &previous.index,
            &previous.pending_deletes,
            &gathered.stored,
            plan.kept,
            fetched.outcomes,
            plan.refused,
        );
        report.aggregated(&aggregate);
        let aggregate = aggregate?;
        // The plan passed the guard; failed fetches can still empty the index
        // (objects to repair while Composio is down): same guard, same override.
        if !run.request.allow_shrink {
            let publishing: Vec<Slug> = aggregate.index.iter().map(|e| e.slug.clone()).collect();
            plan::shrink_guard(&previous.index, &publishing, self.settings.max_shrink)?;
        }

        let phase = Instant::now();
        let to_delete = aggregate.to_delete.clone();
        let published = self
            .publish(run, previous, aggregate, fetched.out_of_time)
            .await?;
        report.published(&published);
        let record = published.changes_record.clone();
        let through = published.meta.last_synced_at.clone();
        (report.removed, report.pending_deletes) = self.prune_if_held(run.lease, to_delete).await;
        let (meta, etag) = (published.meta.clone(), published.etag.clone());
        self.record_what_remains(run.lease, meta, etag, &report.removed)
            .await;
        let unnamed = planning::unnamed_snapshots(
            &gathered.snapshots,
            &previous.index,
            &published.meta.toolkits,
        );
        report.snapshots_removed = self.remove_snapshots_if_held(run.lease, unnamed).await;
        report.timings.publish = phase.elapsed().as_millis() as u64;
        report.notified(self.notify(record.as_ref(), &through).await);
        Ok(())
    }

    /// Gather: the published meta, the store's listing and the Composio
    /// listings (already in flight), at once.
    async fn gather(&self, listings: AbortOnDropHandle<Listings>) -> Result<Gathered, Abort> {
        let (previous, stored, snapshots, listings, leftovers) = tokio::join!(
            self.read_previous(),
            self.bounded(self.store.list()),
            self.bounded(self.store.list_snapshots()),
            listings,
            self.sweep_leftovers()
        );
        let previous = previous?;
        let (auth_configs, listing) =
            listings.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let auth_configs = auth_configs.map_err(Abort::AuthConfigs)?;
        let views: StoredEtags = stored??
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Toolkit(slug) => Some((slug, o.etag.0)),
                _ => None,
            })
            .collect();
        let snapshots: Vec<_> = snapshots??
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Snapshot(slug, hash) => Some((slug, hash, o.etag.0)),
                _ => None,
            })
            .collect();
        let stored = planning::with_snapshots(views, &previous.index, &snapshots);
        let listing = listing.map(|items| {
            items
                .into_iter()
                .map(|t| (t.slug.to_ascii_lowercase(), t))
                .collect()
        });
        Ok(Gathered {
            previous,
            stored,
            auth_configs,
            listing,
            leftovers_removed: leftovers,
            snapshots: snapshots.into_iter().map(|(s, h, _)| (s, h)).collect(),
        })
    }

    /// What killed writes left behind, removed: older than one store
    /// operation, so no write in flight (the lease keeps other writers out).
    async fn sweep_leftovers(&self) -> usize {
        let sweep = self.store.sweep_leftovers(self.settings.store_timeout);
        let error = match self.bounded(sweep).await {
            Ok(Ok(0)) => return 0,
            Ok(Ok(removed)) => {
                tracing::info!(removed, "removed temporary files killed writes left behind");
                return removed;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%error, "could not remove leftover temporary files; the next sync tries again");
        0
    }

    pub(super) fn start_listings(&self) -> AbortOnDropHandle<Listings> {
        use tracing::Instrument;
        let client = self.client.clone();
        // An explicit list needs no auth configs: one call saved.
        let explicit = matches!(self.settings.scope, super::Scope::Toolkits(_));
        let listings = async move {
            let auth_configs = async {
                if explicit {
                    Ok(Vec::new())
                } else {
                    client.list_auth_configs().await
                }
            };
            tokio::join!(auth_configs, client.list_toolkits())
        };
        AbortOnDropHandle::new(tokio::spawn(listings.in_current_span()))
    }

    /// The published index, its pending deletes and the meta's tag.
    async fn read_previous(&self) -> Result<Previous, Abort> {
        let nothing = |etag| Previous {
            index: Vec::new(),
            pending_deletes: Vec::new(),
            unfinished_full_pass: None,
            etag,
            last_synced_at: None,
        };
        let Some(object) = self.bounded(self.store.get(&ObjectKey::Meta)).await?? else {
            return Ok(nothing(None));
        };
        match serde_json::from_slice::<Meta>(&object.body) {
            Ok(meta) => Ok(Previous {
                index: meta.toolkits,
                pending_deletes: meta.pending_deletes,
                unfinished_full_pass: meta.unfinished_full_pass,
                etag: Some(object.etag),
                last_synced_at: Some(meta.last_synced_at),
            }),
            Err(e) => {
                // Unreadable: start from nothing, but still replace it by CAS.
                tracing::warn!(error = %e, "previous meta is unreadable; syncing from scratch");
                Ok(nothing(Some(object.etag)))
            }
        }
    }
}

/// What each step tells the report.
impl SyncReport {
    fn planned(&mut self, plan: &RunPlan, since_start: Duration) {
        if let Some(fallback) = &plan.fallback {
            self.mode = super::SyncMode::Full;
            self.fallback = Some(fallback.clone());
        }
        self.resumed_full_pass = plan.resumed_full_pass.clone();
        self.timings.plan = since_start.as_millis() as u64;
    }

    fn fetched_all(&mut self, fetched: &mut Fetched, took: Duration) {
        self.fetched = fetched.attempted;
        self.repaired = std::mem::take(&mut fetched.repaired);
        self.timings.fetch = took.as_millis() as u64;
        self.timings.map = fetched.map_time.as_millis() as u64;
        self.timings.write = fetched.write_time.as_millis() as u64;
    }

    fn aggregated(&mut self, aggregate: &Result<plan::Aggregate, plan::AllFailed>) {
        match aggregate {
            Ok(aggregate) => {
                self.fetched = aggregate.fetched;
                self.written = aggregate.written;
                self.unchanged = aggregate.unchanged;
                self.failed = aggregate.failures.clone();
            }
            Err(all_failed) => {
                self.fetched = all_failed.fetched;
                self.failed = all_failed.failures.clone();
            }
        }
    }

    fn published(&mut self, published: &Published) {
        self.published = true;
        self.success = true;
        self.toolkits = published.meta.toolkit_count;
        self.tools = published.meta.total_tool_count;
        self.stale = published.meta.toolkits.iter().filter(|e| e.stale).count();
        self.tools_left_out = published.meta.tools_left_out();
        self.changes = Some(ChangeCounts::of(&published.changes));
        // Written before the meta, or the meta was not published.
        self.changes_recorded = published.changes.is_empty() || published.changes_record.is_some();
    }
}
