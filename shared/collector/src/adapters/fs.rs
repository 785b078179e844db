//! Archive objects in a local folder, under the same keys as in S3.
//!
//! A put writes a hidden staging file next to the target, syncs it, renames it into place and
//! syncs the directories, so a reader sees the old object or the whole new one, and the object
//! survives a crash once `put` returns (the archiver deletes hot rows only after that). A
//! streamed write ([`ObjectStore::writer`]) does the same with the staging file filled chunk by
//! chunk; `abort` (or dropping the writer) removes the staging file.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::domain::archive::{ClassPolicy, StorageClass};
// Staging files start with `HIDDEN`: `list` skips them and keys may not use it.
use crate::ports::keys::{HIDDEN, bad_key, check_key, key_segments, valid_segment};
use crate::ports::{FinishedObject, ObjectStore, ObjectStream, ObjectWriter, StoreError};

/// A streamed write goes to disk in blocks of about this size.
const WRITE_BLOCK: usize = 256 * 1024;
/// A reader yields chunks of this size.
const READ_CHUNK: usize = 64 * 1024;
/// In a staging file's name, between the target's name and a random suffix.
const STAGING_TAG: &str = ".tmp-";

pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    pub fn new(root: PathBuf) -> FolderStore {
        FolderStore { root }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let mut path = self.root.clone();
        for seg in key_segments(key)? {
            path.push(seg);
        }
        Ok(path)
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::backend("archive folder", e)
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

/// A fresh hidden staging file next to `path` (directories created).
fn create_staging(path: &Path) -> Result<(File, PathBuf), StoreError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(bad_key());
    };
    fs::create_dir_all(dir).map_err(io)?;
    let staging = dir.join(format!("{HIDDEN}{}{STAGING_TAG}{}", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
    let file = File::create(&staging).map_err(io)?;
    Ok((file, staging))
}

/// Sync the filled staging file, rename it onto `path` and sync the directories up to `root`.
/// On failure the staging file is removed.
fn commit_staging(root: &Path, file: File, staging: &Path, path: &Path) -> Result<(), StoreError> {
    if let Err(e) = file.sync_all().and_then(|()| fs::rename(staging, path)) {
        let _ = fs::remove_file(staging);
        return Err(io(e));
    }
    drop(file);
    sync_dirs_up(root, path)
}

/// Sync the directories from `path`'s up to `root` and `root`'s parent: the rename, and any
/// directory `create_dir_all` made (the root itself on a first write), are durable only once
/// their parents are synced.
fn sync_dirs_up(root: &Path, path: &Path) -> Result<(), StoreError> {
    let mut d = path.parent();
    while let Some(cur) = d {
        sync_dir(cur)?;
        if cur == root {
            if let Some(parent) = root.parent() {
                sync_dir(parent)?;
            }
            break;
        }
        d = cur.parent().filter(|p| p.starts_with(root));
    }
    Ok(())
}

/// [`ObjectStore::make_durable`] for a file: its bytes, then its directories.
fn make_durable_blocking(root: &Path, path: &Path) -> Result<(), StoreError> {
    match File::open(path) {
        Ok(f) => f.sync_all().map_err(io)?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound),
        Err(e) => return Err(io(e)),
    }
    sync_dirs_up(root, path)
}

fn put_blocking(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let (mut file, staging) = create_staging(path)?;
    if let Err(e) = file.write_all(bytes) {
        let _ = fs::remove_file(&staging);
        return Err(io(e));
    }
    commit_staging(root, file, &staging, path)
}

/// A streamed write into a staging file. `file` is `None` only while a block is being written
/// on the blocking pool, or after a failed write.
struct FolderWriter {
    root: PathBuf,
    path: PathBuf,
    staging: PathBuf,
    file: Option<File>,
    buf: BytesMut,
    written: i64,
    class: ClassPolicy,
    /// Set once the staging file was renamed or removed: nothing for `Drop` to clean.
    done: bool,
}

impl FolderWriter {
    /// Write the buffered block to the staging file.
    async fn flush_block(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(mut file) = self.file.take() else {
            return Err(StoreError::Internal("archive folder: writer failed earlier".into()));
        };
        let block = self.buf.split().freeze();
        let file = blocking(move || {
            file.write_all(&block).map_err(io)?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for FolderWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.written += chunk.len() as i64;
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= WRITE_BLOCK { self.flush_block().await } else { Ok(()) }
    }

    async fn finish(mut self: Box<Self>) -> Result<FinishedObject, StoreError> {
        self.flush_block().await?;
        let Some(file) = self.file.take() else {
            return Err(StoreError::Internal("archive folder: writer failed earlier".into()));
        };
        self.done = true;
        let (root, staging, path) = (self.root.clone(), self.staging.clone(), self.path.clone());
        blocking(move || commit_staging(&root, file, &staging, &path)).await?;
        Ok(FinishedObject { bytes: self.written, storage_class: self.class.pick(self.written) })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.done = true;
        drop(self.file.take());
        let staging = self.staging.clone();
        blocking(move || match fs::remove_file(&staging) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        })
        .await
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        if !self.done {
            // Neither finished nor aborted (an error or a cancelled future): leave no staging file.
            drop(self.file.take());
            let _ = fs::remove_file(&self.staging);
        }
    }
}

/// The next chunk of an open file, read on the blocking pool; the file comes back for the next one.
async fn read_chunk(mut file: File) -> Result<Option<(Bytes, File)>, StoreError> {
    blocking(move || {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = loop {
            match file.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
    .await
}

/// Remove the staging files below `dir` (a writer's, whose process died before it finished or
/// aborted) last written before `cutoff`, counting them in `removed`. Their bytes may hold
/// records deleted since, so they must not stay.
fn remove_stale_staging(dir: &Path, cutoff: SystemTime, removed: &mut u64) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut here = 0;
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() && valid_segment(&name) {
            remove_stale_staging(&entry.path(), cutoff, removed)?;
        } else if kind.is_file()
            && is_staging_name(&name)
            && entry.metadata().and_then(|m| m.modified()).map_err(io)? < cutoff
        {
            match fs::remove_file(entry.path()) {
                Ok(()) => here += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
    }
    if here > 0 {
        sync_dir(dir)?;
        *removed += here;
    }
    Ok(())
}

/// Whether a file name is one [`create_staging`] makes.
fn is_staging_name(name: &str) -> bool {
    name.starts_with(HIDDEN) && name.contains(STAGING_TAG)
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
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
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
    async fn make_durable(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        let root = self.root.clone();
        blocking(move || make_durable_blocking(&root, &path)).await
    }

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

    async fn writer(&self, key: &str, class: ClassPolicy) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let path = self.path_of(key)?;
        let (file, staging, path) = blocking(move || {
            let (file, staging) = create_staging(&path)?;
            Ok((file, staging, path))
        })
        .await?;
        Ok(Box::new(FolderWriter {
            root: self.root.clone(),
            path,
            staging,
            file: Some(file),
            buf: BytesMut::with_capacity(WRITE_BLOCK),
            written: 0,
            class,
            done: false,
        }))
    }

    async fn remove_abandoned_writes(&self, prefix: &str, older_than: Duration) -> Result<u64, StoreError> {
        let dir = self.path_of(prefix.trim_end_matches('/'))?;
        blocking(move || {
            let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
            let mut removed = 0;
            remove_stale_staging(&dir, cutoff, &mut removed)?;
            Ok(removed)
        })
        .await
    }

    async fn reader(&self, key: &str) -> Result<ObjectStream, StoreError> {
        let path = self.path_of(key)?;
        let file = blocking(move || {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound),
                Err(e) => return Err(io(e)),
            };
            // A directory opens fine on Unix but is not an object.
            if !file.metadata().map_err(io)?.is_file() {
                return Err(StoreError::NotFound);
            }
            Ok(file)
        })
        .await?;
        Ok(futures::stream::try_unfold(file, read_chunk).boxed())
    }

    async fn presigned_get(&self, key: &str, _expires: Duration) -> Result<Option<String>, StoreError> {
        // A folder has no URL to hand out; the caller streams the object itself.
        check_key(key)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file below `dir`, hidden ones included.
    fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("read dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                all_files(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }

    /// An existing object is made durable; a missing one is NotFound, as a read would be.
    #[tokio::test]
    async fn make_durable_syncs_an_object_and_knows_a_missing_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStore::new(dir.path().join("objects"));
        let key = "archive/platform=n8n/date=2026-01-05/run-0.jsonl.gz";
        assert!(matches!(store.make_durable(key).await, Err(StoreError::NotFound)));
        store.put(key, b"bytes".to_vec(), StorageClass::Standard).await.expect("put");
        store.make_durable(key).await.expect("durable");
        assert_eq!(store.get(key).await.expect("get"), b"bytes");
    }

    #[tokio::test]
    async fn no_staging_file_survives_finish_abort_or_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStore::new(dir.path().to_path_buf());
        let key = "archive/platform=n8n/date=2026-01-05/run-0.jsonl.gz";
        let big = Bytes::from(vec![7u8; WRITE_BLOCK + 10]);

        let mut w = store.writer(key, ClassPolicy::BySize).await.expect("writer");
        w.write(big.clone()).await.expect("write");
        w.abort().await.expect("abort");
        let mut w = store.writer(key, ClassPolicy::BySize).await.expect("writer");
        w.write(big.clone()).await.expect("write");
        drop(w);
        let mut files = Vec::new();
        all_files(dir.path(), &mut files);
        assert!(files.is_empty(), "aborted and dropped writers leave nothing: {files:?}");

        let mut w = store.writer(key, ClassPolicy::BySize).await.expect("writer");
        w.write(big.clone()).await.expect("write");
        w.write(Bytes::from_static(b"tail")).await.expect("write");
        w.finish().await.expect("finish");
        let mut files = Vec::new();
        all_files(dir.path(), &mut files);
        assert_eq!(files, vec![dir.path().join(key)]);
        assert_eq!(fs::metadata(dir.path().join(key)).expect("meta").len(), big.len() as u64 + 4);
    }

    /// A writer whose process died (forgotten here: no finish, abort or drop) leaves its staging
    /// file; the sweep's call removes it once it is older than asked, and nothing else.
    #[tokio::test]
    async fn abandoned_staging_files_are_removed_once_old_enough() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStore::new(dir.path().to_path_buf());
        let key = "archive/platform=n8n/date=2026-01-05/run-0.jsonl.gz";
        store
            .put("archive/platform=n8n/date=2026-01-04/run-0.jsonl.gz", b"kept".to_vec(), StorageClass::Standard)
            .await
            .expect("put");
        let mut w = store.writer(key, ClassPolicy::BySize).await.expect("writer");
        w.write(Bytes::from(vec![7u8; WRITE_BLOCK + 10])).await.expect("write");
        std::mem::forget(w);
        let staging = || {
            let mut files = Vec::new();
            all_files(dir.path(), &mut files);
            files.retain(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(is_staging_name));
            files
        };
        assert_eq!(staging().len(), 1, "the dead writer's staging file");
        let hour = Duration::from_secs(3600);
        assert_eq!(store.remove_abandoned_writes("archive/", hour).await.expect("sweep"), 0, "too recent");
        assert_eq!(staging().len(), 1);
        let old = std::time::SystemTime::now() - 2 * hour;
        File::options().write(true).open(&staging()[0]).and_then(|f| f.set_modified(old)).expect("age it");
        assert_eq!(store.remove_abandoned_writes("archive/", hour).await.expect("sweep"), 1);
        assert!(staging().is_empty(), "removed");
        assert_eq!(
            store.list("archive/").await.expect("list"),
            vec!["archive/platform=n8n/date=2026-01-04/run-0.jsonl.gz"],
            "objects stay"
        );
        assert_eq!(store.remove_abandoned_writes("nothing-here/", Duration::ZERO).await.expect("sweep"), 0);
    }
}
