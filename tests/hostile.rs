//! A hostile catalogue: tools whose schemas an attacker wrote (any MCP server
//! can back a custom toolkit), each beside good tools and real toolkits.
//! The sync publishes every good tool and names what it left out; `serve`
//! answers every route in every format without a 5xx, and every schema it
//! serves is valid JSON Schema (checked by the `jsonschema` crate) with an
//! object root.

mod support;

use composio_schema_cache::emulator::{Catalog, CatalogToolkit, Emulator, EmulatorConfig};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::lambda::handle_http;
use composio_schema_cache::store::MemoryStore;
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use composio_schema_cache::wire::{Tool, ToolToolkit};
use lambda_runtime::Context;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const TOOLKIT: &str = "hostile";

fn laughs(n: usize) -> String {
    let mut defs = Map::new();
    for i in 0..n {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(
            format!("d{i}"),
            json!({"type": "object", "properties": {"a": next, "b": next}}),
        );
    }
    defs.insert(format!("d{n}"), json!({"type": "string"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs})
        .to_string()
}

fn chain(n: usize) -> String {
    let mut defs = Map::new();
    for i in 0..n {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(
            format!("d{i}"),
            json!({"type": "object", "properties": {"next": next}}),
        );
    }
    defs.insert(format!("d{n}"), json!({"type": "integer"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs})
        .to_string()
}

fn renamed_keys(n: usize) -> String {
    let mut props = Map::new();
    let mut default = Map::new();
    for i in 0..n {
        props.insert(format!("key {i}"), json!({"type": "integer"}));
        default.insert(format!("key {i}"), json!(i));
    }
    json!({"type": "object", "properties": props, "default": default}).to_string()
}

/// `levels` property levels (two JSON levels each).
fn nested_properties(levels: usize) -> String {
    let open = r#"{"type":"object","properties":{"n":"#;
    format!(
        "{}{}{}",
        open.repeat(levels),
        r#"{"type":"string"}"#,
        "}}".repeat(levels)
    )
}

fn deep_json(levels: usize) -> String {
    format!(
        r#"{{"type":"object","x":{}{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// The hostile tools: slug, input schema text, and whether the sync keeps it.
fn hostile() -> Vec<(&'static str, String, bool)> {
    vec![
        ("HOSTILE_LAUGHS_30", laughs(30), true),
        ("HOSTILE_CHAIN_5000", chain(5_000), true),
        ("HOSTILE_RENAMED_100000", renamed_keys(100_000), true),
        ("HOSTILE_DEEP_JSON_10000", deep_json(10_000), false),
        ("HOSTILE_PROPERTIES_70_DEEP", nested_properties(70), false),
        ("HOSTILE_PROPERTIES_40_DEEP", nested_properties(40), true),
        (
            "HOSTILE_ALLOF_SELF",
            r##"{"properties":{"a":{"allOf":[{"$ref":"#/properties/a"}]}}}"##.into(),
            true,
        ),
        ("HOSTILE_INPUT_ARRAY", "[1,2]".into(), false),
        ("HOSTILE_INPUT_STRING", r#""text""#.into(), false),
        ("HOSTILE_INPUT_TRUE", "true".into(), false),
        ("HOSTILE_ROOT_ARRAY", r#"{"type":"array","items":{}}"#.into(), true),
        (
            "HOSTILE_PROPERTIES_NOT_OBJECT",
            r#"{"type":"object","properties":[1]}"#.into(),
            true,
        ),
        (
            "HOSTILE_REQUIRED_TWICE",
            r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a","a","b"]}"#
                .into(),
            true,
        ),
        (
            "HOSTILE_HUGE_BOUND",
            r#"{"type":"object","properties":{"n":{"type":"integer","exclusiveMinimum":1e19}}}"#
                .into(),
            true,
        ),
        (
            "HOSTILE_PERCENT_REF",
            r##"{"type":"object","properties":{"x":{"$ref":"#/$defs/e%25f"}},"$defs":{"e%f":{"type":"integer"}}}"##
                .into(),
            true,
        ),
    ]
}

fn tool(slug: &str, input: String) -> Tool {
    let mut tool: Tool = serde_json::from_value(json!({
        "slug": slug, "name": slug.to_lowercase(), "description": format!("The {slug} tool."),
        "toolkit": {"slug": TOOLKIT}, "version": "20251201_00",
        "available_versions": ["00000000_00", "20251201_00"],
    }))
    .unwrap();
    tool.toolkit = Some(ToolToolkit {
        slug: TOOLKIT.into(),
        name: Some("Hostile".into()),
        logo: None,
    });
    tool.input_parameters = Some(RawValue::from_string(input).unwrap());
    tool
}

fn good(slug: &str) -> Tool {
    let input = json!({"type": "object", "properties": {"query": {"type": "string"}},
                       "required": ["query"]});
    tool(slug, input.to_string())
}

fn catalogue() -> Catalog {
    let mut catalog = Catalog::sample();
    let mut tools = vec![good("HOSTILE_GOOD_FIRST"), good("HOSTILE_GOOD_LAST")];
    tools.splice(1..1, hostile().into_iter().map(|(s, i, _)| tool(s, i)));
    catalog.toolkits.insert(
        TOOLKIT.into(),
        CatalogToolkit {
            slug: TOOLKIT.into(),
            name: "Hostile".into(),
            logo: String::new(),
            description: "Tools an attacker wrote".into(),
            no_auth: true,
            version: "20251201_00".into(),
            updated_at: "2026-11-01".into(),
            tools,
            triggers: Vec::new(),
            deprecated: false,
        },
    );
    catalog
}

/// The emulator serving `catalog`, a memory store, and an engine that syncs
/// the hostile toolkit beside the project's (it needs no auth config).
async fn hostile_sync(catalog: Catalog) -> (Emulator, Arc<MemoryStore>, SyncEngine) {
    let emu = Emulator::start(EmulatorConfig::new(catalog)).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings
        .no_auth_toolkits
        .push(composio_schema_cache::cache::Slug::parse(TOOLKIT).unwrap());
    let engine = SyncEngine::new(client(&emu), store.clone(), settings);
    (emu, store, engine)
}

async fn get(router: &axum::Router, path: &str) -> (u16, Value) {
    let answer = handle_http(router.clone(), get_event(path, &[]), Context::default())
        .await
        .unwrap();
    let status = answer["statusCode"].as_u64().unwrap() as u16;
    let body = answer["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn assert_valid_schema(schema: &Value, what: &str) {
    let shown = || schema.to_string().chars().take(300).collect::<String>();
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        panic!("{what}: not 2020-12: {e}: {}", shown());
    }
    if let Err(e) = jsonschema::draft7::meta::validate(schema) {
        panic!("{what}: not Draft 7: {e}: {}", shown());
    }
    assert_eq!(schema["type"], "object", "{what}: an object root");
    assert!(schema["properties"].is_object(), "{what}: {}", shown());
}

/// Each tool's input schema in a bundle (`None`: Gemini, no parameters).
fn schemas(bundle: &Value, format: &str) -> Vec<Option<Value>> {
    bundle["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| {
            let schema = match format {
                "openai" => &tool["function"]["parameters"],
                "anthropic" => &tool["input_schema"],
                "mcp" => &tool["inputSchema"],
                _ => &tool["parameters"],
            };
            (!schema.is_null()).then(|| schema.clone())
        })
        .collect()
}

const FORMATS: [(&str, bool); 6] = [
    ("openai", false),
    ("openai", true),
    ("openai-responses", false),
    ("anthropic", false),
    ("gemini", false),
    ("mcp", false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_catalogue_syncs_publishes_every_good_tool_and_serves_valid_schemas() {
    let (_emu, store, engine) = hostile_sync(catalogue()).await;
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert!(report.success && report.failed.is_empty(), "{report:?}");
    assert_eq!(report.toolkits, Catalog::sample().toolkits.len() + 1);

    // Exactly the tools that cannot be stored are left out, each with its reason.
    let expected: Vec<&str> = hostile()
        .into_iter()
        .filter(|(_, _, kept)| !kept)
        .map(|(s, _, _)| s)
        .collect();
    let left_out: Vec<&str> = report
        .tools_left_out
        .iter()
        .map(|t| t.tool.as_str())
        .collect();
    let mut sorted = expected.clone();
    sorted.sort();
    let mut got = left_out.clone();
    got.sort();
    assert_eq!(got, sorted);
    assert!(report.tools_left_out.iter().all(|t| t.toolkit == TOOLKIT
        && (t.reason.contains("must be a JSON object") || t.reason.contains("deeper than"))));

    let router = router(
        Arc::new(CacheReader::new(store, ReaderConfig::new(Duration::ZERO))),
        None,
    );
    let (status, status_body) = get(&router, &format!("{BASE}/sync/status")).await;
    assert_eq!(status, 200);
    assert_eq!(
        status_body["meta"]["toolsLeftOut"].as_array().map(Vec::len),
        Some(expected.len()),
        "{status_body}"
    );

    let (status, toolkit) = get(&router, &format!("{BASE}/toolkits/{TOOLKIT}")).await;
    assert_eq!(status, 200);
    let served: Vec<&str> = toolkit["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert!(served.contains(&"HOSTILE_GOOD_FIRST") && served.contains(&"HOSTILE_GOOD_LAST"));
    assert_eq!(served.len(), 2 + hostile().len() - expected.len());
    // Over budget is said in the report each cut tool carries.
    let laughs = &toolkit["tools"][1];
    assert_eq!(laughs["slug"], "HOSTILE_LAUGHS_30");
    assert!(laughs["compat"]["cut"].is_string(), "{}", laughs["compat"]);

    for path in [
        BASE.to_string(),
        format!("{BASE}/toolkits"),
        format!("{BASE}/tools?q=hostile"),
        format!("{BASE}/toolkits/github?format=openai"),
    ] {
        let (status, body) = get(&router, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for (format, strict) in FORMATS {
        let query = format!(
            "format={format}{}",
            if strict { "&strict=true" } else { "" }
        );
        // The whole toolkit: a bundle, or a clear 422 naming the answer limit.
        let path = format!("{BASE}/toolkits/{TOOLKIT}?{query}");
        let (status, bundle) = get(&router, &path).await;
        match status {
            200 => {
                for (i, schema) in schemas(&bundle, format).into_iter().enumerate() {
                    if let Some(schema) = schema {
                        assert_valid_schema(&schema, &format!("{path} tool {i}"));
                    }
                }
            }
            422 => assert!(bundle["error"].as_str().unwrap().contains("Lambda")),
            other => panic!("{path}: {other} {bundle}"),
        }
        // A batch of them all.
        let path = format!("{BASE}/tools?slugs={}&{query}", served.join(","));
        let (status, bundle) = get(&router, &path).await;
        assert!(status == 200 || status == 422, "{path}: {status} {bundle}");
        // Every tool alone.
        for slug in &served {
            let path = format!("{BASE}/toolkits/{TOOLKIT}/{slug}?{query}");
            let (status, bundle) = get(&router, &path).await;
            assert_eq!(status, 200, "{path}: {bundle}");
            for schema in schemas(&bundle, format).into_iter().flatten() {
                assert_valid_schema(&schema, &path);
            }
        }
    }
}

/// Peak resident set of this process since the last reset, in MB (Linux).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current RSS (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `cargo test --release --test hostile -- --ignored --nocapture`: per case
/// (one hostile tool beside two good ones and the sample's real toolkits),
/// the sync's time, the peak RSS of sync and serving, the largest answer and
/// the slowest format; median and spread of 5 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures per hostile case"]
async fn benchmark_hostile_cases() {
    println!(
        "| case | sync ms (median, min–max) | peak RSS MB | largest answer | slowest answer ms |"
    );
    println!("|---|---|---|---|---|");
    for (slug, input, _) in hostile() {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let mut catalog = Catalog::sample();
            let mut toolkit = catalogue().toolkits.remove(TOOLKIT).unwrap();
            toolkit.tools = vec![
                good("HOSTILE_GOOD_FIRST"),
                tool(slug, input.clone()),
                good("HOSTILE_GOOD_LAST"),
            ];
            catalog.toolkits.insert(TOOLKIT.into(), toolkit);
            let (_emu, store, engine) = hostile_sync(catalog).await;
            reset_peak_rss();
            let base_rss = peak_rss_mb();
            let started = std::time::Instant::now();
            let report = engine.run(SyncRequest::full()).await.unwrap();
            let sync_ms = started.elapsed().as_secs_f64() * 1e3;
            assert!(report.success);
            let router = router(
                Arc::new(CacheReader::new(store, ReaderConfig::new(Duration::ZERO))),
                None,
            );
            let (mut largest, mut slowest) = (0usize, 0f64);
            for (format, strict) in FORMATS {
                let query = format!(
                    "format={format}{}",
                    if strict { "&strict=true" } else { "" }
                );
                for path in [
                    format!("{BASE}/toolkits/{TOOLKIT}?{query}"),
                    format!("{BASE}/toolkits/{TOOLKIT}/{slug}?{query}"),
                ] {
                    let started = std::time::Instant::now();
                    let answer =
                        handle_http(router.clone(), get_event(&path, &[]), Context::default())
                            .await
                            .unwrap();
                    slowest = slowest.max(started.elapsed().as_secs_f64() * 1e3);
                    let status = answer["statusCode"].as_u64().unwrap();
                    assert!(status < 500, "{path}: {status}");
                    largest = largest.max(answer["body"].as_str().map_or(0, str::len));
                }
            }
            runs.push((sync_ms, peak_rss_mb() - base_rss, largest, slowest));
        }
        let mut sync: Vec<f64> = runs.iter().map(|r| r.0).collect();
        sync.sort_by(f64::total_cmp);
        let mut rss: Vec<f64> = runs.iter().map(|r| r.1).collect();
        rss.sort_by(f64::total_cmp);
        let mut slow: Vec<f64> = runs.iter().map(|r| r.3).collect();
        slow.sort_by(f64::total_cmp);
        println!(
            "| {slug} ({} KB) | {:.0} ({:.0}–{:.0}) | +{:.0} | {:.2} MB | {:.0} |",
            input.len() / 1024,
            sync[2],
            sync[0],
            sync[4],
            rss[2],
            runs[0].2 as f64 / 1e6,
            slow[2]
        );
    }
}

/// A toolkit whose compatibility reports alone would take minutes (hundreds
/// of `$ref` laughs) stops at the sync's deadline like a slow fetch: it is
/// out of time, the rest publish, and the sync ends near its deadline rather
/// than when the reports would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatibility_reports_past_the_deadline_leave_their_toolkit_out_of_time() {
    let mut catalog = catalogue();
    let hostile = catalog.toolkits.get_mut(TOOLKIT).unwrap();
    hostile.tools = (0..300)
        .map(|i| tool(&format!("HOSTILE_LAUGHS_{i}"), laughs(30)))
        .collect();
    let (_emu, _store, engine) = hostile_sync(catalog).await;
    let mut request = SyncRequest::full();
    request.deadline = Some(std::time::Instant::now() + Duration::from_secs(4));
    let report = engine.run(request).await.unwrap();
    let failed: Vec<(&str, &str)> = report
        .failed
        .iter()
        .map(|f| (f.slug.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(
        failed,
        [(
            TOOLKIT,
            "the sync's time budget ran out before this toolkit finished"
        )],
        "{report:?}"
    );
    assert!(report.published);
    assert_eq!(report.toolkits, Catalog::sample().toolkits.len());
}
