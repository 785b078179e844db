//! Archiving: hot records older than the cutoff become gzip JSONL objects, one per platform and
//! day; each object is durably written, then recorded, and only then leaves the hot store.

use std::collections::HashSet;
use std::io::Write;

use bytes::{Buf, Bytes};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use flate2::{Compression, write::GzDecoder, write::GzEncoder};
use futures::StreamExt;
use serde::Serialize;

use super::{App, AppError};
use crate::domain::archive::{self, ArchiveObject, ClassPolicy, MAX_RECORDS_PER_OBJECT, StorageClass};
use crate::domain::records::FullRecord;
use crate::domain::stats::{Overview, overview};
use crate::domain::types::{Id, Platform};
use crate::ports::{Cursor, ObjectRewrite, ObjectStore, ObjectStream, ObjectWriter, ScanQuery};

/// Raw JSONL bytes per object at most, so reading or rewriting one stays bounded.
const MAX_RAW_BYTES_PER_OBJECT: i64 = 64 * 1024 * 1024;
const SCAN_PAGE: u32 = 500;
/// Compressed bytes go to the object writer in chunks of about this size.
const OUT_CHUNK: usize = 256 * 1024;
/// Compressed bytes are inflated this many at a time, which bounds one step's output
/// (deflate expands at most about 1000x).
const INFLATE_STEP: usize = 8 * 1024;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchivedObjectReport {
    pub platform: String,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub object_key: String,
    pub record_count: i64,
    pub raw_bytes: i64,
    pub compressed_bytes: i64,
    pub compression_ratio: f64,
    pub storage_class: StorageClass,
}

impl From<&ArchiveObject> for ArchivedObjectReport {
    fn from(o: &ArchiveObject) -> Self {
        ArchivedObjectReport {
            platform: o.platform.to_string(),
            date: o.date,
            object_key: o.object_key.clone(),
            record_count: o.record_count,
            raw_bytes: o.raw_bytes,
            compressed_bytes: o.compressed_bytes,
            compression_ratio: o.compression_ratio(),
            storage_class: o.storage_class,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchiveReport {
    pub dry_run: bool,
    pub cutoff: DateTime<Utc>,
    pub archived_records: i64,
    pub before: Overview,
    pub after: Overview,
    pub archives: Vec<ArchivedObjectReport>,
}

/// Where an object's compressed bytes go: the store's writer, or nowhere (a dry run, which
/// still compresses to report sizes).
enum Sink {
    Discard,
    Writer(Box<dyn ObjectWriter>),
}

/// One object being filled: records are gzipped as they come and the compressed bytes
/// streamed to the writer, so memory is about one [`OUT_CHUNK`] whatever the object's size.
struct Pending {
    platform: Platform,
    date: NaiveDate,
    key: String,
    ids: Vec<Id>,
    raw_bytes: i64,
    compressed_bytes: i64,
    gz: GzEncoder<Vec<u8>>,
    sink: Sink,
}

/// A finished object's facts, before it is recorded.
struct Written {
    platform: Platform,
    date: NaiveDate,
    key: String,
    ids: Vec<Id>,
    raw_bytes: i64,
    compressed_bytes: i64,
    storage_class: StorageClass,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

impl Pending {
    /// Open `key` for writing (nothing is written on a dry run).
    async fn open(
        objects: &dyn ObjectStore,
        platform: Platform,
        date: NaiveDate,
        key: String,
        dry_run: bool,
    ) -> Result<Pending, AppError> {
        let sink = if dry_run {
            Sink::Discard
        } else {
            Sink::Writer(objects.writer(&key, ClassPolicy::BySize).await?)
        };
        Ok(Pending {
            platform,
            date,
            key,
            ids: Vec::new(),
            raw_bytes: 0,
            compressed_bytes: 0,
            gz: GzEncoder::new(Vec::with_capacity(OUT_CHUNK), Compression::default()),
            sink,
        })
    }

    async fn push(&mut self, rec: &FullRecord) -> Result<(), AppError> {
        let mut line = serde_json::to_vec(rec).map_err(internal)?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(internal)?;
        self.raw_bytes += line.len() as i64;
        self.ids.push(rec.interaction_id);
        if self.gz.get_ref().len() >= OUT_CHUNK {
            let chunk = std::mem::replace(self.gz.get_mut(), Vec::with_capacity(OUT_CHUNK));
            self.send(chunk).await?;
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), AppError> {
        self.compressed_bytes += chunk.len() as i64;
        if let Sink::Writer(w) = &mut self.sink
            && !chunk.is_empty()
        {
            w.write(Bytes::from(chunk)).await?;
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.ids.len() >= MAX_RECORDS_PER_OBJECT || self.raw_bytes >= MAX_RAW_BYTES_PER_OBJECT
    }

    /// Write the gzip trailer (without it the object would be silently truncated), send the
    /// last bytes and make the object durable.
    async fn finish(self) -> Result<Written, AppError> {
        let Pending {
            platform,
            date,
            key,
            ids,
            raw_bytes,
            mut compressed_bytes,
            gz,
            sink,
        } = self;
        // What is still buffered, then the trailer.
        let tail = gz.finish().map_err(internal)?;
        compressed_bytes += tail.len() as i64;
        let storage_class = match sink {
            Sink::Discard => StorageClass::for_size(compressed_bytes),
            Sink::Writer(mut w) => {
                // On an error the writer is dropped, which removes whatever it had written.
                w.write(Bytes::from(tail)).await?;
                let done = w.finish().await?;
                if done.bytes != compressed_bytes {
                    return Err(AppError::Internal(
                        "archive object size mismatch after writing".into(),
                    ));
                }
                done.storage_class
            }
        };
        Ok(Written {
            platform,
            date,
            key,
            ids,
            raw_bytes,
            compressed_bytes,
            storage_class,
        })
    }

    /// Give up on the object: nothing of it stays in the store.
    async fn abort(self) {
        if let Sink::Writer(w) = self.sink
            && let Err(e) = w.abort().await
        {
            tracing::warn!(error = %e, "archive: aborting an unfinished object failed");
        }
    }
}

/// Progress callback for long runs (the CLI draws a bar from it): records archived so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

impl App {
    /// Archive hot records older than `days_old` days (default: DATA_RETENTION_DAYS).
    pub async fn archive(
        &self,
        days_old: Option<u32>,
        dry_run: bool,
        platform: Option<Platform>,
        progress: Option<Progress<'_>>,
    ) -> Result<ArchiveReport, AppError> {
        if !self.config.enable_data_archiving {
            return Err(AppError::ArchivingDisabled);
        }
        let _run = self.archive_lock.lock().await;
        let now = Utc::now();
        let cutoff = now
            - Duration::days(i64::from(
                days_old.unwrap_or(self.config.data_retention_days),
            ));
        let before = overview(&self.counters_by_name().await?);
        if !dry_run {
            self.sweep_orphans().await?;
        }
        let platforms: Vec<Platform> = match platform {
            Some(p) => vec![p],
            None => self.hot.counters().await?.into_keys().collect(),
        };
        let run_id = archive::new_run_id(now);
        let mut archives = Vec::new();
        let mut archived_records = 0i64;
        for p in platforms {
            let mut pending: Option<Pending> = None;
            let done = self
                .archive_platform(
                    &p,
                    cutoff,
                    &run_id,
                    dry_run,
                    &mut pending,
                    &mut archives,
                    &mut archived_records,
                    progress,
                )
                .await;
            if let Err(e) = done {
                // An object left half-written is dropped; its records are still hot.
                if let Some(pe) = pending.take() {
                    pe.abort().await;
                }
                return Err(e);
            }
        }
        let after = overview(&self.counters_by_name().await?);
        Ok(ArchiveReport {
            dry_run,
            cutoff,
            archived_records,
            before,
            after,
            archives,
        })
    }

    /// One platform's old records into objects. `pending` is the object being written, left
    /// to the caller to abort on error.
    #[allow(clippy::too_many_arguments)]
    async fn archive_platform(
        &self,
        p: &Platform,
        cutoff: DateTime<Utc>,
        run_id: &str,
        dry_run: bool,
        pending: &mut Option<Pending>,
        archives: &mut Vec<ArchivedObjectReport>,
        archived_records: &mut i64,
        progress: Option<Progress<'_>>,
    ) -> Result<(), AppError> {
        let mut after: Option<Cursor> = None;
        let mut n = 0usize;
        let mut report = |obj: &ArchiveObject| {
            *archived_records += obj.record_count;
            archives.push(ArchivedObjectReport::from(obj));
            if let Some(cb) = progress {
                cb(*archived_records as u64);
            }
        };
        loop {
            let page = self
                .hot
                .scan_platform(&ScanQuery {
                    platform: p.clone(),
                    after,
                    since: None,
                    until: Some(cutoff),
                    limit: SCAN_PAGE,
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor {
                created_at: last.interaction.created_at,
                id: last.interaction.id,
            });
            let short = (page.len() as u32) < SCAN_PAGE;
            for l in page {
                let date = l.interaction.created_at.date_naive();
                if pending
                    .as_ref()
                    .is_some_and(|pe| pe.date != date || pe.full())
                    && let Some(done) = pending.take()
                {
                    let obj = self.finish_object(done, run_id, dry_run).await?;
                    report(&obj);
                }
                let pe = match pending.take() {
                    Some(pe) => pending.insert(pe),
                    None => {
                        let key = archive::object_key(p, date, run_id, n);
                        n += 1;
                        pending.insert(
                            Pending::open(self.objects.as_ref(), p.clone(), date, key, dry_run)
                                .await?,
                        )
                    }
                };
                let rec = FullRecord::build(&l.interaction, l.feedback, l.validations, true)?;
                pe.push(&rec).await?;
            }
            if short {
                break;
            }
        }
        if let Some(done) = pending.take() {
            let obj = self.finish_object(done, run_id, dry_run).await?;
            report(&obj);
        }
        Ok(())
    }

    /// Write the object durably, then record it and move its records out of hot in one step.
    async fn finish_object(
        &self,
        p: Pending,
        run_id: &str,
        dry_run: bool,
    ) -> Result<ArchiveObject, AppError> {
        let w = p.finish().await?;
        let obj = ArchiveObject {
            object_key: w.key,
            platform: w.platform,
            date: w.date,
            run_id: run_id.to_owned(),
            record_count: w.ids.len() as i64,
            raw_bytes: w.raw_bytes,
            compressed_bytes: w.compressed_bytes,
            storage_class: w.storage_class,
            created_at: Utc::now(),
        };
        if dry_run {
            return Ok(obj);
        }
        let gone = self.hot.commit_archive(&obj, &w.ids).await?;
        if !gone.is_empty() {
            // Deleted while we wrote: deleted data is never archived.
            let gone: HashSet<Id> = gone.into_iter().collect();
            self.remove_from_object(&obj, &gone).await?;
            let mut obj = obj;
            obj.record_count -= gone.len() as i64;
            return Ok(obj);
        }
        Ok(obj)
    }

    /// Objects under `archive/` that no metadata row names: left by a run that died between
    /// writing and recording. Their records are still hot (or were rewritten), so drop them.
    async fn sweep_orphans(&self) -> Result<(), AppError> {
        let known: HashSet<String> = self
            .hot
            .list_archive_objects(None)
            .await?
            .into_iter()
            .map(|o| o.object_key)
            .collect();
        for key in self.objects.list("archive/").await? {
            if !known.contains(&key) {
                self.objects.delete(&key).await?;
            }
        }
        Ok(())
    }

    /// Rewrite an object without some records: write the new object, swap the catalog, then
    /// drop the old object. Returns the removed records (for delete counts). Both objects are
    /// streamed: memory is about one line plus one chunk each way.
    pub(crate) async fn remove_from_object(
        &self,
        obj: &ArchiveObject,
        ids: &HashSet<Id>,
    ) -> Result<Vec<FullRecord>, AppError> {
        let run_id = archive::new_run_id(Utc::now());
        let key = archive::object_key(&obj.platform, obj.date, &run_id, 0);
        let mut kept = Pending::open(
            self.objects.as_ref(),
            obj.platform.clone(),
            obj.date,
            key,
            false,
        )
        .await?;
        let mut removed = Vec::new();
        let copied: Result<(), AppError> = async {
            let mut lines = ArchiveLines::open(self.objects.as_ref(), &obj.object_key).await?;
            while let Some(rec) = lines.next().await? {
                if ids.contains(&rec.interaction_id) {
                    removed.push(rec);
                } else {
                    kept.push(&rec).await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = copied {
            kept.abort().await;
            return Err(e);
        }
        let new = if kept.ids.is_empty() {
            kept.abort().await;
            None
        } else {
            let w = kept.finish().await?;
            Some(ArchiveObject {
                object_key: w.key,
                platform: w.platform,
                date: w.date,
                run_id,
                record_count: w.ids.len() as i64,
                raw_bytes: w.raw_bytes,
                compressed_bytes: w.compressed_bytes,
                storage_class: w.storage_class,
                created_at: Utc::now(),
            })
        };
        let rw = ObjectRewrite {
            old: obj.clone(),
            new,
            removed: removed.iter().map(|r| r.interaction_id).collect(),
        };
        self.hot.apply_rewrite(&rw).await?;
        self.objects.delete(&obj.object_key).await?;
        Ok(removed)
    }
}

/// An archive object's records, one at a time, read through the store's streamed reader and
/// inflated step by step: memory is one line plus one inflate step's output, whatever the
/// object's size.
pub(crate) struct ArchiveLines {
    stream: ObjectStream,
    /// Inflated bytes collect in the decoder's inner buffer; `pos` is where unread ones start.
    gz: GzDecoder<Vec<u8>>,
    pos: usize,
    /// Compressed bytes received but not yet inflated.
    input: Bytes,
    ended: bool,
    key: String,
}

impl ArchiveLines {
    pub(crate) async fn open(
        objects: &dyn ObjectStore,
        key: &str,
    ) -> Result<ArchiveLines, AppError> {
        Ok(ArchiveLines {
            stream: objects.reader(key).await?,
            gz: GzDecoder::new(Vec::new()),
            pos: 0,
            input: Bytes::new(),
            ended: false,
            key: key.to_owned(),
        })
    }

    /// The next record, or `None` after the last one (the gzip trailer checked).
    pub(crate) async fn next(&mut self) -> Result<Option<FullRecord>, AppError> {
        loop {
            let buf = self.gz.get_ref();
            let unread = &buf[self.pos..];
            let line_end = match unread.iter().position(|&b| b == b'\n') {
                Some(i) => Some((i, i + 1)),
                // The last line may lack its newline.
                None if self.ended && !unread.is_empty() => Some((unread.len(), unread.len())),
                None => None,
            };
            if let Some((end, next)) = line_end {
                let line = &unread[..end];
                self.pos += next;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_line(line, &self.key).map(Some);
            }
            if self.ended {
                return Ok(None);
            }
            // Drop what was read before inflating more.
            let pos = std::mem::take(&mut self.pos);
            self.gz.get_mut().drain(..pos);
            if self.input.is_empty() {
                match self.stream.next().await {
                    Some(chunk) => self.input = chunk?,
                    None => {
                        self.gz.try_finish().map_err(|_| unreadable(&self.key))?;
                        self.ended = true;
                        continue;
                    }
                }
            }
            let step = self.input.len().min(INFLATE_STEP);
            let n = self
                .gz
                .write(&self.input[..step])
                .map_err(|_| unreadable(&self.key))?;
            if n == 0 {
                // Bytes after the gzip member's end.
                return Err(unreadable(&self.key));
            }
            self.input.advance(n);
        }
    }
}

fn unreadable(key: &str) -> AppError {
    AppError::Internal(format!("archive object unreadable (bad gzip) in {key}"))
}

fn parse_line(line: &[u8], key: &str) -> Result<FullRecord, AppError> {
    serde_json::from_slice(line).map_err(|e| {
        // Position and category only: serde's message can quote stored user text.
        AppError::Internal(format!(
            "archive line unreadable ({:?} at column {}) in {key}",
            e.classify(),
            e.column()
        ))
    })
}

/// Read an archive object line by line (memory: one line plus one inflate step).
pub(crate) async fn for_each_line(
    objects: &dyn ObjectStore,
    key: &str,
    mut f: impl FnMut(FullRecord) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let mut lines = ArchiveLines::open(objects, key).await?;
    while let Some(rec) = lines.next().await? {
        f(rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::fs::FolderStore;
    use crate::domain::fixtures;
    use crate::domain::types::Kind;

    fn record(i: usize) -> FullRecord {
        FullRecord {
            // Poorly compressible text, so the object spans many chunks.
            user_message: (0..400).map(|j| format!("{:x}", (i * 7919 + j * 104_729) % 65_521)).collect(),
            ai_response: Some(format!("answer {i}")),
            workflow: None,
            archived: true,
            ..fixtures::record(Kind::Conversation)
        }
    }

    const KEY: &str = "archive/platform=n8n/date=2026-01-05/run-0.jsonl.gz";

    async fn open_pending(objects: &FolderStore, dry_run: bool) -> Pending {
        let date = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        Pending::open(objects, Platform::parse("n8n").expect("platform"), date, KEY.into(), dry_run).await.expect("open")
    }

    async fn read_all(objects: &dyn ObjectStore, key: &str) -> Result<Vec<FullRecord>, AppError> {
        let mut out = Vec::new();
        for_each_line(objects, key, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(raw).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[tokio::test]
    async fn a_large_object_streams_out_and_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let mut p = open_pending(&objects, false).await;
        let recs: Vec<FullRecord> = (0..2000).map(record).collect();
        for r in &recs {
            p.push(r).await.expect("push");
        }
        let w = p.finish().await.expect("finish");
        assert!(
            w.compressed_bytes > 4 * OUT_CHUNK as i64,
            "several chunks were streamed"
        );
        assert_eq!(w.storage_class, StorageClass::StandardIa);
        assert_eq!(
            objects.get(KEY).await.expect("get").len() as i64,
            w.compressed_bytes
        );
        let back = read_all(&objects, KEY).await.expect("read");
        assert_eq!(
            back.iter().map(|r| r.interaction_id).collect::<Vec<_>>(),
            w.ids
        );
        assert_eq!(back, recs);
    }

    #[tokio::test]
    async fn a_dry_run_counts_without_writing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let mut p = open_pending(&objects, true).await;
        let mut raw = Vec::new();
        for i in 0..50 {
            let r = record(i);
            raw.extend(serde_json::to_vec(&r).expect("json"));
            raw.push(b'\n');
            p.push(&r).await.expect("push");
        }
        let w = p.finish().await.expect("finish");
        assert_eq!(w.raw_bytes, raw.len() as i64);
        assert_eq!(w.compressed_bytes, {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&raw).expect("gzip");
            gz.finish().expect("gzip").len() as i64
        });
        assert!(objects.list("").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn blank_lines_and_a_missing_last_newline_are_fine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let (a, b) = (record(1), record(2));
        let mut raw = serde_json::to_vec(&a).expect("json");
        raw.extend(b"\n\n  \n");
        raw.extend(serde_json::to_vec(&b).expect("json"));
        objects
            .put(KEY, gzip(&raw), StorageClass::Standard)
            .await
            .expect("put");
        assert_eq!(read_all(&objects, KEY).await.expect("read"), vec![a, b]);
    }

    #[tokio::test]
    async fn truncated_or_trailing_bytes_are_errors_not_fewer_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let objects = FolderStore::new(dir.path().to_path_buf());
        let mut raw = Vec::new();
        for i in 0..20 {
            raw.extend(serde_json::to_vec(&record(i)).expect("json"));
            raw.push(b'\n');
        }
        let whole = gzip(&raw);
        objects
            .put(
                KEY,
                whole[..whole.len() - 4].to_vec(),
                StorageClass::Standard,
            )
            .await
            .expect("put");
        assert!(
            matches!(read_all(&objects, KEY).await, Err(AppError::Internal(_))),
            "a cut trailer"
        );
        objects
            .put(
                KEY,
                whole[..whole.len() / 2].to_vec(),
                StorageClass::Standard,
            )
            .await
            .expect("put");
        assert!(
            matches!(read_all(&objects, KEY).await, Err(AppError::Internal(_))),
            "a cut body"
        );
        let mut extra = whole.clone();
        extra.extend(b"junk");
        objects
            .put(KEY, extra, StorageClass::Standard)
            .await
            .expect("put");
        assert!(
            matches!(read_all(&objects, KEY).await, Err(AppError::Internal(_))),
            "bytes after the trailer"
        );
        assert!(matches!(
            read_all(&objects, "archive/missing.jsonl.gz").await,
            Err(AppError::Store(_)) | Err(AppError::NotFound)
        ));
    }
}
