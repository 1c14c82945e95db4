//! `cargo build --release --bins && target/release/bench [--quick]`: prints the
//! benchmark table (see the README). Measures; asserts nothing.

use clap::Parser;
use composio_schema_cache::bench::{run, scale_worker, BenchOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Baseline vs our sync, incremental re-syncs, scale, reads, cold start"
)]
struct Args {
    /// Sample catalog, no latency, small scale run, no cold start (what CI runs).
    #[arg(long)]
    quick: bool,
    /// Catalog directory (default: ../shared/composio/catalog when present).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Emulator latency per upstream call.
    #[arg(long, default_value_t = 250)]
    per_call_ms: u64,
    /// Emulator cost per item served, in microseconds.
    #[arg(long, default_value_t = 400)]
    per_item_us: u64,
    #[arg(long)]
    skip_scale: bool,
    #[arg(long)]
    skip_cold_start: bool,
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
        let result = scale_worker(url, &key, &PathBuf::from(dir)).await?;
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let options = BenchOptions {
        quick: args.quick,
        catalog: args.catalog,
        per_call: Duration::from_millis(args.per_call_ms),
        per_item: Duration::from_micros(args.per_item_us),
        scale: !args.skip_scale,
        cold_start: !args.quick && !args.skip_cold_start,
        self_exe: std::env::current_exe().map_err(|e| e.to_string())?,
    };
    let table = run(options).await?;
    println!("{}", table.markdown());
    Ok(())
}
