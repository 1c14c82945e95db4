//! No crash can hurt the cache: a sync process is killed with SIGKILL at
//! random points, on the directory store and on the local S3 server (moto),
//! the emulator's upstream changing between kills. After every kill, a
//! reader sees one snapshot (every object the meta names is the one it
//! indexes, the feed is what the meta covers, nothing fails); after one
//! clean sync, the cache equals a fresh sync of the final upstream, byte for
//! byte, and replaying the change feed gives exactly the tools it holds.
//!
//! Bounded: a fixed number of kills per store (`KILLS`), each within about
//! one sync's time; the seed is printed so a failure can be replayed
//! (`CRASH_SEED=…`).

mod support;

use composio_schema_cache::cache::changes::{ChangeKind, ChangeRecord};
use composio_schema_cache::cache::Meta;
use composio_schema_cache::emulator::Emulator;
use composio_schema_cache::http::{CacheReader, ReaderConfig};
use composio_schema_cache::store::{FsStore, ObjectKey, Store};
use composio_schema_cache::sync::SyncRequest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Kills per store.
const KILLS: usize = 12;
/// Heartbeat and store bound of the killed syncs: a dead holder's lease
/// lapses after 2 × 100 + 1000 ms + the 5 s margin.
const HEARTBEAT_MS: &str = "100";
const STORE_TIMEOUT_MS: &str = "1000";

/// A small deterministic generator (xorshift), seeded per run.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("CRASH_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Where the killed syncs write, as the CLI's variables say it.
enum Target {
    Dir(std::path::PathBuf),
    S3 { endpoint: String, bucket: String },
}

fn sync_command(emu: &Emulator, target: &Target) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_composio-cache"));
    command
        .arg("sync")
        .env("COMPOSIO_API_KEY", emu.api_key())
        .env("COMPOSIO_BASE_URL", emu.base_url())
        .env("COMPOSIO_MAX_RPS", "0")
        .env("SYNC_CONCURRENCY", "1")
        .env("SYNC_TIMEOUT_MS", "20000")
        .env("SYNC_STORE_TIMEOUT_MS", STORE_TIMEOUT_MS)
        .env("SYNC_LEASE_TTL_MS", "60000")
        .env("SYNC_LEASE_HEARTBEAT_MS", HEARTBEAT_MS)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match target {
        Target::Dir(dir) => {
            command.env("CACHE_DIR", dir).env_remove("CACHE_BUCKET");
        }
        Target::S3 { endpoint, bucket } => {
            command
                .env("CACHE_BUCKET", bucket)
                .env("CACHE_S3_FORCE_PATH_STYLE", "true")
                .env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env_remove("AWS_PROFILE");
        }
    }
    command
}

/// Runs a sync to its end; whether it published.
async fn clean_sync(emu: &Emulator, target: &Target) -> bool {
    let mut command = sync_command(emu, target);
    command.stderr(std::process::Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Refusals while a dead holder's lease lapses are expected.
        if !stderr.contains("already running") {
            eprintln!("sync: {}", stderr.trim());
        }
    }
    output.status.success()
}

/// Starts a sync and kills it with SIGKILL after `after`.
async fn killed_sync(emu: &Emulator, target: &Target, after: Duration) {
    let mut child = sync_command(emu, target).spawn().unwrap();
    tokio::time::sleep(after).await;
    // SIGKILL on unix: no unwinding, no release, no report.
    let _ = child.kill();
    let _ = child.wait();
}

/// What one reader sees: the meta, and each object it names, read now.
/// Panics if the index and the objects are not from the same sync.
async fn assert_one_snapshot(store: Arc<dyn Store>, when: &str) -> Option<Meta> {
    let reader = CacheReader::new(store.clone(), ReaderConfig::new(Duration::ZERO));
    let view = reader
        .meta()
        .await
        .unwrap_or_else(|e| panic!("{when}: the meta: {e}"))
        .view?;
    for entry in &view.meta.toolkits {
        let bytes = reader
            .toolkit_bytes(entry)
            .await
            .unwrap_or_else(|e| panic!("{when}: {}: {e}", entry.slug));
        assert!(
            bytes.matches_index,
            "{when}: {}: the object is not the one its index entry describes",
            entry.slug
        );
        let toolkit: composio_schema_cache::cache::CachedToolkit =
            serde_json::from_slice(&bytes.body).unwrap();
        assert_eq!(
            (toolkit.tool_count, toolkit.tools.len()),
            (entry.tool_count, entry.tool_count),
            "{when}: {}: the index and the object disagree",
            entry.slug
        );
        for (index, tool) in entry.tools.iter().enumerate() {
            let found = reader
                .tool(
                    entry,
                    index,
                    composio_schema_cache::http::Encoding::Identity,
                )
                .await
                .unwrap_or_else(|e| panic!("{when}: {}: {e}", tool.slug));
            assert!(
                found.is_some_and(|(_, indexed)| indexed),
                "{when}: {}",
                tool.slug
            );
        }
    }
    let (records, complete) = reader.change_records(&view).await.unwrap();
    assert!(complete, "{when}: the meta names a record the feed lacks");
    assert!(records
        .iter()
        .all(|r| r.at() <= view.meta.last_synced_at.as_str()));
    Some(view.meta.clone())
}

/// The feed replayed from nothing: the tools it says exist, each added once
/// more than removed.
async fn replay_feed(store: &dyn Store) -> BTreeSet<(String, String)> {
    let mut present = BTreeSet::new();
    for listed in store.list_changes().await.unwrap() {
        let object = store.get(&listed.key).await.unwrap().unwrap();
        let record: ChangeRecord = serde_json::from_slice(&object.body).unwrap();
        for change in record.changes {
            let tool = (change.toolkit.clone(), change.tool.clone());
            match change.kind {
                ChangeKind::Added => {
                    assert!(present.insert(tool.clone()), "added twice: {tool:?}")
                }
                ChangeKind::Removed => {
                    assert!(present.remove(&tool), "removed, never added: {tool:?}")
                }
                ChangeKind::Changed | ChangeKind::Deprecated => {
                    assert!(present.contains(&tool), "changed, never added: {tool:?}")
                }
            }
        }
    }
    present
}

/// Every tool and trigger type the meta names (the feed reports both).
fn tools_of(meta: &Meta) -> BTreeSet<(String, String)> {
    meta.toolkits
        .iter()
        .flat_map(|e| {
            let tools = e.tools.iter().map(|t| t.slug.clone());
            let triggers = e.triggers.iter().map(|t| t.slug.clone());
            tools.chain(triggers).map(|slug| (e.slug.to_string(), slug))
        })
        .collect()
}

/// Every toolkit's plain view and snapshot, by slug.
async fn contents(store: &dyn Store, meta: &Meta) -> BTreeMap<String, (Vec<u8>, Vec<u8>)> {
    let mut all = BTreeMap::new();
    for entry in &meta.toolkits {
        let view = store
            .get(&ObjectKey::Toolkit(entry.slug.clone()))
            .await
            .unwrap()
            .unwrap();
        let hash = composio_schema_cache::store::SnapshotHash::parse(&entry.content_hash).unwrap();
        let snapshot = store
            .get(&ObjectKey::Snapshot(entry.slug.clone(), hash))
            .await
            .unwrap()
            .unwrap();
        all.insert(
            entry.slug.to_string(),
            (view.body.to_vec(), snapshot.body.to_vec()),
        );
    }
    all
}

/// The whole scenario on one store; returns how long the killed holder's
/// lease blocked the clean sync.
async fn kill_at_random(target: Target, store: Arc<dyn Store>, fresh: Arc<dyn Store>) -> Duration {
    let mut random = Random::seeded();
    let emu = emulator().await;
    // A few milliseconds a call, so a sync lasts long enough to be killed
    // anywhere in it.
    emu.set_latency(Duration::from_millis(30), Duration::ZERO);
    assert!(clean_sync(&emu, &target).await, "the first sync");
    let toolkits = ["browseai", "firecrawl", "github", "googletasks", "linkedin"];
    // How long a sync of changes takes, from the process's start: kills
    // land anywhere in it (and a little after).
    for toolkit in toolkits {
        emu.publish_new_version(toolkit);
    }
    let started = Instant::now();
    assert!(clean_sync(&emu, &target).await);
    let one_sync = started.elapsed();
    for kill in 0..KILLS {
        // Most toolkits change each time, so most of a sync is writing.
        for toolkit in toolkits {
            if random.below(4) > 0 {
                emu.publish_new_version(toolkit);
            }
        }
        let after = Duration::from_millis(random.below(one_sync.as_millis() as u64 * 6 / 5 + 1));
        killed_sync(&emu, &target, after).await;
        let when = format!("after kill {kill} at {after:?}");
        assert_one_snapshot(store.clone(), &when).await;
        // The lease a killed holder leaves is taken over after its heartbeat
        // lapses (measured below, once); the other kills do not wait for it.
        if kill + 1 < KILLS {
            store.delete(&ObjectKey::Lease).await.unwrap();
        }
    }
    // One more kill, once it holds the lease, waited out as the next
    // scheduled sync would: how long a killed sync blocks the next.
    emu.publish_new_version("linkedin");
    let mut child = sync_command(&emu, &target).spawn().unwrap();
    for _ in 0..400 {
        if store.get(&ObjectKey::Lease).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        store.get(&ObjectKey::Lease).await.unwrap().is_some(),
        "killed holding it"
    );
    let blocked = Instant::now();
    let mut published = false;
    for _ in 0..100 {
        if clean_sync(&emu, &target).await {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blocked = blocked.elapsed();
    assert!(
        published,
        "a clean sync publishes once the dead lease lapses"
    );
    let meta = assert_one_snapshot(store.clone(), "after the clean sync")
        .await
        .unwrap();

    // What an uninterrupted history gives: one sync of the final upstream.
    let report = engine(&emu, fresh.clone())
        .run(SyncRequest::full())
        .await
        .unwrap();
    assert!(report.success);
    let fresh_meta = meta_of(&*fresh).await;
    let index = |m: &Meta| -> Vec<(String, String, usize)> {
        m.toolkits
            .iter()
            .map(|e| (e.slug.to_string(), e.content_hash.clone(), e.tool_count))
            .collect()
    };
    assert_eq!(index(&meta), index(&fresh_meta));
    assert_eq!(
        contents(&*store, &meta).await,
        contents(&*fresh, &fresh_meta).await
    );
    // The feed lost nothing and invented nothing.
    assert_eq!(replay_feed(&*store).await, tools_of(&meta));
    // Nothing is left of the killed syncs: no snapshot the meta does not name
    // (the clean sync keeps the ones its predecessor's index named), no lease.
    let named: BTreeSet<String> = meta
        .toolkits
        .iter()
        .map(|e| e.content_hash.clone())
        .collect();
    let leftover = store
        .list_snapshots()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| match &o.key {
            ObjectKey::Snapshot(_, hash) => !named.contains(hash.as_str()),
            _ => false,
        })
        .count();
    assert!(leftover <= toolkits.len(), "{leftover} snapshots left");
    assert!(store.get(&ObjectKey::Lease).await.unwrap().is_none());
    blocked
}

async fn meta_of(store: &dyn Store) -> Meta {
    let object = store.get(&ObjectKey::Meta).await.unwrap().unwrap();
    serde_json::from_slice(&object.body).unwrap()
}

#[tokio::test]
async fn killed_syncs_on_a_directory_never_show_two_snapshots_and_one_clean_sync_converges() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = "composio-schemas/";
    let store: Arc<dyn Store> = Arc::new(FsStore::new(dir.path(), prefix).unwrap());
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh: Arc<dyn Store> = Arc::new(FsStore::new(fresh_dir.path(), prefix).unwrap());
    let blocked = kill_at_random(Target::Dir(dir.path().into()), store, fresh).await;
    eprintln!("a killed sync blocked the next for {blocked:?}");
    // The killed writes' temporary files are gone.
    let mut temporaries = Vec::new();
    for sub in ["", "_changes", "_objects"] {
        let Ok(entries) = std::fs::read_dir(dir.path().join(prefix).join(sub)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                temporaries.push(format!("{sub}/{name}"));
            }
        }
    }
    assert!(temporaries.is_empty(), "{temporaries:?}");
}

#[tokio::test]
async fn killed_syncs_on_s3_never_show_two_snapshots_and_one_clean_sync_converges() {
    let endpoint = shared_moto().to_owned();
    let (client, bucket) = bucket(&endpoint).await;
    let prefix = "composio-schemas/";
    let store: Arc<dyn Store> = Arc::new(
        composio_schema_cache::store::S3Store::new(client.clone(), bucket.clone(), prefix).unwrap(),
    );
    let (fresh, _, _) = s3_store(&endpoint, prefix).await;
    let blocked = kill_at_random(Target::S3 { endpoint, bucket }, store, Arc::new(fresh)).await;
    eprintln!("a killed sync blocked the next for {blocked:?}");
}
