//! Wiring shared by the binaries: build the store, the client and the engine
//! once from a `Config`, and set up logging.

use crate::composio::ComposioClient;
use crate::config::{Config, ConfigError, StoreConfig};
use crate::http::{router_and_doc, CacheReader, RouterParts};
use crate::store::{FsStore, S3Store, Store, StoreError};
use crate::sync::SyncEngine;
use std::sync::Arc;

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
    engine: Option<SyncEngine>,
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

/// Logs go to stderr: text for people, JSON (`LOG_FORMAT=json`) for CloudWatch.
pub fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
