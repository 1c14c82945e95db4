//! The benchmark: the replaced system (one call after another, one page)
//! against our sync, side by side on the same emulator, plus incremental
//! re-syncs, a rate-limited scale run, read latencies and the read
//! function's cold start. It prints a Markdown table; it asserts nothing.

use crate::cache::timestamp;
use crate::composio::{ApiKey, ClientConfig, ComposioClient};
use crate::emulator::{Catalog, Emulator, EmulatorConfig, RateLimit};
use crate::http::{router, CacheReader, BASE};
use crate::store::{FsStore, MemoryStore, Store};
use crate::sync::{SyncEngine, SyncReport, SyncRequest, SyncSettings};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Small catalog, no latency, small scale run, no cold start: for CI.
    pub quick: bool,
    /// Catalog directory (default: `../shared/composio/catalog` if present, else the sample).
    pub catalog: Option<PathBuf>,
    pub per_call: Duration,
    pub per_item: Duration,
    pub scale: bool,
    pub cold_start: bool,
    /// The `bench` executable, re-run as the scale worker.
    pub self_exe: PathBuf,
}

pub struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>, note: impl Into<String>) {
        let (what, value, note) = (what.into(), value.into(), note.into());
        eprintln!("bench: {what}: {value} {note}");
        self.rows.push((what, value, note));
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("| measure | value | notes |\n|---|---|---|\n");
        for (what, value, note) in &self.rows {
            out.push_str(&format!("| {what} | {value} | {note} |\n"));
        }
        out
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn client(emu: &Emulator, max_rps: Option<u32>) -> ComposioClient {
    let mut config = ClientConfig::new(emu.base_url(), ApiKey::new(emu.api_key()).expect("key"));
    config.max_rps = max_rps;
    ComposioClient::new(config).expect("client")
}

fn default_catalog_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/composio/catalog");
    dir.is_dir().then_some(dir)
}

pub async fn run(options: BenchOptions) -> Result<Table, String> {
    let mut table = Table { rows: Vec::new() };
    let catalog_dir = options
        .catalog
        .clone()
        .or_else(|| (!options.quick).then(default_catalog_dir).flatten());
    let catalog = match &catalog_dir {
        Some(dir) => Catalog::from_dir(dir)?,
        None => Catalog::sample(),
    };
    let (per_call, per_item) = if options.quick {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (options.per_call, options.per_item)
    };
    table.row(
        "catalog",
        format!(
            "{} toolkits, {} tools",
            catalog.toolkits.len(),
            catalog.total_tools()
        ),
        format!(
            "{}; emulator latency {} per call + {} per item",
            catalog_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "bundled sample".into()),
            ms(per_call),
            us(per_item)
        ),
    );

    sync_runs(&catalog, per_call, per_item, &mut table).await?;
    let scale = if options.quick {
        (50, 25, None)
    } else {
        (1000, 25, Some(2000))
    };
    if options.scale {
        scale_run(&options, scale, &mut table).await?;
    }
    reads(
        &catalog,
        "real catalog",
        if options.quick { 200 } else { 2000 },
        &mut table,
    )
    .await?;
    let big = Catalog::synthetic(&catalog, scale.0, scale.1);
    reads(
        &big,
        &format!("{} toolkits", scale.0),
        if options.quick { 200 } else { 2000 },
        &mut table,
    )
    .await?;
    if options.cold_start {
        cold_start(&options, &mut table).await?;
    }
    Ok(table)
}

async fn sync_runs(
    catalog: &Catalog,
    per_call: Duration,
    per_item: Duration,
    table: &mut Table,
) -> Result<(), String> {
    let mut config = EmulatorConfig::new(catalog.clone());
    config.latency = per_call;
    config.per_item = per_item;
    let emu = Emulator::start(config).await.map_err(|e| e.to_string())?;

    // The replaced system, one call after another.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (toolkits, tools) = baseline(&emu, dir.path()).await?;
    let baseline_time = started.elapsed();
    let baseline_calls = emu.stats().requests;
    table.row(
        "baseline full sync (replaced system)",
        ms(baseline_time),
        format!("{baseline_calls} upstream calls, sequential, one page each; {toolkits} toolkits, {tools} tools"),
    );

    // Ours, full, on disk, default settings.
    emu.reset_stats();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> =
        Arc::new(FsStore::new(dir.path(), "composio-schemas/").map_err(|e| e.to_string())?);
    let settings = crate::config::Config::defaults().sync_settings();
    let engine = SyncEngine::new(client(&emu, Some(25)), store.clone(), settings.clone());
    let started = Instant::now();
    let report = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    let ours = started.elapsed();
    check(&report)?;
    table.row(
        "our full sync",
        ms(ours),
        format!(
            "{} upstream calls, concurrency {}, {} toolkits, {} tools; **{:.1}× faster** than the baseline",
            report.upstream_requests,
            settings.concurrency,
            report.toolkits,
            report.tools,
            baseline_time.as_secs_f64() / ours.as_secs_f64()
        ),
    );

    let bound = critical_path(catalog, per_call, per_item);
    if !bound.is_zero() {
        table.row(
            "critical-path lower bound",
            ms(bound),
            format!(
                "auth configs ∥ listing, then the largest toolkit's tool pages; our full sync is **{:.2}×** the bound",
                ours.as_secs_f64() / bound.as_secs_f64()
            ),
        );
    }

    let memory = Arc::new(MemoryStore::new());
    let engine = SyncEngine::new(client(&emu, Some(25)), memory.clone(), settings);
    engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    let writes_before = memory.writes.load(Ordering::Relaxed);
    let started = Instant::now();
    let again = engine
        .run(SyncRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    let resync = started.elapsed();
    check(&again)?;
    table.row(
        "re-sync, nothing changed",
        ms(resync),
        format!(
            "{} upstream calls, {} toolkit writes, {} store writes in all (lease, meta, last run)",
            again.upstream_requests,
            again.written,
            memory.writes.load(Ordering::Relaxed) - writes_before
        ),
    );

    let changed = catalog
        .toolkits
        .keys()
        .find(|s| !catalog.toolkits[*s].no_auth)
        .cloned()
        .unwrap_or_default();
    emu.publish_new_version(&changed);
    let writes_before = memory.writes.load(Ordering::Relaxed);
    let started = Instant::now();
    let one = engine
        .run(SyncRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    check(&one)?;
    table.row(
        "re-sync, one toolkit changed version",
        ms(started.elapsed()),
        format!(
            "{} upstream calls, {} toolkit write ({changed}), {} store writes in all",
            one.upstream_requests,
            one.written,
            memory.writes.load(Ordering::Relaxed) - writes_before
        ),
    );
    emu.stop();
    Ok(())
}

fn check(report: &SyncReport) -> Result<(), String> {
    if report.success {
        Ok(())
    } else {
        Err(format!("a benchmark sync failed: {report:?}"))
    }
}

/// The replaced system, reimplemented faithfully: one request after another,
/// one page of tools per toolkit, every file rewritten, the meta last.
async fn baseline(emu: &Emulator, dir: &Path) -> Result<(usize, usize), String> {
    let http = reqwest::Client::new();
    let key = emu.api_key();
    let get = |path: String| {
        let request = http
            .get(format!("{}{path}", emu.base_url()))
            .header("x-api-key", key.clone());
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            response.json::<Value>().await.map_err(|e| e.to_string())
        }
    };
    let started = Instant::now();
    let configs = get("/api/v3/auth_configs?limit=1000".into()).await?;
    let mut slugs: Vec<String> = Vec::new();
    for item in configs["items"].as_array().into_iter().flatten() {
        let slug = item["toolkit"]["slug"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !slugs.contains(&slug) {
            slugs.push(slug);
        }
    }
    if !slugs.iter().any(|s| s == "browser_tool") {
        slugs.push("browser_tool".into());
    }
    let mut total = 0;
    for slug in &slugs {
        let detail = get(format!("/api/v3/toolkits/{slug}")).await?;
        let tools = get(format!(
            "/api/v3/tools?toolkit_slug={slug}&toolkit_versions=latest&limit=1000"
        ))
        .await?;
        let tools: Vec<Value> = tools["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                json!({
                    "slug": t["slug"], "name": t["name"], "description": t["description"],
                    "inputParameters": t["input_parameters"], "outputParameters": t["output_parameters"],
                    "toolkitSlug": slug,
                })
            })
            .collect();
        total += tools.len();
        let toolkit = json!({
            "slug": slug, "name": detail["name"], "logo": detail["meta"]["logo"],
            "toolCount": tools.len(), "tools": tools,
        });
        let body = serde_json::to_vec_pretty(&toolkit).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(format!("{slug}.json")), body).map_err(|e| e.to_string())?;
    }
    let meta = json!({
        "lastSyncedAt": timestamp(std::time::SystemTime::now()),
        "toolkitCount": slugs.len(), "totalToolCount": total,
        "syncDurationMs": started.elapsed().as_millis() as u64,
    });
    std::fs::write(dir.join("_meta.json"), meta.to_string()).map_err(|e| e.to_string())?;
    Ok((slugs.len(), total))
}

/// The longest chain of calls that must follow one another, in the
/// emulator's latency model: the auth configs (with the listing beside them),
/// then the largest toolkit's tool pages (its details run beside them).
fn critical_path(catalog: &Catalog, per_call: Duration, per_item: Duration) -> Duration {
    let call = |items: usize| per_call + per_item * items as u32;
    let with_auth = catalog.toolkits.values().filter(|t| !t.no_auth).count();
    // The emulator adds a second config for every third toolkit.
    let configs = with_auth + with_auth.div_ceil(3);
    let first = call(configs).max(call(catalog.toolkits.len()));
    let longest = catalog
        .toolkits
        .values()
        .map(|t| {
            let pages = t.tools.len().div_ceil(1000).max(1);
            let chain: Duration = (0..pages)
                .map(|p| call((t.tools.len() - p * 1000).min(1000)))
                .sum();
            chain.max(call(1))
        })
        .max()
        .unwrap_or_default();
    first + longest
}

/// The scale worker's answer, printed as JSON by the child process.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ScaleResult {
    pub report: SyncReport,
    pub peak_rss_kb: u64,
    pub retries: u64,
}

/// Runs in a child process so its peak memory is the sync's alone.
pub async fn scale_worker(base_url: &str, key: &str, dir: &Path) -> Result<ScaleResult, String> {
    let mut config = ClientConfig::new(base_url, ApiKey::new(key).ok_or("key")?);
    config.max_rps = Some(25);
    let client = ComposioClient::new(config).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> =
        Arc::new(FsStore::new(dir, "composio-schemas/").map_err(|e| e.to_string())?);
    let mut settings = crate::config::Config::defaults().sync_settings();
    settings.no_auth_toolkits.clear();
    let engine = SyncEngine::new(client.clone(), store, settings);
    let report = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ScaleResult {
        report,
        peak_rss_kb: peak_rss_kb(),
        retries: client.stats().retries,
    })
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn scale_run(
    options: &BenchOptions,
    (toolkits, tools, per_minute): (usize, usize, Option<u32>),
    table: &mut Table,
) -> Result<(), String> {
    let catalog = Catalog::synthetic(&Catalog::sample(), toolkits, tools);
    let mut config = EmulatorConfig::new(catalog);
    config.rate_limit = per_minute.map(RateLimit::per_minute);
    if !options.quick {
        config.latency = Duration::from_millis(20);
    }
    let emu = Emulator::start(config).await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let output = tokio::process::Command::new(&options.self_exe)
        .arg("scale-worker")
        .arg(emu.base_url())
        .arg(dir.path())
        .env("BENCH_EMULATOR_KEY", emu.api_key())
        .output()
        .await
        .map_err(|e| format!("scale worker: {e}"))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "scale worker failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let result: ScaleResult = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    check(&result.report)?;
    let stats = emu.stats();
    let rps = result.report.upstream_requests as f64 / (result.report.duration_ms as f64 / 1000.0);
    table.row(
        format!("scale run: {toolkits} toolkits × {tools} tools"),
        ms(Duration::from_millis(result.report.duration_ms)),
        format!(
            "{} tools; {} upstream calls at {:.1} req/s (limit {}); {} answered 429, {} retries; peak RSS {:.0} MB (sync process alone); wall {}",
            result.report.tools,
            result.report.upstream_requests,
            rps,
            per_minute.map(|m| format!("{m}/min = {:.1}/s", m as f64 / 60.0)).unwrap_or_else(|| "none".into()),
            stats.rate_limited,
            result.retries,
            result.peak_rss_kb as f64 / 1024.0,
            ms(wall)
        ),
    );
    emu.stop();
    Ok(())
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

async fn reads(
    catalog: &Catalog,
    label: &str,
    iterations: usize,
    table: &mut Table,
) -> Result<(), String> {
    let emu = Emulator::start(EmulatorConfig::new(catalog.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let store = Arc::new(MemoryStore::new());
    let settings = SyncSettings {
        concurrency: 32,
        ..crate::config::Config::defaults().sync_settings()
    };
    let engine = SyncEngine::new(client(&emu, None), store.clone(), settings);
    check(
        &engine
            .run(SyncRequest::full())
            .await
            .map_err(|e| e.to_string())?,
    )?;
    emu.stop();

    let largest = catalog
        .toolkits
        .values()
        .max_by_key(|t| t.tools.len())
        .ok_or("empty catalog")?;
    let tool = largest
        .tools
        .last()
        .map(|t| t.slug.as_str())
        .unwrap_or_default()
        .to_owned();
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
    let reader = Arc::new(CacheReader::new(
        store.clone(),
        crate::http::ReaderConfig::new(Duration::from_secs(3600)),
    ));
    let app = router(reader.clone(), None);
    for (name, uri) in routes {
        let call = |app: axum::Router, uri: String| async move {
            let request = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .expect("request");
            let started = Instant::now();
            let response = app.oneshot(request).await.expect("infallible");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            let took = started.elapsed();
            (took, body.len())
        };
        let mut cold = Vec::new();
        let reads_before = store.reads.load(Ordering::Relaxed);
        let cold_runs = (iterations / 10).max(10);
        for _ in 0..cold_runs {
            reader.clear();
            cold.push(call(app.clone(), uri.clone()).await.0);
        }
        let reads_per_request =
            (store.reads.load(Ordering::Relaxed) - reads_before) as f64 / cold_runs as f64;
        let mut warm = Vec::new();
        let mut size = 0;
        for _ in 0..iterations {
            let (took, len) = call(app.clone(), uri.clone()).await;
            warm.push(took);
            size = len;
        }
        table.row(
            format!("read {name} ({label})"),
            format!(
                "warm p50 {} / p99 {}",
                us(percentile(&mut warm, 0.5)),
                us(percentile(&mut warm, 0.99))
            ),
            format!(
                "cold p50 {} / p99 {}, {reads_per_request:.0} store read(s) cold; {} KB answer",
                us(percentile(&mut cold, 0.5)),
                us(percentile(&mut cold, 0.99)),
                size / 1024
            ),
        );
    }
    Ok(())
}

/// The read bootstrap's init: from process start to its first poll of the
/// Runtime API, against a stand-in Runtime API on 127.0.0.1.
async fn cold_start(options: &BenchOptions, table: &mut Table) -> Result<(), String> {
    let dir = options.self_exe.parent().ok_or("no bin dir")?;
    for name in ["composio-read", "composio-sync"] {
        let path = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            table.row(
                format!("{name} binary ({})", std::env::consts::ARCH),
                format!("{:.1} MB", meta.len() as f64 / 1e6),
                format!("{}", path.display()),
            );
        }
    }
    let read = dir.join("composio-read");
    if !read.exists() {
        return Err(format!(
            "{} is missing: build with `cargo build --release --bins`",
            read.display()
        ));
    }
    let mut inits = Vec::new();
    for _ in 0..20 {
        inits.push(one_init(&read).await?);
    }
    table.row(
        "composio-read init (cold start)",
        format!("p50 {}", ms(percentile(&mut inits, 0.5))),
        format!(
            "p90 {}; process start to first Runtime API poll, S3 store configured, 20 runs",
            ms(percentile(&mut inits, 0.9))
        ),
    );
    Ok(())
}

async fn one_init(binary: &Path) -> Result<Duration, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = axum::Router::new().fallback(move || {
        let tx = tx.clone();
        async move {
            if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(Instant::now());
            }
            // Hold the poll open: no invocation comes.
            tokio::time::sleep(Duration::from_secs(30)).await;
            ""
        }
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "composio-read")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("CACHE_BUCKET", "bench-bucket")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let first_poll = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .map_err(|_| "the read bootstrap never polled the Runtime API".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = child.kill().await;
    server.abort();
    Ok(first_poll - started)
}
