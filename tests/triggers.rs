//! Trigger types end to end: the emulator (from the bundled real trigger
//! types) → the sync → the store → the read routes over real HTTP; and
//! Composio's API versions and deprecated toolkits.

mod support;

use composio_schema_cache::composio::{ApiVersion, ComposioClient};
use composio_schema_cache::emulator::{
    bundled_catalog_dir, Catalog, Emulator, EmulatorConfig, Fault, FaultKind, FaultTarget,
};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::store::{MemoryStore, Store};
use composio_schema_cache::sync::{Scope, SyncEngine, SyncRequest};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// The real trigger types the emulator serves, by slug.
fn bundled_triggers() -> Vec<Value> {
    let path = bundled_catalog_dir().join("triggers/trigger_types.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}{BASE}")
}

fn read_router(store: Arc<dyn Store>) -> axum::Router {
    let reader = Arc::new(CacheReader::new(
        store,
        ReaderConfig::new(Duration::from_secs(60)),
    ));
    router(reader, None)
}

async fn whole_catalogue() -> Emulator {
    let catalog = Catalog::from_dir(&bundled_catalog_dir()).unwrap();
    Emulator::start(EmulatorConfig::new(catalog)).await.unwrap()
}

#[tokio::test]
async fn a_full_sync_takes_trigger_types_in_one_call_and_a_quiet_resync_none() {
    let emu = whole_catalogue().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert!(report.success, "{report:?}");
    let n = report.toolkits as u64;
    assert_eq!(n, 21);
    // Two listings, one tool call per toolkit, one trigger-type call for the
    // six toolkits that have any: N + 3.
    assert_eq!(report.upstream_requests, n + 3);
    let stats = emu.stats();
    assert_eq!(stats.by_route.get("triggers_types"), Some(&1));
    assert_eq!(
        stats.by_version.keys().collect::<Vec<_>>(),
        ["v3.1"],
        "v3.1 by default"
    );
    let meta = meta(&*store).await.unwrap();
    let counts: Vec<(&str, usize)> = meta
        .toolkits
        .iter()
        .filter(|e| !e.triggers.is_empty())
        .map(|e| (e.slug.as_str(), e.triggers.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("github", 6),
            ("gmail", 1),
            ("googlecalendar", 2),
            ("googledrive", 1),
            ("notion", 3),
            ("youtube", 4)
        ]
    );

    let quiet = engine.run(SyncRequest::default()).await.unwrap();
    assert!(quiet.success, "{quiet:?}");
    assert_eq!(
        quiet.upstream_requests, 2,
        "nothing changed: the listings only"
    );
    assert_eq!(emu.stats().by_route.get("triggers_types"), Some(&1));
}

#[tokio::test]
async fn trigger_routes_page_revalidate_compress_and_keep_the_schemas_exactly() {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    assert!(
        engine(&emu, store.clone())
            .run(SyncRequest::full())
            .await
            .unwrap()
            .success
    );
    let base = serve(read_router(store)).await;
    let http = composio_schema_cache::tls::http_client();
    let get = |path: String| http.get(format!("{base}{path}")).send();

    let all: Value = get("/triggers".into()).await.unwrap().json().await.unwrap();
    assert!(all["lastSyncedAt"].is_string());
    assert!(all["nextCursor"].is_null());
    let triggers = all["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 6, "the sample's github has six");
    for t in triggers {
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["slug", "name", "description", "type", "toolkitSlug"]);
        assert_eq!(t["toolkitSlug"], "github");
    }

    // Paged: 4, then the last 2, then no cursor.
    let first: Value = get("/triggers?limit=4".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["triggers"].as_array().unwrap().len(), 4);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second: Value = get(format!("/triggers?limit=4&cursor={cursor}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["triggers"].as_array().unwrap().len(), 2);
    assert!(second["nextCursor"].is_null());
    let mut paged: Vec<&Value> = first["triggers"].as_array().unwrap().iter().collect();
    paged.extend(second["triggers"].as_array().unwrap());
    assert_eq!(paged, triggers.iter().collect::<Vec<_>>());

    let github: Value = get("/triggers?toolkit=github".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(github["triggers"], all["triggers"]);
    for (path, status) in [
        ("/triggers?toolkit=gmail", 404),
        ("/triggers?toolkit=Bad!", 400),
        ("/triggers?limit=0", 400),
        ("/triggers?cursor=nope", 400),
        ("/triggers?unknown=1", 400),
        ("/triggers/GITHUB_NOT_A_TRIGGER", 404),
        ("/triggers/bad%20slug", 400),
        ("/triggers/GITHUB_COMMIT_EVENT?x=1", 400),
    ] {
        let answer = get(path.into()).await.unwrap();
        assert_eq!(answer.status(), status, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    // One trigger type: the reference's fields, config and payload exactly as given.
    let one = get("/triggers/GITHUB_COMMIT_EVENT".into()).await.unwrap();
    assert_eq!(one.status(), 200);
    let etag = one.headers()["etag"].to_str().unwrap().to_owned();
    let one: Value = one.json().await.unwrap();
    let keys: Vec<&str> = one
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "slug",
            "name",
            "description",
            "instructions",
            "type",
            "toolkitSlug",
            "version",
            "config",
            "payload"
        ]
    );
    let source = bundled_triggers()
        .into_iter()
        .find(|t| t["slug"] == "GITHUB_COMMIT_EVENT")
        .unwrap();
    for field in [
        "name",
        "description",
        "instructions",
        "type",
        "config",
        "payload",
    ] {
        assert_eq!(one[field], source[field], "{field}");
    }
    assert_eq!(one["toolkitSlug"], "github");

    let revalidated = http
        .get(format!("{base}/triggers/GITHUB_COMMIT_EVENT"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    let list_etag = get("/triggers".into()).await.unwrap().headers()["etag"].clone();
    let list_revalidated = http
        .get(format!("{base}/triggers"))
        .header("if-none-match", list_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(list_revalidated.status(), 304);

    let zipped = http
        .get(format!("{base}/triggers/GITHUB_COMMIT_EVENT"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let unzipped: Value =
        serde_json::from_reader(flate2::read::GzDecoder::new(&bytes[..])).unwrap();
    assert_eq!(unzipped, one);

    // The document names both routes, with the answers' field names as served.
    let doc: Value = get("/openapi.json".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in ["triggers", "triggers/{trigger}"] {
        assert!(
            doc["paths"][format!("{BASE}/{path}")].is_object(),
            "{path} documented"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("CachedTriggerType", "type"),
        ("TriggerSummary", "toolkitSlug"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field}: {}",
            schemas[schema]
        );
    }
}

#[tokio::test]
async fn a_failed_batch_costs_one_extra_call_for_each_toolkit_with_triggers_not_the_toolkits() {
    let emu = whole_catalogue().await;
    emu.set_listing_fault(
        "triggers_types",
        Fault::times(FaultKind::Status(400), FaultTarget::Both, 1),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store.clone())
        .run(SyncRequest::full())
        .await
        .unwrap();
    assert!(report.success && report.failed.is_empty(), "{report:?}");
    assert_eq!(
        emu.stats().by_route.get("triggers_types"),
        Some(&7),
        "the batch, then one call for each of the six toolkits"
    );
    let meta = meta(&*store).await.unwrap();
    let total: usize = meta.toolkits.iter().map(|e| e.triggers.len()).sum();
    assert_eq!(total, 17);
}

#[tokio::test]
async fn a_deprecated_toolkit_is_listed_with_include_deprecated_and_synced_like_any_other() {
    let emu = emulator().await;
    emu.deprecate("linkedin");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert!(report.success, "{report:?}");
    let meta = meta(&*store).await.unwrap();
    let linkedin = meta
        .toolkits
        .iter()
        .find(|e| e.slug.as_str() == "linkedin")
        .expect("a deprecated toolkit of the project stays in the cache");
    assert_eq!(linkedin.tool_count, 4);
    assert_eq!(
        emu.stats().by_route.get("toolkit"),
        None,
        "listed with include_deprecated=true: no detail call"
    );
    // A quiet re-sync does not refetch it: the listing gives its version to
    // diff against (left out of the listing, it was refetched every time).
    let quiet = engine.run(SyncRequest::default()).await.unwrap();
    assert_eq!(
        (quiet.fetched, quiet.upstream_requests),
        (0, 2),
        "{quiet:?}"
    );
}

fn client_speaking(emu: &Emulator, version: ApiVersion) -> ComposioClient {
    let mut config = client_config(emu);
    config.api_version = version;
    ComposioClient::new(config).unwrap()
}

#[tokio::test]
async fn a_v3_only_server_is_synced_with_api_version_v3_and_refuses_v3_1() {
    let mut config = EmulatorConfig::new(Catalog::sample());
    config.v3_only = true;
    let emu = Emulator::start(config).await.unwrap();

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let v3 = SyncEngine::new(
        client_speaking(&emu, ApiVersion::V3),
        store.clone(),
        settings(),
    );
    let report = v3.run(SyncRequest::full()).await.unwrap();
    assert!(report.success, "{report:?}");
    // `toolkit_versions=latest` still sent: v3 would serve the base version's fewer tools.
    assert_eq!(report.tools, 885);
    let meta = meta(&*store).await.unwrap();
    let github = meta.toolkits.iter().find(|e| e.slug.as_str() == "github");
    assert_eq!(github.unwrap().triggers.len(), 6);
    assert_eq!(emu.stats().by_version.keys().collect::<Vec<_>>(), ["v3"]);

    let fresh: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let v31 = SyncEngine::new(client_speaking(&emu, ApiVersion::V3_1), fresh, settings());
    let refused = v31.run(SyncRequest::full()).await.unwrap();
    assert!(!refused.success);
    assert!(
        refused.message.as_deref().unwrap_or("").contains("404"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_change_feed_reports_trigger_types_apart_and_search_finds_them() {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    let first = engine.run(SyncRequest::full()).await.unwrap();
    let counts = first.changes.unwrap();
    assert_eq!(
        (counts.added, counts.triggers.added),
        (885, 6),
        "tools apart"
    );

    emu.remove_trigger("github", "GITHUB_STAR_ADDED_EVENT");
    emu.edit_trigger_description("github", "GITHUB_COMMIT_EVENT", "a new commit, reworded");
    let second = engine.run(SyncRequest::default()).await.unwrap();
    assert!(second.success, "{second:?}");
    let counts = second.changes.unwrap();
    assert_eq!(
        (counts.added, counts.removed, counts.changed),
        (0, 0, 0),
        "no tool changed"
    );
    assert_eq!(
        (counts.triggers.removed, counts.triggers.changed),
        (1, 1),
        "{counts:?}"
    );

    let base = serve(read_router(store)).await;
    let http = composio_schema_cache::tls::http_client();
    let feed: Value = http
        .get(format!(
            "{base}/changes?since=1970-01-01T00:00:00Z&limit=1000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let triggers: Vec<(&str, &str)> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["subject"] == "trigger" && c["kind"] != "added")
        .map(|c| (c["tool"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        triggers,
        [
            ("GITHUB_COMMIT_EVENT", "changed"),
            ("GITHUB_STAR_ADDED_EVENT", "removed")
        ]
    );

    let found: Value = http
        .get(format!("{base}/tools?q=new%20commit&kind=trigger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = found["results"].as_array().unwrap();
    assert_eq!(results[0]["slug"], "GITHUB_COMMIT_EVENT", "{found}");
    assert!(results.iter().all(|h| h["kind"] == "trigger"));
    let tools: Value = http
        .get(format!("{base}/tools?q=new%20commit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tools["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["kind"] == "tool"));
    for bad in ["kind=event", "kind=trigger&format=openai"] {
        let answer = http
            .get(format!("{base}/tools?q=commit&{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{bad}");
    }
}

fn engine_scoped(emu: &Emulator, store: Arc<dyn Store>, scope: Scope) -> SyncEngine {
    let mut settings = settings();
    settings.scope = scope;
    SyncEngine::new(client(emu), store, settings)
}

#[tokio::test]
async fn the_scope_decides_the_toolkits_and_the_guard_prune_and_feed_follow_it() {
    let emu = emulator().await;
    emu.set_auth_configs(vec!["github".into()]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    let project = engine_scoped(&emu, store.clone(), Scope::Project);
    let report = project.run(SyncRequest::full()).await.unwrap();
    assert_eq!(report.toolkits, 2, "github and the no-auth browser_tool");

    let catalog = engine_scoped(&emu, store.clone(), Scope::Catalog);
    let report = catalog.run(SyncRequest::default()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.toolkits, 7, "every listed toolkit");

    emu.reset_stats();
    let slug = |s: &str| composio_schema_cache::cache::Slug::parse(s).unwrap();
    let explicit = engine_scoped(
        &emu,
        store.clone(),
        Scope::Toolkits(vec![slug("github"), slug("linkedin")]),
    );
    let refused = explicit.run(SyncRequest::default()).await.unwrap();
    assert!(!refused.success, "dropping 5 of 7 needs --allow-shrink");
    assert_eq!(meta(&*store).await.unwrap().toolkits.len(), 7);
    assert_eq!(emu.stats().by_route.get("auth_configs"), None);
    let shrunk = explicit
        .run(SyncRequest {
            allow_shrink: true,
            ..SyncRequest::default()
        })
        .await
        .unwrap();
    assert!(shrunk.success, "{shrunk:?}");
    let kept: Vec<String> = meta(&*store)
        .await
        .unwrap()
        .toolkits
        .iter()
        .map(|e| e.slug.to_string())
        .collect();
    assert_eq!(kept, ["github", "linkedin"]);
    assert_eq!(shrunk.removed.len(), 5, "pruned: {shrunk:?}");
    assert_eq!(shrunk.changes.unwrap().removed, 9 + 18 + 8 + 14 + 1);
}

#[tokio::test]
async fn past_sixty_toolkits_with_triggers_the_unfiltered_listing_is_paged_instead() {
    // 200 toolkits, every third with three trigger types: 67 toolkits, 201 types.
    let catalog = Catalog::synthetic(&Catalog::sample(), 200, 1);
    assert_eq!(catalog.total_triggers(), 201);
    let emu = Emulator::start(EmulatorConfig::new(catalog)).await.unwrap();
    emu.set_page_cap(100);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.no_auth_toolkits.clear();
    let engine = SyncEngine::new(client(&emu), store.clone(), settings);
    let report = engine.run(SyncRequest::full()).await.unwrap();
    assert!(report.success && report.failed.is_empty(), "{report:?}");
    assert_eq!(
        emu.stats().by_route.get("triggers_types"),
        Some(&3),
        "⌈201 / 100⌉ pages, not one call per 60 toolkits"
    );
    let meta = meta(&*store).await.unwrap();
    let total: usize = meta.toolkits.iter().map(|e| e.triggers.len()).sum();
    assert_eq!(total, 201);
}

#[tokio::test]
async fn a_tool_composio_deprecates_reads_as_deprecated_not_removed() {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    assert!(engine.run(SyncRequest::full()).await.unwrap().success);
    emu.deprecate_tool("linkedin", "LINKEDIN_GET_MY_INFO");
    emu.bump_version("linkedin");
    let report = engine.run(SyncRequest::default()).await.unwrap();
    let counts = report.changes.unwrap();
    assert_eq!(
        (counts.deprecated, counts.removed),
        (1, 0),
        "listed with include_deprecated=true: {counts:?}"
    );
}
