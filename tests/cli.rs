//! The CLI as a user runs it: the built `composio-cache` binary against the
//! emulator and a directory cache. Exit codes are part of its contract.

mod support;

use composio_schema_cache::emulator::{Fault, FaultKind, FaultTarget};
use serde_json::Value;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use support::emulator;

struct Cli {
    dir: tempfile::TempDir,
    base_url: String,
    key: String,
}

impl Cli {
    fn new(emu: &composio_schema_cache::emulator::Emulator) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            base_url: emu.base_url(),
            key: emu.api_key(),
        }
    }

    /// Runs the CLI on its own thread, so the in-process emulator keeps serving.
    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }

    /// The same, with more variables set.
    async fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_composio-cache"));
        command
            .args(args)
            .env("COMPOSIO_API_KEY", &self.key)
            .env("COMPOSIO_BASE_URL", &self.base_url)
            .env("COMPOSIO_RETRY_BUDGET_MS", "300")
            .env("COMPOSIO_MAX_RETRIES", "1")
            .env("CACHE_DIR", self.dir.path())
            .env_remove("CACHE_BUCKET")
            .env("RUST_LOG", "error")
            .envs(vars.iter().copied());
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn status_exits_non_zero_with_one_line_saying_why() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);

    let none = cli.run(&["status", "--max-age", "26h"]).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stdout).starts_with("no cache"),
        "{}",
        text(&none.stdout)
    );

    let sync = cli.run(&["sync"]).await;
    assert!(sync.status.success(), "{}", text(&sync.stderr));
    let fresh = cli.run(&["status", "--max-age", "26h"]).await;
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh.stdout));
    assert_eq!(text(&fresh.stdout).lines().count(), 1);
    assert!(text(&fresh.stdout).starts_with("fresh"));
    let json: Value = serde_json::from_slice(&cli.run(&["status", "--json"]).await.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["status"]["meta"]["toolkitCount"], 7);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let old = cli.run(&["status", "--max-age", "1s"]).await;
    assert_eq!(old.status.code(), Some(1));
    assert!(
        text(&old.stdout).starts_with("too old"),
        "{}",
        text(&old.stdout)
    );

    // A toolkit that keeps failing is served stale: unhealthy.
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    assert!(cli.run(&["sync", "--full"]).await.status.success());
    let stale = cli.run(&["status"]).await;
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        text(&stale.stdout).contains("stale copy: linkedin"),
        "{}",
        text(&stale.stdout)
    );

    // A failed run: the sync exits non-zero, and so does status.
    emu.set_listing_fault(
        "auth_configs",
        Fault::always(FaultKind::Status(500), FaultTarget::Both),
    );
    let failed = cli.run(&["sync"]).await;
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed.stderr).contains("auth configs"),
        "{}",
        text(&failed.stderr)
    );
    let after = cli.run(&["status"]).await;
    assert_eq!(after.status.code(), Some(1));
    assert!(
        text(&after.stdout).starts_with("the last sync failed"),
        "{}",
        text(&after.stdout)
    );
}

#[tokio::test]
async fn reading_commands_ignore_variables_they_do_not_use_and_logs_to_a_pipe_have_no_colour() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);
    // Logs on a pipe (as in a file or CloudWatch): plain text, no escape codes.
    let sync = cli.run_with(&["sync"], &[("RUST_LOG", "debug")]).await;
    assert!(sync.status.success(), "{}", text(&sync.stderr));
    assert!(sync.stderr.len() > 100, "debug logs were written");
    assert!(!sync.stderr.contains(&0x1b), "{}", text(&sync.stderr));

    for bad in [("SYNC_CONCURRENCY", "lots"), ("COMPOSIO_MAX_RPS", "fast")] {
        let status = cli.run_with(&["status"], &[bad]).await;
        assert_eq!(
            status.status.code(),
            Some(0),
            "{bad:?}: {}",
            text(&status.stderr)
        );
        assert!(text(&status.stdout).starts_with("fresh"));
        let search = cli.run_with(&["search", "issue"], &[bad]).await;
        assert!(search.status.success(), "{bad:?}: {}", text(&search.stderr));
        // What a sync uses still stops a sync.
        let sync = cli.run_with(&["sync"], &[bad]).await;
        assert_eq!(sync.status.code(), Some(1));
        assert!(text(&sync.stderr).contains(bad.0), "{}", text(&sync.stderr));
    }
    // A reading command still refuses its own bad variable.
    let own = cli
        .run_with(&["status"], &[("READ_CACHE_BYTES", "x")])
        .await;
    assert_eq!(own.status.code(), Some(1));
    assert!(text(&own.stderr).contains("READ_CACHE_BYTES"));
}

#[tokio::test]
async fn search_refuses_a_bad_toolkit_or_limit_instead_of_printing_nothing() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);
    assert!(cli.run(&["sync"]).await.status.success());
    let malformed = cli.run(&["search", "issue", "--toolkit", "NOPE"]).await;
    assert_eq!(malformed.status.code(), Some(1));
    assert!(
        text(&malformed.stderr).contains("--toolkit \"NOPE\""),
        "{}",
        text(&malformed.stderr)
    );
    let absent = cli.run(&["search", "issue", "--toolkit", "nope"]).await;
    assert_eq!(absent.status.code(), Some(1));
    let stderr = text(&absent.stderr);
    assert!(
        stderr.contains("toolkit nope is not in the cache") && stderr.contains("github"),
        "{stderr}"
    );
    let zero = cli.run(&["search", "issue", "--limit", "0"]).await;
    assert_ne!(zero.status.code(), Some(0));
    assert!(
        text(&zero.stderr).contains("--limit"),
        "{}",
        text(&zero.stderr)
    );
    let one = cli
        .run(&["search", "issue", "--toolkit", "github", "--limit", "1"])
        .await;
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(text(&one.stdout).lines().count(), 1);
    assert!(text(&one.stdout).contains("GITHUB_"));
}

/// The section of the README under `heading`, up to the next one of its level.
fn readme_section(heading: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme.find(heading).unwrap_or_else(|| panic!("{heading}"));
    let rest = &readme[start + heading.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// A command line's words, double quotes grouping.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    for (i, part) in line.split('"').enumerate() {
        if i % 2 == 1 {
            words.push(part.to_owned());
        } else {
            words.extend(part.split_whitespace().map(str::to_owned));
        }
    }
    words
}

#[tokio::test]
async fn the_readmes_examples_find_what_they_promise_in_what_demo_syncs() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);
    emu.stop();
    let dir = cli.dir.path().to_str().unwrap().to_owned();
    let demo = cli.run(&["demo", "--dir", &dir]).await;
    assert!(demo.status.success(), "{}", text(&demo.stderr));

    // The CLI's examples, on the demo's cache.
    let mut ran = 0;
    for line in readme_section("## Real use with a Composio key").lines() {
        let Some(command) = line.strip_prefix("cargo run --release -- ") else {
            continue;
        };
        let command = command.split(['#', '>']).next().unwrap();
        let args = words(command);
        if !matches!(args[0].as_str(), "search" | "export") {
            continue;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli.run(&args).await;
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        assert!(
            !text(&out.stdout).trim().is_empty(),
            "{command} printed nothing"
        );
        if args[0] == "search" {
            assert!(
                !text(&out.stderr).starts_with("0 of"),
                "{command} found nothing"
            );
        }
        ran += 1;
    }
    assert_eq!(ran, 2, "the README's search and export examples");

    // The agent routes' examples, served from the same cache.
    let store = composio_schema_cache::store::FsStore::new(&dir, "composio-schemas/").unwrap();
    let reader = composio_schema_cache::http::CacheReader::new(
        Arc::new(store),
        composio_schema_cache::http::ReaderConfig::new(Duration::from_secs(60)),
    );
    let router = composio_schema_cache::http::router(Arc::new(reader), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        composio_schema_cache::http::BASE
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = composio_schema_cache::tls::http_client();
    let section = readme_section("## Using the cache from an agent");
    let examples: Vec<&str> = section
        .split("curl \"$BASE")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert_eq!(examples.len(), 7, "{examples:?}");
    for path in examples {
        let answer: Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if path.starts_with("/triggers/") {
            assert!(answer["config"].is_object(), "{path}: {answer}");
            continue;
        }
        let list = ["tools", "results", "changes", "triggers"]
            .iter()
            .find_map(|field| answer[*field].as_array())
            .unwrap_or_else(|| panic!("{path}: {answer}"));
        assert!(!list.is_empty(), "{path} finds nothing: {answer}");
        if let Some(unknown) = answer["unknown"].as_array() {
            assert!(unknown.is_empty(), "{path}: {answer}");
        }
    }
}

#[tokio::test]
async fn a_sync_that_would_drop_most_toolkits_fails_unless_allowed() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);
    assert!(cli.run(&["sync"]).await.status.success());
    emu.set_auth_configs(vec![]);
    let refused = cli.run(&["sync"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("drop 6 of the 7") && stderr.contains("--allow-shrink"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(
        (report["success"].as_bool(), report["published"].as_bool()),
        (Some(false), Some(false))
    );
    let allowed = cli.run(&["sync", "--allow-shrink"]).await;
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
}

#[tokio::test]
async fn search_and_export_work_offline_from_the_cache() {
    let emu = emulator().await;
    let cli = Cli::new(&emu);
    assert!(cli.run(&["sync"]).await.status.success());
    emu.stop();

    let found = cli.run(&["search", "create an issue"]).await;
    assert!(found.status.success());
    let top: Vec<String> = text(&found.stdout)
        .lines()
        .take(3)
        .map(str::to_owned)
        .collect();
    assert!(
        top.iter().any(|l| l.contains("GITHUB_CREATE_AN_ISSUE")),
        "{top:?}"
    );

    let export = cli
        .run(&["export", "--format", "anthropic", "--toolkit", "linkedin"])
        .await;
    assert!(export.status.success(), "{}", text(&export.stderr));
    let bundle: Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(bundle["format"], "anthropic");
    assert_eq!(bundle["tools"].as_array().unwrap().len(), 4);
    assert!(bundle["tools"][0]["input_schema"].is_object());

    let some = cli
        .run(&[
            "export",
            "--format",
            "openai",
            "--strict",
            "--tools",
            "LINKEDIN_GET_MY_INFO,NOPE",
        ])
        .await;
    assert_eq!(some.status.code(), Some(1), "an unknown tool is an error");
    let bundle: Value = serde_json::from_slice(&some.stdout).unwrap();
    assert_eq!(bundle["tools"][0]["function"]["strict"], true);
    assert_eq!(bundle["unknown"][0], "NOPE");
    let bad = cli
        .run(&["export", "--format", "claude", "--toolkit", "linkedin"])
        .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("openai-responses"),
        "{}",
        text(&bad.stderr)
    );
}
