//! One axum router for every route, used by `serve`, the read Lambda and the
//! sync Lambda alike. The OpenAPI document is generated from the handlers'
//! annotations and the answers' types, so a route cannot exist undocumented.
//! Errors are JSON `{error}` with a status that fits, never cached.

mod agent_routes;
mod answer;
mod extract;
mod reader;
mod representation;
mod routes;
mod sync_routes;
mod trigger_routes;

pub use answer::{bundle_bytes, requested, Requested};
pub use reader::{
    decode_cursor, encode_cursor, CacheReader, ListRoute, MetaRead, MetaView, Page, ReadError,
    ReaderConfig, DEFAULT_MAX_ANSWER_BYTES, DEFAULT_MAX_CONVERT_TIME, DEFAULT_OUT_OF_TIME_RETRY,
};
pub use representation::{escaped_len, Encoding, STALE_HEADER};
pub use routes::{StatusAnswer, Verdict};
pub use sync_routes::{SyncBudget, SyncOptions};

use crate::agent::BundleError;
use crate::sync::{SyncError, Syncer};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use std::sync::Arc;
use utoipa::OpenApi;

pub const BASE: &str = "/api/connections/schemas/composio";
/// `Cache-Control` of read answers unless `READ_CACHE_CONTROL` says otherwise.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=60, stale-while-revalidate=600";

/// A listener whose connections send at once: with Nagle's algorithm a
/// large answer's last segment waits for a delayed ACK, up to 40 ms on Linux.
pub fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    })
}

/// An error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorAnswer {
    pub error: String,
}

/// A sync is already running.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BusyAnswer {
    pub error: String,
    pub success: bool,
    pub held_by: String,
    pub since: String,
    pub expires_at: String,
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
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) | Self::Read(ReadError::Removed(_)) => StatusCode::NOT_FOUND,
            Self::Sync(SyncError::Busy(_)) => StatusCode::CONFLICT,
            Self::Sync(SyncError::Store(_)) | Self::SyncNotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Read(ReadError::Store(_) | ReadError::Missing(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Read(
                ReadError::TooLarge { .. }
                | ReadError::Bundle(BundleError::TooLarge { .. } | BundleError::OutOfTime { .. }),
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Read(ReadError::Bundle(BundleError::StrictUnsupported(_))) => {
                StatusCode::BAD_REQUEST
            }
            // Nobody waits for this answer any more; a status for the record.
            Self::Read(ReadError::Bundle(BundleError::Abandoned)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Read(ReadError::Corrupt { .. }) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        // What a client reads: no store internals, no detail that could carry a secret.
        let message = match &self {
            Self::Sync(SyncError::Store(e)) => {
                tracing::error!(error = %e, "could not take the sync lease");
                "the cache store is unavailable; no sync was started".to_owned()
            }
            Self::Read(ReadError::Store(e)) => {
                tracing::error!(error = %e, "cache store unavailable");
                "the cache store is unavailable; try again shortly".to_owned()
            }
            Self::Read(e @ ReadError::Corrupt { .. }) => {
                tracing::error!(error = %e, "corrupt cache object");
                "a cached object is unreadable; a new sync will replace it".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = match &self {
            Self::Sync(SyncError::Busy(lease)) => (
                status,
                axum::Json(BusyAnswer {
                    error: message,
                    success: false,
                    held_by: lease.owner.clone(),
                    since: lease.acquired_at.clone(),
                    expires_at: lease.expires_at.clone(),
                }),
            )
                .into_response(),
            _ => (status, axum::Json(ErrorAnswer { error: message })).into_response(),
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "composio-schema-cache",
        description = "Composio tool schemas, served from a cache kept fresh by a sync. Read answers carry a strong ETag, Last-Modified and Cache-Control, are compressed (gzip, br) when the client accepts it, and list answers are paged (limit, cursor, nextCursor) when asked or when too large for one Lambda response."
    ),
    tags(
        (name = "read", description = "The cache, as the replaced system served it, plus additions"),
        (name = "sync", description = "Refresh the cache from Composio"),
        (name = "agents", description = "Provider-ready tools, batch get, search and the change feed, all from the cache")
    ),
    paths(
        routes::root,
        routes::toolkits,
        routes::toolkit,
        routes::tool,
        routes::status,
        routes::openapi,
        sync_routes::start_sync,
        trigger_routes::triggers,
        trigger_routes::trigger,
        agent_routes::tools,
        agent_routes::changes,
        agent_routes::resolve,
    )
)]
struct ApiDoc;

/// The document the routes serve, as committed: generating it at run time
/// would link utoipa's builders for every path and type into both
/// bootstraps (0.53 MB of the read one's 10 MB budget). A test checks it is
/// what [`openapi_document`] generates from the handlers and types.
pub const OPENAPI_JSON: &[u8] = include_bytes!("openapi.json");

/// The OpenAPI document, generated from the handlers and their types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    optional_sync_body(&mut api);
    api
}

/// Everything the router needs, built once.
pub struct RouterParts {
    pub reader: Arc<CacheReader>,
    /// `None` where no key is configured: `POST /sync` then answers 503 naming the key.
    pub sync: Option<Arc<dyn Syncer>>,
    pub cache_control: HeaderValue,
}

/// The routes and the document that describes them.
/// `POST /sync` takes no body as well as `{}`: said as `required: false`, so
/// clients generated from the document (openapi-python-client) may omit it,
/// where `oneOf [SyncOptions, null]` made them send an unset value.
fn optional_sync_body(api: &mut utoipa::openapi::OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let body = item.post.as_mut().and_then(|op| op.request_body.as_mut());
        if let (true, Some(utoipa::openapi::RefOr::T(body))) = (path.ends_with("/sync"), body) {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// The routes and the document that describes them (generated: for tests
/// and tools; the routes serve [`OPENAPI_JSON`]).
pub fn router_and_doc(parts: RouterParts) -> (Router, utoipa::openapi::OpenApi) {
    (router_from(parts), openapi_document())
}

/// Every route, over `parts`.
pub fn router_from(parts: RouterParts) -> Router {
    let read_state = answer::ReadState {
        reader: parts.reader,
        cache_control: parts.cache_control,
        doc: Arc::new(representation::FixedAnswer::new(
            axum::body::Bytes::from_static(OPENAPI_JSON),
            std::time::SystemTime::now(),
        )),
    };
    let metered = read_state.reader.clone();
    let read_metrics = axum::middleware::from_fn(move |request, next| {
        read_metrics(metered.clone(), request, next)
    });
    let router = Router::new()
        .merge(routes::read_routes(read_state.clone()).route_layer(read_metrics.clone()))
        .merge(trigger_routes::trigger_routes(read_state.clone()).route_layer(read_metrics.clone()))
        .merge(agent_routes::agent_routes(read_state).route_layer(read_metrics))
        .merge(sync_routes::sync_routes(parts.sync));
    // The fallbacks before the layer: an unknown route or a wrong method is
    // an answer like any other, with its request id.
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            let mut response = (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(ErrorAnswer {
                    error: "method not allowed on this route".into(),
                }),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        })
        .layer(axum::middleware::from_fn(request_span))
}

/// The request id a Lambda invocation carries, set by the Lambda edge.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Every log line of a request carries its id: the Lambda invocation's, else
/// the client's `x-request-id`, else a new one. The answer names it too.
async fn request_span(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .or_else(|| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", requestId = %id, method = %request.method(), path = %request.uri().path());
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Read latency, cache hits and misses and the cache's age, as metrics.
async fn read_metrics(
    reader: Arc<CacheReader>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::telemetry::record_read(
        started.elapsed(),
        || reader.cache_counts(),
        || reader.held_meta_age(),
    );
    response
}

/// The routes, with the default `Cache-Control`.
pub fn router(reader: Arc<CacheReader>, sync: Option<Arc<dyn Syncer>>) -> Router {
    router_from(RouterParts {
        reader,
        sync,
        cache_control: HeaderValue::from_static(DEFAULT_CACHE_CONTROL),
    })
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    /// `UPDATE_OPENAPI=1 cargo test --lib served_document` writes it anew.
    #[test]
    fn the_served_document_is_the_one_the_handlers_generate() {
        let generated = serde_json::to_value(super::openapi_document()).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let mut json = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
            let mut writer = serde_json::Serializer::with_formatter(&mut json, formatter);
            serde::Serialize::serialize(&generated, &mut writer).unwrap();
            json.push(b'\n');
            std::fs::write(path, json).unwrap();
            return;
        }
        let served: serde_json::Value = serde_json::from_slice(super::OPENAPI_JSON).unwrap();
        assert!(
            served == generated,
            "src/http/openapi.json is not what the handlers and types generate: \
             run `UPDATE_OPENAPI=1 cargo test --lib served_document` and commit the file"
        );
    }

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = super::without_nagle(listener);
        let client = tokio::net::TcpStream::connect(addr);
        let ((stream, _), client) = tokio::join!(listener.accept(), client);
        let _client = client.unwrap();
        assert!(stream.nodelay().unwrap());
    }
}
