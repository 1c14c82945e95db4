//! Read measurements: in-process latencies (memory store) cold and warm,
//! answer sizes in every coding, compression cached vs per request, the
//! memory of `serve` and of the read bootstrap after walking a catalogue,
//! and the read bootstrap's cold start.

use crate::stats::{kb, ms, rss_kb, us, Samples, Table};
use axum::body::Body;
use axum::http::Request;
use composio_schema_cache::composio::{ApiKey, ClientConfig, ComposioClient};
use composio_schema_cache::config::Config;
use composio_schema_cache::emulator::RuntimeApi;
use composio_schema_cache::emulator::{Catalog, Emulator, EmulatorConfig};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::store::{FsStore, MemoryStore, Store};
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// Syncs `catalog` into `store` as fast as the emulator allows.
pub async fn fill(catalog: &Catalog, store: Arc<dyn Store>) -> Result<(), String> {
    let emu = Emulator::start(EmulatorConfig::new(catalog.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(emu.base_url(), ApiKey::new(emu.api_key()).ok_or("key")?);
    config.max_rps = None;
    let mut settings = Config::defaults().sync_settings();
    settings.concurrency = 32;
    let engine = SyncEngine::new(
        ComposioClient::new(config).map_err(|e| e.to_string())?,
        store,
        settings,
    );
    let report = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    emu.stop();
    if report.success {
        Ok(())
    } else {
        Err(format!("filling the cache failed: {:?}", report.message))
    }
}

async fn call(app: &axum::Router, uri: &str, accept: Option<&str>) -> (Duration, usize) {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    let request = request.body(Body::empty()).expect("request");
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (started.elapsed(), body.len())
}

/// Latencies and sizes of every read route over `catalog`.
pub async fn latencies(
    catalog: &Catalog,
    label: &str,
    iterations: usize,
    table: &mut Table,
) -> Result<(), String> {
    let store = Arc::new(MemoryStore::new());
    fill(catalog, store.clone()).await?;
    let largest = catalog
        .toolkits
        .values()
        .max_by_key(|t| t.tools.len())
        .ok_or("empty catalog")?;
    let tool = largest
        .tools
        .last()
        .map(|t| t.slug.clone())
        .unwrap_or_default();
    let reader = Arc::new(CacheReader::new(
        store.clone(),
        ReaderConfig::new(Duration::from_secs(3600)),
    ));
    let app = router(reader.clone(), None);

    // The meta, parsed once per published version and container.
    let mut meta_loads = Samples::default();
    for _ in 0..10 {
        reader.clear();
        let started = Instant::now();
        reader.meta().await.map_err(|e| e.to_string())?;
        meta_loads.push(started.elapsed());
    }
    table.row(
        format!("reader: meta load ({label})"),
        format!("p50 {}", ms(meta_loads.median())),
        format!(
            "p99 {}; the first request after a new meta (or a cold start) pays it once",
            ms(meta_loads.percentile(0.99))
        ),
    );

    let routes = [
        ("GET /".to_owned(), BASE.to_owned()),
        ("GET /toolkits".to_owned(), format!("{BASE}/toolkits")),
        (
            format!("GET /toolkits/{}", largest.slug),
            format!("{BASE}/toolkits/{}", largest.slug),
        ),
        (
            format!("GET /toolkits/{}/{{tool}}", largest.slug),
            format!("{BASE}/toolkits/{}/{tool}", largest.slug),
        ),
    ];
    for (name, uri) in routes {
        reader.clear();
        let (_, identity) = call(&app, &uri, None).await;
        let (_, gzip) = call(&app, &uri, Some("gzip")).await;
        let (_, br) = call(&app, &uri, Some("br")).await;
        let mut cold = Samples::default();
        let mut cold_gzip = Samples::default();
        let cold_runs = (iterations / 10).max(20);
        for _ in 0..cold_runs {
            reader.clear_answers();
            cold.push(call(&app, &uri, None).await.0);
            reader.clear_answers();
            cold_gzip.push(call(&app, &uri, Some("gzip")).await.0);
        }
        let mut warm = Samples::default();
        let mut warm_gzip = Samples::default();
        for _ in 0..iterations {
            warm.push(call(&app, &uri, None).await.0);
            warm_gzip.push(call(&app, &uri, Some("gzip")).await.0);
        }
        table.row(
            format!("read {name} ({label})"),
            format!("cold p99 {} / warm p99 {}", us(cold.percentile(0.99)), us(warm.percentile(0.99))),
            format!(
                "cold p50 {}, warm p50 {}; gzip cold p99 {} (compressed once), warm p99 {}; answer {} raw, {} gzip, {} br",
                us(cold.median()),
                us(warm.median()),
                us(cold_gzip.percentile(0.99)),
                us(warm_gzip.percentile(0.99)),
                kb(identity),
                kb(gzip),
                kb(br)
            ),
        );
    }

    // Compression: our cached codings against tower-http compressing each answer.
    let per_request = router(reader.clone(), None)
        .layer(axum::middleware::map_request(
            |mut request: Request<Body>| async move {
                // Our handler then answers identity, and the layer compresses it.
                request.headers_mut().remove("accept-encoding");
                request
            },
        ))
        .layer(tower_http::compression::CompressionLayer::new());
    let uri = format!("{BASE}/toolkits/{}", largest.slug);
    let (mut cached, mut layered) = (Samples::default(), Samples::default());
    for _ in 0..(iterations / 10).max(20) {
        cached.push(call(&app, &uri, Some("gzip")).await.0);
        layered.push(call(&per_request, &uri, Some("gzip")).await.0);
    }
    table.row(
        format!("gzip of GET /toolkits/{} ({label}): compressed once and kept vs tower-http per request", largest.slug),
        format!("{} vs {}", us(cached.median()), us(layered.median())),
        format!("p50; p99 {} vs {}", us(cached.percentile(0.99)), us(layered.percentile(0.99))),
    );
    Ok(())
}

/// Search over the whole index: building it, and queries answered by the
/// index itself (each query new to the answer cache) or repeated.
pub async fn search(catalog: &Catalog, label: &str, table: &mut Table) -> Result<(), String> {
    let store = Arc::new(MemoryStore::new());
    fill(catalog, store.clone()).await?;
    let reader = Arc::new(CacheReader::new(
        store,
        ReaderConfig::new(Duration::from_secs(3600)),
    ));
    let view = reader
        .meta()
        .await
        .map_err(|e| e.to_string())?
        .view
        .ok_or("no meta")?;
    let started = Instant::now();
    let _ = view.search_index();
    let built = started.elapsed();
    let app = router(reader.clone(), None);
    let words = [
        "send",
        "email",
        "create",
        "issue",
        "list",
        "repository",
        "calendar",
        "event",
        "file",
        "upload",
        "user",
        "message",
        "search",
        "update",
        "delete",
        "comment",
        "pull",
        "request",
        "page",
        "video",
    ];
    let (mut fresh, mut repeated) = (Samples::default(), Samples::default());
    for i in 0..400 {
        let q = format!(
            "{}%20{}%20{i}",
            words[i % words.len()],
            words[(i * 7 + 3) % words.len()]
        );
        let uri = format!("{BASE}/tools?q={q}");
        fresh.push(call(&app, &uri, None).await.0);
        repeated.push(call(&app, &uri, None).await.0);
    }
    table.row(
        format!(
            "search GET /tools?q= ({label}, {} tools)",
            catalog.total_tools()
        ),
        format!(
            "p99 {} (new query) / {} (repeated)",
            us(fresh.percentile(0.99)),
            us(repeated.percentile(0.99))
        ),
        format!(
            "p50 {} / {}; the index is built once per published meta, in {}",
            us(fresh.median()),
            us(repeated.median()),
            ms(built)
        ),
    );
    Ok(())
}

/// Walks every toolkit and one tool of each through `serve` and through the
/// read bootstrap (on a stand-in Runtime API), then reads their memory.
pub async fn memory_walks(
    exe_dir: &Path,
    catalog: &Catalog,
    table: &mut Table,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> =
        Arc::new(FsStore::new(dir.path(), "composio-schemas/").map_err(|e| e.to_string())?);
    fill(catalog, store).await?;
    let walk: Vec<String> = catalog
        .toolkits
        .values()
        .flat_map(|t| {
            let toolkit = format!("{BASE}/toolkits/{}", t.slug);
            let tool = t.tools.first().map(|x| format!("{toolkit}/{}", x.slug));
            std::iter::once(toolkit).chain(tool)
        })
        .collect();
    let defaults = Config::defaults();

    // `serve`, default settings.
    let cli = exe_dir.join("composio-cache");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut serve = tokio::process::Command::new(&cli)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("CACHE_DIR", dir.path())
        .env_remove("COMPOSIO_API_KEY")
        .env_remove("CACHE_BUCKET")
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    let pid = serve.id().ok_or("no pid")?.to_string();
    let http = composio_schema_cache::tls::http_client();
    let origin = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{origin}{BASE}")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("serve did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    for (i, path) in walk.iter().enumerate() {
        let mut request = http.get(format!("{origin}{path}"));
        if i % 2 == 1 {
            request = request.header("accept-encoding", "gzip");
        }
        let status = request.send().await.map_err(|e| e.to_string())?.status();
        if !status.is_success() {
            return Err(format!("serve answered {status} to {path}"));
        }
    }
    let took = started.elapsed();
    let (peak, now) = rss_kb(&pid);
    let _ = serve.kill().await;
    table.row(
        format!(
            "serve after walking {} toolkits and one tool of each",
            catalog.toolkits.len()
        ),
        format!("peak RSS {:.0} MB", peak as f64 / 1024.0),
        format!(
            "RSS at the end {:.0} MB; default settings (READ_CACHE_BYTES {} MB); {} requests in {}",
            now as f64 / 1024.0,
            defaults.read.cache_bytes / (1024 * 1024),
            walk.len(),
            ms(took)
        ),
    );

    // The read bootstrap, invoked once per request of the same walk.
    let bootstrap = exe_dir.join("composio-read");
    let api = RuntimeApi::start().await?;
    let mut child = tokio::process::Command::new(&bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "composio-read")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_REGION", "us-east-1")
        .env("CACHE_DIR", dir.path())
        .env_remove("CACHE_BUCKET")
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bootstrap.display()))?;
    let pid = child.id().ok_or("no pid")?.to_string();
    let template: Value = serde_json::from_str(include_str!("../../../events/read-toolkit.json"))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for (i, path) in walk.iter().enumerate() {
        let mut event = template.clone();
        event["rawPath"] = path.as_str().into();
        event["requestContext"]["http"]["path"] = path.as_str().into();
        if i % 2 == 1 {
            event["headers"]["accept-encoding"] = "gzip".into();
        }
        let answer = api.invoke(event, Duration::from_secs(30)).await?;
        if answer["statusCode"] != 200 {
            return Err(format!(
                "the read function answered {} to {path}",
                answer["statusCode"]
            ));
        }
    }
    let took = started.elapsed();
    let (peak, now) = rss_kb(&pid);
    let _ = child.kill().await;
    table.row(
        format!("read Lambda bootstrap after the same walk ({} invocations)", walk.len()),
        format!("peak RSS {:.0} MB", peak as f64 / 1024.0),
        format!(
            "of its 256 MB MemorySize; RSS at the end {:.0} MB; {} invocations in {} through a stand-in Runtime API",
            now as f64 / 1024.0,
            walk.len(),
            ms(took)
        ),
    );
    Ok(())
}

/// The bootstraps' sizes and the read bootstrap's init: process start to its
/// first poll of the Runtime API, with an S3 store configured.
pub async fn cold_start(exe_dir: &Path, runs: usize, table: &mut Table) -> Result<(), String> {
    for name in ["composio-read", "composio-sync"] {
        let path = exe_dir.join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            table.row(
                format!("{name} binary ({})", std::env::consts::ARCH),
                format!("{:.2} MB", meta.len() as f64 / 1e6),
                path.display().to_string(),
            );
        }
    }
    let read = exe_dir.join("composio-read");
    let mut inits = Samples::default();
    for _ in 0..runs {
        let api = RuntimeApi::start().await?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&read)
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "composio-read")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("CACHE_BUCKET", "bench-bucket")
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", read.display()))?;
        let first = api
            .first_poll(Duration::from_secs(10))
            .await
            .ok_or("the read bootstrap never polled the Runtime API")?;
        inits.push(first - started);
        let _ = child.kill().await;
    }
    table.row(
        "composio-read init (cold start)",
        format!("p50 {}", ms(inits.median())),
        format!(
            "p90 {}; process start to its first Runtime API poll, S3 store configured, {runs} runs",
            ms(inits.percentile(0.9))
        ),
    );
    Ok(())
}
