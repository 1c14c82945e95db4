//! Wiring shared by the binaries: build the store, the client and the engine
//! once from a `Config`, and set up logging.

use crate::composio::{ApiKey, ComposioClient};
use crate::config::{Config, ConfigError, StoreConfig};
use crate::http::{router_from, CacheReader, RouterParts};
use crate::notify::{EventBridgeNotifier, Notifier, WebhookConfig, WebhookNotifier};
use crate::store::{FsStore, S3Store, Store, StoreError};
use crate::sync::SyncEngine;
use std::sync::Arc;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("COMPOSIO_API_KEY_SECRET {secret}: {detail}")]
    Secret { secret: String, detail: String },
    #[error("CHANGE_WEBHOOK_SECRET_ARN {secret}: {detail}")]
    WebhookSecret { secret: String, detail: String },
    #[error("change notifications: {0}")]
    Notify(String),
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

/// Every secret the configuration names in Secrets Manager, once: the
/// Composio key and the webhooks' signing secret.
pub async fn resolve_secrets(config: &mut Config) -> Result<(), SetupError> {
    resolve_api_key(config).await?;
    let notify = &mut config.notify;
    let Some(secret) = notify.webhook_secret_id.clone() else {
        return Ok(());
    };
    if notify.webhook_secret.is_some() {
        return Ok(());
    }
    let client = aws_sdk_secretsmanager::Client::new(&crate::store::aws_environment().await);
    let fail = |detail: String| SetupError::WebhookSecret {
        secret: secret.clone(),
        detail,
    };
    let value = client
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    let text = value
        .secret_string()
        .ok_or_else(|| fail("the secret has no string value".into()))?;
    notify.webhook_secret = Some(crate::notify::WebhookSecret::parse(text).map_err(fail)?);
    Ok(())
}

/// The key from Secrets Manager, once, when `COMPOSIO_API_KEY` is not set
/// and `COMPOSIO_API_KEY_SECRET` names a secret. Its value is the bare key or
/// JSON with a `COMPOSIO_API_KEY` or `apiKey` field; it never reaches a log.
pub async fn resolve_api_key(config: &mut Config) -> Result<(), SetupError> {
    let Some(secret) = config.composio.api_key_secret.clone() else {
        return Ok(());
    };
    if config.composio.api_key.is_some() {
        return Ok(());
    }
    let client = aws_sdk_secretsmanager::Client::new(&crate::store::aws_environment().await);
    config.composio.api_key = Some(key_from_secrets_manager(&client, &secret).await?);
    Ok(())
}

/// The key held by `secret` (a name or an ARN).
pub async fn key_from_secrets_manager(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> Result<ApiKey, SetupError> {
    let fail = |detail: String| SetupError::Secret {
        secret: secret.to_owned(),
        detail,
    };
    let value = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    let text = value
        .secret_string()
        .ok_or_else(|| fail("the secret has no string value".into()))?;
    key_from_secret(text).ok_or_else(|| {
        fail(
            "no key in the secret (expected the bare key, or JSON with COMPOSIO_API_KEY or apiKey)"
                .into(),
        )
    })
}

/// A secret's value: the bare key, or JSON `{"COMPOSIO_API_KEY": ...}` / `{"apiKey": ...}`.
pub fn key_from_secret(value: &str) -> Option<ApiKey> {
    let value = value.trim();
    if value.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(value).ok()?;
        let key = ["COMPOSIO_API_KEY", "apiKey"]
            .iter()
            .find_map(|field| json.get(*field)?.as_str())?;
        return ApiKey::new(key);
    }
    ApiKey::new(value)
}

/// Logs and metrics, the Lambda way (see `init_tracing` and `telemetry`).
pub fn init_telemetry(default_level: &str) {
    init_tracing(default_level);
    crate::telemetry::init_metrics(&crate::telemetry::MetricsConfig::from_lookup(|name| {
        std::env::var(name).ok()
    }));
}

/// The one router, over a warm reader of `store`; `engine` enables `POST /sync`.
pub fn build_router(
    config: &Config,
    store: Arc<dyn Store>,
    engine: Option<Arc<dyn crate::sync::Syncer>>,
) -> axum::Router {
    let reader = Arc::new(CacheReader::new(store, config.read.reader_config()));
    router_from(RouterParts {
        reader,
        sync: engine,
        cache_control: config.read.cache_control.clone(),
    })
}

pub async fn build_engine(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<SyncEngine, SetupError> {
    let client = ComposioClient::new(config.client_config()?)?;
    let engine = SyncEngine::new(client, store, config.sync_settings())
        .with_report_sink(Arc::new(crate::telemetry::record_sync))
        .with_notifiers(build_notifiers(config).await?);
    Ok(engine)
}

/// EventBridge when a bus is named, one signed webhook per URL.
pub async fn build_notifiers(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, SetupError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(bus) = &config.notify.event_bus {
        let client = EventBridgeNotifier::client_from_env().await;
        notifiers.push(Arc::new(EventBridgeNotifier::new(client, bus)));
    }
    if config.notify.webhook_urls.is_empty() {
        return Ok(notifiers);
    }
    let secret = config.notify.webhook_secret.as_ref().ok_or_else(|| {
        SetupError::Notify(
            "webhooks need CHANGE_WEBHOOK_SECRET or CHANGE_WEBHOOK_SECRET_ARN".into(),
        )
    })?;
    for url in &config.notify.webhook_urls {
        let hook = WebhookNotifier::new(url, secret, WebhookConfig::default())
            .map_err(SetupError::Notify)?;
        notifiers.push(Arc::new(hook));
    }
    Ok(notifiers)
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
    // The builder filters at INFO by default: let the filter decide instead.
    // Colour only for a person at a terminal: a file, a pipe or CloudWatch
    // gets the text without escape codes (and NO_COLOR is honoured).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
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
    fn a_secret_holds_the_bare_key_or_json() {
        let show = |v: &str| key_from_secret(v).map(|k| k.redact("K1 K2 K3"));
        assert_eq!(show("K1"), Some("[redacted] K2 K3".into()));
        assert_eq!(
            show(r#"{"COMPOSIO_API_KEY": "K2"}"#),
            Some("K1 [redacted] K3".into())
        );
        assert_eq!(
            show(r#"{"apiKey": "K3", "other": 1}"#),
            Some("K1 K2 [redacted]".into())
        );
        assert!(key_from_secret(r#"{"nothing": "here"}"#).is_none());
        assert!(key_from_secret("  ").is_none());
    }

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
