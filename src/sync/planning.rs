//! The run's pure decisions, over values the steps gathered: which toolkits
//! it keeps and fetches (from the domain's plan, guard and diff), and the
//! meta it publishes. No I/O, no clock but the one handed in.

use super::{Scope, SyncRequest, SyncSettings};
use crate::cache::changes::{changes_between, ToolChange};
use crate::cache::plan::{self, Aggregate, Decision, Listed, Shrink};
use crate::cache::plan::{FetchReason, StoredEtags};
use crate::cache::{Failure, IndexEntry, Meta, Slug};
use crate::composio::cut;
use crate::composio::UpstreamError;
use crate::store::ETag;
use crate::store::{ChangesName, SnapshotHash};
use crate::wire::{AuthConfig, ToolkitSummary};
use std::collections::HashMap;

/// The published state a sync starts from.
pub(super) struct Previous {
    pub index: Vec<IndexEntry>,
    pub pending_deletes: Vec<Slug>,
    pub unfinished_full_pass: Option<String>,
    /// The meta's tag, for the compare-and-swap; `None` before the first sync.
    pub etag: Option<ETag>,
    /// Its `lastSyncedAt`: the feed's records up to it are published, any
    /// after it a killed sync's, never published.
    pub last_synced_at: Option<String>,
}

/// Everything the plan is made from: read at once, at the start.
pub(super) struct Gathered {
    pub previous: Previous,
    /// The toolkit objects the store holds, with their tags as listed now.
    pub stored: StoredEtags,
    pub auth_configs: Vec<AuthConfig>,
    /// Composio's toolkit listing by slug (each listed toolkit's details
    /// come from it); `Err` when it could not be read.
    pub listing: Result<HashMap<String, ToolkitSummary>, UpstreamError>,
    /// Temporary files of killed writes removed on the way.
    pub leftovers_removed: usize,
    /// The toolkit snapshots the store holds, as listed now.
    pub snapshots: Vec<(Slug, SnapshotHash)>,
}

/// The views whose toolkit's snapshot is what the index says, with their
/// tags: a toolkit without its snapshot (missing, edited, or a meta from
/// before snapshots) is left out, so the diff repairs it as a missing object.
pub(super) fn with_snapshots(
    views: StoredEtags,
    index: &[IndexEntry],
    snapshots: &[(Slug, SnapshotHash, String)],
) -> StoredEtags {
    let listed: HashMap<(&Slug, &str), &str> = snapshots
        .iter()
        .map(|(slug, hash, etag)| ((slug, hash.as_str()), etag.as_str()))
        .collect();
    let sound: std::collections::HashSet<&Slug> = index
        .iter()
        .filter(|e| {
            e.snapshot_etag
                .as_deref()
                .is_some_and(|want| listed.get(&(&e.slug, e.content_hash.as_str())) == Some(&want))
        })
        .map(|e| &e.slug)
        .collect();
    let indexed: std::collections::HashSet<&Slug> = index.iter().map(|e| &e.slug).collect();
    views
        .into_iter()
        .filter(|(slug, _)| sound.contains(slug) || !indexed.contains(slug))
        .collect()
}

/// Snapshots neither the new index nor the one it replaced names: a killed
/// sync's, or two publishes old. Those the replaced index names stay one
/// more sync, for readers still holding its meta (`READ_META_TTL_MS`).
pub(super) fn unnamed_snapshots(
    listed: &[(Slug, SnapshotHash)],
    previous: &[IndexEntry],
    next: &[IndexEntry],
) -> Vec<(Slug, SnapshotHash)> {
    let named: std::collections::HashSet<(&Slug, &str)> = previous
        .iter()
        .chain(next)
        .map(|e| (&e.slug, e.content_hash.as_str()))
        .collect();
    listed
        .iter()
        .filter(|(slug, hash)| !named.contains(&(slug, hash.as_str())))
        .cloned()
        .collect()
}

/// What this run keeps, fetches and refuses.
pub(super) struct RunPlan {
    /// Indexed toolkits kept as they are, unfetched.
    pub kept: Vec<IndexEntry>,
    /// Toolkits to fetch, largest first, with the reason for each.
    pub to_fetch: Vec<(Slug, FetchReason)>,
    /// Slugs from upstream refused on the way, reported as failures.
    pub refused: Vec<Failure>,
    /// An incremental sync became a full one, and why.
    pub fallback: Option<String>,
    /// This full sync resumes a pass that ran out of time, begun then.
    pub resumed_full_pass: Option<String>,
}

/// Plan: the project's toolkits (auth configs, then the no-auth ones), the
/// shrink guard, and the diff against the index, the store and the listing.
/// `redact` cleans upstream text before it is reported.
pub(super) fn plan_run(
    gathered: &Gathered,
    request: &SyncRequest,
    settings: &SyncSettings,
    redact: impl Fn(&str) -> String,
) -> Result<RunPlan, Shrink> {
    let previous = &gathered.previous;
    let project = scoped_toolkits(gathered, settings, &redact);
    if !request.allow_shrink {
        plan::shrink_guard(&previous.index, &project.slugs, settings.max_shrink)?;
    }
    let listing = gathered.listing.as_ref().ok();
    let fallback = gathered.listing.as_ref().err().and_then(|e| {
        tracing::warn!(error = %e, "toolkit listing failed; fetching every toolkit with its details");
        (!request.full).then(|| cut(&format!("toolkit listing failed: {e}")))
    });
    let listed: Option<HashMap<String, Listed>> = listing.map(|l| {
        l.iter()
            .map(|(slug, t)| (slug.clone(), listed(t)))
            .collect()
    });
    let previous_by_slug: HashMap<&Slug, &IndexEntry> =
        previous.index.iter().map(|e| (&e.slug, e)).collect();
    let (mode, resumed_full_pass) = match (&previous.unfinished_full_pass, request.full) {
        (Some(since), true) => (plan::Mode::ResumeFull { since }, Some(since.clone())),
        (None, true) => (plan::Mode::Full, None),
        (_, false) => (plan::Mode::Incremental, None),
    };
    let decisions = plan::diff(
        &project.slugs,
        &previous_by_slug,
        &gathered.stored,
        listed.as_ref(),
        mode,
    );
    let mut kept = Vec::new();
    let mut to_fetch = Vec::new();
    for decision in decisions {
        match decision {
            Decision::Keep(entry) => kept.push(*entry),
            Decision::Fetch { slug, reason } => to_fetch.push((slug, reason)),
        }
    }
    // Biggest first: the longest chain of tool pages starts at once.
    let expected = |slug: &Slug| expected_tools(slug, listing, &previous_by_slug);
    to_fetch.sort_by_key(|(slug, _)| std::cmp::Reverse(expected(slug)));
    Ok(RunPlan {
        kept,
        to_fetch,
        refused: project.refused,
        fallback,
        resumed_full_pass,
    })
}

/// The toolkits to fetch whose trigger types are to be asked for: those the
/// listing counts any for, or gives no count, or does not name (deprecated).
pub(super) fn with_triggers(
    to_fetch: &[(Slug, FetchReason)],
    listing: Option<&HashMap<String, ToolkitSummary>>,
) -> Vec<Slug> {
    to_fetch
        .iter()
        .map(|(slug, _)| slug)
        .filter(|slug| {
            let count = listing
                .and_then(|l| l.get(slug.as_str()))
                .map(|t| t.meta.triggers_count.as_ref().and_then(|n| n.as_u64()));
            !matches!(count, Some(Some(0)))
        })
        .cloned()
        .collect()
}

/// The toolkits the scope names: the project's (auth configs, then the
/// no-auth ones), the whole listing's besides, or an explicit list. The
/// catalogue without a listing keeps what is published (never a wipe).
fn scoped_toolkits(
    gathered: &Gathered,
    settings: &SyncSettings,
    redact: &impl Fn(&str) -> String,
) -> plan::Plan {
    let project = gathered.auth_configs.iter().map(|c| c.toolkit.slug.clone());
    match &settings.scope {
        Scope::Project => plan::plan_toolkits(project, &settings.no_auth_toolkits, redact),
        Scope::Toolkits(slugs) => plan::plan_toolkits(std::iter::empty(), slugs, redact),
        Scope::Catalog => {
            let mut catalogue: Vec<String> = match &gathered.listing {
                Ok(listing) => listing.keys().cloned().collect(),
                Err(_) => gathered
                    .previous
                    .index
                    .iter()
                    .map(|e| e.slug.to_string())
                    .collect(),
            };
            catalogue.sort_unstable();
            plan::plan_toolkits(project.chain(catalogue), &settings.no_auth_toolkits, redact)
        }
    }
}

fn listed(summary: &ToolkitSummary) -> Listed {
    Listed {
        version: summary.meta.version.clone(),
        updated_at: summary.meta.updated_at.clone(),
    }
}

/// How many tools a toolkit is expected to have: the listing's count, else
/// the index's, else none known.
fn expected_tools(
    slug: &Slug,
    listing: Option<&HashMap<String, ToolkitSummary>>,
    previous: &HashMap<&Slug, &IndexEntry>,
) -> u64 {
    let listed = listing
        .and_then(|l| l.get(slug.as_str()))
        .and_then(|t| t.meta.tools_count.as_ref())
        .and_then(|n| n.as_u64());
    listed
        .or_else(|| previous.get(slug).map(|e| e.tool_count as u64))
        .unwrap_or(0)
}

/// The time a publish is stamped with: now, or just after the meta it
/// replaces if this machine's clock is behind, so the feed's records and
/// `lastSyncedAt` only move forward.
pub(super) fn publish_time(previous: Option<&str>, now: std::time::SystemTime) -> String {
    let after_previous = previous
        .and_then(|p| humantime::parse_rfc3339_weak(p).ok())
        .map(|p| p + std::time::Duration::from_millis(1));
    crate::cache::timestamp(after_previous.map_or(now, |p| p.max(now)))
}

/// What the next meta is made of besides the aggregate.
pub(super) struct MetaContext<'a> {
    pub sync_id: &'a str,
    /// When this run began: where a full pass that runs out of time begins.
    pub started_at: &'a str,
    /// Now, as the meta's `lastSyncedAt`.
    pub synced_at: String,
    pub sync_duration_ms: u64,
    pub full: bool,
    pub out_of_time: bool,
}

/// The next meta, what it changes against the previous index, and the name
/// of the change record it promises (none when nothing changed).
pub(super) fn next_meta(
    previous: &Previous,
    aggregate: Aggregate,
    context: MetaContext<'_>,
) -> (Meta, Vec<ToolChange>, Option<ChangesName>) {
    let changes = changes_between(&previous.index, &aggregate.index);
    let changes_record = (!changes.is_empty())
        .then(|| ChangesName::new(&context.synced_at, context.sync_id))
        .flatten();
    let meta = Meta {
        last_synced_at: context.synced_at,
        toolkit_count: aggregate.index.len(),
        total_tool_count: aggregate.index.iter().map(|e| e.tool_count).sum(),
        sync_duration_ms: context.sync_duration_ms,
        sync_id: context.sync_id.to_owned(),
        toolkits: aggregate.index,
        failed: aggregate.failures,
        pending_deletes: aggregate
            .to_delete
            .iter()
            .chain(&aggregate.held)
            .cloned()
            .collect(),
        // A full pass that ran out of time goes on next time from where
        // it began; an incremental run leaves the mark as it found it.
        unfinished_full_pass: match (context.full, context.out_of_time) {
            (true, true) => Some(
                previous
                    .unfinished_full_pass
                    .clone()
                    .unwrap_or_else(|| context.started_at.to_owned()),
            ),
            (true, false) => None,
            (false, _) => previous.unfinished_full_pass.clone(),
        },
        changes_record: changes_record.as_ref().map(|n| n.as_str().to_owned()),
    };
    (meta, changes, changes_record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::plan::Aggregate;

    #[test]
    fn a_toolkit_whose_snapshot_is_not_what_the_index_says_is_repaired_and_old_snapshots_go() {
        let hash = |h: &str| SnapshotHash::parse(h).unwrap();
        let mut sound = entry("sound", "1", 1);
        sound.content_hash = "aa".into();
        sound.snapshot_etag = Some("s1".into());
        let mut edited = entry("edited", "1", 1);
        edited.content_hash = "bb".into();
        edited.snapshot_etag = Some("s2".into());
        let mut legacy = entry("legacy", "1", 1);
        legacy.content_hash = "cc".into();
        let views: StoredEtags = ["sound", "edited", "legacy", "foreign"]
            .iter()
            .map(|s| (slug(s), format!("v-{s}")))
            .collect();
        let listed = vec![
            (slug("sound"), hash("aa"), "s1".to_string()),
            (slug("edited"), hash("bb"), "by-hand".to_string()),
            (slug("sound"), hash("99"), "old".to_string()),
        ];
        let index = vec![sound.clone(), edited, legacy];
        let kept = with_snapshots(views, &index, &listed);
        let kept: Vec<&str> = kept.keys().map(Slug::as_str).collect();
        assert_eq!(kept, ["foreign", "sound"], "edited and legacy are repaired");

        let listed: Vec<(Slug, SnapshotHash)> =
            listed.into_iter().map(|(s, h, _)| (s, h)).collect();
        let mut next = sound.clone();
        next.content_hash = "dd".into();
        let gone = unnamed_snapshots(&listed, &index, &[next]);
        assert_eq!(
            gone,
            [(slug("sound"), hash("99"))],
            "the replaced index's stay one sync"
        );
    }

    #[test]
    fn a_publish_is_stamped_after_the_meta_it_replaces_even_with_a_clock_behind() {
        let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
        let previous = "2026-11-01T10:00:00.000Z";
        assert_eq!(
            publish_time(Some(previous), at("2026-11-01T09:00:00Z")),
            "2026-11-01T10:00:00.001Z"
        );
        assert_eq!(
            publish_time(Some(previous), at("2026-11-01T11:00:00Z")),
            "2026-11-01T11:00:00.000Z"
        );
        assert_eq!(
            publish_time(None, at("2026-11-01T11:00:00Z")),
            "2026-11-01T11:00:00.000Z"
        );
    }

    fn slug(s: &str) -> Slug {
        Slug::parse(s).unwrap()
    }

    /// As the defaults: `browser_tool` needs no auth, a sync may drop half.
    fn settings() -> SyncSettings {
        let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
        SyncSettings {
            scope: Scope::Project,
            no_auth_toolkits: vec![slug("browser_tool")],
            concurrency: 32,
            lease_ttl: minutes(15),
            heartbeat: std::time::Duration::from_secs(5),
            timeout: minutes(13),
            max_shrink: 0.5,
            store_timeout: std::time::Duration::from_secs(15),
            changes_retention: minutes(90 * 24 * 60),
            notify_timeout: std::time::Duration::from_secs(10),
            public_base_url: None,
        }
    }

    fn entry(s: &str, version: &str, tools: usize) -> IndexEntry {
        IndexEntry {
            left_out: Vec::new(),
            slug: slug(s),
            name: s.into(),
            logo: String::new(),
            tool_count: tools,
            version: Some(version.into()),
            updated_at: Some("2026-01-01".into()),
            content_hash: format!("hash-{s}"),
            etag: Some(format!("etag-{s}")),
            snapshot_etag: None,
            synced_at: "2026-11-01T00:00:00.000Z".into(),
            stale: false,
            last_error: None,
            tools: Vec::new(),
            triggers: Vec::new(),
            index_format: crate::cache::INDEX_FORMAT,
        }
    }

    fn summary(s: &str, version: &str, tools: u64) -> ToolkitSummary {
        serde_json::from_value(serde_json::json!({
            "slug": s, "name": s,
            "meta": {"version": version, "updated_at": "2026-01-01", "tools_count": tools}
        }))
        .unwrap()
    }

    fn gathered(
        index: Vec<IndexEntry>,
        project: &[&str],
        listing: Option<Vec<ToolkitSummary>>,
    ) -> Gathered {
        let stored = index
            .iter()
            .map(|e| (e.slug.clone(), e.etag.clone().unwrap()))
            .collect();
        let auth_configs = project
            .iter()
            .map(|s| {
                serde_json::from_value(serde_json::json!({"id": s, "toolkit": {"slug": s}}))
                    .unwrap()
            })
            .collect();
        let listing = match listing {
            Some(items) => Ok(items.into_iter().map(|t| (t.slug.clone(), t)).collect()),
            None => Err(UpstreamError::Status {
                endpoint: "GET /api/v3/toolkits".into(),
                status: 503,
                message: "listing down".into(),
                request_id: None,
                retry_after: None,
            }),
        };
        Gathered {
            previous: Previous {
                index,
                pending_deletes: Vec::new(),
                unfinished_full_pass: None,
                etag: None,
                last_synced_at: None,
            },
            stored,
            auth_configs,
            listing,
            leftovers_removed: 0,
            snapshots: Vec::new(),
        }
    }

    fn fetched(plan: &RunPlan) -> Vec<(&str, &FetchReason)> {
        plan.to_fetch.iter().map(|(s, r)| (s.as_str(), r)).collect()
    }

    #[test]
    fn an_incremental_plan_fetches_what_changed_largest_first_and_keeps_the_rest() {
        let index = vec![entry("gmail", "v1", 30), entry("github", "v1", 800)];
        let listing = vec![
            summary("gmail", "v2", 30),
            summary("github", "v2", 831),
            summary("notion", "v1", 40),
            summary("browser_tool", "v1", 18),
        ];
        let g = gathered(
            index,
            &["gmail", "github", "notion", "gmail"],
            Some(listing),
        );
        let plan = plan_run(&g, &SyncRequest::default(), &settings(), |s| s.to_owned()).unwrap();
        assert_eq!(
            fetched(&plan),
            [
                ("github", &FetchReason::Changed),
                ("notion", &FetchReason::New),
                ("gmail", &FetchReason::Changed),
                ("browser_tool", &FetchReason::New),
            ]
        );
        assert!(plan.kept.is_empty() && plan.fallback.is_none());

        let unchanged = vec![summary("gmail", "v1", 30), summary("github", "v1", 800)];
        let index = vec![entry("gmail", "v1", 30), entry("github", "v1", 800)];
        let g = gathered(index, &["gmail", "github"], Some(unchanged));
        let mut no_auth = settings();
        no_auth.no_auth_toolkits.clear();
        let plan = plan_run(&g, &SyncRequest::default(), &no_auth, |s| s.to_owned()).unwrap();
        assert!(plan.to_fetch.is_empty());
        assert_eq!(plan.kept.len(), 2);
    }

    #[test]
    fn a_failed_listing_falls_back_to_fetching_everything_and_says_why_only_when_incremental() {
        let g = gathered(vec![entry("gmail", "v1", 30)], &["gmail"], None);
        let plan = plan_run(&g, &SyncRequest::default(), &settings(), |s| s.to_owned()).unwrap();
        assert!(plan
            .fallback
            .as_deref()
            .unwrap()
            .contains("toolkit listing failed"));
        assert_eq!(fetched(&plan)[0], ("gmail", &FetchReason::Unlisted));
        let full = plan_run(&g, &SyncRequest::full(), &settings(), |s| s.to_owned()).unwrap();
        assert!(full.fallback.is_none());
        assert_eq!(fetched(&full)[0], ("gmail", &FetchReason::Full));
    }

    #[test]
    fn a_full_sync_resumes_an_unfinished_pass_and_the_guard_refuses_a_wipe() {
        let mut g = gathered(
            vec![entry("gmail", "v1", 30), entry("github", "v1", 800)],
            &["gmail", "github"],
            Some(vec![]),
        );
        g.previous.unfinished_full_pass = Some("2026-10-01T00:00:00.000Z".into());
        let plan = plan_run(&g, &SyncRequest::full(), &settings(), |s| s.to_owned()).unwrap();
        assert_eq!(
            plan.resumed_full_pass.as_deref(),
            Some("2026-10-01T00:00:00.000Z")
        );
        assert_eq!(plan.kept.len(), 2, "both were synced after the pass began");

        let wipe = gathered(
            vec![entry("gmail", "v1", 30), entry("github", "v1", 800)],
            &[],
            Some(vec![]),
        );
        let refused = plan_run(&wipe, &SyncRequest::default(), &settings(), |s| {
            s.to_owned()
        });
        assert!(refused.is_err());
        let allowed = SyncRequest {
            allow_shrink: true,
            ..SyncRequest::default()
        };
        assert!(plan_run(&wipe, &allowed, &settings(), |s| s.to_owned()).is_ok());
    }

    fn aggregate(index: Vec<IndexEntry>) -> Aggregate {
        Aggregate {
            index,
            failures: Vec::new(),
            to_delete: vec![slug("old")],
            held: vec![slug("held")],
            fetched: 1,
            written: 1,
            unchanged: 0,
        }
    }

    fn context(full: bool, out_of_time: bool) -> MetaContext<'static> {
        MetaContext {
            sync_id: "sync-2",
            started_at: "2026-11-02T00:00:00.000Z",
            synced_at: "2026-11-02T00:00:01.000Z".into(),
            sync_duration_ms: 1000,
            full,
            out_of_time,
        }
    }

    #[test]
    fn the_next_meta_names_its_change_record_only_when_something_changed() {
        let previous = gathered(vec![entry("gmail", "v1", 0)], &[], Some(vec![])).previous;
        let same = aggregate(vec![entry("gmail", "v1", 0)]);
        let (meta, changes, record) = next_meta(&previous, same, context(false, false));
        assert!(changes.is_empty() && record.is_none() && meta.changes_record.is_none());
        assert_eq!(meta.pending_deletes, [slug("old"), slug("held")]);
        assert_eq!((meta.toolkit_count, meta.sync_id.as_str()), (1, "sync-2"));

        let mut changed = entry("gmail", "v2", 1);
        changed.tools.push(crate::cache::ToolEntry {
            slug: "GMAIL_SEND_EMAIL".into(),
            name: "Send".into(),
            description: String::new(),
            range: None,
            hash: Some("h".into()),
            deprecated: false,
            compat: None,
            parameters: String::new(),
        });
        let (meta, changes, record) =
            next_meta(&previous, aggregate(vec![changed]), context(false, false));
        assert_eq!(changes.len(), 1);
        let record = record.unwrap();
        assert_eq!(meta.changes_record.as_deref(), Some(record.as_str()));
        assert_eq!(record.as_str(), "2026-11-02T00:00:01.000Z_sync-2");
    }

    #[test]
    fn a_full_pass_that_runs_out_of_time_is_marked_from_where_it_began() {
        let mut previous = gathered(vec![], &[], Some(vec![])).previous;
        let unfinished = |previous: &Previous, full, out_of_time| {
            next_meta(previous, aggregate(vec![]), context(full, out_of_time))
                .0
                .unfinished_full_pass
        };
        assert_eq!(
            unfinished(&previous, true, true).as_deref(),
            Some("2026-11-02T00:00:00.000Z")
        );
        assert_eq!(unfinished(&previous, true, false), None);
        previous.unfinished_full_pass = Some("2026-10-01T00:00:00.000Z".into());
        assert_eq!(
            unfinished(&previous, true, true).as_deref(),
            Some("2026-10-01T00:00:00.000Z"),
            "a resumed pass keeps its start"
        );
        assert_eq!(
            unfinished(&previous, false, true).as_deref(),
            Some("2026-10-01T00:00:00.000Z"),
            "an incremental run leaves the mark as it found it"
        );
        assert_eq!(unfinished(&previous, true, false), None);
    }
}
