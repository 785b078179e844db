//! Archive objects in a local folder, under the same keys as in S3.
//!
//! A put writes a hidden staging file next to the target, syncs it, renames it into place and
//! syncs the directories, so a reader sees the old object or the whole new one, and the object
//! survives a crash once `put` returns (the archiver deletes hot rows only after that).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::domain::archive::StorageClass;
use crate::ports::{ObjectStore, StoreError};

/// Staging files start with this; `list` skips them and keys may not use it.
const HIDDEN: char = '.';

pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    pub fn new(root: PathBuf) -> FolderStore {
        FolderStore { root }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let mut path = self.root.clone();
        for seg in segments(key)? {
            path.push(seg);
        }
        Ok(path)
    }
}

/// A key's segments: relative, `/`-separated, none empty or hidden (which rules out `.` and `..`).
fn segments(key: &str) -> Result<Vec<&str>, StoreError> {
    if key.is_empty() {
        return Err(bad_key());
    }
    let segs: Vec<&str> = key.split('/').collect();
    if segs.iter().all(|s| valid_segment(s)) { Ok(segs) } else { Err(bad_key()) }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(HIDDEN) && !s.contains(['\\', '\0'])
}

fn bad_key() -> StoreError {
    StoreError::Internal("invalid object key".into())
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("archive folder: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| StoreError::Internal(format!("archive folder task failed: {e}")))?
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

fn put_blocking(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(bad_key());
    };
    fs::create_dir_all(dir).map_err(io)?;
    let staging = dir.join(format!("{HIDDEN}{}.tmp-{}", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
    let written = File::create(&staging).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&staging, path)) {
        let _ = fs::remove_file(&staging);
        return Err(io(e));
    }
    // The rename, and any directory create_dir_all made, are durable only once their parents are synced.
    let mut d = Some(dir);
    while let Some(cur) = d {
        sync_dir(cur)?;
        if cur == root {
            break;
        }
        d = cur.parent().filter(|p| p.starts_with(root));
    }
    Ok(())
}

/// Keys of all files below `dir` (whose key is `dir_key`), skipping hidden entries and symlinks.
fn walk(dir: &Path, dir_key: &str, prefix: &str, out: &mut Vec<String>) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if !valid_segment(&name) {
            continue;
        }
        let key = if dir_key.is_empty() { name } else { format!("{dir_key}/{name}") };
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            // Descend only where keys can still match the prefix.
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(&entry.path(), &key, prefix, out)?;
            }
        } else if kind.is_file() && key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for FolderStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, _storage_class: StorageClass) -> Result<(), StoreError> {
        // The storage class only means something in S3; the catalog records it.
        let path = self.path_of(key)?;
        let root = self.root.clone();
        blocking(move || put_blocking(&root, &path, &bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key)?;
        blocking(move || match fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(io(e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Start at the deepest whole directory the prefix names; it must be a valid key path.
        let (dir_key, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let start = if dir_key.is_empty() { self.root.clone() } else { self.path_of(dir_key)? };
        let dir_key = dir_key.to_owned();
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut out = Vec::new();
            walk(&start, &dir_key, &prefix, &mut out)?;
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io(e)),
            }
            // Deleted data must stay deleted after a crash.
            match path.parent() {
                Some(dir) => sync_dir(dir),
                None => Ok(()),
            }
        })
        .await
    }
}
