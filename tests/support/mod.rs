//! Shared by the integration tests: the Composio emulator, a local S3 server
//! (moto, started here), stores and clients wired to them. Everything is on
//! 127.0.0.1 and every wait is bounded.
#![allow(dead_code)]

use composio_schema_cache::composio::{ApiKey, ClientConfig, ComposioClient};
use composio_schema_cache::emulator::{Catalog, Emulator, EmulatorConfig};
use composio_schema_cache::store::{S3Store, Store};
use composio_schema_cache::sync::{SyncEngine, SyncSettings};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::new(Catalog::sample()))
        .await
        .expect("emulator starts")
}

/// Quick retries, so fault tests take milliseconds.
pub fn client_config(emu: &Emulator) -> ClientConfig {
    let mut c = ClientConfig::new(emu.base_url(), ApiKey::new(emu.api_key()).unwrap());
    c.max_rps = None;
    c.min_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(50);
    c.retry_budget = Duration::from_secs(2);
    c.max_retries = 3;
    c.request_timeout = Duration::from_secs(5);
    c
}

pub fn client(emu: &Emulator) -> ComposioClient {
    ComposioClient::new(client_config(emu)).unwrap()
}

pub fn engine(emu: &Emulator, store: Arc<dyn Store>) -> SyncEngine {
    engine_with(client(emu), store)
}

pub fn engine_with(client: ComposioClient, store: Arc<dyn Store>) -> SyncEngine {
    SyncEngine::new(client, store, settings())
}

/// The engine's settings as the defaults set them.
pub fn settings() -> SyncSettings {
    composio_schema_cache::config::Config::defaults().sync_settings()
}

pub struct MotoServer {
    pub endpoint: String,
    child: Child,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto S3 server of our own (the caller may stop it).
pub fn start_moto() -> MotoServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_server.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} for moto: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.trim() == "ready" => {}
        other => {
            let _ = child.kill();
            panic!("moto S3 server did not start ({other:?}); install it with `pip install 'moto[server]'`")
        }
    }
    MotoServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    }
}

/// An s3s-fs server (a second S3 implementation: it checks signatures and
/// lists no ETags) over a fresh directory, with one bucket made.
pub struct S3sFsServer {
    pub endpoint: String,
    child: Child,
    _root: tempfile::TempDir,
}

impl Drop for S3sFsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `S3S_FS` names the binary; `scripts/test` installs it in `.tools/bin`.
pub fn start_s3s_fs() -> S3sFsServer {
    let binary = std::env::var("S3S_FS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/bin/s3s-fs").to_owned());
    let root = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "test", "--secret-key", "test"])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start s3s-fs ({binary}: {e}); scripts/test installs it (cargo install s3s-fs@0.14.1 --features binary --locked --root .tools)")
        });
    let server = S3sFsServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
        _root: root,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "s3s-fs did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// One moto server shared by every test of this test binary.
pub fn shared_moto() -> &'static str {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    &MOTO.get_or_init(start_moto).endpoint
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(composio_schema_cache::store::https_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A fresh bucket on `endpoint`.
pub async fn bucket(endpoint: &str) -> (aws_sdk_s3::Client, String) {
    let client = s3_client(endpoint);
    let name = format!("cache-{}", uuid::Uuid::new_v4().simple());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    (client, name)
}

pub async fn s3_store(endpoint: &str, prefix: &str) -> (S3Store, aws_sdk_s3::Client, String) {
    let (client, name) = bucket(endpoint).await;
    (
        S3Store::new(client.clone(), name.clone(), prefix).unwrap(),
        client,
        name,
    )
}

/// Waits, bounded, until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

use async_trait::async_trait;
use bytes::Bytes;
use composio_schema_cache::store::{
    ETag, ListedObject, ObjectKey, PutCondition, StoreError, StoredObject,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Wraps a store and misbehaves on demand: failed writes and deletes, a
/// panic mid-sync, S3's 409 on the meta, a lease stolen mid-sync.
pub struct FlakyStore {
    pub inner: Arc<dyn Store>,
    /// Fail every toolkit write after this many succeeded.
    pub toolkit_writes_before_failure: AtomicUsize,
    pub fail_meta: AtomicBool,
    /// Fail every toolkit delete.
    pub fail_toolkit_deletes: AtomicBool,
    /// Panic on the next toolkit write (a bug anywhere in a sync).
    pub panic_on_toolkit_write: AtomicBool,
    /// Answer this many meta writes with a 409 `ConditionalRequestConflict`.
    pub meta_conflicts: AtomicUsize,
    /// On the first toolkit write, replace the lease with another holder's.
    pub steal_lease_on_toolkit_write: AtomicBool,
    pub deletes: AtomicUsize,
    /// Every read fails, as if the store went away.
    pub fail_reads: AtomicBool,
    /// Reads that failed so.
    pub failed_reads: AtomicUsize,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            toolkit_writes_before_failure: AtomicUsize::new(usize::MAX),
            fail_meta: AtomicBool::new(false),
            fail_toolkit_deletes: AtomicBool::new(false),
            panic_on_toolkit_write: AtomicBool::new(false),
            meta_conflicts: AtomicUsize::new(0),
            steal_lease_on_toolkit_write: AtomicBool::new(false),
            deletes: AtomicUsize::new(0),
            fail_reads: AtomicBool::new(false),
            failed_reads: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::backend(
                "get",
                key,
                "injected: the store went away",
            ));
        }
        self.inner.get(key).await
    }
    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::backend(
                "head",
                key,
                "injected: the store went away",
            ));
        }
        self.inner.etag(key).await
    }
    async fn put(&self, key: &ObjectKey, body: Bytes, c: PutCondition) -> Result<ETag, StoreError> {
        if matches!(key, ObjectKey::Toolkit(_)) {
            if self.panic_on_toolkit_write.swap(false, Ordering::SeqCst) {
                panic!("injected bug in a toolkit write");
            }
            if self
                .steal_lease_on_toolkit_write
                .swap(false, Ordering::SeqCst)
            {
                plant_lease(&*self.inner, "thief", "2026-01-01T00:00:00Z", u64::MAX).await;
            }
        }
        if matches!(key, ObjectKey::Meta)
            && self
                .meta_conflicts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Conflict {
                key: key.to_string(),
            });
        }
        let fail = match key {
            ObjectKey::Toolkit(_) => {
                let left = self.toolkit_writes_before_failure.load(Ordering::SeqCst);
                if left == 0 {
                    true
                } else {
                    self.toolkit_writes_before_failure
                        .store(left.saturating_sub(1).min(left), Ordering::SeqCst);
                    false
                }
            }
            ObjectKey::Meta => self.fail_meta.load(Ordering::SeqCst),
            _ => false,
        };
        if fail {
            return Err(StoreError::backend("put", key, "injected store failure"));
        }
        self.inner.put(key, body, c).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        if matches!(key, ObjectKey::Toolkit(_)) {
            self.deletes.fetch_add(1, Ordering::SeqCst);
            if self.fail_toolkit_deletes.load(Ordering::SeqCst) {
                return Err(StoreError::backend(
                    "delete",
                    key,
                    "injected delete failure",
                ));
            }
        }
        self.inner.delete(key).await
    }
    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        self.inner.delete_if_match(key, etag).await
    }
    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::backend(
                "list",
                "",
                "injected: the store went away",
            ));
        }
        self.inner.list().await
    }
    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::backend(
                "list",
                "_changes/",
                "injected: the store went away",
            ));
        }
        self.inner.list_changes().await
    }
    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list_snapshots().await
    }
    fn location(&self) -> String {
        format!("flaky {}", self.inner.location())
    }
}

/// The published meta, parsed.
pub async fn meta(store: &dyn Store) -> Option<composio_schema_cache::cache::Meta> {
    let object = store.get(&ObjectKey::Meta).await.unwrap()?;
    Some(serde_json::from_slice(&object.body).unwrap())
}

/// The meta's entries with the objects they name; panics on a missing one.
async fn named_objects(
    store: &dyn Store,
) -> Vec<(
    composio_schema_cache::cache::IndexEntry,
    composio_schema_cache::cache::CachedToolkit,
    Bytes,
)> {
    let Some(meta) = meta(store).await else {
        return Vec::new();
    };
    let mut named = Vec::new();
    for entry in meta.toolkits {
        let object = store
            .get(&ObjectKey::Toolkit(entry.slug.clone()))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("meta names {} but its object is missing", entry.slug));
        let toolkit = serde_json::from_slice(&object.body).unwrap();
        named.push((entry, toolkit, object.body));
    }
    named
}

/// Every object the meta names exists and parses as a toolkit. After a sync
/// that failed half-way, an object may be newer than its index entry: names
/// are fixed (`{slug}.json`), so objects are overwritten in place.
pub async fn assert_meta_names_existing_objects(store: &dyn Store) {
    for (entry, toolkit, _) in named_objects(store).await {
        assert_eq!(toolkit.slug, entry.slug);
    }
}

/// After a successful sync: the meta and the objects agree exactly, each
/// entry records its object's ETag, and each tool's range is that tool.
pub async fn assert_meta_consistent(store: &dyn Store) {
    for (entry, toolkit, body) in named_objects(store).await {
        assert_eq!(toolkit.slug, entry.slug);
        assert_eq!(toolkit.tool_count, entry.tool_count, "{}", entry.slug);
        let etag = store
            .etag(&ObjectKey::Toolkit(entry.slug.clone()))
            .await
            .unwrap();
        assert_eq!(
            entry.etag.as_deref(),
            etag.as_ref().map(|e| e.0.as_str()),
            "{}",
            entry.slug
        );
        for (tool, indexed) in toolkit.tools.iter().zip(&entry.tools) {
            let [start, end] = indexed.range.expect("a range per tool");
            let alone: composio_schema_cache::cache::CachedToolSchema =
                serde_json::from_slice(&body[start..end]).unwrap();
            assert_eq!(&alone, tool, "{}", entry.slug);
        }
        if !entry.stale {
            assert_eq!(
                composio_schema_cache::cache::content_hash(&body),
                entry.content_hash,
                "{}",
                entry.slug
            );
        }
    }
    if let Some(meta) = meta(store).await {
        assert_eq!(meta.toolkit_count, meta.toolkits.len());
        assert_eq!(
            meta.total_tool_count,
            meta.toolkits.iter().map(|e| e.tool_count).sum::<usize>()
        );
    }
}

/// A TCP proxy on 127.0.0.1 that can be cut: the S3 server "goes away" for
/// the client without losing its data (moto keeps none across restarts).
pub struct Cuttable {
    pub endpoint: String,
    open: tokio::sync::watch::Sender<bool>,
}

impl Cuttable {
    pub async fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (open, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*watch.borrow() {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let mut cut = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { endpoint, open }
    }

    pub fn set_open(&self, open: bool) {
        let _ = self.open.send(open);
    }
}

/// Leaves a lease in the store as another sync would: `expires_at_ms` in the
/// past for a dead holder, far ahead for a live one.
pub async fn plant_lease(store: &dyn Store, owner: &str, acquired_at: &str, expires_at_ms: u64) {
    let record = composio_schema_cache::sync::LeaseRecord {
        owner: owner.into(),
        acquired_at: acquired_at.into(),
        expires_at: String::new(),
        expires_at_ms,
        renewed_at_ms: None,
        dead_after_ms: None,
    };
    store
        .put(
            &ObjectKey::Lease,
            serde_json::to_vec(&record).unwrap().into(),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
}

/// An HTTP event fixture of `events/`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An HTTP API (v2) GET event for `path_and_query` with extra headers,
/// built from the `read-root.json` fixture.
pub fn get_event(path_and_query: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut event = fixture("read-root.json");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    event["rawPath"] = path.into();
    event["rawQueryString"] = query.into();
    event["requestContext"]["http"]["path"] = path.into();
    for (name, value) in headers {
        event["headers"][*name] = (*value).into();
    }
    event
}
