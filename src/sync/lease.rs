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
}

/// Stop writing this long before the lease expires by our own clock.
const EXPIRY_SAFETY: Duration = Duration::from_secs(5);

pub struct Lease {
    pub record: LeaseRecord,
    etag: ETag,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Lease {
    pub async fn acquire(
        store: &dyn Store,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, SyncError> {
        let now = SystemTime::now();
        let expires = now + ttl;
        let record = LeaseRecord {
            owner: owner.to_owned(),
            acquired_at: timestamp(now),
            expires_at: timestamp(expires),
            expires_at_ms: unix_ms(expires),
        };
        let body = Bytes::from(serde_json::to_vec(&record).expect("lease serializes"));
        match store
            .put(&ObjectKey::Lease, body.clone(), PutCondition::IfAbsent)
            .await
        {
            Ok(etag) => return Ok(Lease { record, etag }),
            // A 409 is a concurrent create: someone else is taking it right now.
            Err(StoreError::PreconditionFailed { .. } | StoreError::Conflict { .. }) => {}
            Err(e) => return Err(SyncError::Store(e)),
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
                Ok(etag) => Ok(Lease { record, etag }),
                Err(StoreError::PreconditionFailed { .. } | StoreError::Conflict { .. }) => {
                    Err(SyncError::Busy(current_holder(store).await?))
                }
                Err(e) => Err(SyncError::Store(e)),
            };
        };
        // An unreadable lease is treated as expired: it cannot name a live holder.
        let held: Option<LeaseRecord> = serde_json::from_slice(&current.body).ok();
        if let Some(held) = held.filter(|h| h.expires_at_ms > unix_ms(now)) {
            return Err(SyncError::Busy(held));
        }
        tracing::warn!("taking over an expired sync lease");
        match store
            .put(&ObjectKey::Lease, body, PutCondition::IfMatch(current.etag))
            .await
        {
            Ok(etag) => Ok(Lease { record, etag }),
            Err(StoreError::PreconditionFailed { .. } | StoreError::Conflict { .. }) => {
                Err(SyncError::Busy(current_holder(store).await?))
            }
            Err(e) => Err(SyncError::Store(e)),
        }
    }

    /// Whether the lease is still ours by our own clock (no I/O): checked
    /// before every write, so a sync that outlived its lease stops writing.
    pub fn held_by_clock(&self) -> bool {
        unix_ms(SystemTime::now() + EXPIRY_SAFETY) < self.record.expires_at_ms
    }

    /// Whether the store still holds our lease (one HEAD): checked before
    /// publishing, so a sync whose lease was taken over never publishes.
    pub async fn held_in_store(&self, store: &dyn Store) -> Result<bool, StoreError> {
        Ok(self.held_by_clock() && store.etag(&ObjectKey::Lease).await? == Some(self.etag.clone()))
    }

    /// Removes the lease only if it is still ours: a conditional delete on its
    /// tag, so a lease taken over meanwhile is never removed.
    pub async fn release(self, store: &dyn Store) -> Result<(), StoreError> {
        match store.delete_if_match(&ObjectKey::Lease, &self.etag).await {
            Err(StoreError::PreconditionFailed { .. }) => {
                tracing::warn!(owner = %self.record.owner, "sync lease was taken over before release");
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
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn second_holder_is_refused_until_release() {
        let store = MemoryStore::new();
        let first = Lease::acquire(&store, "a", Duration::from_secs(60))
            .await
            .unwrap();
        match Lease::acquire(&store, "b", Duration::from_secs(60)).await {
            Err(SyncError::Busy(h)) => assert_eq!(h.owner, "a"),
            other => panic!("expected Held, got {:?}", other.map(|l| l.record)),
        }
        first.release(&store).await.unwrap();
        let second = Lease::acquire(&store, "b", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(second.record.owner, "b");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_holder_cannot_release_it() {
        let store = MemoryStore::new();
        let dead = Lease::acquire(&store, "dead", Duration::ZERO)
            .await
            .unwrap();
        let live = Lease::acquire(&store, "live", Duration::from_secs(60))
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
}
