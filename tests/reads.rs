//! The read side at full strength: validators and 304s, compression over
//! HTTP and through the Lambda adapter, paging, the Lambda payload limit at a
//! full catalogue's scale, the byte-bounded cache, orphans and a store that
//! goes away.

mod support;

use base64::Engine;
use bytes::Bytes;
use composio_schema_cache::composio::ComposioClient;
use composio_schema_cache::emulator::{Catalog, Emulator, EmulatorConfig};
use composio_schema_cache::http::{
    router, router_and_doc, CacheReader, ReaderConfig, RouterParts, BASE, STALE_HEADER,
};
use composio_schema_cache::lambda::handle_http;
use composio_schema_cache::store::{MemoryStore, ObjectKey, PutCondition, Store};
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use lambda_runtime::Context;
use serde_json::Value;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// A synced memory store and a router over it.
async fn synced(
    config: ReaderConfig,
) -> (
    Emulator,
    Arc<MemoryStore>,
    SyncEngine,
    Arc<CacheReader>,
    axum::Router,
) {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    assert!(engine.run(SyncRequest::full()).await.unwrap().success);
    let reader = Arc::new(CacheReader::new(store.clone(), config));
    let router = router(reader.clone(), None);
    (emu, store, engine, reader, router)
}

/// The Lambda answer to a GET event: (status, headers, body bytes decoded, invoke size).
async fn lambda_get(
    router: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, Vec<u8>, usize) {
    let answer = handle_http(router.clone(), get_event(path, headers), Context::default())
        .await
        .unwrap();
    let size = serde_json::to_vec(&answer).unwrap().len();
    let status = answer["statusCode"].as_u64().unwrap() as u16;
    let text = answer["body"].as_str().unwrap_or("");
    let body = if answer["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    } else {
        text.as_bytes().to_vec()
    };
    (status, answer["headers"].clone(), body, size)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
    out
}

const ROUTES: [&str; 4] = [
    "",
    "/toolkits",
    "/toolkits/linkedin",
    "/toolkits/linkedin/LINKEDIN_GET_MY_INFO",
];

#[tokio::test]
async fn every_read_answer_is_cacheable_and_revalidates_with_a_304() {
    let (_emu, store, _engine, _reader, router) =
        synced(ReaderConfig::new(Duration::from_secs(60))).await;
    for route in ROUTES {
        let path = format!("{BASE}{route}");
        let (status, headers, body, _) = lambda_get(&router, &path, &[]).await;
        assert_eq!(status, 200, "{route}");
        serde_json::from_slice::<Value>(&body).unwrap();
        let etag = headers["etag"].as_str().unwrap().to_owned();
        let modified = headers["last-modified"].as_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{route}: a strong tag {etag}"
        );
        assert_eq!(
            headers["cache-control"],
            "public, max-age=60, stale-while-revalidate=600"
        );
        assert_eq!(headers["vary"], "accept-encoding");

        let reads = store.reads.load(Ordering::SeqCst);
        let (status, headers304, body, _) =
            lambda_get(&router, &path, &[("if-none-match", &etag)]).await;
        assert_eq!(status, 304, "{route}: If-None-Match");
        assert!(body.is_empty());
        assert_eq!(headers304["etag"].as_str(), Some(etag.as_str()));
        let (status, _, _, _) =
            lambda_get(&router, &path, &[("if-modified-since", &modified)]).await;
        assert_eq!(status, 304, "{route}: If-Modified-Since");
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            reads,
            "{route}: a 304 costs no store read"
        );
        let (status, _, _, _) = lambda_get(&router, &path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(status, 200, "{route}: another tag gets the body");
    }
    let (status, headers, _, _) =
        lambda_get(&router, &format!("{BASE}/toolkits/nosuch"), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(
        headers["cache-control"], "no-store",
        "errors are not cacheable"
    );
}

#[tokio::test]
async fn a_new_sync_changes_the_tags_of_what_changed_and_only_those() {
    let (emu, _store, engine, _reader, router) = synced(ReaderConfig::new(Duration::ZERO)).await;
    let tag = |path: &'static str| {
        let router = router.clone();
        async move { lambda_get(&router, &format!("{BASE}{path}"), &[]).await.1["etag"].clone() }
    };
    let (linkedin, github, list) = (
        tag("/toolkits/linkedin").await,
        tag("/toolkits/github").await,
        tag("/toolkits").await,
    );
    emu.publish_new_version("linkedin");
    assert!(engine.run(SyncRequest::default()).await.unwrap().success);
    assert_ne!(tag("/toolkits/linkedin").await, linkedin);
    assert_eq!(
        tag("/toolkits/github").await,
        github,
        "unchanged toolkit, same tag"
    );
    assert_ne!(tag("/toolkits").await, list, "a new meta, a new list");
}

#[tokio::test]
async fn bytes_the_index_does_not_describe_never_carry_its_tags() {
    let (_emu, store, _engine, _reader, warm) = synced(ReaderConfig::new(Duration::ZERO)).await;
    let paths = [
        "/toolkits/linkedin",
        "/toolkits/linkedin/LINKEDIN_GET_MY_INFO",
        "/toolkits/linkedin?format=openai",
        "/toolkits/linkedin/LINKEDIN_GET_MY_INFO?format=anthropic",
        "/tools?slugs=LINKEDIN_GET_MY_INFO",
    ];
    let mut before = Vec::new();
    for path in paths {
        let (status, headers, body, _) = lambda_get(&warm, &format!("{BASE}{path}"), &[]).await;
        assert_eq!(status, 200, "{path}");
        before.push((headers["etag"].clone(), body));
    }
    let rewritten = |object: Bytes| {
        let mut toolkit: Value = serde_json::from_slice(&object).unwrap();
        for tool in toolkit["tools"].as_array_mut().unwrap() {
            tool["description"] = "rewritten upstream".into();
        }
        Bytes::from(serde_json::to_vec(&toolkit).unwrap())
    };
    let cold = || {
        router(
            Arc::new(CacheReader::new(
                store.clone(),
                ReaderConfig::new(Duration::ZERO),
            )),
            None,
        )
    };
    // A sync rewrote linkedin's plain view and has not published yet (or
    // died): readers serve the snapshot the meta names, as before.
    let slug = composio_schema_cache::cache::Slug::parse("linkedin").unwrap();
    let view = ObjectKey::Toolkit(slug.clone());
    let object = store.get(&view).await.unwrap().unwrap();
    store
        .put(&view, rewritten(object.body), PutCondition::Overwrite)
        .await
        .unwrap();
    let reader = cold();
    for (path, (etag, body)) in paths.iter().zip(&before) {
        let (status, headers, now, _) = lambda_get(&reader, &format!("{BASE}{path}"), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(&now, body, "{path}: the published snapshot's bytes");
        assert_eq!(&headers["etag"], etag, "{path}: and its tag");
    }
    // Its snapshot edited by hand: served as it is, never under the index's tag.
    let entry = meta(&*store)
        .await
        .unwrap()
        .toolkits
        .into_iter()
        .find(|e| e.slug == slug)
        .unwrap();
    let snapshot = ObjectKey::Snapshot(
        slug,
        composio_schema_cache::store::SnapshotHash::parse(&entry.content_hash).unwrap(),
    );
    let object = store.get(&snapshot).await.unwrap().unwrap();
    store
        .put(&snapshot, rewritten(object.body), PutCondition::Overwrite)
        .await
        .unwrap();
    let reader = cold();
    for (path, (etag, body)) in paths.iter().zip(before) {
        let (status, headers, now, _) = lambda_get(&reader, &format!("{BASE}{path}"), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_ne!(now, body, "{path}: the bytes changed");
        assert_ne!(headers["etag"], etag, "{path}: so did the tag");
    }
}

#[tokio::test]
async fn a_reader_holding_the_meta_of_a_pruned_toolkit_serves_its_snapshot_then_404_not_an_outage()
{
    let (emu, _store, engine, reader, router) =
        synced(ReaderConfig::new(Duration::from_secs(600))).await;
    assert_eq!(lambda_get(&router, BASE, &[]).await.0, 200);
    let get = |path: &str| {
        let url = format!("{BASE}{path}");
        let router = router.clone();
        async move { lambda_get(&router, &url, &[]).await }
    };
    let (_, _, published, _) = get("/toolkits/linkedin").await;
    emu.set_auth_configs(vec!["github".into()]);
    let request = SyncRequest {
        allow_shrink: true,
        ..SyncRequest::default()
    };
    let report = engine.run(request.clone()).await.unwrap();
    assert!(
        report.removed.contains(&"linkedin".to_string()),
        "{report:?}"
    );
    // The reader still holds the meta that named linkedin: its snapshot is
    // kept one more publish, so that meta's answers stay whole.
    let (status, _, body, _) = get("/toolkits/linkedin").await;
    assert_eq!((status, body), (200, published));
    // Two publishes on, the snapshot is gone: a reader that must read it
    // again (its answer evicted) revalidates its meta: 404, not 503.
    let report = engine.run(request).await.unwrap();
    assert!(report.snapshots_removed >= 1, "{report:?}");
    reader.clear_answers();
    let (status, headers, _, _) = get("/toolkits/linkedin").await;
    assert_eq!(status, 404);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(get("/toolkits/github").await.0, 200);
}

#[tokio::test]
async fn compressed_answers_round_trip_over_http_and_through_lambda() {
    let (_emu, _store, _engine, _reader, router) =
        synced(ReaderConfig::new(Duration::from_secs(60))).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn({
        let router = router.clone();
        async move { axum::serve(listener, router).await }
    });
    let http = composio_schema_cache::tls::http_client();
    for route in ROUTES {
        let url = format!("http://{addr}{BASE}{route}");
        let identity = http.get(&url).send().await.unwrap().bytes().await.unwrap();
        for (accept, coding) in [
            ("gzip", "gzip"),
            ("br, gzip", "br"),
            ("gzip;q=1, br;q=0.1", "gzip"),
        ] {
            let response = http
                .get(&url)
                .header("accept-encoding", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["content-encoding"],
                coding,
                "{route} {accept}"
            );
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            assert!(etag.ends_with(&format!("-{coding}\"")), "{etag}");
            let packed = response.bytes().await.unwrap();
            assert!(packed.len() < identity.len(), "{route}: smaller");
            let unpacked = if coding == "gzip" {
                gunzip(&packed)
            } else {
                unbrotli(&packed)
            };
            assert_eq!(unpacked, identity, "{route} {coding}");
        }
    }
    // Through the Lambda adapter: base64, flagged, with the coding named.
    let answer = handle_http(
        router.clone(),
        fixture("read-toolkit-gzip.json"),
        Context::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["isBase64Encoded"], true);
    assert_eq!(answer["headers"]["content-encoding"], "gzip");
    let body = base64::engine::general_purpose::STANDARD
        .decode(answer["body"].as_str().unwrap())
        .unwrap();
    let toolkit: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    assert_eq!(
        (toolkit["slug"].as_str(), toolkit["toolCount"].as_u64()),
        (Some("linkedin"), Some(4))
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_cursor_and_refuse_bad_ones() {
    let (_emu, _store, _engine, _reader, router) =
        synced(ReaderConfig::new(Duration::from_secs(60))).await;
    for route in ["", "/toolkits"] {
        let mut seen = Vec::new();
        let mut path = format!("{BASE}{route}?limit=3");
        for _ in 0..10 {
            let (status, _, body, _) = lambda_get(&router, &path, &[]).await;
            assert_eq!(status, 200);
            let page: Value = serde_json::from_slice(&body).unwrap();
            let toolkits = page["toolkits"].as_array().unwrap();
            assert!(toolkits.len() <= 3);
            seen.extend(
                toolkits
                    .iter()
                    .map(|t| t["slug"].as_str().unwrap().to_owned()),
            );
            match page["nextCursor"].as_str() {
                Some(cursor) => path = format!("{BASE}{route}?limit=3&cursor={cursor}"),
                None => {
                    assert!(page["nextCursor"].is_null(), "a paged answer names its end");
                    break;
                }
            }
        }
        assert_eq!(
            seen,
            [
                "browseai",
                "browser_tool",
                "firecrawl",
                "github",
                "googletasks",
                "linkedin",
                "perplexityai"
            ]
        );
        // Without paging parameters: the reference shape, no cursor at all.
        let (_, _, body, _) = lambda_get(&router, &format!("{BASE}{route}"), &[]).await;
        let whole: Value = serde_json::from_slice(&body).unwrap();
        assert!(whole.get("nextCursor").is_none());
        for bad in [
            "?cursor=nonsense",
            "?limit=0",
            "?limit=1001",
            "?limit=x",
            "?page=2",
        ] {
            let (status, _, body, _) =
                lambda_get(&router, &format!("{BASE}{route}{bad}"), &[]).await;
            assert_eq!(status, 400, "{route}{bad}");
            assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].is_string());
        }
    }
}

#[tokio::test]
async fn at_a_full_catalogues_scale_every_route_fits_one_lambda_response() {
    const LAMBDA_LIMIT: usize = 6_291_456;
    let catalog = Catalog::synthetic(
        &Catalog::from_dir(&composio_schema_cache::emulator::bundled_catalog_dir()).unwrap(),
        1000,
        25,
    );
    let emu = Emulator::start(EmulatorConfig::new(catalog)).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut settings = settings();
    settings.concurrency = 32;
    settings.no_auth_toolkits.clear();
    // 1,000 toolkits at once in a debug build on a busy machine: a patient client.
    let mut patient = client_config(&emu);
    patient.request_timeout = Duration::from_secs(60);
    patient.retry_budget = Duration::from_secs(60);
    let patient = ComposioClient::new(patient).unwrap();
    let report = SyncEngine::new(patient, store.clone(), settings)
        .run(SyncRequest::full())
        .await
        .unwrap();
    assert_eq!(
        (report.toolkits, report.tools),
        (1000, 25_000),
        "{:?}",
        report.message
    );
    let router = router(
        Arc::new(CacheReader::new(
            store,
            ReaderConfig::new(Duration::from_secs(60)),
        )),
        None,
    );
    for accept in [None, Some("gzip"), Some("br")] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        for route in [
            "",
            "/toolkits",
            "/toolkits/synthetic_0999",
            "/toolkits/synthetic_0500/SYNTHETIC_0500_TOOL_024",
        ] {
            let (status, _, _, size) =
                lambda_get(&router, &format!("{BASE}{route}"), &headers).await;
            assert_eq!(status, 200, "{route} {accept:?}");
            assert!(size < LAMBDA_LIMIT, "{route} {accept:?}: {size} bytes");
        }
        // The whole list, by following its cursors; every page fits.
        let mut path = format!("{BASE}/toolkits");
        let mut toolkits = 0;
        let mut pages = 0;
        loop {
            let (status, response_headers, body, size) = lambda_get(&router, &path, &headers).await;
            assert_eq!(status, 200);
            assert!(size < LAMBDA_LIMIT, "page {pages}: {size}");
            let body = match response_headers["content-encoding"].as_str() {
                Some("gzip") => gunzip(&body),
                Some("br") => unbrotli(&body),
                _ => body,
            };
            let page: Value = serde_json::from_slice(&body).unwrap();
            toolkits += page["toolkits"].as_array().unwrap().len();
            pages += 1;
            match page["nextCursor"].as_str() {
                Some(cursor) => path = format!("{BASE}/toolkits?cursor={cursor}"),
                None => break,
            }
            assert!(pages < 20, "paging ends");
        }
        assert_eq!(toolkits, 1000, "{accept:?}: every toolkit, once");
        assert!(pages >= 2, "too big for one answer: paged automatically");
    }
}

#[tokio::test]
async fn the_answer_cache_stays_within_its_byte_budget() {
    let mut config = ReaderConfig::new(Duration::from_secs(60));
    config.cache_bytes = 1024 * 1024;
    let (_emu, _store, _engine, reader, router) = synced(config).await;
    let slugs = [
        "browseai",
        "browser_tool",
        "firecrawl",
        "github",
        "googletasks",
        "linkedin",
        "perplexityai",
    ];
    for round in 0..2 {
        for accept in ["identity", "gzip", "br"] {
            for slug in slugs {
                let (status, _, _, _) = lambda_get(
                    &router,
                    &format!("{BASE}/toolkits/{slug}"),
                    &[("accept-encoding", accept)],
                )
                .await;
                assert_eq!(status, 200, "round {round}: {slug} {accept}");
                assert!(
                    reader.cached_bytes() <= 1024 * 1024,
                    "{}",
                    reader.cached_bytes()
                );
            }
        }
    }
    let (hits, misses) = reader.cache_counts();
    assert!(
        misses > 0 && hits > 0,
        "evictions and hits: {hits}/{misses}"
    );
    // github alone (1.6 MB) is larger than the budget: served, never kept.
    let (_, _, body, _) = lambda_get(&router, &format!("{BASE}/toolkits/github"), &[]).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["toolCount"],
        831
    );
}

#[tokio::test]
async fn an_object_the_meta_does_not_name_is_never_served() {
    let (_emu, store, _engine, _reader, router) = synced(ReaderConfig::new(Duration::ZERO)).await;
    let stray = composio_schema_cache::cache::Slug::parse("stray").unwrap();
    let linkedin = store
        .get(&ObjectKey::Toolkit(
            composio_schema_cache::cache::Slug::parse("linkedin").unwrap(),
        ))
        .await
        .unwrap()
        .unwrap();
    store
        .put(
            &ObjectKey::Toolkit(stray),
            linkedin.body,
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    for path in ["/toolkits/stray", "/toolkits/stray/LINKEDIN_GET_MY_INFO"] {
        let (status, _, _, _) = lambda_get(&router, &format!("{BASE}{path}"), &[]).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// A synced cache behind a store whose reads can be made to fail.
async fn synced_behind_a_flaky_store() -> Arc<FlakyStore> {
    let emu = emulator().await;
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    engine(&emu, memory.clone())
        .run(SyncRequest::full())
        .await
        .unwrap();
    Arc::new(FlakyStore::new(memory))
}

#[tokio::test]
async fn when_the_store_goes_away_a_warm_reader_serves_its_copy_marked_stale() {
    let flaky = synced_behind_a_flaky_store().await;
    let reader_for = |stale_if_error| {
        let mut config = ReaderConfig::new(Duration::ZERO);
        config.stale_if_error = stale_if_error;
        router(Arc::new(CacheReader::new(flaky.clone(), config)), None)
    };
    let warm = reader_for(Duration::from_secs(600));
    let path = format!("{BASE}/toolkits/linkedin");
    let (status, headers, fresh, _) = lambda_get(&warm, &path, &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get(STALE_HEADER).is_none());
    flaky.fail_reads.store(true, Ordering::SeqCst);
    let (status, headers, stale, _) = lambda_get(&warm, &path, &[]).await;
    assert_eq!(status, 200, "served from memory");
    assert_eq!(headers[STALE_HEADER], "true", "and marked");
    assert_eq!(stale, fresh);
    // Past the window (here: none), the store's absence is a 503.
    flaky.fail_reads.store(false, Ordering::SeqCst);
    let strict = reader_for(Duration::ZERO);
    assert_eq!(lambda_get(&strict, &path, &[]).await.0, 200);
    flaky.fail_reads.store(true, Ordering::SeqCst);
    let (status, headers, _, _) = lambda_get(&strict, &path, &[]).await;
    assert_eq!(status, 503);
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn while_the_store_is_down_requests_do_not_each_wait_on_it() {
    let flaky = synced_behind_a_flaky_store().await;
    // A TTL the 20 requests below stay well inside, even on a loaded machine.
    let ttl = Duration::from_secs(3);
    let mut config = ReaderConfig::new(ttl);
    config.stale_if_error = Duration::from_secs(600);
    let warm = router(Arc::new(CacheReader::new(flaky.clone(), config)), None);
    let path = format!("{BASE}/toolkits/linkedin");
    assert_eq!(lambda_get(&warm, &path, &[]).await.0, 200);
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    flaky.fail_reads.store(true, Ordering::SeqCst);
    for _ in 0..20 {
        let (status, headers, _, _) = lambda_get(&warm, &path, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers[STALE_HEADER], "true");
    }
    assert_eq!(
        flaky.failed_reads.load(Ordering::SeqCst),
        1,
        "one failed revalidation, then the held copy until the TTL passes again"
    );
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert_eq!(lambda_get(&warm, &path, &[]).await.0, 200);
    assert_eq!(flaky.failed_reads.load(Ordering::SeqCst), 2, "tried again");
}

#[tokio::test]
async fn a_named_http_api_stage_routes_like_the_default_one() {
    let (_emu, _store, _engine, _reader, router) =
        synced(ReaderConfig::new(Duration::from_secs(60))).await;
    let plain = handle_http(
        router.clone(),
        fixture("read-toolkit.json"),
        Context::default(),
    )
    .await
    .unwrap();
    let staged = handle_http(
        router.clone(),
        fixture("read-toolkit-v2-stage.json"),
        Context::default(),
    )
    .await
    .unwrap();
    assert_eq!(staged["statusCode"], 200);
    assert_eq!(staged["body"], plain["body"]);
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_path_answers() {
    let (_emu, store, engine, _reader, _) =
        synced(ReaderConfig::new(Duration::from_secs(60))).await;
    let (router, doc) = router_and_doc(RouterParts {
        reader: Arc::new(CacheReader::new(
            store,
            ReaderConfig::new(Duration::from_secs(60)),
        )),
        sync: Some(Arc::new(engine)),
        cache_control: axum::http::HeaderValue::from_static("public, max-age=60"),
    });
    let doc = serde_json::to_value(&doc).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("", "get"),
        ("/toolkits", "get"),
        ("/toolkits/{toolkit}", "get"),
        ("/toolkits/{toolkit}/{tool}", "get"),
        ("/sync/status", "get"),
        ("/openapi.json", "get"),
        ("/sync", "post"),
        ("/tools", "get"),
        ("/changes", "get"),
    ] {
        let full = format!("{BASE}{path}");
        assert!(
            paths.get(&full).and_then(|p| p.get(method)).is_some(),
            "{method} {full} is documented"
        );
    }
    for (path, operations) in paths {
        if operations.get("get").is_none() {
            continue;
        }
        let concrete = path
            .replace("{toolkit}", "linkedin")
            .replace("{tool}", "LINKEDIN_GET_MY_INFO");
        let (status, _, _, _) = lambda_get(&router, &concrete, &[]).await;
        // `/tools` and `/changes` need parameters: a 400 still proves the route.
        assert!(status == 200 || status == 400, "{path} is routed: {status}");
    }
}
