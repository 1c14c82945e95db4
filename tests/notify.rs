//! Change notifications: an event on an EventBridge bus (moto's, routed by a
//! rule to a queue read back with boto3), webhooks verified by the Standard
//! Webhooks project's Python package, and receivers that are down, slow or
//! redirect, none of which may hurt the publish.

mod support;

use composio_schema_cache::notify::{
    EventBridgeNotifier, Notifier, WebhookConfig, WebhookNotifier, WebhookSecret, EVENT_SOURCE,
    EVENT_TYPE,
};
use composio_schema_cache::store::{MemoryStore, ObjectKey, Store};
use composio_schema_cache::sync::{SyncEngine, SyncReport, SyncRequest};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// On a free port, or on `port`.
    fn start(port: Option<u16>) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("deliveries.jsonl");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut command = Command::new(python());
        command.arg(script).arg(SECRET).arg(&log);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?}; is standardwebhooks installed (scripts/python-tools)?"))
            .parse()
            .unwrap();
        Receiver {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn deliveries(&self, path: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|d| d["path"] == path)
            .collect()
    }
}

fn quick_webhooks() -> WebhookConfig {
    WebhookConfig {
        attempts: 3,
        attempt_timeout: Duration::from_secs(1),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

fn webhook(url: &str) -> Arc<dyn Notifier> {
    let secret = WebhookSecret::parse(SECRET).unwrap();
    Arc::new(WebhookNotifier::new(url, &secret, quick_webhooks()).unwrap())
}

fn engine(
    emu: &composio_schema_cache::emulator::Emulator,
    store: Arc<dyn Store>,
    notifiers: Vec<Arc<dyn Notifier>>,
) -> SyncEngine {
    let mut settings = settings();
    settings.notify_timeout = Duration::from_millis(1500);
    SyncEngine::new(client(emu), store, settings).with_notifiers(notifiers)
}

async fn sync(engine: &SyncEngine) -> SyncReport {
    let report = engine.run(SyncRequest::default()).await.unwrap();
    assert!(report.success, "{:?}", report.message);
    report
}

fn body_data(delivery: &Value) -> Value {
    let body: Value = serde_json::from_str(delivery["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "composio.schemas.changed");
    body["data"].clone()
}

#[tokio::test]
async fn webhooks_are_signed_per_standard_webhooks_and_a_retry_keeps_its_id() {
    let emu = emulator().await;
    let receiver = Receiver::start(None);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hooks = vec![
        webhook(&receiver.url("/ok")),
        webhook(&receiver.url("/flaky")),
    ];
    let engine = engine(&emu, store, hooks);
    let first = sync(&engine).await;
    let sent = first
        .notifications
        .clone()
        .expect("notifications are reported");
    assert_eq!((sent.delivered, sent.failed.len(), sent.pending), (2, 0, 0));

    let ok = receiver.deliveries("/ok");
    assert_eq!(ok.len(), 1);
    assert_eq!(
        ok[0]["verified"], true,
        "standardwebhooks verifies the signature"
    );
    assert_eq!(ok[0]["id"], format!("msg_{}", first.sync_id));
    let data = body_data(&ok[0]);
    assert_eq!(data["syncId"], first.sync_id);
    assert_eq!(data["counts"]["added"], first.tools);
    let github = data["toolkits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "github")
        .unwrap();
    assert_eq!(github["added"], 831, "tools only");
    assert_eq!(github["triggers"]["added"], 6, "its trigger types apart");
    assert_eq!(data["counts"]["triggers"]["added"], 6);
    let changes = data["changes"].as_array().unwrap();
    let triggers = changes.iter().filter(|c| c["subject"] == "trigger").count();
    assert_eq!((changes.len(), triggers), (first.tools + 6, 6));
    for delivery in receiver
        .deliveries("/ok")
        .iter()
        .chain(&receiver.deliveries("/flaky"))
    {
        let text = delivery.to_string();
        assert!(
            !text.contains(&emu.api_key()),
            "the Composio key never travels"
        );
    }

    let flaky = receiver.deliveries("/flaky");
    assert_eq!(flaky.len(), 2, "a 503 is tried again");
    assert_eq!(flaky[0]["id"], flaky[1]["id"], "with the same webhook-id");
    assert!(flaky.iter().all(|d| d["verified"] == true));

    let quiet = sync(&engine).await;
    assert_eq!(quiet.notifications.unwrap().delivered, 0);
    assert_eq!(
        receiver.deliveries("/ok").len(),
        1,
        "nothing changed, nothing sent"
    );

    emu.publish_new_version("googletasks");
    let changed = sync(&engine).await;
    assert_eq!(changed.notifications.unwrap().delivered, 2);
    let ok = receiver.deliveries("/ok");
    let data = body_data(&ok[1]);
    assert_eq!(data["syncId"], changed.sync_id);
    assert_eq!(data["toolkits"][0]["slug"], "googletasks");
    assert_eq!(data["toolkits"][0]["added"], 1);
    assert_eq!(data["toolkits"][0]["toVersion"], "20260101_14");
}

#[tokio::test]
async fn receivers_that_are_down_slow_or_redirect_leave_the_publish_intact_and_get_it_later() {
    let emu = emulator().await;
    let receiver = Receiver::start(None);
    // A port nothing listens on yet: the receiver that is down.
    let down_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down_url = format!("http://127.0.0.1:{down_port}/ok");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hooks = vec![
        webhook(&down_url),
        webhook(&receiver.url("/slow")),
        webhook(&receiver.url("/redirect")),
        webhook(&receiver.url("/reject")),
    ];
    let engine = engine(&emu, store.clone(), hooks.clone());
    let first = sync(&engine).await;
    assert!(first.published);
    assert!(store.get(&ObjectKey::Meta).await.unwrap().is_some());
    let report = first.notifications.clone().unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(report.pending, 4, "{report:?}");
    let why = |target: &str| {
        report
            .failed
            .iter()
            .find(|f| f.target.ends_with(target))
            .unwrap_or_else(|| panic!("{target} is reported: {report:?}"))
            .error
            .clone()
    };
    assert!(why(&format!("{down_port}/ok")).contains("could not connect"));
    assert!(why("/slow").contains("no answer"), "{}", why("/slow"));
    assert!(why("/redirect").contains("redirects are not followed"));
    assert!(why("/reject").contains("HTTP 400"));
    assert!(report.failed.iter().all(|f| f.sync_id == first.sync_id));
    assert_eq!(
        receiver.deliveries("/redirect").len(),
        1,
        "a redirect is not retried"
    );
    assert_eq!(receiver.deliveries("/reject").len(), 1, "nor is a 400");
    assert!(receiver.deliveries("/ok").is_empty(), "nor followed");

    // The receiver that was down comes up: the next sync, which changes
    // nothing, delivers what it is owed, named by the first sync.
    let back = Receiver::start(Some(down_port));
    let second = sync(&engine).await;
    let owed = second.notifications.unwrap();
    assert_eq!(owed.delivered, 1, "{owed:?}");
    let delivered = back.deliveries("/ok");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["id"], format!("msg_{}", first.sync_id));
    assert_eq!(delivered[0]["verified"], true);
    assert_eq!(owed.pending, 3, "the others are still owed");
}

#[tokio::test]
async fn a_published_change_set_is_an_event_on_the_bus_in_the_documented_shape() {
    let endpoint = shared_moto();
    let emu = emulator().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/eventbridge_queue.py"
    );
    let helper = |args: &[&str]| -> String {
        let out = Command::new(python())
            .arg(script)
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let queue = helper(&["setup", endpoint, EVENT_SOURCE]);
    let events = |queue: &str| -> Vec<Value> {
        serde_json::from_str(&helper(&["read", endpoint, queue])).unwrap()
    };
    let creds = aws_sdk_eventbridge::config::Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_eventbridge::config::Builder::new()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .http_client(composio_schema_cache::store::https_client())
        .build();
    let bus = EventBridgeNotifier::new(aws_sdk_eventbridge::Client::from_conf(config), "default");
    assert_eq!(bus.target(), "eventbridge:default");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine(&emu, store, vec![Arc::new(bus)]);

    let first = sync(&engine).await;
    assert_eq!(first.notifications.clone().unwrap().delivered, 1);
    let got = events(&queue);
    assert_eq!(got.len(), 1, "{got:?}");
    let event = &got[0];
    assert_eq!(event["source"], EVENT_SOURCE);
    assert_eq!(event["detail-type"], EVENT_TYPE);
    let detail = &event["detail"];
    assert_eq!(detail["syncId"], first.sync_id);
    assert_eq!(detail["publishedAt"].as_str().unwrap().len(), 24);
    assert_eq!(detail["counts"]["added"], first.tools);
    assert_eq!(detail["toolkits"].as_array().unwrap().len(), first.toolkits);
    assert!(detail.get("truncated").is_none());

    let quiet = sync(&engine).await;
    assert_eq!(quiet.notifications.unwrap().delivered, 0);
    assert!(
        events(&queue).is_empty(),
        "a sync that changed nothing sends nothing"
    );

    emu.remove_tool("linkedin", "LINKEDIN_GET_MY_INFO");
    let changed = sync(&engine).await;
    let got = events(&queue);
    assert_eq!(got.len(), 1);
    let detail = &got[0]["detail"];
    assert_eq!(detail["syncId"], changed.sync_id);
    assert_eq!(detail["counts"]["removed"], 1);
    assert_eq!(detail["changes"][0]["tool"], "LINKEDIN_GET_MY_INFO");
    assert_eq!(detail["changes"][0]["kind"], "removed");
}

#[tokio::test]
async fn a_change_set_a_sync_did_not_announce_is_announced_by_the_next() {
    let emu = emulator().await;
    let receiver = Receiver::start(None);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let announcing = engine(&emu, store.clone(), vec![webhook(&receiver.url("/ok"))]);
    let first = sync(&announcing).await;
    assert_eq!(first.notifications.unwrap().delivered, 1);

    // A sync that published and then died before its notify step leaves the
    // store as one that never notifies does.
    emu.remove_tool("linkedin", "LINKEDIN_GET_MY_INFO");
    let silent = engine(&emu, store.clone(), Vec::new());
    let unannounced = sync(&silent).await;
    assert_eq!(unannounced.changes.unwrap().removed, 1);
    assert!(unannounced.notifications.is_none());

    let next = sync(&announcing).await;
    assert_eq!(
        next.changes.unwrap().total(),
        0,
        "this sync changed nothing itself"
    );
    assert_eq!(next.notifications.unwrap().delivered, 1);
    let got = receiver.deliveries("/ok");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["id"], format!("msg_{}", unannounced.sync_id));
    let data = body_data(&got[1]);
    assert_eq!(data["changes"][0]["tool"], "LINKEDIN_GET_MY_INFO");
    assert_eq!(data["changes"][0]["kind"], "removed");
}
