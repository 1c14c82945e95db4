//! The notify step, after the publish and outside it: every change set in
//! the change feed that a target has not had yet (its own, and any an
//! earlier sync could not deliver) goes to it, oldest first, within a
//! bounded time. Each target's progress is one cursor, the name of the last
//! change record it had, kept in `_notifications.json`: a notice is sent
//! again until its cursor moves past it, so delivery is at least once, and
//! every resend carries the same `syncId` (a webhook's `webhook-id`).

use super::{SyncEngine, SyncReport};
use crate::cache::changes::ChangeRecord;
use crate::notify::{changes_url, Notice, Notifier, NOTICE_BUDGET_BYTES};
use crate::store::{ChangesName, ObjectKey, PutCondition};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Change sets one target may be sent in one sync: a receiver that was down
/// for days catches up over several syncs, each bounded.
pub const MAX_NOTICES_PER_TARGET: usize = 20;

/// `_notifications.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    /// Per target, the last change record it was sent.
    #[serde(default)]
    pub delivered_through: BTreeMap<String, String>,
}

/// What the notify step did, in the report and `/sync/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsReport {
    /// Notices delivered this run (one per change set and target).
    pub delivered: usize,
    /// Notices that could not be delivered; each is tried again by the next sync.
    pub failed: Vec<NotificationFailure>,
    /// Notices still owed after this run (failed, or beyond this run's share).
    pub pending: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFailure {
    pub target: String,
    pub sync_id: String,
    pub error: String,
}

/// One target's share of a run: which change sets, from where it stood.
struct Owed<'a> {
    notifier: &'a Arc<dyn Notifier>,
    /// Its cursor before this run.
    from: String,
    records: Vec<ChangesName>,
    /// Beyond this run's share.
    later: usize,
}

/// What one target's deliveries came to.
struct Sent {
    /// Its cursor after this run.
    through: String,
    delivered: usize,
    failure: Option<NotificationFailure>,
}

impl SyncEngine {
    /// Delivers what each target is owed, and moves its cursor. Never fails
    /// the sync: what went wrong is in the returned report.
    /// Bounded by `notify_timeout` alone, not by the fetch deadline: like the
    /// publish, it runs in the time a Lambda keeps back after that deadline
    /// (20 s, which `CHANGE_NOTIFY_TIMEOUT_MS` may not exceed).
    /// Only records up to `through` (the published meta's time) are owed:
    /// a later one is a killed sync's that never published.
    pub(super) async fn notify(
        &self,
        published: Option<&ChangesName>,
        through: &str,
    ) -> Option<NotificationsReport> {
        if self.notifiers.is_empty() {
            return None;
        }
        let deadline = Instant::now() + self.settings.notify_timeout;
        let mut report = NotificationsReport::default();
        let (state, records) = match self.delivery_inputs(through).await {
            Ok(inputs) => inputs,
            Err(error) => {
                tracing::warn!(%error, "could not read what was notified; the next sync tries again");
                report.failed = self.every_target_failed(published, &error);
                return Some(report);
            }
        };
        let owed: Vec<Owed> = self
            .notifiers
            .iter()
            .map(|n| owed(n, &state, &records, published))
            .collect();
        let deliveries = owed.iter().map(|o| self.deliver_in_order(o, deadline));
        let outcomes = futures::future::join_all(deliveries).await;
        let mut next = DeliveryState::default();
        for (owed, sent) in owed.iter().zip(outcomes) {
            report.delivered += sent.delivered;
            report.pending += owed.records.len() - sent.delivered + owed.later;
            report.failed.extend(sent.failure);
            next.delivered_through
                .insert(owed.notifier.target().to_owned(), sent.through);
        }
        if next != state {
            self.save_delivery_state(&next).await;
        }
        Some(report)
    }

    /// The delivery state and the change feed's records, oldest first.
    async fn delivery_inputs(
        &self,
        through: &str,
    ) -> Result<(DeliveryState, Vec<ChangesName>), String> {
        let state = match self.bounded(self.store.get(&ObjectKey::Notifications)).await {
            Ok(Ok(Some(object))) => serde_json::from_slice(&object.body).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the notification state is unreadable; starting it again");
                DeliveryState::default()
            }),
            Ok(Ok(None)) => DeliveryState::default(),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        let listed = match self.bounded(self.store.list_changes()).await {
            Ok(Ok(listed)) => listed,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        let mut records: Vec<ChangesName> = listed
            .into_iter()
            .filter_map(|o| match o.key {
                ObjectKey::Changes(name) if name.at() <= through => Some(name),
                _ => None,
            })
            .collect();
        records.sort();
        Ok((state, records))
    }

    /// One target's change sets in order, stopping at the first that fails:
    /// a later one must not overtake it.
    async fn deliver_in_order(&self, owed: &Owed<'_>, deadline: Instant) -> Sent {
        let mut sent = Sent {
            through: owed.from.clone(),
            delivered: 0,
            failure: None,
        };
        for name in &owed.records {
            let result = match self.notice(name).await {
                Ok(notice) => owed
                    .notifier
                    .deliver(&notice, deadline)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(error) = result {
                let failure = NotificationFailure {
                    target: owed.notifier.target().to_owned(),
                    sync_id: sync_id_of(name),
                    error: crate::composio::cut(&error),
                };
                tracing::warn!(target = %failure.target, sync_id = %failure.sync_id, error = %failure.error, "a change notification was not delivered; the next sync tries again");
                sent.failure = Some(failure);
                break;
            }
            sent.through = name.as_str().to_owned();
            sent.delivered += 1;
        }
        sent
    }

    /// The notice of one change record, read from the feed.
    async fn notice(&self, name: &ChangesName) -> Result<Notice, String> {
        let key = ObjectKey::Changes(name.clone());
        let object = match self.bounded(self.store.get(&key)).await {
            Ok(Ok(Some(object))) => object,
            Ok(Ok(None)) => return Err(format!("change record {} is gone", name.as_str())),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        let record: ChangeRecord = serde_json::from_slice(&object.body)
            .map_err(|e| format!("change record {} is unreadable: {e}", name.as_str()))?;
        let url = changes_url(self.settings.public_base_url.as_deref(), &record.at);
        Ok(Notice::of(&record, url, NOTICE_BUDGET_BYTES))
    }

    async fn save_delivery_state(&self, state: &DeliveryState) {
        let body = Bytes::from(serde_json::to_vec(state).expect("the state serializes"));
        let put = self
            .store
            .put(&ObjectKey::Notifications, body, PutCondition::Overwrite);
        if !matches!(self.bounded(put).await, Ok(Ok(_))) {
            // The cursors stay where they were: what was sent is sent again.
            tracing::warn!("could not record what was notified; the next sync sends it again");
        }
    }

    fn every_target_failed(
        &self,
        published: Option<&ChangesName>,
        error: &str,
    ) -> Vec<NotificationFailure> {
        let Some(published) = published else {
            return Vec::new();
        };
        self.notifiers
            .iter()
            .map(|n| NotificationFailure {
                target: n.target().to_owned(),
                sync_id: sync_id_of(published),
                error: crate::composio::cut(error),
            })
            .collect()
    }
}

/// What one target is owed: the records after its cursor. A target seen
/// for the first time starts just before this run's own change set (or at
/// the newest record, when this run changed nothing), not at the feed's
/// whole history, and keeps that start even if its first delivery fails.
fn owed<'a>(
    notifier: &'a Arc<dyn Notifier>,
    state: &DeliveryState,
    records: &[ChangesName],
    published: Option<&ChangesName>,
) -> Owed<'a> {
    let from = match state.delivered_through.get(notifier.target()) {
        Some(through) => through.clone(),
        None => records
            .iter()
            .rfind(|r| published.is_none_or(|p| *r < p))
            .map_or(BEFORE_EVERY_RECORD.to_owned(), |r| r.as_str().to_owned()),
    };
    let after: Vec<ChangesName> = records
        .iter()
        .filter(|r| r.as_str() > from.as_str())
        .cloned()
        .collect();
    let later = after.len().saturating_sub(MAX_NOTICES_PER_TARGET);
    Owed {
        notifier,
        from,
        records: after.into_iter().take(MAX_NOTICES_PER_TARGET).collect(),
        later,
    }
}

/// A cursor before every record: names begin with a year's digits.
const BEFORE_EVERY_RECORD: &str = "0";

/// A record is named `{time}_{syncId}`.
fn sync_id_of(name: &ChangesName) -> String {
    name.as_str()
        .split_once('_')
        .map(|(_, id)| id.to_owned())
        .unwrap_or_default()
}

impl SyncReport {
    pub(super) fn notified(&mut self, notifications: Option<NotificationsReport>) {
        self.notifications = notifications;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyError;

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Notifier for Named {
        fn target(&self) -> &str {
            self.0
        }
        async fn deliver(&self, _: &Notice, _: Instant) -> Result<(), NotifyError> {
            Ok(())
        }
    }

    fn name(at: &str, id: &str) -> ChangesName {
        ChangesName::new(&format!("2026-11-0{at}T00:00:00.000Z"), id).unwrap()
    }

    fn owed_names(
        state: &DeliveryState,
        records: &[ChangesName],
        published: Option<&ChangesName>,
    ) -> (String, Vec<String>, usize) {
        let notifier: Arc<dyn Notifier> = Arc::new(Named("webhook:https://a/"));
        let owed = owed(&notifier, state, records, published);
        let names = owed.records.iter().map(sync_id_of).collect();
        (owed.from, names, owed.later)
    }

    #[test]
    fn a_target_is_owed_what_follows_its_cursor_oldest_first_and_a_bounded_share() {
        let records: Vec<ChangesName> = (1..=3)
            .map(|d| name(&d.to_string(), &format!("s{d}")))
            .collect();
        let mut state = DeliveryState::default();
        state
            .delivered_through
            .insert("webhook:https://a/".into(), records[0].as_str().into());
        let (_, owed, later) = owed_names(&state, &records, None);
        assert_eq!((owed, later), (vec!["s2".to_string(), "s3".to_string()], 0));

        let many: Vec<ChangesName> = (0..MAX_NOTICES_PER_TARGET + 5)
            .map(|i| ChangesName::new(&format!("2026-11-01T00:00:{i:02}.000Z"), "s").unwrap())
            .collect();
        state
            .delivered_through
            .insert("webhook:https://a/".into(), "0".into());
        let (_, owed, later) = owed_names(&state, &many, None);
        assert_eq!((owed.len(), later), (MAX_NOTICES_PER_TARGET, 5));
    }

    #[test]
    fn a_new_target_starts_at_this_runs_change_set_not_the_whole_history() {
        let records: Vec<ChangesName> = (1..=3)
            .map(|d| name(&d.to_string(), &format!("s{d}")))
            .collect();
        let state = DeliveryState::default();
        let (from, owed, _) = owed_names(&state, &records, Some(&records[2]));
        assert_eq!(from, records[1].as_str(), "kept even if the delivery fails");
        assert_eq!(owed, ["s3"]);
        let (from, owed, _) = owed_names(&state, &records, None);
        assert_eq!((from.as_str(), owed.len()), (records[2].as_str(), 0));
        let (from, owed, _) = owed_names(&state, &records[..1], Some(&records[0]));
        assert_eq!(
            (from.as_str(), owed),
            (BEFORE_EVERY_RECORD, vec!["s1".to_string()])
        );
    }
}
