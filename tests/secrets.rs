//! The Composio key never appears in a log line (at trace level, every crate
//! included), an error, a report, a stored object or an HTTP response.

mod support;

use composio_schema_cache::composio::{ApiKey, ComposioClient};
use composio_schema_cache::emulator::{
    Catalog, Emulator, EmulatorConfig, Fault, FaultKind, FaultTarget,
};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::store::{MemoryStore, Store};
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sk-live-LEAKCHECK-7f3a9c0d2e";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An upstream that echoes the key it was sent in its error message.
async fn echoing_upstream() -> String {
    use axum::http::HeaderMap;
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let sent = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": {"message": format!("API key {sent} is not valid"), "code": 401, "status": 401}})),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_key_appears_nowhere() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let mut seen = String::new();

    let mut config = EmulatorConfig::new(Catalog::sample());
    config.api_key = KEY.into();
    let emu = Emulator::start(config).await.unwrap();
    let mut client_config = support::client_config(&emu);
    client_config.api_key = ApiKey::new(KEY).unwrap();
    let client = ComposioClient::new(client_config.clone()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = SyncEngine::new(
        client.clone(),
        store.clone(),
        composio_schema_cache::config::Config::defaults().sync_settings(),
    );

    // A good sync, then one with every kind of fault.
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert!(report.success);
    seen += &serde_json::to_string(&report).unwrap();
    emu.set_fault(
        "github",
        Fault::always(FaultKind::Status(503), FaultTarget::Tools),
    );
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Malformed, FaultTarget::Tools),
    );
    emu.set_fault(
        "firecrawl",
        Fault::always(FaultKind::Reset, FaultTarget::Tools),
    );
    emu.set_fault(
        "browseai",
        Fault::always(FaultKind::Status(404), FaultTarget::Tools),
    );
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert_eq!(report.failed.len(), 4);
    seen += &format!("{report:?}");
    emu.set_listing_fault(
        "auth_configs",
        Fault::always(FaultKind::Status(500), FaultTarget::Both),
    );
    seen += &format!("{:?}", engine.run(SyncRequest::default()).await.unwrap());

    // An upstream that echoes the key: our error text must not.
    let mut echo_config = client_config.clone();
    echo_config.base_url = echoing_upstream().await;
    let err = ComposioClient::new(echo_config)
        .unwrap()
        .list_auth_configs()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("[redacted]"), "{text}");
    seen += &text;
    seen += &format!("{client_config:?}");

    // Every route, and the stored objects.
    let reader = Arc::new(CacheReader::new(
        store.clone(),
        ReaderConfig::new(Duration::ZERO),
    ));
    let app = router(reader, Some(Arc::new(engine.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{BASE}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = composio_schema_cache::tls::http_client();
    for path in [
        "",
        "/toolkits",
        "/toolkits/github",
        "/toolkits/perplexityai/PERPLEXITYAI_PERPLEXITY_AI_SEARCH",
        "/sync/status",
        "/toolkits/..%2f",
        "/nope",
    ] {
        seen += &http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    seen += &http
        .post(format!("{base}/sync"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for object in store.list().await.unwrap() {
        let body = store.get(&object.key).await.unwrap().unwrap().body;
        seen += &String::from_utf8_lossy(&body);
    }

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.lines().count() > 50,
        "trace logging was captured ({} lines)",
        logged.lines().count()
    );
    assert!(seen.len() > 100_000, "responses and objects were collected");
    assert!(!logged.contains(KEY), "the key leaked into a log line");
    assert!(
        !seen.contains(KEY),
        "the key leaked into a response, report, error or object"
    );
}
