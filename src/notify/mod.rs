//! Change notifications, as a port: after a sync publishes a change set, it
//! tells each configured target (EventBridge, signed webhooks) with a
//! [`Notice`]. Delivery never blocks or fails the publish: what cannot be
//! delivered is reported and delivered by a later sync (at least once, named
//! by the change set's `syncId`).

mod eventbridge;
mod notice;
mod webhook;

pub use eventbridge::EventBridgeNotifier;
pub use notice::{
    changes_url, Notice, NoticeChange, ToolkitChanges, EVENT_SOURCE, EVENT_TYPE,
    NOTICE_BUDGET_BYTES, WEBHOOK_TYPE,
};
pub use webhook::{
    validate_url as validate_webhook_url, WebhookConfig, WebhookNotifier, WebhookSecret,
};

use async_trait::async_trait;
use std::time::Instant;

/// Why one notice did not reach one target. Never holds a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotifyError {
    #[error("{target}: {detail}")]
    Failed { target: String, detail: String },
    #[error("{target}: no answer before the notification deadline")]
    OutOfTime { target: String },
}

#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// A stable name for reports and the delivery record (`eventbridge:default`,
    /// `webhook:https://host/path`): no query string, no credentials.
    fn target(&self) -> &str;

    /// Delivers one notice, retrying within `deadline`.
    async fn deliver(&self, notice: &Notice, deadline: Instant) -> Result<(), NotifyError>;
}
