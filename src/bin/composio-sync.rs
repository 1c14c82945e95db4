//! The sync Lambda: API Gateway `POST .../sync`, the EventBridge schedule, and
//! direct invokes (`{}` or `{"full": true}`). Clients are built once per cold start.

use composio_schema_cache::app::{
    build_engine, build_router, build_store, init_telemetry, resolve_secrets,
};
use composio_schema_cache::config::Config;
use composio_schema_cache::lambda::handle_sync_event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_telemetry("info");
    let mut config = Config::from_env()?;
    resolve_secrets(&mut config).await?;
    let store = build_store(&config).await?;
    let engine = build_engine(&config, store.clone()).await?;
    let app = build_router(&config, store, Some(std::sync::Arc::new(engine.clone())));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = app.clone();
        let engine = engine.clone();
        async move { handle_sync_event(app, &engine, event).await }
    }))
    .await
}
