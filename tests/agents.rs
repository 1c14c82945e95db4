//! What agents get: provider formats over the whole bundled catalogue (checked
//! against each provider's published rules), argument round trips through the
//! HTTP bundle, batch get, search and the change feed.

mod support;

use composio_schema_cache::agent::{restore_arguments, ArgumentMap};
use composio_schema_cache::emulator::{bundled_catalog_dir, Catalog, Emulator, EmulatorConfig};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::lambda::handle_http;
use composio_schema_cache::store::MemoryStore;
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use lambda_runtime::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// The whole bundled catalogue (21 toolkits), synced and served.
async fn full_catalogue() -> (Emulator, SyncEngine, axum::Router) {
    full_catalogue_read_with(ReaderConfig::new(Duration::ZERO)).await
}

async fn full_catalogue_read_with(config: ReaderConfig) -> (Emulator, SyncEngine, axum::Router) {
    let catalog = Catalog::from_dir(&bundled_catalog_dir()).unwrap();
    let emu = Emulator::start(EmulatorConfig::new(catalog)).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.concurrency = 32;
    let engine = SyncEngine::new(client(&emu), store.clone(), settings);
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert_eq!(
        (report.toolkits, report.tools),
        (21, 1357),
        "{:?}",
        report.failed
    );
    let router = router(Arc::new(CacheReader::new(store, config)), None);
    (emu, engine, router)
}

async fn get(router: &axum::Router, path: &str) -> (u16, Value) {
    let answer = handle_http(router.clone(), get_event(path, &[]), Context::default())
        .await
        .unwrap();
    let status = answer["statusCode"].as_u64().unwrap() as u16;
    let body = answer["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn name_is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Every property key at every level of a schema satisfies `rule`.
fn keys_ok(schema: &Value, rule: &dyn Fn(&str) -> bool) -> Result<(), String> {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (key, sub) in props {
                    if !rule(key) {
                        return Err(key.clone());
                    }
                    keys_ok(sub, rule)?;
                }
            }
            for (key, sub) in map {
                if key != "properties" {
                    keys_ok(sub, rule)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|i| keys_ok(i, rule)),
        _ => Ok(()),
    }
}

const GEMINI_KEYWORDS: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "default",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "properties",
    "propertyOrdering",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "minimum",
    "maximum",
];

fn gemini_keywords_ok(schema: &Value) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return Ok(());
    };
    for (key, sub) in map {
        if !GEMINI_KEYWORDS.contains(&key.as_str()) {
            return Err(key.clone());
        }
        match key.as_str() {
            "properties" => {
                for prop in sub.as_object().into_iter().flat_map(|p| p.values()) {
                    gemini_keywords_ok(prop)?;
                }
            }
            "items" => gemini_keywords_ok(sub)?,
            "anyOf" => sub
                .as_array()
                .into_iter()
                .flatten()
                .try_for_each(gemini_keywords_ok)?,
            _ => {}
        }
    }
    Ok(())
}

fn strict_ok(schema: &Value) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return Ok(());
    };
    if let Some(Value::Object(props)) = map.get("properties") {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err("an object without additionalProperties: false".into());
        }
        let mut required: Vec<&str> = map["required"]
            .as_array()
            .ok_or("no required")?
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
        required.sort();
        keys.sort();
        if required != keys {
            return Err("an optional property".into());
        }
    }
    // A property map holds schemas by name (a property may be called "properties").
    map.iter().try_for_each(|(key, v)| match (key.as_str(), v) {
        ("properties", Value::Object(props)) => props.values().try_for_each(strict_ok),
        (_, Value::Array(items)) => items.iter().try_for_each(strict_ok),
        (_, other) => strict_ok(other),
    })
}

#[tokio::test]
async fn every_format_follows_its_providers_rules_over_the_whole_catalogue() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (_, root) = get(&router, BASE).await;
    let slugs: Vec<String> = root["toolkits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(slugs.len(), 21);
    let anthropic_key = |k: &str| {
        !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    let gemini_key = |k: &str| {
        !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let mut tools_seen = 0;
    for slug in &slugs {
        for (format, strict) in [
            ("openai", false),
            ("openai", true),
            ("openai-responses", false),
            ("anthropic", false),
            ("gemini", false),
            ("mcp", false),
        ] {
            let path = format!(
                "{BASE}/toolkits/{slug}?format={format}{}",
                if strict { "&strict=true" } else { "" }
            );
            let (status, bundle) = get(&router, &path).await;
            assert_eq!(status, 200, "{path}: {bundle}");
            assert_eq!(bundle["format"], format);
            let tools = bundle["tools"].as_array().unwrap();
            let names = bundle["nameMap"].as_object().unwrap();
            assert_eq!(names.len(), tools.len(), "{path}: every name maps back");
            if format == "openai" && !strict {
                tools_seen += tools.len();
            }
            for tool in tools {
                let (name, schema, keys): (&str, &Value, Vec<&str>) = match format {
                    "openai" => {
                        let f = &tool["function"];
                        assert_eq!(tool["type"], "function");
                        assert_eq!(f.get("strict").is_some(), strict, "{path}");
                        (
                            f["name"].as_str().unwrap(),
                            &f["parameters"],
                            tool.as_object()
                                .unwrap()
                                .keys()
                                .map(String::as_str)
                                .collect(),
                        )
                    }
                    "openai-responses" => {
                        // The Responses API reads a missing `strict` as true.
                        assert_eq!(tool["strict"], strict, "{path}");
                        (
                            tool["name"].as_str().unwrap(),
                            &tool["parameters"],
                            vec!["type", "name", "description", "parameters", "strict"],
                        )
                    }
                    "anthropic" => (
                        tool["name"].as_str().unwrap(),
                        &tool["input_schema"],
                        vec!["name", "description", "input_schema"],
                    ),
                    "gemini" => (
                        tool["name"].as_str().unwrap(),
                        &tool["parameters"],
                        vec!["name", "description", "parameters"],
                    ),
                    _ => (
                        tool["name"].as_str().unwrap(),
                        &tool["inputSchema"],
                        vec![
                            "name",
                            "title",
                            "description",
                            "inputSchema",
                            "outputSchema",
                        ],
                    ),
                };
                assert!(name_is_valid(name), "{path}: tool name {name:?}");
                assert!(names.contains_key(name), "{path}: {name} in nameMap");
                for field in tool.as_object().unwrap().keys() {
                    assert!(
                        keys.contains(&field.as_str()),
                        "{path}: no extra fields ({field})"
                    );
                }
                match (format, strict) {
                    ("gemini", _) => {
                        keys_ok(schema, &gemini_key)
                            .unwrap_or_else(|k| panic!("{path}: {name}: Gemini key {k:?}"));
                        if !schema.is_null() {
                            gemini_keywords_ok(schema)
                                .unwrap_or_else(|k| panic!("{path}: {name}: Gemini keyword {k:?}"));
                        }
                    }
                    (_, true) => {
                        strict_ok(schema).unwrap_or_else(|e| panic!("{path}: {name}: strict: {e}"))
                    }
                    _ => keys_ok(schema, &anthropic_key)
                        .unwrap_or_else(|k| panic!("{path}: {name}: key {k:?}")),
                }
                if format == "mcp" {
                    if let Some(out) = tool.get("outputSchema") {
                        assert_eq!(
                            out["type"], "object",
                            "{path}: outputSchema only with an object root"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(
        tools_seen, 1357,
        "every tool of the catalogue, in every format"
    );
}

#[tokio::test]
async fn renamed_arguments_come_back_to_their_original_names() {
    let (_emu, _engine, router) = full_catalogue().await;
    // github has flattened keys over 64 characters: renamed for every provider.
    let (_, bundle) = get(&router, &format!("{BASE}/toolkits/github?format=anthropic")).await;
    let map: ArgumentMap = serde_json::from_value(bundle["argumentMap"].clone()).unwrap();
    let renamed = bundle["tools"].as_array().unwrap().iter().find_map(|tool| {
        let props = tool["input_schema"]["properties"].as_object()?;
        let name = tool["name"].as_str()?;
        let node = map.0.get(name)?;
        let props_map = serde_json::to_value(node).ok()?;
        let renamed = props_map["properties"]
            .as_object()?
            .iter()
            .find(|(_, v)| v.get("from").is_some())?;
        let original = renamed.1["from"].as_str()?.to_owned();
        props
            .contains_key(renamed.0)
            .then(|| (name.to_owned(), renamed.0.clone(), original))
    });
    let (name, sent, original) = renamed.expect("a tool with a renamed key");
    assert!(
        original.len() > 64 && sent.len() <= 64,
        "{original} → {sent}"
    );
    let restored = restore_arguments(&map, &name, json!({ sent.clone(): "value" }));
    assert_eq!(restored, json!({ original: "value" }));
}

#[tokio::test]
async fn a_bad_format_or_strict_mode_is_a_400_naming_what_is_valid() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (status, err) = get(&router, &format!("{BASE}/toolkits/gmail?format=claude")).await;
    assert_eq!(status, 400);
    let message = err["error"].as_str().unwrap();
    for valid in ["openai", "openai-responses", "anthropic", "gemini", "mcp"] {
        assert!(message.contains(valid), "{message}");
    }
    let (status, _) = get(
        &router,
        &format!("{BASE}/toolkits/gmail?format=anthropic&strict=true"),
    )
    .await;
    assert_eq!(status, 400, "strict is OpenAI's");
    let (status, _) = get(&router, &format!("{BASE}/toolkits/gmail?strict=true")).await;
    assert_eq!(status, 400, "strict needs a format");
    let (status, tool) = get(&router, &format!("{BASE}/toolkits/gmail/GMAIL_SEND_EMAIL")).await;
    assert_eq!(
        (status, tool["slug"].as_str()),
        (200, Some("GMAIL_SEND_EMAIL")),
        "without format, unchanged"
    );
    let (status, one) = get(
        &router,
        &format!("{BASE}/toolkits/gmail/GMAIL_SEND_EMAIL?format=openai&strict=true"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["tools"].as_array().unwrap().len(), 1);
    assert_eq!(one["tools"][0]["function"]["strict"], true);
    assert!(
        one["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "strict lists what it altered"
    );
}

#[tokio::test]
async fn a_conversion_past_its_time_limit_is_a_422_naming_the_limit() {
    let config = ReaderConfig {
        max_convert_time: Duration::ZERO,
        ..ReaderConfig::new(Duration::ZERO)
    };
    let (_emu, _engine, router) = full_catalogue_read_with(config).await;
    for path in [
        "/toolkits/github?format=openai",
        "/toolkits/github/GITHUB_CREATE_AN_ISSUE?format=gemini",
        "/tools?slugs=GITHUB_CREATE_AN_ISSUE,GMAIL_SEND_EMAIL&format=anthropic",
        "/tools?q=send%20an%20email&format=mcp",
    ] {
        // Asked again, the answer is refused at once, with the same reason.
        for attempt in 0..2 {
            let (status, err) = get(&router, &format!("{BASE}{path}")).await;
            assert_eq!(status, 422, "{path} ({attempt}): {err}");
            let message = err["error"].as_str().unwrap();
            assert!(
                message.contains("longer than the 0 ms one answer may take"),
                "{path} ({attempt}): {message}"
            );
        }
    }
    let call = json!({"format": "openai", "name": "GITHUB_CREATE_AN_ISSUE", "arguments": {}});
    let (status, err) = post(
        &router,
        &format!("{BASE}/resolve"),
        "application/json",
        call.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    // What needs no conversion is served as ever.
    let (status, _) = get(&router, &format!("{BASE}/toolkits/github")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&router, &format!("{BASE}/tools?q=send%20an%20email")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn batch_get_finds_tools_across_toolkits_and_lists_the_unknown() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (status, batch) = get(
        &router,
        &format!("{BASE}/tools?slugs=GMAIL_SEND_EMAIL,NOPE_TOOL,GITHUB_CREATE_AN_ISSUE"),
    )
    .await;
    assert_eq!(status, 200);
    let found: Vec<&str> = batch["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["GMAIL_SEND_EMAIL", "GITHUB_CREATE_AN_ISSUE"]);
    assert_eq!(batch["unknown"], json!(["NOPE_TOOL"]));
    assert!(batch["tools"][0]["inputParameters"]["properties"].is_object());
    let (status, bundle) = get(
        &router,
        &format!("{BASE}/tools?slugs=GMAIL_SEND_EMAIL,NOPE_TOOL&format=gemini"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["format"], "gemini");
    assert_eq!(bundle["tools"].as_array().unwrap().len(), 1);
    assert_eq!(bundle["unknown"], json!(["NOPE_TOOL"]));
    let many: Vec<String> = (0..129).map(|i| format!("T{i}")).collect();
    let (status, _) = get(&router, &format!("{BASE}/tools?slugs={}", many.join(","))).await;
    assert_eq!(status, 400, "at most 128");
    for bad in [
        "",
        "?q=x&slugs=A",
        "?slugs=A&toolkit=gmail",
        "?q=x&format=openai&defer=true",
        "?q=x&defer=true",
        "?q=x&searchResult=true",
        "?slugs=A&format=anthropic&searchResult=true",
    ] {
        let (status, _) = get(&router, &format!("{BASE}/tools{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn search_ranks_the_right_tools_first_and_pages() {
    let (_emu, _engine, router) = full_catalogue().await;
    let first = |q: &str| {
        let router = router.clone();
        let path = format!("{BASE}/tools?q={}", q.replace(' ', "%20"));
        async move {
            let (status, answer) = get(&router, &path).await;
            assert_eq!(status, 200);
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["slug"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(first("send an email").await[0], "GMAIL_SEND_EMAIL");
    assert!(first("create issue").await[..3].contains(&"GITHUB_CREATE_AN_ISSUE".to_string()));
    assert!(first("google calendar event").await[0].starts_with("GOOGLECALENDAR_"));
    // Words only a tool's argument names say reach it: the sync keeps them
    // in the meta, and the reader's index reads them from there.
    assert_eq!(
        first("am i hireable").await,
        ["GITHUB_UPDATE_THE_AUTHENTICATED_USER"]
    );
    let (_, only) = get(&router, &format!("{BASE}/tools?q=create&toolkit=notion")).await;
    assert!(only["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["toolkitSlug"] == "notion"));
    // Paging: two pages of 5 are the first 10, without repeats.
    let (_, ten) = get(&router, &format!("{BASE}/tools?q=list&limit=10")).await;
    let (_, page1) = get(&router, &format!("{BASE}/tools?q=list&limit=5")).await;
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = get(
        &router,
        &format!("{BASE}/tools?q=list&limit=5&cursor={cursor}"),
    )
    .await;
    let joined: Vec<&Value> = page1["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["results"].as_array().unwrap())
        .collect();
    assert_eq!(
        joined,
        ten["results"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
    );
    let (status, _) = get(&router, &format!("{BASE}/tools?q=list&cursor=garbage")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_feed_read_before_the_syncs_record_lands_is_not_kept() {
    use composio_schema_cache::store::{PutCondition, Store};
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(SyncRequest::full()).await.unwrap();
    let before = composio_schema_cache::cache::timestamp(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    emu.remove_tool("firecrawl", "FIRECRAWL_SCRAPE");
    emu.bump_version("firecrawl");
    assert!(
        engine
            .run(SyncRequest::default())
            .await
            .unwrap()
            .changes_recorded
    );
    // Between the meta's publish and its record's write: take the record away.
    let records = store.list_changes().await.unwrap();
    let record = records.last().unwrap().key.clone();
    let body = store.get(&record).await.unwrap().unwrap().body;
    store.delete(&record).await.unwrap();

    let reader = Arc::new(CacheReader::new(
        store.clone(),
        ReaderConfig::new(Duration::from_secs(600)),
    ));
    let router = router(reader, None);
    let path = format!("{BASE}/changes?since={before}");
    let (status, early) = get(&router, &path).await;
    assert_eq!(status, 200);
    assert!(early["changes"].as_array().unwrap().is_empty(), "{early}");
    store
        .put(&record, body, PutCondition::IfAbsent)
        .await
        .unwrap();
    let (_, late) = get(&router, &path).await;
    assert_eq!(
        late["changes"].as_array().unwrap().len(),
        1,
        "the same meta, the record now found: {late}"
    );
}

#[tokio::test]
async fn the_change_feed_says_what_changed_and_nothing_else() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(SyncRequest::full()).await.unwrap();
    let router = router(
        Arc::new(CacheReader::new(store, ReaderConfig::new(Duration::ZERO))),
        None,
    );
    let before = composio_schema_cache::cache::timestamp(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(5)).await;

    emu.edit_description("linkedin", "LINKEDIN_GET_MY_INFO", "A new description");
    emu.bump_version("linkedin");
    emu.remove_tool("firecrawl", "FIRECRAWL_SCRAPE");
    emu.bump_version("github");
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success && report.changes_recorded, "{report:?}");
    let counts = report.changes.unwrap();
    assert_eq!(
        (
            counts.added,
            counts.removed,
            counts.changed,
            counts.deprecated
        ),
        (0, 1, 1, 0)
    );

    let (status, feed) = get(&router, &format!("{BASE}/changes?since={before}")).await;
    assert_eq!(status, 200, "{feed}");
    let changes = feed["changes"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["toolkit"].as_str().unwrap(),
                c["tool"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.contains(&("linkedin", "LINKEDIN_GET_MY_INFO", "changed")));
    assert!(seen.contains(&("firecrawl", "FIRECRAWL_SCRAPE", "removed")));
    let changed = changes.iter().find(|c| c["kind"] == "changed").unwrap();
    assert_eq!(changed["toVersion"], "20260202_00");
    assert_eq!(changed["syncId"], report.sync_id.as_str());
    assert!(
        seen.iter().all(|(t, _, _)| *t != "github"),
        "a version bump alone is no change"
    );

    let (_, linkedin_only) = get(
        &router,
        &format!("{BASE}/changes?since={before}&toolkit=linkedin"),
    )
    .await;
    assert_eq!(linkedin_only["changes"].as_array().unwrap().len(), 1);
    let (_, paged) = get(&router, &format!("{BASE}/changes?since={before}&limit=1")).await;
    assert_eq!(paged["changes"].as_array().unwrap().len(), 1);
    let cursor = paged["nextCursor"].as_str().unwrap();
    let (_, rest) = get(
        &router,
        &format!("{BASE}/changes?since={before}&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(rest["changes"].as_array().unwrap().len(), 1);
    assert!(rest["nextCursor"].is_null());
    assert_ne!(rest["changes"][0], paged["changes"][0]);
    let (_, later) = get(
        &router,
        &format!("{BASE}/changes?since={}", report.started_at),
    )
    .await;
    assert_eq!(
        later["changes"].as_array().unwrap().len(),
        2,
        "the record's time is its publish"
    );
    for bad in [
        "",
        "?since=yesterday",
        "?since=2026-01-01T00:00:00Z&limit=0",
    ] {
        let (status, _) = get(&router, &format!("{BASE}/changes{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// `t` written in another offset, as a client in that zone would send it.
fn in_offset(t: std::time::SystemTime, hours: i64) -> String {
    let shift = Duration::from_secs(hours.unsigned_abs() * 3600);
    let local = if hours >= 0 { t + shift } else { t - shift };
    let text = humantime::format_rfc3339_seconds(local).to_string();
    let sign = if hours >= 0 { '+' } else { '-' };
    format!("{}{sign}{:02}:00", text.trim_end_matches('Z'), hours.abs())
}

#[tokio::test]
async fn since_takes_any_rfc3339_offset() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    engine(&emu, store.clone())
        .run(SyncRequest::full())
        .await
        .unwrap();
    let router = router(
        Arc::new(CacheReader::new(store, ReaderConfig::new(Duration::ZERO))),
        None,
    );
    let (_, feed) = get(
        &router,
        &format!("{BASE}/changes?since=2000-01-01T00:00:00Z"),
    )
    .await;
    let published = humantime::parse_rfc3339(feed["changes"][0]["at"].as_str().unwrap()).unwrap();
    let second = Duration::from_secs(1);
    let count = |feed: &Value| feed["changes"].as_array().map(Vec::len);
    for (since, seen) in [
        (in_offset(published - second, 1), true),
        (in_offset(published - second, -5), true),
        (in_offset(published + second, 1), false),
        (in_offset(published + second, -5), false),
    ] {
        for encoded in [since.replace('+', "%2B"), since.clone()] {
            let (status, feed) = get(&router, &format!("{BASE}/changes?since={encoded}")).await;
            assert_eq!(status, 200, "{encoded}: {feed}");
            assert_eq!(count(&feed).unwrap() > 0, seen, "{encoded}: {feed}");
        }
    }
    // Beyond what a change record's time can say: clamped, not a crash.
    for extreme in ["9999-12-31T23:59:60Z", "1900-01-01T00:00:00Z"] {
        let (status, feed) = get(&router, &format!("{BASE}/changes?since={extreme}")).await;
        assert_eq!(status, 200, "{extreme}: {feed}");
    }
}

#[tokio::test]
async fn the_toolkit_filter_is_a_slug_and_search_names_only_cached_toolkits() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    engine(&emu, store.clone())
        .run(SyncRequest::full())
        .await
        .unwrap();
    let router = router(
        Arc::new(CacheReader::new(store, ReaderConfig::new(Duration::ZERO))),
        None,
    );
    let since = "since=2000-01-01T00:00:00Z";
    for bad in ["NOPE", "..%2F", "a%2Fb", "_meta", "%C3%A9"] {
        for path in [
            format!("{BASE}/tools?q=issue&toolkit={bad}"),
            format!("{BASE}/changes?{since}&toolkit={bad}"),
        ] {
            let (status, answer) = get(&router, &path).await;
            assert_eq!(status, 400, "{path}: {answer}");
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains("invalid toolkit slug"),
                "{path}: {answer}"
            );
        }
    }
    // Search covers exactly the cached toolkits: one it does not hold is a 404...
    let (status, answer) = get(&router, &format!("{BASE}/tools?q=issue&toolkit=nope")).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("nope"),
        "{answer}"
    );
    let (status, answer) = get(&router, &format!("{BASE}/tools?q=issue&toolkit=github")).await;
    assert_eq!(status, 200);
    assert!(!answer["results"].as_array().unwrap().is_empty());
    // ...while history outlives the cache: a toolkit without changes has none.
    let (status, answer) = get(&router, &format!("{BASE}/changes?{since}&toolkit=nope")).await;
    assert_eq!((status, &answer["changes"]), (200, &json!([])));
}

#[tokio::test]
async fn the_toolkit_route_shows_each_tools_compatibility_report() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (_, github) = get(&router, &format!("{BASE}/toolkits/github")).await;
    let with_report: Vec<&Value> = github["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("compat").is_some())
        .collect();
    assert!(!with_report.is_empty());
    assert!(
        with_report
            .iter()
            .any(|t| t["compat"]["renamedKeys"].as_u64().unwrap_or(0) > 0),
        "github's long flattened keys need renaming"
    );
    let (_, gmail) = get(&router, &format!("{BASE}/toolkits/gmail/GMAIL_SEND_EMAIL")).await;
    assert!(
        gmail["compat"]["strict"].is_object(),
        "strict mode rewrites optional properties: {}",
        gmail["compat"]
    );
}

async fn post(
    router: &axum::Router,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::post(path)
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    let answer = router.clone().oneshot(request).await.unwrap();
    let status = answer.status().as_u16();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_search_with_a_format_answers_the_top_tools_ready_to_send() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (status, bundle) = get(
        &router,
        &format!("{BASE}/tools?q=add%20a%20task%20to%20my%20todo%20list&format=openai&limit=3"),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["format"], "openai");
    let tools = bundle["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3);
    assert_eq!(tools[0]["function"]["name"], "GOOGLETASKS_INSERT_TASK");
    assert_eq!(bundle["results"][0]["slug"], "GOOGLETASKS_INSERT_TASK");
    assert_eq!(
        bundle["nameMap"]["GOOGLETASKS_INSERT_TASK"],
        "GOOGLETASKS_INSERT_TASK"
    );
    assert!(bundle["argumentMap"].is_object());
    assert!(bundle.get("searchResult").is_none());
    // A search that finds nothing is an empty bundle, not an error.
    let (status, empty) = get(&router, &format!("{BASE}/tools?q=zzzzqqq&format=mcp")).await;
    assert_eq!(
        (status, empty["tools"].as_array().map(Vec::len)),
        (200, Some(0))
    );
}

#[tokio::test]
async fn deferred_loading_marks_every_tool_for_the_formats_that_take_it() {
    let (_emu, _engine, router) = full_catalogue().await;
    for format in ["anthropic", "openai-responses"] {
        let (status, bundle) = get(
            &router,
            &format!("{BASE}/toolkits/github?format={format}&defer=true"),
        )
        .await;
        assert_eq!(status, 200);
        let tools = bundle["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 831);
        assert!(tools.iter().all(|t| t["defer_loading"] == true), "{format}");
        let (_, plain) = get(&router, &format!("{BASE}/toolkits/github?format={format}")).await;
        assert!(plain["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("defer_loading").is_none()));
    }
    for bad in [
        "format=openai&defer=true",
        "format=gemini&defer=true",
        "format=mcp&defer=true",
        "defer=true",
    ] {
        let (status, err) = get(&router, &format!("{BASE}/toolkits/github?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(err["error"].as_str().unwrap().contains("defer"), "{err}");
    }
}

#[tokio::test]
async fn a_client_search_tool_gets_its_result_in_each_providers_convention() {
    let (_emu, _engine, router) = full_catalogue().await;
    let q = "add%20a%20task%20to%20my%20todo%20list";
    let path = |format: &str| {
        format!("{BASE}/tools?q={q}&format={format}&limit=2&searchResult=true&callId=call_1")
    };
    let (status, a) = get(&router, &format!("{}&defer=true", path("anthropic"))).await;
    assert_eq!(status, 200);
    let result = &a["searchResult"];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "call_1");
    let references: Vec<&Value> = result["content"].as_array().unwrap().iter().collect();
    assert_eq!(references.len(), 2);
    assert_eq!(
        references[0],
        &json!({"type": "tool_reference", "tool_name": "GOOGLETASKS_INSERT_TASK"})
    );
    assert!(a["tools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["defer_loading"] == true));

    let (_, r) = get(&router, &path("openai-responses")).await;
    assert_eq!(r["searchResult"]["type"], "tool_search_output");
    assert_eq!(r["searchResult"]["call_id"], "call_1");
    assert_eq!(r["searchResult"]["execution"], "client");
    assert_eq!(r["searchResult"]["tools"], r["tools"]);

    let (_, o) = get(&router, &path("openai")).await;
    assert_eq!(o["searchResult"]["role"], "tool");
    assert_eq!(o["searchResult"]["tool_call_id"], "call_1");
    let listed: Value =
        serde_json::from_str(o["searchResult"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(listed["tools"][0]["name"], "GOOGLETASKS_INSERT_TASK");

    let (_, g) = get(&router, &path("gemini")).await;
    assert_eq!(g["searchResult"]["functionResponse"]["id"], "call_1");
    assert_eq!(
        g["searchResult"]["functionResponse"]["response"]["tools"][0]["name"],
        "GOOGLETASKS_INSERT_TASK"
    );

    let (_, m) = get(&router, &path("mcp")).await;
    assert_eq!(
        m["searchResult"]["structuredContent"]["tools"][0]["name"],
        "GOOGLETASKS_INSERT_TASK"
    );
    assert_eq!(m["searchResult"]["content"][0]["type"], "text");
}

#[tokio::test]
async fn resolve_restores_composios_names_and_names_every_fault() {
    let (_emu, _engine, router) = full_catalogue().await;
    let (_, bundle) = get(&router, &format!("{BASE}/toolkits/github?format=anthropic")).await;
    let map: ArgumentMap = serde_json::from_value(bundle["argumentMap"].clone()).unwrap();
    let (name, sent, original) = bundle["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|tool| {
            let name = tool["name"].as_str()?;
            let node = serde_json::to_value(map.0.get(name)?).ok()?;
            let (sent, how) = node["properties"]
                .as_object()?
                .iter()
                .find(|(_, v)| v.get("from").is_some())?;
            Some((
                name.to_owned(),
                sent.clone(),
                how["from"].as_str()?.to_owned(),
            ))
        })
        .expect("a github tool with a renamed key");
    let slug = bundle["nameMap"][&name].as_str().unwrap().to_owned();
    let resolve = |body: Value| {
        let router = router.clone();
        async move {
            post(
                &router,
                &format!("{BASE}/resolve"),
                "application/json",
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let (status, answer) =
        resolve(json!({"format": "anthropic", "name": name, "arguments": {sent.clone(): "value"}}))
            .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"toolSlug": slug, "arguments": {original.clone(): "value"}})
    );
    assert_eq!(
        answer["arguments"],
        restore_arguments(&map, &name, json!({ sent.clone(): "value" }))
    );
    // Arguments as the JSON string a model wrote are taken too.
    let (status, again) = resolve(json!({"format": "anthropic", "name": name, "arguments": json!({sent.clone(): "value"}).to_string()})).await;
    assert_eq!((status, &again), (200, &answer));
    // A shortened name (a slug over 64 characters) comes back to its slug.
    let long = "GITHUB_CHECK_IF_A_REPOSITORY_IS_STARRED_BY_THE_AUTHENTICATED_USER";
    let short = composio_schema_cache::agent::tool_name(long);
    assert_ne!(short, long);
    let (status, answer) =
        resolve(json!({"format": "openai", "name": short, "arguments": {}})).await;
    assert_eq!((status, answer["toolSlug"].as_str()), (200, Some(long)));

    let (status, err) =
        resolve(json!({"format": "anthropic", "name": "NO_SUCH_TOOL", "arguments": {}})).await;
    assert_eq!(status, 404, "{err}");
    for (body, field) in [
        (json!({"name": name, "arguments": {}}), "format"),
        (json!({"format": "claude", "name": name}), "format"),
        (json!({"format": "anthropic", "arguments": {}}), "name"),
        (json!({"format": "anthropic", "name": 7}), "name"),
        (
            json!({"format": "anthropic", "name": name, "arguments": [1]}),
            "arguments",
        ),
        (
            json!({"format": "anthropic", "name": name, "strict": "yes"}),
            "strict",
        ),
        (
            json!({"format": "anthropic", "name": name, "argumnets": {}}),
            "argumnets",
        ),
        (json!(["not", "an", "object"]), "object"),
    ] {
        let (status, err) = resolve(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            err["error"].as_str().unwrap().contains(field),
            "{body}: {err}"
        );
    }
    let (status, _) = post(
        &router,
        &format!("{BASE}/resolve"),
        "application/json",
        b"{\"format\": ".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "not JSON");
    let (status, _) = post(
        &router,
        &format!("{BASE}/resolve"),
        "text/plain",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let huge = json!({"format": "anthropic", "name": name, "arguments": {"x": "y".repeat(2 * 1024 * 1024)}});
    let (status, err) = post(
        &router,
        &format!("{BASE}/resolve"),
        "application/json",
        huge.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{err}");
    let (status, _) = get(&router, &format!("{BASE}/resolve")).await;
    assert_eq!(status, 405);
}
