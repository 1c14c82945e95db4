//! The fetch step: each toolkit's tools fetched (bounded, under the shared
//! rate limit, until the deadline), mapped off the I/O threads, and its
//! object written if it changed.

use super::planning::Gathered;
use super::steps::{Fetched, Run};
use super::{Abort, FetchError, Repair, SyncEngine, SyncEvent};
use crate::cache::plan::{self, FetchOutcome, FetchReason, StoredEtags};
use crate::cache::{
    known_tools, map_toolkit, timestamp, CompatReport, EncodedToolkit, Failure, IndexEntry, Slug,
    ToolInput, ToolkitInfo, UpstreamToolkit, INDEX_FORMAT,
};
use crate::composio::{cut, ComposioClient, UpstreamError, TRIGGER_SLUGS_PER_CALL};
use crate::store::{ObjectKey, PutCondition, SnapshotHash};
use crate::wire::{ToolkitSummary, TriggerType};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Trigger types by toolkit slug, or why the batched call failed.
type TriggersByToolkit = Arc<Result<HashMap<String, Vec<TriggerType>>, String>>;

/// The trigger types of every toolkit this run fetches that has any, in as
/// few calls as the endpoint allows: one call (or the unfiltered listing's
/// pages, when the toolkits are too many for one filter), run once and
/// shared by the toolkits' fetches.
struct TriggerBatch {
    wanted: HashSet<Slug>,
    batch: Shared<BoxFuture<'static, TriggersByToolkit>>,
}

impl TriggerBatch {
    fn new(client: ComposioClient, wanted: Vec<Slug>) -> Self {
        let set: HashSet<Slug> = wanted.iter().cloned().collect();
        let keep = set.clone();
        let batch = async move {
            let filter = (wanted.len() <= TRIGGER_SLUGS_PER_CALL).then_some(wanted.as_slice());
            let listed = client.list_trigger_types(filter).await;
            Arc::new(
                listed
                    .map(|items| group_triggers(items, &keep))
                    .map_err(|e| e.to_string()),
            )
        }
        .boxed()
        .shared();
        Self { wanted: set, batch }
    }

    /// This toolkit's trigger types: from the batch, or, if the batch
    /// failed, from a call of its own (so one bad answer fails one toolkit).
    async fn of(
        &self,
        client: &ComposioClient,
        slug: &Slug,
    ) -> Result<Vec<TriggerType>, UpstreamError> {
        if !self.wanted.contains(slug) {
            return Ok(Vec::new());
        }
        match &*self.batch.clone().await {
            Ok(by_toolkit) => Ok(by_toolkit.get(slug.as_str()).cloned().unwrap_or_default()),
            Err(error) => {
                tracing::warn!(toolkit = %slug, %error, "batched trigger types failed; asking for this toolkit's alone");
                client
                    .list_trigger_types(Some(std::slice::from_ref(slug)))
                    .await
            }
        }
    }
}

/// Trigger types grouped by the toolkit each names (else the longest
/// wanted slug its own slug starts with), keeping only wanted toolkits'.
fn group_triggers(
    items: Vec<TriggerType>,
    wanted: &HashSet<Slug>,
) -> HashMap<String, Vec<TriggerType>> {
    let prefixes: Vec<(String, &Slug)> = wanted
        .iter()
        .map(|s| (format!("{}_", s.as_str().to_ascii_uppercase()), s))
        .collect();
    let mut grouped: HashMap<String, Vec<TriggerType>> = HashMap::new();
    for item in items {
        let owner = match item.toolkit.as_ref() {
            Some(t) => Some(t.slug.to_ascii_lowercase()),
            None => prefixes
                .iter()
                .filter(|(p, _)| item.slug.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len())
                .map(|(_, s)| s.to_string()),
        };
        if let Some(owner) = owner.filter(|o| Slug::parse(o).is_ok_and(|s| wanted.contains(&s))) {
            grouped.entry(owner).or_default().push(item);
        }
    }
    grouped
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
    /// Fetch, map, write. Two stages: the concurrency bound is for Composio,
    /// so a slot frees as soon as a toolkit is fetched.
    pub(super) async fn fetch_all(
        &self,
        run: &Run<'_>,
        gathered: &Gathered,
        to_fetch: Vec<(Slug, FetchReason)>,
    ) -> Fetched {
        let concurrency = self.settings.concurrency.max(1);
        let listing = gathered.listing.as_ref().ok();
        let previous: HashMap<&Slug, &IndexEntry> = gathered
            .previous
            .index
            .iter()
            .map(|e| (&e.slug, e))
            .collect();
        let previous = &previous;
        let wanted = super::planning::with_triggers(&to_fetch, listing);
        let triggers = &TriggerBatch::new(self.client.clone(), wanted);
        let settled: Vec<Result<Settled, Abort>> = futures::stream::iter(to_fetch)
            .map(|(slug, reason)| async move {
                let summary = listing.and_then(|l| l.get(slug.as_str()));
                let fetch = self.fetch(&slug, summary, triggers);
                let fetched = tokio::time::timeout_at(run.deadline.into(), fetch).await;
                (slug, reason, fetched.unwrap_or(Err(FetchError::OutOfTime)))
            })
            .buffer_unordered(concurrency)
            .map(|(slug, reason, fetched)| {
                let previous = previous.get(&slug).copied();
                self.settle(slug, reason, fetched, previous, &gathered.stored, run)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        tally(settled)
    }

    /// A listed toolkit costs one call (its tools: the listing has the rest,
    /// its trigger types come in the run's batch); an unlisted one (a
    /// deprecated toolkit the listing leaves out) also needs its detail call.
    async fn fetch(
        &self,
        slug: &Slug,
        listed: Option<&ToolkitSummary>,
        triggers: &TriggerBatch,
    ) -> Result<UpstreamToolkit, FetchError> {
        let client = &self.client;
        match listed {
            Some(summary) => {
                let (tools, triggers) =
                    tokio::try_join!(client.list_tools(slug), triggers.of(client, slug))?;
                Ok(UpstreamToolkit {
                    info: ToolkitInfo::from_summary(summary),
                    tools,
                    triggers,
                })
            }
            None => {
                let (detail, tools, triggers) = tokio::try_join!(
                    client.get_toolkit(slug),
                    client.list_tools(slug),
                    triggers.of(client, slug)
                )?;
                Ok(UpstreamToolkit {
                    info: ToolkitInfo::from_detail(&detail),
                    tools,
                    triggers,
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
        run: &Run<'_>,
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
        let mapped = self.map(&slug, upstream, previous, run.deadline).await;
        let map_time = mapping_started.elapsed();
        let encoded = match mapped {
            Ok(encoded) => encoded,
            Err(e) => {
                let out_of_time = matches!(e, FetchError::OutOfTime);
                let mut failed = settled(self.failed(&slug, e), map_time, Duration::ZERO);
                failed.out_of_time = out_of_time;
                return Ok(failed);
            }
        };
        for tool in &encoded.left_out {
            tracing::warn!(toolkit = %slug, tool = %tool.slug, error = %tool.error, "tool left out");
        }
        for (trigger, reason) in &encoded.refused_triggers {
            let reason = cut(&self.client.redact(reason));
            tracing::warn!(toolkit = %slug, trigger = %cut(trigger), %reason, "trigger type left out");
        }
        self.emit(SyncEvent::Fetched {
            slug: slug.clone(),
            tools: encoded.tools.len(),
        });
        let write_started = Instant::now();
        let (entry, written) = self.write(&slug, encoded, previous, stored, run).await?;
        let write_time = write_started.elapsed();
        tracing::debug!(
            toolkit = %slug,
            tools = entry.tool_count,
            map_ms = map_time.as_millis() as u64,
            write_ms = write_time.as_millis() as u64,
            written,
            "toolkit settled"
        );
        let outcome = FetchOutcome::Synced {
            entry: Box::new(entry),
            written,
        };
        Ok(settled(outcome, map_time, write_time))
    }

    /// Mapping and hashing on a blocking thread, at most one toolkit per
    /// core. The compatibility reports are the costly part (each bounded by
    /// the converter's budget): a toolkit whose reports run past the
    /// deadline is out of time, like a fetch, and keeps its last copy.
    async fn map(
        &self,
        slug: &Slug,
        upstream: UpstreamToolkit,
        previous: Option<&IndexEntry>,
        deadline: Instant,
    ) -> Result<EncodedToolkit, FetchError> {
        let asked = slug.clone();
        let known = previous.map(known_tools).unwrap_or_default();
        let core = self
            .mapping
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _core = core;
            let late = AtomicBool::new(false);
            let compat_in_time = |tool: &ToolInput<'_>| {
                if late.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    late.store(true, Ordering::Relaxed);
                    return None;
                }
                compat_of(tool)
            };
            let mapped = map_toolkit(&asked, &upstream, &known, &compat_in_time)?;
            if late.into_inner() {
                return Err(FetchError::OutOfTime);
            }
            Ok(mapped)
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }

    /// The toolkit's object written when it changed (or is not what the
    /// index says), while the lease holds; its index entry either way.
    async fn write(
        &self,
        slug: &Slug,
        encoded: EncodedToolkit,
        previous: Option<&IndexEntry>,
        stored: &StoredEtags,
        run: &Run<'_>,
    ) -> Result<(IndexEntry, bool), Abort> {
        let write = plan::needs_write(previous, stored, &encoded.content_hash);
        let (etag, snapshot_etag) = if write {
            if !run.lease.held_by_clock() {
                return Err(Abort::LeaseLost);
            }
            // The snapshot readers serve (a new name: nothing published
            // changes) and the plain view the replaced system's consumers
            // read, at once: the view runs ahead of the meta whichever lands
            // first, and a sync that dies between them leaves a mismatch the
            // next one repairs.
            let hash = SnapshotHash::parse(&encoded.content_hash).expect("a content hash is hex");
            let snapshot = ObjectKey::Snapshot(slug.clone(), hash);
            let view = ObjectKey::Toolkit(slug.clone());
            let (snapshot_put, view_put) = tokio::join!(
                self.bounded(self.store.put(
                    &snapshot,
                    encoded.body.clone(),
                    PutCondition::Overwrite
                )),
                self.bounded(
                    self.store
                        .put(&view, encoded.body.clone(), PutCondition::Overwrite)
                ),
            );
            let snapshot_etag = snapshot_put??.0;
            (Some(view_put??.0), Some(snapshot_etag))
        } else {
            (
                previous.and_then(|p| p.etag.clone()),
                previous.and_then(|p| p.snapshot_etag.clone()),
            )
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
            snapshot_etag,
            synced_at: timestamp(SystemTime::now()),
            stale: false,
            last_error: None,
            tools: encoded.tools,
            left_out: encoded.left_out,
            triggers: encoded.triggers,
            index_format: INDEX_FORMAT,
        };
        Ok((entry, write))
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
}

/// A tool's compatibility report, computed here: the sync knows both the
/// cache's model and the provider formats, the domain knows no format. Each
/// report is bounded by the converter's budget.
fn compat_of(tool: &ToolInput<'_>) -> Option<CompatReport> {
    let output = serde_json::Value::Null;
    let report = crate::agent::compat_report(&crate::agent::ToolSource {
        slug: tool.slug,
        name: tool.name,
        description: tool.description,
        input_schema: tool.input_schema,
        output_schema: &output,
    });
    (!report.is_clean()).then_some(report)
}

/// The settled toolkits summed up: outcomes, repairs, time, and the first
/// store failure if any.
fn tally(settled: Vec<Result<Settled, Abort>>) -> Fetched {
    let mut fetched = Fetched {
        attempted: settled.len(),
        outcomes: Vec::with_capacity(settled.len()),
        repaired: Vec::new(),
        out_of_time: false,
        map_time: Duration::ZERO,
        write_time: Duration::ZERO,
        store_failure: None,
    };
    for result in settled {
        let settled = match result {
            Ok(settled) => settled,
            Err(abort) => {
                fetched.store_failure.get_or_insert(abort);
                continue;
            }
        };
        fetched.out_of_time |= settled.out_of_time;
        // Summed as durations: many toolkits under a millisecond each still add up.
        fetched.map_time += settled.map_time;
        fetched.write_time += settled.write_time;
        if let (FetchReason::Repair(reason), FetchOutcome::Synced { written: true, .. }) =
            (&settled.reason, &settled.outcome)
        {
            fetched.repaired.push(Repair {
                slug: settled.slug.to_string(),
                reason: reason.clone(),
            });
        }
        fetched.outcomes.push((settled.slug, settled.outcome));
    }
    fetched.repaired.sort_by(|a, b| a.slug.cmp(&b.slug));
    fetched
}
