//! A Composio v3 stand-in over real HTTP on 127.0.0.1, for `demo`, the tests
//! and the benchmark. Faithful where the sync cares (envelopes, cursors,
//! `toolkit_versions`, `important`, 400/401/404, rate limits with their
//! headers) and scriptable: latency, page-size cap, a rate limit, and
//! per-toolkit sequences of faults. It serialises the client's own `wire`
//! types, so the two cannot drift.

// Handlers bail out early with a ready response; boxing it buys nothing in a test server.
#![allow(clippy::result_large_err)]

mod catalog;
mod lambda_runtime;

pub use catalog::{bundled_catalog_dir, Catalog, CatalogToolkit, BASE_VERSION};
pub use lambda_runtime::RuntimeApi;

use crate::wire::{
    AuthConfig, AuthConfigToolkit, ErrorBody, ErrorEnvelope, Page, RateLimitBody, ToolToolkit,
    TriggerType,
};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Number, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What goes wrong for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// This status with the API's error envelope.
    Status(u16),
    /// A 500 whose error message is this many characters long.
    LongError(usize),
    /// A 429 carrying this header (`retry-after`, `retry-after-ms`) with this
    /// value, verbatim: hostile values included.
    Throttled { header: &'static str, value: String },
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
    /// An empty page that still names a new next cursor, forever.
    EmptyPages,
    /// A redirect to this URL (whose host must never see the key).
    Redirect(String),
}

impl FaultKind {
    /// A 429 with `Retry-After: {seconds}`.
    pub fn throttled(after: Duration) -> Self {
        Self::Throttled {
            header: "retry-after-ms",
            value: after.as_millis().to_string(),
        }
    }
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

/// A fixed-window limit, as Composio counts (per key, per window).
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window: Duration,
    pub headers: LimitHeaders,
}

/// Which answers announce the limit with `x-ratelimit*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHeaders {
    /// None: a 429 says only `Retry-After` (the client must find the rate itself).
    Never,
    /// 429s, as Composio does.
    OnThrottle,
    /// Every answer.
    Always,
}

impl RateLimit {
    pub fn per_minute(max_requests: u32) -> Self {
        Self {
            max_requests,
            window: Duration::from_secs(60),
            headers: LimitHeaders::OnThrottle,
        }
    }
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
    /// Serve `/api/v3` only, as a server from before v3.1 (`/api/v3.1/...` is a 404).
    pub v3_only: bool,
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
            v3_only: false,
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
    /// When each admitted request arrived, since the emulator started.
    pub arrivals: Vec<Duration>,
    /// Requests by API version (`v3`, `v3.1`), whatever their route.
    pub by_version: BTreeMap<String, u64>,
}

struct Inner {
    config: EmulatorConfig,
    /// Faults per toolkit, in the order they hit.
    faults: HashMap<String, VecDeque<Fault>>,
    /// Faults of the auth-config listing (`auth_configs`) and the toolkit listing (`toolkits`).
    listing_faults: HashMap<&'static str, VecDeque<Fault>>,
    started: Instant,
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
        let now = Instant::now();
        let inner = Arc::new(Mutex::new(Inner {
            config,
            faults: HashMap::new(),
            listing_faults: HashMap::new(),
            started: now,
            window_start: now,
            window_count: 0,
            in_flight: 0,
            stats: Stats::default(),
        }));
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let v3_only = lock(&inner).config.v3_only;
        let versions: &[&str] = if v3_only { &["v3"] } else { &["v3", "v3.1"] };
        let mut app = Router::new();
        for version in versions {
            app = app
                .route(&format!("/api/{version}/auth_configs"), get(auth_configs))
                .route(&format!("/api/{version}/toolkits"), get(toolkits))
                .route(&format!("/api/{version}/toolkits/{{slug}}"), get(toolkit))
                .route(&format!("/api/{version}/tools"), get(tools))
                .route(
                    &format!("/api/{version}/triggers_types"),
                    get(trigger_types),
                );
        }
        let app = app
            .fallback(|| async { envelope(StatusCode::NOT_FOUND, "Route not found") })
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                count_version,
            ))
            .with_state(inner.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(crate::http::without_nagle(listener), app)
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

    /// Replaces the toolkit's faults with this one.
    pub fn set_fault(&self, toolkit: &str, fault: Fault) {
        self.lock()
            .faults
            .insert(toolkit.to_owned(), VecDeque::from([fault]));
    }

    /// Adds a fault after the toolkit's others: they hit in order.
    pub fn push_fault(&self, toolkit: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(toolkit.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// `route` is `"auth_configs"` or `"toolkits"`.
    pub fn set_listing_fault(&self, route: &'static str, fault: Fault) {
        self.lock()
            .listing_faults
            .insert(route, VecDeque::from([fault]));
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

    /// Marks a toolkit deprecated: the listing leaves it out unless asked
    /// (`include_deprecated=true`); its other endpoints keep working.
    pub fn deprecate(&self, toolkit: &str) {
        if let Some(t) = self.lock().config.catalog.toolkits.get_mut(toolkit) {
            t.deprecated = true;
        }
    }

    /// Marks one tool deprecated: the default tool listing leaves it out.
    pub fn deprecate_tool(&self, toolkit: &str, tool: &str) {
        if let Some(t) = self.lock().config.catalog.toolkits.get_mut(toolkit) {
            if let Some(found) = t.tools.iter_mut().find(|x| x.slug == tool) {
                found.is_deprecated = true;
            }
        }
    }

    /// Removes one trigger type, under a new version of its toolkit.
    pub fn remove_trigger(&self, toolkit: &str, trigger: &str) {
        if let Some(t) = self.lock().config.catalog.toolkits.get_mut(toolkit) {
            t.triggers.retain(|x| x.slug != trigger);
            t.version = "20260404_00".into();
        }
    }

    /// Edits one trigger type's description, under a new version of its toolkit.
    pub fn edit_trigger_description(&self, toolkit: &str, trigger: &str, description: &str) {
        if let Some(t) = self.lock().config.catalog.toolkits.get_mut(toolkit) {
            if let Some(found) = t.triggers.iter_mut().find(|x| x.slug == trigger) {
                found.description = Some(description.into());
                t.version = "20260505_00".into();
            }
        }
    }

    /// A new version of a toolkit: new version string, update time and one more tool.
    pub fn publish_new_version(&self, toolkit: &str) {
        let mut inner = self.lock();
        if let Some(t) = inner.config.catalog.toolkits.get_mut(toolkit) {
            let n = t.tools.len();
            t.version = format!("20260101_{:02}", n % 100);
            t.updated_at = "2026-01-01T00:00:00.000Z".into();
            if let Some(mut extra) = t.tools.first().cloned() {
                extra.slug = format!("{}_ADDED_{n}", toolkit.to_uppercase());
                extra.name = "Added in the new version".into();
                extra.toolkit = Some(ToolToolkit {
                    slug: toolkit.into(),
                    name: Some(t.name.clone()),
                    logo: Some(t.logo.clone()),
                });
                t.tools.push(extra);
            }
        }
    }

    /// A new version stamp (and update time) and nothing else.
    pub fn bump_version(&self, toolkit: &str) {
        let mut inner = self.lock();
        if let Some(t) = inner.config.catalog.toolkits.get_mut(toolkit) {
            t.version = "20260202_00".into();
            t.updated_at = "2026-02-02T00:00:00.000Z".into();
        }
    }

    /// Removes one tool from a toolkit.
    pub fn remove_tool(&self, toolkit: &str, tool: &str) {
        let mut inner = self.lock();
        if let Some(t) = inner.config.catalog.toolkits.get_mut(toolkit) {
            t.tools.retain(|x| x.slug != tool);
            t.version = "20260303_00".into();
        }
    }

    /// Edits one tool's description in place (a content change under the same version).
    pub fn edit_description(&self, toolkit: &str, tool: &str, description: &str) {
        let mut inner = self.lock();
        if let Some(t) = inner.config.catalog.toolkits.get_mut(toolkit) {
            if let Some(found) = t.tools.iter_mut().find(|x| x.slug == tool) {
                found.description = Some(description.into());
            }
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

/// Counts each request under the API version its path names.
async fn count_version(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let version = request
        .uri()
        .path()
        .strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("none")
        .to_owned();
    *lock(&shared).stats.by_version.entry(version).or_default() += 1;
    next.run(request).await
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn serialize(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire types serialize")
}

fn envelope(status: StatusCode, message: &str) -> Response {
    let body = ErrorEnvelope {
        error: ErrorBody {
            message: message.to_owned(),
            code: Some(Number::from(status.as_u16())),
            status: Some(Number::from(status.as_u16())),
            request_id: Some(format!("req_{}", uuid::Uuid::new_v4().simple())),
            suggested_fix: None,
        },
    };
    json_bytes(status, serialize(&body))
}

fn rate_headers(response: &mut Response, limit: &RateLimit, remaining: u32) {
    let h = response.headers_mut();
    h.insert("x-ratelimit", HeaderValue::from(limit.max_requests));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    let window = format!("{}ms", limit.window.as_millis().max(1));
    if let Ok(v) = HeaderValue::from_str(&window) {
        h.insert("x-ratelimit-window-size", v);
    }
}

fn throttled(header: &str, value: &str) -> Response {
    let body = RateLimitBody {
        message: "Rate limit exceeded. Please retry after the indicated time.".into(),
    };
    let mut response = json_bytes(StatusCode::TOO_MANY_REQUESTS, serialize(&body));
    if let (Ok(name), Ok(value)) = (
        axum::http::HeaderName::from_bytes(header.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Counts the call, checks the key and the rate limit. `Err` is the answer.
fn admit(shared: &Shared, route: &str, headers: &HeaderMap) -> Result<Admitted, Response> {
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
    let mut remaining = None;
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
            let mut response = throttled("retry-after-ms", &wait.as_millis().max(1).to_string());
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            if limit.headers != LimitHeaders::Never {
                rate_headers(&mut response, &limit, 0);
            }
            return Err(response);
        }
        inner.window_count += 1;
        if limit.headers == LimitHeaders::Always {
            remaining = Some((limit, limit.max_requests - inner.window_count));
        }
    }
    inner.in_flight += 1;
    inner.stats.peak_in_flight = inner.stats.peak_in_flight.max(inner.in_flight);
    let arrived = inner.started.elapsed();
    inner.stats.arrivals.push(arrived);
    Ok(Admitted {
        _guard: InFlight(shared.clone()),
        remaining,
    })
}

struct Admitted {
    _guard: InFlight,
    /// The limit and what is left of its window, when every answer says so.
    remaining: Option<(RateLimit, u32)>,
}

impl Admitted {
    fn finish(&self, mut response: Response) -> Response {
        if let Some((limit, left)) = &self.remaining {
            rate_headers(&mut response, limit, *left);
        }
        response
    }
}

struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).in_flight -= 1;
    }
}

/// Takes one hit of the first fault that applies to this call.
fn take_fault(
    shared: &Shared,
    toolkit: Option<&str>,
    listing: Option<&'static str>,
    target: FaultTarget,
) -> Option<FaultKind> {
    let mut inner = lock(shared);
    let queue = match (toolkit, listing) {
        (Some(slug), _) => inner.faults.get_mut(slug),
        (None, Some(route)) => inner.listing_faults.get_mut(route),
        _ => None,
    }?;
    while let Some(Fault { times: Some(0), .. }) = queue.front() {
        queue.pop_front();
    }
    let fault = queue.front_mut()?;
    let hits = fault.target == FaultTarget::Both || fault.target == target || listing.is_some();
    if !hits {
        return None;
    }
    if let Some(n) = &mut fault.times {
        *n -= 1;
    }
    Some(fault.kind.clone())
}

fn delay(shared: &Shared, items: usize) -> Duration {
    let inner = lock(shared);
    inner.config.latency + inner.config.per_item * items as u32
}

/// Serves `value`, unless a fault says otherwise. Without a fault the wire
/// type goes straight to bytes; only a fault that mangles it builds a tree.
async fn answer<T: Serialize>(
    value: &T,
    fault: Option<FaultKind>,
    items: usize,
    shared: &Shared,
) -> Response {
    let wait = delay(shared, items);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let Some(fault) = fault else {
        return json_bytes(StatusCode::OK, serialize(value));
    };
    let tree = || serde_json::to_value(value).expect("wire types serialize");
    let ok = |v: Value| json_bytes(StatusCode::OK, serialize(&v));
    match fault {
        FaultKind::Status(code) => envelope(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Injected failure",
        ),
        FaultKind::LongError(chars) => envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Injected failure {}", "x".repeat(chars)),
        ),
        FaultKind::Throttled { header, value } => throttled(header, &value),
        FaultKind::Malformed => json_bytes(
            StatusCode::OK,
            b"{\"items\": [oops this is not json".to_vec(),
        ),
        FaultKind::WrongTypes => {
            ok(json!({"items": "not a list", "slug": 42, "name": [], "meta": 7}))
        }
        FaultKind::Truncated => {
            let text = serialize(value);
            let half = text[..text.len() / 2].to_vec();
            broken_body(Some(half), text.len())
        }
        FaultKind::Reset => broken_body(None, 1024),
        FaultKind::Slow(extra) => {
            tokio::time::sleep(extra).await;
            json_bytes(StatusCode::OK, serialize(value))
        }
        FaultKind::Oversize(bytes) => {
            let mut padded = tree();
            padded["padding"] = json!("x".repeat(bytes + 1));
            ok(padded)
        }
        FaultKind::WrongSlug => {
            let mut other = tree();
            other["slug"] = json!("someone_else");
            ok(other)
        }
        FaultKind::ForeignTool => {
            let mut mixed = tree();
            if let Some(first) = mixed["items"].as_array_mut().and_then(|i| i.first_mut()) {
                first["toolkit"] = json!({"slug": "someone_else", "name": "Someone else"});
            }
            ok(mixed)
        }
        FaultKind::DuplicateTool => {
            let mut doubled = tree();
            if let Some(items) = doubled["items"].as_array_mut() {
                if let Some(first) = items.first().cloned() {
                    items.push(first);
                }
            }
            ok(doubled)
        }
        FaultKind::EmptyPages => ok(json!({
            "items": [],
            "next_cursor": format!("cur_empty_{}", uuid::Uuid::new_v4().simple()),
        })),
        FaultKind::Redirect(location) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert("location", v);
            }
            response
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
    toolkit_slugs: Option<String>,
    include_deprecated: Option<String>,
}

/// One page of `items` and the envelope around it.
fn page<T: Clone>(items: &[T], query: &PageQuery, cap: usize) -> Result<Page<T>, Response> {
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
        // The cursors `EmptyPages` hands out lead back to the start.
        Some(c) if c.starts_with("cur_empty_") => 0,
        Some(c) => match c.strip_prefix("cur_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return Err(envelope(StatusCode::BAD_REQUEST, "Invalid cursor")),
        },
    };
    let end = (offset + limit).min(items.len());
    Ok(Page {
        items: items[offset..end].to_vec(),
        next_cursor: (end < items.len()).then(|| format!("cur_{end}")),
        total_pages: Some(Number::from(items.len().div_ceil(limit).max(1))),
        current_page: Some(Number::from(offset / limit + 1)),
        total_items: Some(Number::from(items.len())),
    })
}

async fn serve_page<T: Clone + Serialize>(
    shared: &Shared,
    admitted: &Admitted,
    items: &[T],
    query: &PageQuery,
    cap: usize,
    fault: Option<FaultKind>,
) -> Response {
    match page(items, query, cap) {
        Ok(body) => {
            let n = body.items.len();
            admitted.finish(answer(&body, fault, n, shared).await)
        }
        Err(r) => r,
    }
}

fn auth_config(i: usize, slug: &str, logo: &str, status: &str) -> AuthConfig {
    AuthConfig {
        id: format!("ac_{i:06}"),
        toolkit: AuthConfigToolkit {
            slug: slug.into(),
            logo: Some(logo.into()),
        },
        name: Some(format!("{slug} auth config")),
        status: Some(status.into()),
    }
}

async fn auth_configs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let admitted = match admit(&shared, "auth_configs", &headers) {
        Ok(a) => a,
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
    serve_page(&shared, &admitted, &items, &q, cap, fault).await
}

async fn toolkits(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let admitted = match admit(&shared, "toolkits", &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (items, cap) = {
        let inner = lock(&shared);
        // Deprecated toolkits are left out unless asked for, as Composio does.
        let with_deprecated = q.include_deprecated.as_deref() == Some("true");
        let items: Vec<_> = inner
            .config
            .catalog
            .toolkits
            .values()
            .filter(|t| with_deprecated || !t.deprecated)
            .map(CatalogToolkit::summary)
            .collect();
        (items, inner.config.page_cap)
    };
    let fault = take_fault(&shared, None, Some("toolkits"), FaultTarget::Both);
    serve_page(&shared, &admitted, &items, &q, cap, fault).await
}

async fn toolkit(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let admitted = match admit(&shared, "toolkit", &headers) {
        Ok(a) => a,
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
        Some(detail) => admitted.finish(answer(&detail, fault, 1, &shared).await),
        None => envelope(StatusCode::NOT_FOUND, &format!("Toolkit {slug} not found")),
    }
}

async fn tools(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<PageQuery>,
) -> Response {
    let admitted = match admit(&shared, "tools", &headers) {
        Ok(a) => a,
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
            let empty: Page<Value> = Page {
                items: vec![],
                next_cursor: None,
                total_pages: Some(Number::from(1)),
                current_page: Some(Number::from(1)),
                total_items: Some(Number::from(0)),
            };
            return admitted.finish(json_bytes(StatusCode::OK, serialize(&empty)));
        };
        // v3.1 serves the latest version by default; v3 the base one.
        let latest = q.toolkit_versions.as_deref() == Some("latest")
            || (q.toolkit_versions.is_none() && uri.path().starts_with("/api/v3.1/"));
        let mut tools = if latest {
            toolkit.tools.clone()
        } else {
            toolkit.base_tools().to_vec()
        };
        if q.important.as_deref() == Some("true") {
            tools.truncate(3);
        }
        // Deprecated tools are left out unless asked for, as Composio does.
        if q.include_deprecated.as_deref() != Some("true") {
            tools.retain(|t| !t.is_deprecated);
        }
        (tools, inner.config.page_cap)
    };
    let fault = take_fault(&shared, Some(&slug), None, FaultTarget::Tools);
    serve_page(&shared, &admitted, &items, &q, cap, fault).await
}

/// `GET /api/{v}/triggers_types?toolkit_slugs=a,b`: the trigger types of
/// those toolkits (all of them without the filter), paged like every list.
async fn trigger_types(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let admitted = match admit(&shared, "triggers_types", &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let wanted: Option<Vec<String>> = q.toolkit_slugs.as_deref().map(|raw| {
        raw.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let (items, cap) = {
        let inner = lock(&shared);
        let catalog = &inner.config.catalog;
        let items: Vec<TriggerType> = match &wanted {
            Some(slugs) => slugs
                .iter()
                .filter_map(|s| catalog.toolkits.get(s))
                .flat_map(|t| t.triggers.iter().cloned())
                .collect(),
            None => catalog
                .toolkits
                .values()
                .flat_map(|t| t.triggers.iter().cloned())
                .collect(),
        };
        (items, inner.config.page_cap)
    };
    let fault = take_fault(&shared, None, Some("triggers_types"), FaultTarget::Both);
    serve_page(&shared, &admitted, &items, &q, cap, fault).await
}
