//! The read model: the meta (one object, with the index) answers the list
//! routes; a toolkit's object answers the toolkit and tool routes. A warm
//! reader keeps what it read in memory: each copy is trusted for the TTL,
//! then revalidated by its ETag (a HEAD), and re-read only when it changed.

use crate::cache::{CachedToolkit, Meta, Slug};
use crate::store::{ETag, ObjectKey, Store, StoreError};
use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cached object {key} is not valid JSON of the cached format: {detail}")]
    Corrupt { key: String, detail: String },
}

/// The meta and the list answers built from it, each once, when first asked.
pub struct MetaView {
    pub meta: Meta,
    root: OnceLock<Bytes>,
    toolkits: OnceLock<Bytes>,
}

impl MetaView {
    /// `GET /` as bytes.
    pub fn root(&self) -> Bytes {
        self.root.get_or_init(|| list_root(&self.meta)).clone()
    }

    /// `GET /toolkits` as bytes.
    pub fn toolkits(&self) -> Bytes {
        self.toolkits
            .get_or_init(|| list_toolkits(&self.meta))
            .clone()
    }
}

/// One toolkit object, raw (served as is) and parsed (for the tool route).
pub struct ToolkitView {
    pub body: Bytes,
    pub parsed: CachedToolkit,
}

struct Held<T> {
    value: Arc<T>,
    etag: ETag,
    checked: Instant,
}

pub struct CacheReader {
    store: Arc<dyn Store>,
    ttl: Duration,
    meta: Mutex<Option<Held<MetaView>>>,
    toolkits: Mutex<HashMap<Slug, Held<ToolkitView>>>,
}

impl CacheReader {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            meta: Mutex::new(None),
            toolkits: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current meta, or `None` before the first sync.
    pub async fn meta(&self) -> Result<Option<Arc<MetaView>>, ReadError> {
        let held = self
            .meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|h| (h.value.clone(), h.etag.clone(), h.checked));
        let fresh = self.revalidate(&ObjectKey::Meta, held).await?;
        if let Some(view) = fresh {
            return Ok(Some(view));
        }
        let Some(object) = self.store.get(&ObjectKey::Meta).await? else {
            *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(None);
        };
        let meta: Meta = parse(&ObjectKey::Meta, &object.body)?;
        let view = Arc::new(MetaView {
            meta,
            root: OnceLock::new(),
            toolkits: OnceLock::new(),
        });
        *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held {
            value: view.clone(),
            etag: object.etag,
            checked: Instant::now(),
        });
        Ok(Some(view))
    }

    /// A toolkit, or `None` if it is not in the cache.
    pub async fn toolkit(&self, slug: &Slug) -> Result<Option<Arc<ToolkitView>>, ReadError> {
        let key = ObjectKey::Toolkit(slug.clone());
        let held = self
            .toolkits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(slug)
            .map(|h| (h.value.clone(), h.etag.clone(), h.checked));
        if let Some(view) = self.revalidate(&key, held).await? {
            return Ok(Some(view));
        }
        let Some(object) = self.store.get(&key).await? else {
            self.toolkits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(slug);
            return Ok(None);
        };
        let parsed: CachedToolkit = parse(&key, &object.body)?;
        let view = Arc::new(ToolkitView {
            body: object.body,
            parsed,
        });
        self.toolkits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                slug.clone(),
                Held {
                    value: view.clone(),
                    etag: object.etag,
                    checked: Instant::now(),
                },
            );
        Ok(Some(view))
    }

    /// A held copy if it is within the TTL or its ETag has not changed.
    async fn revalidate<T>(
        &self,
        key: &ObjectKey,
        held: Option<(Arc<T>, ETag, Instant)>,
    ) -> Result<Option<Arc<T>>, ReadError> {
        let Some((value, etag, checked)) = held else {
            return Ok(None);
        };
        if checked.elapsed() < self.ttl {
            return Ok(Some(value));
        }
        if self.store.etag(key).await?.as_ref() != Some(&etag) {
            return Ok(None);
        }
        let now = Instant::now();
        match key {
            ObjectKey::Meta => {
                if let Some(h) = self.meta.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    h.checked = now;
                }
            }
            ObjectKey::Toolkit(slug) => {
                if let Some(h) = self
                    .toolkits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(slug)
                {
                    h.checked = now;
                }
            }
            _ => {}
        }
        Ok(Some(value))
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

fn parse<T: serde::de::DeserializeOwned>(key: &ObjectKey, body: &[u8]) -> Result<T, ReadError> {
    serde_json::from_slice(body).map_err(|e| ReadError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
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
        .map(|e| {
            let tools: Vec<_> = e
                .tools
                .iter()
                .map(|t| json!({"slug": t.slug, "name": t.name, "description": t.description}))
                .collect();
            json!({"slug": e.slug, "name": e.name, "logo": e.logo, "tools": tools})
        })
        .collect();
    Bytes::from(json!({"lastSyncedAt": meta.last_synced_at, "toolkits": toolkits}).to_string())
}
