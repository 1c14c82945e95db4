//! The Lambda bootstraps as they ship, run as processes under a stand-in
//! Runtime API: the sync function's key from Secrets Manager (moto), its EMF
//! metrics on stdout, and the JSON logs both functions write under Lambda's
//! advanced logging controls.

mod support;

use composio_schema_cache::emulator::{Fault, FaultKind, FaultTarget, RuntimeApi};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use support::*;

const KEY: &str = "sk-live-EMF-LOGS-secret-0042";

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A running bootstrap; its output is drained as it comes (a full pipe would stall it).
struct Running {
    child: tokio::process::Child,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

impl Running {
    async fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        (
            lines(&self.stdout.await.unwrap()),
            lines(&self.stderr.await.unwrap()),
        )
    }
}

fn drain(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut all = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut all).await;
        all
    })
}

/// A bootstrap under the stand-in Runtime API, with Lambda's environment.
fn bootstrap(binary: &str, api: &RuntimeApi, env: &[(&str, String)]) -> Running {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    Running {
        child,
        stdout,
        stderr,
    }
}

#[tokio::test]
async fn the_sync_function_reads_its_key_from_secrets_manager_and_emits_one_emf_record_per_run() {
    let moto = shared_moto();
    // The key lives in a secret, as the template deploys it.
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::new()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(moto)
            .http_client(composio_schema_cache::store::https_client())
            .build(),
    );
    let name = format!("composio-{}", uuid::Uuid::new_v4().simple());
    secrets
        .create_secret()
        .name(&name)
        .secret_string(format!("{{\"COMPOSIO_API_KEY\": \"{KEY}\"}}"))
        .send()
        .await
        .unwrap();

    let mut config = composio_schema_cache::emulator::EmulatorConfig::new(
        composio_schema_cache::emulator::Catalog::sample(),
    );
    config.api_key = KEY.into();
    let emu = composio_schema_cache::emulator::Emulator::start(config)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let child = bootstrap(
        env!("CARGO_BIN_EXE_composio-sync"),
        &api,
        &[
            ("AWS_LAMBDA_FUNCTION_NAME", "composio-sync-test".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
            ("AWS_ENDPOINT_URL", moto.into()),
            ("COMPOSIO_API_KEY_SECRET", name.clone()),
            ("COMPOSIO_BASE_URL", emu.base_url()),
            ("CACHE_DIR", dir.path().display().to_string()),
            ("COMPOSIO_MAX_RETRIES", "0".into()),
        ],
    );
    let scheduled = fixture("sync-scheduled.json");
    let first = api
        .invoke(scheduled.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        (first["success"].as_bool(), first["toolkits"].as_u64()),
        (Some(true), Some(7)),
        "{first}"
    );
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    let second = api
        .invoke(fixture("sync-direct-full.json"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second["failed"].as_array().unwrap().len(), 1, "{second}");
    drop(api);
    let (stdout, stderr) = child.stop().await;

    // One EMF record per run on stdout.
    let records: Vec<Value> = stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(records.len(), 2, "{stdout:?}");
    for (record, failed) in records.iter().zip([0, 1]) {
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ComposioSchemaCache");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["FunctionName"]])
        );
        assert_eq!(record["FunctionName"], "composio-sync-test");
        assert!(record["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        let units: std::collections::HashMap<&str, &str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap(),
                    m["Unit"].as_str().unwrap_or("None"),
                )
            })
            .collect();
        assert_eq!(units["SyncDurationMs"], "Milliseconds");
        assert_eq!(units["ToolkitsSynced"], "Count");
        for metric in [
            "SyncSucceeded",
            "ToolsSynced",
            "ToolkitsFailed",
            "ToolkitsStale",
            "UpstreamRequests",
            "UpstreamThrottled",
            "UpstreamRetries",
            "ObjectsWritten",
            "ToolsChanged",
        ] {
            assert!(units.contains_key(metric), "{metric} in {record}");
        }
        assert_eq!(record["SyncSucceeded"], 1);
        assert_eq!(record["ToolkitsSynced"], 7);
        assert_eq!(record["ToolsSynced"], 885);
        assert_eq!(record["ToolkitsFailed"], failed);
        assert_eq!(record["ToolkitsStale"], failed);
        assert!(
            record["SyncDurationMs"]
                .as_array()
                .is_some_and(|v| v.len() == 1),
            "{record}"
        );
    }
    assert_eq!(
        records[0]["UpstreamRequests"], 10,
        "N + 3: the listings, the tools, one trigger-type call"
    );
    assert_eq!(records[0]["ObjectsWritten"], 7);
    assert_eq!(
        records[0]["ToolsChanged"], 885,
        "the first sync adds every tool"
    );

    // Logs: one JSON object per line, each line of a sync with its syncId.
    assert!(!stderr.is_empty());
    let logs: Vec<Value> = stderr
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "sync finished")
        .collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0]["span"]["syncId"], first["syncId"]);
    assert_eq!(finished[1]["span"]["syncId"], second["syncId"]);
    let failure = logs
        .iter()
        .find(|l| l["message"] == "toolkit failed")
        .expect("the failure is logged");
    assert_eq!(failure["span"]["syncId"], second["syncId"]);
    let all = format!("{stdout:?}{stderr:?}");
    assert!(
        !all.contains(KEY),
        "the key is in no log line and no record"
    );
}

#[tokio::test]
async fn the_read_function_logs_each_request_with_its_id_and_aggregates_its_metrics() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn composio_schema_cache::store::Store> = std::sync::Arc::new(
        composio_schema_cache::store::FsStore::new(dir.path(), "composio-schemas/").unwrap(),
    );
    engine(&emu, store)
        .run(composio_schema_cache::sync::SyncRequest::full())
        .await
        .unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let child = bootstrap(
        env!("CARGO_BIN_EXE_composio-read"),
        &api,
        &[
            ("AWS_LAMBDA_FUNCTION_NAME", "composio-read-test".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG".into()),
            ("CACHE_DIR", dir.path().display().to_string()),
        ],
    );
    let mut ids = Vec::new();
    for i in 0..100 {
        let name = if i % 2 == 0 {
            "read-toolkit.json"
        } else {
            "read-tool.json"
        };
        let answer = api
            .invoke(fixture(name), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 200);
        ids.push(api.last_request_id());
    }
    drop(api);
    let (stdout, stderr) = child.stop().await;

    let answered: Vec<Value> = stderr
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "answered")
        .collect();
    assert_eq!(
        answered.len(),
        100,
        "one line per request: {:?}",
        &stderr[..stderr.len().min(5)]
    );
    for (line, id) in answered.iter().zip(&ids) {
        assert_eq!(
            line["span"]["requestId"].as_str(),
            Some(id.as_str()),
            "{line}"
        );
    }
    // 100 requests: one aggregated record, not one per request.
    let records: Vec<Value> = stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(records.len(), 1, "{stdout:?}");
    let record = &records[0];
    assert_eq!(record["ReadLatencyMs"].as_array().unwrap().len(), 100);
    let hits = record["CacheHits"].as_u64().unwrap();
    let misses = record["CacheMisses"].as_u64().unwrap();
    assert!(hits > 90 && misses >= 1, "{hits} hits, {misses} misses");
    assert!(record["CacheAgeSeconds"].as_f64().unwrap() < 600.0);
}

/// How long a sync function killed mid-sync blocks the next one, with the
/// template's defaults: the process is killed outright (SIGKILL), as Lambda
/// ends an invocation that timed out or ran out of memory, and a fresh
/// bootstrap (a new execution environment) is invoked every 0.25 s until a
/// sync runs. The README's figure:
/// `cargo test --test lambda_process -- --ignored --nocapture measure`.
#[tokio::test]
#[ignore]
async fn measure_how_long_a_killed_sync_function_blocks_the_next() {
    let mut config = composio_schema_cache::emulator::EmulatorConfig::new(
        composio_schema_cache::emulator::Catalog::sample(),
    );
    config.api_key = KEY.into();
    config.latency = Duration::from_millis(300);
    let emu = composio_schema_cache::emulator::Emulator::start(config)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_LAMBDA_FUNCTION_NAME", "composio-sync-test".to_owned()),
        ("COMPOSIO_API_KEY", KEY.to_owned()),
        ("COMPOSIO_BASE_URL", emu.base_url()),
        ("CACHE_DIR", dir.path().display().to_string()),
    ];
    let lease = dir.path().join("composio-schemas/_lease.json");
    let mut blocked = Vec::new();
    for run in 1..=3 {
        let api = RuntimeApi::start().await.unwrap();
        let child = bootstrap(env!("CARGO_BIN_EXE_composio-sync"), &api, &env);
        let invoking = {
            let api = api.clone();
            tokio::spawn(async move {
                api.invoke(fixture("sync-direct-full.json"), Duration::from_secs(60))
                    .await
            })
        };
        let started = std::time::Instant::now();
        while !lease.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no lease taken"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed = std::time::Instant::now();
        child.stop().await;
        invoking.abort();

        let api = RuntimeApi::start().await.unwrap();
        let next = bootstrap(env!("CARGO_BIN_EXE_composio-sync"), &api, &env);
        let mut refused = 0;
        loop {
            let answer = api
                .invoke(fixture("sync-scheduled.json"), Duration::from_secs(60))
                .await
                .unwrap();
            if answer["success"] == true {
                break;
            }
            refused += 1;
            assert!(killed.elapsed() < Duration::from_secs(300), "{answer}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let took = killed.elapsed();
        next.stop().await;
        println!(
            "run {run}: blocked {:.1} s ({refused} invocations refused)",
            took.as_secs_f64()
        );
        blocked.push(took);
    }
    blocked.sort();
    println!(
        "killed sync function blocks the next: median {:.1} s ({:.1}-{:.1} s)",
        blocked[1].as_secs_f64(),
        blocked[0].as_secs_f64(),
        blocked[2].as_secs_f64()
    );
}
