//! Archive objects as gzip JSON lines: [`Pending`] writes one (records gzipped as they come,
//! streamed to the object writer), [`ArchiveLines`] reads one back line by line (inflated step
//! by step, bad lines and corrupt segments counted, not fatal).
use std::io::Write;

use bytes::{Buf, Bytes};
use chrono::{NaiveDate, Utc};
use flate2::{Compression, write::GzDecoder, write::GzEncoder};
use futures::StreamExt;

use super::{ARCHIVE_GZIP_LEVEL, INFLATE_STEP, MAX_RAW_BYTES_PER_OBJECT, OUT_CHUNK, internal};
use crate::app::AppError;
use crate::domain::archive::{self, ArchiveObject, ClassPolicy, MAX_RECORDS_PER_OBJECT, ObjectState, StorageClass};
use crate::domain::records::FullRecord;
use crate::domain::types::{Id, Platform};
use crate::ports::{ArchiveItem, Linked, ObjectStore, ObjectStream, ObjectWriter};

/// Where an object's compressed bytes go: the store's writer, or nowhere (a dry run, which
/// still compresses to report sizes).
enum Sink {
    Discard,
    Writer(Box<dyn ObjectWriter>),
}

/// One object being filled: records are gzipped as they come and the compressed bytes
/// streamed to the writer, so memory is about one [`OUT_CHUNK`] whatever the object's size.
pub(super) struct Pending {
    pub(super) platform: Platform,
    pub(super) date: NaiveDate,
    pub(super) key: String,
    pub(super) items: Vec<ArchiveItem>,
    /// Unreadable lines copied as they were (compaction), besides the records in `items`.
    pub(super) copied_lines: i64,
    pub(super) raw_bytes: i64,
    pub(super) compressed_bytes: i64,
    gz: GzEncoder<Vec<u8>>,
    sink: Sink,
    /// The line being written (reused).
    line: Vec<u8>,
}

/// A finished object's facts, before it is recorded.
pub(super) struct Written {
    pub(super) key: String,
    pub(super) items: Vec<ArchiveItem>,
    pub(super) copied_lines: i64,
    pub(super) raw_bytes: i64,
    pub(super) compressed_bytes: i64,
    pub(super) storage_class: StorageClass,
}

impl Written {
    /// The committed row of this object in `slot` (its own key for a new object, the old one's
    /// slot for a compaction).
    pub(super) fn object(&self, slot: String, platform: Platform, date: NaiveDate, run_id: &str) -> ArchiveObject {
        ArchiveObject {
            object_key: self.key.clone(),
            slot,
            state: ObjectState::Committed,
            platform,
            date,
            run_id: run_id.to_owned(),
            // Every line: an unreadable one copied by a compaction is still someone's record.
            record_count: self.items.len() as i64 + self.copied_lines,
            raw_bytes: self.raw_bytes,
            compressed_bytes: self.compressed_bytes,
            storage_class: self.storage_class,
            created_at: Utc::now(),
        }
    }
}

impl Pending {
    /// Open `key` for writing (nothing is written on a dry run).
    pub(super) async fn open(
        objects: &dyn ObjectStore,
        platform: Platform,
        date: NaiveDate,
        key: String,
        dry_run: bool,
    ) -> Result<Pending, AppError> {
        let sink = if dry_run { Sink::Discard } else { Sink::Writer(objects.writer(&key, ClassPolicy::BySize).await?) };
        Ok(Pending {
            platform,
            date,
            key,
            items: Vec::new(),
            copied_lines: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            gz: GzEncoder::new(Vec::with_capacity(OUT_CHUNK), Compression::new(ARCHIVE_GZIP_LEVEL)),
            sink,
            line: Vec::new(),
        })
    }

    /// A hot record with its links, written as its `FullRecord` line straight from the stored
    /// workflow text ([`archive::write_line`]): the workflow is not parsed into a `Value`.
    pub(super) async fn push_linked(&mut self, l: &Linked) -> Result<(), AppError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        archive::write_line(&mut line, &l.interaction, &l.feedback, &l.validations)?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(internal)?;
        self.raw_bytes += line.len() as i64;
        self.line = line;
        self.items.push(ArchiveItem { id: l.interaction.id, links: (l.feedback.len() + l.validations.len()) as i64 });
        self.send_if_full().await
    }

    pub(super) async fn push(&mut self, rec: &FullRecord) -> Result<(), AppError> {
        let mut line = serde_json::to_vec(rec).map_err(internal)?;
        line.push(b'\n');
        self.gz.write_all(&line).map_err(internal)?;
        self.raw_bytes += line.len() as i64;
        self.items
            .push(ArchiveItem { id: rec.interaction_id, links: (rec.feedback.len() + rec.validations.len()) as i64 });
        self.send_if_full().await
    }

    /// A line that does not read as a record, copied byte for byte (compaction keeps what it
    /// cannot read rather than lose it).
    pub(super) async fn push_raw(&mut self, raw: &[u8]) -> Result<(), AppError> {
        self.gz.write_all(raw).map_err(internal)?;
        self.gz.write_all(b"\n").map_err(internal)?;
        self.raw_bytes += raw.len() as i64 + 1;
        self.copied_lines += 1;
        self.send_if_full().await
    }

    async fn send_if_full(&mut self) -> Result<(), AppError> {
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
            crash_point!("archive.mid_upload");
        }
        Ok(())
    }

    /// Records written so far.
    pub(super) fn records(&self) -> usize {
        self.items.len()
    }

    pub(super) fn full(&self) -> bool {
        self.items.len() >= MAX_RECORDS_PER_OBJECT || self.raw_bytes >= MAX_RAW_BYTES_PER_OBJECT
    }

    /// Write the gzip trailer (without it the object would be silently truncated), send the
    /// last bytes and make the object durable.
    pub(super) async fn finish(self) -> Result<Written, AppError> {
        let Pending { key, items, copied_lines, raw_bytes, mut compressed_bytes, gz, sink, .. } = self;
        // What is still buffered, then the trailer.
        let tail = gz.finish().map_err(internal)?;
        compressed_bytes += tail.len() as i64;
        let storage_class = match sink {
            Sink::Discard => StorageClass::for_size(compressed_bytes),
            Sink::Writer(mut w) => {
                // On an error the writer is dropped, which removes whatever it had written.
                w.write(Bytes::from(tail)).await?;
                crash_point!("archive.before_upload_finish");
                let done = w.finish().await?;
                if done.bytes != compressed_bytes {
                    return Err(AppError::internal("archive object size mismatch after writing"));
                }
                done.storage_class
            }
        };
        Ok(Written { key, items, copied_lines, raw_bytes, compressed_bytes, storage_class })
    }

    /// Give up on the object: nothing of it stays in the store.
    pub(super) async fn abort(self) {
        if let Sink::Writer(w) = self.sink
            && let Err(e) = w.abort().await
        {
            tracing::warn!(error = %e, "archive: aborting an unfinished object failed");
        }
    }
}

/// The parts of an object that could not be read: its bad lines (each with its
/// `interaction_id` when that could still be found, [`archive::line_interaction_id`]) and its
/// corrupt gzip segments (at most one: nothing after the damage can be inflated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub(crate) lines: Vec<Option<Id>>,
    pub(crate) segments: u64,
}

impl Unreadable {
    /// What a reader reports as skipped: each bad line, and each corrupt segment as one.
    pub(crate) fn total(&self) -> u64 {
        self.lines.len() as u64 + self.segments
    }
}

/// One line of an archive object.
pub(crate) enum Line {
    Record(Box<FullRecord>),
    /// A line that does not read as a record: its number in the object (from 1), its bytes as
    /// stored (compaction copies them) and its id when it can still be found. Already logged.
    Bad {
        number: u64,
        raw: Vec<u8>,
        id: Option<Id>,
    },
}

/// An archive object's records, one at a time, read through the store's streamed reader and
/// inflated step by step: memory is one line plus one inflate step's output, whatever the
/// object's size.
///
/// A bad line (not JSON, not UTF-8, nested past serde_json's limit, not an interaction) is
/// logged once (object key, line number, error category; never its content), counted in
/// [`ArchiveLines::unreadable`] and passed over: the object's other lines read as usual. A
/// corrupt gzip stream (cut short, a bad checksum, damaged deflate data, bytes after its end)
/// gives the lines inflated before the damage, then ends; the rest counts as one unreadable
/// segment, logged. Only the store's own errors (the object is missing, a read fails) are
/// errors.
pub(crate) struct ArchiveLines {
    stream: ObjectStream,
    /// Inflated bytes collect in the decoder's inner buffer; `pos` is where unread ones start.
    gz: GzDecoder<Vec<u8>>,
    pos: usize,
    /// How many bytes from `pos` on are known to hold no newline.
    scanned: usize,
    /// Compressed bytes received but not yet inflated.
    input: Bytes,
    ended: bool,
    /// Why the gzip stream could not be read to its end, once it could not.
    corrupt: Option<&'static str>,
    key: String,
    /// Lines read so far, blank ones included (a bad line's number).
    line_no: u64,
    /// Inflated bytes consumed so far (lines with their newlines) and compressed bytes received.
    pub(crate) raw_bytes: i64,
    pub(crate) compressed_bytes: i64,
    pub(crate) unreadable: Unreadable,
}

impl ArchiveLines {
    pub(crate) async fn open(objects: &dyn ObjectStore, key: &str) -> Result<ArchiveLines, AppError> {
        Ok(ArchiveLines {
            stream: objects.reader(key).await?,
            gz: GzDecoder::new(Vec::new()),
            pos: 0,
            scanned: 0,
            input: Bytes::new(),
            ended: false,
            corrupt: None,
            key: key.to_owned(),
            line_no: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            unreadable: Unreadable::default(),
        })
    }

    /// The next readable record, or `None` after the last one; bad lines are passed over
    /// (counted and logged).
    pub(crate) async fn next(&mut self) -> Result<Option<FullRecord>, AppError> {
        loop {
            match self.next_line().await? {
                Some(Line::Record(rec)) => return Ok(Some(*rec)),
                Some(Line::Bad { .. }) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next line, readable or not, or `None` after the last one (the gzip trailer checked).
    pub(crate) async fn next_line(&mut self) -> Result<Option<Line>, AppError> {
        loop {
            let buf = self.gz.get_ref();
            let unread = &buf[self.pos..];
            // Bytes already searched are not searched again: a long line arrives in many
            // inflate steps, and searching it from its start at each step was quadratic.
            let line_end = match memchr::memchr(b'\n', &unread[self.scanned..]).map(|i| i + self.scanned) {
                Some(i) => Some((i, i + 1)),
                // The last line may lack its newline, unless the stream is corrupt: then it is
                // cut, part of the unreadable segment.
                None if self.ended && self.corrupt.is_none() && !unread.is_empty() => {
                    Some((unread.len(), unread.len()))
                }
                None => None,
            };
            if let Some((end, next)) = line_end {
                let line = &unread[..end];
                self.pos += next;
                self.scanned = 0;
                self.raw_bytes += next as i64;
                self.line_no += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(match serde_json::from_slice::<FullRecord>(line) {
                    Ok(rec) => Line::Record(Box::new(rec)),
                    Err(e) => {
                        let id = archive::line_interaction_id(line);
                        // Position and category only: serde's message can quote stored user text.
                        tracing::warn!(
                            object_key = %self.key,
                            line = self.line_no,
                            category = ?e.classify(),
                            column = e.column(),
                            id_found = id.is_some(),
                            "archive: unreadable line skipped"
                        );
                        self.unreadable.lines.push(id);
                        Line::Bad { number: self.line_no, raw: line.to_vec(), id }
                    }
                }));
            }
            self.scanned = unread.len();
            if self.ended {
                if let Some(why) = self.corrupt.take() {
                    tracing::warn!(
                        object_key = %self.key,
                        after_line = self.line_no,
                        why,
                        "archive: corrupt gzip stream; the rest of the object is skipped"
                    );
                    self.unreadable.segments += 1;
                    // Whatever part of a line is left belongs to the lost segment.
                    self.pos = self.gz.get_ref().len();
                    self.scanned = 0;
                }
                return Ok(None);
            }
            // Drop what was read before inflating more.
            let pos = std::mem::take(&mut self.pos);
            self.gz.get_mut().drain(..pos);
            if self.input.is_empty() {
                match self.stream.next().await {
                    Some(chunk) => {
                        self.input = chunk?;
                        self.compressed_bytes += self.input.len() as i64;
                    }
                    None => {
                        if self.gz.try_finish().is_err() {
                            self.corrupt = Some("cut short or a bad checksum");
                        }
                        self.ended = true;
                        continue;
                    }
                }
            }
            let step = self.input.len().min(INFLATE_STEP);
            match self.gz.write(&self.input[..step]) {
                Ok(n) if n > 0 => self.input.advance(n),
                Ok(_) => self.lose_rest("bytes after the end of the gzip stream"),
                Err(_) => self.lose_rest("corrupt gzip data"),
            }
        }
    }

    /// The stream cannot be inflated further: what was inflated before the damage is still
    /// read, the rest is one unreadable segment (counted and logged once the reader gets there).
    fn lose_rest(&mut self, why: &'static str) {
        // Moves output the decoder still holds into the buffer; its own error is the one we know.
        let _ = self.gz.try_finish();
        self.corrupt = Some(why);
        self.ended = true;
    }
}

/// Read an archive object line by line (memory: one line plus one inflate step), passing each
/// readable record to `f`. Returns what could not be read (bad lines are logged by the reader).
/// The app reads through [`super::App::open_slot`]; the tests read objects with this.
#[cfg(test)]
pub(crate) async fn for_each_line(
    objects: &dyn ObjectStore,
    key: &str,
    mut f: impl FnMut(FullRecord) -> Result<(), AppError>,
) -> Result<Unreadable, AppError> {
    let mut lines = ArchiveLines::open(objects, key).await?;
    while let Some(rec) = lines.next().await? {
        f(rec)?;
    }
    Ok(lines.unreadable)
}
