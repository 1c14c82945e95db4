use super::error::{TransportKind, UpstreamError};
use crate::cache::Slug;
use crate::wire::{self, AuthConfig, Page, Tool, ToolkitDetail, ToolkitSummary};
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub api_key: ApiKey,
    /// Page size asked for; the API's maximum is 1000.
    pub page_limit: u32,
    /// Client-side request rate shared by every call of this client; `None` = unlimited.
    pub max_rps: Option<u32>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Total sleeping time one call may spend between retries.
    pub retry_budget: Duration,
    pub max_body_bytes: usize,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            page_limit: 1000,
            max_rps: Some(25),
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
    limiter: Option<DefaultDirectRateLimiter>,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// Paging never needs more than this; a server that keeps answering is broken.
const MAX_PAGES: usize = 10_000;

impl ComposioClient {
    pub fn new(config: ClientConfig) -> Result<Self, UpstreamError> {
        let mut key_header =
            HeaderValue::from_str(&config.api_key.0).map_err(|_| UpstreamError::Transport {
                endpoint: "configuration".into(),
                kind: TransportKind::Other,
                detail: "COMPOSIO_API_KEY contains characters not allowed in a header".into(),
            })?;
        key_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key_header);
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("composio-schema-cache/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| UpstreamError::Transport {
                endpoint: "configuration".into(),
                kind: TransportKind::Other,
                detail: e.without_url().to_string(),
            })?;
        // Composio counts per minute: a burst of two seconds' worth keeps any
        // minute under 60 × rate + 2 × rate (1,550 at the default 25/s).
        let limiter = config.max_rps.and_then(NonZeroU32::new).map(|rps| {
            let burst = rps.saturating_mul(NonZeroU32::new(2).expect("non-zero"));
            RateLimiter::direct(Quota::per_second(rps).allow_burst(burst))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                key: config.api_key.clone(),
                limiter,
                config,
                requests: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        })
    }

    /// Removes the key from text that came from upstream, before it is kept anywhere.
    pub fn redact(&self, text: &str) -> String {
        self.inner.key.redact(text)
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Every auth config of the project (all pages; disabled ones are left out).
    pub async fn list_auth_configs(&self) -> Result<Vec<AuthConfig>, UpstreamError> {
        let all: Vec<AuthConfig> = self.get_all_pages("/api/v3/auth_configs", &[]).await?;
        Ok(all.into_iter().filter(AuthConfig::is_enabled).collect())
    }

    pub async fn get_toolkit(&self, slug: &Slug) -> Result<ToolkitDetail, UpstreamError> {
        let path = format!("/api/v3/toolkits/{slug}");
        self.get_json(&path, &[]).await
    }

    /// Every tool of a toolkit at its latest version (all pages).
    pub async fn list_tools(&self, slug: &Slug) -> Result<Vec<Tool>, UpstreamError> {
        // `toolkit_versions=latest` or v3 serves the base version; never `important`.
        let query = [
            ("toolkit_slug", slug.as_str()),
            ("toolkit_versions", "latest"),
        ];
        self.get_all_pages("/api/v3/tools", &query).await
    }

    /// The whole toolkit catalogue with versions and update times.
    pub async fn list_toolkits(&self) -> Result<Vec<ToolkitSummary>, UpstreamError> {
        self.get_all_pages("/api/v3/toolkits", &[]).await
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
        for _ in 0..MAX_PAGES {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", &limit));
            if let Some(c) = cursor.as_deref() {
                q.push(("cursor", c));
            }
            let page: Page<T> = self.get_json(path, &q).await?;
            items.extend(page.items);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                None => return Ok(items),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(UpstreamError::Paging {
                            endpoint: endpoint(path, query),
                            detail: self
                                .inner
                                .key
                                .redact(&format!("cursor {next:?} came back twice")),
                        });
                    }
                    cursor = Some(next);
                }
            }
        }
        Err(UpstreamError::Paging {
            endpoint: endpoint(path, query),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        let config = &self.inner.config;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.min_backoff)
            .with_max_delay(config.max_backoff)
            .with_max_times(config.max_retries)
            .with_total_delay(Some(config.retry_budget))
            .with_jitter();
        let budget = config.retry_budget;
        let mut slept = std::time::Duration::ZERO;
        (|| self.attempt(path, query))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(UpstreamError::is_retryable)
            // The server's own Retry-After beats our guess; the budget counts both.
            .adjust(move |err, planned| {
                let wait = err.retry_after().or(planned)?;
                planned?;
                slept += wait;
                (slept <= budget).then_some(wait)
            })
            .notify(|err, wait| {
                self.inner.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, wait_ms = wait.as_millis() as u64, "retrying upstream call");
            })
            .await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        if let Some(limiter) = &self.inner.limiter {
            limiter.until_ready().await;
        }
        let endpoint = endpoint(path, query);
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.inner.base_url, path);
        let response = self
            .inner
            .http
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(|e| transport(&endpoint, &e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_capped(&endpoint, response).await?;
        if !status.is_success() {
            let (message, body_request_id) =
                error_message(&self.inner.key.redact(&String::from_utf8_lossy(&body)));
            return Err(UpstreamError::Status {
                endpoint,
                status: status.as_u16(),
                message,
                request_id: body_request_id
                    .or(request_id)
                    .map(|id| self.inner.key.redact(&id)),
                retry_after,
            });
        }
        wire::parse(&body).map_err(|detail| UpstreamError::Decode {
            endpoint,
            detail: self.inner.key.redact(&detail),
        })
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
    UpstreamError::Transport {
        endpoint: endpoint.to_owned(),
        kind,
        // reqwest puts the URL in its message; we already name the endpoint.
        detail: detail.replace(&e.url().map(|u| u.to_string()).unwrap_or_default(), ""),
    }
}

/// `retry-after-ms`, then `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms as u64));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The API's `{"error":{message, request_id}}`, the 429's `{"message"}`, or
/// the text. The body is redacted first, so a cut can't leave part of the key.
fn error_message(body: &str) -> (String, Option<String>) {
    if let Ok(envelope) = serde_json::from_str::<wire::ErrorEnvelope>(body) {
        return (envelope.error.message, envelope.error.request_id);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(body) {
        if let Some(m) = map.get("message").and_then(|m| m.as_str()) {
            return (m.to_owned(), None);
        }
    }
    let text: String = body.trim().chars().take(200).collect();
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

    #[test]
    fn retry_after_in_every_form() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let got = retry_after(&h).unwrap();
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
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
    }

    #[test]
    fn key_never_shows() {
        let key = ApiKey::new("sk_live_123").unwrap();
        assert!(!format!("{key:?}").contains("sk_live_123"));
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
}
