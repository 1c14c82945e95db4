//! The sync's decisions, as pure functions over values: which toolkits to
//! sync (plan), whether the plan drops too much (shrink guard), which to fetch
//! and why (diff), whether a fetched object needs writing, and the next index
//! from what happened (aggregate). The engine only sequences I/O around them.

use super::{Failure, IndexEntry, Slug};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The toolkits a sync covers, in order, and the slugs refused on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub slugs: Vec<Slug>,
    pub refused: Vec<Failure>,
}

/// Unique toolkit slugs of the auth configs, then the no-auth ones.
/// `redact` cleans a refused raw slug before it is reported.
pub fn plan_toolkits(
    auth_config_slugs: impl IntoIterator<Item = String>,
    no_auth: &[Slug],
    redact: impl Fn(&str) -> String,
) -> Plan {
    let mut seen = BTreeSet::new();
    let mut plan = Plan {
        slugs: Vec::new(),
        refused: Vec::new(),
    };
    let raw = auth_config_slugs
        .into_iter()
        .chain(no_auth.iter().map(|s| s.to_string()));
    for raw in raw {
        match Slug::from_upstream(&raw) {
            Ok(slug) => {
                if seen.insert(slug.clone()) {
                    plan.slugs.push(slug);
                }
            }
            Err(e) => {
                let shown: String = redact(&raw).chars().take(120).collect();
                if !plan.refused.iter().any(|f| f.slug == shown) {
                    plan.refused.push(Failure {
                        slug: shown,
                        error: format!("refused toolkit slug from upstream: {e}"),
                    });
                }
            }
        }
    }
    plan
}

/// A plan that would drop too many of the published toolkits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "this sync would drop {dropped} of the {published} published toolkits ({percent:.0} %, more than the {max_percent:.0} % SYNC_MAX_SHRINK allows) and keep {kept}; \
     nothing was published or deleted. If the project really lost them, sync again with --allow-shrink (CLI) or {{\"allowShrink\": true}}"
)]
pub struct Shrink {
    pub published: usize,
    pub kept: usize,
    pub dropped: usize,
    pub percent: f64,
    pub max_percent: f64,
}

/// An upstream glitch (no auth configs, another project's key) must not wipe
/// the cache: refuse a plan that drops more than `max_shrink` (0..=1) of it.
pub fn shrink_guard(
    published: &[IndexEntry],
    planned: &[Slug],
    max_shrink: f64,
) -> Result<(), Shrink> {
    if published.is_empty() {
        return Ok(());
    }
    let planned: BTreeSet<&Slug> = planned.iter().collect();
    let dropped = published
        .iter()
        .filter(|e| !planned.contains(&e.slug))
        .count();
    let share = dropped as f64 / published.len() as f64;
    if share > max_shrink {
        return Err(Shrink {
            published: published.len(),
            kept: published.len() - dropped,
            dropped,
            percent: share * 100.0,
            max_percent: max_shrink * 100.0,
        });
    }
    Ok(())
}

/// What the toolkit listing says of a toolkit, as far as the diff cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub version: Option<String>,
    pub updated_at: Option<String>,
}

/// Why a toolkit is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchReason {
    /// A full sync fetches everything.
    Full,
    /// Not in the published index.
    New,
    /// The last sync failed for it.
    Stale,
    /// The listing names a different version or update time.
    Changed,
    /// The listing does not name it (or could not be read): check it.
    Unlisted,
    /// Indexed by a release that derived less from it (an older
    /// [`INDEX_FORMAT`](super::INDEX_FORMAT)): fetched once to derive the rest.
    Outdated,
    /// Its object is not what the index says: missing, edited, rolled back,
    /// or written by a run that never published.
    Repair(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep(Box<IndexEntry>),
    Fetch { slug: Slug, reason: FetchReason },
}

/// The store's view of an object: its ETag as listed now.
pub type StoredEtags = BTreeMap<Slug, String>;

/// Why an indexed object cannot be trusted, if it cannot.
pub fn object_fault(entry: &IndexEntry, stored: &StoredEtags) -> Option<String> {
    match (stored.get(&entry.slug), &entry.etag) {
        (None, _) => Some("its object is missing from the store".into()),
        (Some(_), None) => Some("the index does not record its object's ETag".into()),
        (Some(found), Some(want)) if found != want => Some(format!(
            "its object changed outside a published sync (ETag {found}, the index says {want})"
        )),
        _ => None,
    }
}

/// How much a sync refetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// What the listing says changed, and whatever needs repair.
    Incremental,
    /// Everything.
    Full,
    /// A full pass that ran out of time, resumed: what it synced at or after
    /// `since` (RFC 3339, as `synced_at`) is done; the rest is fetched.
    ResumeFull { since: &'a str },
}

/// Which planned toolkits to fetch and why; the rest are kept as indexed.
/// `listing` is `None` when it could not be read (then everything is fetched).
pub fn diff(
    planned: &[Slug],
    previous: &HashMap<&Slug, &IndexEntry>,
    stored: &StoredEtags,
    listing: Option<&HashMap<String, Listed>>,
    mode: Mode<'_>,
) -> Vec<Decision> {
    planned
        .iter()
        .map(|slug| {
            let fetch = |reason| Decision::Fetch {
                slug: slug.clone(),
                reason,
            };
            let Some(entry) = previous.get(slug) else {
                return fetch(FetchReason::New);
            };
            if let Some(fault) = object_fault(entry, stored) {
                return fetch(FetchReason::Repair(fault));
            }
            match mode {
                Mode::Full => return fetch(FetchReason::Full),
                // Timestamps share one format, so they order as text.
                Mode::ResumeFull { since } if entry.stale || entry.synced_at.as_str() < since => {
                    return fetch(FetchReason::Full)
                }
                Mode::ResumeFull { .. } => return Decision::Keep(Box::new((*entry).clone())),
                Mode::Incremental => {}
            }
            if entry.stale {
                return fetch(FetchReason::Stale);
            }
            if entry.index_format < super::INDEX_FORMAT {
                return fetch(FetchReason::Outdated);
            }
            match listing.and_then(|l| l.get(slug.as_str())) {
                None => fetch(FetchReason::Unlisted),
                Some(listed)
                    if entry.version.is_some()
                        && listed.version == entry.version
                        && listed.updated_at == entry.updated_at =>
                {
                    Decision::Keep(Box::new((*entry).clone()))
                }
                Some(_) => fetch(FetchReason::Changed),
            }
        })
        .collect()
}

/// A fetched toolkit needs writing unless its object is already, byte for
/// byte, what the index says and what was just fetched.
pub fn needs_write(previous: Option<&IndexEntry>, stored: &StoredEtags, new_hash: &str) -> bool {
    match previous {
        Some(entry) => entry.content_hash != new_hash || object_fault(entry, stored).is_some(),
        None => true,
    }
}

/// How one fetched toolkit ended.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutcome {
    /// Fetched; `written` when its object was (re)written.
    Synced {
        entry: Box<IndexEntry>,
        written: bool,
    },
    Failed(Failure),
}

/// The next index and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub index: Vec<IndexEntry>,
    pub failures: Vec<Failure>,
    /// Objects to delete once the new meta is published.
    pub to_delete: Vec<Slug>,
    /// Objects the index no longer names because their fetch failed and they
    /// were not the objects it described: never served, never deleted while
    /// the toolkit is still in the project (an upstream outage must not wipe
    /// them), tracked in the meta's pending deletes until a sync rewrites
    /// them or the toolkit leaves the project.
    pub held: Vec<Slug>,
    pub fetched: usize,
    pub written: usize,
    /// Kept without a fetch, or fetched and identical.
    pub unchanged: usize,
}

/// Nothing to publish: every fetched toolkit failed and none was kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("every toolkit failed; nothing was published")]
pub struct AllFailed {
    pub fetched: usize,
    pub failures: Vec<Failure>,
}

/// The next index from what the diff kept and what the fetches gave. A
/// failed toolkit keeps its last good object (marked stale) only while that
/// object is still the one the index describes; otherwise it leaves the index
/// but its object is held, not deleted. Deletes cover what the previous index
/// named or still had pending, and nothing else under the prefix.
pub fn aggregate(
    previous: &[IndexEntry],
    previous_pending: &[Slug],
    stored: &StoredEtags,
    kept: Vec<IndexEntry>,
    outcomes: Vec<(Slug, FetchOutcome)>,
    mut failures: Vec<Failure>,
) -> Result<Aggregate, AllFailed> {
    let previous_by_slug: HashMap<&Slug, &IndexEntry> =
        previous.iter().map(|e| (&e.slug, e)).collect();
    let mut aggregate = Aggregate {
        index: Vec::new(),
        failures: Vec::new(),
        to_delete: Vec::new(),
        held: Vec::new(),
        fetched: outcomes.len(),
        written: 0,
        unchanged: kept.len(),
    };
    let kept_any = !kept.is_empty();
    let mut index: BTreeMap<Slug, IndexEntry> =
        kept.into_iter().map(|e| (e.slug.clone(), e)).collect();
    let mut synced = 0;
    for (slug, outcome) in outcomes {
        match outcome {
            FetchOutcome::Synced { entry, written } => {
                synced += 1;
                if written {
                    aggregate.written += 1;
                } else {
                    aggregate.unchanged += 1;
                }
                index.insert(slug, *entry);
            }
            FetchOutcome::Failed(failure) => {
                let last_good = previous_by_slug
                    .get(&slug)
                    .filter(|e| object_fault(e, stored).is_none());
                if let Some(last_good) = last_good {
                    let mut stale = (*last_good).clone();
                    stale.stale = true;
                    stale.last_error = Some(failure.error.clone());
                    index.insert(slug, stale);
                }
                failures.push(failure);
            }
        }
    }
    failures.sort_by(|a, b| a.slug.cmp(&b.slug));
    if aggregate.fetched > 0 && synced == 0 && !kept_any {
        return Err(AllFailed {
            fetched: aggregate.fetched,
            failures,
        });
    }
    let ours: BTreeSet<&Slug> = previous
        .iter()
        .map(|e| &e.slug)
        .chain(previous_pending)
        .collect();
    let failed_now: BTreeSet<&str> = failures.iter().map(|f| f.slug.as_str()).collect();
    let (held, to_delete): (Vec<Slug>, Vec<Slug>) = ours
        .into_iter()
        .filter(|s| !index.contains_key(*s) && stored.contains_key(*s))
        .cloned()
        .partition(|s| failed_now.contains(s.as_str()));
    aggregate.to_delete = to_delete;
    aggregate.held = held;
    aggregate.failures = failures;
    aggregate.index = index.into_values().collect();
    Ok(aggregate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::INDEX_FORMAT;

    fn slug(s: &str) -> Slug {
        Slug::parse(s).unwrap()
    }

    fn entry(s: &str, version: &str) -> IndexEntry {
        IndexEntry {
            left_out: Vec::new(),
            slug: slug(s),
            name: s.into(),
            logo: String::new(),
            tool_count: 1,
            version: Some(version.into()),
            updated_at: Some("u".into()),
            content_hash: format!("hash-{s}-{version}"),
            etag: Some(format!("etag-{s}")),
            snapshot_etag: None,
            synced_at: "t".into(),
            stale: false,
            last_error: None,
            tools: vec![],
            triggers: vec![],
            index_format: crate::cache::INDEX_FORMAT,
        }
    }

    fn listed(version: &str) -> Listed {
        Listed {
            version: Some(version.into()),
            updated_at: Some("u".into()),
        }
    }

    fn stored(entries: &[&IndexEntry]) -> StoredEtags {
        entries
            .iter()
            .map(|e| (e.slug.clone(), e.etag.clone().unwrap()))
            .collect()
    }

    #[test]
    fn the_plan_dedupes_normalises_and_adds_no_auth_toolkits_once() {
        let plan = plan_toolkits(
            ["gmail", "GitHub", "gmail", "../etc", "browser_tool"].map(String::from),
            &[slug("browser_tool"), slug("codeinterpreter")],
            |s| s.replace("etc", "[x]"),
        );
        let names: Vec<&str> = plan.slugs.iter().map(Slug::as_str).collect();
        assert_eq!(
            names,
            ["gmail", "github", "browser_tool", "codeinterpreter"]
        );
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].slug, "../[x]");
    }

    #[test]
    fn the_shrink_guard_refuses_losing_more_than_allowed() {
        let published: Vec<IndexEntry> =
            ["a", "b", "c", "d"].iter().map(|s| entry(s, "1")).collect();
        assert!(
            shrink_guard(&published, &[slug("a"), slug("b")], 0.5).is_ok(),
            "half is allowed"
        );
        let err = shrink_guard(&published, &[slug("a")], 0.5).unwrap_err();
        assert_eq!((err.published, err.kept, err.dropped), (4, 1, 3));
        assert!(err.to_string().contains("drop 3 of the 4"), "{err}");
        assert!(
            shrink_guard(&published, &[], 1.0).is_ok(),
            "1.0 allows anything"
        );
        assert!(
            shrink_guard(&[], &[], 0.0).is_ok(),
            "nothing published, nothing to lose"
        );
        assert!(shrink_guard(&published, &[slug("x")], 0.5).is_err());
    }

    #[test]
    fn the_diff_keeps_what_is_unchanged_and_says_why_it_fetches_the_rest() {
        let same = entry("same", "1");
        let bumped = entry("bumped", "1");
        let mut stale = entry("stale", "1");
        stale.stale = true;
        let missing = entry("missing", "1");
        let edited = entry("edited", "1");
        let unlisted = entry("unlisted", "1");
        let mut etags = stored(&[&same, &bumped, &stale, &edited, &unlisted]);
        etags.insert(slug("edited"), "someone-else".into());
        let previous: HashMap<&Slug, &IndexEntry> =
            [&same, &bumped, &stale, &missing, &edited, &unlisted]
                .into_iter()
                .map(|e| (&e.slug, e))
                .collect();
        let listing: HashMap<String, Listed> = [
            ("same", listed("1")),
            ("bumped", listed("2")),
            ("stale", listed("1")),
            ("missing", listed("1")),
            ("edited", listed("1")),
            ("new", listed("1")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let planned: Vec<Slug> = [
            "same", "bumped", "stale", "missing", "edited", "unlisted", "new",
        ]
        .iter()
        .map(|s| slug(s))
        .collect();
        let decisions = diff(
            &planned,
            &previous,
            &etags,
            Some(&listing),
            Mode::Incremental,
        );
        let reasons: Vec<String> = decisions
            .iter()
            .map(|d| match d {
                Decision::Keep(e) => format!("keep {}", e.slug),
                Decision::Fetch { slug, reason } => format!("{slug}: {reason:?}"),
            })
            .collect();
        assert_eq!(reasons[0], "keep same");
        assert_eq!(reasons[1], "bumped: Changed");
        assert_eq!(reasons[2], "stale: Stale");
        assert!(
            reasons[3].starts_with("missing: Repair(\"its object is missing"),
            "{}",
            reasons[3]
        );
        assert!(
            reasons[4].contains("changed outside a published sync"),
            "{}",
            reasons[4]
        );
        assert_eq!(reasons[5], "unlisted: Unlisted");
        assert_eq!(reasons[6], "new: New");

        // Without a listing everything indexed is checked; a full sync fetches all.
        let no_listing = diff(&planned, &previous, &etags, None, Mode::Incremental);
        assert!(no_listing
            .iter()
            .all(|d| matches!(d, Decision::Fetch { .. })));
        // An entry a release that derived less wrote is fetched once, even unchanged.
        let mut outdated = entry("same", "1");
        outdated.index_format = INDEX_FORMAT - 1;
        let older: HashMap<&Slug, &IndexEntry> = [(&outdated.slug, &outdated)].into();
        let again = diff(
            &planned[..1],
            &older,
            &etags,
            Some(&listing),
            Mode::Incremental,
        );
        assert_eq!(
            again,
            [Decision::Fetch {
                slug: slug("same"),
                reason: FetchReason::Outdated
            }]
        );
        let full = diff(&planned[..1], &previous, &etags, Some(&listing), Mode::Full);
        assert_eq!(
            full,
            [Decision::Fetch {
                slug: slug("same"),
                reason: FetchReason::Full
            }]
        );
    }

    #[test]
    fn a_resumed_full_pass_fetches_only_what_it_has_not_done() {
        let mut done = entry("done", "1");
        done.synced_at = "2026-01-01T10:05:00.000Z".into();
        let mut left = entry("left", "1");
        left.synced_at = "2026-01-01T09:00:00.000Z".into();
        let mut failed = entry("failed", "1");
        failed.synced_at = "2026-01-01T10:06:00.000Z".into();
        failed.stale = true;
        let etags = stored(&[&done, &left, &failed]);
        let previous: HashMap<&Slug, &IndexEntry> = [&done, &left, &failed]
            .into_iter()
            .map(|e| (&e.slug, e))
            .collect();
        let planned = [slug("done"), slug("left"), slug("failed"), slug("new")];
        let since = "2026-01-01T10:00:00.000Z";
        let decisions = diff(
            &planned,
            &previous,
            &etags,
            None,
            Mode::ResumeFull { since },
        );
        let fetched: Vec<&str> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Fetch { slug, .. } => Some(slug.as_str()),
                Decision::Keep(_) => None,
            })
            .collect();
        assert_eq!(fetched, ["left", "failed", "new"]);
    }

    #[test]
    fn a_write_is_skipped_only_for_identical_trusted_objects() {
        let e = entry("a", "1");
        let etags = stored(&[&e]);
        assert!(!needs_write(Some(&e), &etags, &e.content_hash));
        assert!(needs_write(Some(&e), &etags, "other-hash"));
        assert!(
            needs_write(Some(&e), &StoredEtags::new(), &e.content_hash),
            "missing object"
        );
        assert!(needs_write(None, &etags, &e.content_hash), "new toolkit");
    }

    fn failed(s: &str) -> (Slug, FetchOutcome) {
        (
            slug(s),
            FetchOutcome::Failed(Failure {
                slug: s.into(),
                error: "HTTP 502".into(),
            }),
        )
    }

    #[test]
    fn aggregation_keeps_last_good_copies_holds_what_failed_and_deletes_only_what_it_owned() {
        let a = entry("a", "1");
        let b = entry("b", "1");
        let gone = entry("gone", "1");
        let tampered = entry("tampered", "1");
        let previous = vec![a.clone(), b.clone(), gone.clone(), tampered.clone()];
        let mut etags = stored(&[&a, &b, &gone, &tampered]);
        etags.insert(slug("tampered"), "edited".into());
        etags.insert(slug("pending"), "p".into());
        etags.insert(slug("foreign"), "f".into());
        let mut a2 = entry("a", "2");
        a2.etag = Some("new".into());
        let result = aggregate(
            &previous,
            &[slug("pending")],
            &etags,
            vec![],
            vec![
                (
                    slug("a"),
                    FetchOutcome::Synced {
                        entry: Box::new(a2.clone()),
                        written: true,
                    },
                ),
                failed("b"),
                failed("tampered"),
            ],
            vec![],
        )
        .unwrap();
        let slugs: Vec<&str> = result.index.iter().map(|e| e.slug.as_str()).collect();
        assert_eq!(slugs, ["a", "b"], "b kept stale; tampered cannot be kept");
        assert!(result.index[1].stale);
        assert_eq!(result.index[1].last_error.as_deref(), Some("HTTP 502"));
        assert_eq!(result.failures.len(), 2);
        let deletes: Vec<&str> = result.to_delete.iter().map(Slug::as_str).collect();
        assert_eq!(deletes, ["gone", "pending"], "never foreign");
        // A toolkit still in the project whose fetch failed is never deleted,
        // even when its object cannot be served.
        let held: Vec<&str> = result.held.iter().map(Slug::as_str).collect();
        assert_eq!(held, ["tampered"]);
        assert_eq!(
            (result.fetched, result.written, result.unchanged),
            (3, 1, 0)
        );
    }

    #[test]
    fn every_fetch_failing_with_nothing_kept_is_all_failed() {
        let previous = vec![entry("a", "1")];
        let etags = stored(&[&previous[0]]);
        let all = aggregate(&previous, &[], &etags, vec![], vec![failed("a")], vec![]).unwrap_err();
        assert_eq!((all.fetched, all.failures.len()), (1, 1));
        let kept = aggregate(
            &previous,
            &[],
            &etags,
            vec![entry("a", "1")],
            vec![failed("b")],
            vec![],
        );
        assert!(kept.is_ok(), "a kept toolkit is something to publish");
        let nothing = aggregate(&[], &[], &StoredEtags::new(), vec![], vec![], vec![]);
        assert!(
            nothing.unwrap().index.is_empty(),
            "an empty project publishes an empty index"
        );
    }
}
