//! The read model: the meta (one object, with the index) answers the list
//! routes; a toolkit's object answers the toolkit and tool routes. A warm
//! reader keeps both in memory and re-reads only when the meta's ETag changed.

use crate::cache::{content_hash, CachedToolkit, Meta, Slug};
use crate::store::{ETag, ObjectKey, Store, StoreError};
use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cached object {key} is not valid JSON of the cached format: {detail}")]
    Corrupt { key: String, detail: String },
}

/// The meta and the list answers precomputed from it.
pub struct MetaView {
    pub meta: Meta,
    pub etag: ETag,
    /// `GET /` as bytes.
    pub root: Bytes,
    /// `GET /toolkits` as bytes.
    pub toolkits: Bytes,
}

/// One toolkit object, raw and parsed.
pub struct ToolkitView {
    pub hash: String,
    pub body: Bytes,
    pub parsed: CachedToolkit,
}

struct CachedMeta {
    view: Arc<MetaView>,
    checked: Instant,
}

pub struct CacheReader {
    store: Arc<dyn Store>,
    meta_ttl: Duration,
    meta: Mutex<Option<CachedMeta>>,
    toolkits: Mutex<HashMap<Slug, Arc<ToolkitView>>>,
}

impl CacheReader {
    pub fn new(store: Arc<dyn Store>, meta_ttl: Duration) -> Self {
        Self {
            store,
            meta_ttl,
            meta: Mutex::new(None),
            toolkits: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current meta, or `None` before the first sync.
    pub async fn meta(&self) -> Result<Option<Arc<MetaView>>, ReadError> {
        let cached = self
            .meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| (c.view.clone(), c.checked));
        if let Some((view, checked)) = &cached {
            if checked.elapsed() < self.meta_ttl {
                return Ok(Some(view.clone()));
            }
            // Past the TTL: a cheap tag check before any full read.
            if self.store.etag(&ObjectKey::Meta).await?.as_ref() == Some(&view.etag) {
                self.remember_meta(view.clone());
                return Ok(Some(view.clone()));
            }
        }
        let Some(object) = self.store.get(&ObjectKey::Meta).await? else {
            *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&object.body).map_err(|e| ReadError::Corrupt {
            key: ObjectKey::Meta.to_string(),
            detail: e.to_string(),
        })?;
        let view = Arc::new(MetaView {
            root: list_root(&meta),
            toolkits: list_toolkits(&meta),
            meta,
            etag: object.etag,
        });
        self.remember_meta(view.clone());
        Ok(Some(view))
    }

    fn remember_meta(&self, view: Arc<MetaView>) {
        *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = Some(CachedMeta {
            view,
            checked: Instant::now(),
        });
    }

    /// A fresh meta held in memory, without any I/O.
    fn fresh_meta(&self) -> Option<Arc<MetaView>> {
        self.meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| c.checked.elapsed() < self.meta_ttl)
            .map(|c| c.view.clone())
    }

    /// A toolkit, from memory when the index says it has not changed.
    pub async fn toolkit(&self, slug: &Slug) -> Result<Option<Arc<ToolkitView>>, ReadError> {
        if let Some(meta) = self.fresh_meta() {
            let Some(entry) = meta.meta.entry(slug) else {
                return Ok(None);
            };
            let cached = self
                .toolkits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(slug)
                .cloned();
            if let Some(view) = cached.filter(|v| v.hash == entry.content_hash) {
                return Ok(Some(view));
            }
        }
        let key = ObjectKey::Toolkit(slug.clone());
        let Some(object) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let parsed: CachedToolkit =
            serde_json::from_slice(&object.body).map_err(|e| ReadError::Corrupt {
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        let view = Arc::new(ToolkitView {
            hash: content_hash(&object.body),
            body: object.body,
            parsed,
        });
        self.toolkits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slug.clone(), view.clone());
        Ok(Some(view))
    }

    /// Forgets everything held in memory (benchmarks measure cold reads with it).
    pub fn clear(&self) {
        *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.toolkits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn list_root(meta: &Meta) -> Bytes {
    let toolkits: Vec<_> = meta
        .toolkits
        .iter()
        .map(|e| {
            json!({
                "slug": e.slug, "name": e.name, "logo": e.logo, "toolCount": e.tool_count,
                "version": e.version, "stale": e.stale,
            })
        })
        .collect();
    Bytes::from(json!({"lastSyncedAt": meta.last_synced_at, "toolkits": toolkits}).to_string())
}

fn list_toolkits(meta: &Meta) -> Bytes {
    let toolkits: Vec<_> = meta
        .toolkits
        .iter()
        .map(|e| json!({"slug": e.slug, "name": e.name, "logo": e.logo, "tools": e.tools}))
        .collect();
    Bytes::from(json!({"lastSyncedAt": meta.last_synced_at, "toolkits": toolkits}).to_string())
}
