//! The read Lambda: the GET routes over the cache, read-only, no Composio key.
//! The reader is built once per cold start and stays warm between requests.

use composio_schema_cache::app::{build_router, build_store, init_telemetry};
use composio_schema_cache::config::Config;
use composio_schema_cache::lambda::http_service;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_telemetry("info");
    let config = Config::from_env()?;
    let store = build_store(&config).await?;
    lambda_http::run(http_service(build_router(&config, store, None))).await
}
