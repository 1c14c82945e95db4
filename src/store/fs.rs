use super::{
    validate_prefix, ETag, ListedObject, ObjectKey, PutCondition, Store, StoreError, StoredObject,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

/// A directory on disk: `{dir}/{prefix}{name}`. Writes go to a temporary file
/// first and are renamed into place, so a reader never sees half an object.
///
/// `IfAbsent` is atomic across processes (a hard link fails if the name
/// exists); `IfMatch` and `delete_if_match` are atomic within this process.
/// Across processes the sync lease keeps writers apart.
///
/// The ETag is the file's identity, modification time and size (as web
/// servers derive theirs): a listing gives it without reading a byte, and any
/// change to the file, by us or by hand, changes it.
pub struct FsStore {
    dir: PathBuf,
    write_lock: Mutex<()>,
}

impl FsStore {
    pub fn new(root: impl AsRef<Path>, prefix: &str) -> Result<Self, StoreError> {
        validate_prefix(prefix).map_err(|e| StoreError::backend("open", prefix, e))?;
        Ok(Self {
            dir: root.as_ref().join(prefix),
            write_lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// The temporary file and the tag the object will have once it is moved
    /// into place (a rename or a link keeps identity, time and size). One
    /// blocking call for the whole file: each `tokio::fs` step would be a
    /// round trip to the blocking pool of its own.
    async fn write_temp(
        &self,
        key: &ObjectKey,
        body: Bytes,
    ) -> Result<(PathBuf, ETag), StoreError> {
        let target = self.path(key);
        // Beside its target, so the rename into place stays atomic.
        let dir = target.parent().unwrap_or(&self.dir).to_owned();
        let written = tokio::task::spawn_blocking(move || write_temp_file(&dir, &body)).await;
        let written = written.unwrap_or_else(|join| Err(std::io::Error::other(join)));
        written
            .map(|(temp, meta)| (temp, etag_of(&meta)))
            .map_err(|e| StoreError::backend("put", key, e))
    }

    async fn current_etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(meta) => Ok(Some(etag_of(&meta))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend("head", key, e)),
        }
    }
}

/// A new temporary file in `dir` holding `body`, on disk, and its metadata;
/// removed again if any step fails.
fn write_temp_file(dir: &Path, body: &[u8]) -> std::io::Result<(PathBuf, std::fs::Metadata)> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(body)?;
        file.sync_data()?;
        file.metadata()
    });
    match written {
        Ok(meta) => Ok((temp, meta)),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

fn etag_of(meta: &std::fs::Metadata) -> ETag {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    #[cfg(unix)]
    let identity = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let identity = 0u64;
    ETag(format!(
        "\"{identity:x}-{:x}-{:x}\"",
        modified.as_nanos(),
        meta.len()
    ))
}

#[async_trait]
impl Store for FsStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let err = |e: std::io::Error| StoreError::backend("get", key, e);
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        // The tag of the very file read, even if it is replaced meanwhile.
        let meta = file.metadata().await.map_err(err)?;
        let mut body = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut body).await.map_err(err)?;
        Ok(Some(StoredObject {
            etag: etag_of(&meta),
            body: Bytes::from(body),
        }))
    }

    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        self.current_etag(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let target = self.path(key);
        let (temp, etag) = self.write_temp(key, body).await?;
        let io = |e: std::io::Error| StoreError::backend("put", key, e);
        let result = match condition {
            PutCondition::Overwrite => match tokio::fs::rename(&temp, &target).await {
                // The temp name is gone: nothing to clean up.
                Ok(()) => return Ok(etag),
                Err(e) => Err(io(e)),
            },
            PutCondition::IfAbsent => match tokio::fs::hard_link(&temp, &target).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    Err(StoreError::PreconditionFailed {
                        key: key.to_string(),
                    })
                }
                Err(e) => Err(io(e)),
            },
            PutCondition::IfMatch(want) => {
                let _guard = self.write_lock.lock().await;
                match self.current_etag(key).await {
                    Ok(Some(found)) if found == want => {
                        tokio::fs::rename(&temp, &target).await.map_err(io)
                    }
                    Ok(_) => Err(StoreError::PreconditionFailed {
                        key: key.to_string(),
                    }),
                    Err(e) => Err(e),
                }
            }
        };
        // After a rename the temp name is gone; after a link or a refusal it is not.
        let _ = tokio::fs::remove_file(&temp).await;
        result?;
        Ok(etag)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::backend("delete", key, e)),
        }
    }

    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        match self.current_etag(key).await? {
            None => Ok(()),
            Some(found) if &found == etag => self.delete(key).await,
            Some(_) => Err(StoreError::PreconditionFailed {
                key: key.to_string(),
            }),
        }
    }

    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_dir(&self.dir, "").await
    }

    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_dir(
            &self.dir.join(super::CHANGES_DIR),
            &format!("{}/", super::CHANGES_DIR),
        )
        .await
    }

    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_dir(
            &self.dir.join(super::SNAPSHOTS_DIR),
            &format!("{}/", super::SNAPSHOTS_DIR),
        )
        .await
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn sweep_leftovers(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let mut removed = 0;
        for dir in [
            self.dir.clone(),
            self.dir.join(super::CHANGES_DIR),
            self.dir.join(super::SNAPSHOTS_DIR),
        ] {
            removed += sweep_temporaries(&dir, older_than).await?;
        }
        Ok(removed)
    }
}

/// Removes the temporary files in `dir` (a write killed between its
/// temporary file and the rename) last touched more than `older_than` ago:
/// a write in flight is younger than one store operation.
async fn sweep_temporaries(
    dir: &Path,
    older_than: std::time::Duration,
) -> Result<usize, StoreError> {
    let err = |e: std::io::Error| StoreError::backend("sweep", dir.display(), e);
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(err(e)),
    };
    let mut removed = 0;
    // Bounded: a directory holds our objects and a few leftovers at most.
    for _ in 0..1_000_000 {
        let Some(entry) = entries.next_entry().await.map_err(err)? else {
            break;
        };
        let temporary = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        let old = entry
            .metadata()
            .await
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= older_than);
        if temporary && old {
            match tokio::fs::remove_file(entry.path()).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            }
        }
    }
    Ok(removed)
}

/// Temporary files begin so; dot-names are never listed as objects.
const TEMP_PREFIX: &str = ".tmp-";

impl FsStore {
    /// The objects of one directory; `prefix` turns a file name into a key name.
    async fn list_dir(&self, dir: &Path, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::backend("list", dir.display(), e)),
        };
        let mut listed = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| StoreError::backend("list", dir.display(), e))?
        {
            let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|name| ObjectKey::from_file_name(&format!("{prefix}{name}")))
            else {
                continue;
            };
            match entry.metadata().await {
                Ok(meta) if meta.is_file() => listed.push(ListedObject {
                    key,
                    size: meta.len(),
                    etag: etag_of(&meta),
                }),
                _ => continue,
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::run_all(&FsStore::new(dir.path(), "composio-schemas/").unwrap())
            .await;
    }

    #[tokio::test]
    async fn leaves_no_temporary_files_and_refuses_bad_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path(), "").unwrap();
        store
            .put(
                &ObjectKey::Meta,
                Bytes::from_static(b"{}"),
                PutCondition::Overwrite,
            )
            .await
            .unwrap();
        let _ = store
            .put(
                &ObjectKey::Meta,
                Bytes::from_static(b"{}"),
                PutCondition::IfAbsent,
            )
            .await;
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["_meta.json"]);
        assert!(FsStore::new(dir.path(), "../escape/").is_err());
    }

    #[tokio::test]
    async fn an_edit_by_hand_changes_the_listed_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path(), "").unwrap();
        let key = ObjectKey::Meta;
        let written = store
            .put(
                &key,
                Bytes::from_static(b"{\"a\":1}"),
                PutCondition::Overwrite,
            )
            .await
            .unwrap();
        // Same size, edited in place, as an editor or a restore might.
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(dir.path().join("_meta.json"), b"{\"a\":2}").unwrap();
        let listed = store.list().await.unwrap();
        assert_ne!(listed[0].etag, written);
        assert_eq!(
            Some(listed[0].etag.clone()),
            store.etag(&key).await.unwrap()
        );
        assert_eq!(store.get(&key).await.unwrap().unwrap().etag, listed[0].etag);
    }

    #[tokio::test]
    async fn old_temporary_files_are_swept_and_objects_and_young_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path(), "p/").unwrap();
        store
            .put(
                &ObjectKey::Meta,
                Bytes::from_static(b"{}"),
                PutCondition::Overwrite,
            )
            .await
            .unwrap();
        let changes = dir.path().join("p/_changes");
        std::fs::create_dir_all(&changes).unwrap();
        // What a write killed between its temporary file and the rename leaves.
        std::fs::write(dir.path().join("p/.tmp-dead1"), b"half").unwrap();
        std::fs::write(changes.join(".tmp-dead2"), b"half").unwrap();
        std::fs::write(dir.path().join("p/.keep-me"), b"not ours").unwrap();
        let young = std::time::Duration::from_secs(3600);
        assert_eq!(
            store.sweep_leftovers(young).await.unwrap(),
            0,
            "young: a write may be in flight"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        let swept = store
            .sweep_leftovers(std::time::Duration::from_millis(10))
            .await
            .unwrap();
        assert_eq!(swept, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("p"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".keep-me", "_changes", "_meta.json"]);
        assert_eq!(std::fs::read_dir(&changes).unwrap().count(), 0);
    }
}
