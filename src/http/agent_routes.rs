//! What agents ask of the cache beyond the replaced system's routes: tools
//! in a model provider's format, several tools at once, search, and what
//! changed. All from the cache; none of it calls Composio.

use super::answer::{
    answer_from_meta, bundle_bytes, bundle_of, requested, BundleAnswer, ReadState, Requested,
};
use super::extract::{toolkit_slug, Params};
use super::reader::{MetaView, ReadError};
use super::representation::Encoding;
use super::{ApiError, ErrorAnswer};
use crate::agent::{Bundle, Format};
use crate::cache::changes::{ChangeKind, ChangeRecord};
use crate::cache::{timestamp, CachedToolSchema, ToolSlug};
use crate::search::Hit;
use crate::store::ChangesName;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use utoipa::{IntoParams, ToSchema};

pub fn agent_routes(state: ReadState) -> axum::Router {
    let base = super::BASE;
    axum::Router::new()
        .route(&format!("{base}/tools"), axum::routing::get(tools))
        .route(&format!("{base}/changes"), axum::routing::get(changes))
        .route(&format!("{base}/resolve"), axum::routing::post(resolve))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RESOLVE_BODY))
        .with_state(state)
}

/// `GET /tools`' answer: a batch, a batch as a bundle, or search results.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents an answer whose body is built as bytes.
pub enum ToolsAnswer {
    Batch(BatchAnswer),
    Bundle(BundleAnswer),
    Search(SearchAnswer),
    SearchBundle(SearchBundleAnswer),
}

/// `GET /tools`: batch get (`slugs`) or search (`q`).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ToolsParams {
    /// Batch get: comma-separated tool slugs, at most 128, across toolkits.
    slugs: Option<String>,
    /// Search: a request as a person or an agent phrases it ("add a task to my todo list").
    q: Option<String>,
    /// Search only: only this toolkit's tools (a toolkit slug; 404 if the cache does not hold it).
    toolkit: Option<String>,
    /// Search only: results per page (1 to 100, default 20); with `format`, the
    /// number of tools in the bundle.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Search only: the `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Search only: `tool` (the default) or `trigger` (trigger types: see
    /// `GET /triggers/{slug}`; no `format`).
    kind: Option<String>,
    /// Answer a bundle in this provider format (a batch's tools, or a search's top `limit`).
    format: Option<String>,
    /// With `format=openai` or `openai-responses`: OpenAI strict mode.
    strict: Option<bool>,
    /// With `format=anthropic` or `openai-responses`: tools marked `defer_loading: true`.
    defer: Option<bool>,
    /// Search with `format`: add `searchResult`, what a client-implemented
    /// search tool returns to the model in the provider's convention.
    #[serde(rename = "searchResult")]
    #[param(rename = "searchResult")]
    search_result: Option<bool>,
    /// With `searchResult`: the id of the model's search call, echoed in the result.
    #[serde(rename = "callId")]
    #[param(rename = "callId")]
    call_id: Option<String>,
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

/// A search answered as a provider bundle of its top tools.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchBundleAnswer {
    #[serde(flatten)]
    pub bundle: BundleAnswer,
    /// The ranked results the bundle holds, best first.
    pub results: Vec<Hit>,
    /// With `searchResult=true`: what a client-implemented search tool returns
    /// to the model. anthropic: a `tool_result` block of `tool_reference`s;
    /// openai-responses: a `tool_search_output` item with the tools; openai:
    /// a `role: tool` message; gemini: a `functionResponse` part; mcp: a
    /// `tools/call` result. Send `tools` with the next request (anthropic:
    /// deferred, with `defer=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub search_result: Option<serde_json::Value>,
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

/// Several tools at once, or a search.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/tools",
    tag = "agents",
    params(ToolsParams),
    responses(
        (status = 200, description = "Batch get: the tools (or a provider bundle of them, with `unknown`); search: `{results, nextCursor}`, or with `format` a bundle of the top `limit` tools with `results` (and `searchResult`)", body = ToolsAnswer),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Neither or both of `slugs` and `q`, more than 128 slugs, a bad format, limit, cursor or toolkit slug, `defer` or `searchResult` where they do not apply", body = ErrorAnswer),
        (status = 404, description = "Search: the `toolkit` is not in the cache", body = ErrorAnswer),
        (status = 422, description = "With `format`: the answer would be over what one answer may hold (5,000,000 bytes) or take to convert (10 s); the message names the limit and what to ask for instead", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn tools(
    State(s): State<ReadState>,
    Params(params): Params<ToolsParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = s.reader.meta().await?;
    let view = read
        .view
        .unwrap_or_else(|| std::sync::Arc::new(MetaView::empty()));
    let requested = requested(params.format.as_deref(), params.strict, params.defer)?;
    let search_result = params.search_result.unwrap_or(false);
    if (search_result || params.call_id.is_some()) && (requested.is_none() || params.q.is_none()) {
        return Err(ApiError::BadRequest(
            "searchResult and callId go with q (search) and a format".into(),
        ));
    }
    match (params.slugs.as_deref(), params.q.as_deref()) {
        (Some(slugs), None) => {
            if params.toolkit.is_some()
                || params.limit.is_some()
                || params.cursor.is_some()
                || params.kind.is_some()
            {
                return Err(ApiError::BadRequest(
                    "toolkit, limit, cursor and kind go with q (search), not with slugs".into(),
                ));
            }
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
            let call_id: String = params
                .call_id
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            let toolkit = params.toolkit.as_deref().map(toolkit_slug).transpose()?;
            if let Some(slug) = toolkit.as_ref().filter(|t| view.entry(t).is_none()) {
                // The index holds exactly the meta's toolkits: say so rather
                // than answer an empty list that looks like "no match".
                return Err(ApiError::NotFound(format!(
                    "toolkit {slug} is not in the cache"
                )));
            }
            let kind = match params.kind.as_deref() {
                None => crate::search::Kind::Tool,
                Some(raw) => raw.parse().map_err(ApiError::BadRequest)?,
            };
            if kind == crate::search::Kind::Trigger && requested.is_some() {
                return Err(ApiError::BadRequest(
                    "format bundles tools: search trigger types without it".into(),
                ));
            }
            let search = Search {
                q: q.chars().take(500).collect(),
                toolkit: toolkit.map(|t| t.as_str().to_owned()),
                kind,
                offset,
                limit,
            };
            let what = format!(
                "search|{}|{}|{}|{offset}|{limit}|{}|{}|{call_id}",
                search.q,
                kind.as_str(),
                search.toolkit.as_deref().unwrap_or(""),
                requested.map(|r| r.tag()).unwrap_or_default(),
                search_result,
            );
            let build = {
                let (s, view) = (s.clone(), view.clone());
                async move {
                    let (results, total) = search.run(&view);
                    let next = offset + results.len();
                    let next_cursor = (next < total).then(|| cursor_value("o", &next.to_string()));
                    let Some(requested) = requested else {
                        let answer = SearchAnswer {
                            next_cursor,
                            results,
                        };
                        return Ok((
                            serde_json::to_vec(&answer).expect("results serialize"),
                            true,
                        ));
                    };
                    let slugs: Vec<String> = results.iter().map(|h| h.slug.clone()).collect();
                    let (tools, indexed) = load_tools(&s, &view, &slugs).await?;
                    let body = s
                        .reader
                        .convert(move |limits| {
                            let bundle = bundle_of(&tools, requested, limits)?;
                            let result =
                                search_result.then(|| provider_search_result(&bundle, &call_id));
                            Ok(serde_json::to_vec(&SearchBundle {
                                bundle: &bundle,
                                results: &results,
                                next_cursor,
                                search_result: result,
                            })
                            .expect("a bundle serializes"))
                        })
                        .await?;
                    Ok((body, indexed))
                }
            };
            answer_from_meta(&s, &headers, &view, read.stale, &what, build).await
        }
        _ => Err(ApiError::BadRequest(
            "pass either slugs (batch get) or q (search)".into(),
        )),
    }
}

/// A search's words, filter and page.
struct Search {
    q: String,
    toolkit: Option<String>,
    kind: crate::search::Kind,
    offset: usize,
    limit: usize,
}

impl Search {
    fn run(&self, view: &MetaView) -> (Vec<Hit>, usize) {
        view.search_index().search(
            &crate::search::Query::new(&self.q)
                .toolkit(self.toolkit.as_deref())
                .kind(Some(self.kind))
                .offset(self.offset)
                .limit(self.limit),
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchBundle<'a> {
    #[serde(flatten)]
    bundle: &'a Bundle,
    results: &'a [Hit],
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search_result: Option<serde_json::Value>,
}

/// What a client-implemented search tool hands back to the model, in each
/// provider's current convention (see `SearchBundleAnswer`). The shapes are
/// checked against the providers' SDK types in tests/provider_sdks.py.
pub fn provider_search_result(bundle: &Bundle, call_id: &str) -> serde_json::Value {
    use serde_json::json;
    let names: Vec<&str> = bundle.tools.iter().filter_map(tool_name_of).collect();
    let summaries: Vec<serde_json::Value> = bundle
        .tools
        .iter()
        .map(|t| {
            let name = tool_name_of(t).unwrap_or_default();
            let description = tool_description_of(t).unwrap_or_default();
            json!({"name": name, "description": description})
        })
        .collect();
    match bundle.format {
        Format::Anthropic => json!({
            "type": "tool_result",
            "tool_use_id": call_id,
            "content": names.iter().map(|n| json!({"type": "tool_reference", "tool_name": n})).collect::<Vec<_>>(),
        }),
        Format::OpenAiResponses => json!({
            "type": "tool_search_output",
            "call_id": call_id,
            "execution": "client",
            "status": "completed",
            "tools": bundle.tools.iter().map(|t| {
                let mut t = t.clone();
                if let Some(o) = t.as_object_mut() { o.remove("defer_loading"); }
                t
            }).collect::<Vec<_>>(),
        }),
        Format::OpenAi => json!({
            "role": "tool",
            "tool_call_id": call_id,
            "content": serde_json::to_string(&json!({"tools": summaries})).expect("json"),
        }),
        Format::Gemini => json!({
            "functionResponse": {
                "id": call_id,
                "name": "search_tools",
                "response": {"tools": summaries},
            }
        }),
        Format::Mcp => json!({
            "content": [{"type": "text", "text": serde_json::to_string(&json!({"tools": summaries})).expect("json")}],
            "structuredContent": {"tools": summaries},
            "isError": false,
        }),
    }
}

/// A provider tool object's name, wherever the format keeps it.
fn tool_name_of(tool: &serde_json::Value) -> Option<&str> {
    tool.get("name")
        .or_else(|| tool.get("function").and_then(|f| f.get("name")))
        .and_then(|n| n.as_str())
}

fn tool_description_of(tool: &serde_json::Value) -> Option<&str> {
    tool.get("description")
        .or_else(|| tool.get("function").and_then(|f| f.get("description")))
        .and_then(|n| n.as_str())
}

/// The cached tools of `slugs` (those the index still locates), in order, and
/// whether every one came from the object the index describes.
async fn load_tools(
    s: &ReadState,
    view: &MetaView,
    slugs: &[String],
) -> Result<(Vec<CachedToolSchema>, bool), ReadError> {
    let mut tools = Vec::with_capacity(slugs.len());
    let mut all_indexed = true;
    for slug in slugs {
        let Some((entry, index)) = view.locate(slug) else {
            continue;
        };
        if let Some((bytes, indexed)) = s.reader.tool(entry, index, Encoding::Identity).await? {
            all_indexed &= indexed;
            let tool: CachedToolSchema =
                serde_json::from_slice(&bytes).map_err(|e| ReadError::Corrupt {
                    key: format!("tool {slug}"),
                    detail: e.to_string(),
                })?;
            tools.push(tool);
        }
    }
    Ok((tools, all_indexed))
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
            let unknown = unknown.clone();
            s.reader
                .convert(move |limits| bundle_bytes(&tools, requested, Some(&unknown), limits))
                .await?
        }
    };
    let limit = s.reader.max_answer_bytes();
    if body.len() > limit {
        let size = body.len();
        return Err(ReadError::TooLarge { size, limit });
    }
    Ok((body, all_indexed))
}

/// `GET /changes`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// Changes published after this time (RFC 3339 with any offset, e.g. `2026-11-01T00:00:00Z` or `2026-11-01T01:00:00+01:00`).
    since: Option<String>,
    /// Only this toolkit's changes (a toolkit slug; one that left the project keeps its history).
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
    /// The tool's slug, or the trigger type's when `subject` is `trigger`.
    pub tool: String,
    pub kind: ChangeKind,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    /// `trigger` for a trigger type's change (added, removed or changed);
    /// absent for a tool's.
    #[serde(
        default,
        skip_serializing_if = "crate::cache::changes::Subject::is_tool"
    )]
    pub subject: crate::cache::changes::Subject,
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
        (status = 400, description = "A missing or bad since, limit, cursor or toolkit slug", body = ErrorAnswer),
        (status = 500, description = "A change record is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn changes(
    State(s): State<ReadState>,
    Params(params): Params<ChangesParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = params
        .since
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("since is required (RFC 3339)".into()))?;
    let since = since_time(since)
        .map(timestamp)
        .ok_or_else(|| ApiError::BadRequest(format!("since is not an RFC 3339 time: {since:?}")))?;
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
    // History outlives the meta: a toolkit that left the project still has
    // its `removed` changes, so any well-formed slug is a filter, never a 404.
    let toolkit = params
        .toolkit
        .as_deref()
        .map(toolkit_slug)
        .transpose()?
        .map(|t| t.as_str().to_owned());
    let read = s.reader.meta().await?;
    let view = read
        .view
        .unwrap_or_else(|| std::sync::Arc::new(MetaView::empty()));
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
                        subject: change.subject,
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

/// The largest `POST /resolve` body: a model's arguments, generously.
pub const MAX_RESOLVE_BODY: usize = 1024 * 1024;

/// `POST /resolve`: a model's tool call, as it arrived.
#[allow(dead_code)] // Documents the body, which is parsed field by field to name the faulty one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The format the tools were sent in (`openai`, `openai-responses`, `anthropic`, `gemini`, `mcp`).
    pub format: String,
    /// The tool name the model called (a bundle's `nameMap` key).
    pub name: String,
    /// The model's arguments (an object; absent means `{}`).
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<serde_json::Value>,
    /// Whether the tools were sent with `strict=true` (OpenAI only).
    pub strict: Option<bool>,
}

/// The call to make to Composio.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolveAnswer {
    /// The Composio tool slug.
    pub tool_slug: String,
    /// The arguments with Composio's original property names restored.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
}

/// Maps a model's tool call back to Composio's names: what `argumentMap` and
/// `restore_arguments` do, for clients in any language.
#[utoipa::path(
    post,
    path = "/api/connections/schemas/composio/resolve",
    tag = "agents",
    request_body(content = ResolveRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The tool slug and the arguments to send to Composio", body = ResolveAnswer),
        (status = 400, description = "A malformed body: the error names the field", body = ErrorAnswer),
        (status = 404, description = "No cached tool is sent under that name", body = ErrorAnswer),
        (status = 413, description = "The body is over 1 MiB", body = ErrorAnswer),
        (status = 415, description = "The body is not JSON", body = ErrorAnswer),
        (status = 422, description = "With `format`: the answer would be over what one answer may hold (5,000,000 bytes) or take to convert (10 s); the message names the limit and what to ask for instead", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn resolve(
    State(s): State<ReadState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    use axum::response::IntoResponse;
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_RESOLVE_BODY)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let call = parse_resolve(&headers, &body)?;
    let read = s.reader.meta().await?;
    let view = read
        .view
        .unwrap_or_else(|| std::sync::Arc::new(MetaView::empty()));
    let not_sent = format!("no cached tool is sent as {:?}", call.name);
    let unknown = || ApiError::NotFound(not_sent.clone());
    let slug = view.slug_of_name(&call.name).ok_or_else(unknown)?;
    let (tools, _) = load_tools(&s, &view, &[slug.to_owned()]).await?;
    let ParsedCall {
        requested,
        name,
        arguments,
    } = call;
    let what = format!("resolve {slug} {}", requested.tag());
    let restored = s
        .reader
        .convert_named(&view, &what, move |limits| {
            let bundle = bundle_of(&tools, requested, limits)?;
            Ok(bundle.resolve_call(&name, arguments))
        })
        .await?
        .ok_or_else(unknown)?;
    let mut response = axum::Json(ResolveAnswer {
        tool_slug: restored.slug,
        arguments: restored.arguments,
    })
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

struct ParsedCall {
    requested: Requested,
    name: String,
    arguments: serde_json::Value,
}

/// The body of `POST /resolve`, every fault named by its field.
fn parse_resolve(headers: &HeaderMap, body: &[u8]) -> Result<ParsedCall, ApiError> {
    let json_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json_type {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bad = |m: String| ApiError::BadRequest(m);
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(bad(
            "body must be an object {\"format\", \"name\", \"arguments\"}".into(),
        ));
    };
    if let Some(extra) = fields
        .keys()
        .find(|k| !["format", "name", "arguments", "strict"].contains(&k.as_str()))
    {
        let extra: String = extra.chars().take(100).collect();
        return Err(bad(format!(
            "unknown field {extra:?}: the body takes format, name, arguments and strict"
        )));
    }
    let text = |fields: &mut serde_json::Map<String, serde_json::Value>, field: &str| match fields
        .remove(field)
    {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(bad(format!("{field} must be a string"))),
        None => Err(bad(format!("{field} is required"))),
    };
    let format = text(&mut fields, "format")?;
    let name = text(&mut fields, "name")?;
    let strict = match fields.remove("strict") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(_) => return Err(bad("strict must be true or false".into())),
    };
    let arguments = match fields.remove("arguments") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(v @ serde_json::Value::Object(_)) => v,
        // Some SDKs hand over the arguments as the JSON string the model wrote.
        Some(serde_json::Value::String(raw)) => match serde_json::from_str(&raw) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return Err(bad(
                    "arguments must be an object (or a JSON string of one)".into()
                ))
            }
        },
        Some(_) => return Err(bad("arguments must be an object".into())),
    };
    let requested = requested(Some(&format), strict, None)
        .map_err(|e| bad(format!("format: {e}")))?
        .expect("a format was given");
    Ok(ParsedCall {
        requested,
        name,
        arguments,
    })
}

/// `since` as a time: RFC 3339 with any offset (`Z`, `+01:00`, `-05:00`),
/// plus what was always accepted (no offset: UTC). A `+` a client left
/// unencoded arrives as a space, which RFC 3339 never has before an offset.
/// Clamped to what a change can carry (1970 to 9999).
fn since_time(raw: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    let repaired;
    let raw = match raw
        .len()
        .checked_sub(6)
        .and_then(|at| raw.split_at_checked(at))
    {
        Some((time, offset)) if offset.starts_with(' ') && is_offset(&offset[1..]) => {
            repaired = format!("{time}+{}", &offset[1..]);
            repaired.as_str()
        }
        _ => raw,
    };
    let at = match time::OffsetDateTime::parse(raw, &Rfc3339) {
        Ok(at) => SystemTime::from(at),
        Err(_) => humantime::parse_rfc3339_weak(raw).ok()?,
    };
    // humantime formats nothing before 1970 or after 9999.
    let latest = SystemTime::UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    Some(at.clamp(SystemTime::UNIX_EPOCH, latest))
}

fn is_offset(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Option<String> {
        since_time(raw).map(timestamp)
    }

    #[test]
    fn since_takes_every_rfc3339_offset() {
        let utc = Some("2026-11-01T00:00:00.000Z".to_owned());
        for same in [
            "2026-11-01T00:00:00Z",
            "2026-11-01T00:00:00+00:00",
            "2026-11-01T01:00:00+01:00",
            "2026-10-31T19:00:00-05:00",
            "2026-11-01t00:00:00z",
            "2026-11-01T01:00:00 01:00",
            "2026-11-01T00:00:00",
        ] {
            assert_eq!(at(same), utc, "{same}");
        }
        assert_eq!(
            at("2026-11-01T01:30:00.250+05:30"),
            Some("2026-10-31T20:00:00.250Z".to_owned())
        );
        for bad in [
            "yesterday",
            "",
            "2026-11-01",
            "2026-11-01T00:00:00+1",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_outside_what_a_change_can_carry_is_clamped_not_a_panic() {
        assert_eq!(
            at("1900-01-01T00:00:00Z"),
            Some("1970-01-01T00:00:00.000Z".to_owned())
        );
        for late in ["9999-12-31T23:59:60Z", "9999-12-31T23:59:59-23:59"] {
            assert_eq!(
                at(late),
                Some("9999-12-31T23:59:59.999Z".to_owned()),
                "{late}"
            );
        }
    }
}
