//! The sync routes: their own sub-router with their own state (the engine,
//! or nothing where no key is configured).

use super::{ApiError, BusyAnswer, ErrorAnswer};
use crate::sync::{SyncReport, SyncRequest, Syncer};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;

/// A sync request says at most `{"full": true, "allowShrink": true}`.
const MAX_SYNC_BODY: usize = 4 * 1024;

#[derive(Clone)]
pub(super) struct SyncState {
    engine: Option<Arc<dyn Syncer>>,
}

pub fn sync_routes(engine: Option<Arc<dyn Syncer>>) -> axum::Router {
    axum::Router::new()
        .route(
            &format!("{}/sync", super::BASE),
            axum::routing::post(start_sync),
        )
        .layer(DefaultBodyLimit::max(MAX_SYNC_BODY))
        .with_state(SyncState { engine })
}

/// What a sync request may ask: `{"full": true, "allowShrink": true}`.
#[derive(serde::Deserialize, Default, Debug, Clone, Copy, PartialEq, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncOptions {
    /// Refetch every toolkit, whatever the listing says.
    #[serde(default)]
    pub full: bool,
    /// Publish even if the sync drops more than `SYNC_MAX_SHRINK` of the published toolkits.
    #[serde(default)]
    pub allow_shrink: bool,
}

/// How long a sync may run before it must publish: set by the Lambda entry
/// from the invocation's deadline, as a request extension no caller can forge.
#[derive(Debug, Clone, Copy)]
pub struct SyncBudget(pub std::time::Duration);

/// What a sync request asks for: `?full=true&allowShrink=true` or the same as a JSON body.
fn parse_sync_request(
    query: &Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SyncOptions, ApiError> {
    let mut options = SyncOptions::default();
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let flag = match name {
            "full" => &mut options.full,
            "allowShrink" => &mut options.allow_shrink,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter: {}",
                    name.chars().take(100).collect::<String>()
                )))
            }
        };
        *flag = match value {
            "true" | "1" | "" => true,
            "false" | "0" => false,
            v => {
                return Err(ApiError::BadRequest(format!(
                    "{name} must be true or false, not {:?}",
                    v.chars().take(100).collect::<String>()
                )))
            }
        };
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(options);
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !json_type {
        return Err(ApiError::UnsupportedMediaType);
    }
    // `null` is the documented "no options" as much as an empty body.
    let parsed: Option<SyncOptions> = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be {{}} or {{\"full\": true, \"allowShrink\": true}}: {e}"
        ))
    })?;
    let parsed = parsed.unwrap_or_default();
    Ok(SyncOptions {
        full: options.full || parsed.full,
        allow_shrink: options.allow_shrink || parsed.allow_shrink,
    })
}

/// Runs a sync now (incremental unless `full`).
#[utoipa::path(
    post,
    path = "/api/connections/schemas/composio/sync",
    tag = "sync",
    params(
        ("full" = Option<bool>, Query, description = "Refetch every toolkit"),
        ("allowShrink" = Option<bool>, Query, description = "Publish even if more than SYNC_MAX_SHRINK of the toolkits would go"),
    ),
    request_body(content = SyncOptions, description = "`{}` or `{\"full\": true, \"allowShrink\": true}`; optional: no body is `{}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Synced and published", body = SyncReport),
        (status = 400, description = "A bad parameter or body", body = ErrorAnswer),
        (status = 409, description = "A sync is already running", body = BusyAnswer),
        (status = 413, description = "The body is over 4 KiB", body = ErrorAnswer),
        (status = 415, description = "The body is not JSON", body = ErrorAnswer),
        (status = 500, description = "Nothing was published (`success: false`, `message` says why)", body = SyncReport),
        (status = 503, description = "No key is configured, or the store cannot be reached", body = ErrorAnswer),
    )
)]
pub(super) async fn start_sync(
    State(s): State<SyncState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    budget: Option<Extension<SyncBudget>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_SYNC_BODY)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let options = parse_sync_request(&q, &headers, &body)?;
    let engine = s.engine.clone().ok_or(ApiError::SyncNotConfigured)?;
    let request = SyncRequest {
        full: options.full,
        allow_shrink: options.allow_shrink,
        deadline: budget.map(|Extension(SyncBudget(b))| Instant::now() + b),
    };
    // Its own task: a client that hangs up must not cancel a sync half-way.
    let report = tokio::spawn(async move { engine.sync(request).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the sync task failed: {e}")))??;
    let status = if report.success {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut response = (status, axum::Json(report)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sync_requests() {
        let json = {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            h
        };
        let none = HeaderMap::new();
        let opts = |full, allow_shrink| SyncOptions { full, allow_shrink };
        assert_eq!(
            parse_sync_request(&None, &none, b"").unwrap(),
            opts(false, false)
        );
        assert_eq!(
            parse_sync_request(&Some("full=true".into()), &none, b"").unwrap(),
            opts(true, false)
        );
        assert_eq!(
            parse_sync_request(&Some("allowShrink=1".into()), &none, b"").unwrap(),
            opts(false, true)
        );
        assert_eq!(
            parse_sync_request(&None, &json, br#"{"full": true}"#).unwrap(),
            opts(true, false)
        );
        assert_eq!(
            parse_sync_request(&None, &json, br#"{"allowShrink": true}"#).unwrap(),
            opts(false, true)
        );
        assert_eq!(
            parse_sync_request(&None, &json, b"{}").unwrap(),
            opts(false, false)
        );
        assert!(matches!(
            parse_sync_request(&None, &none, b"{}"),
            Err(ApiError::UnsupportedMediaType)
        ));
        assert!(matches!(
            parse_sync_request(&None, &json, b"{\"full\": tr"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_sync_request(&None, &json, b"{\"full\": true, \"x\": 1}"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_sync_request(&Some("x=1".into()), &none, b""),
            Err(ApiError::BadRequest(_))
        ));
    }
}
