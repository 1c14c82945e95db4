//! The storage port: one small trait, three adapters (S3, a directory, memory)
//! and one conformance suite that all of them pass.

mod fs;
mod memory;
mod s3;

#[cfg(any(test, feature = "testkit"))]
pub mod conformance;

pub use fs::FsStore;
pub use memory::MemoryStore;
pub use s3::{aws_environment, https_client, S3Store};

use crate::cache::Slug;
use async_trait::async_trait;
use bytes::Bytes;

/// Every object the service keeps. The store turns it into `{prefix}{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKey {
    /// `{slug}.json`, the replaced system's name.
    Toolkit(Slug),
    /// `_meta.json`, the replaced system's name.
    Meta,
    /// `_lease.json`: who is syncing right now.
    Lease,
    /// `_last_run.json`: the report of the last run, failed or not.
    LastRun,
    /// `_changes/{name}.json`: what one publishing sync changed.
    Changes(ChangesName),
    /// `_notifications.json`: which change sets each notification target has had.
    Notifications,
    /// `_objects/{slug}.{contentHash}.json`: one toolkit as one sync wrote it,
    /// immutable (its name is its content), named by the meta that indexes
    /// it: what readers serve, so an index and its objects always come from
    /// the same published sync.
    Snapshot(Slug, SnapshotHash),
}

/// The content hash in a snapshot's name: lower-case hex, at most 64 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotHash(String);

impl SnapshotHash {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a change record: `{RFC 3339 time}_{sync id}`, so names sort
/// by time. Only what such names hold passes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangesName(String);

impl ChangesName {
    pub fn new(at: &str, sync_id: &str) -> Option<Self> {
        Self::parse(&format!("{at}_{sync_id}"))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw.as_bytes()[0].is_ascii_digit()
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time part, RFC 3339 as written.
    pub fn at(&self) -> &str {
        self.0.split('_').next().unwrap_or_default()
    }
}

impl ObjectKey {
    /// The name under the prefix (`_changes/…` is one level down).
    pub fn file_name(&self) -> String {
        match self {
            Self::Toolkit(slug) => format!("{slug}.json"),
            Self::Meta => "_meta.json".into(),
            Self::Lease => "_lease.json".into(),
            Self::LastRun => "_last_run.json".into(),
            Self::Notifications => "_notifications.json".into(),
            Self::Changes(name) => format!("{CHANGES_DIR}/{}.json", name.as_str()),
            Self::Snapshot(slug, hash) => format!("{SNAPSHOTS_DIR}/{slug}.{}.json", hash.as_str()),
        }
    }

    /// The inverse of `file_name`; anything else under the prefix is not ours.
    pub fn from_file_name(name: &str) -> Option<Self> {
        if let Some(change) = name
            .strip_prefix(CHANGES_DIR)
            .and_then(|n| n.strip_prefix('/'))
        {
            return ChangesName::parse(change.strip_suffix(".json")?).map(Self::Changes);
        }
        if let Some(snapshot) = name
            .strip_prefix(SNAPSHOTS_DIR)
            .and_then(|n| n.strip_prefix('/'))
        {
            let (slug, hash) = snapshot.strip_suffix(".json")?.split_once('.')?;
            return Some(Self::Snapshot(
                Slug::parse(slug).ok()?,
                SnapshotHash::parse(hash)?,
            ));
        }
        match name {
            "_meta.json" => Some(Self::Meta),
            "_lease.json" => Some(Self::Lease),
            "_last_run.json" => Some(Self::LastRun),
            "_notifications.json" => Some(Self::Notifications),
            _ => Slug::parse(name.strip_suffix(".json")?)
                .ok()
                .map(Self::Toolkit),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// Where change records live under the prefix.
pub const CHANGES_DIR: &str = "_changes";

/// Where toolkit snapshots live under the prefix.
pub const SNAPSHOTS_DIR: &str = "_objects";

/// An opaque version tag: S3's ETag, or a content hash on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub body: Bytes,
    pub etag: ETag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: ObjectKey,
    pub size: u64,
    /// The same tag `get` and `put` give: it changes whenever the object does.
    pub etag: ETag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Write whatever is there.
    Overwrite,
    /// Only if nothing is there (S3 `If-None-Match: *`).
    IfAbsent,
    /// Only if what is there still has this tag (S3 `If-Match`).
    IfMatch(ETag),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: the object changed or exists already (condition not met)")]
    PreconditionFailed { key: String },
    /// Another conditional write to the same key was in flight (S3's 409
    /// `ConditionalRequestConflict`): nothing was decided, try again.
    #[error("{key}: a concurrent conditional write was in progress")]
    Conflict { key: String },
    #[error("{op} {key}: {detail}")]
    Backend {
        op: &'static str,
        key: String,
        detail: String,
    },
}

impl StoreError {
    pub fn backend(op: &'static str, key: impl ToString, detail: impl ToString) -> Self {
        Self::Backend {
            op,
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The object and its tag, or `None` if absent.
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError>;

    /// The tag alone, or `None` if absent.
    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError>;

    /// Writes a whole JSON object atomically: readers see the old or the new
    /// bytes, never a mix. Fails with `PreconditionFailed` if the condition does not hold.
    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError>;

    /// Removes an object; removing an absent one is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;

    /// Removes an object only if it still has this tag (`PreconditionFailed`
    /// otherwise); an absent object is not an error.
    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError>;

    /// Our objects directly under the prefix, sorted by key (change records aside).
    async fn list(&self) -> Result<Vec<ListedObject>, StoreError>;

    /// The change records (`_changes/`), sorted by name, that is by time.
    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError>;

    /// The toolkit snapshots (`_objects/`), sorted by key.
    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError>;

    /// Where this store writes, for logs and reports (`s3://bucket/prefix`).
    fn location(&self) -> String;

    /// Removes what killed writes left behind (a directory's temporary
    /// files) older than `older_than`, and says how many; a store whose
    /// writes leave nothing behind (S3) has nothing to do.
    async fn sweep_leftovers(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let _ = older_than;
        Ok(0)
    }
}

/// A key prefix is part of every key and path: only plain, relative segments.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.ends_with('/') {
        return Err(format!("prefix {prefix:?} must end with '/'"));
    }
    let segments: Vec<&str> = prefix.trim_end_matches('/').split('/').collect();
    for seg in segments {
        let ok = !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(format!(
                "prefix {prefix:?} may only hold segments of letters, digits, '-', '_' and '.'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_nothing_else_does() {
        for key in [
            ObjectKey::Meta,
            ObjectKey::Lease,
            ObjectKey::LastRun,
            ObjectKey::Notifications,
            ObjectKey::Toolkit(Slug::parse("github").unwrap()),
            ObjectKey::Changes(ChangesName::new("2026-01-01T00:00:00.000Z", "abc-1").unwrap()),
            ObjectKey::Snapshot(
                Slug::parse("github").unwrap(),
                SnapshotHash::parse("0a1b2c").unwrap(),
            ),
        ] {
            assert_eq!(ObjectKey::from_file_name(&key.file_name()), Some(key));
        }
        for other in [
            "_other.json",
            "github",
            ".tmp-1.json",
            "GitHub.json",
            "a/b.json",
            "_changes/../x.json",
            "_changes/x.json",
            "_changes/1/2.json",
            "_objects/github.json",
            "_objects/github.XYZ.json",
            "_objects/Git.abc.json",
            "_objects/a/b.abc.json",
        ] {
            assert_eq!(ObjectKey::from_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["", "composio-schemas/", "a/b_c/", "v1.2/"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["x", "/abs/", "../up/", "a//b/", "a/./", "sp ace/", "é/"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }
}
