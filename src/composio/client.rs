use super::error::{cut, TransportKind, UpstreamError};
use super::rate::{AdaptiveRate, ServerLimit};
use crate::cache::Slug;
use crate::wire::{self, AuthConfig, Page, Tool, ToolkitDetail, ToolkitSummary, TriggerType};
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The Composio API key. Its `Debug` never shows it, and nothing formats it.
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into().trim().to_owned();
        (!key.is_empty()).then(|| Self(key.into()))
    }

    /// Removes the key from a text that came from elsewhere (an upstream message).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&*self.0, "[redacted]")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Which version of Composio's REST API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `/api/v3.1`, Composio's current API.
    #[default]
    V3_1,
    /// `/api/v3`, the previous one ("remains supported").
    V3,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3_1 => "v3.1",
            Self::V3 => "v3",
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "v3.1" | "3.1" => Ok(Self::V3_1),
            "v3" | "3" => Ok(Self::V3),
            other => Err(format!("{other:?} is not an API version: use v3.1 or v3")),
        }
    }
}

/// Toolkit slugs per trigger-type call: the query stays far under the 8 KB a
/// URL may take at proxies, whatever the slugs (each at most 100 bytes).
pub const TRIGGER_SLUGS_PER_CALL: usize = 60;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    /// `/api/v3.1` unless told `v3`.
    pub api_version: ApiVersion,
    pub api_key: ApiKey,
    /// Page size asked for; the API's maximum is 1000.
    pub page_limit: u32,
    /// Ceiling of the request rate shared by every call of this client; `None` = unlimited.
    pub max_rps: Option<u32>,
    /// Requests sent at once before the pace applies.
    pub burst: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries after errors (5xx, timeouts, malformed bodies); 429s do not count.
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Total time one call may spend waiting to retry (429s included).
    pub retry_budget: Duration,
    pub max_body_bytes: usize,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            api_version: ApiVersion::default(),
            api_key,
            page_limit: 1000,
            max_rps: Some(25),
            burst: 50,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            retry_budget: Duration::from_secs(60),
            max_body_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What the client has done so far (cumulative; a sync reports differences).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after an error or a 429.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// The rate allowed now (requests per second), if a limit applies.
    pub rate: Option<f64>,
}

/// The one door to the Composio v3 API.
#[derive(Clone)]
pub struct ComposioClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    key: ApiKey,
    config: ClientConfig,
    rate: Option<AdaptiveRate>,
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

/// Paging never needs more than this; a server that keeps answering is broken.
const MAX_PAGES: usize = 10_000;
/// Empty pages that still name a next cursor, in a row, before we stop.
const MAX_EMPTY_PAGES: usize = 3;
/// A 429 without `Retry-After` pauses this long at first, doubling per retry.
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// The shortest pause after a 429, doubling with each one.
const MIN_THROTTLE_PAUSE: Duration = Duration::from_millis(50);

impl ComposioClient {
    pub fn new(config: ClientConfig) -> Result<Self, UpstreamError> {
        let base_url = validate_base_url(&config.base_url)?;
        let mut key_header = HeaderValue::from_str(&config.api_key.0).map_err(|_| {
            UpstreamError::Config(
                "COMPOSIO_API_KEY contains characters not allowed in a header".into(),
            )
        })?;
        key_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key_header);
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = crate::tls::http_client_builder()
            .default_headers(headers)
            .user_agent(concat!("composio-schema-cache/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // The key is a default header: following a redirect could hand it
            // to another host. A 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(base_url.starts_with("https://"))
            .build()
            .map_err(|e| UpstreamError::Config(e.without_url().to_string()))?;
        let rate = config
            .max_rps
            .filter(|&rps| rps > 0)
            .map(|rps| AdaptiveRate::new(rps, config.burst));
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                key: config.api_key.clone(),
                rate,
                config,
                requests: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
            }),
        })
    }

    /// Removes the key from text that came from upstream, before it is kept anywhere.
    pub fn redact(&self, text: &str) -> String {
        self.inner.key.redact(text)
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            throttled: self.inner.throttled.load(Ordering::Relaxed),
            rate: self.inner.rate.as_ref().map(|r| r.snapshot().rate),
        }
    }

    /// `/api/{version}/{rest}`.
    fn path(&self, rest: &str) -> String {
        format!("/api/{}/{rest}", self.inner.config.api_version.as_str())
    }

    pub fn api_version(&self) -> ApiVersion {
        self.inner.config.api_version
    }

    /// Every auth config of the project (all pages; disabled ones are left out).
    pub async fn list_auth_configs(&self) -> Result<Vec<AuthConfig>, UpstreamError> {
        let all: Vec<AuthConfig> = self.get_all_pages(&self.path("auth_configs"), &[]).await?;
        Ok(all.into_iter().filter(AuthConfig::is_enabled).collect())
    }

    pub async fn get_toolkit(&self, slug: &Slug) -> Result<ToolkitDetail, UpstreamError> {
        let path = self.path(&format!("toolkits/{slug}"));
        self.get_json(&path, &[]).await
    }

    /// Every tool of a toolkit at its latest version (all pages).
    pub async fn list_tools(&self, slug: &Slug) -> Result<Vec<Tool>, UpstreamError> {
        // `toolkit_versions=latest` or v3 serves the base version (v3.1
        // defaults to it; harmless there); never `important`.
        // `include_deprecated=true`: a tool Composio deprecates would vanish
        // from the default listing and read as removed, not deprecated.
        let query = [
            ("toolkit_slug", slug.as_str()),
            ("toolkit_versions", "latest"),
            ("include_deprecated", "true"),
        ];
        self.get_all_pages(&self.path("tools"), &query).await
    }

    /// The whole toolkit catalogue with versions, update times and details,
    /// deprecated toolkits included: Composio leaves them out by default, and
    /// a project's deprecated toolkit left out would cost a detail call and a
    /// refetch on every sync (nothing to diff it against) instead of nothing.
    pub async fn list_toolkits(&self) -> Result<Vec<ToolkitSummary>, UpstreamError> {
        let query = [("include_deprecated", "true")];
        self.get_all_pages(&self.path("toolkits"), &query).await
    }

    /// The trigger types of these toolkits at their latest versions (every
    /// page), in calls of [`TRIGGER_SLUGS_PER_CALL`] toolkits; `None`: the
    /// whole catalogue's, unfiltered.
    pub async fn list_trigger_types(
        &self,
        toolkits: Option<&[Slug]>,
    ) -> Result<Vec<TriggerType>, UpstreamError> {
        let path = self.path("triggers_types");
        let Some(toolkits) = toolkits else {
            return self
                .get_all_pages(&path, &[("toolkit_versions", "latest")])
                .await;
        };
        let mut all = Vec::new();
        for chunk in toolkits.chunks(TRIGGER_SLUGS_PER_CALL) {
            let slugs = chunk.iter().map(Slug::as_str).collect::<Vec<_>>().join(",");
            let query = [
                ("toolkit_slugs", slugs.as_str()),
                ("toolkit_versions", "latest"),
            ];
            all.extend(self.get_all_pages::<TriggerType>(&path, &query).await?);
        }
        Ok(all)
    }

    async fn get_all_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, UpstreamError> {
        let limit = self.inner.config.page_limit.to_string();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let mut empty_in_a_row = 0;
        let paging = |detail: String| UpstreamError::Paging {
            endpoint: endpoint(path, query),
            detail: cut(&self.redact(&detail)),
        };
        for _ in 0..MAX_PAGES {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", &limit));
            if let Some(c) = cursor.as_deref() {
                q.push(("cursor", c));
            }
            let page: Page<T> = self.get_json(path, &q).await?;
            empty_in_a_row = if page.items.is_empty() {
                empty_in_a_row + 1
            } else {
                0
            };
            items.extend(page.items);
            let Some(next) = page.next_cursor.filter(|c| !c.is_empty()) else {
                return Ok(items);
            };
            if empty_in_a_row >= MAX_EMPTY_PAGES {
                return Err(paging(format!(
                    "{MAX_EMPTY_PAGES} empty pages in a row still named a next cursor"
                )));
            }
            if !seen.insert(next.clone()) {
                return Err(paging(format!("cursor {next:?} came back twice")));
            }
            cursor = Some(next);
        }
        Err(paging(format!("more than {MAX_PAGES} pages")))
    }

    /// One call with its retries. Errors spend `max_retries`; 429s do not
    /// (they pause every caller instead); both spend the time budget.
    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        let config = &self.inner.config;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(config.min_backoff)
            .with_max_delay(config.max_backoff)
            .with_max_times(config.max_retries)
            .with_jitter()
            .build();
        let mut waited = Duration::ZERO;
        let mut throttle_pause = DEFAULT_THROTTLE_PAUSE;
        let mut throttle_floor = MIN_THROTTLE_PAUSE;
        loop {
            let sent_at = match &self.inner.rate {
                Some(rate) => rate.acquire().await,
                None => Instant::now(),
            };
            let (result, server_limit) = self.attempt(path, query).await;
            let err = match result {
                Ok(value) => {
                    if let Some(rate) = &self.inner.rate {
                        rate.on_success(server_limit);
                    }
                    return Ok(value);
                }
                Err(err) => err,
            };
            let wait = if err.is_throttled() {
                self.inner.throttled.fetch_add(1, Ordering::Relaxed);
                // "Now" (0, a date already past) still waits a little, and
                // longer each time: the budget must run out.
                let pause = err
                    .retry_after()
                    .map_or(throttle_pause, |asked| asked.max(throttle_floor));
                throttle_pause = (throttle_pause * 2).min(config.max_backoff);
                throttle_floor = (throttle_floor * 2).min(config.max_backoff);
                pause
            } else if err.is_retryable() {
                match backoff.next() {
                    // The server's own Retry-After beats our guess.
                    Some(planned) => err.retry_after().map_or(planned, |ra| ra.max(planned)),
                    None => return Err(err),
                }
            } else {
                return Err(err);
            };
            if waited + wait > config.retry_budget {
                tracing::warn!(error = %err, wait_ms = wait.as_millis() as u64, "retry budget spent; giving up");
                return Err(err);
            }
            waited += wait;
            self.inner.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err, wait_ms = wait.as_millis() as u64, "retrying upstream call");
            match &self.inner.rate {
                // The pause applies to every caller; our next acquire waits it out.
                Some(rate) if err.is_throttled() => rate.on_throttled(sent_at, wait, server_limit),
                _ => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> (Result<T, UpstreamError>, ServerLimit) {
        let endpoint = endpoint(path, query);
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.inner.base_url, path);
        let response = match self.inner.http.get(url).query(query).send().await {
            Ok(response) => response,
            Err(e) => return (Err(transport(&endpoint, &e)), ServerLimit::default()),
        };
        let status = response.status();
        let headers = response.headers();
        let server_limit = server_limit(headers);
        let retry_after = retry_after(headers, SystemTime::now());
        let request_id = header_text(headers, "x-request-id").map(str::to_owned);
        if status.is_redirection() {
            let location_host = header_text(headers, "location")
                .map(location_host)
                .unwrap_or_else(|| "(no location)".into());
            let err = UpstreamError::Redirect {
                endpoint,
                status: status.as_u16(),
                location_host: cut(&self.redact(&location_host)),
            };
            return (Err(err), server_limit);
        }
        let body = match self.read_capped(&endpoint, response).await {
            Ok(body) => body,
            Err(e) => return (Err(e), server_limit),
        };
        if !status.is_success() {
            let (message, body_request_id) =
                error_message(&self.redact(&String::from_utf8_lossy(&body)));
            let err = UpstreamError::Status {
                endpoint,
                status: status.as_u16(),
                message,
                request_id: body_request_id
                    .or(request_id)
                    .map(|id| cut(&self.redact(&id))),
                retry_after,
            };
            return (Err(err), server_limit);
        }
        let parsed = wire::parse(&body).map_err(|detail| UpstreamError::Decode {
            endpoint,
            detail: cut(&self.redact(&detail)),
        });
        (parsed, server_limit)
    }

    async fn read_capped(
        &self,
        endpoint: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, UpstreamError> {
        let limit = self.inner.config.max_body_bytes;
        let too_large = || UpstreamError::TooLarge {
            endpoint: endpoint.to_owned(),
            limit,
        };
        // Refused before a byte is reserved: a declared size is not a promise.
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport(endpoint, &e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// https, or plain http to this machine only (the emulator): the key travels
/// in a header.
fn validate_base_url(raw: &str) -> Result<String, UpstreamError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| UpstreamError::Config(format!("COMPOSIO_BASE_URL is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(UpstreamError::Config(
            "COMPOSIO_BASE_URL must be https (plain http only to 127.0.0.1, localhost or [::1])"
                .into(),
        )),
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The host a redirect points at, never its path or query (they may carry anything).
fn location_host(location: &str) -> String {
    match reqwest::Url::parse(location) {
        Ok(url) => url.host_str().unwrap_or("(no host)").to_owned(),
        Err(_) => "(the same host)".into(),
    }
}

fn endpoint(path: &str, query: &[(&str, &str)]) -> String {
    let q: Vec<String> = query
        .iter()
        .filter(|(k, _)| *k != "cursor" && *k != "limit")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if q.is_empty() {
        format!("GET {path}")
    } else {
        format!("GET {path}?{}", q.join("&"))
    }
}

fn transport(endpoint: &str, e: &reqwest::Error) -> UpstreamError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TransportKind::Interrupted
    } else {
        TransportKind::Other
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    // reqwest names the whole URL; the endpoint already names its path, so
    // the message keeps the server (what a wrong COMPOSIO_BASE_URL shows).
    if let Some(url) = e.url() {
        detail = detail.replace(url.as_str(), &url.origin().ascii_serialization());
    }
    UpstreamError::Transport {
        endpoint: endpoint.to_owned(),
        kind,
        detail: cut(&detail),
    }
}

/// Longest wait a header may ask for; anything longer is as good as "never"
/// and is clamped here so no arithmetic on it can overflow.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `retry-after-ms`, then `Retry-After` in seconds or as an HTTP date. Garbage,
/// negative, NaN and infinite values are ignored; huge ones are clamped.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let seconds = |v: f64| (v.is_finite() && v >= 0.0).then(|| clamp_secs(v));
    if let Some(d) = header_text(headers, "retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(d);
    }
    let value = header_text(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

fn clamp_secs(secs: f64) -> Duration {
    if secs >= MAX_RETRY_AFTER.as_secs_f64() {
        MAX_RETRY_AFTER
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// `x-ratelimit` (or `x-ratelimit-limit`) requests per `x-ratelimit-window-size`.
fn server_limit(headers: &HeaderMap) -> ServerLimit {
    let requests = header_text(headers, "x-ratelimit")
        .or_else(|| header_text(headers, "x-ratelimit-limit"))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n > 0.0);
    let window = header_text(headers, "x-ratelimit-window-size").and_then(parse_window);
    ServerLimit {
        per_window: requests.zip(window),
    }
}

/// A window size: seconds, or a number with `ms`, `s` or `m`.
fn parse_window(raw: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else {
        (raw, 1.0)
    };
    let secs = number.trim().parse::<f64>().ok()? * scale;
    (secs.is_finite() && secs > 0.0).then(|| clamp_secs(secs))
}

/// The API's `{"error":{message, request_id}}`, the 429's `{"message"}`, or
/// the text, cut. The body is redacted first, so a cut can't leave part of the key.
fn error_message(body: &str) -> (String, Option<String>) {
    if let Ok(envelope) = serde_json::from_str::<wire::ErrorEnvelope>(body) {
        return (cut(&envelope.error.message), envelope.error.request_id);
    }
    if let Ok(limited) = serde_json::from_str::<wire::RateLimitBody>(body) {
        return (cut(&limited.message), None);
    }
    let text = cut(body.trim());
    (
        if text.is_empty() {
            "(empty body)".into()
        } else {
            text
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_in_every_form() {
        let now = SystemTime::now();
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
        let h = headers(&[("retry-after", "3")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        let h = headers(&[("retry-after", "3"), ("retry-after-ms", "150")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(150)));
        let later = now + Duration::from_secs(120);
        let h = headers(&[("retry-after", &httpdate::fmt_http_date(later))]);
        let got = retry_after(&h, now).unwrap();
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        // Long, but under the clamp: kept as asked (the budget decides).
        let h = headers(&[("retry-after", "7200")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7200)));
    }

    #[test]
    fn hostile_retry_after_values_never_panic_and_are_clamped() {
        let now = SystemTime::now();
        for (name, value, want) in [
            ("retry-after", "-1", None),
            ("retry-after-ms", "-1", None),
            ("retry-after", "inf", None),
            ("retry-after-ms", "inf", None),
            ("retry-after", "NaN", None),
            ("retry-after-ms", "NaN", None),
            ("retry-after", "1e300", Some(MAX_RETRY_AFTER)),
            ("retry-after-ms", "1e300", Some(MAX_RETRY_AFTER)),
            ("retry-after", "18446744073709551616", Some(MAX_RETRY_AFTER)),
            (
                "retry-after",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                Some(MAX_RETRY_AFTER),
            ),
            (
                "retry-after",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                Some(Duration::ZERO),
            ),
        ] {
            assert_eq!(
                retry_after(&headers(&[(name, value)]), now),
                want,
                "{name}: {value}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_retry_after_parser_never_panics_and_stays_bounded(
            seconds in "\\PC{0,40}",
            millis in "[-+0-9.eE]{0,30}|inf|NaN|-inf",
            date_secs in any::<u64>(),
        ) {
            let now = SystemTime::now();
            let date = httpdate::fmt_http_date(
                SystemTime::UNIX_EPOCH + Duration::from_secs(date_secs % 253_402_300_799),
            );
            for pairs in [
                vec![("retry-after", seconds.as_str())],
                vec![("retry-after-ms", millis.as_str())],
                vec![("retry-after", date.as_str())],
                vec![("retry-after", seconds.as_str()), ("retry-after-ms", millis.as_str())],
            ] {
                let mut h = HeaderMap::new();
                for (k, v) in pairs {
                    if let Ok(v) = HeaderValue::from_str(v) {
                        h.insert(k, v);
                    }
                }
                if let Some(d) = retry_after(&h, now) {
                    prop_assert!(d <= MAX_RETRY_AFTER);
                }
            }
        }
    }

    #[test]
    fn rate_limit_headers() {
        let h = headers(&[("x-ratelimit", "2000"), ("x-ratelimit-window-size", "60")]);
        assert_eq!(
            server_limit(&h).per_window,
            Some((2000.0, Duration::from_secs(60)))
        );
        let h = headers(&[
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-window-size", "500ms"),
        ]);
        assert_eq!(
            server_limit(&h).per_window,
            Some((10.0, Duration::from_millis(500)))
        );
        for bad in [
            headers(&[("x-ratelimit", "2000")]),
            headers(&[("x-ratelimit", "-5"), ("x-ratelimit-window-size", "60")]),
            headers(&[("x-ratelimit", "0"), ("x-ratelimit-window-size", "60")]),
            headers(&[("x-ratelimit", "10"), ("x-ratelimit-window-size", "0")]),
            headers(&[("x-ratelimit", "NaN"), ("x-ratelimit-window-size", "1m")]),
        ] {
            assert_eq!(server_limit(&bad).per_window, None, "{bad:?}");
        }
    }

    #[test]
    fn error_messages_in_every_shape() {
        let (m, id) = error_message(
            r#"{"error":{"message":"Toolkit not found","code":404,"status":404,"request_id":"r1"}}"#,
        );
        assert_eq!(
            (m.as_str(), id.as_deref()),
            ("Toolkit not found", Some("r1"))
        );
        let (m, _) = error_message(r#"{"message":"Rate limit exceeded. Try later"}"#);
        assert_eq!(m, "Rate limit exceeded. Try later");
        assert_eq!(error_message("").0, "(empty body)");
        assert_eq!(
            error_message("<html>bad gateway</html>").0,
            "<html>bad gateway</html>"
        );
        let huge = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(10_000));
        assert!(error_message(&huge).0.chars().count() <= super::super::error::MAX_UPSTREAM_TEXT);
    }

    #[test]
    fn key_never_shows() {
        let key = ApiKey::new("sk_live_123").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert_eq!(key.redact("bad key sk_live_123"), "bad key [redacted]");
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn endpoint_names_hide_cursors() {
        assert_eq!(
            endpoint(
                "/api/v3/tools",
                &[
                    ("toolkit_slug", "github"),
                    ("limit", "1000"),
                    ("cursor", "abc")
                ]
            ),
            "GET /api/v3/tools?toolkit_slug=github"
        );
    }

    #[test]
    fn base_urls_are_https_or_loopback() {
        for ok in [
            "https://backend.composio.dev",
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:9",
        ] {
            assert!(validate_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://backend.composio.dev",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_hosts_never_carry_paths() {
        assert_eq!(
            location_host("https://evil.example/steal?k=1"),
            "evil.example"
        );
        assert_eq!(location_host("/relative/path"), "(the same host)");
    }
}
