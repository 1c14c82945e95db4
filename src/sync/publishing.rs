//! The publish step and what follows it: the meta by compare-and-swap once
//! the lease is confirmed, the change feed's record, the prune, and the last
//! run's report.

use super::planning::{self, MetaContext, Previous};
use super::steps::{Published, Run};
use super::{Abort, SyncEngine, SyncReport};
use crate::cache::changes::ChangeRecord;
use crate::cache::plan::Aggregate;
use crate::cache::{timestamp, Meta, Slug};
use crate::store::{ETag, ObjectKey, PutCondition, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

impl SyncEngine {
    /// Publish: the lease is confirmed in the store, then the next meta is
    /// written by compare-and-swap on the tag the run started from.
    pub(super) async fn publish(
        &self,
        run: &Run<'_>,
        previous: &Previous,
        aggregate: Aggregate,
        out_of_time: bool,
    ) -> Result<Published, Abort> {
        if !self
            .bounded(run.lease.held_in_store(&*self.store))
            .await??
        {
            return Err(Abort::LeaseLost);
        }
        let context = MetaContext {
            sync_id: run.sync_id,
            started_at: run.started_at,
            synced_at: timestamp(SystemTime::now()),
            sync_duration_ms: run.started.elapsed().as_millis() as u64,
            full: run.request.full,
            out_of_time,
        };
        let (meta, changes, changes_record) = planning::next_meta(previous, aggregate, context);
        let etag = self.put_meta(&meta, previous.etag.clone()).await?;
        Ok(Published {
            meta,
            etag,
            changes,
            changes_record,
        })
    }

    /// The meta, by compare-and-swap on the tag the sync started from. A 409
    /// (a conditional write in flight) decided nothing: re-read the tag and,
    /// if the meta is still ours to replace, try again.
    async fn put_meta(&self, meta: &Meta, base: Option<ETag>) -> Result<ETag, Abort> {
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
                Ok(etag) => return Ok(etag),
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

    /// The published meta listed every delete as pending: once the prune
    /// removed some, it says what remains (by compare-and-swap on the tag it
    /// was published with, while the lease holds; if not, the next sync
    /// settles it: a pending delete of an absent object is a no-op).
    pub(super) async fn record_what_remains(
        &self,
        lease: &super::Lease,
        mut meta: Meta,
        etag: ETag,
        removed: &[String],
    ) {
        if removed.is_empty() || !lease.held_by_clock() {
            return;
        }
        meta.pending_deletes
            .retain(|slug| !removed.iter().any(|r| r == slug.as_str()));
        if let Err(e) = self.put_meta(&meta, Some(etag)).await {
            tracing::warn!(error = %e, "could not record the prune in the meta; the next sync does");
        }
    }

    /// Prunes what the new meta no longer names while the lease holds by the
    /// clock. Returns (deleted, still pending).
    pub(super) async fn prune_if_held(
        &self,
        lease: &super::Lease,
        to_delete: Vec<Slug>,
    ) -> (Vec<String>, Vec<String>) {
        if lease.held_by_clock() {
            return self.prune(to_delete).await;
        }
        // A late prune could delete what a sync that took over re-added:
        // the deletes stay pending in the meta for the next sync.
        tracing::warn!("the lease ran out before pruning; the next sync deletes");
        (Vec::new(), to_delete.iter().map(Slug::to_string).collect())
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
        let (removed, pending): (Vec<Slug>, Vec<Slug>) = to_delete
            .into_iter()
            .partition(|slug| done.get(slug).copied().unwrap_or(false));
        let names = |slugs: Vec<Slug>| slugs.iter().map(Slug::to_string).collect();
        (names(removed), names(pending))
    }

    /// The change feed's record of this publish (none when nothing changed),
    /// and records past their retention deleted. Best effort: the meta is
    /// already published; a record that could not be written is reported.
    pub(super) async fn record_changes(&self, run: &Run<'_>, published: Published) -> bool {
        let recorded = if published.changes.is_empty() {
            true
        } else if let Some(name) = published.changes_record {
            let record = ChangeRecord {
                sync_id: run.sync_id.to_owned(),
                at: published.meta.last_synced_at,
                changes: published.changes,
            };
            let body =
                Bytes::from(serde_json::to_vec(&record).expect("a change record serializes"));
            let key = ObjectKey::Changes(name);
            let put = self.store.put(&key, body, PutCondition::IfAbsent);
            let recorded = matches!(self.bounded(put).await, Ok(Ok(_)));
            if !recorded {
                tracing::warn!("could not record this sync's changes");
            }
            recorded
        } else {
            return false;
        };
        self.expire_change_records().await;
        recorded
    }

    async fn expire_change_records(&self) {
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
        let error = match self.bounded(expired).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%error, "could not prune old change records");
    }

    pub(super) async fn record_last_run(&self, report: &SyncReport) {
        let Ok(body) = serde_json::to_vec_pretty(report) else {
            return;
        };
        let put = self
            .store
            .put(&ObjectKey::LastRun, body.into(), PutCondition::Overwrite);
        let error = match self.bounded(put).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%error, "could not record the last run");
    }
}
