//! The read routes. Each answer's validators are known from the meta before
//! its body is read or built, so a revalidation costs no store read.

use super::answer::{
    bundle_bytes, conditional, unindexed_etag, BundleAnswer, FormatParams, ReadState,
};
use super::extract::{NoQuery, Params, ToolPath, ToolkitSlug};
use super::reader::{
    decode_cursor, ListRoute, ListedToolkit, MetaView, Page, ReadError, RootToolkit,
};
use super::representation::{self, Encoding, Validators};
use super::{ApiError, ErrorAnswer};
use crate::cache::{content_hash, CachedToolSchema, CachedToolkit, Failure, IndexEntry};
use crate::store::ObjectKey;
use crate::sync::SyncReport;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;
use utoipa::{IntoParams, ToSchema};

pub fn read_routes(state: ReadState) -> Router {
    let base = super::BASE;
    Router::new()
        .route(base, get(root))
        // `$BASE/` is where a newcomer's first request goes: the same list
        // (undocumented, so the document names each route once).
        .route(&format!("{base}/"), get(root))
        .route(&format!("{base}/toolkits"), get(toolkits))
        .route(&format!("{base}/toolkits/{{toolkit}}"), get(toolkit))
        .route(&format!("{base}/toolkits/{{toolkit}}/{{tool}}"), get(tool))
        .route(&format!("{base}/sync/status"), get(status))
        .route(&format!("{base}/openapi.json"), get(openapi))
        .with_state(state)
}

/// The toolkit route's answer: the toolkit, or with `format` a bundle.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents an answer whose body is built as bytes.
pub enum ToolkitOrBundle {
    Toolkit(crate::cache::CachedToolkit),
    Bundle(BundleAnswer),
}

/// The tool route's answer: the tool, or with `format` a bundle.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)] // Documents an answer whose body is built as bytes.
pub enum ToolOrBundle {
    Tool(CachedToolSchema),
    Bundle(BundleAnswer),
}

/// Paging of the list routes.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Toolkits per page. Without `limit` and `cursor` the whole list comes
    /// at once, unless it would not fit in one Lambda response: then it is
    /// paged and `nextCursor` says where to go on.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page (opaque).
    cursor: Option<String>,
}

/// `GET /`: every toolkit without its tools.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootAnswer<'a> {
    /// When the published cache was synced; `null` before the first sync.
    pub last_synced_at: Option<&'a str>,
    pub toolkits: Vec<RootToolkit<'a>>,
    /// *Added*, only on a paged answer: where the next page starts; `null` on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /toolkits`: every toolkit with its tools' slugs, names and descriptions.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolkitsAnswer<'a> {
    /// When the published cache was synced; `null` before the first sync.
    pub last_synced_at: Option<&'a str>,
    pub toolkits: Vec<ListedToolkit<'a>>,
    /// *Added*, only on a paged answer: where the next page starts; `null` on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn page_of(route: ListRoute, params: ListParams) -> Result<Page, ApiError> {
    let limit = match params.limit {
        None => None,
        Some(n @ 1..=1000) => Some(n as usize),
        Some(_) => return Err(ApiError::BadRequest("limit must be 1 to 1000".into())),
    };
    let after = match params.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::BadRequest("invalid cursor: pass a nextCursor this API gave".into())
        })?),
    };
    Ok(Page {
        route,
        after,
        limit,
    })
}

/// A list's tag: this meta's version and this page. No body is hashed.
fn list_validators(view: &MetaView, page: &Page) -> Validators {
    let key = format!(
        "{}|{:?}|{}|{}",
        view.version,
        page.route,
        page.after.as_ref().map(|s| s.as_str()).unwrap_or(""),
        page.limit.map(|l| l.to_string()).unwrap_or_default()
    );
    Validators {
        etag: content_hash(key.as_bytes())[..32].to_owned(),
        last_modified: view.last_synced,
    }
}

async fn list(
    s: &ReadState,
    route: ListRoute,
    params: ListParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let page = page_of(route, params)?;
    let read = s.reader.meta().await?;
    let Some(view) = read.view else {
        // Nothing published yet: nothing to cache either.
        let mut response = axum::Json(RootAnswer {
            last_synced_at: None,
            toolkits: vec![],
            next_cursor: None,
        })
        .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    };
    let validators = list_validators(&view, &page);
    conditional(s, headers, read.stale, validators, |encoding| async move {
        Ok((s.reader.list(&view, &page, encoding).await, None))
    })
    .await
}

/// Every toolkit in the cache, without its tools.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio",
    tag = "read",
    params(ListParams),
    responses(
        (status = 200, description = "The toolkits (from the meta alone)", body = RootAnswer),
        (status = 304, description = "The client's copy (If-None-Match / If-Modified-Since) is current"),
        (status = 400, description = "Bad limit, cursor or query parameter", body = ErrorAnswer),
        (status = 500, description = "The published meta is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn root(
    State(s): State<ReadState>,
    Params(params): Params<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(&s, ListRoute::Root, params, &headers).await
}

/// Every toolkit in the cache, with its tools' slugs, names and descriptions.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/toolkits",
    tag = "read",
    params(ListParams),
    responses(
        (status = 200, description = "The toolkits and their tools (from the meta alone)", body = ToolkitsAnswer),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Bad limit, cursor or query parameter", body = ErrorAnswer),
        (status = 500, description = "The published meta is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn toolkits(
    State(s): State<ReadState>,
    Params(params): Params<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(&s, ListRoute::Toolkits, params, &headers).await
}

fn corrupt(slug: &crate::cache::Slug, e: impl std::fmt::Display) -> ReadError {
    ReadError::Corrupt {
        key: ObjectKey::Toolkit(slug.clone()).to_string(),
        detail: e.to_string(),
    }
}

fn synced_at(entry: &IndexEntry) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&entry.synced_at).ok()
}

/// The toolkit the current meta names; a stray object it does not name is not served.
fn named<'a>(
    view: &'a Option<Arc<MetaView>>,
    slug: &crate::cache::Slug,
) -> Result<&'a IndexEntry, ApiError> {
    view.as_ref()
        .and_then(|v| v.entry(slug))
        .ok_or_else(|| ApiError::NotFound(format!("toolkit {slug} is not in the cache")))
}

/// One whole cached toolkit, as stored.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/toolkits/{toolkit}",
    tag = "read",
    params(
        ("toolkit" = String, Path, description = "Toolkit slug, `[a-z0-9][a-z0-9_-]{0,99}`", pattern = "^[a-z0-9][a-z0-9_-]{0,99}$"),
        FormatParams,
    ),
    responses(
        (status = 200, description = "The cached toolkit as stored (with `format`: a provider bundle of its tools)", body = ToolkitOrBundle),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Invalid slug, an unknown format (the answer lists the valid ones) or query parameter", body = ErrorAnswer),
        (status = 404, description = "Not in the cache", body = ErrorAnswer),
        (status = 422, description = "With `format`: the answer would be over what one answer may hold (5,000,000 bytes) or take to convert (10 s); the message names the limit and what to ask for instead", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn toolkit(
    State(s): State<ReadState>,
    ToolkitSlug(slug): ToolkitSlug,
    Params(params): Params<FormatParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let requested = params.requested()?;
    let read = s.reader.meta().await?;
    let entry = named(&read.view, &slug)?;
    let base: String = entry.content_hash.chars().take(32).collect();
    let validators = Validators {
        etag: match requested {
            Some(r) => format!("{base}-{}", r.tag()),
            None => base,
        },
        last_modified: synced_at(entry),
    };
    let (s, slug) = (&s, &slug);
    conditional(s, &headers, read.stale, validators, |encoding| async move {
        let Some(requested) = requested else {
            let got = s.reader.toolkit(entry, encoding).await?;
            return Ok((got.body, got.content_hash.map(|h| h[..32].to_owned())));
        };
        let owned = slug.clone();
        let (body, indexed) = s
            .reader
            .from_toolkit(entry, &requested.tag(), encoding, move |object, limits| {
                let toolkit: CachedToolkit =
                    serde_json::from_slice(object).map_err(|e| corrupt(&owned, e))?;
                bundle_bytes(&toolkit.tools, requested, None, limits)
            })
            .await?;
        let etag = (!indexed).then(|| unindexed_etag(&body));
        Ok((body, etag))
    })
    .await
}

/// One tool: `{slug, name, description, inputParameters, outputParameters, toolkitSlug, tags, version, isDeprecated}`.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/toolkits/{toolkit}/{tool}",
    tag = "read",
    params(
        ("toolkit" = String, Path, description = "Toolkit slug", pattern = "^[a-z0-9][a-z0-9_-]{0,99}$"),
        ("tool" = String, Path, description = "Tool slug, `[A-Za-z0-9_-]{1,200}`", pattern = "^[A-Za-z0-9_-]{1,200}$"),
        FormatParams,
    ),
    responses(
        (status = 200, description = "The tool (with `format`: a provider bundle of it)", body = ToolOrBundle),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Invalid slug, an unknown format or query parameter", body = ErrorAnswer),
        (status = 404, description = "Toolkit or tool not in the cache", body = ErrorAnswer),
        (status = 422, description = "With `format`: the answer would be over what one answer may hold (5,000,000 bytes) or take to convert (10 s); the message names the limit and what to ask for instead", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn tool(
    State(s): State<ReadState>,
    ToolPath(slug, tool): ToolPath,
    Params(params): Params<FormatParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let requested = params.requested()?;
    let read = s.reader.meta().await?;
    let entry = named(&read.view, &slug)?;
    let not_found =
        || ApiError::NotFound(format!("tool {} is not in toolkit {slug}", tool.as_str()));
    let index = entry
        .tools
        .iter()
        .position(|t| t.slug == tool.as_str())
        .ok_or_else(not_found)?;
    let base = format!(
        "{}-{index}",
        entry.content_hash.chars().take(32).collect::<String>()
    );
    let validators = Validators {
        etag: match requested {
            Some(r) => format!("{base}-{}", r.tag()),
            None => base,
        },
        last_modified: synced_at(entry),
    };
    let (s, slug, not_found) = (&s, &slug, &not_found);
    conditional(s, &headers, read.stale, validators, |encoding| async move {
        let Some(requested) = requested else {
            let (body, indexed) = s
                .reader
                .tool(entry, index, encoding)
                .await?
                .ok_or_else(not_found)?;
            let etag = (!indexed).then(|| unindexed_etag(&body));
            return Ok((body, etag));
        };
        let (tool_bytes, _) = s
            .reader
            .tool(entry, index, Encoding::Identity)
            .await?
            .ok_or_else(not_found)?;
        let what = format!("tool-{index}-{}", requested.tag());
        let (body, indexed) = s
            .reader
            .from_toolkit(entry, &what, encoding, {
                let slug = slug.clone();
                move |_, limits| {
                    let tool: CachedToolSchema =
                        serde_json::from_slice(&tool_bytes).map_err(|e| corrupt(&slug, e))?;
                    bundle_bytes(std::slice::from_ref(&tool), requested, None, limits)
                }
            })
            .await?;
        let etag = (!indexed).then(|| unindexed_etag(&body));
        Ok((body, etag))
    })
    .await
}

/// `GET /sync/status`: what is published, how old it is, and the last run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusAnswer {
    /// `null` before the first sync.
    pub meta: Option<PublishedMeta>,
    /// The report of the last run, failed or not.
    pub last_run: Option<SyncReport>,
    /// Seconds since the published cache was synced.
    pub cache_age_seconds: Option<u64>,
    /// The sync holding the lease now, if any: live (renewing it), or a run
    /// that died without finishing (killed, out of memory, a timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningSync>,
}

/// A sync that holds the lease.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningSync {
    /// Its `syncId`.
    pub owner: String,
    pub acquired_at: String,
    /// Whether its holder is alive: it renewed the lease lately. `false`: it
    /// died, and the next sync takes the lease over.
    pub live: bool,
    /// Whether it wrote its report before dying (then only the release is missing).
    pub finished: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedMeta {
    pub last_synced_at: String,
    pub toolkit_count: usize,
    pub total_tool_count: usize,
    pub sync_duration_ms: u64,
    pub sync_id: String,
    pub failed: Vec<Failure>,
    /// Toolkits served from their last good copy.
    pub stale: Vec<StaleToolkit>,
    /// Objects the meta no longer names that are still to be deleted.
    pub pending_deletes: Vec<String>,
    /// Tools left out of a published toolkit, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools_left_out: Vec<crate::cache::LeftOutTool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaleToolkit {
    pub slug: String,
    pub synced_at: String,
    pub last_error: Option<String>,
}

/// What monitoring concludes from a status: healthy, or the first reason not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub ok: bool,
    /// One line: why not, or what is fine.
    pub reason: String,
}

impl StatusAnswer {
    /// Healthy means: a published cache, younger than `max_age` when given,
    /// whose last run succeeded, with no toolkit served from a stale copy.
    pub fn verdict(&self, max_age: Option<std::time::Duration>) -> Verdict {
        let fail = |reason: String| Verdict { ok: false, reason };
        let Some(meta) = &self.meta else {
            return fail("no cache: nothing has been published yet".into());
        };
        let age = self.cache_age_seconds.unwrap_or(u64::MAX);
        if let Some(max) = max_age {
            if age > max.as_secs() {
                return fail(format!(
                    "too old: last synced {} ago (at {}), more than {}",
                    humantime::format_duration(std::time::Duration::from_secs(age)),
                    meta.last_synced_at,
                    humantime::format_duration(max)
                ));
            }
        }
        if let Some(dead) = self.running.as_ref().filter(|r| !r.live && !r.finished) {
            return fail(format!(
                "the last sync ({}, started {}) never finished: it stopped without a report (killed, out of memory, a timeout); the next sync takes its lease over",
                dead.owner, dead.acquired_at
            ));
        }
        if let Some(run) = self.last_run.as_ref().filter(|r| !r.success) {
            return fail(format!(
                "the last sync failed ({}): {}",
                run.started_at,
                run.message.as_deref().unwrap_or("no message")
            ));
        }
        if !meta.stale.is_empty() {
            let slugs: Vec<&str> = meta.stale.iter().map(|s| s.slug.as_str()).collect();
            return fail(format!(
                "{} toolkit(s) served from a stale copy: {}",
                slugs.len(),
                slugs.join(", ")
            ));
        }
        Verdict {
            ok: true,
            reason: format!(
                "fresh: synced {} ago, {} toolkits, {} tools",
                humantime::format_duration(std::time::Duration::from_secs(age)),
                meta.toolkit_count,
                meta.total_tool_count
            ),
        }
    }

    /// The status from the store: the last run's report and the lease. A
    /// store that cannot be reached is an error unless `tolerate` (a stale
    /// meta is being served): then the status goes without them.
    pub async fn read(
        store: &dyn crate::store::Store,
        view: Option<&MetaView>,
        tolerate: bool,
    ) -> Result<Self, crate::store::StoreError> {
        let (last_run, lease) =
            tokio::join!(store.get(&ObjectKey::LastRun), store.get(&ObjectKey::Lease));
        let decoded = |object: Result<Option<crate::store::StoredObject>, _>| match object {
            Ok(object) => Ok(object.map(|o| o.body)),
            Err(e) if tolerate => {
                tracing::warn!(error = %e, "the store is unreachable; status without the last run");
                Ok(None)
            }
            Err(e) => Err(e),
        };
        let last_run: Option<SyncReport> =
            decoded(last_run)?.and_then(|b| serde_json::from_slice(&b).ok());
        let lease: Option<crate::sync::LeaseRecord> =
            decoded(lease)?.and_then(|b| serde_json::from_slice(&b).ok());
        let mut answer = Self::new(view, last_run);
        answer.running = lease.map(|l| RunningSync {
            live: l.live_now(),
            finished: answer
                .last_run
                .as_ref()
                .is_some_and(|r| r.sync_id == l.owner),
            owner: l.owner,
            acquired_at: l.acquired_at,
        });
        Ok(answer)
    }

    pub fn new(view: Option<&MetaView>, last_run: Option<SyncReport>) -> Self {
        let meta = view.map(|v| {
            let m = &v.meta;
            PublishedMeta {
                last_synced_at: m.last_synced_at.clone(),
                toolkit_count: m.toolkit_count,
                total_tool_count: m.total_tool_count,
                sync_duration_ms: m.sync_duration_ms,
                sync_id: m.sync_id.clone(),
                failed: m.failed.clone(),
                stale: m
                    .toolkits
                    .iter()
                    .filter(|e| e.stale)
                    .map(|e| StaleToolkit {
                        slug: e.slug.to_string(),
                        synced_at: e.synced_at.clone(),
                        last_error: e.last_error.clone(),
                    })
                    .collect(),
                pending_deletes: m.pending_deletes.iter().map(|s| s.to_string()).collect(),
                tools_left_out: m.tools_left_out(),
            }
        });
        Self {
            meta,
            last_run,
            cache_age_seconds: view.and_then(|v| v.age()).map(|d| d.as_secs()),
            running: None,
        }
    }
}

/// Whether the cache is fresh and the last sync was clean.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/sync/status",
    tag = "sync",
    responses(
        (status = 200, description = "The published meta's summary, its age and the last run's report", body = StatusAnswer),
        (status = 400, description = "A query parameter", body = ErrorAnswer),
        (status = 500, description = "The published meta is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn status(
    State(s): State<ReadState>,
    _: NoQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = s.reader.meta().await?;
    let answer = StatusAnswer::read(&**s.reader.store(), read.view.as_deref(), read.stale)
        .await
        .map_err(|e| ApiError::Read(e.into()))?;
    let body = serde_json::to_vec(&answer).expect("a status serializes");
    Ok(representation::live(
        &body,
        &headers,
        HeaderValue::from_static("no-cache"),
    ))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/openapi.json",
    tag = "read",
    responses(
        (status = 200, description = "The OpenAPI document, generated from the handlers and types (and checked against them by the tests)", content_type = "application/json", body = Object),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "A query parameter", body = ErrorAnswer),
    )
)]
pub(super) async fn openapi(
    State(s): State<ReadState>,
    _: NoQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(s.doc.respond(&headers, &s.cache_control))
}
