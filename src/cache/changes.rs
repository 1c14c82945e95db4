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

/// One tool's change, as a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolChange {
    pub toolkit: String,
    pub tool: String,
    pub kind: ChangeKind,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
}

/// `{prefix}_changes/{at}_{syncId}.json`: what one publishing sync changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    pub sync_id: String,
    pub at: String,
    pub changes: Vec<ToolChange>,
}

/// How many changes of each kind, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeCounts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub deprecated: usize,
}

impl ChangeCounts {
    pub fn of(changes: &[ToolChange]) -> Self {
        let mut counts = Self::default();
        for change in changes {
            *match change.kind {
                ChangeKind::Added => &mut counts.added,
                ChangeKind::Removed => &mut counts.removed,
                ChangeKind::Changed => &mut counts.changed,
                ChangeKind::Deprecated => &mut counts.deprecated,
            } += 1;
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.added + self.removed + self.changed + self.deprecated
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
        }
    }

    fn entry(slug: &str, version: &str, tools: Vec<ToolEntry>) -> IndexEntry {
        IndexEntry {
            slug: Slug::parse(slug).unwrap(),
            name: slug.into(),
            logo: String::new(),
            tool_count: tools.len(),
            version: Some(version.into()),
            updated_at: None,
            content_hash: "c".into(),
            etag: None,
            synced_at: "t".into(),
            stale: false,
            last_error: None,
            tools,
            triggers: Vec::new(),
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
