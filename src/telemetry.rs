//! Metrics as CloudWatch Embedded Metric Format records, through the
//! `metrics` facade: Lambda ships stdout to CloudWatch Logs, which turns the
//! records into metrics, with no API call and no credentials. Without a
//! collector installed, recording is a no-op.
//!
//! A sync emits one record per run. The read side aggregates: one record per
//! minute, or per 100 requests, whichever comes first, not one per request.

use crate::sync::SyncReport;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_cloudwatch_embedded::{Builder, Collector};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where and whether metrics go.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub namespace: String,
    /// The `FunctionName` dimension.
    pub function: String,
    /// Lambda reads stdout; elsewhere stdout is the CLI's answer, so stderr.
    pub to_stdout: bool,
}

impl MetricsConfig {
    /// From the environment: `METRICS_FORMAT` (`emf`, or `none`; `emf` by
    /// default under Lambda), `METRICS_NAMESPACE`, `AWS_LAMBDA_FUNCTION_NAME`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let lambda = get("AWS_LAMBDA_FUNCTION_NAME").filter(|f| !f.is_empty());
        let format = get("METRICS_FORMAT").map(|f| f.to_ascii_lowercase());
        Self {
            enabled: match format.as_deref() {
                Some("emf") => true,
                Some(_) => false,
                None => lambda.is_some(),
            },
            namespace: get("METRICS_NAMESPACE")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "ComposioSchemaCache".into()),
            function: lambda.clone().unwrap_or_else(|| "local".into()),
            to_stdout: lambda.is_some(),
        }
    }
}

struct Installed {
    collector: &'static Collector,
    to_stdout: bool,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the EMF collector as the global recorder, once.
pub fn init_metrics(config: &MetricsConfig) {
    if !config.enabled || INSTALLED.get().is_some() {
        return;
    }
    let built = Builder::new()
        .cloudwatch_namespace(config.namespace.clone())
        .with_dimension("FunctionName", config.function.clone())
        .emit_zeros(true)
        .init();
    match built {
        Ok(collector) => {
            describe();
            let _ = INSTALLED.set(Installed {
                collector,
                to_stdout: config.to_stdout,
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off: the EMF collector could not be installed")
        }
    }
}

fn describe() {
    describe_histogram!("SyncDurationMs", Unit::Milliseconds, "how long a sync took");
    for (name, what) in [
        (
            "SyncSucceeded",
            "1 when a sync published, 0 when it did not",
        ),
        ("ToolkitsSynced", "toolkits in the published index"),
        ("ToolsSynced", "tools in the published index"),
        ("ToolkitsFailed", "toolkits that failed this run"),
        ("ToolkitsStale", "toolkits served from their last good copy"),
        ("UpstreamRequests", "requests to Composio, retries included"),
        ("UpstreamThrottled", "429s from Composio"),
        (
            "UpstreamRetries",
            "requests sent again after an error or a 429",
        ),
        ("ObjectsWritten", "toolkit objects written"),
        (
            "ToolsChanged",
            "tools added, removed, changed or deprecated",
        ),
        (
            "NotificationsFailed",
            "change notifications not delivered this run (each is retried by the next sync)",
        ),
        ("CacheHits", "read answers from the warm cache"),
        (
            "CacheMisses",
            "read answers built or fetched from the store",
        ),
    ] {
        describe_counter!(name, Unit::Count, what);
    }
    describe_histogram!("ReadLatencyMs", Unit::Milliseconds, "time to answer a read");
    describe_gauge!(
        "CacheAgeSeconds",
        Unit::Seconds,
        "age of the published cache"
    );
}

fn flush() {
    let Some(installed) = INSTALLED.get() else {
        return;
    };
    let result = if installed.to_stdout {
        installed.collector.flush(std::io::stdout().lock())
    } else {
        installed.collector.flush(std::io::stderr().lock())
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not write the metrics record");
    }
}

/// One record for one sync run.
pub fn record_sync(report: &SyncReport) {
    if INSTALLED.get().is_none() {
        return;
    }
    histogram!("SyncDurationMs").record(report.duration_ms as f64);
    counter!("SyncSucceeded").increment(u64::from(report.success));
    for (name, value) in [
        ("ToolkitsSynced", report.toolkits),
        ("ToolsSynced", report.tools),
        ("ToolkitsFailed", report.failed.len()),
        ("ToolkitsStale", report.stale),
        ("ObjectsWritten", report.written),
        (
            "ToolsChanged",
            report.changes.map(|c| c.tools_total()).unwrap_or(0),
        ),
        (
            "NotificationsFailed",
            report.notifications.as_ref().map_or(0, |n| n.failed.len()),
        ),
    ] {
        counter!(name).increment(value as u64);
    }
    counter!("UpstreamRequests").increment(report.upstream_requests);
    counter!("UpstreamThrottled").increment(report.upstream_throttled);
    counter!("UpstreamRetries").increment(report.upstream_retries);
    flush();
}

/// The read side's aggregate, flushed when due.
struct ReadWindow {
    since: Instant,
    requests: u64,
}

static READ_WINDOW: Mutex<Option<ReadWindow>> = Mutex::new(None);
static LAST_HITS: AtomicU64 = AtomicU64::new(0);
static LAST_MISSES: AtomicU64 = AtomicU64::new(0);

const READ_FLUSH_EVERY: Duration = Duration::from_secs(60);
/// An EMF record holds at most 100 values of one metric.
const READ_FLUSH_AFTER: u64 = 100;

/// One read: its latency now; hits, misses (cumulative counts of the
/// reader) and the cache's age when a record is due.
pub fn record_read(
    latency: Duration,
    cache_counts: impl FnOnce() -> (u64, u64),
    age: impl FnOnce() -> Option<Duration>,
) {
    if INSTALLED.get().is_none() {
        return;
    }
    histogram!("ReadLatencyMs").record(latency.as_secs_f64() * 1000.0);
    let due = {
        let mut window = READ_WINDOW.lock().unwrap_or_else(|p| p.into_inner());
        let w = window.get_or_insert(ReadWindow {
            since: Instant::now(),
            requests: 0,
        });
        w.requests += 1;
        let due = w.requests >= READ_FLUSH_AFTER || w.since.elapsed() >= READ_FLUSH_EVERY;
        if due {
            *window = None;
        }
        due
    };
    if !due {
        return;
    }
    let (hits, misses) = cache_counts();
    counter!("CacheHits").increment(hits.saturating_sub(LAST_HITS.swap(hits, Ordering::Relaxed)));
    counter!("CacheMisses")
        .increment(misses.saturating_sub(LAST_MISSES.swap(misses, Ordering::Relaxed)));
    if let Some(age) = age() {
        gauge!("CacheAgeSeconds").set(age.as_secs_f64());
    }
    flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn on_under_lambda_or_when_asked() {
        let config = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            MetricsConfig::from_lookup(|k| map.get(k).cloned())
        };
        let local = config(&[]);
        assert!(!local.enabled);
        let lambda = config(&[("AWS_LAMBDA_FUNCTION_NAME", "sync-fn")]);
        assert!(lambda.enabled && lambda.to_stdout);
        assert_eq!(
            (lambda.namespace.as_str(), lambda.function.as_str()),
            ("ComposioSchemaCache", "sync-fn")
        );
        let asked = config(&[("METRICS_FORMAT", "EMF"), ("METRICS_NAMESPACE", "Mine")]);
        assert!(asked.enabled && !asked.to_stdout);
        assert_eq!(asked.namespace, "Mine");
        assert!(
            !config(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                ("METRICS_FORMAT", "none")
            ])
            .enabled
        );
    }
}
