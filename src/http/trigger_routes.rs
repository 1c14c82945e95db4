//! Trigger types: the events a connected app can push, each with the schema
//! of what setting one up takes (`config`) and of what it delivers
//! (`payload`). Listed from the meta; one is cut out of its toolkit's object
//! by the index's byte range, like a tool.

use super::answer::{answer_from_meta, conditional, unindexed_etag, ReadState};
use super::extract::{toolkit_slug, Params, TriggerPath};
use super::reader::{build_trigger_list, MetaView, TriggerPage, TriggerSummary};
use super::representation::Validators;
use super::{ApiError, ErrorAnswer};
use crate::cache::CachedTriggerType;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

pub fn trigger_routes(state: ReadState) -> axum::Router {
    let base = super::BASE;
    axum::Router::new()
        .route(&format!("{base}/triggers"), axum::routing::get(triggers))
        .route(
            &format!("{base}/triggers/{{trigger}}"),
            axum::routing::get(trigger),
        )
        .with_state(state)
}

/// `GET /triggers`: filter and paging.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TriggersParams {
    /// Only this toolkit's trigger types (404 if the cache does not hold it).
    toolkit: Option<String>,
    /// Trigger types per page. Without it, all of them, unless they would
    /// not fit in one Lambda response: then the answer is paged.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page (opaque).
    cursor: Option<String>,
}

/// `GET /triggers`' answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggersAnswer<'a> {
    /// When the published cache was synced; `""` before the first sync.
    pub last_synced_at: &'a str,
    pub triggers: Vec<TriggerSummary<'a>>,
    /// Where the next page starts; `null` on the last one.
    pub next_cursor: Option<String>,
}

const CURSOR_PREFIX: &str = "trigger-after:";

fn encode_cursor(place: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{place}"))
}

fn decode_cursor(cursor: &str, view: &MetaView) -> Result<usize, ApiError> {
    use base64::Engine;
    let bad = || ApiError::BadRequest("invalid cursor: pass a nextCursor this API gave".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let place: usize = text
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    // A cursor of an older meta past this one's end: an empty last page.
    Ok(place.min(view.trigger_index().order.len()))
}

/// Every trigger type in the cache, or one toolkit's.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/triggers",
    tag = "read",
    params(TriggersParams),
    responses(
        (status = 200, description = "Trigger types, from the meta alone: `{lastSyncedAt, triggers: [{slug, name, description, type, toolkitSlug}], nextCursor}`", body = TriggersAnswer),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Bad toolkit slug, limit, cursor or query parameter", body = ErrorAnswer),
        (status = 404, description = "The `toolkit` is not in the cache", body = ErrorAnswer),
        (status = 500, description = "The published meta is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn triggers(
    State(s): State<ReadState>,
    Params(params): Params<TriggersParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = s.reader.meta().await?;
    let view = read.view.unwrap_or_else(|| Arc::new(MetaView::empty()));
    let limit = match params.limit {
        None => None,
        Some(n @ 1..=1000) => Some(n as usize),
        Some(_) => return Err(ApiError::BadRequest("limit must be 1 to 1000".into())),
    };
    let toolkit = params.toolkit.as_deref().map(toolkit_slug).transpose()?;
    if let Some(slug) = toolkit.as_ref().filter(|t| view.entry(t).is_none()) {
        return Err(ApiError::NotFound(format!(
            "toolkit {slug} is not in the cache"
        )));
    }
    let after = params
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, &view))
        .transpose()?;
    let what = format!(
        "triggers|{}|{}|{}",
        toolkit.as_ref().map(|t| t.as_str()).unwrap_or(""),
        after.map(|a| a.to_string()).unwrap_or_default(),
        limit.map(|l| l.to_string()).unwrap_or_default()
    );
    let max_bytes = s.reader.config().max_answer_bytes;
    let build = {
        let view = view.clone();
        async move {
            let page = TriggerPage {
                toolkit: toolkit.as_ref(),
                after,
                limit,
            };
            Ok((
                build_trigger_list(&view, &page, max_bytes, encode_cursor),
                true,
            ))
        }
    };
    answer_from_meta(&s, &headers, &view, read.stale, &what, build).await
}

/// One trigger type: `{slug, name, description, instructions, type, toolkitSlug, version, config, payload}`.
#[utoipa::path(
    get,
    path = "/api/connections/schemas/composio/triggers/{trigger}",
    tag = "read",
    params(
        ("trigger" = String, Path, description = "Trigger type slug, `[A-Za-z0-9_-]{1,200}`", pattern = "^[A-Za-z0-9_-]{1,200}$"),
    ),
    responses(
        (status = 200, description = "The trigger type, `config` and `payload` exactly as Composio gave them", body = CachedTriggerType),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Invalid slug or a query parameter", body = ErrorAnswer),
        (status = 404, description = "No such trigger type in the cache", body = ErrorAnswer),
        (status = 500, description = "A cached object is unreadable", body = ErrorAnswer),
        (status = 503, description = "The store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn trigger(
    State(s): State<ReadState>,
    TriggerPath(slug): TriggerPath,
    _: super::extract::NoQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = s.reader.meta().await?;
    let not_found = || {
        ApiError::NotFound(format!(
            "trigger type {} is not in the cache",
            slug.as_str()
        ))
    };
    let view = read.view.as_ref().ok_or_else(not_found)?;
    let (entry, index) = view.locate_trigger(slug.as_str()).ok_or_else(not_found)?;
    let validators = Validators {
        etag: format!(
            "{}-t{index}",
            entry.content_hash.chars().take(32).collect::<String>()
        ),
        last_modified: humantime::parse_rfc3339_weak(&entry.synced_at).ok(),
    };
    let (s, not_found) = (&s, &not_found);
    conditional(s, &headers, read.stale, validators, |encoding| async move {
        let (body, indexed) = s
            .reader
            .trigger(entry, index, encoding)
            .await?
            .ok_or_else(not_found)?;
        let etag = (!indexed).then(|| unindexed_etag(&body));
        Ok((body, etag))
    })
    .await
}
