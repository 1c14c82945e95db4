//! The read model. The meta (one object, with the index) says what exists:
//! nothing it does not name is served. It answers the list routes; a
//! toolkit's stored bytes answer the toolkit route as they are, and the
//! index's byte ranges cut one tool out of them, so no hot path parses JSON.
//!
//! A warm reader holds the meta (trusted for a TTL, then revalidated by its
//! ETag, served stale for a while if the store cannot be reached) and keeps
//! ready answers, in every coding asked for, in one LRU cache bounded in bytes.

use super::representation::{escaped_len, Encoding};
use crate::agent::{BundleError, BundleLimits};
use crate::cache::{content_hash, CachedToolkit, IndexEntry, Meta, Slug};
use crate::search::{Document, Kind, SearchIndex};
use crate::store::{ChangesName, ETag, ObjectKey, Store, StoreError};
use axum::body::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cached object {key} is not valid JSON of the cached format: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("the meta names {0} but its object is missing; the next sync restores it")]
    Missing(Slug),
    #[error("toolkit {0} is not in the cache")]
    Removed(Slug),
    #[error("the answer would be {size} bytes, over the {limit} one answer may hold (a Lambda answer holds 6 MB): ask for fewer tools, one at a time or in a batch")]
    TooLarge { size: usize, limit: usize },
    /// Building provider tools stopped: over a limit, or no longer wanted.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// How long the meta is trusted before its ETag is checked.
    pub meta_ttl: Duration,
    /// How long a held meta keeps being served while the store is unreachable.
    pub stale_if_error: Duration,
    /// Bound of the answer cache, in bytes.
    pub cache_bytes: u64,
    /// Largest answer, counted as a Lambda response counts it: larger list
    /// answers are paged automatically.
    pub max_answer_bytes: usize,
    /// Longest one answer's conversion to a provider format may take.
    pub max_convert_time: Duration,
    /// How long an answer whose conversion ran out of time is refused at
    /// once instead of converted again (see [`Refusal`]).
    pub out_of_time_retry: Duration,
}

/// A Lambda invocation answers at most 6,291,456 bytes, headers and JSON
/// escaping included: list answers stay well under it.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 5_000_000;

/// Well under API Gateway's 29 s: a client learns why instead of timing out.
pub const DEFAULT_MAX_CONVERT_TIME: Duration = Duration::from_secs(10);

/// A hostile schema that takes the whole conversion time costs it once a
/// minute per answer, not once per request.
pub const DEFAULT_OUT_OF_TIME_RETRY: Duration = Duration::from_secs(60);

impl ReaderConfig {
    pub fn new(meta_ttl: Duration) -> Self {
        Self {
            meta_ttl,
            stale_if_error: Duration::from_secs(600),
            cache_bytes: 64 * 1024 * 1024,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            max_convert_time: DEFAULT_MAX_CONVERT_TIME,
            out_of_time_retry: DEFAULT_OUT_OF_TIME_RETRY,
        }
    }
}

/// The published meta and what is derived from it once.
pub struct MetaView {
    pub meta: Meta,
    /// Position of each toolkit in `meta.toolkits`.
    positions: HashMap<Slug, usize>,
    pub last_synced: Option<SystemTime>,
    /// Identifies this version of the meta in cache keys and list ETags.
    pub version: Arc<str>,
    /// Where each tool is: (toolkit, tool) positions, built on first use.
    tools: OnceLock<HashMap<String, (usize, usize)>>,
    /// Every trigger type in meta order, (toolkit, trigger) positions, and
    /// each slug's place in that order; built on first use.
    triggers: OnceLock<TriggerIndex>,
    /// The search index, built on first use.
    search: OnceLock<SearchIndex>,
    /// The name each tool is sent to a model under → its slug, built on first use.
    names: OnceLock<HashMap<String, String>>,
    /// The change records' names up to the meta's time, listed once per
    /// meta: a publish writes its record before its meta, so a later record
    /// is an unpublished sync's (and a listing without the meta's own, a
    /// record deleted by hand, is not kept).
    changes: OnceLock<Arc<Vec<ChangesName>>>,
}

impl MetaView {
    fn new(meta: Meta) -> Self {
        let positions = meta
            .toolkits
            .iter()
            .enumerate()
            .map(|(i, e)| (e.slug.clone(), i))
            .collect();
        let last_synced = humantime::parse_rfc3339_weak(&meta.last_synced_at).ok();
        let version = if meta.sync_id.is_empty() {
            content_hash(meta.last_synced_at.as_bytes())
        } else {
            meta.sync_id.clone()
        };
        Self {
            positions,
            last_synced,
            version: version.into(),
            meta,
            tools: OnceLock::new(),
            triggers: OnceLock::new(),
            search: OnceLock::new(),
            names: OnceLock::new(),
            changes: OnceLock::new(),
        }
    }

    /// Before the first sync: an empty index.
    pub fn empty() -> Self {
        Self::new(Meta {
            last_synced_at: String::new(),
            toolkit_count: 0,
            total_tool_count: 0,
            sync_duration_ms: 0,
            sync_id: "empty".into(),
            toolkits: Vec::new(),
            failed: Vec::new(),
            pending_deletes: Vec::new(),
            unfinished_full_pass: None,
            changes_record: None,
        })
    }

    /// The toolkit entry and the tool's position in it, for a tool slug.
    pub fn locate(&self, tool: &str) -> Option<(&IndexEntry, usize)> {
        let tools = self.tools.get_or_init(|| {
            let mut map = HashMap::new();
            for (i, entry) in self.meta.toolkits.iter().enumerate() {
                for (j, t) in entry.tools.iter().enumerate() {
                    // A slug in two toolkits: the first (by toolkit slug) answers.
                    map.entry(t.slug.clone()).or_insert((i, j));
                }
            }
            map
        });
        tools.get(tool).map(|&(i, j)| (&self.meta.toolkits[i], j))
    }

    /// The slug of the tool a bundle sends as `name` (names are the same in
    /// every format: see `agent::tool_name`).
    pub fn slug_of_name(&self, name: &str) -> Option<&str> {
        let names = self.names.get_or_init(|| {
            let mut map = HashMap::new();
            for entry in &self.meta.toolkits {
                for t in &entry.tools {
                    map.entry(crate::agent::tool_name(&t.slug))
                        .or_insert_with(|| t.slug.clone());
                }
            }
            map
        });
        names.get(name).map(String::as_str)
    }

    pub fn trigger_index(&self) -> &TriggerIndex {
        self.triggers.get_or_init(|| {
            let mut order = Vec::new();
            let mut by_slug = HashMap::new();
            for (i, entry) in self.meta.toolkits.iter().enumerate() {
                for (j, t) in entry.triggers.iter().enumerate() {
                    // A slug in two toolkits: the first (by toolkit slug) answers.
                    by_slug.entry(t.slug.clone()).or_insert(order.len());
                    order.push((i, j));
                }
            }
            TriggerIndex { order, by_slug }
        })
    }

    /// The toolkit entry and the trigger type's position in it, for a trigger slug.
    pub fn locate_trigger(&self, slug: &str) -> Option<(&IndexEntry, usize)> {
        let index = self.trigger_index();
        let &(i, j) = index.order.get(*index.by_slug.get(slug)?)?;
        Some((&self.meta.toolkits[i], j))
    }

    pub fn search_index(&self) -> &SearchIndex {
        self.search.get_or_init(|| {
            SearchIndex::build(self.meta.toolkits.iter().flat_map(|e| {
                let tools = e.tools.iter().map(move |t| Document {
                    kind: Kind::Tool,
                    slug: &t.slug,
                    name: &t.name,
                    description: &t.description,
                    toolkit_slug: e.slug.as_str(),
                    toolkit_name: &e.name,
                    parameters: &t.parameters,
                });
                let triggers = e.triggers.iter().map(move |t| Document {
                    kind: Kind::Trigger,
                    slug: &t.slug,
                    name: &t.name,
                    description: &t.description,
                    toolkit_slug: e.slug.as_str(),
                    toolkit_name: &e.name,
                    parameters: "",
                });
                tools.chain(triggers)
            }))
        })
    }

    pub fn entry(&self, slug: &Slug) -> Option<&IndexEntry> {
        self.positions.get(slug).map(|&i| &self.meta.toolkits[i])
    }

    /// Age of the published cache, by the sync's clock.
    pub fn age(&self) -> Option<Duration> {
        SystemTime::now().duration_since(self.last_synced?).ok()
    }
}

/// Where every trigger type of a meta is.
pub struct TriggerIndex {
    /// (toolkit, trigger) positions, in the meta's order.
    pub order: Vec<(usize, usize)>,
    /// A trigger slug's place in `order`.
    pub by_slug: HashMap<String, usize>,
}

/// The meta as a request sees it.
#[derive(Clone)]
pub struct MetaRead {
    /// `None` before the first sync.
    pub view: Option<Arc<MetaView>>,
    /// The store could not be reached: this is a copy held from before.
    pub stale: bool,
}

struct HeldMeta {
    view: Arc<MetaView>,
    etag: ETag,
    checked: Instant,
    /// Last time the store answered about the meta.
    reachable: Instant,
    /// Last time it did not: until the TTL passes again, requests get the
    /// held copy (stale) at once instead of each waiting on the store.
    failed: Option<Instant>,
}

/// The two list routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListRoute {
    /// `GET /`: toolkits without their tools.
    Root,
    /// `GET /toolkits`: toolkits with their tools' names.
    Toolkits,
}

/// A ready answer in one coding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AnswerKey {
    Toolkit {
        slug: Slug,
        tag: Arc<str>,
        encoding: Encoding,
    },
    Tool {
        slug: Slug,
        tag: Arc<str>,
        index: usize,
        encoding: Encoding,
    },
    Trigger {
        slug: Slug,
        tag: Arc<str>,
        index: usize,
        encoding: Encoding,
    },
    List {
        version: Arc<str>,
        page: Page,
        encoding: Encoding,
    },
    /// Something built from one toolkit's object (a provider bundle): it
    /// lives as long as the object does.
    FromToolkit {
        slug: Slug,
        tag: Arc<str>,
        what: Arc<str>,
        encoding: Encoding,
    },
    /// Something built from the meta (search results, a batch, the change feed).
    FromMeta {
        version: Arc<str>,
        what: Arc<str>,
        encoding: Encoding,
    },
    /// A change record: immutable once written.
    Record(ChangesName),
}

/// Refused answers kept (each a key and a few words).
const REFUSALS_KEPT: usize = 4096;

/// Why an answer could not be built within its limits, kept beside the
/// answers it stands in for. Over the size bound it stays refused for as long
/// as its key lives (the same object or meta gives the same size); out of
/// time, for [`ReaderConfig::out_of_time_retry`], since a loaded machine may
/// have been the cause. A client that left, a store error or a corrupt object
/// is never kept.
#[derive(Debug, Clone)]
enum Refusal {
    AnswerTooLarge { size: usize, limit: usize },
    BundleTooLarge { limit: usize },
    OutOfTime { limit: Duration, at: Instant },
}

impl Refusal {
    fn of(error: &ReadError) -> Option<Refusal> {
        match *error {
            ReadError::TooLarge { size, limit } => Some(Refusal::AnswerTooLarge { size, limit }),
            ReadError::Bundle(BundleError::TooLarge { limit }) => {
                Some(Refusal::BundleTooLarge { limit })
            }
            ReadError::Bundle(BundleError::OutOfTime { limit }) => Some(Refusal::OutOfTime {
                limit,
                at: Instant::now(),
            }),
            _ => None,
        }
    }

    /// The error to answer with, if the refusal still holds.
    fn still(&self, retry: Duration) -> Option<ReadError> {
        match *self {
            Refusal::AnswerTooLarge { size, limit } => Some(ReadError::TooLarge { size, limit }),
            Refusal::BundleTooLarge { limit } => {
                Some(ReadError::Bundle(BundleError::TooLarge { limit }))
            }
            Refusal::OutOfTime { limit, at } if at.elapsed() < retry => {
                Some(ReadError::Bundle(BundleError::OutOfTime { limit }))
            }
            Refusal::OutOfTime { .. } => None,
        }
    }
}

/// Which page of a list: `after` the last toolkit of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Page {
    pub route: ListRoute,
    pub after: Option<Slug>,
    pub limit: Option<usize>,
}

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<AnswerKey, Bytes> for ByteWeight {
    fn weight(&self, _key: &AnswerKey, body: &Bytes) -> u64 {
        // The key and the entry's bookkeeping cost something too.
        body.len() as u64 + 128
    }
}

/// A toolkit's bytes, and whether they are exactly what the index describes
/// (so its tool ranges may be used).
pub struct ToolkitBytes {
    pub body: Bytes,
    pub matches_index: bool,
}

/// The toolkit route's body; `content_hash` is set when the object is not the
/// one the index describes (its tag then comes from its own bytes).
pub struct ToolkitAnswer {
    pub body: Bytes,
    pub content_hash: Option<String>,
}

pub struct CacheReader {
    store: Arc<dyn Store>,
    config: ReaderConfig,
    meta: Mutex<Option<HeldMeta>>,
    /// One refresh of the meta at a time; others wait and share its result.
    refresh: tokio::sync::Mutex<()>,
    answers: quick_cache::sync::Cache<AnswerKey, Bytes, ByteWeight>,
    /// Answers that could not be built within the limits, by their
    /// identity key: refused at once, so one expensive answer asked for again
    /// and again is not converted again and again.
    refusals: quick_cache::sync::Cache<AnswerKey, Refusal>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheReader {
    /// The largest answer a route may give (a Lambda answer's bound).
    pub fn max_answer_bytes(&self) -> usize {
        self.config.max_answer_bytes
    }

    pub fn new(store: Arc<dyn Store>, config: ReaderConfig) -> Self {
        let estimated_items = (config.cache_bytes / 16_384).clamp(64, 1 << 20) as usize;
        Self {
            answers: quick_cache::sync::Cache::with_weighter(
                estimated_items,
                config.cache_bytes,
                ByteWeight,
            ),
            refusals: quick_cache::sync::Cache::new(REFUSALS_KEPT),
            store,
            config,
            meta: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Converting for one answer is CPU work: on a blocking thread, so the
    /// async workers keep serving others, and given up (between tools) once
    /// it takes longer than `max_convert_time`, grows past the answer's
    /// bound, or its client goes away (this future is dropped).
    pub async fn convert<T, F>(&self, work: F) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&BundleLimits) -> Result<T, ReadError> + Send + 'static,
    {
        struct AbandonOnDrop(Arc<AtomicBool>);
        impl Drop for AbandonOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon_on_drop = AbandonOnDrop(abandoned.clone());
        let limits = BundleLimits {
            max_bytes: Some(self.config.max_answer_bytes),
            abandoned: Some(abandoned),
            ..BundleLimits::within(self.config.max_convert_time)
        };
        tokio::task::spawn_blocking(move || work(&limits))
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }

    pub fn config(&self) -> &ReaderConfig {
        &self.config
    }

    /// (hits, misses) of the answer cache since start.
    pub fn cache_counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held by the answer cache.
    pub fn cached_bytes(&self) -> u64 {
        self.answers.weight()
    }

    /// The age of the meta held now, if one is (no I/O).
    pub fn held_meta_age(&self) -> Option<Duration> {
        self.held().as_ref().and_then(|h| h.view.age())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<HeldMeta>> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current meta, revalidated after the TTL; a held copy while the
    /// store is unreachable, for `stale_if_error`.
    pub async fn meta(&self) -> Result<MetaRead, ReadError> {
        if let Some(read) = self.meta_without_io() {
            return Ok(read);
        }
        let _refreshing = self.refresh.lock().await;
        // Someone else may have refreshed it (or found the store down) meanwhile.
        if let Some(read) = self.meta_without_io() {
            return Ok(read);
        }
        match self.refresh_meta().await {
            Ok(view) => Ok(MetaRead { view, stale: false }),
            Err(ReadError::Store(e)) => {
                let mut held = self.held();
                match held.as_mut() {
                    Some(h) if h.reachable.elapsed() < self.config.stale_if_error => {
                        tracing::warn!(error = %e, "the store is unreachable; serving the meta held since {:?} ago", h.reachable.elapsed());
                        h.failed = Some(Instant::now());
                        Ok(MetaRead {
                            view: Some(h.view.clone()),
                            stale: true,
                        })
                    }
                    _ => Err(ReadError::Store(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The held meta if it needs no revalidation: fresh, or stale while the
    /// store was found unreachable less than a TTL ago.
    fn meta_without_io(&self) -> Option<MetaRead> {
        let held = self.held();
        let h = held.as_ref()?;
        if h.checked.elapsed() < self.config.meta_ttl {
            return Some(MetaRead {
                view: Some(h.view.clone()),
                stale: false,
            });
        }
        let failed_lately = h
            .failed
            .is_some_and(|at| at.elapsed() < self.config.meta_ttl);
        (failed_lately && h.reachable.elapsed() < self.config.stale_if_error).then(|| MetaRead {
            view: Some(h.view.clone()),
            stale: true,
        })
    }

    async fn refresh_meta(&self) -> Result<Option<Arc<MetaView>>, ReadError> {
        let held_etag = self.held().as_ref().map(|h| h.etag.clone());
        if let Some(held_etag) = held_etag {
            let current = self.store.etag(&ObjectKey::Meta).await?;
            if current.as_ref() == Some(&held_etag) {
                let mut held = self.held();
                let h = held.as_mut().expect("held above");
                let now = Instant::now();
                (h.checked, h.reachable, h.failed) = (now, now, None);
                return Ok(Some(h.view.clone()));
            }
        }
        let Some(object) = self.store.get(&ObjectKey::Meta).await? else {
            *self.held() = None;
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&object.body).map_err(|e| ReadError::Corrupt {
            key: ObjectKey::Meta.to_string(),
            detail: e.to_string(),
        })?;
        let view = Arc::new(MetaView::new(meta));
        let now = Instant::now();
        *self.held() = Some(HeldMeta {
            view: view.clone(),
            etag: object.etag,
            checked: now,
            reachable: now,
            failed: None,
        });
        Ok(Some(view))
    }

    fn cached(&self, key: &AnswerKey) -> Option<Bytes> {
        let found = self.answers.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Why a toolkit the held meta names has no object: a sync published a
    /// meta without it and pruned it (not in the cache: 404), or something
    /// else removed it (an outage until the next sync restores it).
    async fn gone(&self, slug: &Slug) -> ReadError {
        if let Some(h) = self.held().as_mut() {
            // Revalidate now, whatever the TTL.
            h.checked = Instant::now()
                .checked_sub(self.config.meta_ttl)
                .unwrap_or(h.checked);
        }
        match self.meta().await {
            Ok(MetaRead {
                view: Some(view),
                stale: false,
            }) if view.entry(slug).is_none() => ReadError::Removed(slug.clone()),
            Ok(MetaRead { view: None, .. }) => ReadError::Removed(slug.clone()),
            _ => ReadError::Missing(slug.clone()),
        }
    }

    /// A toolkit's object in identity coding, checked against the index.
    pub async fn toolkit_bytes(&self, entry: &IndexEntry) -> Result<ToolkitBytes, ReadError> {
        let tag = served_tag(entry);
        let key = AnswerKey::Toolkit {
            slug: entry.slug.clone(),
            tag: tag.clone(),
            encoding: Encoding::Identity,
        };
        if let Some(body) = self.cached(&key) {
            return Ok(ToolkitBytes {
                body,
                matches_index: true,
            });
        }
        let Some(object) = self.store.get(&served_key(entry)).await? else {
            return Err(self.gone(&entry.slug).await);
        };
        // An object edited by hand (or, in a meta from before snapshots, one
        // newer than the meta): served as it is, never cached, its ranges
        // not trusted.
        let matches_index = !tag.is_empty() && object.etag.0 == *tag;
        if matches_index {
            self.answers.insert(key, object.body.clone());
        }
        Ok(ToolkitBytes {
            body: object.body,
            matches_index,
        })
    }

    /// The toolkit route's body in `encoding`.
    pub async fn toolkit(
        &self,
        entry: &IndexEntry,
        encoding: Encoding,
    ) -> Result<ToolkitAnswer, ReadError> {
        let identity = self.toolkit_bytes(entry).await?;
        if !identity.matches_index {
            return Ok(ToolkitAnswer {
                content_hash: Some(content_hash(&identity.body)),
                body: match encoding {
                    Encoding::Identity => identity.body,
                    other => other.encode(&identity.body),
                },
            });
        }
        let tag = served_tag(entry);
        let key = |encoding| AnswerKey::Toolkit {
            slug: entry.slug.clone(),
            tag: tag.clone(),
            encoding,
        };
        // The identity shares the cached buffer: no copy of a large toolkit per request.
        let body = self
            .answer(key, encoding, || async { Ok((identity.body, true)) })
            .await?;
        Ok(ToolkitAnswer {
            body,
            content_hash: None,
        })
    }

    /// One tool's answer (its object in the cached format) in `encoding`, and
    /// whether it came from the object the index describes; `None` if the
    /// toolkit has no such tool.
    pub async fn tool(
        &self,
        entry: &IndexEntry,
        index: usize,
        encoding: Encoding,
    ) -> Result<Option<(Bytes, bool)>, ReadError> {
        let tag = served_tag(entry);
        let key = AnswerKey::Tool {
            slug: entry.slug.clone(),
            tag,
            index,
            encoding,
        };
        if let Some(body) = self.cached(&key) {
            return Ok(Some((body, true)));
        }
        let range = entry.tools.get(index).and_then(|t| t.range);
        // The object is not the one the index describes: find the tool the slow way.
        let find = |body: &[u8]| find_tool(&entry.slug, body, &entry.tools[index].slug);
        self.record(entry, key, range, encoding, find).await
    }

    /// One trigger type's answer (its record in the cached format) in
    /// `encoding`, and whether it came from the object the index describes;
    /// `None` if the toolkit's object has no such trigger type.
    pub async fn trigger(
        &self,
        entry: &IndexEntry,
        index: usize,
        encoding: Encoding,
    ) -> Result<Option<(Bytes, bool)>, ReadError> {
        let tag = served_tag(entry);
        let key = AnswerKey::Trigger {
            slug: entry.slug.clone(),
            tag,
            index,
            encoding,
        };
        if let Some(body) = self.cached(&key) {
            return Ok(Some((body, true)));
        }
        let range = entry.triggers.get(index).and_then(|t| t.range);
        let find = |body: &[u8]| find_trigger(&entry.slug, body, &entry.triggers[index].slug);
        self.record(entry, key, range, encoding, find).await
    }

    /// A record cut out of the toolkit's object by its byte range (or, when
    /// the object is not the one the index describes, found by `find`), in
    /// `encoding`; cached only when it came from the object the index describes.
    async fn record(
        &self,
        entry: &IndexEntry,
        key: AnswerKey,
        range: Option<[usize; 2]>,
        encoding: Encoding,
        find: impl FnOnce(&[u8]) -> Result<Option<Bytes>, ReadError>,
    ) -> Result<Option<(Bytes, bool)>, ReadError> {
        let toolkit = self.toolkit_bytes(entry).await?;
        let identity = match range {
            Some([start, end])
                if toolkit.matches_index && start <= end && end <= toolkit.body.len() =>
            {
                toolkit.body.slice(start..end)
            }
            _ => match find(&toolkit.body)? {
                Some(body) => body,
                None => return Ok(None),
            },
        };
        if !toolkit.matches_index {
            return Ok(Some((encoding.encode(&identity), false)));
        }
        // Copied out of the toolkit's buffer so the cache weighs what it keeps.
        let body = if encoding == Encoding::Identity {
            Bytes::copy_from_slice(&identity)
        } else {
            encoding.encode(&identity)
        };
        self.answers.insert(key, body.clone());
        Ok(Some((body, true)))
    }

    /// A page of a list route in `encoding`.
    pub async fn list(&self, view: &MetaView, page: &Page, encoding: Encoding) -> Bytes {
        let key = |encoding| AnswerKey::List {
            version: view.version.clone(),
            page: page.clone(),
            encoding,
        };
        let built = self
            .answer(key, encoding, || async {
                Ok((build_list(view, page, self.config.max_answer_bytes), true))
            })
            .await;
        built.expect("building a list cannot fail")
    }

    /// An answer built from a toolkit's object (`what` names it), in
    /// `encoding`, and whether that object is the one the index describes.
    pub async fn from_toolkit(
        &self,
        entry: &IndexEntry,
        what: &str,
        encoding: Encoding,
        build: impl FnOnce(&[u8], &BundleLimits) -> Result<Vec<u8>, ReadError> + Send + 'static,
    ) -> Result<(Bytes, bool), ReadError> {
        let indexed = AtomicBool::new(true);
        let tag = served_tag(entry);
        let what: Arc<str> = what.into();
        let key = |encoding| AnswerKey::FromToolkit {
            slug: entry.slug.clone(),
            tag: tag.clone(),
            what: what.clone(),
            encoding,
        };
        if let Some(refused) = self.refused(&key(Encoding::Identity)) {
            return Err(refused);
        }
        let body = self
            .answer(key, encoding, || async {
                let toolkit = self.toolkit_bytes(entry).await?;
                // Built from an object the index does not describe: not kept.
                indexed.store(toolkit.matches_index, Ordering::Relaxed);
                let object = toolkit.body.clone();
                let built = self.convert(move |limits| build(&object, limits)).await?;
                let limit = self.config.max_answer_bytes;
                if built.len() > limit {
                    let size = built.len();
                    return Err(ReadError::TooLarge { size, limit });
                }
                Ok((Bytes::from(built), toolkit.matches_index))
            })
            .await;
        let indexed = indexed.load(Ordering::Relaxed);
        match body {
            Ok(body) => Ok((body, indexed)),
            Err(error) => {
                // Refused for an object the index does not describe: the
                // next sync restores the right one, which may fit.
                if indexed {
                    self.refuse(key(Encoding::Identity), &error);
                }
                Err(error)
            }
        }
    }

    /// An answer built from the meta (`what` names it), in `encoding`.
    /// `build` says whether its body may be kept (not if it read an object
    /// the index does not describe), and so does the answer.
    pub async fn from_meta<F>(
        &self,
        view: &MetaView,
        what: &str,
        encoding: Encoding,
        build: F,
    ) -> Result<(Bytes, bool), ReadError>
    where
        F: std::future::Future<Output = Result<(Vec<u8>, bool), ReadError>>,
    {
        let kept = AtomicBool::new(true);
        let what: Arc<str> = what.into();
        let key = |encoding| AnswerKey::FromMeta {
            version: view.version.clone(),
            what: what.clone(),
            encoding,
        };
        if let Some(refused) = self.refused(&key(Encoding::Identity)) {
            return Err(refused);
        }
        let body = self
            .answer(key, encoding, || async {
                let (body, keep) = build.await?;
                kept.store(keep, Ordering::Relaxed);
                Ok((Bytes::from(body), keep))
            })
            .await;
        match body {
            Ok(body) => Ok((body, kept.load(Ordering::Relaxed))),
            Err(error) => {
                // The key is the meta's version: a sync that repairs an
                // object publishes a new one.
                self.refuse(key(Encoding::Identity), &error);
                Err(error)
            }
        }
    }

    /// [`convert`](Self::convert) for work whose result is not kept (a
    /// POST's answer), named `what` on this meta: refused at once while the
    /// same work was refused, like a kept answer.
    pub async fn convert_named<T, F>(
        &self,
        view: &MetaView,
        what: &str,
        work: F,
    ) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&BundleLimits) -> Result<T, ReadError> + Send + 'static,
    {
        let key = AnswerKey::FromMeta {
            version: view.version.clone(),
            what: what.into(),
            encoding: Encoding::Identity,
        };
        if let Some(refused) = self.refused(&key) {
            return Err(refused);
        }
        let converted = self.convert(work).await;
        if let Err(error) = &converted {
            self.refuse(key, error);
        }
        converted
    }

    /// The error an answer was refused with, if it still holds.
    fn refused(&self, key: &AnswerKey) -> Option<ReadError> {
        let refusal = self.refusals.get(key)?;
        let still = refusal.still(self.config.out_of_time_retry);
        if still.is_none() {
            self.refusals.remove(key);
        }
        still
    }

    fn refuse(&self, key: AnswerKey, error: &ReadError) {
        if let Some(refusal) = Refusal::of(error) {
            self.refusals.insert(key, refusal);
        }
    }

    /// An answer in `encoding`: that coding from the cache, or the identity
    /// (from the cache, or built, and kept if `build` says so) encoded once.
    async fn answer<K, B, Fut>(
        &self,
        key: K,
        encoding: Encoding,
        build: B,
    ) -> Result<Bytes, ReadError>
    where
        K: Fn(Encoding) -> AnswerKey,
        B: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(Bytes, bool), ReadError>>,
    {
        if let Some(body) = self.cached(&key(encoding)) {
            return Ok(body);
        }
        let cached_identity = match encoding {
            Encoding::Identity => None,
            _ => self.cached(&key(Encoding::Identity)),
        };
        let (identity, keep) = match cached_identity {
            Some(body) => (body, true),
            None => {
                let (body, keep) = build().await?;
                if keep {
                    self.answers.insert(key(Encoding::Identity), body.clone());
                }
                (body, keep)
            }
        };
        Ok(match encoding {
            Encoding::Identity => identity,
            other => {
                let body = other.encode(&identity);
                if keep {
                    self.answers.insert(key(other), body.clone());
                }
                body
            }
        })
    }

    /// The change records' names (oldest first), listed once per meta, and
    /// whether the listing is complete (has the record the meta names; a
    /// sync writes it just after publishing). An incomplete one is not kept.
    pub async fn change_records(
        &self,
        view: &MetaView,
    ) -> Result<(Arc<Vec<ChangesName>>, bool), ReadError> {
        if let Some(names) = view.changes.get() {
            return Ok((names.clone(), true));
        }
        let listed = self.store.list_changes().await?;
        // A record after the meta's time is a sync's whose meta never
        // landed (or has not yet): not part of this snapshot's feed.
        let through = view.meta.last_synced_at.as_str();
        let names: Vec<ChangesName> = listed
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Changes(name) if name.at() <= through => Some(name),
                _ => None,
            })
            .collect();
        let complete = view
            .meta
            .changes_record
            .as_deref()
            .is_none_or(|own| names.iter().any(|n| n.as_str() == own));
        let names = Arc::new(names);
        if complete {
            let _ = view.changes.set(names.clone());
        }
        Ok((names, complete))
    }

    /// One change record's bytes (immutable, so kept as long as the cache allows).
    pub async fn change_record(&self, name: &ChangesName) -> Result<Option<Bytes>, ReadError> {
        let key = AnswerKey::Record(name.clone());
        if let Some(body) = self.cached(&key) {
            return Ok(Some(body));
        }
        let Some(object) = self.store.get(&ObjectKey::Changes(name.clone())).await? else {
            // Pruned since the listing: nothing to show.
            return Ok(None);
        };
        self.answers.insert(key, object.body.clone());
        Ok(Some(object.body))
    }

    /// Forgets the ready answers, keeping the meta (benchmarks measure cold answers with it).
    pub fn clear_answers(&self) {
        self.answers.clear();
    }

    /// Forgets everything held in memory (benchmarks measure cold starts with it).
    pub fn clear(&self) {
        *self.held() = None;
        self.answers.clear();
    }
}

fn find_trigger(slug: &Slug, body: &[u8], trigger: &str) -> Result<Option<Bytes>, ReadError> {
    let toolkit: CachedToolkit = serde_json::from_slice(body).map_err(|e| ReadError::Corrupt {
        key: ObjectKey::Toolkit(slug.clone()).to_string(),
        detail: e.to_string(),
    })?;
    Ok(toolkit
        .trigger(trigger)
        .map(|t| Bytes::from(serde_json::to_vec(t).expect("a trigger type serializes"))))
}

/// `GET /triggers`' entry.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSummary<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    /// `webhook` or `poll`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub toolkit_slug: &'a str,
}

/// Which page of `GET /triggers`: one toolkit's or all, after a place in
/// the meta's order, at most `limit` (else as many as fit a Lambda answer).
pub struct TriggerPage<'a> {
    pub toolkit: Option<&'a Slug>,
    pub after: Option<usize>,
    pub limit: Option<usize>,
}

/// `{"lastSyncedAt", "triggers": [...], "nextCursor"}`: at most `limit`
/// trigger types, and never more than `max_bytes` as a Lambda counts them.
/// `cursor` encodes the place in the meta's order a page ended on.
pub fn build_trigger_list(
    view: &MetaView,
    page: &TriggerPage<'_>,
    max_bytes: usize,
    cursor: impl Fn(usize) -> String,
) -> Vec<u8> {
    let index = view.trigger_index();
    let start = page.after.map_or(0, |a| a + 1);
    let mut body = Vec::with_capacity(16 * 1024);
    body.extend_from_slice(b"{\"lastSyncedAt\":");
    serde_json::to_writer(&mut body, &view.meta.last_synced_at).expect("a string serializes");
    body.extend_from_slice(b",\"triggers\":[");
    let mut size = escaped_len(&body) + 200;
    let mut served = 0;
    let mut last = None;
    let mut more = false;
    for (place, &(i, j)) in index.order.iter().enumerate().skip(start) {
        let entry = &view.meta.toolkits[i];
        if page.toolkit.is_some_and(|t| t != &entry.slug) {
            continue;
        }
        if page.limit.is_some_and(|limit| served >= limit) {
            more = true;
            break;
        }
        let t = &entry.triggers[j];
        let json = serde_json::to_vec(&TriggerSummary {
            slug: &t.slug,
            name: &t.name,
            description: &t.description,
            kind: &t.kind,
            toolkit_slug: entry.slug.as_str(),
        })
        .expect("a summary serializes");
        let grown = escaped_len(&json) + 1;
        // Always at least one, so paging makes progress.
        if served > 0 && size + grown > max_bytes {
            more = true;
            break;
        }
        if served > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&json);
        size += grown;
        served += 1;
        last = Some(place);
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    let next = last.filter(|_| more).map(cursor);
    serde_json::to_writer(&mut body, &next).expect("a cursor serializes");
    body.push(b'}');
    body
}

/// The object a reader serves for an index entry: its snapshot, written by
/// the sync that published the entry and never rewritten, so the index and
/// the object come from the same sync whatever a later sync is doing; the
/// plain `{slug}.json` only for a meta from before snapshots.
fn served_key(entry: &IndexEntry) -> ObjectKey {
    let snapshot = entry
        .snapshot_etag
        .as_ref()
        .and_then(|_| crate::store::SnapshotHash::parse(&entry.content_hash));
    match snapshot {
        Some(hash) => ObjectKey::Snapshot(entry.slug.clone(), hash),
        None => ObjectKey::Toolkit(entry.slug.clone()),
    }
}

/// The tag the served object had when the index was written.
fn served_tag(entry: &IndexEntry) -> Arc<str> {
    let tag = match &entry.snapshot_etag {
        Some(snapshot) => Some(snapshot),
        None => entry.etag.as_ref(),
    };
    tag.map(String::as_str).unwrap_or_default().into()
}

fn find_tool(slug: &Slug, body: &[u8], tool: &str) -> Result<Option<Bytes>, ReadError> {
    let toolkit: CachedToolkit = serde_json::from_slice(body).map_err(|e| ReadError::Corrupt {
        key: ObjectKey::Toolkit(slug.clone()).to_string(),
        detail: e.to_string(),
    })?;
    Ok(toolkit
        .tool(tool)
        .map(|t| Bytes::from(serde_json::to_vec(t).expect("a tool serializes"))))
}

/// `GET /`'s entry: a toolkit without its tools.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootToolkit<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub logo: &'a str,
    pub tool_count: usize,
    /// *Added*: the toolkit's version.
    pub version: Option<&'a str>,
    /// *Added*: the last sync failed for it; this is its last good copy.
    pub stale: bool,
}

/// `GET /toolkits`' entry: a toolkit with its tools' names.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListedToolkit<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub logo: &'a str,
    pub tools: Vec<ToolSummary<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ToolSummary<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
}

fn entry_json(route: ListRoute, e: &IndexEntry) -> Vec<u8> {
    let result = match route {
        ListRoute::Root => serde_json::to_vec(&RootToolkit {
            slug: e.slug.as_str(),
            name: &e.name,
            logo: &e.logo,
            tool_count: e.tool_count,
            version: e.version.as_deref(),
            stale: e.stale,
        }),
        ListRoute::Toolkits => serde_json::to_vec(&ListedToolkit {
            slug: e.slug.as_str(),
            name: &e.name,
            logo: &e.logo,
            tools: e
                .tools
                .iter()
                .map(|t| ToolSummary {
                    slug: &t.slug,
                    name: &t.name,
                    description: &t.description,
                })
                .collect(),
        }),
    };
    result.expect("an index entry serializes")
}

/// Cursors are opaque to clients: the slug a page ended on, encoded.
pub fn encode_cursor(after: &Slug) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("after:{after}"))
}

pub fn decode_cursor(cursor: &str) -> Option<Slug> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    Slug::parse(text.strip_prefix("after:")?).ok()
}

/// `{"lastSyncedAt", "toolkits": [...], "nextCursor"?}`. Without `limit` or a
/// cursor the answer keeps the replaced system's shape, unless it would not
/// fit in `max_bytes` (as a Lambda response counts them): then it is paged.
fn build_list(view: &MetaView, page: &Page, max_bytes: usize) -> Bytes {
    let entries = &view.meta.toolkits;
    let start = match &page.after {
        // The index is sorted by slug: a page resumes after the last one served.
        Some(after) => entries.partition_point(|e| &e.slug <= after),
        None => 0,
    };
    let mut body = Vec::with_capacity(64 * 1024);
    body.extend_from_slice(b"{\"lastSyncedAt\":");
    serde_json::to_writer(&mut body, &view.meta.last_synced_at).expect("a string serializes");
    body.extend_from_slice(b",\"toolkits\":[");
    // Room for the closing and a cursor.
    let reserve = 200;
    let mut size = escaped_len(&body) + reserve;
    let mut end = start;
    for e in entries.iter().skip(start) {
        if page.limit.is_some_and(|limit| end - start >= limit) {
            break;
        }
        let json = entry_json(page.route, e);
        let grown = escaped_len(&json) + 1;
        // Always at least one toolkit, so paging makes progress.
        if end > start && size + grown > max_bytes {
            break;
        }
        if end > start {
            body.push(b',');
        }
        body.extend_from_slice(&json);
        size += grown;
        end += 1;
    }
    body.push(b']');
    let paged = page.limit.is_some() || page.after.is_some() || end < entries.len();
    if paged {
        body.extend_from_slice(b",\"nextCursor\":");
        let next = (end < entries.len() && end > 0).then(|| encode_cursor(&entries[end - 1].slug));
        serde_json::to_writer(&mut body, &next).expect("a cursor serializes");
    }
    body.push(b'}');
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ToolEntry;

    fn view(n: usize, tools: usize) -> MetaView {
        let toolkits = (0..n)
            .map(|i| IndexEntry {
                left_out: Vec::new(),
                slug: Slug::parse(&format!("t{i:04}")).unwrap(),
                name: format!("Toolkit \"{i}\""),
                logo: String::new(),
                tool_count: tools,
                version: Some("v".into()),
                updated_at: None,
                content_hash: "h".into(),
                etag: Some("e".into()),
                snapshot_etag: None,
                synced_at: "2026-01-01T00:00:00Z".into(),
                stale: false,
                last_error: None,
                tools: (0..tools)
                    .map(|j| ToolEntry {
                        slug: format!("T{i}_{j}"),
                        name: "n".into(),
                        description: "d".repeat(100),
                        range: Some([0, 1]),
                        hash: None,
                        deprecated: false,
                        compat: None,
                        parameters: String::new(),
                    })
                    .collect(),
                triggers: Vec::new(),
                index_format: crate::cache::INDEX_FORMAT,
            })
            .collect();
        MetaView::new(Meta {
            last_synced_at: "2026-01-01T00:00:00.000Z".into(),
            toolkit_count: n,
            total_tool_count: n * tools,
            sync_duration_ms: 1,
            sync_id: "s".into(),
            toolkits,
            failed: vec![],
            pending_deletes: vec![],
            unfinished_full_pass: None,
            changes_record: None,
        })
    }

    fn parse(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    fn reader(max_convert_time: Duration) -> CacheReader {
        let config = ReaderConfig {
            max_convert_time,
            out_of_time_retry: Duration::from_millis(300),
            ..ReaderConfig::new(Duration::from_secs(60))
        };
        CacheReader::new(Arc::new(crate::store::MemoryStore::new()), config)
    }

    /// Work that checks its limits until told to stop, and says why it did.
    fn checking(limits: &BundleLimits) -> Result<BundleError, ReadError> {
        for _ in 0..100_000 {
            if let Err(stopped) =
                crate::agent::bundle_within(&[], crate::agent::Format::Mcp, false, limits)
            {
                return Ok(stopped);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("never stopped");
    }

    #[tokio::test]
    async fn a_conversion_stops_at_its_time_limit() {
        let stopped = reader(Duration::from_millis(20))
            .convert(checking)
            .await
            .unwrap();
        assert!(
            matches!(stopped, BundleError::OutOfTime { limit } if limit.as_millis() == 20),
            "{stopped:?}"
        );
    }

    type Ending = fn(&BundleLimits) -> Result<(Vec<u8>, bool), ReadError>;

    /// An answer from the meta whose building counts its runs and ends
    /// with `ending`.
    async fn built_with(
        reader: &CacheReader,
        (view, what): (&MetaView, &str),
        encoding: Encoding,
        runs: &std::sync::atomic::AtomicUsize,
        ending: Ending,
    ) -> Result<(Bytes, bool), ReadError> {
        reader
            .from_meta(view, what, encoding, async {
                runs.fetch_add(1, Ordering::SeqCst);
                reader.convert(ending).await
            })
            .await
    }

    #[tokio::test]
    async fn an_answer_refused_for_its_limits_is_refused_at_once_not_built_again() {
        use std::sync::atomic::AtomicUsize;
        let reader = reader(Duration::from_millis(20));
        let v = view(1, 1);
        let out_of_time = |limits: &BundleLimits| Err(ReadError::Bundle(checking(limits)?));
        let runs = AtomicUsize::new(0);
        for encoding in [Encoding::Identity, Encoding::Gzip, Encoding::Identity] {
            let answer = built_with(&reader, (&v, "slow"), encoding, &runs, out_of_time).await;
            assert!(
                matches!(
                    answer,
                    Err(ReadError::Bundle(BundleError::OutOfTime { .. }))
                ),
                "{answer:?}"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "converted once");
        // Out of time may have been the machine's load: tried again later.
        tokio::time::sleep(reader.config.out_of_time_retry).await;
        let _ = built_with(
            &reader,
            (&v, "slow"),
            Encoding::Identity,
            &runs,
            out_of_time,
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        // Too large stays refused; a client that left or a store error does not.
        let too_large = |_: &BundleLimits| Err(ReadError::TooLarge { size: 9, limit: 1 });
        let runs = AtomicUsize::new(0);
        for _ in 0..2 {
            let answer =
                built_with(&reader, (&v, "large"), Encoding::Identity, &runs, too_large).await;
            assert!(matches!(
                answer,
                Err(ReadError::TooLarge { size: 9, limit: 1 })
            ));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let left = |_: &BundleLimits| Err(ReadError::Bundle(BundleError::Abandoned));
        let runs = AtomicUsize::new(0);
        for _ in 0..2 {
            let _ = built_with(&reader, (&v, "left"), Encoding::Identity, &runs, left).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "an abandoned answer is not a refusal"
        );

        // Work that is not kept (a POST's) is refused the same way, by name.
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let counted = runs.clone();
            let answer = reader
                .convert_named(&v, "resolve X", move |limits| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(ReadError::Bundle(checking(limits)?))
                })
                .await;
            assert!(answer.is_err());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_conversion_nobody_waits_for_is_abandoned() {
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = Arc::new(reader(Duration::from_secs(3600)));
        let waiting = reader.convert(move |limits| {
            let stopped = checking(limits);
            tx.send(stopped.map_err(|e| e.to_string())).unwrap();
            Ok(())
        });
        // The client leaves: its request's future is dropped mid-conversion.
        let left = tokio::time::timeout(Duration::from_millis(30), waiting).await;
        assert!(left.is_err(), "the work was still running");
        let stopped = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the conversion stopped");
        assert!(matches!(stopped, Ok(BundleError::Abandoned)), "{stopped:?}");
    }

    #[test]
    fn an_unpaged_list_keeps_the_reference_shape() {
        let v = view(3, 2);
        let page = Page {
            route: ListRoute::Toolkits,
            after: None,
            limit: None,
        };
        let body = parse(&build_list(&v, &page, 1 << 20));
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["lastSyncedAt", "toolkits"]);
        assert_eq!(body["toolkits"].as_array().unwrap().len(), 3);
        let tool = &body["toolkits"][0]["tools"][0];
        assert_eq!(
            tool.as_object().unwrap().len(),
            3,
            "no internal fields: {tool}"
        );
    }

    #[test]
    fn pages_follow_cursors_to_the_end_and_fit_the_budget() {
        let v = view(50, 10);
        let budget = 20_000;
        let mut after = None;
        let mut seen = Vec::new();
        for _ in 0..100 {
            let page = Page {
                route: ListRoute::Toolkits,
                after: after.clone(),
                limit: None,
            };
            let body = build_list(&v, &page, budget);
            assert!(escaped_len(&body) <= budget, "{}", escaped_len(&body));
            let json = parse(&body);
            for t in json["toolkits"].as_array().unwrap() {
                seen.push(t["slug"].as_str().unwrap().to_owned());
            }
            match json["nextCursor"].as_str() {
                Some(cursor) => after = Some(decode_cursor(cursor).unwrap()),
                None => break,
            }
        }
        let want: Vec<String> = (0..50).map(|i| format!("t{i:04}")).collect();
        assert_eq!(seen, want, "every toolkit once, in order");
    }

    #[test]
    fn a_limit_pages_and_says_when_it_ends() {
        let v = view(5, 0);
        let first = parse(&build_list(
            &v,
            &Page {
                route: ListRoute::Root,
                after: None,
                limit: Some(3),
            },
            1 << 20,
        ));
        assert_eq!(first["toolkits"].as_array().unwrap().len(), 3);
        let after = decode_cursor(first["nextCursor"].as_str().unwrap()).unwrap();
        assert_eq!(after.as_str(), "t0002");
        let last = parse(&build_list(
            &v,
            &Page {
                route: ListRoute::Root,
                after: Some(after),
                limit: Some(3),
            },
            1 << 20,
        ));
        assert_eq!(last["toolkits"].as_array().unwrap().len(), 2);
        assert!(last["nextCursor"].is_null(), "the last page says so");
    }

    #[test]
    fn cursors_are_opaque_and_checked() {
        let slug = Slug::parse("github").unwrap();
        let cursor = encode_cursor(&slug);
        assert!(!cursor.contains("github"));
        assert_eq!(decode_cursor(&cursor), Some(slug));
        for bad in [
            "",
            "github",
            "!!!",
            &encode_cursor(&Slug::parse("x").unwrap())[1..],
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
