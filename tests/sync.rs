//! The sync engine end to end: emulator → engine → directory store.

mod support;

use bytes::Bytes;
use composio_schema_cache::cache::{CachedToolkit, Slug};
use composio_schema_cache::composio::ComposioClient;
use composio_schema_cache::emulator::{
    Catalog, Emulator, EmulatorConfig, Fault, FaultKind, FaultTarget, LimitHeaders, RateLimit,
};
use composio_schema_cache::store::{
    ETag, FsStore, ListedObject, MemoryStore, ObjectKey, PutCondition, Store, StoreError,
    StoredObject,
};
use composio_schema_cache::sync::{SyncEngine, SyncError, SyncMode, SyncRequest};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const SAMPLE: [(&str, usize); 7] = [
    ("browseai", 9),
    ("browser_tool", 18),
    ("firecrawl", 8),
    ("github", 831),
    ("googletasks", 14),
    ("linkedin", 4),
    ("perplexityai", 1),
];

fn full() -> SyncRequest {
    SyncRequest::full()
}

fn allow_shrink() -> SyncRequest {
    SyncRequest {
        allow_shrink: true,
        ..SyncRequest::default()
    }
}

fn fs_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsStore::new(dir.path(), "composio-schemas/").unwrap());
    (dir, store)
}

/// The emulator, a directory store and an engine, after a first full sync.
async fn synced() -> (
    composio_schema_cache::emulator::Emulator,
    tempfile::TempDir,
    Arc<dyn Store>,
    SyncEngine,
) {
    let emu = emulator().await;
    let (dir, store) = fs_store();
    let engine = engine(&emu, store.clone());
    assert!(engine.run(full()).await.unwrap().success);
    (emu, dir, store, engine)
}

async fn toolkit(store: &dyn Store, slug: &str) -> Option<CachedToolkit> {
    let object = store
        .get(&ObjectKey::Toolkit(Slug::parse(slug).unwrap()))
        .await
        .unwrap()?;
    Some(serde_json::from_slice(&object.body).unwrap())
}

#[tokio::test]
async fn full_sync_writes_every_toolkit_with_exact_counts_and_the_meta_last() {
    let emu = emulator().await;
    emu.set_page_cap(100);
    let (dir, store) = fs_store();
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.toolkits, 7);
    assert_eq!(report.tools, 885);
    assert!(report.failed.is_empty());
    assert_eq!(
        (report.fetched, report.written, report.mode),
        (7, 7, SyncMode::Full)
    );
    // Mapping 885 tools (with their compatibility reports) takes time; the
    // phases add up to no more than the run.
    let t = &report.timings;
    assert!(t.map > 0, "{t:?}");
    assert!(
        t.plan + t.fetch + t.publish <= report.duration_ms + 3,
        "{t:?}"
    );
    for (slug, count) in SAMPLE {
        let t = toolkit(&*store, slug).await.unwrap();
        assert_eq!((t.tool_count, t.tools.len()), (count, count), "{slug}");
    }
    // github needs 9 pages at a cap of 100.
    assert_eq!(toolkit(&*store, "github").await.unwrap().tools.len(), 831);
    assert!(toolkit(&*store, "browser_tool").await.unwrap().no_auth);

    // The reference format, field for field, on disk.
    let raw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("composio-schemas/_meta.json")).unwrap(),
    )
    .unwrap();
    for field in [
        "lastSyncedAt",
        "toolkitCount",
        "totalToolCount",
        "syncDurationMs",
    ] {
        assert!(raw.get(field).is_some(), "meta has {field}");
    }
    assert_eq!(raw["toolkitCount"], 7);
    assert_eq!(raw["totalToolCount"], 885);
    assert_meta_consistent(&*store).await;
    assert!(
        store.get(&ObjectKey::Lease).await.unwrap().is_none(),
        "lease released"
    );
    assert!(
        store.get(&ObjectKey::LastRun).await.unwrap().is_some(),
        "last run recorded"
    );
}

#[tokio::test]
async fn no_auth_toolkits_come_from_configuration_once() {
    let emu = emulator().await;
    emu.set_auth_configs(vec![
        "linkedin".into(),
        "browser_tool".into(),
        "linkedin".into(),
    ]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert_eq!(
        report.toolkits, 2,
        "linkedin once, browser_tool once: {report:?}"
    );
    assert_eq!(report.fetched, 2);
}

#[tokio::test]
async fn a_resync_with_nothing_changed_costs_two_requests_and_no_writes() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(full()).await.unwrap();
    emu.reset_stats();
    let writes = store.writes.load(Ordering::SeqCst);
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success);
    assert_eq!(report.mode, SyncMode::Incremental);
    assert_eq!(
        (report.fetched, report.written, report.unchanged),
        (0, 0, 7)
    );
    assert_eq!(
        report.upstream_requests, 2,
        "auth configs + toolkit listing"
    );
    assert_eq!(emu.stats().requests, 2);
    // Lease + meta + last run; no toolkit object.
    assert_eq!(store.writes.load(Ordering::SeqCst) - writes, 3);
    assert_eq!(report.tools, 885);
}

#[tokio::test]
async fn a_meta_an_older_release_wrote_is_completed_once_without_rewriting_objects() {
    use composio_schema_cache::cache::INDEX_FORMAT;
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(full()).await.unwrap();
    // As the release before search read argument names left it.
    let mut older = meta(&*store).await.unwrap();
    for entry in &mut older.toolkits {
        entry.index_format = 0;
        entry.tools.iter_mut().for_each(|t| t.parameters.clear());
    }
    let body = Bytes::from(serde_json::to_vec(&older).unwrap());
    store
        .put(&ObjectKey::Meta, body, PutCondition::Overwrite)
        .await
        .unwrap();
    let writes = store.writes.load(Ordering::SeqCst);
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success);
    assert_eq!(
        (report.fetched, report.written, report.unchanged),
        (7, 0, 7)
    );
    // Lease + meta + last run: the objects were already right.
    assert_eq!(store.writes.load(Ordering::SeqCst) - writes, 3);
    let completed = meta(&*store).await.unwrap();
    assert!(completed
        .toolkits
        .iter()
        .all(|e| e.index_format == INDEX_FORMAT));
    let github = completed
        .toolkits
        .iter()
        .find(|e| e.slug.as_str() == "github")
        .unwrap();
    let hireable = github
        .tools
        .iter()
        .find(|t| t.slug == "GITHUB_UPDATE_THE_AUTHENTICATED_USER")
        .unwrap();
    assert!(
        hireable.parameters.contains("hireable"),
        "{}",
        hireable.parameters
    );
    // Once: the next sync is back to two requests.
    emu.reset_stats();
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert_eq!((report.fetched, report.upstream_requests), (0, 2));
}

#[tokio::test]
async fn a_new_version_refetches_and_rewrites_only_that_toolkit() {
    let (emu, _dir, store, engine) = synced().await;
    emu.publish_new_version("linkedin");
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success);
    assert_eq!(
        (report.fetched, report.written, report.unchanged),
        (1, 1, 6)
    );
    assert_eq!(
        report.upstream_requests, 3,
        "auth configs, listing, tools (the listing has the details)"
    );
    let linkedin = toolkit(&*store, "linkedin").await.unwrap();
    assert_eq!(linkedin.tool_count, 5);
    assert_eq!(linkedin.version.as_deref(), Some("20260101_04"));
    assert_eq!(report.tools, 886);
    assert_meta_consistent(&*store).await;
}

#[tokio::test]
async fn a_full_sync_of_unchanged_content_writes_nothing() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(full()).await.unwrap();
    let report = engine.run(full()).await.unwrap();
    assert_eq!(
        (report.fetched, report.written, report.unchanged),
        (7, 0, 7)
    );
}

#[tokio::test]
async fn a_failing_listing_falls_back_to_a_full_sync() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(full()).await.unwrap();
    emu.set_listing_fault(
        "toolkits",
        Fault::always(FaultKind::Status(500), FaultTarget::Both),
    );
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success);
    assert_eq!(report.mode, SyncMode::Full);
    assert!(report.fallback.as_deref().unwrap().contains("500"));
    assert_eq!(report.fetched, 7);
}

#[tokio::test]
async fn one_failing_toolkit_keeps_its_last_good_copy_and_the_others_sync() {
    let (emu, _dir, store, engine) = synced().await;
    let before = toolkit(&*store, "firecrawl").await.unwrap();

    emu.set_fault(
        "firecrawl",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    emu.publish_new_version("linkedin");
    let report = engine.run(full()).await.unwrap();
    assert!(
        report.success,
        "one failure is not a failed sync: {report:?}"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].slug, "firecrawl");
    assert!(
        report.failed[0].error.contains("HTTP 502"),
        "{}",
        report.failed[0].error
    );
    assert_eq!(
        toolkit(&*store, "firecrawl").await.unwrap(),
        before,
        "last good copy kept"
    );
    assert_eq!(
        toolkit(&*store, "linkedin").await.unwrap().tool_count,
        5,
        "others synced"
    );

    let meta = meta(&*store).await.unwrap();
    let entry = meta
        .toolkits
        .iter()
        .find(|e| e.slug.as_str() == "firecrawl")
        .unwrap();
    assert!(entry.stale);
    assert!(entry.last_error.as_deref().unwrap().contains("502"));
    assert_eq!(meta.failed.len(), 1);
    assert_eq!(meta.toolkit_count, 7);
    assert_meta_consistent(&*store).await;

    // The next sync that reaches it clears the stale mark, even incrementally.
    emu.clear_faults();
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert_eq!(report.fetched, 1);
    assert!(!meta_entry_stale(&*store, "firecrawl").await);
}

async fn meta_entry_stale(store: &dyn Store, slug: &str) -> bool {
    meta(store)
        .await
        .unwrap()
        .toolkits
        .iter()
        .find(|e| e.slug.as_str() == slug)
        .unwrap()
        .stale
}

#[tokio::test]
async fn every_kind_of_bad_upstream_data_is_a_per_toolkit_failure() {
    for detail_path in [false, true] {
        bad_upstream_data_fails_only_its_toolkit(detail_path).await;
    }
}

/// `detail_path`: the toolkit listing is down, so every toolkit's details
/// come from its own call, and that call misbehaves too.
async fn bad_upstream_data_fails_only_its_toolkit(detail_path: bool) {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let details = if detail_path {
        emu.set_listing_fault(
            "toolkits",
            Fault::always(FaultKind::Status(503), FaultTarget::Both),
        );
        FaultTarget::Details
    } else {
        FaultTarget::Tools
    };
    let cases = [
        (
            "browseai",
            FaultKind::Malformed,
            FaultTarget::Tools,
            "unexpected response",
        ),
        (
            "firecrawl",
            FaultKind::WrongTypes,
            details,
            "unexpected response",
        ),
        (
            "googletasks",
            FaultKind::Reset,
            FaultTarget::Tools,
            "connection interrupted",
        ),
        ("github", FaultKind::Status(404), details, "HTTP 404"),
    ];
    let wrong_detail = (
        "linkedin",
        FaultKind::WrongSlug,
        FaultTarget::Details,
        "someone_else",
    );
    let cases: Vec<_> = cases
        .into_iter()
        .chain(detail_path.then_some(wrong_detail))
        .collect();
    for (slug, kind, target, _) in &cases {
        emu.set_fault(slug, Fault::always(kind.clone(), *target));
    }
    // A bad tool costs itself only: its toolkit publishes without it.
    let bad_tools = [
        (
            "perplexityai",
            FaultKind::DuplicateTool,
            "appears more than once",
        ),
        // The listing being down, linkedin's detail answers for another toolkit instead.
        ("linkedin", FaultKind::ForeignTool, "belongs to toolkit"),
    ];
    let bad_tools = &bad_tools[..if detail_path { 1 } else { 2 }];
    for (slug, kind, _) in bad_tools {
        emu.set_fault(slug, Fault::always(kind.clone(), FaultTarget::Tools));
    }
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success, "browser_tool still synced: {report:?}");
    let published: Vec<&str> = report
        .tools_left_out
        .iter()
        .map(|t| t.toolkit.as_str())
        .collect();
    for (slug, _, expect) in bad_tools {
        let left_out = report
            .tools_left_out
            .iter()
            .find(|t| t.toolkit == *slug)
            .unwrap_or_else(|| panic!("{slug}'s bad tool reported: {report:?}"));
        assert!(left_out.reason.contains(expect), "{slug}: {left_out:?}");
        let cached = toolkit(&*store, slug).await.expect("published without it");
        assert!(!cached.tools.is_empty());
        assert!(!report.failed.iter().any(|f| f.slug == *slug));
    }
    assert_eq!(published.len(), bad_tools.len());
    assert_eq!(report.toolkits, 1 + bad_tools.len());
    for (slug, _, _, expect) in cases {
        let failure = report
            .failed
            .iter()
            .find(|f| f.slug == slug)
            .unwrap_or_else(|| panic!("{slug} reported"));
        assert!(failure.error.contains(expect), "{slug}: {}", failure.error);
        assert!(
            toolkit(&*store, slug).await.is_none(),
            "{slug} never written"
        );
    }
}

#[tokio::test]
async fn a_sync_where_every_toolkit_failed_is_not_a_success_and_publishes_nothing() {
    let emu = emulator().await;
    emu.set_auth_configs(vec!["linkedin".into()]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.no_auth_toolkits.clear();
    let engine = SyncEngine::new(client(&emu), store.clone(), settings);
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(500), FaultTarget::Both),
    );
    let report = engine.run(full()).await.unwrap();
    assert!(!report.success);
    assert!(!report.published);
    assert!(report.message.unwrap().contains("every toolkit failed"));
    assert!(meta(&*store).await.is_none());
}

#[tokio::test]
async fn auth_config_failure_publishes_nothing_and_keeps_the_previous_cache() {
    let (emu, _dir, store, engine) = synced().await;
    let before = store.get(&ObjectKey::Meta).await.unwrap().unwrap();
    emu.set_listing_fault(
        "auth_configs",
        Fault::always(FaultKind::Status(401), FaultTarget::Both),
    );
    let report = engine.run(full()).await.unwrap();
    assert!(!report.success);
    assert!(
        report.message.as_deref().unwrap().contains("auth configs"),
        "{report:?}"
    );
    assert!(report.message.as_deref().unwrap().contains("401"));
    let after = store.get(&ObjectKey::Meta).await.unwrap().unwrap();
    assert_eq!(before.body, after.body, "previous meta intact");
    assert_meta_consistent(&*store).await;
}

#[tokio::test]
async fn a_store_failure_mid_sync_publishes_no_meta() {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    engine(&emu, memory.clone()).run(full()).await.unwrap();
    let before = memory.get(&ObjectKey::Meta).await.unwrap().unwrap();

    emu.publish_new_version("linkedin");
    emu.publish_new_version("github");
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky
        .toolkit_writes_before_failure
        .store(1, Ordering::SeqCst);
    let report = engine(&emu, flaky.clone()).run(full()).await.unwrap();
    assert!(!report.success, "{report:?}");
    assert!(report
        .message
        .as_deref()
        .unwrap()
        .contains("injected store failure"));
    assert_eq!(
        report.fetched, 7,
        "every outcome is counted, not only those before the failure"
    );
    let after = memory.get(&ObjectKey::Meta).await.unwrap().unwrap();
    assert_eq!(before.body, after.body, "the previous meta still rules");
    assert_meta_names_existing_objects(&*memory).await;

    // A failed meta write is the same: nothing published.
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky.fail_meta.store(true, Ordering::SeqCst);
    let report = engine(&emu, flaky).run(full()).await.unwrap();
    assert!(!report.success && !report.published);
    assert_eq!(
        memory.get(&ObjectKey::Meta).await.unwrap().unwrap().body,
        before.body
    );
}

#[tokio::test]
async fn a_toolkit_that_left_the_auth_configs_is_pruned_after_publishing() {
    let (emu, _dir, store, engine) = synced().await;
    emu.set_auth_configs(vec!["github".into(), "linkedin".into()]);
    let report = engine.run(allow_shrink()).await.unwrap();
    assert!(report.success);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        ["browseai", "firecrawl", "googletasks", "perplexityai"]
    );
    assert_eq!(report.toolkits, 3, "github, linkedin, browser_tool");
    for gone in removed {
        assert!(toolkit(&*store, &gone).await.is_none());
    }
    // The meta says what remains after the prune, not what it was to delete.
    assert!(report.pending_deletes.is_empty(), "{report:?}");
    assert!(meta(&*store).await.unwrap().pending_deletes.is_empty());
    assert_meta_consistent(&*store).await;
}

#[tokio::test]
async fn two_syncs_at_once_exactly_one_runs() {
    let emu = emulator().await;
    emu.set_latency(Duration::from_millis(30), Duration::ZERO);
    let (_dir, store) = fs_store();
    let a = engine(&emu, store.clone());
    let b = engine(&emu, store.clone());
    let (ra, rb) = tokio::join!(a.run(full()), b.run(full()));
    let (ok, busy): (Vec<_>, Vec<_>) = [ra, rb].into_iter().partition(|r| r.is_ok());
    assert_eq!(ok.len(), 1, "exactly one sync ran");
    match busy.into_iter().next().unwrap() {
        Err(SyncError::Busy(lease)) => assert!(!lease.owner.is_empty()),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(ok[0].as_ref().unwrap().success);
    assert_meta_consistent(&*store).await;
}

#[tokio::test]
async fn a_lease_left_by_a_dead_holder_is_taken_over_after_it_expires() {
    let emu = emulator().await;
    let (_dir, store) = fs_store();
    plant_lease(
        &*store,
        "crashed-sync",
        "2026-01-01T00:00:00.000Z",
        1_767_226_500_000,
    )
    .await;
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success);

    // A live lease is respected.
    plant_lease(&*store, "running-sync", "now", u64::MAX / 2).await;
    match engine(&emu, store.clone()).run(full()).await {
        Err(SyncError::Busy(l)) => assert_eq!(l.owner, "running-sync"),
        other => panic!("expected Busy, got {other:?}"),
    }
}

#[tokio::test]
async fn a_meta_published_by_someone_else_meanwhile_is_not_overwritten() {
    let emu = emulator().await;
    let (_dir, store) = fs_store();
    let engine = engine(&emu, store.clone());
    engine.run(full()).await.unwrap();
    // While this sync fetches (its plan read the meta; github's tools take
    // 400 ms), a holder of a lost lease publishes. Waiting for the first
    // tools request, not a fixed time, keeps this true on a loaded machine.
    emu.reset_stats();
    emu.set_fault(
        "github",
        Fault::always(
            FaultKind::Slow(Duration::from_millis(400)),
            FaultTarget::Tools,
        ),
    );
    let sneaky = {
        let (store, emu) = (store.clone(), emu.clone());
        tokio::spawn(async move {
            for _ in 0..2000 {
                if emu.stats().by_route.get("tools").copied().unwrap_or(0) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            store.put(&ObjectKey::Meta, r#"{"lastSyncedAt":"x","toolkitCount":0,"totalToolCount":0,"syncDurationMs":0}"#.into(), PutCondition::Overwrite).await.unwrap();
        })
    };
    let report = engine.run(full()).await.unwrap();
    sneaky.await.unwrap();
    assert!(!report.success);
    assert!(report.message.unwrap().contains("newer meta"));
}

#[tokio::test]
async fn the_sync_deadline_reports_unfinished_toolkits_and_publishes_the_rest() {
    let emu = emulator().await;
    emu.set_fault(
        "github",
        Fault::always(FaultKind::Slow(Duration::from_secs(3)), FaultTarget::Tools),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let started = Instant::now();
    let report = engine(&emu, store.clone())
        .run(SyncRequest {
            full: true,
            deadline: Some(Instant::now() + Duration::from_millis(800)),
            ..SyncRequest::default()
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "stopped at the deadline"
    );
    assert!(report.success, "{report:?}");
    assert_eq!(report.toolkits, 6);
    let github = report.failed.iter().find(|f| f.slug == "github").unwrap();
    assert!(github.error.contains("time budget"), "{}", github.error);
}

#[tokio::test]
async fn slugs_from_upstream_are_validated_before_they_reach_the_store() {
    let emu = emulator().await;
    emu.set_auth_configs(vec![
        "../escape".into(),
        "a/b".into(),
        "%2e%2e".into(),
        String::new(),
        "x".repeat(300),
        "gïthub".into(),
        "linkedin".into(),
        "LinkedIn".into(),
    ]);
    let (dir, store) = fs_store();
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success);
    assert_eq!(
        report.toolkits, 2,
        "linkedin (once) and browser_tool: {report:?}"
    );
    assert_eq!(report.failed.len(), 6);
    assert!(report
        .failed
        .iter()
        .all(|f| f.error.contains("refused toolkit slug")));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("composio-schemas"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n == "linkedin.json" || n == "browser_tool.json" || n.starts_with('_')),
        "{names:?}"
    );
    assert!(!dir.path().join("escape.json").exists());
}

#[tokio::test]
async fn after_a_sync_that_died_its_stray_writes_are_repaired() {
    let (_emu, _dir, store, engine) = synced().await;
    // A sync died half-way: its lease expired, and it had overwritten linkedin
    // with content the index does not describe.
    let key = ObjectKey::Toolkit(Slug::parse("linkedin").unwrap());
    let mut stray = toolkit(&*store, "linkedin").await.unwrap();
    stray.tools.truncate(1);
    stray.tool_count = 1;
    store
        .put(
            &key,
            serde_json::to_vec(&stray).unwrap().into(),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    plant_lease(&*store, "died", "x", 1).await;

    let report = engine.run(full()).await.unwrap();
    assert!(report.success);
    assert_eq!(report.written, 1, "only the object unlike its index entry");
    assert_eq!(report.repaired.len(), 1);
    assert_eq!(report.repaired[0].slug, "linkedin");
    assert_eq!(toolkit(&*store, "linkedin").await.unwrap().tool_count, 4);
    assert_meta_consistent(&*store).await;
    assert_eq!(engine.run(full()).await.unwrap().written, 0);
}

#[tokio::test]
async fn a_toolkit_answered_with_no_tools_keeps_its_last_good_copy() {
    let (emu, _dir, store, engine) = synced().await;
    for tool in toolkit(&*store, "linkedin").await.unwrap().tools {
        emu.remove_tool("linkedin", &tool.slug);
    }
    let report = engine.run(full()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert!(
        matches!(&report.failed[..], [f] if f.slug == "linkedin" && f.error.contains("no tools")),
        "{report:?}"
    );
    assert_eq!(toolkit(&*store, "linkedin").await.unwrap().tool_count, 4);
    let published = meta(&*store).await.unwrap();
    let entry = published
        .toolkits
        .iter()
        .find(|e| e.slug.as_str() == "linkedin");
    assert!(
        entry.is_some_and(|e| e.stale && e.tool_count == 4),
        "{entry:?}"
    );
}

/// A sync died after rewriting objects; the next one cannot refetch them.
async fn plant_stray_writes(store: &dyn Store, slugs: &[&str]) {
    for slug in slugs {
        let mut stray = toolkit(store, slug).await.unwrap();
        stray.tools.truncate(1);
        stray.tool_count = 1;
        store
            .put(
                &ObjectKey::Toolkit(Slug::parse(slug).unwrap()),
                serde_json::to_vec(&stray).unwrap().into(),
                PutCondition::Overwrite,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_stray_write_whose_repair_fails_is_held_not_deleted() {
    let (emu, _dir, store, engine) = synced().await;
    plant_stray_writes(&*store, &["linkedin"]).await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert!(report.removed.is_empty(), "{report:?}");
    let published = meta(&*store).await.unwrap();
    assert!(
        published
            .toolkits
            .iter()
            .all(|e| e.slug.as_str() != "linkedin"),
        "an object unlike its entry is never served"
    );
    assert_eq!(
        published.pending_deletes,
        [Slug::parse("linkedin").unwrap()]
    );
    assert!(
        toolkit(&*store, "linkedin").await.is_some(),
        "held, not deleted"
    );

    // Still failing: still held. Composio back: rewritten and indexed again.
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success && report.removed.is_empty(), "{report:?}");
    emu.clear_faults();
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success && report.removed.is_empty(), "{report:?}");
    assert_eq!(toolkit(&*store, "linkedin").await.unwrap().tool_count, 4);
    assert!(meta(&*store).await.unwrap().pending_deletes.is_empty());
    assert_meta_consistent(&*store).await;

    // Once the toolkit leaves the project, its object goes.
    emu.set_auth_configs(vec!["github".into(), "linkedin".into()]);
    plant_stray_writes(&*store, &["linkedin"]).await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    assert!(engine.run(allow_shrink()).await.unwrap().success);
    emu.set_auth_configs(vec!["github".into()]);
    let report = engine.run(allow_shrink()).await.unwrap();
    assert!(
        report.removed.contains(&"linkedin".to_string()),
        "{report:?}"
    );
    assert!(toolkit(&*store, "linkedin").await.is_none());
}

#[tokio::test]
async fn failed_repairs_that_would_empty_the_index_trip_the_shrink_guard() {
    let (emu, _dir, store, engine) = synced().await;
    let before = meta(&*store).await.unwrap();
    let strays = ["github", "linkedin", "firecrawl", "googletasks"];
    plant_stray_writes(&*store, &strays).await;
    for slug in strays {
        emu.set_fault(
            slug,
            Fault::always(FaultKind::Status(502), FaultTarget::Tools),
        );
    }
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(!report.success && !report.published, "{report:?}");
    assert!(
        report
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("drop 4 of the 7"),
        "{report:?}"
    );
    assert_eq!(meta(&*store).await.unwrap().sync_id, before.sync_id);
    for slug in strays {
        assert!(toolkit(&*store, slug).await.is_some(), "{slug} kept");
    }
}

#[tokio::test]
async fn pruning_spares_files_the_service_never_wrote() {
    let (emu, dir, _store, engine) = synced().await;
    // Someone else's file under the prefix, named like a toolkit.
    std::fs::write(dir.path().join("composio-schemas/settings.json"), b"{}").unwrap();
    emu.set_auth_configs(vec!["linkedin".into()]);
    let report = engine.run(allow_shrink()).await.unwrap();
    assert!(report.success);
    assert!(
        !report.removed.contains(&"settings".to_string()),
        "{:?}",
        report.removed
    );
    assert!(dir.path().join("composio-schemas/settings.json").exists());
    assert!(report.removed.contains(&"github".to_string()));
}

// ---- Issue 8: a cache that never lies and never loses ----

#[tokio::test]
async fn a_server_limit_far_below_ours_with_transient_5xx_still_syncs_everything() {
    // With Composio's headers on the 429s, and without any (the rate is found by AIMD).
    for headers in [LimitHeaders::OnThrottle, LimitHeaders::Never] {
        server_limit_far_below_ours(headers).await;
    }
}

async fn server_limit_far_below_ours(headers: LimitHeaders) {
    let catalog = Catalog::synthetic(&Catalog::sample(), 40, 5);
    let mut config = EmulatorConfig::new(catalog);
    config.rate_limit = Some(RateLimit {
        max_requests: 10,
        window: Duration::from_millis(250),
        headers,
    });
    let emu = Emulator::start(config).await.unwrap();
    for slug in ["synthetic_0003", "synthetic_0017", "synthetic_0031"] {
        emu.set_fault(
            slug,
            Fault::times(FaultKind::Status(502), FaultTarget::Tools, 2),
        );
    }
    let mut client = client_config(&emu);
    client.max_rps = Some(400);
    client.burst = 50;
    client.max_retries = 2;
    client.retry_budget = Duration::from_secs(20);
    let mut settings = settings();
    settings.no_auth_toolkits.clear();
    settings.concurrency = 16;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = SyncEngine::new(
        ComposioClient::new(client).unwrap(),
        store.clone(),
        settings,
    );
    let report = engine.run(full()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.toolkits, report.tools), (40, 200));
    assert!(report.upstream_throttled > 0, "the server pushed back");
    let rate = report.settled_rps.unwrap();
    if headers == LimitHeaders::OnThrottle {
        assert!(
            rate < 41.0,
            "settled under the server's announced 40/s: {rate}"
        );
    } else {
        assert!(
            rate < 200.0,
            "came down from the ceiling by halving: {rate}"
        );
    }
    assert_meta_consistent(&*store).await;
}

#[tokio::test]
async fn a_huge_retry_after_fails_the_sync_cleanly_and_frees_the_lease() {
    let emu = emulator().await;
    emu.set_listing_fault(
        "auth_configs",
        Fault::times(
            FaultKind::Throttled {
                header: "retry-after",
                value: "1e300".into(),
            },
            FaultTarget::Both,
            1,
        ),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    let report = engine.run(full()).await.unwrap();
    assert!(!report.success);
    assert!(
        report.message.as_deref().unwrap().contains("429"),
        "{report:?}"
    );
    assert!(
        store.get(&ObjectKey::Lease).await.unwrap().is_none(),
        "lease released"
    );
    assert!(
        engine.run(full()).await.unwrap().success,
        "the next sync is not refused"
    );
}

#[tokio::test]
async fn a_malformed_answer_once_is_not_a_failed_toolkit() {
    let emu = emulator().await;
    emu.set_fault(
        "github",
        Fault::times(FaultKind::Malformed, FaultTarget::Tools, 1),
    );
    emu.push_fault(
        "linkedin",
        Fault::times(FaultKind::WrongTypes, FaultTarget::Tools, 1),
    );
    emu.set_fault(
        "firecrawl",
        Fault::always(FaultKind::Malformed, FaultTarget::Tools),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success);
    let failed: Vec<&str> = report.failed.iter().map(|f| f.slug.as_str()).collect();
    assert_eq!(failed, ["firecrawl"], "only the one malformed on every try");
    assert!(report.failed[0].error.contains("unexpected response"));
    assert_eq!(toolkit(&*store, "github").await.unwrap().tool_count, 831);
}

#[tokio::test]
async fn an_object_edited_or_deleted_by_hand_is_restored_by_the_next_incremental_sync() {
    let (emu, dir, store, engine) = synced().await;
    let objects = dir.path().join("composio-schemas");
    std::fs::write(
        objects.join("linkedin.json"),
        br#"{"slug":"linkedin","tampered":true}"#,
    )
    .unwrap();
    std::fs::remove_file(objects.join("firecrawl.json")).unwrap();
    emu.reset_stats();

    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.mode, SyncMode::Incremental);
    let repaired: Vec<(&str, &str)> = report
        .repaired
        .iter()
        .map(|r| (r.slug.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(repaired.len(), 2, "{repaired:?}");
    assert_eq!(repaired[0].0, "firecrawl");
    assert!(repaired[0].1.contains("missing"), "{}", repaired[0].1);
    assert_eq!(repaired[1].0, "linkedin");
    assert!(
        repaired[1].1.contains("changed outside"),
        "{}",
        repaired[1].1
    );
    assert_eq!((report.fetched, report.written), (2, 2));
    assert_eq!(toolkit(&*store, "linkedin").await.unwrap().tool_count, 4);
    assert_eq!(toolkit(&*store, "firecrawl").await.unwrap().tool_count, 8);
    assert_meta_consistent(&*store).await;
    // Repaired for good: the next sync trusts them again.
    assert_eq!(engine.run(SyncRequest::default()).await.unwrap().fetched, 0);
}

#[tokio::test]
async fn a_failed_delete_is_kept_pending_and_retried_by_the_next_sync() {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    engine(&emu, memory.clone()).run(full()).await.unwrap();
    emu.set_auth_configs(vec![
        "github".into(),
        "linkedin".into(),
        "firecrawl".into(),
        "browseai".into(),
    ]);
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky.fail_toolkit_deletes.store(true, Ordering::SeqCst);
    let report = engine(&emu, flaky.clone())
        .run(SyncRequest::default())
        .await
        .unwrap();
    assert!(report.success && report.published, "{report:?}");
    assert!(report.removed.is_empty());
    assert_eq!(report.pending_deletes, ["googletasks", "perplexityai"]);
    let pending: Vec<String> = meta(&*memory)
        .await
        .unwrap()
        .pending_deletes
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(pending, ["googletasks", "perplexityai"], "kept in the meta");
    assert!(
        toolkit(&*memory, "googletasks").await.is_some(),
        "still there"
    );
    assert_eq!(
        flaky.deletes.load(Ordering::SeqCst),
        2,
        "both tried, concurrently"
    );

    // The next sync, with nothing else to do, finishes the job.
    flaky.fail_toolkit_deletes.store(false, Ordering::SeqCst);
    let report = engine(&emu, flaky)
        .run(SyncRequest::default())
        .await
        .unwrap();
    assert_eq!(report.removed, ["googletasks", "perplexityai"]);
    assert!(toolkit(&*memory, "googletasks").await.is_none());
    assert!(toolkit(&*memory, "perplexityai").await.is_none());
}

#[tokio::test]
async fn an_upstream_glitch_that_loses_most_toolkits_publishes_and_deletes_nothing() {
    let (emu, _dir, store, engine) = synced().await;
    let before = store.get(&ObjectKey::Meta).await.unwrap().unwrap().body;
    emu.set_auth_configs(vec![]);
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(!report.success && !report.published, "{report:?}");
    let message = report.message.unwrap();
    assert!(
        message.contains("drop 6 of the 7 published toolkits"),
        "{message}"
    );
    assert!(message.contains("keep 1"), "{message}");
    assert_eq!(
        store.get(&ObjectKey::Meta).await.unwrap().unwrap().body,
        before
    );
    for (slug, _) in SAMPLE {
        assert!(toolkit(&*store, slug).await.is_some(), "{slug} kept");
    }
    assert_eq!(report.written, 0, "nothing was written either");

    // When the project really lost them, the override publishes.
    let report = engine.run(allow_shrink()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.toolkits, 1, "browser_tool");
    assert_eq!(report.removed.len(), 6);
}

#[tokio::test]
async fn a_sync_whose_lease_was_taken_over_publishes_nothing_and_keeps_the_new_lease() {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky
        .steal_lease_on_toolkit_write
        .store(true, Ordering::SeqCst);
    let report = engine(&emu, flaky).run(full()).await.unwrap();
    assert!(!report.success && !report.published, "{report:?}");
    assert!(report.message.unwrap().contains("lease"));
    assert!(memory.get(&ObjectKey::Meta).await.unwrap().is_none());
    let lease = memory
        .get(&ObjectKey::Lease)
        .await
        .unwrap()
        .expect("the thief's lease stays");
    assert!(String::from_utf8_lossy(&lease.body).contains("thief"));
}

#[tokio::test]
async fn a_sync_that_outlives_its_lease_stops_writing() {
    let emu = emulator().await;
    emu.set_fault(
        "github",
        Fault::always(
            FaultKind::Slow(Duration::from_millis(1500)),
            FaultTarget::Tools,
        ),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = settings();
    // Five seconds of safety: by our own clock this lease lapses after one.
    settings.lease_ttl = Duration::from_secs(6);
    let report = SyncEngine::new(client(&emu), store.clone(), settings)
        .run(full())
        .await
        .unwrap();
    assert!(!report.success, "{report:?}");
    assert!(report.message.unwrap().contains("lease"));
    assert!(
        toolkit(&*store, "github").await.is_none(),
        "github was not written"
    );
    assert!(store.get(&ObjectKey::Meta).await.unwrap().is_none());
}

#[tokio::test]
async fn a_panic_inside_a_sync_releases_the_lease_and_records_a_failed_run() {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky.panic_on_toolkit_write.store(true, Ordering::SeqCst);
    let engine = engine(&emu, flaky);
    let report = engine.run(full()).await.unwrap();
    assert!(!report.success && !report.published);
    let message = report.message.as_deref().unwrap();
    assert!(
        message.contains("panicked") && message.contains("injected bug in a toolkit write"),
        "says what panicked: {report:?}"
    );
    assert!(
        memory.get(&ObjectKey::Lease).await.unwrap().is_none(),
        "lease released"
    );
    let last: serde_json::Value =
        serde_json::from_slice(&memory.get(&ObjectKey::LastRun).await.unwrap().unwrap().body)
            .unwrap();
    assert_eq!(last["success"], false);
    assert!(
        engine.run(full()).await.unwrap().success,
        "the next sync runs"
    );
}

/// The test above holds only if the shipped build unwinds: cargo-lambda builds
/// with `panic = "abort"` unless the release profile says otherwise.
#[test]
fn the_release_profile_unwinds_so_a_panic_can_release_the_lease() {
    let manifest = include_str!("../Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a [profile.release] section");
    let release = release.split("\n[").next().unwrap();
    assert!(
        release
            .lines()
            .any(|line| line.trim() == r#"panic = "unwind""#),
        "[profile.release] must set panic = \"unwind\""
    );
}

#[tokio::test]
async fn a_409_on_the_meta_is_retried_not_reported_as_superseded() {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    engine(&emu, memory.clone()).run(full()).await.unwrap();
    emu.publish_new_version("linkedin");
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    flaky.meta_conflicts.store(2, Ordering::SeqCst);
    let report = engine(&emu, flaky.clone())
        .run(SyncRequest::default())
        .await
        .unwrap();
    assert!(report.success && report.published, "{report:?}");
    assert_eq!(meta(&*memory).await.unwrap().total_tool_count, 886);
    // A conflict that never clears is a store failure, still not "superseded".
    flaky.meta_conflicts.store(10, Ordering::SeqCst);
    emu.publish_new_version("linkedin");
    let report = engine(&emu, flaky)
        .run(SyncRequest::default())
        .await
        .unwrap();
    let message = report.message.unwrap();
    assert!(
        !message.contains("newer meta") && message.contains("concurrent"),
        "{message}"
    );
}

#[tokio::test]
async fn the_earlier_of_the_callers_deadline_and_the_sync_timeout_wins() {
    let emu = emulator().await;
    emu.set_fault(
        "github",
        Fault::always(FaultKind::Slow(Duration::from_secs(3)), FaultTarget::Tools),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.timeout = Duration::from_millis(800);
    let report = SyncEngine::new(client(&emu), store, settings)
        .run(SyncRequest {
            full: true,
            deadline: Some(Instant::now() + Duration::from_secs(60)),
            ..SyncRequest::default()
        })
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].error.contains("time budget"),
        "{:?}",
        report.failed
    );
}

#[tokio::test]
async fn upstream_text_is_cut_before_it_is_stored() {
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::always(FaultKind::LongError(50_000), FaultTarget::Tools),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(
        report.failed[0].error.chars().count() <= 500,
        "{}",
        report.failed[0].error.len()
    );
    for failure in meta(&*store).await.unwrap().failed {
        assert!(failure.error.chars().count() <= 500);
    }
}

#[tokio::test]
async fn upstream_slug_case_is_handled_alike_everywhere() {
    let emu = emulator().await;
    emu.set_auth_configs(vec!["LinkedIn".into(), "linkedin".into()]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.toolkits, 2, "linkedin once, and browser_tool");
    assert_eq!(toolkit(&*store, "linkedin").await.unwrap().tool_count, 4);
}

#[tokio::test]
async fn a_full_sync_that_ran_out_of_time_is_resumed_not_restarted() {
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    emu.set_fault(
        "github",
        Fault::always(FaultKind::Slow(Duration::from_secs(3)), FaultTarget::Tools),
    );
    let short = SyncRequest {
        full: true,
        deadline: Some(Instant::now() + Duration::from_millis(800)),
        ..SyncRequest::default()
    };
    let first = engine.run(short).await.unwrap();
    assert!(first.success && first.failed.len() == 1, "{first:?}");
    let mark = meta(&*store).await.unwrap().unfinished_full_pass;
    assert_eq!(
        mark.as_deref(),
        Some(first.started_at.as_str()),
        "the pass is marked unfinished"
    );

    // The next full sync fetches only what that pass had not done.
    emu.clear_faults();
    emu.reset_stats();
    let second = engine.run(full()).await.unwrap();
    assert!(second.success, "{second:?}");
    assert_eq!(
        second.resumed_full_pass.as_deref(),
        Some(first.started_at.as_str())
    );
    assert_eq!((second.fetched, second.unchanged), (1, 6), "github alone");
    assert_eq!(emu.stats().by_route.get("tools"), Some(&1));
    assert_eq!(second.tools, 885);
    assert!(
        meta(&*store).await.unwrap().unfinished_full_pass.is_none(),
        "the pass is done"
    );
    // And the one after is a whole full sync again.
    assert_eq!(engine.run(full()).await.unwrap().fetched, 7);
}

// ---- Mutation testing (issue 8 §8): what the reports and the feed promise ----

#[tokio::test]
async fn the_observer_hears_the_plan_every_fetched_toolkit_and_every_failure() {
    use composio_schema_cache::sync::SyncEvent;
    // The CLI's progress bar is driven by these events alone.
    let emu = emulator().await;
    emu.set_fault(
        "firecrawl",
        Fault::always(FaultKind::Status(502), FaultTarget::Tools),
    );
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = events.clone();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine(&emu, store)
        .with_observer(Arc::new(move |e| heard.lock().unwrap().push(e)))
        .run(full())
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    let events = events.lock().unwrap();
    assert!(
        matches!(
            events.first(),
            Some(SyncEvent::Planned {
                to_fetch: 7,
                unchanged: 0
            })
        ),
        "{events:?}"
    );
    let mut fetched: Vec<(String, usize)> = events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Fetched { slug, tools } => Some((slug.to_string(), *tools)),
            _ => None,
        })
        .collect();
    fetched.sort();
    let expected: Vec<(String, usize)> = SAMPLE
        .iter()
        .filter(|(slug, _)| *slug != "firecrawl")
        .map(|(slug, n)| (slug.to_string(), *n))
        .collect();
    assert_eq!(fetched, expected);
    let failed: Vec<&SyncEvent> = events
        .iter()
        .filter(|e| matches!(e, SyncEvent::Failed { .. }))
        .collect();
    assert!(
        matches!(failed[..], [SyncEvent::Failed { slug, error }] if slug == "firecrawl" && error.contains("502")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn each_report_counts_only_its_own_requests_throttles_and_retries() {
    // The client's counters are cumulative and one engine runs many syncs:
    // a report must give this sync's share, not the client's lifetime.
    let emu = emulator().await;
    emu.set_fault(
        "linkedin",
        Fault::times(
            FaultKind::throttled(Duration::from_millis(20)),
            FaultTarget::Tools,
            1,
        ),
    );
    emu.push_fault(
        "linkedin",
        Fault::times(FaultKind::Status(502), FaultTarget::Tools, 1),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store);
    let first = engine.run(full()).await.unwrap();
    assert!(first.success, "{first:?}");
    assert_eq!(
        (first.upstream_throttled, first.upstream_retries),
        (1, 2),
        "one 429 and one 502, each retried"
    );
    // Two listings, one tool call per toolkit, one trigger-type call for
    // the one toolkit with any (N + 3), and the two retries.
    assert_eq!(first.upstream_requests, 2 + 7 + 1 + 2);
    let second = engine.run(SyncRequest::default()).await.unwrap();
    assert!(second.success, "{second:?}");
    assert_eq!(
        (
            second.upstream_requests,
            second.upstream_throttled,
            second.upstream_retries
        ),
        (2, 0, 0)
    );
}

#[tokio::test]
async fn the_report_gives_the_settled_rate_to_the_hundredth() {
    // The server announces 10 requests per 700 ms; the client aims for 90 %
    // of that, 12.857… per second, which the report rounds to 12.86.
    let emu = emulator().await;
    emu.set_rate_limit(Some(RateLimit {
        max_requests: 10,
        window: Duration::from_millis(700),
        headers: LimitHeaders::Always,
    }));
    let mut config = client_config(&emu);
    config.max_rps = Some(25);
    config.burst = 5;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let report = engine_with(ComposioClient::new(config).unwrap(), store)
        .run(full())
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.settled_rps, Some(12.86));
}

#[tokio::test]
async fn change_records_are_written_only_for_changes_and_expire_after_the_retention() {
    use composio_schema_cache::cache::timestamp;
    use composio_schema_cache::store::ChangesName;
    use std::time::SystemTime;
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.changes_retention = Duration::from_secs(3600);
    let engine = SyncEngine::new(client(&emu), store.clone(), settings);
    assert!(engine.run(full()).await.unwrap().success);
    let records = || async {
        let mut names: Vec<String> = store
            .list_changes()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Changes(name) => Some(name.as_str().to_owned()),
                _ => None,
            })
            .collect();
        names.sort();
        names
    };
    // Records other syncs left: one past the retention, one well within it.
    let old = ChangesName::new("2020-01-01T00:00:00.000Z", "old-sync").unwrap();
    let recent_at = timestamp(SystemTime::now() - Duration::from_secs(600));
    let recent = ChangesName::new(&recent_at, "recent-sync").unwrap();
    for name in [&old, &recent] {
        store
            .put(
                &ObjectKey::Changes(name.clone()),
                r#"{"syncId":"x","at":"x","changes":[]}"#.into(),
                PutCondition::Overwrite,
            )
            .await
            .unwrap();
    }
    let before = records().await;

    emu.publish_new_version("linkedin");
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success && report.changes_recorded, "{report:?}");
    let after = records().await;
    assert!(
        !after.contains(&old.as_str().to_owned()),
        "expired: {after:?}"
    );
    assert!(
        after.contains(&recent.as_str().to_owned()),
        "kept: {after:?}"
    );
    let written: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(written.len(), 1, "{after:?}");
    assert!(written[0].ends_with(&report.sync_id), "{written:?}");

    // A sync that changed nothing records nothing.
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(records().await, after);
}

/// A store whose lease write and meta read answer only once Composio has been
/// asked for both listings (bounded: after 5 s they fail instead).
struct AfterTheListings {
    inner: Arc<dyn Store>,
    emu: Emulator,
}

impl AfterTheListings {
    async fn listings_requested(
        &self,
        op: &'static str,
        key: &ObjectKey,
    ) -> Result<(), StoreError> {
        let asked = |route: &str| self.emu.stats().by_route.get(route).copied().unwrap_or(0) > 0;
        for _ in 0..1000 {
            if asked("auth_configs") && asked("toolkits") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(StoreError::backend(
            op,
            key,
            "the listings were not requested meanwhile",
        ))
    }
}

#[async_trait::async_trait]
impl Store for AfterTheListings {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        if matches!(key, ObjectKey::Meta) {
            self.listings_requested("get", key).await?;
        }
        self.inner.get(key).await
    }
    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        self.inner.etag(key).await
    }
    async fn put(&self, key: &ObjectKey, body: Bytes, c: PutCondition) -> Result<ETag, StoreError> {
        if matches!(key, ObjectKey::Lease) {
            self.listings_requested("put", key).await?;
        }
        self.inner.put(key, body, c).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        self.inner.delete_if_match(key, etag).await
    }
    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list().await
    }
    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list_changes().await
    }
    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list_snapshots().await
    }
    fn location(&self) -> String {
        format!("after the listings: {}", self.inner.location())
    }
}

/// On S3 the lease and the meta are a round trip each: the listings, which
/// only read Composio, do not wait for them.
#[tokio::test]
async fn the_listings_are_in_flight_while_the_store_takes_the_lease_and_reads_the_meta() {
    let emu = emulator().await;
    let (_dir, inner) = fs_store();
    let store = Arc::new(AfterTheListings {
        inner,
        emu: emu.clone(),
    });
    let report = engine(&emu, store.clone()).run(full()).await.unwrap();
    assert!(report.success, "{:?}", report.message);
    assert_eq!(report.toolkits, SAMPLE.len());
    assert!(report.timings.plan <= report.duration_ms);

    // A refused lease still answers Busy, the listings dropped with it.
    plant_lease(&*store.inner, "running-sync", "now", u64::MAX / 2).await;
    match engine(&emu, store.clone()).run(full()).await {
        Err(SyncError::Busy(l)) => assert_eq!(l.owner, "running-sync"),
        other => panic!("expected Busy, got {other:?}"),
    }
}

/// The change feed never loses a published change: each publish's record is
/// written before its meta. A record whose meta never landed (a sync killed
/// or failing between the two) is seen by no reader and no notifier, and the
/// next publish removes it and records the same changes itself.
#[tokio::test]
async fn a_change_record_whose_meta_never_landed_is_never_served_and_the_next_publish_records_the_change(
) {
    use composio_schema_cache::http::{CacheReader, ReaderConfig};
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let flaky = Arc::new(FlakyStore::new(memory.clone()));
    let engine = engine(&emu, flaky.clone());
    assert!(engine.run(full()).await.unwrap().success);
    let records = || async {
        let listed = memory.list_changes().await.unwrap();
        listed
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Changes(name) => Some(name),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let first = records().await;
    assert_eq!(first.len(), 1, "the first publish adds every tool");

    emu.publish_new_version("linkedin");
    flaky.fail_meta.store(true, Ordering::SeqCst);
    let failed = engine.run(SyncRequest::default()).await.unwrap();
    assert!(!failed.published, "{failed:?}");
    let orphaned = records().await;
    assert_eq!(orphaned.len(), 2, "its record went first: {orphaned:?}");
    assert!(orphaned[1].as_str().ends_with(&failed.sync_id));
    // A reader of the published meta does not see it.
    let reader = CacheReader::new(memory.clone(), ReaderConfig::new(Duration::ZERO));
    let view = reader.meta().await.unwrap().view.unwrap();
    let (served, complete) = reader.change_records(&view).await.unwrap();
    assert!(complete);
    assert_eq!(*served, first, "only what the published meta covers");

    flaky.fail_meta.store(false, Ordering::SeqCst);
    let next = engine.run(SyncRequest::default()).await.unwrap();
    assert!(next.published && next.changes_recorded, "{next:?}");
    let now = records().await;
    assert_eq!(now.len(), 2, "the unpublished record is gone: {now:?}");
    assert_eq!(now[0], first[0]);
    assert!(now[1].as_str().ends_with(&next.sync_id));
    let record: serde_json::Value = serde_json::from_slice(
        &memory
            .get(&ObjectKey::Changes(now[1].clone()))
            .await
            .unwrap()
            .unwrap()
            .body,
    )
    .unwrap();
    let added: Vec<&str> = record["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "added")
        .map(|c| c["tool"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["LINKEDIN_ADDED_4"], "{record}");
    let view = reader.meta().await.unwrap().view.unwrap();
    assert_eq!(*reader.change_records(&view).await.unwrap().0, now);
}

/// A sync killed outright (no panic, no report, no release) leaves its lease:
/// status says the last run never finished instead of "fresh", and the next
/// sync takes the lease over once its heartbeat is old, not after the TTL.
#[tokio::test]
async fn a_dead_holders_lease_makes_status_unhealthy_and_is_taken_over_after_its_heartbeat_lapses()
{
    use composio_schema_cache::http::{CacheReader, ReaderConfig, StatusAnswer};
    use composio_schema_cache::sync::LeaseRecord;
    let emu = emulator().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    assert!(engine.run(full()).await.unwrap().success);
    let status = || async {
        let reader = CacheReader::new(store.clone(), ReaderConfig::new(Duration::ZERO));
        let view = reader.meta().await.unwrap().view;
        StatusAnswer::read(&*store, view.as_deref(), false)
            .await
            .unwrap()
            .verdict(None)
    };
    assert!(status().await.ok);
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // A holder renewing every 100 ms that was killed just now: an hour to
    // its TTL, 400 ms to its heartbeat's lapse.
    let dead = LeaseRecord {
        owner: "killed-sync".into(),
        acquired_at: "2026-12-01T00:00:00.000Z".into(),
        expires_at: String::new(),
        expires_at_ms: now_ms() + 3_600_000,
        renewed_at_ms: Some(now_ms()),
        dead_after_ms: Some(400),
    };
    let plant = |record: LeaseRecord| {
        let store = store.clone();
        async move {
            store
                .put(
                    &ObjectKey::Lease,
                    serde_json::to_vec(&record).unwrap().into(),
                    PutCondition::Overwrite,
                )
                .await
                .unwrap();
        }
    };
    plant(dead.clone()).await;
    match engine.run(SyncRequest::default()).await {
        Err(SyncError::Busy(l)) => assert_eq!(l.owner, "killed-sync"),
        other => panic!("a lease renewed just now is a live holder's: {other:?}"),
    }
    assert!(status().await.ok, "a live sync is not a failure");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let verdict = status().await;
    assert!(!verdict.ok, "{verdict:?}");
    assert!(
        verdict.reason.contains("killed-sync") && verdict.reason.contains("never finished"),
        "{verdict:?}"
    );
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(
        report.success,
        "taken over long before the hour: {report:?}"
    );
    assert!(status().await.ok);
    assert!(store.get(&ObjectKey::Lease).await.unwrap().is_none());
}
