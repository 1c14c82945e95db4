//! The publish step and what follows it: the meta by compare-and-swap once
//! the lease is confirmed, the change feed's record, the prune, and the last
//! run's report.

use super::planning::{self, MetaContext, Previous};
use super::steps::{Published, Run};
use super::{Abort, SyncEngine, SyncReport};
use crate::cache::changes::ChangeRecord;
use crate::cache::plan::Aggregate;
use crate::cache::{timestamp, Meta, Slug};
use crate::store::{ChangesName, ETag, ObjectKey, PutCondition, SnapshotHash, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

impl SyncEngine {
    /// Publish: the lease is confirmed in the store (the records a killed
    /// sync left were removed during the fetches), this publish's change
    /// record is written, and then
    /// the next meta, by compare-and-swap on the tag the run started from.
    /// The record goes first so a published change is always in the feed,
    /// whatever dies when; readers and notifications only take records up to
    /// the published meta's time, so a record whose meta never landed is
    /// never seen, and the next publish removes it.
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
            synced_at: planning::publish_time(
                previous.last_synced_at.as_deref(),
                SystemTime::now(),
            ),
            sync_duration_ms: run.started.elapsed().as_millis() as u64,
            full: run.request.full,
            out_of_time,
        };
        let (meta, changes, changes_record) = planning::next_meta(previous, aggregate, context);
        if let Some(name) = &changes_record {
            self.write_change_record(run, name, &meta, &changes).await?;
        }
        match self.put_meta(&meta, previous.etag.clone()).await {
            Ok(()) => Ok(Published {
                meta,
                changes,
                changes_record,
            }),
            Err(abort) => {
                // Certainly not published: another meta won. (After a
                // timeout the meta may have landed: the record stays, and
                // the next publish removes it if it is not.)
                if let (Abort::Superseded, Some(name)) = (&abort, &changes_record) {
                    let key = ObjectKey::Changes(name.clone());
                    let _ = self.bounded(self.store.delete(&key)).await;
                }
                Err(abort)
            }
        }
    }

    /// This publish's change record, before its meta.
    async fn write_change_record(
        &self,
        run: &Run<'_>,
        name: &ChangesName,
        meta: &Meta,
        changes: &[crate::cache::changes::ToolChange],
    ) -> Result<(), Abort> {
        let record = ChangeRecord {
            sync_id: run.sync_id.to_owned(),
            at: meta.last_synced_at.clone(),
            changes: changes.to_vec(),
        };
        let body = Bytes::from(serde_json::to_vec(&record).expect("a change record serializes"));
        let key = ObjectKey::Changes(name.clone());
        let put = self.store.put(&key, body, PutCondition::IfAbsent);
        match self.bounded(put).await? {
            Ok(_) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Change records newer than the meta this sync replaces are a killed
    /// sync's whose meta never landed: removed (all must go, or this publish
    /// would make them look published). Records past their retention go
    /// too, best effort. Without a previous meta every record goes: the feed
    /// starts again with the cache, whose first record adds every tool.
    pub(super) async fn clear_unpublished_records(&self, previous: &Previous) -> Result<(), Abort> {
        let published_through = previous.last_synced_at.as_deref().unwrap_or_default();
        let oldest_kept = timestamp(SystemTime::now() - self.settings.changes_retention);
        let listed = self.bounded(self.store.list_changes()).await??;
        for object in listed {
            let ObjectKey::Changes(name) = &object.key else {
                continue;
            };
            let delete = self.bounded(self.store.delete(&object.key));
            if name.at() > published_through {
                tracing::warn!(
                    record = name.as_str(),
                    "removing the change record of a sync that never published"
                );
                delete.await??;
            } else if name.at() < oldest_kept.as_str() {
                if let Err(error) = delete
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    tracing::warn!(%error, "could not prune an old change record");
                }
            }
        }
        Ok(())
    }

    /// The meta, by compare-and-swap on the tag the sync started from. A 409
    /// (a conditional write in flight) decided nothing: re-read the tag and,
    /// if the meta is still ours to replace, try again.
    async fn put_meta(&self, meta: &Meta, base: Option<ETag>) -> Result<(), Abort> {
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

    /// Removes snapshots no meta names any more, while the lease holds by the
    /// clock, bounded in time; what is left is found again by the next sync.
    pub(super) async fn remove_snapshots_if_held(
        &self,
        lease: &super::Lease,
        unnamed: Vec<(Slug, SnapshotHash)>,
    ) -> usize {
        if unnamed.is_empty() || !lease.held_by_clock() {
            return 0;
        }
        let deletes = futures::stream::iter(unnamed)
            .map(|(slug, hash)| async move {
                let key = ObjectKey::Snapshot(slug, hash);
                self.store.delete(&key).await.is_ok()
            })
            .buffer_unordered(8)
            .collect::<Vec<bool>>();
        match self.bounded(deletes).await {
            Ok(done) => done.into_iter().filter(|ok| *ok).count(),
            Err(e) => {
                tracing::warn!(error = %e, "removing old snapshots ran out of time; the next sync goes on");
                0
            }
        }
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
