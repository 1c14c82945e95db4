//! The change feed's diff: what one publishing sync changed, tool by tool,
//! from the previous index to the next. Pure: the engine writes the record.

use super::IndexEntry;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    /// Its name, description or either schema changed (not just the version stamp).
    Changed,
    /// It became deprecated.
    Deprecated,
}

/// What changed: a tool, or a trigger type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    #[default]
    Tool,
    Trigger,
}

impl Subject {
    pub fn is_tool(&self) -> bool {
        *self == Self::Tool
    }
}

/// One tool's (or trigger type's) change, as a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolChange {
    pub toolkit: String,
    /// The tool's slug, or the trigger type's when `subject` says `trigger`.
    pub tool: String,
    pub kind: ChangeKind,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    /// `trigger` for a trigger type; absent for a tool (records before
    /// trigger types read as tools).
    #[serde(default, skip_serializing_if = "Subject::is_tool")]
    pub subject: Subject,
}

/// `{prefix}_changes/{at}_{syncId}.json`: what one publishing sync changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    pub sync_id: String,
    pub at: String,
    pub changes: Vec<ToolChange>,
}

/// How many tools changed how (trigger types counted apart), for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeCounts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub deprecated: usize,
    /// Trigger types' changes; absent when none.
    #[serde(default, skip_serializing_if = "TriggerCounts::is_zero")]
    pub triggers: TriggerCounts,
}

/// How many trigger types changed how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggerCounts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl TriggerCounts {
    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }

    pub fn total(&self) -> usize {
        self.added + self.removed + self.changed
    }

    /// Counts one trigger type's change (they are never deprecated).
    pub fn count(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Removed => self.removed += 1,
            ChangeKind::Changed | ChangeKind::Deprecated => self.changed += 1,
        }
    }
}

impl ChangeCounts {
    pub fn of(changes: &[ToolChange]) -> Self {
        let mut counts = Self::default();
        for change in changes {
            if change.subject == Subject::Trigger {
                counts.triggers.count(change.kind);
                continue;
            }
            *match change.kind {
                ChangeKind::Added => &mut counts.added,
                ChangeKind::Removed => &mut counts.removed,
                ChangeKind::Changed => &mut counts.changed,
                ChangeKind::Deprecated => &mut counts.deprecated,
            } += 1;
        }
        counts
    }

    /// The tools' changes alone.
    pub fn tools_total(&self) -> usize {
        self.added + self.removed + self.changed + self.deprecated
    }

    /// Every change, trigger types' included.
    pub fn total(&self) -> usize {
        self.added + self.removed + self.changed + self.deprecated + self.triggers.total()
    }
}

/// Tool by tool, what `next` changed from `previous`. A stale entry (its
/// toolkit failed, its last good copy kept) changed nothing; a tool indexed
/// without a hash (an older meta) cannot be compared and is not reported changed.
pub fn changes_between(previous: &[IndexEntry], next: &[IndexEntry]) -> Vec<ToolChange> {
    let before: HashMap<&str, &IndexEntry> =
        previous.iter().map(|e| (e.slug.as_str(), e)).collect();
    let after: HashMap<&str, &IndexEntry> = next.iter().map(|e| (e.slug.as_str(), e)).collect();
    let mut changes = Vec::new();
    let change =
        |old: Option<&IndexEntry>, new: Option<&IndexEntry>, tool: &str, kind| ToolChange {
            toolkit: new.or(old).map(|e| e.slug.to_string()).unwrap_or_default(),
            tool: tool.to_owned(),
            kind,
            from_version: old.and_then(|e| e.version.clone()),
            to_version: new.and_then(|e| e.version.clone()),
            subject: Subject::Tool,
        };
    for new in next.iter().filter(|e| !e.stale) {
        let old = before.get(new.slug.as_str()).copied();
        let old_tools: HashMap<&str, _> = old
            .map(|e| e.tools.iter().map(|t| (t.slug.as_str(), t)).collect())
            .unwrap_or_default();
        for tool in &new.tools {
            match old_tools.get(tool.slug.as_str()) {
                None => changes.push(change(old, Some(new), &tool.slug, ChangeKind::Added)),
                Some(was) => {
                    if was.hash.is_some() && was.hash != tool.hash {
                        changes.push(change(old, Some(new), &tool.slug, ChangeKind::Changed));
                    }
                    if !was.deprecated && tool.deprecated {
                        changes.push(change(old, Some(new), &tool.slug, ChangeKind::Deprecated));
                    }
                }
            }
        }
        if let Some(old) = old {
            let kept: HashMap<&str, ()> = new.tools.iter().map(|t| (t.slug.as_str(), ())).collect();
            for tool in old
                .tools
                .iter()
                .filter(|t| !kept.contains_key(t.slug.as_str()))
            {
                changes.push(change(
                    Some(old),
                    Some(new),
                    &tool.slug,
                    ChangeKind::Removed,
                ));
            }
        }
    }
    for old in previous
        .iter()
        .filter(|e| !after.contains_key(e.slug.as_str()))
    {
        for tool in &old.tools {
            changes.push(change(Some(old), None, &tool.slug, ChangeKind::Removed));
        }
    }
    changes.extend(trigger_changes(&before, next));
    changes
}

/// Trigger type by trigger type, what `next` changed: added, removed, or
/// changed (any of name, description, instructions, type or schemas).
fn trigger_changes(before: &HashMap<&str, &IndexEntry>, next: &[IndexEntry]) -> Vec<ToolChange> {
    let after: HashMap<&str, &IndexEntry> = next.iter().map(|e| (e.slug.as_str(), e)).collect();
    let mut changes = Vec::new();
    let change =
        |old: Option<&IndexEntry>, new: Option<&IndexEntry>, slug: &str, kind| ToolChange {
            toolkit: new.or(old).map(|e| e.slug.to_string()).unwrap_or_default(),
            tool: slug.to_owned(),
            kind,
            from_version: old.and_then(|e| e.version.clone()),
            to_version: new.and_then(|e| e.version.clone()),
            subject: Subject::Trigger,
        };
    for new in next.iter().filter(|e| !e.stale) {
        let old = before.get(new.slug.as_str()).copied();
        let was: HashMap<&str, &Option<String>> = old
            .map(|e| {
                e.triggers
                    .iter()
                    .map(|t| (t.slug.as_str(), &t.hash))
                    .collect()
            })
            .unwrap_or_default();
        for trigger in &new.triggers {
            match was.get(trigger.slug.as_str()) {
                None => changes.push(change(old, Some(new), &trigger.slug, ChangeKind::Added)),
                Some(hash) if hash.is_some() && **hash != trigger.hash => {
                    changes.push(change(old, Some(new), &trigger.slug, ChangeKind::Changed))
                }
                Some(_) => {}
            }
        }
        let kept: std::collections::HashSet<&str> =
            new.triggers.iter().map(|t| t.slug.as_str()).collect();
        for gone in old.iter().flat_map(|e| &e.triggers) {
            if !kept.contains(gone.slug.as_str()) {
                changes.push(change(old, Some(new), &gone.slug, ChangeKind::Removed));
            }
        }
    }
    for (slug, old) in before {
        if !after.contains_key(slug) {
            for gone in &old.triggers {
                changes.push(change(Some(old), None, &gone.slug, ChangeKind::Removed));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Slug, ToolEntry};

    fn tool(slug: &str, hash: &str, deprecated: bool) -> ToolEntry {
        ToolEntry {
            slug: slug.into(),
            name: slug.into(),
            description: String::new(),
            range: None,
            hash: Some(hash.into()),
            deprecated,
            compat: None,
            parameters: String::new(),
        }
    }

    fn entry(slug: &str, version: &str, tools: Vec<ToolEntry>) -> IndexEntry {
        IndexEntry {
            left_out: Vec::new(),
            slug: Slug::parse(slug).unwrap(),
            name: slug.into(),
            logo: String::new(),
            tool_count: tools.len(),
            version: Some(version.into()),
            updated_at: None,
            content_hash: "c".into(),
            etag: None,
            snapshot_etag: None,
            synced_at: "t".into(),
            stale: false,
            last_error: None,
            tools,
            triggers: Vec::new(),
            index_format: crate::cache::INDEX_FORMAT,
        }
    }

    fn kinds(changes: &[ToolChange]) -> Vec<(String, String, ChangeKind)> {
        let mut v: Vec<_> = changes
            .iter()
            .map(|c| (c.toolkit.clone(), c.tool.clone(), c.kind))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    #[test]
    fn each_kind_of_change_and_nothing_for_a_version_bump_alone() {
        let previous = vec![
            entry(
                "gh",
                "1",
                vec![
                    tool("A", "a", false),
                    tool("B", "b", false),
                    tool("C", "c", false),
                    tool("D", "d", false),
                ],
            ),
            entry("gone", "1", vec![tool("G", "g", false)]),
        ];
        let next = vec![
            // A untouched, B's schema changed, C removed, D deprecated, E added; version bumped.
            entry(
                "gh",
                "2",
                vec![
                    tool("A", "a", false),
                    tool("B", "b2", false),
                    tool("D", "d", true),
                    tool("E", "e", false),
                ],
            ),
            entry("new", "1", vec![tool("N", "n", false)]),
        ];
        let changes = changes_between(&previous, &next);
        assert_eq!(
            kinds(&changes),
            [
                ("gh".into(), "B".into(), ChangeKind::Changed),
                ("gh".into(), "C".into(), ChangeKind::Removed),
                ("gh".into(), "D".into(), ChangeKind::Deprecated),
                ("gh".into(), "E".into(), ChangeKind::Added),
                ("gone".into(), "G".into(), ChangeKind::Removed),
                ("new".into(), "N".into(), ChangeKind::Added),
            ]
        );
        let b = changes.iter().find(|c| c.tool == "B").unwrap();
        assert_eq!(
            (b.from_version.as_deref(), b.to_version.as_deref()),
            (Some("1"), Some("2"))
        );
        let counts = ChangeCounts::of(&changes);
        assert_eq!(
            (
                counts.added,
                counts.removed,
                counts.changed,
                counts.deprecated
            ),
            (2, 2, 1, 1)
        );

        assert!(counts.triggers.is_zero());

        let trigger = |slug: &str, hash: &str| crate::cache::TriggerEntry {
            slug: slug.into(),
            name: slug.into(),
            description: String::new(),
            kind: "webhook".into(),
            range: None,
            hash: Some(hash.into()),
        };
        let mut with = entry("gh", "2", previous[0].tools.clone());
        with.triggers = vec![trigger("GH_T1", "1"), trigger("GH_T2", "2")];
        let mut then = entry("gh", "3", previous[0].tools.clone());
        then.triggers = vec![trigger("GH_T2", "2b"), trigger("GH_T3", "3")];
        let triggers = changes_between(&[with], &[then]);
        assert!(triggers.iter().all(|c| c.subject == Subject::Trigger));
        assert_eq!(
            kinds(&triggers),
            [
                ("gh".into(), "GH_T1".into(), ChangeKind::Removed),
                ("gh".into(), "GH_T2".into(), ChangeKind::Changed),
                ("gh".into(), "GH_T3".into(), ChangeKind::Added),
            ]
        );
        let counts = ChangeCounts::of(&triggers);
        assert_eq!((counts.added, counts.total()), (0, 3), "tools apart");
        assert_eq!(
            counts.triggers,
            TriggerCounts {
                added: 1,
                removed: 1,
                changed: 1
            }
        );

        let bumped = vec![entry("gh", "3", previous[0].tools.clone())];
        assert!(
            changes_between(&previous[..1], &bumped).is_empty(),
            "a version stamp alone is no change"
        );
        let mut stale = entry("gh", "1", vec![]);
        stale.stale = true;
        assert!(
            changes_between(&previous[..1], &[stale]).is_empty(),
            "a stale copy changed nothing"
        );
    }
}
