//! Wiring shared by the binaries: build the store, the client and the engine
//! once from a `Config`, and set up logging.

use crate::composio::ComposioClient;
use crate::config::{Config, ConfigError, StoreConfig};
use crate::http::{router_and_doc, CacheReader, RouterParts};
use crate::store::{FsStore, S3Store, Store, StoreError};
use crate::sync::SyncEngine;
use std::sync::Arc;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Composio client: {0}")]
    Client(#[from] crate::composio::UpstreamError),
}

pub async fn build_store(config: &Config) -> Result<Arc<dyn Store>, SetupError> {
    Ok(match &config.store {
        StoreConfig::S3 {
            bucket,
            prefix,
            force_path_style,
        } => {
            let client = S3Store::client_from_env(*force_path_style).await;
            Arc::new(S3Store::new(client, bucket.clone(), prefix)?)
        }
        StoreConfig::Dir { dir, prefix } => Arc::new(FsStore::new(dir, prefix)?),
    })
}

/// The one router, over a warm reader of `store`; `engine` enables `POST /sync`.
pub fn build_router(
    config: &Config,
    store: Arc<dyn Store>,
    engine: Option<Arc<dyn crate::sync::Syncer>>,
) -> axum::Router {
    let reader = Arc::new(CacheReader::new(store, config.read.reader_config()));
    router_and_doc(RouterParts {
        reader,
        sync: engine,
        cache_control: config.read.cache_control.clone(),
    })
    .0
}

pub fn build_engine(config: &Config, store: Arc<dyn Store>) -> Result<SyncEngine, SetupError> {
    let client = ComposioClient::new(config.client_config()?)?;
    Ok(SyncEngine::new(client, store, config.sync_settings()))
}

/// Logs the Lambda way (as `lambda_runtime`'s own subscriber does, without
/// its regex-based filter): `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON
/// object per line, with the fields of the spans around it, so every line of
/// a sync carries its `syncId` and every line of a request its `requestId`;
/// `AWS_LAMBDA_LOG_LEVEL` sets the level, else `RUST_LOG`, else
/// `default_level`. Text otherwise. Always on stderr: stdout is for answers
/// (the CLI's report) and metrics (EMF records).
pub fn init_tracing(default_level: &str) {
    let var = |name| {
        std::env::var(name)
            .ok()
            .filter(|v: &String| !v.trim().is_empty())
    };
    let filter = log_filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
        default_level,
    );
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if json {
        let subscriber = builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .finish()
            .with(filter);
        tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
    } else {
        let subscriber = builder.finish().with(filter);
        tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The log filter: Lambda's level names (`FATAL` is `ERROR` here), else a
/// `RUST_LOG` of levels and `target=level` pairs, else the default.
pub fn log_filter(
    lambda_level: Option<&str>,
    rust_log: Option<&str>,
    default_level: &str,
) -> Targets {
    use std::str::FromStr;
    let level = |raw: &str| match raw.trim().to_ascii_uppercase().as_str() {
        "FATAL" => Some(LevelFilter::ERROR),
        other => LevelFilter::from_str(other).ok(),
    };
    if let Some(level) = lambda_level.and_then(level) {
        return Targets::new().with_default(level);
    }
    if let Some(targets) = rust_log.and_then(|r| Targets::from_str(r).ok()) {
        return targets;
    }
    Targets::new().with_default(level(default_level).unwrap_or(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn the_lambda_level_wins_then_rust_log_then_the_default() {
        let f = log_filter(Some("DEBUG"), Some("error"), "warn");
        assert!(f.would_enable("x", &Level::DEBUG) && !f.would_enable("x", &Level::TRACE));
        let f = log_filter(Some("FATAL"), None, "info");
        assert!(f.would_enable("x", &Level::ERROR) && !f.would_enable("x", &Level::WARN));
        let f = log_filter(None, Some("warn,composio_schema_cache=debug"), "info");
        assert!(f.would_enable("composio_schema_cache::sync", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
        let f = log_filter(Some("nonsense"), Some("info,x=loud"), "warn");
        assert!(f.would_enable("x", &Level::WARN) && !f.would_enable("x", &Level::INFO));
    }
}
