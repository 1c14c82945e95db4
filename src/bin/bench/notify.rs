//! From publish to delivery: how long after a sync's meta lands a signed
//! webhook reaches a receiver on loopback, side by side with the same
//! receiver answering one plain POST of the same size (the floor: what the
//! network and the receiver cost alone).

use crate::stats::{ms, ratio_spread, Samples, Table};
use async_trait::async_trait;
use bytes::Bytes;
use composio_schema_cache::composio::{ApiKey, ClientConfig, ComposioClient};
use composio_schema_cache::config::Config;
use composio_schema_cache::emulator::{Catalog, Emulator, EmulatorConfig};
use composio_schema_cache::notify::{Notifier, WebhookConfig, WebhookNotifier, WebhookSecret};
use composio_schema_cache::store::{
    ETag, FsStore, ListedObject, ObjectKey, PutCondition, Store, StoreError, StoredObject,
};
use composio_schema_cache::sync::{SyncEngine, SyncRequest};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A store that notes when each meta write completed.
struct PublishClock {
    inner: FsStore,
    published: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Store for PublishClock {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        self.inner.get(key).await
    }
    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        self.inner.etag(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let etag = self.inner.put(key, body, condition).await?;
        if *key == ObjectKey::Meta {
            self.published.lock().unwrap().push(Instant::now());
        }
        Ok(etag)
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
        self.inner.location()
    }
}

/// A receiver that notes when each POST arrived and how big it was.
async fn receiver() -> Result<(String, Arc<Mutex<Vec<(Instant, usize)>>>), String> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((Instant::now(), body.len()));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/hook",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, arrivals))
}

/// `runs` syncs that each publish one changed toolkit, every one announced
/// to a webhook; and as many plain POSTs of a notice's size.
pub async fn publish_to_delivery(
    catalog: &Catalog,
    runs: usize,
    table: &mut Table,
) -> Result<(), String> {
    let emu = Emulator::start(EmulatorConfig::new(catalog.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Arc::new(PublishClock {
        inner: FsStore::new(dir.path(), "composio-schemas/").map_err(|e| e.to_string())?,
        published: Mutex::new(Vec::new()),
    });
    let (url, arrivals) = receiver().await?;
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let hook: Arc<dyn Notifier> = Arc::new(WebhookNotifier::new(
        &url,
        &secret,
        WebhookConfig::default(),
    )?);
    let mut config = ClientConfig::new(emu.base_url(), ApiKey::new(emu.api_key()).ok_or("key")?);
    config.max_rps = None;
    let engine = SyncEngine::new(
        ComposioClient::new(config).map_err(|e| e.to_string())?,
        store.clone(),
        Config::defaults().sync_settings(),
    )
    .with_notifiers(vec![hook]);
    let first = engine
        .run(SyncRequest::full())
        .await
        .map_err(|e| e.to_string())?;
    if !first.success {
        return Err(format!("the first sync failed: {:?}", first.message));
    }
    let slugs: Vec<String> = catalog.toolkits.keys().cloned().collect();
    let (mut latency, mut floor) = (Samples::default(), Samples::default());
    let client = composio_schema_cache::tls::http_client();
    for run in 0..runs {
        emu.publish_new_version(&slugs[run % slugs.len()]);
        let report = engine
            .run(SyncRequest::default())
            .await
            .map_err(|e| e.to_string())?;
        let delivered = report.notifications.as_ref().map_or(0, |n| n.delivered);
        if !report.success || delivered != 1 {
            return Err(format!(
                "run {run}: not announced: {:?}",
                report.notifications
            ));
        }
        let published = *store.published.lock().unwrap().last().ok_or("no publish")?;
        let (arrived, size) = *arrivals.lock().unwrap().last().ok_or("no delivery")?;
        latency.push(arrived.saturating_duration_since(published));
        let sent = Instant::now();
        client
            .post(&url)
            .body(vec![b'x'; size])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        floor.push(sent.elapsed());
    }
    emu.stop();
    let (ratio, low, high) = ratio_spread(&latency, &floor);
    table.row(
        "publish → webhook delivered (one changed toolkit)",
        latency.spread_ms(),
        format!(
            "from the meta's write completing to the receiver holding the signed POST: change record, prune, delivery cursor read, record read, notice, signature, POST; a plain POST of the same size to the same receiver takes {} ({:.1}× that, {:.1}–{:.1}×); EventBridge adds its PutEvents round trip (not measured here: no AWS)",
            ms(floor.median()),
            ratio,
            low,
            high
        ),
    );
    Ok(())
}
