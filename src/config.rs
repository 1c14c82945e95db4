//! Every environment variable, parsed once into a typed `Config` nested by
//! concern. Defaults live in one place, [`VARIABLES`], which the README's
//! configuration table is checked against by a test.

use crate::cache::Slug;
use crate::composio::{ApiKey, ApiVersion, ClientConfig};
use crate::notify::WebhookSecret;
use crate::store::validate_prefix;
use crate::sync::{SyncSettings, LEASE_SAFETY, STORE_OPS_AFTER_DEADLINE};
use std::path::PathBuf;
use std::time::Duration;

/// No default: the variable is optional.
const NONE: &str = "(none)";

/// (name, default, meaning) of every variable the service reads.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("COMPOSIO_API_KEY", NONE, "Composio project API key; needed to sync, never logged (local runs)"),
    ("COMPOSIO_API_KEY_SECRET", NONE, "Secrets Manager secret (name or ARN) holding the key, read once at start when COMPOSIO_API_KEY is unset: the bare key, or JSON with `COMPOSIO_API_KEY` or `apiKey` (the deployed sync function)"),
    ("COMPOSIO_BASE_URL", "https://backend.composio.dev", "Composio API base URL; https, or plain http to loopback only (the emulator)"),
    ("COMPOSIO_API_VERSION", "v3.1", "Composio REST API version the client speaks: `v3.1` (current) or `v3` (previous, still supported); `toolkit_versions=latest` is sent on both"),
    ("COMPOSIO_NO_AUTH_TOOLKITS", "browser_tool", "comma-separated toolkits that need no auth config"),
    ("COMPOSIO_MAX_RPS", "25", "ceiling of the client's request rate per process (0 = none); it adapts below this to what the server signals; 25/s = 1,500/min, under the starter plan's 2,000/min"),
    ("COMPOSIO_BURST", "50", "requests sent at once before the rate applies"),
    ("COMPOSIO_TIMEOUT_MS", "30000", "timeout of one upstream request"),
    ("COMPOSIO_CONNECT_TIMEOUT_MS", "5000", "connect timeout of one upstream request"),
    ("COMPOSIO_MAX_RETRIES", "4", "retries of a call after errors (408, 409, 5xx, timeouts, resets, malformed bodies); 429s do not count"),
    ("COMPOSIO_RETRY_BUDGET_MS", "60000", "total time one call may spend waiting to retry, 429 pauses included"),
    ("COMPOSIO_MAX_BODY_BYTES", "33554432", "largest upstream response body accepted"),
    ("COMPOSIO_PAGE_LIMIT", "1000", "page size asked of list calls (the API's maximum is 1000)"),
    ("SYNC_SCOPE", "project", "which toolkits are synced: `project` (its auth configs' toolkits and the no-auth ones) or `catalog` (every toolkit Composio lists, deprecated ones included, and the project's); the shrink guard, pruning and the change feed follow it"),
    ("SYNC_TOOLKITS", NONE, "comma-separated toolkits to sync instead of a scope (no auth-config call); wins over SYNC_SCOPE"),
    ("SYNC_CONCURRENCY", "32", "toolkits fetched at once (their requests still pass the shared rate limit)"),
    ("SYNC_TIMEOUT_MS", "760000", "time budget of a whole sync (on Lambda: also at most the function's remaining time, less a margin)"),
    ("SYNC_STORE_TIMEOUT_MS", "15000", "bound of each store operation of a sync, so work after its deadline is bounded"),
    ("SYNC_LEASE_TTL_MS", "900000", "the longest a sync lease holds; must cover SYNC_TIMEOUT_MS, 9 store operations (SYNC_STORE_TIMEOUT_MS each) and the lease's 5 s safety margin"),
    ("SYNC_LEASE_HEARTBEAT_MS", "5000", "how often a running sync renews its lease (100 to 60000); a lease not renewed for two beats, one store operation and the 5 s margin is a dead holder's, taken over at once"),
    ("CHANGES_RETENTION_DAYS", "90", "how long change records (`_changes/`, the change feed) are kept"),
    ("SYNC_MAX_SHRINK", "50", "largest share (percent) of the published toolkits a sync may drop; more publishes nothing (override: --allow-shrink, allowShrink)"),
    ("CHANGE_EVENT_BUS", NONE, "EventBridge bus (name or ARN; `default` is the account's default bus) that hears of every published change set; unset: no events (the template sets `default`)"),
    ("CHANGE_WEBHOOK_URLS", NONE, "comma-separated webhook URLs (at most 10; https, or plain http to loopback only) that get every published change set, signed per Standard Webhooks"),
    ("CHANGE_WEBHOOK_SECRET", NONE, "the webhooks' `whsec_…` signing secret (local runs)"),
    ("CHANGE_WEBHOOK_SECRET_ARN", NONE, "Secrets Manager secret (name or ARN) holding the `whsec_…` signing secret, read once at start when CHANGE_WEBHOOK_SECRET is unset (the deployed sync function)"),
    ("CHANGE_NOTIFY_TIMEOUT_MS", "10000", "the most one sync spends delivering notifications, retries included (100 to 15000: it runs in the 20 s a sync Lambda keeps back for publishing); what is left undelivered goes with the next sync"),
    ("PUBLIC_BASE_URL", NONE, "the read API's public URL (`https://…/api/connections/schemas/composio`), for the notifications' `changesUrl`"),
    ("CACHE_BUCKET", NONE, "S3 bucket; when unset the cache is the directory CACHE_DIR"),
    ("CACHE_PREFIX", "composio-schemas/", "key prefix of every object, in S3 and in CACHE_DIR"),
    ("CACHE_S3_FORCE_PATH_STYLE", "false", "path-style S3 addressing (local S3 servers need it)"),
    ("CACHE_DIR", ".composio-cache", "directory of the cache when no bucket is set"),
    ("READ_META_TTL_MS", "5000", "how long a warm reader trusts its copy of the meta before checking its ETag"),
    ("READ_STALE_IF_ERROR_MS", "600000", "how long a warm reader keeps serving its copy (marked `x-cache-stale: true`) when the store cannot be reached"),
    ("READ_CACHE_BYTES", "67108864", "bound of the warm reader's cache of ready answers (every coding), in bytes; least recently used answers go first"),
    ("READ_CACHE_CONTROL", "public, max-age=60, stale-while-revalidate=600", "`Cache-Control` of read answers (errors are `no-store`)"),
    ("AWS_LAMBDA_LOG_FORMAT", "Text", "`JSON` for one JSON object per log line (set by the functions' LoggingConfig), with the span's `syncId` / `requestId`"),
    ("AWS_LAMBDA_LOG_LEVEL", NONE, "log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL; set by LoggingConfig); wins over RUST_LOG"),
    ("METRICS_FORMAT", NONE, "`emf` for CloudWatch Embedded Metric Format records (stdout on Lambda, stderr elsewhere); on by default under Lambda, `none` turns them off"),
    ("METRICS_NAMESPACE", "ComposioSchemaCache", "CloudWatch namespace of the metrics (dimension: `FunctionName`)"),
    ("RUST_LOG", "info", "log filter: a level and `target=level` pairs, e.g. `warn,composio_schema_cache=debug`"),
];

fn default_of(name: &str) -> Option<&'static str> {
    VARIABLES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, default, _)| *default)
        .filter(|d| *d != NONE)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("COMPOSIO_API_KEY is not set: a sync needs the Composio project's API key")]
    MissingApiKey,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    S3 {
        bucket: String,
        prefix: String,
        force_path_style: bool,
    },
    Dir {
        dir: PathBuf,
        prefix: String,
    },
}

impl StoreConfig {
    pub fn prefix(&self) -> &str {
        match self {
            Self::S3 { prefix, .. } | Self::Dir { prefix, .. } => prefix,
        }
    }
}

/// The upstream: where, with which key, how fast and how patiently.
#[derive(Debug, Clone)]
pub struct ComposioConfig {
    pub api_key: Option<ApiKey>,
    /// Where to read the key when `api_key` is unset (Secrets Manager).
    pub api_key_secret: Option<String>,
    pub base_url: String,
    pub api_version: ApiVersion,
    pub no_auth_toolkits: Vec<Slug>,
    pub max_rps: Option<u32>,
    pub burst: u32,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: usize,
    pub retry_budget: Duration,
    pub max_body_bytes: usize,
    pub page_limit: u32,
}

/// The engine: how much at once, how long, how safely.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub scope: crate::sync::Scope,
    pub changes_retention: Duration,
    pub concurrency: usize,
    pub timeout: Duration,
    pub store_timeout: Duration,
    pub lease_ttl: Duration,
    pub heartbeat: Duration,
    pub max_shrink: f64,
}

/// The warm reader.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    pub meta_ttl: Duration,
    pub stale_if_error: Duration,
    pub cache_bytes: u64,
    pub cache_control: axum::http::HeaderValue,
}

impl ReadConfig {
    pub fn reader_config(&self) -> crate::http::ReaderConfig {
        crate::http::ReaderConfig {
            meta_ttl: self.meta_ttl,
            stale_if_error: self.stale_if_error,
            cache_bytes: self.cache_bytes,
            max_answer_bytes: crate::http::DEFAULT_MAX_ANSWER_BYTES,
            max_convert_time: crate::http::DEFAULT_MAX_CONVERT_TIME,
            out_of_time_retry: crate::http::DEFAULT_OUT_OF_TIME_RETRY,
        }
    }
}

/// What a command that only reads the cache needs (`status`, `search`,
/// `export`): where the cache is and how to read it, parsed alone, so a bad
/// variable of the sync or of Composio cannot stop them.
#[derive(Debug, Clone)]
pub struct ReadSide {
    pub store: StoreConfig,
    pub read: ReadConfig,
}

impl ReadSide {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars { get };
        Ok(Self {
            store: store(&vars)?,
            read: read(&vars)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub composio: ComposioConfig,
    pub sync: SyncConfig,
    pub store: StoreConfig,
    pub read: ReadConfig,
    pub notify: NotifyConfig,
}

/// Where published change sets are announced.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub event_bus: Option<String>,
    pub webhook_urls: Vec<String>,
    pub webhook_secret: Option<WebhookSecret>,
    /// Where to read the secret when `webhook_secret` is unset (Secrets Manager).
    pub webhook_secret_id: Option<String>,
    pub timeout: Duration,
    pub public_base_url: Option<String>,
}

/// Webhooks one sync may post to.
pub const MAX_WEBHOOK_URLS: usize = 10;

/// Reads variables through `get`, falling back on the table's defaults.
struct Vars<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| default_of(name).map(str::to_owned))
    }

    fn number(&self, name: &'static str) -> Result<u64, ConfigError> {
        let raw = self.text(name).unwrap_or_default();
        raw.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("{raw:?} is not a whole number"),
        })
    }

    fn ranged(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n = self.number(name)?;
        if !range.contains(&n) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("must be {} to {}", range.start(), range.end()),
            });
        }
        Ok(n)
    }

    fn ms(&self, name: &'static str) -> Result<Duration, ConfigError> {
        self.number(name).map(Duration::from_millis)
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                reason: format!("{other:?} is not true or false"),
            }),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Every default, as if no variable were set.
    pub fn defaults() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid")
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars { get };
        Ok(Self {
            composio: composio(&vars)?,
            sync: sync(&vars)?,
            store: store(&vars)?,
            notify: notify(&vars)?,
            read: read(&vars)?,
        })
    }

    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let c = &self.composio;
        let key = c.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        let mut client = ClientConfig::new(c.base_url.clone(), key);
        client.api_version = c.api_version;
        client.page_limit = c.page_limit;
        client.max_rps = c.max_rps;
        client.burst = c.burst;
        client.request_timeout = c.request_timeout;
        client.connect_timeout = c.connect_timeout;
        client.max_retries = c.max_retries;
        client.retry_budget = c.retry_budget;
        client.max_body_bytes = c.max_body_bytes;
        Ok(client)
    }

    pub fn sync_settings(&self) -> SyncSettings {
        SyncSettings {
            scope: self.sync.scope.clone(),
            no_auth_toolkits: self.composio.no_auth_toolkits.clone(),
            concurrency: self.sync.concurrency,
            lease_ttl: self.sync.lease_ttl,
            heartbeat: self.sync.heartbeat,
            timeout: self.sync.timeout,
            max_shrink: self.sync.max_shrink,
            store_timeout: self.sync.store_timeout,
            changes_retention: self.sync.changes_retention,
            notify_timeout: self.notify.timeout,
            public_base_url: self.notify.public_base_url.clone(),
        }
    }
}

fn composio<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<ComposioConfig, ConfigError> {
    let no_auth_toolkits = vars
        .text("COMPOSIO_NO_AUTH_TOOLKITS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Slug::parse(s).map_err(|e| ConfigError::Invalid {
                name: "COMPOSIO_NO_AUTH_TOOLKITS",
                reason: format!("{s:?}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let base_url = vars.text("COMPOSIO_BASE_URL").unwrap_or_default();
    // The key travels in a header: plain HTTP only to this machine (the emulator).
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !(base_url.starts_with("https://") || loopback.iter().any(|p| base_url.starts_with(p))) {
        return Err(ConfigError::Invalid {
            name: "COMPOSIO_BASE_URL",
            reason:
                "must start with https:// (plain http:// only to 127.0.0.1, localhost or [::1])"
                    .into(),
        });
    }
    let max_rps = vars.number("COMPOSIO_MAX_RPS")?;
    let api_version = vars
        .text("COMPOSIO_API_VERSION")
        .unwrap_or_default()
        .parse::<ApiVersion>()
        .map_err(|reason| ConfigError::Invalid {
            name: "COMPOSIO_API_VERSION",
            reason,
        })?;
    Ok(ComposioConfig {
        api_key: (vars.get)("COMPOSIO_API_KEY").and_then(ApiKey::new),
        api_key_secret: vars.text("COMPOSIO_API_KEY_SECRET"),
        api_version,
        base_url,
        no_auth_toolkits,
        max_rps: (max_rps > 0).then_some(max_rps.min(u64::from(u32::MAX)) as u32),
        burst: vars.ranged("COMPOSIO_BURST", 1..=10_000)? as u32,
        request_timeout: vars.ms("COMPOSIO_TIMEOUT_MS")?,
        connect_timeout: vars.ms("COMPOSIO_CONNECT_TIMEOUT_MS")?,
        max_retries: vars.number("COMPOSIO_MAX_RETRIES")? as usize,
        retry_budget: vars.ms("COMPOSIO_RETRY_BUDGET_MS")?,
        max_body_bytes: vars.number("COMPOSIO_MAX_BODY_BYTES")? as usize,
        page_limit: vars.ranged("COMPOSIO_PAGE_LIMIT", 1..=1000)? as u32,
    })
}

fn slug_list<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    name: &'static str,
) -> Result<Vec<Slug>, ConfigError> {
    vars.text(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Slug::parse(s).map_err(|e| ConfigError::Invalid {
                name,
                reason: format!("{s:?}: {e}"),
            })
        })
        .collect()
}

fn scope<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<crate::sync::Scope, ConfigError> {
    use crate::sync::Scope;
    let explicit = slug_list(vars, "SYNC_TOOLKITS")?;
    if !explicit.is_empty() {
        return Ok(Scope::Toolkits(explicit));
    }
    match vars.text("SYNC_SCOPE").unwrap_or_default().as_str() {
        "project" => Ok(Scope::Project),
        "catalog" => Ok(Scope::Catalog),
        other => Err(ConfigError::Invalid {
            name: "SYNC_SCOPE",
            reason: format!("{other:?}: use project or catalog (or SYNC_TOOLKITS for a list)"),
        }),
    }
}

fn sync<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<SyncConfig, ConfigError> {
    let timeout = vars.ms("SYNC_TIMEOUT_MS")?;
    let store_timeout = vars.ms("SYNC_STORE_TIMEOUT_MS")?;
    let lease_ttl = vars.ms("SYNC_LEASE_TTL_MS")?;
    // Every mode's deadline is at most SYNC_TIMEOUT_MS (a Lambda's remaining
    // time can only shorten it), and after it only bounded store operations
    // run: the lease must outlive all of them.
    let longest = timeout + store_timeout * STORE_OPS_AFTER_DEADLINE + LEASE_SAFETY;
    if lease_ttl < longest {
        return Err(ConfigError::Invalid {
            name: "SYNC_LEASE_TTL_MS",
            reason: format!(
                "{} does not cover SYNC_TIMEOUT_MS ({}) + {STORE_OPS_AFTER_DEADLINE} × SYNC_STORE_TIMEOUT_MS ({}) + the lease's {} ms safety margin = {} ms, the longest a sync can run: every sync would stop with \"lease expired\"",
                lease_ttl.as_millis(),
                timeout.as_millis(),
                store_timeout.as_millis(),
                LEASE_SAFETY.as_millis(),
                longest.as_millis()
            ),
        });
    }
    let heartbeat = Duration::from_millis(vars.ranged("SYNC_LEASE_HEARTBEAT_MS", 100..=60_000)?);
    let max_shrink = vars
        .text("SYNC_MAX_SHRINK")
        .unwrap_or_default()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| ConfigError::Invalid {
            name: "SYNC_MAX_SHRINK",
            reason: "must be a percentage from 0 to 100".into(),
        })?;
    Ok(SyncConfig {
        changes_retention: Duration::from_secs(
            vars.ranged("CHANGES_RETENTION_DAYS", 1..=3650)? * 24 * 3600,
        ),
        concurrency: vars.ranged("SYNC_CONCURRENCY", 1..=256)? as usize,
        scope: scope(vars)?,
        timeout,
        store_timeout,
        lease_ttl,
        heartbeat,
        max_shrink: max_shrink / 100.0,
    })
}

fn read<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<ReadConfig, ConfigError> {
    Ok(ReadConfig {
        meta_ttl: vars.ms("READ_META_TTL_MS")?,
        stale_if_error: vars.ms("READ_STALE_IF_ERROR_MS")?,
        cache_bytes: vars.ranged("READ_CACHE_BYTES", 1 << 20..=1 << 40)?,
        cache_control: {
            let raw = vars.text("READ_CACHE_CONTROL").unwrap_or_default();
            axum::http::HeaderValue::from_str(&raw).map_err(|_| ConfigError::Invalid {
                name: "READ_CACHE_CONTROL",
                reason: "is not a valid header value".into(),
            })?
        },
    })
}

fn notify<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<NotifyConfig, ConfigError> {
    let webhook_urls: Vec<String> = vars
        .text("CHANGE_WEBHOOK_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let invalid = |name, reason| ConfigError::Invalid { name, reason };
    if webhook_urls.len() > MAX_WEBHOOK_URLS {
        return Err(invalid(
            "CHANGE_WEBHOOK_URLS",
            format!("at most {MAX_WEBHOOK_URLS} URLs"),
        ));
    }
    for url in &webhook_urls {
        crate::notify::validate_webhook_url(url).map_err(|e| invalid("CHANGE_WEBHOOK_URLS", e))?;
    }
    let webhook_secret = match (vars.get)("CHANGE_WEBHOOK_SECRET").filter(|s| !s.trim().is_empty())
    {
        Some(raw) => {
            Some(WebhookSecret::parse(&raw).map_err(|e| invalid("CHANGE_WEBHOOK_SECRET", e))?)
        }
        None => None,
    };
    let webhook_secret_id = vars.text("CHANGE_WEBHOOK_SECRET_ARN");
    if !webhook_urls.is_empty() && webhook_secret.is_none() && webhook_secret_id.is_none() {
        return Err(invalid(
            "CHANGE_WEBHOOK_URLS",
            "webhooks are signed: set CHANGE_WEBHOOK_SECRET (whsec_…) or CHANGE_WEBHOOK_SECRET_ARN"
                .into(),
        ));
    }
    let public_base_url = vars.text("PUBLIC_BASE_URL");
    if let Some(url) = &public_base_url {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(invalid("PUBLIC_BASE_URL", "must be an http(s) URL".into()));
        }
    }
    Ok(NotifyConfig {
        event_bus: vars.text("CHANGE_EVENT_BUS"),
        webhook_urls,
        webhook_secret,
        webhook_secret_id,
        // Within the 20 s a sync Lambda keeps back after its fetch deadline.
        timeout: Duration::from_millis(vars.ranged("CHANGE_NOTIFY_TIMEOUT_MS", 100..=15_000)?),
        public_base_url,
    })
}

fn store<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<StoreConfig, ConfigError> {
    // An empty prefix is allowed: the raw value, not the trimmed-or-default one.
    let prefix = (vars.get)("CACHE_PREFIX")
        .unwrap_or_else(|| default_of("CACHE_PREFIX").unwrap_or_default().to_owned());
    validate_prefix(&prefix).map_err(|reason| ConfigError::Invalid {
        name: "CACHE_PREFIX",
        reason,
    })?;
    Ok(match vars.text("CACHE_BUCKET") {
        Some(bucket) => StoreConfig::S3 {
            bucket,
            prefix,
            force_path_style: vars.flag("CACHE_S3_FORCE_PATH_STYLE")?,
        },
        None => StoreConfig::Dir {
            dir: PathBuf::from(vars.text("CACHE_DIR").unwrap_or_default()),
            prefix,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_use_the_local_directory() {
        let c = config(&[]).unwrap();
        assert!(c.composio.api_key.is_none());
        assert_eq!(
            c.store,
            StoreConfig::Dir {
                dir: ".composio-cache".into(),
                prefix: "composio-schemas/".into()
            }
        );
        assert_eq!(
            c.composio.no_auth_toolkits,
            [Slug::parse("browser_tool").unwrap()]
        );
        assert_eq!(
            (
                c.sync.concurrency,
                c.composio.max_rps,
                c.composio.page_limit
            ),
            (32, Some(25), 1000)
        );
        assert_eq!(c.sync.max_shrink, 0.5);
        assert!(matches!(c.client_config(), Err(ConfigError::MissingApiKey)));
    }

    #[test]
    fn every_default_comes_from_the_table() {
        let c = Config::defaults();
        let table = |name| default_of(name).unwrap().parse::<u64>().unwrap();
        assert_eq!(c.sync.timeout.as_millis() as u64, table("SYNC_TIMEOUT_MS"));
        assert_eq!(
            c.sync.lease_ttl.as_millis() as u64,
            table("SYNC_LEASE_TTL_MS")
        );
        assert_eq!(
            c.composio.retry_budget.as_millis() as u64,
            table("COMPOSIO_RETRY_BUDGET_MS")
        );
        assert_eq!(
            c.read.meta_ttl.as_millis() as u64,
            table("READ_META_TTL_MS")
        );
        assert_eq!(c.composio.burst as u64, table("COMPOSIO_BURST"));
    }

    #[test]
    fn reading_the_cache_needs_only_the_store_and_reader_variables() {
        let broken = |name: &str| {
            let name = name.to_owned();
            move |n: &str| (n == name).then(|| "lots".to_owned())
        };
        for unrelated in ["SYNC_CONCURRENCY", "COMPOSIO_MAX_RPS", "SYNC_LEASE_TTL_MS"] {
            assert!(
                Config::from_lookup(broken(unrelated)).is_err(),
                "{unrelated}"
            );
            let side = ReadSide::from_lookup(broken(unrelated)).unwrap();
            assert_eq!(side.store, Config::defaults().store);
        }
        for own in ["READ_META_TTL_MS", "READ_CACHE_BYTES"] {
            assert!(ReadSide::from_lookup(broken(own)).is_err(), "{own}");
        }
    }

    #[test]
    fn a_bucket_selects_s3() {
        let c = config(&[
            ("CACHE_BUCKET", "my-bucket"),
            ("CACHE_PREFIX", "p/"),
            ("CACHE_S3_FORCE_PATH_STYLE", "true"),
            ("COMPOSIO_API_VERSION", "v3"),
            ("COMPOSIO_NO_AUTH_TOOLKITS", "browser_tool, codeinterpreter"),
            ("COMPOSIO_MAX_RPS", "0"),
            ("SYNC_MAX_SHRINK", "80%"),
        ])
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::S3 {
                bucket: "my-bucket".into(),
                prefix: "p/".into(),
                force_path_style: true
            }
        );
        assert_eq!(c.composio.no_auth_toolkits.len(), 2);
        assert_eq!(c.composio.max_rps, None);
        assert_eq!(c.composio.api_version, crate::composio::ApiVersion::V3);
        assert_eq!(c.sync.max_shrink, 0.8);
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("SYNC_CONCURRENCY", "lots"),
            ("SYNC_CONCURRENCY", "0"),
            ("CACHE_PREFIX", "../x/"),
            ("COMPOSIO_API_VERSION", "v4"),
            ("SYNC_SCOPE", "everything"),
            ("SYNC_TOOLKITS", "github,../x"),
            ("COMPOSIO_NO_AUTH_TOOLKITS", "../etc"),
            ("COMPOSIO_BASE_URL", "ftp://x"),
            ("COMPOSIO_BASE_URL", "http://backend.composio.dev"),
            ("SYNC_LEASE_TTL_MS", "1000"),
            ("COMPOSIO_PAGE_LIMIT", "5000"),
            ("CACHE_S3_FORCE_PATH_STYLE", "yes please"),
            ("SYNC_MAX_SHRINK", "150"),
            ("SYNC_MAX_SHRINK", "half"),
            ("COMPOSIO_BURST", "0"),
            ("READ_CACHE_BYTES", "12"),
            ("READ_CACHE_CONTROL", "bad\nvalue"),
        ] {
            let err = config(&[(name, value), ("CACHE_BUCKET", "b")])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_lease_must_outlive_the_longest_sync() {
        // 760 s + 9 × 15 s + 5 s = 900 s: the defaults fit exactly.
        assert!(config(&[("SYNC_LEASE_TTL_MS", "900000")]).is_ok());
        assert!(config(&[("SYNC_LEASE_TTL_MS", "899999")]).is_err());
        let err = config(&[("SYNC_STORE_TIMEOUT_MS", "20000")]).unwrap_err();
        assert!(
            err.to_string().contains("the longest a sync can run"),
            "{err}"
        );
        assert!(config(&[
            ("SYNC_STORE_TIMEOUT_MS", "20000"),
            ("SYNC_TIMEOUT_MS", "700000")
        ])
        .is_ok());
        // The case: 2000 + 8 × 250 = 4000 fitted without the margin.
        let err = config(&[
            ("SYNC_LEASE_TTL_MS", "4000"),
            ("SYNC_TIMEOUT_MS", "2000"),
            ("SYNC_STORE_TIMEOUT_MS", "250"),
        ])
        .unwrap_err()
        .to_string();
        for named in [
            "SYNC_LEASE_TTL_MS",
            "4000",
            "SYNC_TIMEOUT_MS (2000)",
            "SYNC_STORE_TIMEOUT_MS (250)",
            "5000 ms safety margin",
            "= 9250 ms",
        ] {
            assert!(err.contains(named), "{named}: {err}");
        }
        assert!(config(&[
            ("SYNC_LEASE_TTL_MS", "9250"),
            ("SYNC_TIMEOUT_MS", "2000"),
            ("SYNC_STORE_TIMEOUT_MS", "250"),
        ])
        .is_ok());
    }

    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for (name, default, _) in VARIABLES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")));
            let row = row.unwrap_or_else(|| panic!("README has no row for {name}"));
            assert!(
                row.contains(default),
                "README row of {name} must show its default {default}"
            );
        }
    }

    #[test]
    fn api_key_never_shows_in_debug() {
        let c = config(&[("COMPOSIO_API_KEY", "sk_secret_value")]).unwrap();
        assert!(!format!("{c:?}").contains("sk_secret_value"));
    }
}
