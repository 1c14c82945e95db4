//! Sync measurements: the replaced system, ours and a naive fully concurrent
//! client (the measured physical limit), side by side on one emulator; the
//! incremental re-syncs; rate-limit adaptation; the whole process at zero
//! latency; the scale run.

use crate::stats::{ms, ratio_spread, rss_kb, Samples, Table};
use bytes::Bytes;
use composio_schema_cache::cache::timestamp;
use composio_schema_cache::composio::{ApiKey, ComposioClient};
use composio_schema_cache::config::Config;
use composio_schema_cache::emulator::{
    Catalog, Emulator, EmulatorConfig, Fault, FaultKind, FaultTarget, LimitHeaders, RateLimit,
};
use composio_schema_cache::store::{
    ETag, FsStore, ListedObject, MemoryStore, ObjectKey, PutCondition, Store, StoreError,
    StoredObject,
};
use composio_schema_cache::sync::{SyncEngine, SyncReport, SyncRequest, SyncSettings};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The client and engine exactly as the defaults configure them.
pub fn default_engine(emu: &Emulator, store: Arc<dyn Store>) -> (SyncEngine, SyncSettings) {
    let config = Config::defaults();
    engine_with(emu, store, config)
}

/// The defaults, for a synthetic catalog (which has no `browser_tool`).
fn synthetic_engine(emu: &Emulator, store: Arc<dyn Store>) -> (SyncEngine, SyncSettings) {
    let mut config = Config::defaults();
    config.composio.no_auth_toolkits.clear();
    engine_with(emu, store, config)
}

fn engine_with(
    emu: &Emulator,
    store: Arc<dyn Store>,
    mut config: Config,
) -> (SyncEngine, SyncSettings) {
    config.composio.base_url = emu.base_url();
    config.composio.api_key = ApiKey::new(emu.api_key());
    let client = ComposioClient::new(config.client_config().expect("a key")).expect("client");
    let settings = config.sync_settings();
    (SyncEngine::new(client, store, settings.clone()), settings)
}

fn check(report: &SyncReport) -> Result<(), String> {
    if report.success {
        Ok(())
    } else {
        Err(format!("a benchmark sync failed: {report:?}"))
    }
}

/// A full sync, timed; one that fails is an error.
async fn timed_full_sync(engine: &SyncEngine) -> Result<(Duration, SyncReport), String> {
    let started = Instant::now();
    let report = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    check(&report)?;
    Ok((took, report))
}

fn fs_store(dir: &tempfile::TempDir) -> Result<FsStore, String> {
    FsStore::new(dir.path(), "composio-schemas/").map_err(|e| e.to_string())
}

async fn emulator(
    catalog: &Catalog,
    per_call: Duration,
    per_item: Duration,
) -> Result<Emulator, String> {
    let mut config = EmulatorConfig::new(catalog.clone());
    config.latency = per_call;
    config.per_item = per_item;
    Emulator::start(config).await.map_err(|e| e.to_string())
}

/// Baseline, ours and the limit, `runs` times each, interleaved (the order
/// rotates, so no contender always runs on a warmer machine).
pub async fn full_syncs(
    catalog: &Catalog,
    per_call: Duration,
    per_item: Duration,
    runs: usize,
    table: &mut Table,
) -> Result<(), String> {
    let emu = emulator(catalog, per_call, per_item).await?;
    let (mut baseline, mut ours, mut limit, mut on_s3) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let (mut baseline_calls, mut our_calls, mut limit_calls) = (0, 0, 0);
    let mut last_report = None;
    let mut concurrency = 0;
    for run in 0..runs {
        for contender in 0..4 {
            match (run + contender) % 4 {
                0 => {
                    emu.reset_stats();
                    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                    let started = Instant::now();
                    baseline_sync(&emu, dir.path()).await?;
                    baseline.push(started.elapsed());
                    baseline_calls = emu.stats().requests;
                }
                1 => {
                    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                    let (engine, settings) = default_engine(&emu, Arc::new(fs_store(&dir)?));
                    concurrency = settings.concurrency;
                    emu.reset_stats();
                    let (took, report) = timed_full_sync(&engine).await?;
                    ours.push(took);
                    our_calls = emu.stats().requests;
                    last_report = Some(report);
                }
                2 => {
                    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                    let store = Slowed {
                        inner: fs_store(&dir)?,
                        delay: S3_LIKE_DELAY,
                    };
                    let (engine, _) = default_engine(&emu, Arc::new(store));
                    on_s3.push(timed_full_sync(&engine).await?.0);
                }
                _ => {
                    emu.reset_stats();
                    let started = Instant::now();
                    naive_sync(&emu).await?;
                    limit.push(started.elapsed());
                    limit_calls = emu.stats().requests;
                }
            }
        }
    }
    let report = last_report.ok_or("no run")?;
    let toolkits = report.toolkits;
    table.row(
        "baseline full sync (replaced system)",
        baseline.spread_ms(),
        format!("{baseline_calls} upstream calls, one after another, one page each; {toolkits} toolkits"),
    );
    table.row(
        "physical limit (naive client, every request at once)",
        limit.spread_ms(),
        format!("{limit_calls} calls: auth configs ∥ listing, then every toolkit's tool page at once; bodies read, nothing parsed or written"),
    );
    let (speedup, speedup_lo, speedup_hi) = ratio_spread(&baseline, &ours);
    let (to_limit, to_limit_lo, to_limit_hi) = ratio_spread(&ours, &limit);
    table.row(
        "our full sync",
        ours.spread_ms(),
        format!(
            "{our_calls} upstream calls for {toolkits} toolkits (N + {}), {} tools, concurrency {concurrency}; **{speedup:.1}× the baseline** ({speedup_lo:.1}–{speedup_hi:.1}×), **{to_limit:.2}× the limit** ({to_limit_lo:.2}–{to_limit_hi:.2}×); phases of the last run: plan {} ms, fetch {} ms (map {} ms, write {} ms summed), publish {} ms",
            our_calls as i64 - toolkits as i64,
            report.tools,
            report.timings.plan,
            report.timings.fetch,
            report.timings.map,
            report.timings.write,
            report.timings.publish,
        ),
    );

    let (to_limit, to_limit_lo, to_limit_hi) = ratio_spread(&on_s3, &limit);
    let (speedup, speedup_lo, speedup_hi) = ratio_spread(&baseline, &on_s3);
    table.row(
        format!(
            "our full sync, every store call {} ms (S3-like)",
            S3_LIKE_DELAY.as_millis()
        ),
        on_s3.spread_ms(),
        format!(
            "the same sync on a store that answers each call after {} ms: {speedup:.1}× the baseline ({speedup_lo:.1}–{speedup_hi:.1}×), {to_limit:.2}× the limit ({to_limit_lo:.2}–{to_limit_hi:.2}×); lease, meta and store listing overlap the Composio listings; the lease check, meta, change record, last run and release follow one another at the end",
            S3_LIKE_DELAY.as_millis()
        ),
    );

    // Incremental re-syncs, on memory so the store costs nothing.
    let memory = Arc::new(MemoryStore::new());
    let (engine, _) = default_engine(&emu, memory.clone());
    check(
        &engine
            .run(SyncRequest::full())
            .await
            .map_err(|e| e.to_string())?,
    )?;
    let writes_before = memory.writes.load(Ordering::Relaxed);
    let started = Instant::now();
    let again = engine
        .run(SyncRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    check(&again)?;
    table.row(
        "re-sync, nothing changed",
        ms(took),
        format!(
            "{} upstream calls, {} toolkit writes, {} store writes in all (lease, meta, last run)",
            again.upstream_requests,
            again.written,
            memory.writes.load(Ordering::Relaxed) - writes_before
        ),
    );
    let changed = catalog
        .toolkits
        .values()
        .find(|t| !t.no_auth)
        .map(|t| t.slug.clone())
        .unwrap_or_default();
    emu.publish_new_version(&changed);
    let writes_before = memory.writes.load(Ordering::Relaxed);
    let started = Instant::now();
    let one = engine
        .run(SyncRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    check(&one)?;
    table.row(
        "re-sync, one toolkit changed version",
        ms(took),
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

/// The replaced system, reimplemented faithfully: one request after another,
/// one page of tools per toolkit, every file rewritten, the meta last.
async fn baseline_sync(emu: &Emulator, dir: &Path) -> Result<(usize, usize), String> {
    let http = composio_schema_cache::tls::http_client();
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

/// The physical limit: the listings at once, then every toolkit's tool page
/// at once, bodies read to the end and nothing else.
async fn naive_sync(emu: &Emulator) -> Result<(), String> {
    let http = composio_schema_cache::tls::http_client();
    let key = emu.api_key();
    let get = |path: String| {
        let request = http
            .get(format!("{}{path}", emu.base_url()))
            .header("x-api-key", key.clone());
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            response.bytes().await.map_err(|e| e.to_string())
        }
    };
    let (configs, _listing) = tokio::join!(
        get("/api/v3/auth_configs?limit=1000".into()),
        get("/api/v3/toolkits?limit=1000".into())
    );
    let configs: Value = serde_json::from_slice(&configs?).map_err(|e| e.to_string())?;
    let mut slugs: Vec<String> = configs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["toolkit"]["slug"].as_str().map(str::to_owned))
        .collect();
    slugs.push("browser_tool".into());
    slugs.sort();
    slugs.dedup();
    let pages = slugs.iter().map(|slug| {
        get(format!(
            "/api/v3/tools?toolkit_slug={slug}&toolkit_versions=latest&limit=1000"
        ))
    });
    for page in futures::future::join_all(pages).await {
        page?;
    }
    Ok(())
}

/// A server limit well below the client's default, transient 5xx on some
/// toolkits: the sync must take everything, near the time the limit allows.
pub async fn rate_limited(runs: usize, table: &mut Table) -> Result<(), String> {
    let toolkits = 60;
    let per_second = 10;
    for headers in [LimitHeaders::OnThrottle, LimitHeaders::Never] {
        let mut times = Samples::default();
        let mut ideal = Samples::default();
        let (mut throttled, mut rate, mut failed) = (0, 0.0, Vec::new());
        for _ in 0..runs {
            let mut config =
                EmulatorConfig::new(Catalog::synthetic(&Catalog::sample(), toolkits, 5));
            config.rate_limit = Some(RateLimit {
                max_requests: per_second,
                window: Duration::from_secs(1),
                headers,
            });
            let emu = Emulator::start(config).await.map_err(|e| e.to_string())?;
            for slug in ["synthetic_0005", "synthetic_0025", "synthetic_0045"] {
                emu.set_fault(
                    slug,
                    Fault::times(FaultKind::Status(502), FaultTarget::Tools, 2),
                );
            }
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let (engine, _) = synthetic_engine(&emu, store);
            let (took, report) = timed_full_sync(&engine).await?;
            times.push(took);
            // The fewest calls that could carry the data, at the server's rate.
            let needed = report.upstream_requests - report.upstream_throttled;
            ideal.push(Duration::from_secs_f64(needed as f64 / per_second as f64));
            throttled = report.upstream_throttled;
            rate = report.settled_rps.unwrap_or(0.0);
            failed.extend(
                report
                    .failed
                    .iter()
                    .map(|f| format!("{}: {}", f.slug, f.error)),
            );
            emu.stop();
        }
        let (ratio, lo, hi) = ratio_spread(&times, &ideal);
        table.row(
            format!(
                "server limit {per_second}/s under our 25/s, 3 toolkits with two 502s ({})",
                match headers {
                    LimitHeaders::Never => "no rate headers: AIMD",
                    _ => "x-ratelimit headers on 429s",
                }
            ),
            times.spread_ms(),
            format!(
                "{toolkits} toolkits, {} failed{}; ideal {} at the server's rate: **{ratio:.2}× the ideal** ({lo:.2}–{hi:.2}×); {throttled} answered 429 in the last run, settled at {rate:.1} req/s",
                failed.len(),
                if failed.is_empty() { String::new() } else { format!(" ({})", failed.join("; ")) },
                ms(ideal.median())
            ),
        );
    }
    Ok(())
}

/// The shipped CLI, process start to exit, for a full sync at zero latency.
pub async fn process_runs(
    exe_dir: &Path,
    catalog: &Catalog,
    runs: usize,
    table: &mut Table,
) -> Result<(), String> {
    let cli = exe_dir.join("composio-cache");
    if !cli.exists() {
        return Err(format!(
            "{} is missing: build the binaries first",
            cli.display()
        ));
    }
    let emu = emulator(catalog, Duration::ZERO, Duration::ZERO).await?;
    let mut wall = Samples::default();
    let mut cpu = Samples::default();
    let mut last: Option<SyncReport> = None;
    for _ in 0..runs {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let before = children_cpu();
        let started = Instant::now();
        let output = tokio::process::Command::new(&cli)
            .args(["sync", "--full"])
            .env("COMPOSIO_API_KEY", emu.api_key())
            .env("COMPOSIO_BASE_URL", emu.base_url())
            .env("CACHE_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("CACHE_BUCKET")
            .output()
            .await
            .map_err(|e| e.to_string())?;
        wall.push(started.elapsed());
        cpu.push(children_cpu().saturating_sub(before));
        if !output.status.success() {
            return Err(format!(
                "the CLI sync failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        last = Some(serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?);
    }
    let report = last.ok_or("no run")?;
    table.row(
        "zero-latency full sync, process start to exit",
        wall.spread_ms(),
        format!(
            "`composio-cache sync --full` ({}), {} toolkits, {} tools; its own durationMs {} (plan {}, fetch {}, map {} summed, write {} summed, publish {}); CPU user+sys {} median",
            if cfg!(debug_assertions) { "debug build" } else { "release build" },
            report.toolkits,
            report.tools,
            report.duration_ms,
            report.timings.plan,
            report.timings.fetch,
            report.timings.map,
            report.timings.write,
            report.timings.publish,
            ms(cpu.median()),
        ),
    );
    emu.stop();
    Ok(())
}

/// User + system CPU time of finished child processes so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The scale worker's answer, printed as JSON by the child process.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ScaleResult {
    pub report: SyncReport,
    pub peak_rss_kb: u64,
}

/// Runs in a child process so its peak memory is the sync's alone.
pub async fn scale_worker(base_url: &str, key: &str, dir: &Path) -> Result<ScaleResult, String> {
    let mut config = Config::defaults();
    config.composio.base_url = base_url.to_owned();
    config.composio.api_key = ApiKey::new(key);
    config.composio.no_auth_toolkits.clear();
    // The whole catalogue, as SYNC_SCOPE=catalog syncs it.
    config.sync.scope = composio_schema_cache::sync::Scope::Catalog;
    let client = ComposioClient::new(config.client_config().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> =
        Arc::new(FsStore::new(dir, "composio-schemas/").map_err(|e| e.to_string())?);
    let engine = SyncEngine::new(client, store, config.sync_settings());
    let report = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ScaleResult {
        report,
        peak_rss_kb: rss_kb("self").0,
    })
}

pub async fn scale_run(
    self_exe: &PathBuf,
    (toolkits, tools, per_minute): (usize, usize, Option<u32>),
    latency: Duration,
    table: &mut Table,
) -> Result<(), String> {
    let catalog = Catalog::synthetic(&Catalog::sample(), toolkits, tools);
    let mut config = EmulatorConfig::new(catalog);
    config.rate_limit = per_minute.map(RateLimit::per_minute);
    config.latency = latency;
    let emu = Emulator::start(config).await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let output = tokio::process::Command::new(self_exe)
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
    // The index every reader loads and every sync holds: it grows with the catalogue.
    let meta_text = std::fs::read(dir.path().join("composio-schemas/_meta.json"))
        .map_err(|e| format!("scale run's meta: {e}"))?;
    let meta_bytes = meta_text.len() as u64;
    let meta: composio_schema_cache::cache::Meta =
        serde_json::from_slice(&meta_text).map_err(|e| format!("scale run's meta: {e}"))?;
    let triggers: usize = meta.toolkits.iter().map(|e| e.triggers.len()).sum();
    let stats = emu.stats();
    let report = &result.report;
    let seconds = report.duration_ms as f64 / 1000.0;
    let rps = report.upstream_requests as f64 / seconds;
    let ceiling = Config::defaults().composio.max_rps.unwrap_or(0) as f64;
    let server = per_minute.map(|m| m as f64 / 60.0).unwrap_or(f64::INFINITY);
    let allowed = ceiling.min(server);
    // Our ceiling's burst goes at once; the rest at the allowed rate.
    let burst = Config::defaults().composio.burst as f64;
    let bound = (report.upstream_requests as f64 - burst).max(0.0) / allowed;
    table.row(
        format!("scale run: {toolkits} toolkits × {tools} tools"),
        ms(Duration::from_millis(report.duration_ms)),
        format!(
            "{} tools, {triggers} trigger types (catalog scope); {} upstream calls at {rps:.1} req/s (our ceiling {ceiling:.0}/s under the server's {}): **{:.2}× the rate bound** ({:.1} s); {} answered 429; peak RSS {:.0} MB (sync process alone); meta {:.1} MB ({:.1} KB a toolkit); wall {}",
            report.tools,
            report.upstream_requests,
            per_minute.map(|m| format!("{m}/min")).unwrap_or_else(|| "none".into()),
            seconds / bound.max(1e-9),
            bound,
            stats.rate_limited,
            result.peak_rss_kb as f64 / 1024.0,
            meta_bytes as f64 / 1e6,
            meta_bytes as f64 / 1e3 / report.toolkits.max(1) as f64,
            ms(wall)
        ),
    );
    emu.stop();
    Ok(())
}

/// A first-byte latency S3 commonly answers within, from inside its region.
const S3_LIKE_DELAY: Duration = Duration::from_millis(20);

/// A store that answers each call after a fixed delay: S3's round trip
/// without S3.
struct Slowed<S> {
    inner: S,
    delay: Duration,
}

#[async_trait::async_trait]
impl<S: Store> Store for Slowed<S> {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get(key).await
    }
    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.etag(key).await
    }
    async fn put(&self, key: &ObjectKey, body: Bytes, c: PutCondition) -> Result<ETag, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.put(key, body, c).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.delete(key).await
    }
    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.delete_if_match(key, etag).await
    }
    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list().await
    }
    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_changes().await
    }
    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_snapshots().await
    }
    fn location(&self) -> String {
        format!("{} (slowed by {:?})", self.inner.location(), self.delay)
    }
}
