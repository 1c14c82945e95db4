//! What agents ask of the cache beyond the replaced system's routes: tools
//! in a model provider's format, several tools at once, search, and what
//! changed. All from the cache; none of it calls Composio.

use super::extract::Params;
use super::reader::{MetaView, ReadError};
use super::representation::{Encoding, Validators};
use super::routes::{conditional, unindexed_etag, ReadState};
use super::{ApiError, ErrorAnswer};
use crate::agent::{bundle, Bundle, Format, ToolSource};
use crate::cache::changes::{ChangeKind, ChangeRecord};
use crate::cache::{content_hash, timestamp, CachedToolSchema, ToolSlug};
use crate::search::Hit;
use crate::store::ChangesName;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn agent_routes(state: ReadState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(tools))
        .routes(routes!(changes))
        .with_state(state)
}

/// The provider format asked for, and strict mode (OpenAI's only).
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// Answer a bundle in this provider's format: `openai`, `openai-responses`,
    /// `anthropic`, `gemini` or `mcp`.
    pub format: Option<String>,
    /// With `openai` or `openai-responses`: OpenAI strict mode.
    pub strict: Option<bool>,
}

/// A format and strict mode, validated.
#[derive(Debug, Clone, Copy)]
pub struct Requested {
    pub format: Format,
    pub strict: bool,
}

impl Requested {
    /// Names this variant of an answer in cache keys and ETags.
    pub fn tag(&self) -> String {
        format!(
            "{}{}",
            self.format.as_str(),
            if self.strict { "-strict" } else { "" }
        )
    }
}

pub fn requested(
    format: Option<&str>,
    strict: Option<bool>,
) -> Result<Option<Requested>, ApiError> {
    let Some(format) = format else {
        if strict.is_some() {
            return Err(ApiError::BadRequest(
                "strict needs format=openai or format=openai-responses".into(),
            ));
        }
        return Ok(None);
    };
    let format: Format = format
        .parse()
        .map_err(|e: crate::agent::UnknownFormat| ApiError::BadRequest(e.to_string()))?;
    let strict = strict.unwrap_or(false);
    if strict && !format.supports_strict() {
        return Err(ApiError::BadRequest(format!(
            "strict is OpenAI's: use it with format=openai or format=openai-responses, not {}",
            format.as_str()
        )));
    }
    Ok(Some(Requested { format, strict }))
}

/// A provider bundle, plus the slugs a batch did not find.
#[derive(Serialize)]
struct BundleWithUnknown<'a> {
    #[serde(flatten)]
    bundle: &'a Bundle,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<&'a [String]>,
}

/// A provider bundle of `tools`, serialized.
pub fn bundle_bytes(
    tools: &[CachedToolSchema],
    requested: Requested,
    unknown: Option<&[String]>,
) -> Result<Vec<u8>, ApiError> {
    let sources: Vec<ToolSource<'_>> = tools.iter().map(ToolSource::from).collect();
    let bundle = bundle(&sources, requested.format, requested.strict)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(serde_json::to_vec(&BundleWithUnknown {
        bundle: &bundle,
        unknown,
    })
    .expect("a bundle serializes"))
}

/// Documents a bundle answer (the body is a provider's own shapes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleAnswer {
    /// The format asked for.
    pub format: String,
    /// Exactly the provider's tool shapes, nothing extra.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<serde_json::Value>,
    /// The name sent to the model → the tool slug.
    #[schema(value_type = Object)]
    pub name_map: serde_json::Value,
    /// What maps a model's arguments back to the original property names.
    #[schema(value_type = Object)]
    pub argument_map: serde_json::Value,
    /// What was altered to fit the format: `[{tool, path, reason}]` (absent when nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub changes: Option<Vec<serde_json::Value>>,
    /// Batch only: slugs not in the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Vec<String>>,
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
#[allow(dead_code)] // Documents an answer whose body is built as bytes.
pub enum ToolOrBundle {
    Tool(CachedToolSchema),
    Bundle(BundleAnswer),
}

/// `GET /tools`' answer: a batch, a batch as a bundle, or search results.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents an answer whose body is built as bytes.
pub enum ToolsAnswer {
    Batch(BatchAnswer),
    Bundle(BundleAnswer),
    Search(SearchAnswer),
}

/// `GET /tools`: batch get (`slugs`) or search (`q`).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ToolsParams {
    /// Batch get: comma-separated tool slugs, at most 128, across toolkits.
    slugs: Option<String>,
    /// Search: words to look for in tool slugs, names, descriptions and toolkit names.
    q: Option<String>,
    /// Search only: only this toolkit's tools.
    toolkit: Option<String>,
    /// Search only: results per page (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Search only: the `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Batch only: answer a bundle in this provider format.
    format: Option<String>,
    /// Batch only: OpenAI strict mode (with `format=openai` or `openai-responses`).
    strict: Option<bool>,
}

/// Batch get without a format.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// The tools found, in the order asked.
    pub tools: Vec<CachedToolSchema>,
    /// Slugs not in the cache.
    pub unknown: Vec<String>,
}

/// Search results, best first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchAnswer {
    pub results: Vec<Hit>,
    /// Where the next page starts; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// OpenAI's per-request maximum of tools.
const MAX_BATCH: usize = 128;
const DEFAULT_SEARCH_LIMIT: usize = 20;

fn cursor_value(prefix: &str, value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}:{value}"))
}

fn cursor_of(prefix: &str, cursor: &str) -> Result<String, ApiError> {
    use base64::Engine;
    let bad = || ApiError::BadRequest("invalid cursor: pass a nextCursor this API gave".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix(prefix)
        .and_then(|t| t.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad)
}

/// Answers from the meta have the meta's version in their tag.
fn meta_validators(view: &MetaView, what: &str) -> Validators {
    Validators {
        etag: content_hash(format!("{}|{what}", view.version).as_bytes())[..32].to_owned(),
        last_modified: view.last_synced,
    }
}

async fn answer_from_meta<F>(
    s: &ReadState,
    headers: &HeaderMap,
    view: &MetaView,
    stale: bool,
    what: &str,
    build: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(Vec<u8>, bool), ReadError>>,
{
    let validators = meta_validators(view, what);
    conditional(s, headers, stale, validators, |encoding| async move {
        let (body, kept) = s.reader.from_meta(view, what, encoding, build).await?;
        let etag = (!kept).then(|| unindexed_etag(&body));
        Ok((body, etag))
    })
    .await
}

/// Several tools at once, or a search.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/tools",
    tag = "agents",
    params(ToolsParams),
    responses(
        (status = 200, description = "Batch get: the tools (or a provider bundle of them, with `unknown`); search: `{results, nextCursor}`", body = ToolsAnswer),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Neither or both of `slugs` and `q`, more than 128 slugs, a bad format, limit or cursor", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
async fn tools(
    State(s): State<ReadState>,
    Params(params): Params<ToolsParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = s.reader.meta().await?;
    let view = read
        .view
        .unwrap_or_else(|| std::sync::Arc::new(MetaView::empty()));
    match (params.slugs.as_deref(), params.q.as_deref()) {
        (Some(slugs), None) => {
            if params.toolkit.is_some() || params.limit.is_some() || params.cursor.is_some() {
                return Err(ApiError::BadRequest(
                    "toolkit, limit and cursor go with q (search), not with slugs".into(),
                ));
            }
            let requested = requested(params.format.as_deref(), params.strict)?;
            let mut wanted: Vec<String> = Vec::new();
            for raw in slugs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let slug = ToolSlug::parse(raw)
                    .map_err(|e| ApiError::BadRequest(format!("invalid tool slug: {e}")))?;
                if !wanted.iter().any(|w| w == slug.as_str()) {
                    wanted.push(slug.as_str().to_owned());
                }
            }
            if wanted.is_empty() || wanted.len() > MAX_BATCH {
                return Err(ApiError::BadRequest(format!(
                    "slugs must name 1 to {MAX_BATCH} tools"
                )));
            }
            let what = format!(
                "batch|{}|{}",
                wanted.join(","),
                requested.map(|r| r.tag()).unwrap_or_default()
            );
            let build = batch(&s, &view, wanted, requested);
            answer_from_meta(&s, &headers, &view, read.stale, &what, build).await
        }
        (None, Some(q)) => {
            if params.format.is_some() || params.strict.is_some() {
                return Err(ApiError::BadRequest(
                    "format and strict go with slugs (batch get), not with q".into(),
                ));
            }
            let limit = match params.limit {
                None => DEFAULT_SEARCH_LIMIT,
                Some(n @ 1..=100) => n as usize,
                Some(_) => return Err(ApiError::BadRequest("limit must be 1 to 100".into())),
            };
            let offset = match params.cursor.as_deref() {
                None => 0,
                Some(cursor) => cursor_of("o", cursor)?
                    .parse::<usize>()
                    .map_err(|_| ApiError::BadRequest("invalid cursor".into()))?,
            };
            let q: String = q.chars().take(500).collect();
            let toolkit = params.toolkit.clone();
            let what = format!(
                "search|{q}|{}|{offset}|{limit}",
                toolkit.as_deref().unwrap_or("")
            );
            let build = {
                let view = view.clone();
                async move {
                    let (results, total) = view.search_index().search(
                        &crate::search::Query::new(&q)
                            .toolkit(toolkit.as_deref())
                            .offset(offset)
                            .limit(limit),
                    );
                    let next = offset + results.len();
                    let answer = SearchAnswer {
                        next_cursor: (next < total).then(|| cursor_value("o", &next.to_string())),
                        results,
                    };
                    Ok((
                        serde_json::to_vec(&answer).expect("results serialize"),
                        true,
                    ))
                }
            };
            answer_from_meta(&s, &headers, &view, read.stale, &what, build).await
        }
        _ => Err(ApiError::BadRequest(
            "pass either slugs (batch get) or q (search)".into(),
        )),
    }
}

/// The tools of a batch, located through the index, in the order asked, and
/// whether every one came from the object the index describes.
async fn batch(
    s: &ReadState,
    view: &MetaView,
    wanted: Vec<String>,
    requested: Option<Requested>,
) -> Result<(Vec<u8>, bool), ReadError> {
    let mut found: Vec<axum::body::Bytes> = Vec::new();
    let mut unknown = Vec::new();
    let mut all_indexed = true;
    for slug in &wanted {
        match view.locate(slug) {
            Some((entry, index)) => match s.reader.tool(entry, index, Encoding::Identity).await? {
                Some((tool, indexed)) => {
                    all_indexed &= indexed;
                    found.push(tool)
                }
                None => unknown.push(slug.clone()),
            },
            None => unknown.push(slug.clone()),
        }
    }
    let corrupt = |e: serde_json::Error| ReadError::Corrupt {
        key: "a tool".into(),
        detail: e.to_string(),
    };
    let body = match requested {
        None => {
            // The stored tool objects as they are, side by side.
            let mut body = b"{\"tools\":[".to_vec();
            for (i, tool) in found.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(tool);
            }
            body.extend_from_slice(b"],\"unknown\":");
            serde_json::to_writer(&mut body, &unknown).expect("strings serialize");
            body.push(b'}');
            body
        }
        Some(requested) => {
            let tools: Vec<CachedToolSchema> = found
                .iter()
                .map(|t| serde_json::from_slice(t))
                .collect::<Result<_, _>>()
                .map_err(corrupt)?;
            bundle_bytes(&tools, requested, Some(&unknown)).map_err(|e| ReadError::Corrupt {
                key: "a bundle".into(),
                detail: e.to_string(),
            })?
        }
    };
    Ok((body, all_indexed))
}

/// `GET /changes`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// Changes published after this time (RFC 3339, e.g. `2026-11-01T00:00:00Z`).
    since: Option<String>,
    /// Only this toolkit's changes.
    toolkit: Option<String>,
    /// Changes per page (1 to 1000, default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedChange {
    pub sync_id: String,
    /// When the sync that saw it published.
    pub at: String,
    pub toolkit: String,
    pub tool: String,
    pub kind: ChangeKind,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesAnswer {
    /// Oldest first.
    pub changes: Vec<FeedChange>,
    /// Where the next page starts; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// What changed in the cache since a time: tools added, removed, changed
/// (name, description or a schema) or deprecated, sync by sync.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/changes",
    tag = "agents",
    params(ChangesParams),
    responses(
        (status = 200, description = "The changes, oldest first", body = ChangesAnswer),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "A missing or bad since, limit or cursor", body = ErrorAnswer),
        (status = 500, description = "A change record is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
async fn changes(
    State(s): State<ReadState>,
    Params(params): Params<ChangesParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = params
        .since
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("since is required (RFC 3339)".into()))?;
    let since = humantime::parse_rfc3339_weak(since)
        .map(timestamp)
        .map_err(|_| ApiError::BadRequest(format!("since is not an RFC 3339 time: {since:?}")))?;
    let limit = match params.limit {
        None => 500,
        Some(n @ 1..=1000) => n as usize,
        Some(_) => return Err(ApiError::BadRequest("limit must be 1 to 1000".into())),
    };
    // A cursor names the record and the position in it where the page starts.
    let start = match params.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let raw = cursor_of("c", cursor)?;
            let (name, index) = raw
                .rsplit_once('|')
                .and_then(|(n, i)| Some((ChangesName::parse(n)?, i.parse::<usize>().ok()?)))
                .ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?;
            Some((name, index))
        }
    };
    let read = s.reader.meta().await?;
    let view = read
        .view
        .unwrap_or_else(|| std::sync::Arc::new(MetaView::empty()));
    let toolkit = params.toolkit.clone();
    let what = format!(
        "changes|{since}|{}|{limit}|{}",
        toolkit.as_deref().unwrap_or(""),
        params.cursor.as_deref().unwrap_or("")
    );
    let build = {
        let s = s.clone();
        let view = view.clone();
        async move {
            let (names, complete) = s.reader.change_records(&view).await?;
            let mut changes = Vec::new();
            let mut next = None;
            'records: for name in names.iter().filter(|n| n.at() > since.as_str()) {
                let skip = match &start {
                    Some((from, _)) if name < from => continue,
                    Some((from, index)) if name == from => *index,
                    _ => 0,
                };
                let Some(body) = s.reader.change_record(name).await? else {
                    continue;
                };
                let record: ChangeRecord =
                    serde_json::from_slice(&body).map_err(|e| ReadError::Corrupt {
                        key: name.as_str().to_owned(),
                        detail: e.to_string(),
                    })?;
                for (i, change) in record.changes.into_iter().enumerate().skip(skip) {
                    if toolkit.as_deref().is_some_and(|t| t != change.toolkit) {
                        continue;
                    }
                    if changes.len() == limit {
                        next = Some(cursor_value("c", &format!("{}|{i}", name.as_str())));
                        break 'records;
                    }
                    changes.push(FeedChange {
                        sync_id: record.sync_id.clone(),
                        at: record.at.clone(),
                        toolkit: change.toolkit,
                        tool: change.tool,
                        kind: change.kind,
                        from_version: change.from_version,
                        to_version: change.to_version,
                    });
                }
            }
            let answer = ChangesAnswer {
                changes,
                next_cursor: next,
            };
            // Without this meta's own record yet: not kept, not tagged as complete.
            Ok((
                serde_json::to_vec(&answer).expect("changes serialize"),
                complete,
            ))
        }
    };
    answer_from_meta(&s, &headers, &view, read.stale, &what, build).await
}
