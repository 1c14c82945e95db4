//! The engine: plan → fetch (bounded, concurrent) → write → publish → prune.
//!
//! Write order is the consistency model: toolkit objects first, the meta last
//! (compare-and-swap on its ETag), deletions only after the meta no longer
//! names them. A reader that sees a meta can read every object it names.

mod lease;
mod report;

pub use lease::{Lease, LeaseError, LeaseRecord};
pub use report::{SyncMode, SyncReport};

use crate::cache::{
    content_hash, map_toolkit, timestamp, CachedToolkit, Failure, IndexEntry, Meta, Slug,
    UpstreamToolkit,
};
use crate::composio::ComposioClient;
use crate::store::{ETag, ObjectKey, PutCondition, Store, StoreError};
use crate::wire::ToolkitSummary;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Platform toolkits that need no auth and so never show up in auth configs.
    pub no_auth_toolkits: Vec<Slug>,
    /// Toolkits fetched at once.
    pub concurrency: usize,
    /// How long a lease holds if its holder dies.
    pub lease_ttl: Duration,
    /// Time budget of a whole sync when the caller sets none.
    pub timeout: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            no_auth_toolkits: vec![Slug::parse("browser_tool").expect("valid")],
            concurrency: 8,
            lease_ttl: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(13 * 60),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Refetch every toolkit, whatever the listing says.
    pub full: bool,
    /// Stop fetching at this instant and publish what finished (a Lambda's deadline).
    pub deadline: Option<Instant>,
}

impl SyncRequest {
    /// Refetch everything, no deadline beyond the engine's own timeout.
    pub fn full() -> Self {
        Self {
            full: true,
            deadline: None,
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

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Busy(#[from] LeaseError),
}

#[derive(Clone)]
pub struct SyncEngine {
    client: ComposioClient,
    store: Arc<dyn Store>,
    settings: SyncSettings,
    observer: Option<Observer>,
}

/// Why a sync stopped before publishing.
#[derive(Debug, thiserror::Error)]
enum Abort {
    #[error("listing the project's auth configs failed: {0}")]
    AuthConfigs(crate::composio::UpstreamError),
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    #[error("every toolkit failed; nothing was published")]
    AllFailed,
    #[error("another sync published a newer meta meanwhile; this one was not published")]
    Superseded,
}

enum Outcome {
    Written(IndexEntry),
    Same(IndexEntry),
    Failed(Failure),
}

impl SyncEngine {
    pub fn new(client: ComposioClient, store: Arc<dyn Store>, settings: SyncSettings) -> Self {
        Self {
            client,
            store,
            settings,
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn emit(&self, event: SyncEvent) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Runs one sync. `Err` only when another sync holds the lease; every
    /// other failure is a report with `success: false`.
    pub async fn run(&self, request: SyncRequest) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let sync_id = uuid::Uuid::new_v4().to_string();
        let requests_before = self.client.requests_sent();
        let lease = Lease::acquire(&*self.store, &sync_id, self.settings.lease_ttl).await?;

        let mut report = SyncReport::new(sync_id.clone(), timestamp(started_at), request.full);
        let deadline = request.deadline.unwrap_or(started + self.settings.timeout);
        // After a sync that died or failed to publish, objects may be newer
        // than the index says: compare fetched content with nothing, write it.
        let trust_hashes = !lease.took_over && !self.last_run_left_unpublished_writes().await;
        if let Err(abort) = self
            .sync(&request, deadline, trust_hashes, &mut report, started)
            .await
        {
            tracing::error!(error = %abort, "sync not published");
            report.success = false;
            report.message = Some(abort.to_string());
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.upstream_requests = self.client.requests_sent() - requests_before;
        if let Ok(body) = serde_json::to_vec_pretty(&report) {
            if let Err(e) = self
                .store
                .put(&ObjectKey::LastRun, body.into(), PutCondition::Overwrite)
                .await
            {
                tracing::warn!(error = %e, "could not record the last run");
            }
        }
        if let Err(e) = lease.release(&*self.store).await {
            tracing::warn!(error = %e, "could not release the sync lease; it will expire");
        }
        Ok(report)
    }

    async fn sync(
        &self,
        request: &SyncRequest,
        deadline: Instant,
        trust_hashes: bool,
        report: &mut SyncReport,
        started: Instant,
    ) -> Result<(), Abort> {
        let (prev_entries, prev_etag) = self.read_index().await?;
        let prev_index: HashMap<&Slug, &IndexEntry> =
            prev_entries.iter().map(|e| (&e.slug, e)).collect();

        // The listing is independent of the auth configs: ask both at once.
        let (plan, listing) = tokio::join!(self.plan(), self.client.list_toolkits());
        let (planned, mut failures) = plan?;
        let existing: BTreeSet<Slug> = self
            .store
            .list()
            .await?
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Toolkit(slug) => Some(slug),
                _ => None,
            })
            .collect();
        let listing: HashMap<String, ToolkitSummary> = match listing {
            Ok(items) => items.into_iter().map(|t| (t.slug.clone(), t)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "toolkit listing failed; fetching every toolkit");
                if !request.full {
                    report.mode = SyncMode::Full;
                    report.fallback = Some(format!("toolkit listing failed: {e}"));
                }
                HashMap::new()
            }
        };

        // Incremental: the listing says which toolkits changed since the index.
        let mut unchanged: Vec<IndexEntry> = Vec::new();
        let mut to_fetch: Vec<Slug> = Vec::new();
        for slug in &planned {
            let same = (report.mode == SyncMode::Incremental)
                .then(|| prev_index.get(slug))
                .flatten()
                .filter(|entry| {
                    let listed = listing.get(slug.as_str());
                    !entry.stale
                        && existing.contains(slug)
                        && entry.version.is_some()
                        && listed.map(|t| (&t.meta.version, &t.meta.updated_at))
                            == Some((&entry.version, &entry.updated_at))
                });
            match same {
                Some(entry) => unchanged.push((*entry).clone()),
                None => to_fetch.push(slug.clone()),
            }
        }
        // Biggest first: the longest chain of tool pages starts at once.
        let expected_tools = |slug: &Slug| -> u64 {
            listing
                .get(slug.as_str())
                .and_then(|t| t.meta.tools_count)
                .map(|n| n as u64)
                .or_else(|| prev_index.get(slug).map(|e| e.tool_count as u64))
                .unwrap_or(0)
        };
        to_fetch.sort_by_key(|slug| std::cmp::Reverse(expected_tools(slug)));
        report.unchanged = unchanged.len();
        self.emit(SyncEvent::Planned {
            to_fetch: to_fetch.len(),
            unchanged: unchanged.len(),
        });

        // Two stages: the concurrency bound is for Composio, so a slot is
        // freed as soon as a toolkit is fetched, not when it is written.
        let concurrency = self.settings.concurrency.max(1);
        let outcomes: Vec<Result<Outcome, StoreError>> = futures::stream::iter(to_fetch)
            .map(|slug| async move {
                let fetched = tokio::time::timeout_at(deadline.into(), self.fetch(&slug)).await;
                (slug, fetched)
            })
            .buffer_unordered(concurrency)
            .map(|(slug, fetched)| {
                let prev = prev_index.get(&slug).map(|e| (*e).clone());
                let exists = existing.contains(&slug);
                self.settle(slug, prev, exists && trust_hashes, fetched)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;

        let mut index: BTreeMap<Slug, IndexEntry> =
            unchanged.into_iter().map(|e| (e.slug.clone(), e)).collect();
        let mut fetched_ok = 0;
        let mut written: BTreeSet<Slug> = BTreeSet::new();
        let mut store_error = None;
        for outcome in outcomes {
            report.fetched += 1;
            match outcome {
                Err(e) => {
                    store_error.get_or_insert(e);
                }
                Ok(Outcome::Written(entry)) => {
                    fetched_ok += 1;
                    report.written += 1;
                    written.insert(entry.slug.clone());
                    index.insert(entry.slug.clone(), entry);
                }
                Ok(Outcome::Same(entry)) => {
                    fetched_ok += 1;
                    report.unchanged += 1;
                    index.insert(entry.slug.clone(), entry);
                }
                Ok(Outcome::Failed(failure)) => {
                    let prev = Slug::parse(&failure.slug)
                        .ok()
                        .and_then(|s| prev_index.get(&s).copied());
                    if let Some(prev) = prev.filter(|p| existing.contains(&p.slug)) {
                        let mut stale = prev.clone();
                        stale.stale = true;
                        stale.last_error = Some(failure.error.clone());
                        index.insert(stale.slug.clone(), stale);
                    }
                    failures.push(failure);
                }
            }
        }
        failures.sort_by(|a, b| a.slug.cmp(&b.slug));
        report.failed = failures.clone();
        if let Some(e) = store_error {
            return Err(e.into());
        }
        if report.fetched > 0 && fetched_ok == 0 && report.unchanged == 0 {
            return Err(Abort::AllFailed);
        }

        let meta = Meta {
            last_synced_at: timestamp(SystemTime::now()),
            toolkit_count: index.len(),
            total_tool_count: index.values().map(|e| e.tool_count).sum(),
            sync_duration_ms: started.elapsed().as_millis() as u64,
            sync_id: report.sync_id.clone(),
            toolkits: index.into_values().collect(),
            failed: failures,
        };
        let body = Bytes::from(serde_json::to_vec(&meta).expect("meta serializes"));
        let condition = match prev_etag {
            Some(etag) => PutCondition::IfMatch(etag),
            None => PutCondition::IfAbsent,
        };
        match self.store.put(&ObjectKey::Meta, body, condition).await {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed { .. }) => return Err(Abort::Superseded),
            Err(e) => return Err(e.into()),
        }
        report.published = true;
        report.success = true;
        report.toolkits = meta.toolkit_count;
        report.tools = meta.total_tool_count;

        // Only now may objects the new meta no longer names go, and only ours:
        // named by the previous index or written by this run.
        let kept: BTreeSet<&Slug> = meta.toolkits.iter().map(|e| &e.slug).collect();
        let ours = existing
            .iter()
            .filter(|s| prev_index.contains_key(s) || written.contains(*s));
        for slug in ours.filter(|s| !kept.contains(s)) {
            match self.store.delete(&ObjectKey::Toolkit(slug.clone())).await {
                Ok(()) => report.removed.push(slug.to_string()),
                Err(e) => tracing::warn!(toolkit = %slug, error = %e, "could not prune a toolkit"),
            }
        }
        Ok(())
    }

    async fn last_run_left_unpublished_writes(&self) -> bool {
        match self.store.get(&ObjectKey::LastRun).await {
            Ok(Some(o)) => serde_json::from_slice::<SyncReport>(&o.body)
                .map(|r| !r.published && r.written > 0)
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The published index and the meta's tag (for the compare-and-swap).
    async fn read_index(&self) -> Result<(Vec<IndexEntry>, Option<ETag>), StoreError> {
        let Some(object) = self.store.get(&ObjectKey::Meta).await? else {
            return Ok((Vec::new(), None));
        };
        match serde_json::from_slice::<Meta>(&object.body) {
            Ok(meta) => Ok((meta.toolkits, Some(object.etag))),
            Err(e) => {
                // Unreadable: start from nothing, but still replace it by CAS.
                tracing::warn!(error = %e, "previous meta is unreadable; syncing from scratch");
                Ok((Vec::new(), Some(object.etag)))
            }
        }
    }

    /// Unique toolkit slugs of the enabled auth configs, then the no-auth ones.
    async fn plan(&self) -> Result<(Vec<Slug>, Vec<Failure>), Abort> {
        let configs = self
            .client
            .list_auth_configs()
            .await
            .map_err(Abort::AuthConfigs)?;
        let mut seen = BTreeSet::new();
        let mut planned = Vec::new();
        let mut refused = Vec::new();
        let raw = configs
            .into_iter()
            .map(|c| c.toolkit.slug)
            .chain(self.settings.no_auth_toolkits.iter().map(|s| s.to_string()));
        for raw in raw {
            // Composio slugs are lower case; some payloads are not.
            let normalized = raw.to_ascii_lowercase();
            match Slug::parse(&normalized) {
                Ok(slug) => {
                    if seen.insert(slug.clone()) {
                        planned.push(slug);
                    }
                }
                Err(e) => {
                    let shown: String = self.client.redact(&raw).chars().take(120).collect();
                    if !refused.iter().any(|f: &Failure| f.slug == shown) {
                        refused.push(Failure {
                            slug: shown,
                            error: format!("refused toolkit slug from upstream: {e}"),
                        });
                    }
                }
            }
        }
        Ok((planned, refused))
    }

    async fn fetch(&self, slug: &Slug) -> Result<CachedToolkit, String> {
        let (detail, tools) =
            tokio::try_join!(self.client.get_toolkit(slug), self.client.list_tools(slug))
                .map_err(|e| e.to_string())?;
        map_toolkit(slug, UpstreamToolkit { detail, tools }).map_err(|e| e.to_string())
    }

    async fn settle(
        &self,
        slug: Slug,
        prev: Option<IndexEntry>,
        exists: bool,
        fetched: Result<Result<CachedToolkit, String>, tokio::time::error::Elapsed>,
    ) -> Result<Outcome, StoreError> {
        let toolkit = match fetched {
            Ok(Ok(toolkit)) => toolkit,
            Ok(Err(error)) => return Ok(self.failed(slug, error)),
            Err(_) => {
                return Ok(self.failed(
                    slug,
                    "the sync's time budget ran out before this toolkit finished".into(),
                ))
            }
        };
        let body = serde_json::to_vec(&toolkit).expect("toolkit serializes");
        let hash = content_hash(&body);
        let entry = IndexEntry {
            slug: slug.clone(),
            name: toolkit.name.clone(),
            logo: toolkit.logo.clone(),
            tool_count: toolkit.tool_count,
            version: toolkit.version.clone(),
            updated_at: toolkit.updated_at.clone(),
            content_hash: hash.clone(),
            synced_at: timestamp(SystemTime::now()),
            stale: false,
            last_error: None,
            tools: toolkit.summaries(),
        };
        self.emit(SyncEvent::Fetched {
            slug: slug.clone(),
            tools: toolkit.tool_count,
        });
        if exists && prev.as_ref().is_some_and(|p| p.content_hash == hash) {
            return Ok(Outcome::Same(entry));
        }
        self.store
            .put(
                &ObjectKey::Toolkit(slug),
                Bytes::from(body),
                PutCondition::Overwrite,
            )
            .await?;
        Ok(Outcome::Written(entry))
    }

    fn failed(&self, slug: Slug, error: String) -> Outcome {
        let error = self.client.redact(&error);
        tracing::warn!(toolkit = %slug, %error, "toolkit failed");
        self.emit(SyncEvent::Failed {
            slug: slug.to_string(),
            error: error.clone(),
        });
        Outcome::Failed(Failure {
            slug: slug.to_string(),
            error,
        })
    }
}
