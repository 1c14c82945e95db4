//! Every route through the one router: in-process with the real event
//! fixtures of `events/` (as Lambda delivers them), and over real HTTP as
//! `serve` runs it.

mod support;

use composio_schema_cache::emulator::{Emulator, Fault, FaultKind, FaultTarget};
use composio_schema_cache::http::{router, CacheReader, ReaderConfig, BASE};
use composio_schema_cache::lambda::{handle_http, handle_sync_event, InvocationError};
use composio_schema_cache::store::{MemoryStore, ObjectKey, Store};
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

struct App {
    emu: Emulator,
    store: Arc<MemoryStore>,
    engine: SyncEngine,
    router: axum::Router,
}

async fn app(synced: bool) -> App {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    if synced {
        assert!(engine.run(SyncRequest::full()).await.unwrap().success);
    }
    let reader = Arc::new(CacheReader::new(
        store.clone(),
        ReaderConfig::new(Duration::from_secs(60)),
    ));
    let router = router(reader, Some(Arc::new(engine.clone())));
    App {
        emu,
        store,
        engine,
        router,
    }
}

/// Runs an HTTP fixture; returns (status, parsed body).
async fn invoke(router: &axum::Router, name: &str) -> (u16, Value) {
    let response = handle_http(router.clone(), fixture(name), Context::default())
        .await
        .unwrap();
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = response["body"].as_str().unwrap_or("null");
    (
        status,
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{name}: body is not JSON ({e}): {body}")),
    )
}

#[tokio::test]
async fn read_fixtures_answer_in_the_reference_shapes() {
    let app = app(true).await;

    let (status, root) = invoke(&app.router, "read-root.json").await;
    assert_eq!(status, 200);
    assert!(root["lastSyncedAt"].is_string());
    let toolkits = root["toolkits"].as_array().unwrap();
    assert_eq!(toolkits.len(), 7);
    let github = toolkits.iter().find(|t| t["slug"] == "github").unwrap();
    assert_eq!(github["toolCount"], 831);
    for field in ["slug", "name", "logo", "toolCount"] {
        assert!(github.get(field).is_some(), "{field}");
    }

    let (status, list) = invoke(&app.router, "read-toolkits.json").await;
    assert_eq!(status, 200);
    let github = list["toolkits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "github")
        .unwrap();
    assert_eq!(github["tools"].as_array().unwrap().len(), 831);
    let tool = &github["tools"][0];
    assert_eq!(
        tool.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["slug", "name", "description"]
    );

    let (status, linkedin) = invoke(&app.router, "read-toolkit.json").await;
    assert_eq!(status, 200);
    assert_eq!(linkedin["slug"], "linkedin");
    assert_eq!(linkedin["toolCount"], 4);
    assert_eq!(linkedin["tools"].as_array().unwrap().len(), 4);

    let (status, v1) = invoke(&app.router, "read-toolkit-v1.json").await;
    assert_eq!(
        (status, &v1),
        (200, &linkedin),
        "REST API v1 with a stage answers the same"
    );

    let (status, tool) = invoke(&app.router, "read-tool.json").await;
    assert_eq!(status, 200);
    assert_eq!(tool["slug"], "LINKEDIN_GET_MY_INFO");
    assert_eq!(tool["toolkitSlug"], "linkedin");
    for field in [
        "slug",
        "name",
        "description",
        "toolkitSlug",
        "inputParameters",
        "outputParameters",
    ] {
        assert!(tool.get(field).is_some(), "{field}");
    }

    let (status, st) = invoke(&app.router, "read-status.json").await;
    assert_eq!(status, 200);
    assert_eq!(st["meta"]["toolkitCount"], 7);
    assert_eq!(st["lastRun"]["success"], true);

    let (status, doc) = invoke(&app.router, "read-openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Generated clients may call `POST /sync` without a body.
    let body = &doc["paths"]["/api/connections/schemas/composio/sync"]["post"]["requestBody"];
    assert_eq!(body["required"], false, "{body}");
    let schema = &body["content"]["application/json"]["schema"];
    assert_eq!(
        schema["$ref"], "#/components/schemas/SyncOptions",
        "{schema}"
    );

    let (status, err) = invoke(&app.router, "read-unknown-toolkit.json").await;
    assert_eq!(status, 404);
    assert!(err["error"].as_str().unwrap().contains("nosuchtoolkit"));

    let (status, err) = invoke(&app.router, "read-bad-slug.json").await;
    assert_eq!(status, 400);
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("invalid toolkit slug"));
}

#[tokio::test]
async fn list_routes_cost_one_store_read_cold_and_none_warm() {
    let app = app(true).await;
    let reads = || app.store.reads.load(Ordering::SeqCst);
    let before = reads();
    invoke(&app.router, "read-root.json").await;
    assert_eq!(reads() - before, 1, "cold: the meta only");
    let before = reads();
    invoke(&app.router, "read-toolkits.json").await;
    invoke(&app.router, "read-root.json").await;
    invoke(&app.router, "read-toolkit.json").await;
    assert_eq!(
        reads() - before,
        1,
        "warm lists: none; the first toolkit read: one"
    );
    let before = reads();
    invoke(&app.router, "read-toolkit.json").await;
    invoke(&app.router, "read-tool.json").await;
    assert_eq!(reads() - before, 0, "warm toolkit and tool: none");
}

#[tokio::test]
async fn a_warm_reader_sees_a_new_sync_once_the_meta_changes() {
    let emu = emulator().await;
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store.clone());
    engine.run(SyncRequest::full()).await.unwrap();
    // TTL zero: every request checks the meta's tag.
    let reader = Arc::new(CacheReader::new(
        store.clone(),
        ReaderConfig::new(Duration::ZERO),
    ));
    let router = router(reader, None);
    let (_, before) = invoke(&router, "read-toolkit.json").await;
    assert_eq!(before["toolCount"], 4);
    emu.publish_new_version("linkedin");
    engine.run(SyncRequest::default()).await.unwrap();
    let (_, after) = invoke(&router, "read-toolkit.json").await;
    assert_eq!(after["toolCount"], 5);
}

#[tokio::test]
async fn before_the_first_sync_lists_are_empty_and_toolkits_absent() {
    let app = app(false).await;
    let (status, root) = invoke(&app.router, "read-root.json").await;
    assert_eq!(
        (status, root),
        (200, json!({"lastSyncedAt": null, "toolkits": []}))
    );
    let (status, _) = invoke(&app.router, "read-toolkit.json").await;
    assert_eq!(status, 404);
    let (status, st) = invoke(&app.router, "read-status.json").await;
    assert_eq!(
        (status, st),
        (
            200,
            json!({"meta": null, "lastRun": null, "cacheAgeSeconds": null})
        )
    );
}

async fn sync_event(app: &App, name: &str) -> Result<Value, InvocationError> {
    handle_sync_event(
        app.router.clone(),
        &app.engine,
        LambdaEvent::new(fixture(name), Context::default()),
    )
    .await
}

#[tokio::test]
async fn every_sync_trigger_runs_a_sync() {
    let app = app(false).await;
    for name in [
        "sync-apigw-v1.json",
        "sync-apigw-v2.json",
        "sync-function-url.json",
    ] {
        let response = sync_event(&app, name).await.unwrap();
        assert_eq!(response["statusCode"], 200, "{name}: {response}");
        let report: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(report["success"], true, "{name}");
        assert_eq!(
            (report["toolkits"].as_u64(), report["tools"].as_u64()),
            (Some(7), Some(885)),
            "{name}"
        );
        assert!(report["durationMs"].is_u64() && report["failed"].is_array());
    }
    let full = sync_event(&app, "sync-apigw-v2-full.json").await.unwrap();
    let report: Value = serde_json::from_str(full["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (report["mode"].as_str(), report["fetched"].as_u64()),
        (Some("full"), Some(7))
    );

    for name in ["sync-scheduled.json", "sync-direct.json"] {
        let report = sync_event(&app, name).await.unwrap();
        assert_eq!(
            (report["success"].as_bool(), report["mode"].as_str()),
            (Some(true), Some("incremental")),
            "{name}"
        );
        assert_eq!(report["fetched"], 0, "{name}: nothing changed");
    }
    let report = sync_event(&app, "sync-direct-full.json").await.unwrap();
    assert_eq!(
        (report["mode"].as_str(), report["fetched"].as_u64()),
        (Some("full"), Some(7))
    );
}

#[tokio::test]
async fn a_failed_scheduled_sync_fails_the_invocation() {
    let app = app(true).await;
    app.emu.set_listing_fault(
        "auth_configs",
        Fault::always(FaultKind::Status(503), FaultTarget::Both),
    );
    let err = sync_event(&app, "sync-scheduled.json").await.unwrap_err();
    assert!(matches!(err, InvocationError::SyncFailed { .. }), "{err}");
    assert!(err.to_string().contains("auth configs"), "{err}");
    // Over HTTP the same failure is a 500 with the report.
    let response = sync_event(&app, "sync-apigw-v2.json").await.unwrap();
    assert_eq!(response["statusCode"], 500);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["success"], false);
    assert!(body["message"].as_str().unwrap().contains("auth configs"));
}

#[tokio::test]
async fn a_held_lease_is_a_409_over_http_and_a_failed_invocation_otherwise() {
    let app = app(true).await;
    plant_lease(
        &*app.store,
        "other-sync",
        "2026-11-22T00:00:00.000Z",
        u64::MAX / 2,
    )
    .await;
    let response = sync_event(&app, "sync-apigw-v2.json").await.unwrap();
    assert_eq!(response["statusCode"], 409);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["heldBy"], "other-sync");
    assert_eq!(body["since"], "2026-11-22T00:00:00.000Z");
    let err = sync_event(&app, "sync-scheduled.json").await.unwrap_err();
    assert!(matches!(err, InvocationError::NotStarted(_)), "{err}");
}

#[tokio::test]
async fn unrecognised_events_are_refused() {
    let app = app(false).await;
    for event in [json!({"foo": 1}), json!([1]), json!({"full": "yes"})] {
        let err = handle_sync_event(
            app.router.clone(),
            &app.engine,
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, InvocationError::Unrecognised));
    }
}

/// `serve`: the same router over a real socket.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}{BASE}")
}

#[tokio::test]
async fn over_real_http_every_route_and_every_bad_request_answers_json() {
    let app = app(false).await;
    let base = serve(app.router.clone()).await;
    let http = composio_schema_cache::tls::http_client();
    let sync = http.post(format!("{base}/sync")).send().await.unwrap();
    assert_eq!(sync.status(), 200);
    let report: Value = sync.json().await.unwrap();
    assert_eq!(
        (report["success"].as_bool(), report["tools"].as_u64()),
        (Some(true), Some(885))
    );

    let get = |path: &str| http.get(format!("{base}{path}")).send();
    for (path, status) in [
        ("", 200),
        ("/toolkits", 200),
        ("/toolkits/github", 200),
        (
            "/toolkits/github/GITHUB_ACCEPT_A_REPOSITORY_INVITATION",
            200,
        ),
        ("/sync/status", 200),
        ("/openapi.json", 200),
        ("/toolkits/nosuch", 404),
        ("/toolkits/github/NO_SUCH_TOOL", 404),
        ("/toolkits/..%2F..%2Fetc", 400),
        ("/toolkits/GitHub", 400),
        ("/toolkits/a%00b", 400),
        ("/toolkits/%C3%A9", 400),
        ("/toolkits/github/bad%2Fslug", 400),
        ("/toolkits?page=2", 400),
        ("/nope", 404),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "GET {path} answers JSON"
        );
        let body: Value = response.json().await.unwrap();
        if status != 200 {
            assert!(body["error"].is_string(), "GET {path}: {body}");
        }
    }
    // Clients normalise `%2e%2e` away; a raw request does not.
    for path in ["/toolkits/%2e%2e", "/toolkits/%2e%2e/x", "/toolkits/.%2e"] {
        assert_eq!(raw_get(&base, path).await, 400, "raw GET {path}");
    }
    let long = format!("/toolkits/{}", "a".repeat(300));
    assert_eq!(get(&long).await.unwrap().status(), 400);

    let wrong_method = http
        .delete(format!("{base}/toolkits"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.json::<Value>().await.unwrap()["error"].is_string());
    let huge = http
        .post(format!("{base}/sync"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"full\": true, \"pad\": \"{}\"}}",
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let text = http
        .post(format!("{base}/sync"))
        .header("content-type", "text/plain")
        .body("full")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let broken = http
        .post(format!("{base}/sync"))
        .header("content-type", "application/json")
        .body("{\"full\": tru")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let full = http
        .post(format!("{base}/sync?full=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(full.json::<Value>().await.unwrap()["mode"], "full");
}

#[tokio::test]
async fn every_answer_names_its_request_id_and_the_base_with_a_slash_is_the_root() {
    let app = app(true).await;
    let base = serve(app.router.clone()).await;
    let http = composio_schema_cache::tls::http_client();
    let answers = [
        (http.get(format!("{base}/nope")), 404),
        (http.get(format!("{base}/toolkits/github/a/b")), 404),
        (http.delete(format!("{base}/toolkits")), 405),
        (http.post(format!("{base}/toolkits/github")), 405),
        (http.get(format!("{base}/")), 200),
        (http.get(format!("{base}/toolkits/github/a.b")), 400),
    ];
    for (request, status) in answers {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        assert_eq!(response.status().as_u16(), status, "{url}");
        assert!(
            response.headers().contains_key("x-request-id"),
            "{url}: {:?}",
            response.headers()
        );
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        if status == 400 {
            let error = body["error"].as_str().unwrap();
            assert!(
                error.contains("invalid tool slug") && !error.contains("lowercase"),
                "{error}"
            );
        }
    }
    let slash: Value = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let root: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(slash, root);
    assert_eq!(root["toolkits"].as_array().unwrap().len(), 7);
}

/// The head of the answer to a GET sent byte for byte.
async fn raw_head(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = base.trim_start_matches("http://");
    let (host, prefix) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request =
        format!("GET /{prefix}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

#[tokio::test]
async fn only_a_request_line_the_http_server_cannot_parse_is_answered_without_the_router() {
    let app = app(true).await;
    let base = serve(app.router.clone()).await;
    // Far past any real request (128 slugs of 200 characters are 26 KB): the router answers.
    let long = raw_head(&base, &format!("/tools?q={}", "a".repeat(60_000))).await;
    assert!(long.starts_with("http/1.1 200"), "{long}");
    assert!(long.contains("x-request-id"), "{long}");
    // Past hyper's 64 KiB limit on a request line: its own bare 414, documented as such.
    let too_long = raw_head(&base, &format!("/tools?q={}", "a".repeat(70_000))).await;
    assert!(too_long.starts_with("http/1.1 414"), "{too_long}");
    assert!(!too_long.contains("x-request-id"), "{too_long}");
}

/// The body of a gzip answer, decompressed.
fn gunzip(bytes: &[u8]) -> Value {
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes)).unwrap()
}

#[tokio::test]
async fn the_document_is_cached_like_any_answer_and_the_status_is_compressed() {
    let app = app(true).await;
    let base = serve(app.router.clone()).await;
    let http = composio_schema_cache::tls::http_client();

    let doc = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    let headers = doc.headers().clone();
    for name in ["etag", "last-modified", "cache-control", "vary"] {
        assert!(
            headers.contains_key(name),
            "openapi.json: {name}: {headers:?}"
        );
    }
    let plain: Value = doc.json().await.unwrap();
    let etag = headers["etag"].to_str().unwrap();
    let again = http
        .get(format!("{base}/openapi.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let since = http
        .get(format!("{base}/openapi.json"))
        .header("if-modified-since", headers["last-modified"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(since.status(), 304);
    let zipped = http
        .get(format!("{base}/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_ne!(zipped.headers()["etag"], headers["etag"]);
    assert_eq!(gunzip(&zipped.bytes().await.unwrap()), plain);

    // The status is live (its age changes every second): never validated,
    // never stored stale, but compressed like every answer.
    let status = http
        .get(format!("{base}/sync/status"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(status.headers()["content-encoding"], "gzip");
    assert_eq!(status.headers()["cache-control"], "no-cache");
    assert_eq!(status.headers()["vary"], "accept-encoding");
    assert!(!status.headers().contains_key("etag"));
    assert_eq!(
        gunzip(&status.bytes().await.unwrap())["meta"]["toolkitCount"],
        7
    );
}

/// The status of a GET sent byte for byte, with no client-side normalisation.
async fn raw_get(base: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = base.trim_start_matches("http://");
    let (host, prefix) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request =
        format!("GET /{prefix}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn without_a_key_post_sync_is_a_503_naming_the_key() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let base = serve(router(
        Arc::new(CacheReader::new(
            store,
            ReaderConfig::new(Duration::from_secs(5)),
        )),
        None,
    ))
    .await;
    let response = composio_schema_cache::tls::http_client()
        .post(format!("{base}/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "without a key there is no sync");
    let error = response.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("COMPOSIO_API_KEY"), "{error}");
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_cancel_the_sync() {
    let app = app(false).await;
    app.emu
        .set_latency(Duration::from_millis(150), Duration::ZERO);
    let base = serve(app.router.clone()).await;
    let impatient = composio_schema_cache::tls::http_client_builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(
        impatient.post(format!("{base}/sync")).send().await.is_err(),
        "the client gave up"
    );
    let store = app.store.clone();
    let start = std::time::Instant::now();
    loop {
        let published = store.get(&ObjectKey::Meta).await.unwrap().is_some();
        let released = store.get(&ObjectKey::Lease).await.unwrap().is_none();
        if published && released {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the sync finished and released its lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
