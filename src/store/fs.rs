use super::{
    validate_prefix, ETag, ListedObject, ObjectKey, PutCondition, Store, StoreError, StoredObject,
};
use crate::cache::content_hash;
use async_trait::async_trait;
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// A directory on disk: `{dir}/{prefix}{name}`. Writes go to a temporary file
/// first and are renamed into place, so a reader never sees half an object.
///
/// `IfAbsent` is atomic across processes (a hard link fails if the name
/// exists); `IfMatch` is atomic within this process. Across processes the
/// sync lease keeps writers apart.
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

    async fn write_temp(&self, key: &ObjectKey, body: &[u8]) -> Result<PathBuf, StoreError> {
        let err = |e: std::io::Error| StoreError::backend("put", key, e);
        tokio::fs::create_dir_all(&self.dir).await.map_err(err)?;
        // Dot-names are never listed as objects.
        let temp = self
            .dir
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&temp).await.map_err(err)?;
        use tokio::io::AsyncWriteExt;
        let written = async {
            file.write_all(body).await?;
            file.sync_data().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err(e));
        }
        Ok(temp)
    }
}

fn etag_of(body: &[u8]) -> ETag {
    ETag(format!("\"{}\"", &content_hash(body)[..32]))
}

#[async_trait]
impl Store for FsStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(body) => Ok(Some(StoredObject {
                etag: etag_of(&body),
                body: Bytes::from(body),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend("get", key, e)),
        }
    }

    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        Ok(self.get(key).await?.map(|o| o.etag))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let etag = etag_of(&body);
        let target = self.path(key);
        let temp = self.write_temp(key, &body).await?;
        let io = |e: std::io::Error| StoreError::backend("put", key, e);
        let result = match condition {
            PutCondition::Overwrite => tokio::fs::rename(&temp, &target).await.map_err(io),
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
                match self.etag(key).await {
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

    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::backend("list", self.dir.display(), e)),
        };
        let mut listed = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| StoreError::backend("list", self.dir.display(), e))?
        {
            let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(ObjectKey::from_file_name)
            else {
                continue;
            };
            match entry.metadata().await {
                Ok(meta) if meta.is_file() => listed.push(ListedObject {
                    key,
                    size: meta.len(),
                }),
                _ => continue,
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
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
}
