//! One sync at a time: a lease object written create-only, with an owner and
//! an expiry, so a dead holder's lease can be taken over.

use super::SyncError;
use crate::cache::timestamp;
use crate::store::{ETag, ObjectKey, PutCondition, Store, StoreError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    pub owner: String,
    pub acquired_at: String,
    pub expires_at: String,
    pub expires_at_ms: u64,
    /// When its holder last renewed it (its heartbeat), unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at_ms: Option<u64>,
    /// A lease not renewed for this long is a dead holder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_after_ms: Option<u64>,
}

impl LeaseRecord {
    /// When nobody holds it any more (unix ms): its expiry, or sooner, once
    /// its holder has not renewed it for `dead_after_ms`.
    pub fn lapses_at_ms(&self) -> u64 {
        match (self.renewed_at_ms, self.dead_after_ms) {
            (Some(renewed), Some(dead_after)) => {
                self.expires_at_ms.min(renewed.saturating_add(dead_after))
            }
            _ => self.expires_at_ms,
        }
    }

    /// Whether a live holder has it at `now_ms` (a dead one's lapses early).
    pub fn live_at(&self, now_ms: u64) -> bool {
        now_ms < self.lapses_at_ms()
    }

    /// Whether it is live now, by this machine's clock.
    pub fn live_now(&self) -> bool {
        self.live_at(unix_ms(SystemTime::now()))
    }
}

/// Stop writing this long before the lease lapses by our own clock: the
/// room left for clocks that disagree.
pub const LEASE_SAFETY: Duration = Duration::from_secs(5);

/// How long a lease renewed every `heartbeat` stays live without a renewal:
/// two beats (one renewal may fail), one store operation (a renewal in
/// flight) and the safety margin (the holder stops that much earlier).
pub fn dead_after(heartbeat: Duration, store_timeout: Duration) -> Duration {
    heartbeat * 2 + store_timeout + LEASE_SAFETY
}

/// A held lease. Its record and tag change with every renewal; renewals,
/// the check before publishing and the release take turns.
pub struct Lease {
    held: std::sync::Mutex<Held>,
    /// Renewal, check and release, one at a time.
    io: tokio::sync::Mutex<()>,
    /// A renewal found it taken over.
    lost: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct Held {
    record: LeaseRecord,
    etag: ETag,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn busy_or_store(e: StoreError) -> Result<(), StoreError> {
    match e {
        // A 409 is a concurrent create: someone else is taking it right now.
        StoreError::PreconditionFailed { .. } | StoreError::Conflict { .. } => Ok(()),
        other => Err(other),
    }
}

impl Lease {
    /// Takes the lease, or a dead holder's; `dead_after` (with heartbeats)
    /// lets the next sync take it over that long after its last renewal.
    pub async fn acquire(
        store: &dyn Store,
        owner: &str,
        ttl: Duration,
        dead_after: Option<Duration>,
    ) -> Result<Lease, SyncError> {
        let now = SystemTime::now();
        let expires = now + ttl;
        let record = LeaseRecord {
            owner: owner.to_owned(),
            acquired_at: timestamp(now),
            expires_at: timestamp(expires),
            expires_at_ms: unix_ms(expires),
            renewed_at_ms: dead_after.map(|_| unix_ms(now)),
            dead_after_ms: dead_after.map(|d| d.as_millis() as u64),
        };
        let body = Bytes::from(serde_json::to_vec(&record).expect("lease serializes"));
        let lease = |etag| Lease::held(record.clone(), etag);
        match store
            .put(&ObjectKey::Lease, body.clone(), PutCondition::IfAbsent)
            .await
        {
            Ok(etag) => return Ok(lease(etag)),
            Err(e) => busy_or_store(e).map_err(SyncError::Store)?,
        }
        let Some(current) = store
            .get(&ObjectKey::Lease)
            .await
            .map_err(SyncError::Store)?
        else {
            // Released between our two calls: one more create-only try.
            return match store
                .put(&ObjectKey::Lease, body, PutCondition::IfAbsent)
                .await
            {
                Ok(etag) => Ok(lease(etag)),
                Err(e) => {
                    busy_or_store(e).map_err(SyncError::Store)?;
                    Err(SyncError::Busy(current_holder(store).await?))
                }
            };
        };
        // An unreadable lease is treated as lapsed: it cannot name a live holder.
        let held: Option<LeaseRecord> = serde_json::from_slice(&current.body).ok();
        if let Some(held) = held.filter(|h| h.live_at(unix_ms(now))) {
            return Err(SyncError::Busy(held));
        }
        tracing::warn!("taking over a lapsed sync lease (its holder died or stopped renewing it)");
        match store
            .put(&ObjectKey::Lease, body, PutCondition::IfMatch(current.etag))
            .await
        {
            Ok(etag) => Ok(lease(etag)),
            Err(e) => {
                busy_or_store(e).map_err(SyncError::Store)?;
                Err(SyncError::Busy(current_holder(store).await?))
            }
        }
    }

    fn held(record: LeaseRecord, etag: ETag) -> Lease {
        Lease {
            held: std::sync::Mutex::new(Held { record, etag }),
            io: tokio::sync::Mutex::new(()),
            lost: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn current(&self) -> Held {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The record as last written.
    pub fn record(&self) -> LeaseRecord {
        self.current().record
    }

    /// Whether the lease is still ours by our own clock (no I/O): checked
    /// before every write, so a sync that outlived its lease, or could not
    /// renew it in time, stops writing.
    pub fn held_by_clock(&self) -> bool {
        !self.lost.load(std::sync::atomic::Ordering::SeqCst)
            && unix_ms(SystemTime::now() + LEASE_SAFETY) < self.current().record.lapses_at_ms()
    }

    /// Renews the lease (its heartbeat) by compare-and-swap on its tag.
    /// `Ok(false)` once it is no longer ours (taken over).
    pub async fn renew(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let _turn = self.io.lock().await;
        // Lapsed by our clock but not taken over is still ours: the
        // compare-and-swap tells.
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let Held { mut record, etag } = self.current();
        // The time it is sent: a taker counts from no later than this.
        record.renewed_at_ms = Some(unix_ms(SystemTime::now()));
        let body = Bytes::from(serde_json::to_vec(&record).expect("lease serializes"));
        match store
            .put(&ObjectKey::Lease, body, PutCondition::IfMatch(etag))
            .await
        {
            Ok(etag) => {
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Held { record, etag };
                Ok(true)
            }
            // Someone took it over: stop writing.
            Err(StoreError::PreconditionFailed { .. }) => {
                self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!("the sync lease was taken over; this sync stops writing");
                Ok(false)
            }
            // A conditional write in flight decided nothing: the next beat tries again.
            Err(StoreError::Conflict { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether the store still holds our lease (one HEAD): checked before
    /// publishing, so a sync whose lease was taken over never publishes.
    pub async fn held_in_store(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let _turn = self.io.lock().await;
        Ok(self.held_by_clock()
            && store.etag(&ObjectKey::Lease).await? == Some(self.current().etag))
    }

    /// Removes the lease only if it is still ours: a conditional delete on its
    /// tag, so a lease taken over meanwhile is never removed.
    pub async fn release(self, store: &dyn Store) -> Result<(), StoreError> {
        let _turn = self.io.lock().await;
        let Held { record, etag } = self.current();
        match store.delete_if_match(&ObjectKey::Lease, &etag).await {
            Err(StoreError::PreconditionFailed { .. }) => {
                tracing::warn!(owner = %record.owner, "sync lease was taken over before release");
                Ok(())
            }
            other => other,
        }
    }
}

/// Whoever holds the lease now, for a 409; never ourselves by mistake.
async fn current_holder(store: &dyn Store) -> Result<LeaseRecord, SyncError> {
    let held = store
        .get(&ObjectKey::Lease)
        .await
        .map_err(SyncError::Store)?
        .and_then(|o| serde_json::from_slice::<LeaseRecord>(&o.body).ok());
    Ok(held.unwrap_or_else(|| LeaseRecord {
        owner: "unknown (the lease changed hands just now)".into(),
        acquired_at: timestamp(SystemTime::now()),
        expires_at: String::new(),
        expires_at_ms: 0,
        renewed_at_ms: None,
        dead_after_ms: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn second_holder_is_refused_until_release() {
        let store = MemoryStore::new();
        let first = Lease::acquire(&store, "a", Duration::from_secs(60), None)
            .await
            .unwrap();
        match Lease::acquire(&store, "b", Duration::from_secs(60), None).await {
            Err(SyncError::Busy(h)) => assert_eq!(h.owner, "a"),
            other => panic!("expected Held, got {:?}", other.map(|l| l.record())),
        }
        first.release(&store).await.unwrap();
        let second = Lease::acquire(&store, "b", Duration::from_secs(60), None)
            .await
            .unwrap();
        assert_eq!(second.record().owner, "b");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_holder_cannot_release_it() {
        let store = MemoryStore::new();
        let dead = Lease::acquire(&store, "dead", Duration::ZERO, None)
            .await
            .unwrap();
        let live = Lease::acquire(&store, "live", Duration::from_secs(60), None)
            .await
            .unwrap();
        assert!(!dead.held_by_clock());
        assert!(!dead.held_in_store(&store).await.unwrap());
        dead.release(&store).await.unwrap();
        assert!(
            store.get(&ObjectKey::Lease).await.unwrap().is_some(),
            "the live lease stays"
        );
        assert!(live.held_in_store(&store).await.unwrap());
        live.release(&store).await.unwrap();
        assert!(store.get(&ObjectKey::Lease).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_holder_that_stops_renewing_is_taken_over_before_its_ttl_and_a_live_one_is_not() {
        let store = MemoryStore::new();
        let hour = Duration::from_secs(3600);
        let beat = Duration::from_millis(300);
        let holder = Lease::acquire(&store, "holder", hour, Some(beat))
            .await
            .unwrap();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(holder.renew(&store).await.unwrap(), "still ours");
            match Lease::acquire(&store, "next", hour, Some(beat)).await {
                Err(SyncError::Busy(h)) => assert_eq!(h.owner, "holder"),
                other => panic!("a live holder keeps it: {:?}", other.map(|l| l.record())),
            }
        }
        // The holder dies (no more renewals): a third of a second later, not an hour.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let next = Lease::acquire(&store, "next", hour, Some(beat))
            .await
            .expect("a dead holder's lease is taken over");
        assert!(!holder.renew(&store).await.unwrap(), "the old holder knows");
        assert!(!holder.held_by_clock());
        let stored = store.get(&ObjectKey::Lease).await.unwrap().unwrap();
        let record: LeaseRecord = serde_json::from_slice(&stored.body).unwrap();
        assert_eq!(record, next.record());
        assert!(record.live_now() && record.dead_after_ms == Some(300));
        assert!(!record.live_at(record.renewed_at_ms.unwrap() + 300));
    }
}
