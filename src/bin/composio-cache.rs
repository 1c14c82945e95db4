//! The local CLI: sync, status, serve, and an offline demo on the bundled catalog.

use clap::{Parser, Subcommand};
use composio_schema_cache::app::{
    build_engine, build_router, build_store, init_telemetry, resolve_secrets,
};
use composio_schema_cache::cache::{CachedToolSchema, CachedToolkit, Meta, Slug};
use composio_schema_cache::composio::ApiKey;
use composio_schema_cache::config::{Config, ReadSide, StoreConfig};
use composio_schema_cache::emulator::{Catalog, Emulator, EmulatorConfig, RateLimit};
use composio_schema_cache::http::{
    self, bundle_bytes, requested, CacheReader, Encoding, MetaView, StatusAnswer,
};
use composio_schema_cache::store::ObjectKey;
use composio_schema_cache::sync::{SyncEngine, SyncEvent, SyncReport, SyncRequest};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The variables a newcomer needs; the README's "Configuration" has them all.
const ENVIRONMENT: &str = "\
Environment (every variable: the README's \"Configuration\"):
  COMPOSIO_API_KEY         the project's API key: `sync`, and `serve`'s POST /sync; never logged
  COMPOSIO_API_KEY_SECRET  a Secrets Manager secret holding the key, read when COMPOSIO_API_KEY is unset
  COMPOSIO_BASE_URL        the Composio API (default https://backend.composio.dev)
  CACHE_BUCKET             an S3 bucket for the cache (standard AWS environment); unset: CACHE_DIR
  CACHE_DIR                the cache's directory when no bucket is set (default .composio-cache)
  CACHE_PREFIX             the key prefix in the bucket or directory (default composio-schemas/)
  RUST_LOG                 the log filter, e.g. debug";

const READS_THE_CACHE: &str = "Reads only the cache: CACHE_BUCKET (S3) or CACHE_DIR, CACHE_PREFIX and READ_*; needs no key and never calls Composio.";

#[derive(Parser)]
#[command(
    name = "composio-cache",
    version,
    about = "Sync Composio tool schemas into a cache and serve them",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sync the configured store from Composio (needs COMPOSIO_API_KEY); the report goes to stdout.
    #[command(
        after_help = "Reads COMPOSIO_API_KEY (or COMPOSIO_API_KEY_SECRET), COMPOSIO_BASE_URL, CACHE_BUCKET or CACHE_DIR, and the COMPOSIO_* and SYNC_* tuning (the README's \"Configuration\")."
    )]
    Sync {
        /// Refetch every toolkit instead of only those whose version changed.
        #[arg(long)]
        full: bool,
        /// Publish even if this sync drops more than SYNC_MAX_SHRINK of the published toolkits.
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Whether the cache is fresh and the last sync clean: one line, exit 0 if so, 1 if not.
    #[command(after_help = READS_THE_CACHE)]
    Status {
        /// Unhealthy when the published cache is older than this (e.g. 26h, 90m).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_age: Option<Duration>,
        /// Print the verdict and the whole status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search the cached tools (offline: the cache only).
    #[command(after_help = READS_THE_CACHE)]
    Search {
        /// What to look for, e.g. "scrape a web page".
        query: String,
        /// Only this toolkit's tools (a toolkit slug the cache holds).
        #[arg(long)]
        toolkit: Option<String>,
        /// What to find: `tool` (the default) or `trigger` (trigger types).
        #[arg(long, default_value = "tool")]
        kind: composio_schema_cache::search::Kind,
        /// How many results to print, best first (at least 1).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print provider-ready tools from the cache (offline), e.g. `export --format anthropic --toolkit github > tools.json`.
    #[command(after_help = READS_THE_CACHE)]
    Export {
        /// openai, openai-responses, anthropic, gemini or mcp.
        #[arg(long)]
        format: String,
        /// OpenAI strict mode (openai and openai-responses only).
        #[arg(long)]
        strict: bool,
        /// Every tool of this toolkit.
        #[arg(long, conflicts_with = "tools")]
        toolkit: Option<String>,
        /// These tools, comma-separated (across toolkits).
        #[arg(long, value_delimiter = ',')]
        tools: Vec<String>,
    },
    /// Serve every route over the configured store.
    #[command(
        after_help = "Serves CACHE_BUCKET (S3) or CACHE_DIR. POST /sync needs COMPOSIO_API_KEY (or COMPOSIO_API_KEY_SECRET) and COMPOSIO_BASE_URL; without a key it answers 503."
    )]
    Serve {
        /// The address to listen on (host:port).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
    },
    /// Offline first run: sync the bundled sample catalog through the local Composio emulator.
    #[command(
        after_help = "Writes to --dir, else CACHE_BUCKET (S3) or CACHE_DIR; needs no key and no network."
    )]
    Demo {
        /// Where to write the cache (default: CACHE_DIR, else .composio-cache).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the Composio emulator until interrupted (for local and end-to-end tests).
    #[command(
        after_help = "Prints its URL on stdout: point COMPOSIO_BASE_URL at it, with COMPOSIO_API_KEY set to its key."
    )]
    Emulator {
        /// The address to listen on (host:port; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// A directory of toolkits in the cached format (default: the bundled sample).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// The most items one page answers, whatever `limit` a client asks.
        #[arg(long, default_value_t = 1000)]
        page_cap: usize,
        /// Milliseconds each call waits before answering (a network's latency).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// A synthetic catalog instead: TOOLKITSxTOOLS, e.g. 1000x25 (shaped like the sample's schemas).
        #[arg(long)]
        synthetic: Option<String>,
        /// Answer 429 past this many requests per minute.
        #[arg(long)]
        rate_limit_per_minute: Option<u32>,
        /// The key the emulator accepts.
        #[arg(
            long,
            env = "EMULATOR_API_KEY",
            default_value = "emulator-key",
            hide_env_values = true
        )]
        api_key: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Serve { .. } | Command::Emulator { .. } => "info",
        _ => "warn",
    };
    init_telemetry(default_log);
    match run(cli.command).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, String> {
    let mut config = match &command {
        // Only the cache's own variables: a bad one of the sync or of
        // Composio cannot stop a command that never uses it.
        Command::Status { .. } | Command::Search { .. } | Command::Export { .. } => {
            let side = ReadSide::from_env().map_err(|e| e.to_string())?;
            Config {
                store: side.store,
                read: side.read,
                ..Config::defaults()
            }
        }
        Command::Emulator { .. } => Config::defaults(),
        _ => Config::from_env().map_err(|e| e.to_string())?,
    };
    if matches!(command, Command::Sync { .. } | Command::Serve { .. }) {
        resolve_secrets(&mut config)
            .await
            .map_err(|e| e.to_string())?;
    }
    match command {
        Command::Sync { full, allow_shrink } => {
            let store = build_store(&config).await.map_err(|e| e.to_string())?;
            let engine = build_engine(&config, store)
                .await
                .map_err(|e| e.to_string())?;
            let request = SyncRequest {
                full,
                allow_shrink,
                deadline: None,
            };
            sync_and_print(engine, request).await
        }
        Command::Status { max_age, json } => {
            let store = build_store(&config).await.map_err(|e| e.to_string())?;
            let reader = CacheReader::new(store.clone(), config.read.reader_config());
            let view = reader.meta().await.map_err(|e| e.to_string())?.view;
            let status = StatusAnswer::read(&*store, view.as_deref(), false)
                .await
                .map_err(|e| e.to_string())?;
            let verdict = status.verdict(max_age);
            if json {
                let out = serde_json::json!({
                    "ok": verdict.ok,
                    "reason": verdict.reason,
                    "location": store.location(),
                    "status": status,
                });
                println!("{}", serde_json::to_string_pretty(&out).expect("json"));
            } else {
                println!("{}", verdict.reason);
            }
            Ok(if verdict.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Search {
            query,
            toolkit,
            kind,
            limit,
            json,
        } => {
            let (_, view) = published(&config).await?;
            let toolkit = searched_toolkit(&view, toolkit.as_deref())?;
            let (hits, total) = view.search_index().search(
                &composio_schema_cache::search::Query::new(&query)
                    .toolkit(toolkit.as_ref().map(Slug::as_str))
                    .kind(Some(kind))
                    .limit(usize::try_from(limit).unwrap_or(usize::MAX)),
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&hits).expect("json"));
            } else {
                for hit in &hits {
                    println!("{:>6.2}  {:<48} {}", hit.score, hit.slug, hit.name);
                }
                eprintln!("{} of {total} matching {}s", hits.len(), kind.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            format,
            strict,
            toolkit,
            tools,
        } => {
            let requested = requested(Some(&format), strict.then_some(true), None)
                .map_err(|e| e.to_string())?
                .expect("a format");
            let (reader, view) = published(&config).await?;
            let mut chosen: Vec<CachedToolSchema> = Vec::new();
            let mut unknown = Vec::new();
            match (toolkit, tools.is_empty()) {
                (Some(slug), _) => {
                    let slug = Slug::parse(&slug).map_err(|e| format!("--toolkit: {e}"))?;
                    let entry = view
                        .entry(&slug)
                        .ok_or_else(|| format!("toolkit {slug} is not in the cache"))?;
                    let bytes = reader
                        .toolkit_bytes(entry)
                        .await
                        .map_err(|e| e.to_string())?;
                    let toolkit: CachedToolkit =
                        serde_json::from_slice(&bytes.body).map_err(|e| e.to_string())?;
                    chosen = toolkit.tools;
                }
                (None, false) => {
                    for slug in tools {
                        let Some((entry, index)) = view.locate(&slug) else {
                            unknown.push(slug);
                            continue;
                        };
                        let (bytes, _) = reader
                            .tool(entry, index, Encoding::Identity)
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("tool {slug} vanished"))?;
                        chosen.push(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?);
                    }
                }
                (None, true) => return Err("pass --toolkit SLUG or --tools A,B".into()),
            }
            let unknown = (!unknown.is_empty()).then_some(unknown);
            // Local and asked for: no time or size limit.
            let no_limits = Default::default();
            let body = bundle_bytes(&chosen, requested, unknown.as_deref(), &no_limits)
                .map_err(|e| e.to_string())?;
            println!("{}", String::from_utf8_lossy(&body));
            if let Some(unknown) = unknown {
                eprintln!("not in the cache: {}", unknown.join(", "));
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { addr } => {
            let store = build_store(&config).await.map_err(|e| e.to_string())?;
            let engine = match build_engine(&config, store.clone()).await {
                Ok(engine) => {
                    Some(Arc::new(engine) as Arc<dyn composio_schema_cache::sync::Syncer>)
                }
                Err(e) => {
                    tracing::warn!("POST /sync is disabled: {e}");
                    None
                }
            };
            let app = build_router(&config, store.clone(), engine);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(
                "serving {} on http://{local}{}",
                store.location(),
                http::BASE
            );
            axum::serve(http::without_nagle(listener), app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir } => demo(config, dir).await,
        Command::Emulator {
            addr,
            catalog,
            page_cap,
            latency_ms,
            synthetic,
            rate_limit_per_minute,
            api_key,
        } => {
            let base = match catalog {
                Some(dir) => Catalog::from_dir(&dir)?,
                None => Catalog::sample(),
            };
            let catalog = match synthetic {
                None => base,
                Some(size) => {
                    let (toolkits, tools) = size
                        .split_once('x')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                        .ok_or_else(|| format!("--synthetic {size:?}: expected TOOLKITSxTOOLS"))?;
                    Catalog::synthetic(&base, toolkits, tools)
                }
            };
            let mut ec = EmulatorConfig::new(catalog);
            ec.page_cap = page_cap;
            ec.latency = Duration::from_millis(latency_ms);
            ec.api_key = api_key;
            ec.rate_limit = rate_limit_per_minute.map(RateLimit::per_minute);
            let emulator = Emulator::start_on(addr, ec)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            println!("{}", emulator.base_url());
            tracing::info!("Composio emulator listening on {}", emulator.base_url());
            let _ = tokio::signal::ctrl_c().await;
            emulator.stop();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--toolkit` of a search: a slug the cache holds, as the HTTP route wants it.
fn searched_toolkit(view: &MetaView, raw: Option<&str>) -> Result<Option<Slug>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let slug = Slug::parse(raw).map_err(|e| format!("--toolkit {raw:?}: {e}"))?;
    if view.entry(&slug).is_none() {
        let held: Vec<&str> = view.meta.toolkits.iter().map(|e| e.slug.as_str()).collect();
        let shown = held.iter().take(12).copied().collect::<Vec<_>>().join(", ");
        let more = if held.len() > 12 { ", ..." } else { "" };
        return Err(format!(
            "toolkit {slug} is not in the cache (it holds {}: {shown}{more})",
            held.len()
        ));
    }
    Ok(Some(slug))
}

/// A reader of the configured store and the meta it publishes.
async fn published(config: &Config) -> Result<(CacheReader, Arc<MetaView>), String> {
    let store = build_store(config).await.map_err(|e| e.to_string())?;
    let reader = CacheReader::new(store, config.read.reader_config());
    let view = reader
        .meta()
        .await
        .map_err(|e| e.to_string())?
        .view
        .ok_or("no cache: sync first")?;
    Ok((reader, view))
}

async fn sync_and_print(engine: SyncEngine, request: SyncRequest) -> Result<ExitCode, String> {
    let bar = progress_bar();
    let engine = engine.with_observer(observer(bar.clone()));
    let result = engine.run(request).await;
    bar.finish_and_clear();
    let report = result.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    finish(&report)
}

fn finish(report: &SyncReport) -> Result<ExitCode, String> {
    if report.success {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(report
            .message
            .clone()
            .unwrap_or_else(|| "sync failed".into()))
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = planning_bar(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Until the plan says how many toolkits to fetch there is nothing to fill:
/// a spinner, not a full bar at 0/0.
fn planning_bar(target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    bar.set_message("planning: reading the store and Composio's listings");
    bar
}

fn fetching_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} toolkits {msg}")
        .expect("valid template")
        .progress_chars("=> ")
}

fn tools(count: usize) -> String {
    match count {
        1 => "1 tool".to_owned(),
        n => format!("{n} tools"),
    }
}

fn observer(bar: ProgressBar) -> composio_schema_cache::sync::Observer {
    Arc::new(move |event| match event {
        SyncEvent::Planned {
            to_fetch: 0,
            unchanged,
        } => bar.set_message(format!(
            "nothing to fetch ({unchanged} unchanged); publishing"
        )),
        SyncEvent::Planned { to_fetch, .. } => {
            bar.set_style(fetching_style());
            bar.set_length(to_fetch as u64);
            bar.set_message("");
        }
        SyncEvent::Fetched { slug, tools: count } => {
            bar.set_message(format!("{slug} ({})", tools(count)));
            bar.inc(1);
        }
        SyncEvent::Failed { slug, .. } => {
            bar.set_message(format!("{slug} failed"));
            bar.inc(1);
        }
    })
}

async fn demo(mut config: Config, dir: Option<PathBuf>) -> Result<ExitCode, String> {
    let catalog = Catalog::sample();
    let emulator = Emulator::start(EmulatorConfig::new(catalog.clone()))
        .await
        .map_err(|e| format!("could not start the Composio emulator: {e}"))?;
    eprintln!(
        "demo: using the OFFLINE SAMPLE CATALOG ({} toolkits, {} tools) served by the built-in Composio emulator at {}; no Composio account or network is used.",
        catalog.toolkits.len(),
        catalog.total_tools(),
        emulator.base_url()
    );
    config.composio.base_url = emulator.base_url();
    config.composio.api_key = ApiKey::new(emulator.api_key());
    if let Some(dir) = dir {
        config.store = StoreConfig::Dir {
            dir,
            prefix: config.store.prefix().to_owned(),
        };
    } else if let StoreConfig::S3 { .. } = config.store {
        eprintln!("demo: CACHE_BUCKET is set; writing to the bucket");
    }
    let store = build_store(&config).await.map_err(|e| e.to_string())?;
    eprintln!("demo: writing the cache to {}", store.location());
    let engine = build_engine(&config, store.clone())
        .await
        .map_err(|e| e.to_string())?;
    let bar = progress_bar();
    let report = engine
        .with_observer(observer(bar.clone()))
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    emulator.stop();
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    if let Some(object) = store
        .get(&ObjectKey::Meta)
        .await
        .map_err(|e| e.to_string())?
    {
        let meta: Meta = serde_json::from_slice(&object.body).map_err(|e| e.to_string())?;
        eprintln!("\ntoolkit            tools  version");
        for e in &meta.toolkits {
            eprintln!(
                "{:<18} {:>5}  {}",
                e.slug.as_str(),
                e.tool_count,
                e.version.as_deref().unwrap_or("-")
            );
        }
        if let Some(gh) = meta.toolkits.iter().max_by_key(|e| e.tool_count) {
            eprintln!(
                "\n{} ({}): {} tools, e.g. {}",
                gh.name,
                gh.slug,
                gh.tool_count,
                gh.tools
                    .iter()
                    .take(3)
                    .map(|t| t.slug.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        eprintln!(
            "\nNext: `cargo run --release -- serve` and open http://127.0.0.1:3000{}",
            http::BASE
        );
    }
    finish(&report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_option_says_what_it_does() {
        Cli::command().debug_assert();
        for command in Cli::command().get_subcommands() {
            assert!(command.get_about().is_some(), "{}", command.get_name());
            for arg in command.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} --{} has no description",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn the_help_names_the_variables_that_matter_and_only_real_ones() {
        let help = Cli::command().render_long_help().to_string();
        for name in [
            "CACHE_DIR",
            "CACHE_BUCKET",
            "COMPOSIO_BASE_URL",
            "COMPOSIO_API_KEY_SECRET",
        ] {
            assert!(help.contains(name), "{name} in:\n{help}");
        }
        let known = |word: &str| {
            composio_schema_cache::config::VARIABLES
                .iter()
                .any(|(name, _, _)| *name == word)
        };
        for word in ENVIRONMENT.split_whitespace() {
            if word.len() > 4 && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                assert!(known(word), "{word} is not a variable the service reads");
            }
        }
    }

    #[test]
    fn the_progress_bar_has_no_length_until_the_plan_and_counts_in_words() {
        let bar = planning_bar(ProgressDrawTarget::hidden());
        assert_eq!(bar.length(), None, "no full bar at 0/0 while planning");
        let observe = observer(bar.clone());
        observe(SyncEvent::Planned {
            to_fetch: 0,
            unchanged: 7,
        });
        assert_eq!(bar.length(), None, "nothing to fetch: still no bar");
        observe(SyncEvent::Planned {
            to_fetch: 2,
            unchanged: 5,
        });
        assert_eq!(bar.length(), Some(2));
        observe(SyncEvent::Fetched {
            slug: Slug::parse("perplexityai").unwrap(),
            tools: 1,
        });
        assert_eq!(bar.message(), "perplexityai (1 tool)");
        assert_eq!(bar.position(), 1);
        assert_eq!(tools(831), "831 tools");
    }
}
