//! `cargo build --release --bins && target/release/bench [--quick]`: the
//! benchmark table of the README. Measures and prints; asserts nothing.

mod notify;
mod reads;
mod relevance;
mod stats;
mod sync;

use clap::Parser;
use composio_schema_cache::emulator::{bundled_catalog_dir, Catalog};
use stats::{us, Table};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "The replaced system, our sync and the physical limit side by side; re-syncs, rate limits, scale, reads, memory, cold start"
)]
struct Args {
    /// Sample catalog, no latency, one run, small scale (what CI runs, in debug).
    #[arg(long)]
    quick: bool,
    /// Runs of each sync contender (the table shows the median and the spread).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Catalog directory (default: the bundled real catalog, 21 toolkits).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Emulator latency per upstream call.
    #[arg(long, default_value_t = 250)]
    per_call_ms: u64,
    /// Emulator cost per item served, in microseconds.
    #[arg(long, default_value_t = 200)]
    per_item_us: u64,
    #[arg(long)]
    skip_scale: bool,
    #[arg(long)]
    skip_adaptation: bool,
    #[arg(long)]
    skip_walks: bool,
    #[arg(long)]
    skip_cold_start: bool,
    /// Only the rate-limit adaptation runs (with the others skipped).
    #[arg(long)]
    only_adaptation: bool,
    /// Only what a release profile changes: the CLI sync process, in-process
    /// reads of the real catalog, the bootstraps' size and init.
    #[arg(long)]
    only_profile: bool,
    /// Only the scale run (the whole catalogue: 1,000 toolkits with trigger
    /// types under 2,000 requests a minute) and the read bootstrap's cold start.
    #[arg(long)]
    only_scale: bool,
    /// Internal: the scale run's child process.
    #[arg(hide = true, num_args = 0..)]
    worker: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    if args.worker.first().map(String::as_str) == Some("scale-worker") {
        let (url, dir) = (
            args.worker.get(1).ok_or("url")?,
            args.worker.get(2).ok_or("dir")?,
        );
        let key = std::env::var("BENCH_EMULATOR_KEY").map_err(|e| e.to_string())?;
        let result = sync::scale_worker(url, &key, &PathBuf::from(dir)).await?;
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe_dir = self_exe.parent().ok_or("no bin dir")?.to_path_buf();
    let mut table = Table::new();
    let catalog_dir = match (&args.catalog, args.quick) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => None,
        (None, false) => Some(bundled_catalog_dir()),
    };
    let catalog = match &catalog_dir {
        Some(dir) => Catalog::from_dir(dir)?,
        None => Catalog::sample(),
    };
    let (per_call, per_item, runs) = if args.quick {
        (Duration::ZERO, Duration::ZERO, 1)
    } else {
        (
            Duration::from_millis(args.per_call_ms),
            Duration::from_micros(args.per_item_us),
            args.runs.max(1),
        )
    };
    table.row(
        "catalog",
        format!(
            "{} toolkits, {} tools",
            catalog.toolkits.len(),
            catalog.total_tools()
        ),
        format!(
            "{}; emulator latency {} per call + {} per item; {}",
            catalog_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "bundled sample".into()),
            stats::ms(per_call),
            us(per_item),
            if cfg!(debug_assertions) {
                "debug build"
            } else {
                "release build"
            }
        ),
    );

    if args.only_profile {
        sync::process_runs(&exe_dir, &catalog, 5, &mut table).await?;
        reads::latencies(&catalog, "real catalog", 1000, &mut table).await?;
        reads::cold_start(&exe_dir, 20, &mut table).await?;
        println!("{}", table.markdown());
        return Ok(());
    }
    if args.only_scale {
        let latency = Duration::from_millis(20);
        sync::scale_run(&self_exe, (1000, 25, Some(2000)), latency, &mut table).await?;
        let big = Catalog::synthetic(&catalog, 1000, 25);
        reads::latencies(&big, "1000 toolkits", 200, &mut table).await?;
        reads::cold_start(&exe_dir, 20, &mut table).await?;
        println!("{}", table.markdown());
        return Ok(());
    }
    if args.only_adaptation {
        sync::rate_limited(1, &mut table).await?;
        println!("{}", table.markdown());
        return Ok(());
    }
    sync::full_syncs(&catalog, per_call, per_item, runs, &mut table).await?;
    if !args.skip_adaptation && !args.quick {
        sync::rate_limited(3, &mut table).await?;
    }
    sync::process_runs(
        &exe_dir,
        &catalog,
        runs.max(if args.quick { 1 } else { 5 }),
        &mut table,
    )
    .await?;
    let scale = if args.quick {
        (50, 25, None)
    } else {
        (1000, 25, Some(2000))
    };
    if !args.skip_scale {
        let latency = if args.quick {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        };
        sync::scale_run(&self_exe, scale, latency, &mut table).await?;
    }
    notify::publish_to_delivery(
        &catalog,
        runs.max(if args.quick { 1 } else { 9 }),
        &mut table,
    )
    .await?;
    let iterations = if args.quick { 100 } else { 2000 };
    reads::latencies(&catalog, "real catalog", iterations, &mut table).await?;
    let big = Catalog::synthetic(&catalog, scale.0, scale.1);
    let label = format!("{} toolkits", scale.0);
    reads::latencies(&big, &label, iterations, &mut table).await?;
    reads::search(&big, &label, &mut table).await?;
    relevance::relevance(!args.quick, &mut table)?;
    if !args.skip_walks {
        reads::memory_walks(&exe_dir, &big, &mut table).await?;
    }
    if !args.skip_cold_start {
        reads::cold_start(&exe_dir, if args.quick { 3 } else { 20 }, &mut table).await?;
    }
    println!("{}", table.markdown());
    Ok(())
}
