//! Every environment variable, parsed once into a typed `Config`. The README's
//! configuration table is checked against [`VARIABLES`] by a test.

use crate::cache::Slug;
use crate::composio::{ApiKey, ClientConfig};
use crate::store::validate_prefix;
use crate::sync::SyncSettings;
use std::path::PathBuf;
use std::time::Duration;

/// (name, default, meaning) of every variable the service reads.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("COMPOSIO_API_KEY", "(none)", "Composio project API key; needed to sync, never logged"),
    ("COMPOSIO_BASE_URL", "https://backend.composio.dev", "Composio API base URL; https, or plain http to loopback only (the emulator)"),
    ("COMPOSIO_NO_AUTH_TOOLKITS", "browser_tool", "comma-separated toolkits that need no auth config"),
    ("COMPOSIO_MAX_RPS", "25", "client-side request rate limit per sync (0 = none); 25/s = 1,500/min, under the starter plan's 2,000/min"),
    ("COMPOSIO_TIMEOUT_MS", "30000", "timeout of one upstream request"),
    ("COMPOSIO_CONNECT_TIMEOUT_MS", "5000", "connect timeout of one upstream request"),
    ("COMPOSIO_MAX_RETRIES", "4", "retries of a failed upstream call (408, 409, 429, 5xx, timeouts, resets)"),
    ("COMPOSIO_RETRY_BUDGET_MS", "60000", "total time one call may spend waiting between retries"),
    ("COMPOSIO_MAX_BODY_BYTES", "33554432", "largest upstream response body accepted"),
    ("COMPOSIO_PAGE_LIMIT", "1000", "page size asked of list calls (the API's maximum is 1000)"),
    ("SYNC_CONCURRENCY", "8", "toolkits fetched at once"),
    ("SYNC_TIMEOUT_MS", "780000", "time budget of a whole sync (on Lambda: the function's remaining time, less a margin)"),
    ("SYNC_LEASE_TTL_MS", "900000", "how long a sync lease holds if its holder dies; must exceed SYNC_TIMEOUT_MS by 60 s"),
    ("CACHE_BUCKET", "(none)", "S3 bucket; when unset the cache is the directory CACHE_DIR"),
    ("CACHE_PREFIX", "composio-schemas/", "key prefix of every object, in S3 and in CACHE_DIR"),
    ("CACHE_S3_FORCE_PATH_STYLE", "false", "path-style S3 addressing (local S3 servers need it)"),
    ("CACHE_DIR", ".composio-cache", "directory of the cache when no bucket is set"),
    ("READ_META_TTL_MS", "5000", "how long a warm reader trusts its copy of an object (the meta, a toolkit) before checking its ETag"),
    ("LOG_FORMAT", "text", "`json` for one JSON object per log line (Lambda)"),
    ("RUST_LOG", "info", "log filter (tracing-subscriber syntax)"),
];

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

#[derive(Debug, Clone)]
pub struct Config {
    pub api_key: Option<ApiKey>,
    pub base_url: String,
    pub no_auth_toolkits: Vec<Slug>,
    pub max_rps: Option<u32>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: usize,
    pub retry_budget: Duration,
    pub max_body_bytes: usize,
    pub page_limit: u32,
    pub concurrency: usize,
    pub sync_timeout: Duration,
    pub lease_ttl: Duration,
    pub store: StoreConfig,
    pub read_meta_ttl: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?} is not a whole number"),
                }),
            }
        };
        let ms =
            |name: &'static str, default: u64| number(name, default).map(Duration::from_millis);

        let no_auth_toolkits = var("COMPOSIO_NO_AUTH_TOOLKITS")
            .unwrap_or_else(|| "browser_tool".into())
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

        let prefix = get("CACHE_PREFIX").unwrap_or_else(|| "composio-schemas/".into());
        validate_prefix(&prefix).map_err(|reason| ConfigError::Invalid {
            name: "CACHE_PREFIX",
            reason,
        })?;
        let store = match var("CACHE_BUCKET") {
            Some(bucket) => StoreConfig::S3 {
                bucket,
                prefix,
                force_path_style: match var("CACHE_S3_FORCE_PATH_STYLE").as_deref() {
                    None | Some("false") | Some("0") => false,
                    Some("true") | Some("1") => true,
                    Some(other) => {
                        return Err(ConfigError::Invalid {
                            name: "CACHE_S3_FORCE_PATH_STYLE",
                            reason: format!("{other:?} is not true or false"),
                        })
                    }
                },
            },
            None => StoreConfig::Dir {
                dir: PathBuf::from(var("CACHE_DIR").unwrap_or_else(|| ".composio-cache".into())),
                prefix,
            },
        };
        let base_url =
            var("COMPOSIO_BASE_URL").unwrap_or_else(|| "https://backend.composio.dev".into());
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
        let page_limit = number("COMPOSIO_PAGE_LIMIT", 1000)?;
        if !(1..=1000).contains(&page_limit) {
            return Err(ConfigError::Invalid {
                name: "COMPOSIO_PAGE_LIMIT",
                reason: "must be 1 to 1000".into(),
            });
        }
        let concurrency = number("SYNC_CONCURRENCY", 8)?;
        if !(1..=256).contains(&concurrency) {
            return Err(ConfigError::Invalid {
                name: "SYNC_CONCURRENCY",
                reason: "must be 1 to 256".into(),
            });
        }
        let max_rps = number("COMPOSIO_MAX_RPS", 25)?;
        let sync_timeout = ms("SYNC_TIMEOUT_MS", 780_000)?;
        let lease_ttl = ms("SYNC_LEASE_TTL_MS", 900_000)?;
        // A lease must outlive the sync that holds it, publishing included.
        if lease_ttl < sync_timeout + Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                name: "SYNC_LEASE_TTL_MS",
                reason: "must exceed SYNC_TIMEOUT_MS by at least 60000".into(),
            });
        }
        Ok(Self {
            api_key: var("COMPOSIO_API_KEY").and_then(ApiKey::new),
            base_url,
            no_auth_toolkits,
            max_rps: (max_rps > 0).then_some(max_rps.min(u32::MAX as u64) as u32),
            request_timeout: ms("COMPOSIO_TIMEOUT_MS", 30_000)?,
            connect_timeout: ms("COMPOSIO_CONNECT_TIMEOUT_MS", 5_000)?,
            max_retries: number("COMPOSIO_MAX_RETRIES", 4)? as usize,
            retry_budget: ms("COMPOSIO_RETRY_BUDGET_MS", 60_000)?,
            max_body_bytes: number("COMPOSIO_MAX_BODY_BYTES", 32 * 1024 * 1024)? as usize,
            page_limit: page_limit as u32,
            concurrency: concurrency as usize,
            sync_timeout,
            lease_ttl,
            store,
            read_meta_ttl: ms("READ_META_TTL_MS", 5_000)?,
        })
    }

    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let key = self.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        let mut c = ClientConfig::new(self.base_url.clone(), key);
        c.page_limit = self.page_limit;
        c.max_rps = self.max_rps;
        c.request_timeout = self.request_timeout;
        c.connect_timeout = self.connect_timeout;
        c.max_retries = self.max_retries;
        c.retry_budget = self.retry_budget;
        c.max_body_bytes = self.max_body_bytes;
        Ok(c)
    }

    pub fn sync_settings(&self) -> SyncSettings {
        SyncSettings {
            no_auth_toolkits: self.no_auth_toolkits.clone(),
            concurrency: self.concurrency,
            lease_ttl: self.lease_ttl,
            timeout: self.sync_timeout,
        }
    }
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
        assert!(c.api_key.is_none());
        assert_eq!(
            c.store,
            StoreConfig::Dir {
                dir: ".composio-cache".into(),
                prefix: "composio-schemas/".into()
            }
        );
        assert_eq!(c.no_auth_toolkits, [Slug::parse("browser_tool").unwrap()]);
        assert_eq!(
            (c.concurrency, c.max_rps, c.page_limit),
            (8, Some(25), 1000)
        );
        assert!(matches!(c.client_config(), Err(ConfigError::MissingApiKey)));
    }

    #[test]
    fn a_bucket_selects_s3() {
        let c = config(&[
            ("CACHE_BUCKET", "my-bucket"),
            ("CACHE_PREFIX", "p/"),
            ("CACHE_S3_FORCE_PATH_STYLE", "true"),
            ("COMPOSIO_NO_AUTH_TOOLKITS", "browser_tool, codeinterpreter"),
            ("COMPOSIO_MAX_RPS", "0"),
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
        assert_eq!(c.no_auth_toolkits.len(), 2);
        assert_eq!(c.max_rps, None);
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("SYNC_CONCURRENCY", "lots"),
            ("SYNC_CONCURRENCY", "0"),
            ("CACHE_PREFIX", "../x/"),
            ("COMPOSIO_NO_AUTH_TOOLKITS", "../etc"),
            ("COMPOSIO_BASE_URL", "ftp://x"),
            ("COMPOSIO_BASE_URL", "http://backend.composio.dev"),
            ("SYNC_LEASE_TTL_MS", "1000"),
            ("COMPOSIO_PAGE_LIMIT", "5000"),
            ("CACHE_S3_FORCE_PATH_STYLE", "yes please"),
        ] {
            let err = config(&[(name, value), ("CACHE_BUCKET", "b")])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(name), "{name}={value}: {err}");
        }
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
