//! What agents ask of the cache beyond the replaced system's routes: tools
//! in a model provider's format, several tools at once, search, and what
//! changed. All from the cache; none of it calls Composio.

use super::answer::{
    bundle_bytes, conditional, requested, unindexed_etag, BundleAnswer, ReadState, Requested,
};
use super::extract::{toolkit_slug, Params};
use super::reader::{MetaView, ReadError};
use super::representation::{Encoding, Validators};
use super::{ApiError, ErrorAnswer};
use crate::agent::Hit;
use crate::cache::changes::{ChangeKind, ChangeRecord};
use crate::cache::{content_hash, timestamp, CachedToolSchema, ToolSlug};
use crate::store::ChangesName;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn agent_routes(state: ReadState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(tools))
        .routes(routes!(changes))
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
    /// Search only: only this toolkit's tools (a toolkit slug; 404 if the cache does not hold it).
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
        (status = 400, description = "Neither or both of `slugs` and `q`, more than 128 slugs, a bad format, limit, cursor or toolkit slug", body = ErrorAnswer),
        (status = 404, description = "Search: the `toolkit` is not in the cache", body = ErrorAnswer),
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
            let toolkit = params.toolkit.as_deref().map(toolkit_slug).transpose()?;
            if let Some(slug) = toolkit.as_ref().filter(|t| view.entry(t).is_none()) {
                // The index holds exactly the meta's toolkits: say so rather
                // than answer an empty list that looks like "no match".
                return Err(ApiError::NotFound(format!(
                    "toolkit {slug} is not in the cache"
                )));
            }
            let toolkit = toolkit.map(|t| t.as_str().to_owned());
            let q: String = q.chars().take(500).collect();
            let what = format!(
                "search|{q}|{}|{offset}|{limit}",
                toolkit.as_deref().unwrap_or("")
            );
            let build = {
                let view = view.clone();
                async move {
                    let (results, total) =
                        view.search_index()
                            .search(&q, toolkit.as_deref(), offset, limit);
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
        (status = 400, description = "A missing or bad since, limit, cursor or toolkit slug", body = ErrorAnswer),
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
