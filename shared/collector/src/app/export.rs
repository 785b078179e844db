//! Streamed exports: training JSONL for a platform, and a user's own data (right of access).
//! A producer task reads the store page by page and sends chunks into a bounded channel, so
//! memory does not grow with the export's size; it stops when the receiver goes away.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::{App, AppError};
use crate::domain::archive::{ArchiveObject, ObjectState};
use crate::domain::export::{self, ExportFilter, RecordView};
use crate::domain::formats::{self, Format, Split};
use crate::domain::lineage::HeldRecords;
use crate::domain::records::FullRecord;
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{ArchivedEntry, Cursor, HotStore, Linked, ScanQuery};

const PAGE: u32 = 500;
/// Lines are sent in chunks of about this size.
const CHUNK: usize = 64 * 1024;

pub type LineStream = mpsc::Receiver<Result<Bytes, AppError>>;

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub platform: Platform,
    pub filter: ExportFilter,
}

/// Rejected lines kept by reason in the summary at most (the counts are always complete).
const MAX_REJECT_SAMPLES: usize = 10_000;

/// What an export wrote and what it left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportSummary {
    pub format: &'static str,
    pub lines: u64,
    /// Lines that failed their format's check, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Lines left out because the same user message + assistant output was already written.
    pub duplicates: u64,
    /// Up to 10,000 rejected lines: the record and the reason (never the content).
    pub reject_samples: Vec<RejectSample>,
    /// Lines of the archive objects read (`include_archived`) that could not be read, each
    /// left out and logged; a corrupt gzip segment counts as one. Deleted records' lines are
    /// not counted (they would be left out anyway).
    pub archive_skipped_lines: u64,
    /// Lowercase hex sha256 of every byte sent, in order (what a consumer that writes each
    /// chunk as it comes serves).
    pub sha256: String,
    /// Bytes sent.
    pub bytes: u64,
    /// The interactions that have a line in the output, by owner (curated examples are not
    /// held): what the export's manifest stores.
    #[serde(skip)]
    pub held: HeldRecords,
    /// The curated examples written: each gains a use once the export is recorded
    /// ([`App::record_export`]), not for an export that is refused or never finished.
    #[serde(skip)]
    pub used_examples: Vec<Id>,
}

/// What a right-of-access export (`GET /api/me/data`) could not include.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AccessSummary {
    /// The user's archived records whose lines could not be read (each logged by the reader).
    pub archive_skipped_lines: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectSample {
    pub interaction_id: crate::domain::types::Id,
    pub reason: &'static str,
}

impl ExportSummary {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Record -> checked, deduplicated, split lines.
struct Pipeline {
    format: Format,
    system: String,
    filter: ExportFilter,
    /// First 16 bytes of each written line's content hash: 16 bytes a line, enough to never collide in practice.
    seen: HashSet<u128>,
    summary: ExportSummary,
}

/// What one record gave: lines that passed the checks and dedupe, and how many of them were
/// written (fewer when the export's limit was reached).
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    accepted: u64,
    written: u64,
}

impl Pipeline {
    fn new(system: String, filter: ExportFilter) -> Pipeline {
        let summary = ExportSummary { format: filter.format.as_str(), ..ExportSummary::default() };
        Pipeline { format: filter.format, system, filter, seen: HashSet::new(), summary }
    }

    /// Append the record's checked, deduplicated lines to `out`, each ending in a newline, at
    /// most `room` of them. Every line is checked and counted, written or not.
    fn write_record(&mut self, rec: &RecordView, out: &mut Vec<u8>, room: u64) -> Result<Written, AppError> {
        if let Some(side) = self.filter.split
            && Split::of_user(rec.user_id.as_str(), self.filter.validation_fraction) != side
        {
            return Ok(Written::default());
        }
        let Pipeline { format, system, filter, seen, summary } = self;
        let (format, max_tokens, with_metadata) = (*format, filter.max_tokens, filter.include_metadata);
        let mut w = Written::default();
        formats::each_line(rec, format, system, filter, |line| {
            if let Err(reason) = line.check(format, max_tokens) {
                *summary.rejected.entry(reason.as_str()).or_default() += 1;
                if summary.reject_samples.len() < MAX_REJECT_SAMPLES {
                    summary
                        .reject_samples
                        .push(RejectSample { interaction_id: rec.interaction_id, reason: reason.as_str() });
                }
                return;
            }
            if !seen.insert(line.key()) {
                summary.duplicates += 1;
                return;
            }
            w.accepted += 1;
            if w.written < room {
                line.write(format, with_metadata.then(|| formats::metadata(rec, line.source)).as_ref(), out);
                out.push(b'\n');
                w.written += 1;
            }
        })?;
        Ok(w)
    }
}
/// Buffers lines into chunks of about [`CHUNK`]; `false` from a send means the receiver is gone.
/// Every chunk sent is hashed and counted on its way out.
struct Chunker {
    tx: mpsc::Sender<Result<Bytes, AppError>>,
    buf: Vec<u8>,
    lines: u64,
    limit: Option<u64>,
    digest: Sha256,
    sent: u64,
}

impl Chunker {
    fn new(tx: mpsc::Sender<Result<Bytes, AppError>>, limit: Option<u64>) -> Chunker {
        Chunker { tx, buf: Vec::with_capacity(CHUNK + CHUNK / 4), lines: 0, limit, digest: Sha256::new(), sent: 0 }
    }
    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.lines >= l)
    }
    /// Lines that may still be written.
    fn room(&self) -> u64 {
        self.limit.map_or(u64::MAX, |l| l.saturating_sub(self.lines))
    }
    fn push(&mut self, line: &str) {
        self.push_bytes(line.as_bytes());
    }
    fn push_bytes(&mut self, line: &[u8]) {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.lines += 1;
    }
    /// Write a record's lines straight into the buffer, as many as the limit leaves room for.
    fn write_record(&mut self, pipe: &mut Pipeline, rec: &RecordView) -> Result<Written, AppError> {
        let room = self.room();
        let w = pipe.write_record(rec, &mut self.buf, room)?;
        self.lines += w.written;
        Ok(w)
    }
    /// The buffer as the next chunk out, hashed and counted.
    fn take(&mut self) -> Bytes {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + CHUNK / 4)));
        self.digest.update(&chunk);
        self.sent += chunk.len() as u64;
        chunk
    }
    fn take_if_full(&mut self) -> Option<Bytes> {
        (self.buf.len() >= CHUNK).then(|| self.take())
    }
    async fn flush_if_full(&mut self) -> bool {
        match self.take_if_full() {
            Some(b) => self.tx.send(Ok(b)).await.is_ok(),
            None => true,
        }
    }
    /// Send what is left; the sha256 (hex) and size of everything sent.
    async fn finish(mut self) -> (String, u64) {
        if !self.buf.is_empty() {
            let last = self.take();
            let _ = self.tx.send(Ok(last)).await;
        }
        (hex::encode(self.digest.finalize()), self.sent)
    }
    async fn fail(self, e: AppError) {
        let _ = self.tx.send(Err(e)).await;
    }
}

/// Pages of a platform's hot records, read ahead by their own task: the store reads the next
/// page (on the blocking pool) while the export formats this one, so the two use two cores.
/// At most two pages wait besides the one being formatted. Dropping it stops the reader.
struct PagesAhead {
    rx: mpsc::Receiver<Result<Vec<Linked>, AppError>>,
    reader: tokio::task::JoinHandle<()>,
}

impl PagesAhead {
    fn start(hot: Arc<dyn HotStore>, mut q: ScanQuery) -> PagesAhead {
        let (tx, rx) = mpsc::channel(1);
        let reader = tokio::spawn(async move {
            loop {
                let page = match hot.scan_platform(&q).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                // A page can be short (its records' bytes): only an empty one is the end.
                let Some(last) = page.last() else { return };
                q.after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
                if tx.send(Ok(page)).await.is_err() {
                    return;
                }
            }
        });
        PagesAhead { rx, reader }
    }

    async fn next(&mut self) -> Option<Result<Vec<Linked>, AppError>> {
        self.rx.recv().await
    }
}

impl Drop for PagesAhead {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl App {
    /// The filter an export runs with: the request's, with the configured per-line token limit.
    pub(crate) fn effective_filter(&self, f: &ExportFilter) -> ExportFilter {
        ExportFilter { max_tokens: self.config.export_max_tokens, ..f.clone() }
    }

    /// Training lines for a platform: archived objects first (they are older), then hot records.
    pub fn export(&self, req: ExportRequest) -> LineStream {
        self.export_counted(req).0
    }

    /// Like [`App::export`], plus the summary once the last line is out.
    pub fn export_counted(&self, req: ExportRequest) -> (LineStream, oneshot::Receiver<ExportSummary>) {
        let (tx, rx) = mpsc::channel(8);
        let (done_tx, done_rx) = oneshot::channel();
        let app = self.clone();
        tokio::spawn(async move {
            let mut out = Chunker::new(tx, req.filter.limit);
            let system = export::system_text(&app.config.export_system_prompt, req.platform.as_str());
            let mut pipe = Pipeline::new(system, app.effective_filter(&req.filter));
            match app.produce_export(&req, &mut pipe, &mut out).await {
                Ok(()) => {
                    pipe.summary.lines = out.lines;
                    (pipe.summary.sha256, pipe.summary.bytes) = out.finish().await;
                    let _ = done_tx.send(pipe.summary);
                }
                Err(e) => out.fail(e).await,
            }
        });
        (rx, done_rx)
    }

    async fn produce_export(
        &self,
        req: &ExportRequest,
        pipe: &mut Pipeline,
        out: &mut Chunker,
    ) -> Result<(), AppError> {
        // An unknown platform fails before the first line, so the answer is a proper 400.
        self.require_platform(&req.platform).await?;
        let f = &req.filter.clone();
        // Slots read so far, and whether as committed (no later commit moves a record into them).
        let mut read_slots = HashMap::new();
        if f.include_archived {
            for obj in self.hot.list_archive_objects(Some(&req.platform)).await? {
                fail::fail_point!("export.before_object");
                if !self.export_slot(&obj, f, pipe, out, &mut read_slots, None).await? {
                    return Ok(());
                }
            }
        }
        fail::fail_point!("export.before_hot_scan");
        let q = ScanQuery { platform: req.platform.clone(), after: None, since: f.since, until: f.until, limit: PAGE };
        let mut pages = PagesAhead::start(self.hot.clone(), q);
        while let Some(page) = pages.next().await {
            for l in page? {
                let rec = RecordView::hot(&l.interaction, &l.feedback, &l.validations, false);
                let w = out.write_record(pipe, &rec)?;
                if w.written > 0 {
                    pipe.summary.held.add(&l.interaction.user_id, l.interaction.id);
                }
                if w.written < w.accepted {
                    // The limit is reached.
                    return Ok(());
                }
                if !out.flush_if_full().await {
                    return Ok(());
                }
            }
        }
        drop(pages);
        if f.include_archived {
            // An archive run that went on meanwhile moved records out of the hot store before the
            // scan reached them: they are in slots listed now, new ones or ones that were pending
            // when read. Records already written (read hot, then moved) are not written again.
            let mut written = None;
            for obj in self.hot.list_archive_objects(Some(&req.platform)).await? {
                if read_slots.get(&obj.slot) == Some(&true) {
                    continue;
                }
                let written = written.get_or_insert_with(|| pipe.summary.held.ids());
                if !self.export_slot(&obj, f, pipe, out, &mut read_slots, Some(written)).await? {
                    return Ok(());
                }
            }
        }
        // Curated examples last; each one written counts as a use once the export is recorded.
        let mut used = Vec::new();
        for ex in self.hot.list_examples(Some(&req.platform)).await? {
            let full = ex.as_record();
            let was_done = out.done();
            let w = out.write_record(pipe, &RecordView::from(&full))?;
            if w.accepted > 0 && !was_done {
                used.push(ex.example_id);
            }
        }
        pipe.summary.used_examples = used;
        Ok(())
    }

    /// Write the live lines of one listed archive object: a committed object's lines minus
    /// its tombstones; a pending one's (a run in progress or cut short) only where the record's
    /// entry points at this slot. `read_slots`: the slots read before, each with whether it
    /// was read as committed; a slot's unreadable lines are counted the first time only.
    /// `written`: records whose lines are out already, not written again. Returns false once
    /// the export is done (its limit, or the client gone).
    async fn export_slot(
        &self,
        listed: &ArchiveObject,
        f: &ExportFilter,
        pipe: &mut Pipeline,
        out: &mut Chunker,
        read_slots: &mut HashMap<String, bool>,
        written: Option<&HashSet<Id>>,
    ) -> Result<bool, AppError> {
        let day_start = listed.date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let day_end = day_start.map(|t| t + chrono::Duration::days(1));
        if f.since.zip(day_end).is_some_and(|(s, e)| e <= s) || f.until.zip(day_start).is_some_and(|(u, s)| s >= u) {
            return Ok(true);
        }
        let dead = self.hot.tombstones(&listed.slot).await?;
        fail::fail_point!("export.after_tombstones");
        // The row again, after its tombstones (`open_slot`): a compaction that swapped it since
        // the listing cleared them in the same write, so the key read now holds none of the
        // lines they named, and an older key is never read with its tombstones gone.
        let Some((obj, mut reader)) = self.open_slot(&listed.platform, listed.date, &listed.slot).await? else {
            return Ok(true);
        };
        // Pending when listed or now: a commit between the two reads may have tombstoned
        // records after `dead` was read (changed meanwhile), so their entries decide.
        let pending = listed.state == ObjectState::Pending || obj.state == ObjectState::Pending;
        let first_read = read_slots.insert(obj.slot.clone(), !pending).is_none();
        let skip = |id: &Id| dead.contains(id) || written.is_some_and(|w| w.contains(id));
        // The object's lines, each ending in a newline (a line never holds a raw one).
        let mut lines = Vec::new();
        // Whose lines `lines` holds, in order: (owner, id, lines of that record).
        let mut owners = Vec::new();
        let mut candidates = Vec::new();
        while let Some(rec) = reader.next().await? {
            if skip(&rec.interaction_id) {
                continue;
            }
            if pending {
                candidates.push(rec);
            } else {
                let w = pipe.write_record(&RecordView::from(&rec), &mut lines, u64::MAX)?;
                owners.push((rec.user_id, rec.interaction_id, w.written));
            }
        }
        for rec in candidates {
            if self.hot.archived_entry(rec.interaction_id).await?.is_some_and(|e| e.object_key == obj.slot) {
                let w = pipe.write_record(&RecordView::from(&rec), &mut lines, u64::MAX)?;
                owners.push((rec.user_id, rec.interaction_id, w.written));
            }
        }
        // Unreadable lines count unless they are known not to be live, or were counted before.
        if first_read {
            let unreadable = &reader.unreadable;
            let mut skipped = unreadable.segments;
            for id in &unreadable.lines {
                skipped += match id {
                    Some(id) if dead.contains(id) => 0,
                    Some(id) if pending => {
                        let live = self.hot.archived_entry(*id).await?.is_some_and(|e| e.object_key == obj.slot);
                        u64::from(live)
                    }
                    _ => 1,
                };
            }
            pipe.summary.archive_skipped_lines += skipped;
        }
        let mut owner_of_line = owners.iter().flat_map(|(user, id, n)| std::iter::repeat_n((user, *id), *n as usize));
        for l in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if out.done() {
                return Ok(false);
            }
            out.push_bytes(l);
            if let Some((user, id)) = owner_of_line.next() {
                pipe.summary.held.add(user, id);
            }
            if !out.flush_if_full().await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A user's archived interactions, grouped by object so each object is read once. Returns
    /// false once the client is gone.
    async fn access_archived(
        &self,
        mut entries: Vec<ArchivedEntry>,
        summary: &mut AccessSummary,
        out: &mut Chunker,
        tagged: &impl Fn(serde_json::Value, &str) -> Result<String, AppError>,
    ) -> Result<bool, AppError> {
        entries.sort_by(|a, b| a.object_key.cmp(&b.object_key));
        for group in entries.chunk_by(|a, b| a.object_key == b.object_key) {
            let first = &group[0];
            let ids: HashSet<Id> = group.iter().map(|e| e.interaction_id).collect();
            let mut lines = Vec::new();
            if let Some((_, mut reader)) = self.open_entry_slot(first).await? {
                while let Some(rec) = reader.next().await? {
                    if ids.contains(&rec.interaction_id) {
                        let v = serde_json::to_value(&rec).map_err(|e| AppError::internal_from("export record", e))?;
                        lines.push(tagged(v, "interaction")?);
                    }
                }
            }
            // The user's records in this object that did not read (a bad line, a corrupt tail,
            // an object gone with its row).
            summary.archive_skipped_lines += ids.len().saturating_sub(lines.len()) as u64;
            for l in lines {
                out.push(&l);
            }
            if !out.flush_if_full().await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// All of a user's data as JSONL: every interaction (hot and archived, with feedback and
    /// validations, `"record_type": "interaction"`), then unlinked validation logs
    /// (`"record_type": "validation"`).
    pub fn access_export(&self, user: UserId) -> LineStream {
        self.access_export_counted(user).0
    }

    /// Like [`App::access_export`], plus what it could not include once the last line is out.
    pub fn access_export_counted(&self, user: UserId) -> (LineStream, oneshot::Receiver<AccessSummary>) {
        let (tx, rx) = mpsc::channel(8);
        let (done_tx, done_rx) = oneshot::channel();
        let app = self.clone();
        tokio::spawn(async move {
            let mut out = Chunker::new(tx, None);
            match app.produce_access(&user, &mut out).await {
                Ok(summary) => {
                    out.finish().await;
                    let _ = done_tx.send(summary);
                }
                Err(e) => out.fail(e).await,
            }
        });
        (rx, done_rx)
    }

    async fn produce_access(&self, user: &UserId, out: &mut Chunker) -> Result<AccessSummary, AppError> {
        let mut summary = AccessSummary::default();
        let tagged = |v: serde_json::Value, t: &str| -> Result<String, AppError> {
            let mut v = v;
            if let Some(m) = v.as_object_mut() {
                m.insert("record_type".into(), t.into());
            }
            serde_json::to_string(&v).map_err(|e| AppError::internal_from("export line", e))
        };
        let to_value =
            |r: &FullRecord| serde_json::to_value(r).map_err(|e| AppError::internal_from("export record", e));
        // The interactions read so far (archived ones whether their line read or not): an archive
        // run going on meanwhile can move one after it was read hot, and the second read of the
        // archived entries must skip it.
        let entries = self.hot.archived_entries_of_user(user).await?;
        let mut read: HashSet<Id> = entries.iter().map(|e| e.interaction_id).collect();
        if !self.access_archived(entries, &mut summary, out, &tagged).await? {
            return Ok(summary);
        }
        fail::fail_point!("access.before_hot_scan");
        // Pages can be short (their records' bytes): only an empty one is the end.
        let mut after = None;
        loop {
            let page = self.hot.scan_user(user, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor { created_at: last.interaction.created_at, id: last.interaction.id });
            for l in page {
                read.insert(l.interaction.id);
                let rec = FullRecord::build(&l.interaction, l.feedback, l.validations, false)?;
                out.push(&tagged(to_value(&rec)?, "interaction")?);
            }
            if !out.flush_if_full().await {
                return Ok(summary);
            }
        }
        // Records an archive run moved out of the hot store before the scan reached them.
        let mut moved = self.hot.archived_entries_of_user(user).await?;
        moved.retain(|e| !read.contains(&e.interaction_id));
        if !self.access_archived(moved, &mut summary, out, &tagged).await? {
            return Ok(summary);
        }
        let mut after = None;
        loop {
            let page = self.hot.unlinked_validations(user, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor { created_at: last.created_at, id: last.validation_id });
            for v in page {
                let v = serde_json::to_value(&v).map_err(|e| AppError::internal_from("export line", e))?;
                out.push(&tagged(v, "validation")?);
            }
            if !out.flush_if_full().await {
                return Ok(summary);
            }
        }
        Ok(summary)
    }
}
