use super::{ETag, ListedObject, ObjectKey, PutCondition, Store, StoreError, StoredObject};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// In memory, for unit tests and benchmarks. Counts reads and writes.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<ObjectKey, StoredObject>>,
    version: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ObjectKey, StoredObject>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().get(key).cloned())
    }

    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().get(key).map(|o| o.etag.clone()))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let mut objects = self.lock();
        let current = objects.get(key).map(|o| &o.etag);
        let allowed = match (&condition, current) {
            (PutCondition::Overwrite, _) => true,
            (PutCondition::IfAbsent, found) => found.is_none(),
            (PutCondition::IfMatch(want), Some(found)) => want == found,
            (PutCondition::IfMatch(_), None) => false,
        };
        if !allowed {
            return Err(StoreError::PreconditionFailed {
                key: key.to_string(),
            });
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        let etag = ETag(format!("m{}", self.version.fetch_add(1, Ordering::Relaxed)));
        objects.insert(
            key.clone(),
            StoredObject {
                body,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        let mut objects = self.lock();
        match objects.get(key) {
            Some(o) if &o.etag != etag => Err(StoreError::PreconditionFailed {
                key: key.to_string(),
            }),
            _ => {
                objects.remove(key);
                Ok(())
            }
        }
    }

    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.listed(|key| !matches!(key, ObjectKey::Changes(_) | ObjectKey::Snapshot(..)))
    }

    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.listed(|key| matches!(key, ObjectKey::Snapshot(..)))
    }

    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.listed(|key| matches!(key, ObjectKey::Changes(_)))
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

impl MemoryStore {
    fn listed(&self, which: impl Fn(&ObjectKey) -> bool) -> Result<Vec<ListedObject>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .lock()
            .iter()
            .filter(|(key, _)| which(key))
            .map(|(key, o)| ListedObject {
                key: key.clone(),
                size: o.body.len() as u64,
                etag: o.etag.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_conformance_suite() {
        super::super::conformance::run_all(&super::MemoryStore::new()).await;
    }
}
