//! One axum router for every route, used by `serve`, the read Lambda and the
//! sync Lambda alike. Errors are JSON `{error}` with a status that fits.

mod reader;

pub use reader::{CacheReader, MetaView, ReadError, ToolkitView};

use crate::cache::{Slug, ToolSlug};
use crate::store::ObjectKey;
use crate::sync::{SyncEngine, SyncError, SyncRequest};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub const BASE: &str = "/api/connections/schemas/composio";
/// A sync request says at most `{"full": true}`.
const MAX_SYNC_BODY: usize = 4 * 1024;
pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Clone)]
pub struct AppState {
    reader: Arc<CacheReader>,
    sync: Option<SyncEngine>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("this server cannot sync: COMPOSIO_API_KEY is not set (set it, or the secret it comes from, and restart)")]
    SyncNotConfigured,
    #[error("request body is larger than {MAX_SYNC_BODY} bytes")]
    TooLarge,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"error": m})),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, json!({"error": m})),
            Self::Sync(SyncError::Busy(lease)) => (
                StatusCode::CONFLICT,
                json!({"error": self.to_string(), "success": false, "heldBy": lease.owner, "since": lease.acquired_at, "expiresAt": lease.expires_at}),
            ),
            Self::Sync(SyncError::Store(e)) => {
                tracing::error!(error = %e, "could not take the sync lease");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "the cache store is unavailable; no sync was started"}),
                )
            }
            Self::SyncNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": self.to_string()}),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": self.to_string()}),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": self.to_string()}),
            ),
            Self::Read(ReadError::Store(e)) => {
                tracing::error!(error = %e, "cache store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "the cache store is unavailable; try again shortly"}),
                )
            }
            Self::Read(e @ ReadError::Corrupt { .. }) => {
                tracing::error!(error = %e, "corrupt cache object");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "a cached object is unreadable; a new sync will replace it"}),
                )
            }
            Self::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": m})),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// The routes. `sync` is `None` where no key is configured: `POST /sync`
/// then answers 503 naming the missing key.
pub fn router(reader: Arc<CacheReader>, sync: Option<SyncEngine>) -> Router {
    let state = AppState { reader, sync };
    Router::new()
        .route(BASE, get(root))
        .route(&format!("{BASE}/toolkits"), get(toolkits))
        .route(&format!("{BASE}/toolkits/{{toolkit}}"), get(toolkit))
        .route(&format!("{BASE}/toolkits/{{toolkit}}/{{tool}}"), get(tool))
        .route(&format!("{BASE}/sync/status"), get(status))
        .route(&format!("{BASE}/openapi.json"), get(openapi))
        .route(
            &format!("{BASE}/sync"),
            axum::routing::post(start_sync).layer(DefaultBodyLimit::max(MAX_SYNC_BODY)),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"error": "method not allowed on this route"})),
            )
        })
        .with_state(state)
}

fn json_bytes(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Read routes take no query parameters: a typo must not pass silently.
fn no_query(query: &Option<String>) -> Result<(), ApiError> {
    match query.as_deref() {
        None | Some("") => Ok(()),
        Some(q) => {
            let names: Vec<&str> = q
                .split('&')
                .map(|p| p.split('=').next().unwrap_or(""))
                .collect();
            Err(ApiError::BadRequest(format!(
                "unknown query parameter(s): {}",
                names.join(", ").chars().take(200).collect::<String>()
            )))
        }
    }
}

fn toolkit_slug(raw: &str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|e| ApiError::BadRequest(format!("invalid toolkit slug: {e}")))
}

fn path_params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))
}

async fn root(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    no_query(&q)?;
    Ok(match s.reader.meta().await? {
        Some(view) => json_bytes(view.root()),
        None => axum::Json(json!({"lastSyncedAt": null, "toolkits": []})).into_response(),
    })
}

async fn toolkits(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    no_query(&q)?;
    Ok(match s.reader.meta().await? {
        Some(view) => json_bytes(view.toolkits()),
        None => axum::Json(json!({"lastSyncedAt": null, "toolkits": []})).into_response(),
    })
}

async fn toolkit(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let slug = toolkit_slug(&path_params(path)?)?;
    no_query(&q)?;
    match s.reader.toolkit(&slug).await? {
        Some(view) => Ok(json_bytes(view.body.clone())),
        None => Err(ApiError::NotFound(format!(
            "toolkit {slug} is not in the cache"
        ))),
    }
}

async fn tool(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (raw_toolkit, raw_tool) = path_params(path)?;
    let slug = toolkit_slug(&raw_toolkit)?;
    let tool_slug = ToolSlug::parse(&raw_tool)
        .map_err(|e| ApiError::BadRequest(format!("invalid tool slug: {e}")))?;
    no_query(&q)?;
    let Some(view) = s.reader.toolkit(&slug).await? else {
        return Err(ApiError::NotFound(format!(
            "toolkit {slug} is not in the cache"
        )));
    };
    let Some(t) = view.parsed.tool(tool_slug.as_str()) else {
        return Err(ApiError::NotFound(format!(
            "tool {} is not in toolkit {slug}",
            tool_slug.as_str()
        )));
    };
    Ok(axum::Json(json!({
        "slug": t.slug,
        "name": t.name,
        "description": t.description,
        "toolkitSlug": t.toolkit_slug,
        "inputParameters": t.input_parameters,
        "outputParameters": t.output_parameters,
        "tags": t.tags,
        "version": t.version,
        "isDeprecated": t.is_deprecated,
    }))
    .into_response())
}

async fn status(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    no_query(&q)?;
    let meta = s.reader.meta().await?;
    let last_run: Option<Value> = match s
        .reader
        .store()
        .get(&ObjectKey::LastRun)
        .await
        .map_err(ReadError::from)?
    {
        Some(o) => serde_json::from_slice(&o.body).ok(),
        None => None,
    };
    let published = meta.map(|v| {
        let m = &v.meta;
        json!({
            "lastSyncedAt": m.last_synced_at,
            "toolkitCount": m.toolkit_count,
            "totalToolCount": m.total_tool_count,
            "syncDurationMs": m.sync_duration_ms,
            "syncId": m.sync_id,
            "failed": m.failed,
            "stale": m.toolkits.iter().filter(|e| e.stale).map(|e| json!({"slug": e.slug, "syncedAt": e.synced_at, "lastError": e.last_error})).collect::<Vec<_>>(),
        })
    });
    Ok(axum::Json(json!({"meta": published, "lastRun": last_run})).into_response())
}

async fn openapi(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    no_query(&q)?;
    Ok(json_bytes(Bytes::from_static(OPENAPI.as_bytes())))
}

/// What a sync request may ask: `{"full": true, "allowShrink": true}`.
#[derive(serde::Deserialize, Default, Debug, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncOptions {
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub allow_shrink: bool,
}

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
    let parsed: SyncOptions = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be {{}} or {{\"full\": true, \"allowShrink\": true}}: {e}"
        ))
    })?;
    Ok(SyncOptions {
        full: options.full || parsed.full,
        allow_shrink: options.allow_shrink || parsed.allow_shrink,
    })
}

async fn start_sync(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    budget: Option<Extension<SyncBudget>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let options = parse_sync_request(&q, &headers, &body)?;
    let engine = s.sync.clone().ok_or(ApiError::SyncNotConfigured)?;
    let request = SyncRequest {
        full: options.full,
        allow_shrink: options.allow_shrink,
        deadline: budget.map(|Extension(SyncBudget(b))| Instant::now() + b),
    };
    // Its own task: a client that hangs up must not cancel a sync half-way.
    let report = tokio::spawn(async move { engine.run(request).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the sync task failed: {e}")))??;
    let status = if report.success {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok((status, axum::Json(report)).into_response())
}

/// How long a sync may run before it must publish: set by the Lambda entry
/// from the invocation's deadline, as a request extension no caller can forge.
#[derive(Debug, Clone, Copy)]
pub struct SyncBudget(pub std::time::Duration);

#[cfg(test)]
mod tests {
    use super::*;

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
