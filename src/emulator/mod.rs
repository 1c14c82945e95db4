//! A Composio v3 stand-in over real HTTP on 127.0.0.1, for `demo`, the tests
//! and the benchmark. Faithful where the sync cares (envelopes, cursors,
//! `toolkit_versions`, `important`, 400/401/404) and scriptable: latency,
//! page-size cap, a rate limit with 429 + `Retry-After`, per-toolkit faults.

// Handlers bail out early with a ready response; boxing it buys nothing in a test server.
#![allow(clippy::result_large_err)]

mod catalog;

pub use catalog::{Catalog, CatalogToolkit, BASE_VERSION};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What goes wrong for one toolkit.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// This status with the API's error envelope.
    Status(u16),
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 whose JSON has the wrong types (`items` is a string, `meta` a number).
    WrongTypes,
    /// A 200 whose body stops half-way (the connection drops).
    Truncated,
    /// The connection drops before any body byte.
    Reset,
    /// Answer this much later.
    Slow(Duration),
    /// A 200 padded past this many bytes.
    Oversize(usize),
    /// The detail names another toolkit.
    WrongSlug,
    /// The tool list holds one tool twice.
    DuplicateTool,
    /// The tool list holds a tool of another toolkit.
    ForeignTool,
}

/// Which call of a toolkit a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Details,
    Tools,
    Both,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: FaultTarget,
    /// Hits left; `None` = every call.
    pub times: Option<u32>,
}

impl Fault {
    pub fn always(kind: FaultKind, target: FaultTarget) -> Self {
        Self {
            kind,
            target,
            times: None,
        }
    }

    pub fn times(kind: FaultKind, target: FaultTarget, times: u32) -> Self {
        Self {
            kind,
            target,
            times: Some(times),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub catalog: Catalog,
    pub api_key: String,
    /// Largest page served, whatever `limit` asks.
    pub page_cap: usize,
    /// Added to every call.
    pub latency: Duration,
    /// Added per item served (models the cost of big pages).
    pub per_item: Duration,
    pub rate_limit: Option<RateLimit>,
    /// Toolkits in the project's auth configs (`None`: every toolkit that needs auth).
    pub auth_configs: Option<Vec<String>>,
}

impl EmulatorConfig {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            api_key: "emulator-key".into(),
            page_cap: 1000,
            latency: Duration::ZERO,
            per_item: Duration::ZERO,
            rate_limit: None,
            auth_configs: None,
        }
    }
}

/// Request counts, by route.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub by_route: BTreeMap<String, u64>,
    pub rate_limited: u64,
    pub unauthorized: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
}

struct Inner {
    config: EmulatorConfig,
    faults: HashMap<String, Fault>,
    /// Fault of the auth-config listing, then of the toolkit listing.
    listing_faults: HashMap<&'static str, Fault>,
    window_start: Instant,
    window_count: u32,
    in_flight: u64,
    stats: Stats,
}

#[derive(Clone)]
pub struct Emulator {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl Emulator {
    /// Serves on a free port of 127.0.0.1 until dropped by `stop`.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("valid"), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            config,
            faults: HashMap::new(),
            listing_faults: HashMap::new(),
            window_start: Instant::now(),
            window_count: 0,
            in_flight: 0,
            stats: Stats::default(),
        }));
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let app = Router::new()
            .route("/api/v3/auth_configs", get(auth_configs))
            .route("/api/v3/toolkits", get(toolkits))
            .route("/api/v3/toolkits/{slug}", get(toolkit))
            .route("/api/v3/tools", get(tools))
            .fallback(|| async { envelope(StatusCode::NOT_FOUND, "Route not found") })
            .with_state(inner.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.notified().await })
                .await;
        });
        Ok(Self {
            addr,
            inner,
            shutdown,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_key(&self) -> String {
        self.lock().config.api_key.clone()
    }

    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.lock().stats = Stats::default();
    }

    pub fn set_fault(&self, toolkit: &str, fault: Fault) {
        self.lock().faults.insert(toolkit.to_owned(), fault);
    }

    /// `route` is `"auth_configs"` or `"toolkits"`.
    pub fn set_listing_fault(&self, route: &'static str, fault: Fault) {
        self.lock().listing_faults.insert(route, fault);
    }

    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.listing_faults.clear();
    }

    pub fn set_page_cap(&self, cap: usize) {
        self.lock().config.page_cap = cap.max(1);
    }

    pub fn set_latency(&self, per_call: Duration, per_item: Duration) {
        let mut inner = self.lock();
        inner.config.latency = per_call;
        inner.config.per_item = per_item;
    }

    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let mut inner = self.lock();
        inner.config.rate_limit = limit;
        inner.window_start = Instant::now();
        inner.window_count = 0;
    }

    /// Replaces the project's auth configs.
    pub fn set_auth_configs(&self, slugs: Vec<String>) {
        self.lock().config.auth_configs = Some(slugs);
    }

    /// A new version of a toolkit: new version string, update time and one more tool.
    pub fn publish_new_version(&self, toolkit: &str) {
        let mut inner = self.lock();
        if let Some(t) = inner.config.catalog.toolkits.get_mut(toolkit) {
            let n = t.tools.len();
            t.version = format!("20260101_{:02}", n % 100);
            t.updated_at = "2026-01-01T00:00:00.000Z".into();
            let mut extra = t.tools.first().cloned().unwrap_or_else(|| json!({}));
            extra["slug"] = json!(format!("{}_ADDED_{n}", toolkit.to_uppercase()));
            extra["name"] = json!("Added in the new version");
            extra["toolkit"] = json!({"slug": toolkit, "name": t.name, "logo": t.logo});
            t.tools.push(extra);
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn envelope(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "code": status.as_u16(),
        "status": status.as_u16(),
        "request_id": format!("req_{}", uuid::Uuid::new_v4().simple()),
    }});
    (status, axum::Json(body)).into_response()
}

/// Counts the call, checks the key and the rate limit. `Err` is the answer.
fn admit(shared: &Shared, route: &str, headers: &HeaderMap) -> Result<InFlight, Response> {
    let mut inner = lock(shared);
    inner.stats.requests += 1;
    *inner.stats.by_route.entry(route.to_owned()).or_default() += 1;
    let key_ok = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k == inner.config.api_key);
    if !key_ok {
        inner.stats.unauthorized += 1;
        return Err(envelope(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing API key",
        ));
    }
    if let Some(limit) = inner.config.rate_limit {
        let now = Instant::now();
        if now.duration_since(inner.window_start) >= limit.window {
            inner.window_start = now;
            inner.window_count = 0;
        }
        if inner.window_count >= limit.max_requests {
            inner.stats.rate_limited += 1;
            let wait = limit
                .window
                .saturating_sub(now.duration_since(inner.window_start));
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"message": "Rate limit exceeded. Please retry after the indicated time."})),
            )
                .into_response();
            let h = response.headers_mut();
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            h.insert("retry-after", HeaderValue::from(secs));
            h.insert(
                "retry-after-ms",
                HeaderValue::from(wait.as_millis().max(1) as u64),
            );
            h.insert("x-ratelimit", HeaderValue::from(limit.max_requests));
            h.insert("x-ratelimit-remaining", HeaderValue::from(0));
            h.insert(
                "x-ratelimit-window-size",
                HeaderValue::from(limit.window.as_secs().max(1)),
            );
            return Err(response);
        }
        inner.window_count += 1;
    }
    inner.in_flight += 1;
    inner.stats.peak_in_flight = inner.stats.peak_in_flight.max(inner.in_flight);
    Ok(InFlight(shared.clone()))
}

struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).in_flight -= 1;
    }
}

/// Takes one hit of a fault that applies to this call.
fn take_fault(
    shared: &Shared,
    toolkit: Option<&str>,
    listing: Option<&'static str>,
    target: FaultTarget,
) -> Option<FaultKind> {
    let mut inner = lock(shared);
    let fault = match (toolkit, listing) {
        (Some(slug), _) => inner.faults.get_mut(slug),
        (None, Some(route)) => inner.listing_faults.get_mut(route),
        _ => None,
    }?;
    let hits = fault.target == FaultTarget::Both || fault.target == target || listing.is_some();
    if !hits {
        return None;
    }
    match &mut fault.times {
        Some(0) => None,
        Some(n) => {
            *n -= 1;
            Some(fault.kind.clone())
        }
        None => Some(fault.kind.clone()),
    }
}

fn delay(shared: &Shared, items: usize) -> Duration {
    let inner = lock(shared);
    inner.config.latency + inner.config.per_item * items as u32
}

/// Serves `value`, unless a fault says otherwise.
async fn answer(value: Value, fault: Option<FaultKind>, items: usize, shared: &Shared) -> Response {
    let wait = delay(shared, items);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let Some(fault) = fault else {
        return axum::Json(value).into_response();
    };
    match fault {
        FaultKind::Status(code) => envelope(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Injected failure",
        ),
        FaultKind::Malformed => (
            [("content-type", "application/json")],
            "{\"items\": [oops this is not json",
        )
            .into_response(),
        FaultKind::WrongTypes => {
            axum::Json(json!({"items": "not a list", "slug": 42, "name": [], "meta": 7}))
                .into_response()
        }
        FaultKind::Truncated => {
            let text = value.to_string();
            let half = text.as_bytes()[..text.len() / 2].to_vec();
            broken_body(Some(half), text.len())
        }
        FaultKind::Reset => broken_body(None, 1024),
        FaultKind::Slow(extra) => {
            tokio::time::sleep(extra).await;
            axum::Json(value).into_response()
        }
        FaultKind::Oversize(bytes) => {
            let mut padded = value;
            padded["padding"] = json!("x".repeat(bytes + 1));
            axum::Json(padded).into_response()
        }
        FaultKind::WrongSlug => {
            let mut other = value;
            other["slug"] = json!("someone_else");
            axum::Json(other).into_response()
        }
        FaultKind::ForeignTool => {
            let mut mixed = value;
            if let Some(first) = mixed["items"].as_array_mut().and_then(|i| i.first_mut()) {
                first["toolkit"] = json!({"slug": "someone_else", "name": "Someone else"});
            }
            axum::Json(mixed).into_response()
        }
        FaultKind::DuplicateTool => {
            let mut doubled = value;
            if let Some(items) = doubled["items"].as_array_mut() {
                if let Some(first) = items.first().cloned() {
                    items.push(first);
                }
            }
            axum::Json(doubled).into_response()
        }
    }
}

/// A response whose body ends early: the client sees a dropped connection.
fn broken_body(prefix: Option<Vec<u8>>, declared_len: usize) -> Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = prefix
        .into_iter()
        .map(Ok)
        .chain(std::iter::once(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))))
        .collect();
    let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("content-length", HeaderValue::from(declared_len));
    response
}

#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
    toolkit_slug: Option<String>,
    tool_slugs: Option<String>,
    toolkit_versions: Option<String>,
    important: Option<String>,
    show_disabled: Option<String>,
}

/// One page of `items` and the envelope around it.
fn page(items: &[Value], query: &PageQuery, cap: usize) -> Result<(Value, usize), Response> {
    let limit = match &query.limit {
        None => 20,
        Some(raw) => match raw.parse::<f64>() {
            Ok(n) if n >= 1.0 => n as usize,
            _ => {
                return Err(envelope(
                    StatusCode::BAD_REQUEST,
                    "limit must be a positive number",
                ))
            }
        },
    }
    .min(cap)
    .max(1);
    let offset = match &query.cursor {
        None => 0,
        Some(c) => match c.strip_prefix("cur_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return Err(envelope(StatusCode::BAD_REQUEST, "Invalid cursor")),
        },
    };
    let end = (offset + limit).min(items.len());
    let slice = items[offset..end].to_vec();
    let next = (end < items.len()).then(|| format!("cur_{end}"));
    let total_pages = items.len().div_ceil(limit).max(1);
    let served = slice.len();
    Ok((
        json!({
            "items": slice,
            "next_cursor": next,
            "total_pages": total_pages,
            "current_page": offset / limit + 1,
            "total_items": items.len(),
        }),
        served,
    ))
}

async fn auth_configs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let _guard = match admit(&shared, "auth_configs", &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (items, cap) = {
        let inner = lock(&shared);
        let catalog = &inner.config.catalog;
        let slugs: Vec<String> = match &inner.config.auth_configs {
            Some(list) => list.clone(),
            None => catalog
                .toolkits
                .values()
                .filter(|t| !t.no_auth)
                .map(|t| t.slug.clone())
                .collect(),
        };
        let mut items = Vec::new();
        for (i, slug) in slugs.iter().enumerate() {
            let logo = catalog
                .toolkits
                .get(slug)
                .map(|t| t.logo.clone())
                .unwrap_or_default();
            items.push(auth_config(i, slug, &logo, "ENABLED"));
            // Several configs per toolkit and disabled ones exist in real projects.
            if i % 3 == 0 {
                items.push(auth_config(i + 10_000, slug, &logo, "ENABLED"));
            }
        }
        if q.show_disabled.as_deref() == Some("true") {
            items.push(auth_config(99_999, "disabled_toolkit", "", "DISABLED"));
        }
        (items, inner.config.page_cap)
    };
    let fault = take_fault(&shared, None, Some("auth_configs"), FaultTarget::Both);
    match page(&items, &q, cap) {
        Ok((body, n)) => answer(body, fault, n, &shared).await,
        Err(r) => r,
    }
}

fn auth_config(i: usize, slug: &str, logo: &str, status: &str) -> Value {
    json!({
        "id": format!("ac_{i:06}"),
        "uuid": uuid::Uuid::new_v4().to_string(),
        "type": "default",
        "toolkit": {"slug": slug, "logo": logo},
        "name": format!("{slug} auth config"),
        "auth_scheme": "OAUTH2",
        "is_composio_managed": true,
        "status": status,
        "no_of_connections": 1,
        "tool_access_config": {"tools_for_connected_account_creation": []}
    })
}

async fn toolkits(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let _guard = match admit(&shared, "toolkits", &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (items, cap) = {
        let inner = lock(&shared);
        let items: Vec<Value> = inner
            .config
            .catalog
            .toolkits
            .values()
            .map(CatalogToolkit::summary)
            .collect();
        (items, inner.config.page_cap)
    };
    let fault = take_fault(&shared, None, Some("toolkits"), FaultTarget::Both);
    match page(&items, &q, cap) {
        Ok((body, n)) => answer(body, fault, n, &shared).await,
        Err(r) => r,
    }
}

async fn toolkit(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let _guard = match admit(&shared, "toolkit", &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let detail = lock(&shared)
        .config
        .catalog
        .toolkits
        .get(&slug)
        .map(CatalogToolkit::detail);
    let fault = take_fault(&shared, Some(&slug), None, FaultTarget::Details);
    match detail {
        Some(detail) => answer(detail, fault, 1, &shared).await,
        None => envelope(StatusCode::NOT_FOUND, &format!("Toolkit {slug} not found")),
    }
}

async fn tools(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let _guard = match admit(&shared, "tools", &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some(slug) = q.toolkit_slug.clone().filter(|s| !s.is_empty()) else {
        if q.tool_slugs.is_some() {
            return envelope(StatusCode::NOT_IMPLEMENTED, "tool_slugs is not emulated");
        }
        return envelope(
            StatusCode::BAD_REQUEST,
            "Listing all tools is not allowed: pass toolkit_slug, tool_slugs or search",
        );
    };
    let (items, cap) = {
        let inner = lock(&shared);
        let Some(toolkit) = inner.config.catalog.toolkits.get(&slug) else {
            // The real API answers an empty list for an unknown toolkit.
            return axum::Json(json!({"items": [], "next_cursor": null, "total_pages": 1, "current_page": 1, "total_items": 0})).into_response();
        };
        let latest = q.toolkit_versions.as_deref() == Some("latest");
        let mut tools: Vec<Value> = if latest {
            toolkit.tools.clone()
        } else {
            toolkit.base_tools().to_vec()
        };
        if q.important.as_deref() == Some("true") {
            tools.truncate(3);
        }
        (tools, inner.config.page_cap)
    };
    let fault = take_fault(&shared, Some(&slug), None, FaultTarget::Tools);
    match page(&items, &q, cap) {
        Ok((body, n)) => answer(body, fault, n, &shared).await,
        Err(r) => r,
    }
}
