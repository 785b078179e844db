//! Archiving: hot records older than the cutoff become gzip JSONL objects, one per platform and
//! day; each object is durably written, then recorded, and only then leaves the hot store.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde::Serialize;

use super::{App, AppError};
use crate::domain::archive::{self, ArchiveObject, MAX_RECORDS_PER_OBJECT, StorageClass};
use crate::domain::records::FullRecord;
use crate::domain::stats::{Overview, overview};
use crate::domain::types::{Id, Platform};
use crate::ports::{Cursor, ObjectRewrite, ObjectStore, ScanQuery};

/// Raw JSONL bytes per object at most, so reading or rewriting one stays bounded.
const MAX_RAW_BYTES_PER_OBJECT: i64 = 64 * 1024 * 1024;
const SCAN_PAGE: u32 = 500;

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

/// One object being filled.
struct Pending {
    platform: Platform,
    date: NaiveDate,
    ids: Vec<Id>,
    raw_bytes: i64,
    gz: GzEncoder<Vec<u8>>,
}

impl Pending {
    fn new(platform: Platform, date: NaiveDate) -> Pending {
        Pending { platform, date, ids: Vec::new(), raw_bytes: 0, gz: GzEncoder::new(Vec::new(), Compression::default()) }
    }

    fn push(&mut self, rec: &FullRecord) -> Result<(), AppError> {
        let mut line = serde_json::to_vec(rec).map_err(|e| AppError::Internal(e.to_string()))?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(|e| AppError::Internal(e.to_string()))?;
        self.raw_bytes += line.len() as i64;
        self.ids.push(rec.interaction_id);
        Ok(())
    }

    fn full(&self) -> bool {
        self.ids.len() >= MAX_RECORDS_PER_OBJECT || self.raw_bytes >= MAX_RAW_BYTES_PER_OBJECT
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
        let cutoff = now - Duration::days(i64::from(days_old.unwrap_or(self.config.data_retention_days)));
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
            let mut after: Option<Cursor> = None;
            let mut pending: Option<Pending> = None;
            let mut n = 0usize;
            loop {
                let page = self
                    .hot
                    .scan_platform(&ScanQuery { platform: p.clone(), after, since: None, until: Some(cutoff), limit: SCAN_PAGE })
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
                let short = (page.len() as u32) < SCAN_PAGE;
                for l in page {
                    let date = l.interaction.created_at.date_naive();
                    if pending.as_ref().is_some_and(|pe| pe.date != date || pe.full())
                        && let Some(done) = pending.take()
                    {
                        let obj = self.finish_object(done, &run_id, &mut n, dry_run).await?;
                        archived_records += obj.record_count;
                        archives.push(ArchivedObjectReport::from(&obj));
                        if let Some(cb) = progress {
                            cb(archived_records as u64);
                        }
                    }
                    let pe = pending.get_or_insert_with(|| Pending::new(p.clone(), date));
                    let rec = FullRecord::build(&l.interaction, l.feedback, l.validations, true)?;
                    pe.push(&rec)?;
                }
                if short {
                    break;
                }
            }
            if let Some(done) = pending.take() {
                let obj = self.finish_object(done, &run_id, &mut n, dry_run).await?;
                archived_records += obj.record_count;
                archives.push(ArchivedObjectReport::from(&obj));
                if let Some(cb) = progress {
                    cb(archived_records as u64);
                }
            }
        }
        let after = overview(&self.counters_by_name().await?);
        Ok(ArchiveReport { dry_run, cutoff, archived_records, before, after, archives })
    }

    /// Write the object durably, then record it and move its records out of hot in one step.
    async fn finish_object(&self, p: Pending, run_id: &str, n: &mut usize, dry_run: bool) -> Result<ArchiveObject, AppError> {
        let bytes = p.gz.finish().map_err(|e| AppError::Internal(e.to_string()))?;
        let key = archive::object_key(&p.platform, p.date, run_id, *n);
        *n += 1;
        let obj = ArchiveObject {
            object_key: key,
            platform: p.platform,
            date: p.date,
            run_id: run_id.to_owned(),
            record_count: p.ids.len() as i64,
            raw_bytes: p.raw_bytes,
            compressed_bytes: bytes.len() as i64,
            storage_class: StorageClass::for_size(bytes.len() as i64),
            created_at: Utc::now(),
        };
        if dry_run {
            return Ok(obj);
        }
        self.objects.put(&obj.object_key, bytes, obj.storage_class).await?;
        let gone = self.hot.commit_archive(&obj, &p.ids).await?;
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
        let known: HashSet<String> =
            self.hot.list_archive_objects(None).await?.into_iter().map(|o| o.object_key).collect();
        for key in self.objects.list("archive/").await? {
            if !known.contains(&key) {
                self.objects.delete(&key).await?;
            }
        }
        Ok(())
    }

    /// Rewrite an object without some records: write the new object, swap the catalog, then
    /// drop the old object. Returns the removed records (for delete counts).
    pub(crate) async fn remove_from_object(&self, obj: &ArchiveObject, ids: &HashSet<Id>) -> Result<Vec<FullRecord>, AppError> {
        let mut removed = Vec::new();
        let mut kept = Pending::new(obj.platform.clone(), obj.date);
        for_each_line(self.objects.as_ref(), &obj.object_key, |rec| {
            if ids.contains(&rec.interaction_id) {
                removed.push(rec);
                Ok(())
            } else {
                kept.push(&rec)
            }
        })
        .await?;
        let new = if kept.ids.is_empty() {
            None
        } else {
            let bytes = kept.gz.finish().map_err(|e| AppError::Internal(e.to_string()))?;
            let run_id = archive::new_run_id(Utc::now());
            let o = ArchiveObject {
                object_key: archive::object_key(&obj.platform, obj.date, &run_id, 0),
                platform: obj.platform.clone(),
                date: obj.date,
                run_id,
                record_count: kept.ids.len() as i64,
                raw_bytes: kept.raw_bytes,
                compressed_bytes: bytes.len() as i64,
                storage_class: StorageClass::for_size(bytes.len() as i64),
                created_at: Utc::now(),
            };
            self.objects.put(&o.object_key, bytes, o.storage_class).await?;
            Some(o)
        };
        let rw = ObjectRewrite { old: obj.clone(), new, removed: removed.iter().map(|r| r.interaction_id).collect() };
        self.hot.apply_rewrite(&rw).await?;
        self.objects.delete(&obj.object_key).await?;
        Ok(removed)
    }
}

/// Read an archive object line by line (memory: the compressed object plus one line).
pub(crate) async fn for_each_line(
    objects: &dyn ObjectStore,
    key: &str,
    mut f: impl FnMut(FullRecord) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let bytes = objects.get(key).await?;
    let reader = BufReader::new(GzDecoder::new(bytes.as_slice()));
    for line in reader.lines() {
        let line = line.map_err(|e| AppError::Internal(format!("archive object unreadable: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: FullRecord =
            serde_json::from_str(&line).map_err(|e| {
                // Position and category only: serde's message can quote stored user text.
                AppError::Internal(format!("archive line unreadable ({:?} at column {}) in {key}", e.classify(), e.column()))
            })?;
        f(rec)?;
    }
    Ok(())
}
