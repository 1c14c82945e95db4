//! Notices as EventBridge events (`PutEvents`), on a configurable bus.

use super::{Notice, Notifier, NotifyError, EVENT_SOURCE, EVENT_TYPE};
use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::time::Instant;

pub struct EventBridgeNotifier {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    target: String,
}

impl EventBridgeNotifier {
    /// `bus` is a bus name or ARN; `default` is the account's default bus.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: &str) -> Self {
        Self {
            client,
            bus: bus.to_owned(),
            target: format!("eventbridge:{bus}"),
        }
    }

    /// A client from the standard AWS environment (region, credentials,
    /// `AWS_ENDPOINT_URL[_EVENTBRIDGE]`), on the same HTTPS client as S3.
    pub async fn client_from_env() -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&crate::store::aws_environment().await)
    }

    fn entry(&self, notice: &Notice) -> PutEventsRequestEntry {
        let detail = serde_json::to_string(notice).expect("a notice serializes");
        let mut entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(EVENT_TYPE)
            .detail(detail);
        if let Ok(at) = humantime::parse_rfc3339(&notice.published_at) {
            entry = entry.time(aws_sdk_eventbridge::primitives::DateTime::from(at));
        }
        entry.build()
    }

    fn failed(&self, detail: impl Into<String>) -> NotifyError {
        NotifyError::Failed {
            target: self.target.clone(),
            detail: crate::composio::cut(&detail.into()),
        }
    }
}

#[async_trait]
impl Notifier for EventBridgeNotifier {
    fn target(&self) -> &str {
        &self.target
    }

    /// One `PutEvents` call; the SDK retries throttling and 5xx itself, and
    /// the deadline bounds the whole of it.
    async fn deliver(&self, notice: &Notice, deadline: Instant) -> Result<(), NotifyError> {
        let put = self.client.put_events().entries(self.entry(notice)).send();
        let answer = tokio::time::timeout_at(deadline.into(), put)
            .await
            .map_err(|_| NotifyError::OutOfTime {
                target: self.target.clone(),
            })?
            .map_err(|e| self.failed(DisplayErrorContext(e).to_string()))?;
        if answer.failed_entry_count() == 0 {
            return Ok(());
        }
        let why = answer
            .entries()
            .iter()
            .find_map(|e| {
                e.error_code()
                    .map(|code| format!("{code}: {}", e.error_message().unwrap_or_default()))
            })
            .unwrap_or_else(|| "the event was not accepted".into());
        Err(self.failed(why))
    }
}
