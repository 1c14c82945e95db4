//! What a subscriber is told of one published change set: the same JSON as
//! an EventBridge event's `detail` and a webhook's `data`. Pure: built from
//! the change record a publish wrote, summarised to fit a byte budget.

use crate::cache::changes::{ChangeCounts, ChangeKind, ChangeRecord, Subject, TriggerCounts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// EventBridge's `source` of every event the service emits.
pub const EVENT_SOURCE: &str = "composio.schema-cache";
/// EventBridge's `detail-type`, and the webhook payload's `type`.
pub const EVENT_TYPE: &str = "Composio Schemas Changed";
/// The webhook payload's `type`, in Standard Webhooks' dotted style.
pub const WEBHOOK_TYPE: &str = "composio.schemas.changed";

/// An EventBridge entry holds 256 KB in all (source, detail-type, detail,
/// resources); a notice is kept under this, leaving room for the rest.
pub const NOTICE_BUDGET_BYTES: usize = 200 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The sync that published the change set: the notice's identity, the
    /// same on every retry (a webhook's `webhook-id` is `msg_{syncId}`).
    pub sync_id: String,
    /// When its meta was published (RFC 3339), as `/changes` reports it.
    pub published_at: String,
    pub counts: ChangeCounts,
    /// Changed toolkits by slug, with their counts; cut when there are too
    /// many to fit (`truncated`).
    pub toolkits: Vec<ToolkitChanges>,
    /// Every change, when they all fit; otherwise absent and `truncated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<NoticeChange>>,
    /// Something was left out to stay under the size limit: the change feed
    /// (`changesUrl`, or `GET /changes?since=`) has the whole of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// `GET /changes?since=` just before this change set, when the service's
    /// public URL is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolkitChanges {
    pub slug: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub deprecated: usize,
    /// Its trigger types' changes, apart from the tools' counts; absent when none.
    #[serde(default, skip_serializing_if = "TriggerCounts::is_zero")]
    pub triggers: TriggerCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoticeChange {
    pub toolkit: String,
    /// The tool's slug, or the trigger type's when `subject` is `trigger`.
    pub tool: String,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Subject::is_tool")]
    pub subject: Subject,
}

impl Notice {
    /// The notice of one change record, within `budget` bytes of JSON: every
    /// change listed if they fit, else toolkits only, else as many toolkits
    /// as fit (the most changed first).
    pub fn of(record: &ChangeRecord, changes_url: Option<String>, budget: usize) -> Notice {
        let mut notice = Notice {
            sync_id: record.sync_id.clone(),
            published_at: record.at.clone(),
            counts: ChangeCounts::of(&record.changes),
            toolkits: toolkits(record),
            changes: Some(
                record
                    .changes
                    .iter()
                    .map(|c| NoticeChange {
                        toolkit: c.toolkit.clone(),
                        tool: c.tool.clone(),
                        kind: c.kind,
                        subject: c.subject,
                    })
                    .collect(),
            ),
            truncated: false,
            changes_url,
        };
        if notice.size() <= budget {
            return notice;
        }
        notice.changes = None;
        notice.truncated = true;
        if notice.size() <= budget {
            return notice;
        }
        notice.toolkits.sort_by_key(|t| {
            std::cmp::Reverse(t.added + t.removed + t.changed + t.deprecated + t.triggers.total())
        });
        // Each entry's size is known, so one pass keeps the longest prefix that fits.
        let fixed = Notice {
            toolkits: Vec::new(),
            ..notice.clone()
        }
        .size();
        let mut used = fixed;
        let keep = notice
            .toolkits
            .iter()
            .take_while(|t| {
                used += json_len(t) + 1;
                used <= budget
            })
            .count();
        notice.toolkits.truncate(keep);
        notice
    }

    pub fn size(&self) -> usize {
        json_len(self)
    }
}

fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// Per toolkit, in slug order: its versions and how many tools changed how.
fn toolkits(record: &ChangeRecord) -> Vec<ToolkitChanges> {
    let mut by_slug: BTreeMap<&str, ToolkitChanges> = BTreeMap::new();
    for change in &record.changes {
        let entry = by_slug
            .entry(change.toolkit.as_str())
            .or_insert_with(|| ToolkitChanges {
                slug: change.toolkit.clone(),
                from_version: change.from_version.clone(),
                to_version: change.to_version.clone(),
                added: 0,
                removed: 0,
                changed: 0,
                deprecated: 0,
                triggers: TriggerCounts::default(),
            });
        if change.subject == Subject::Trigger {
            entry.triggers.count(change.kind);
            continue;
        }
        *match change.kind {
            ChangeKind::Added => &mut entry.added,
            ChangeKind::Removed => &mut entry.removed,
            ChangeKind::Changed => &mut entry.changed,
            ChangeKind::Deprecated => &mut entry.deprecated,
        } += 1;
    }
    by_slug.into_values().collect()
}

/// `{base}/changes?since=` one millisecond before `at` (the feed answers
/// changes published after `since`), or `None` without a base or a time.
pub fn changes_url(base: Option<&str>, at: &str) -> Option<String> {
    let base = base?.trim_end_matches('/');
    let at = humantime::parse_rfc3339(at).ok()?;
    let since = humantime::format_rfc3339_millis(at - std::time::Duration::from_millis(1));
    Some(format!("{base}/changes?since={since}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::changes::ToolChange;

    fn record(toolkits: usize, tools_each: usize) -> ChangeRecord {
        let mut changes = Vec::new();
        for t in 0..toolkits {
            for n in 0..tools_each {
                changes.push(ToolChange {
                    toolkit: format!("toolkit_{t:04}"),
                    tool: format!("TOOLKIT_{t:04}_A_RATHER_LONG_TOOL_NAME_{n:05}"),
                    kind: if n % 3 == 0 {
                        ChangeKind::Added
                    } else {
                        ChangeKind::Changed
                    },
                    from_version: Some("20251201_00".into()),
                    to_version: Some("20260101_00".into()),
                    subject: Subject::Tool,
                });
            }
        }
        ChangeRecord {
            sync_id: "sync-1".into(),
            at: "2026-11-01T00:00:00.000Z".into(),
            changes,
        }
    }

    #[test]
    fn a_small_change_set_lists_every_change_and_counts_per_toolkit() {
        let notice = Notice::of(&record(2, 3), None, NOTICE_BUDGET_BYTES);
        assert!(!notice.truncated);
        assert_eq!(notice.changes.as_ref().unwrap().len(), 6);
        assert_eq!(notice.counts.added, 2);
        assert_eq!(notice.counts.changed, 4);
        assert_eq!(notice.toolkits.len(), 2);
        let first = &notice.toolkits[0];
        assert_eq!(
            (first.slug.as_str(), first.added, first.changed),
            ("toolkit_0000", 1, 2)
        );
        assert_eq!(first.to_version.as_deref(), Some("20260101_00"));
    }

    #[test]
    fn a_huge_change_set_is_summarised_under_the_budget_and_points_at_the_feed() {
        let url = changes_url(Some("https://x.example/api/"), "2026-11-01T00:00:00.000Z");
        assert_eq!(
            url.as_deref(),
            Some("https://x.example/api/changes?since=2026-10-31T23:59:59.999Z")
        );
        let many_tools = Notice::of(&record(50, 2_000), url.clone(), NOTICE_BUDGET_BYTES);
        assert!(many_tools.truncated && many_tools.changes.is_none());
        assert_eq!(many_tools.toolkits.len(), 50);
        assert_eq!(many_tools.counts.total(), 100_000);
        assert!(many_tools.size() <= NOTICE_BUDGET_BYTES);

        let many_toolkits = Notice::of(&record(20_000, 1), url, NOTICE_BUDGET_BYTES);
        assert!(many_toolkits.truncated);
        assert!(many_toolkits.size() <= NOTICE_BUDGET_BYTES);
        assert!(many_toolkits.toolkits.len() > 500 && many_toolkits.toolkits.len() < 20_000);
        assert_eq!(many_toolkits.counts.total(), 20_000, "counts stay whole");
        assert!(many_toolkits.changes_url.is_some());
    }
}
