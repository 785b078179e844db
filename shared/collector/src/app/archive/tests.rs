//! Tests of the archive object writer and reader: large objects, dry runs, bad lines and
//! corrupt gzip streams.

use std::io::Write;

use flate2::{Compression, write::GzEncoder};

use super::lines::{Line, Unreadable, for_each_line};
use super::*;
use crate::adapters::fs::FolderStore;
use crate::domain::fixtures;
use crate::domain::types::{Id, Kind};
use crate::ports::ObjectStore;

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
    Ok(read_counted(objects, key).await?.0)
}

/// The readable records, and what could not be read.
async fn read_counted(objects: &dyn ObjectStore, key: &str) -> Result<(Vec<FullRecord>, Unreadable), AppError> {
    let mut out = Vec::new();
    let unreadable = for_each_line(objects, key, |r| {
        out.push(r);
        Ok(())
    })
    .await?;
    Ok((out, unreadable))
}

fn line(rec: &FullRecord) -> Vec<u8> {
    let mut l = serde_json::to_vec(rec).expect("json");
    l.push(b'\n');
    l
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
    assert!(w.compressed_bytes > 4 * OUT_CHUNK as i64, "several chunks were streamed");
    assert_eq!(w.storage_class, StorageClass::StandardIa);
    assert_eq!(objects.get(KEY).await.expect("get").len() as i64, w.compressed_bytes);
    let back = read_all(&objects, KEY).await.expect("read");
    assert_eq!(
        back.iter().map(|r| r.interaction_id).collect::<Vec<_>>(),
        w.items.iter().map(|i| i.id).collect::<Vec<_>>()
    );
    assert_eq!(back, recs);
}

/// An object written before archives moved to zlib-rs at level 1 (miniz_oxide at gzip
/// level 6, three of the bench's records, by the code of 2026-12-01) reads as it did: every
/// line a record, each the bytes its record serializes to; and rewritten by this code (as a
/// compaction does), the records come back the same.
#[tokio::test]
async fn an_object_written_before_zlib_rs_still_reads() {
    const OLD: &[u8] = include_bytes!("../../../tests/fixtures/archive-miniz-level6.jsonl.gz");
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = FolderStore::new(dir.path().join("old"));
    objects.put(KEY, OLD.to_vec(), StorageClass::Standard).await.expect("put");
    let (recs, unreadable) = read_counted(&objects, KEY).await.expect("read");
    assert_eq!((recs.len(), unreadable.total()), (3, 0));
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(OLD), &mut raw).expect("inflate");
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 3);
    for (rec, line) in recs.iter().zip(lines) {
        assert_eq!(serde_json::to_string(rec).expect("json"), line);
        assert!(rec.archived && rec.workflow.is_some());
    }
    let again = FolderStore::new(dir.path().join("new"));
    let mut p = open_pending(&again, false).await;
    for rec in &recs {
        p.push(rec).await.expect("push");
    }
    p.finish().await.expect("finish");
    assert_eq!(read_all(&again, KEY).await.expect("read"), recs);
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
    // The same writes, one line at a time (zlib-rs's block boundaries follow the writes).
    assert_eq!(w.compressed_bytes, {
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(ARCHIVE_GZIP_LEVEL));
        for line in raw.split_inclusive(|&b| b == b'\n') {
            gz.write_all(line).expect("gzip");
        }
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
    objects.put(KEY, gzip(&raw), StorageClass::Standard).await.expect("put");
    assert_eq!(read_all(&objects, KEY).await.expect("read"), vec![a, b]);
}

/// Lines far longer than an inflate step read back whole, around short ones, the last one
/// without its newline: the reader's search for a newline, which resumes where the last step's
/// search stopped, finds each line's end across many steps and buffer drains. (That it is no
/// longer quadratic is not what this checks.)
#[tokio::test]
async fn lines_of_many_inflate_steps_read_back_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = FolderStore::new(dir.path().to_path_buf());
    let long = |i: usize| FullRecord { user_message: format!("{i} {}", "long line ".repeat(600_000)), ..record(i) };
    let recs = vec![record(1), long(2), record(3), record(4), long(5)];
    let mut raw = Vec::new();
    for r in &recs {
        raw.extend(line(r));
    }
    raw.pop();
    objects.put(KEY, gzip(&raw), StorageClass::Standard).await.expect("put");
    let (back, unreadable) = read_counted(&objects, KEY).await.expect("read");
    assert_eq!(unreadable, Unreadable::default());
    assert_eq!(back, recs);
}

/// Each kind of bad line is passed over, counted with its id when the id can still be
/// found, and the lines around it read as usual.
#[tokio::test]
async fn a_bad_line_of_any_kind_is_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = FolderStore::new(dir.path().to_path_buf());
    let recs: Vec<FullRecord> = (0..8).map(record).collect();
    // Nested past serde_json's recursion limit (128): valid JSON, unreadable as a record.
    let too_deep = String::from_utf8(line(&recs[1]))
        .expect("utf-8")
        .replace("\"workflow\":null", &format!("\"workflow\":{}{}", "[".repeat(200), "]".repeat(200)));
    assert_ne!(too_deep.as_bytes(), line(&recs[1]).as_slice(), "the workflow was replaced");
    // Not UTF-8 inside the user message.
    let mut not_utf8 = line(&recs[3]);
    let at = not_utf8.windows(16).position(|w| w == b"\"user_message\":\"").expect("field") + 18;
    not_utf8[at] = 0xff;
    let cases: [(&str, Vec<u8>, Option<Id>); 5] = [
        ("too deep", too_deep.into_bytes(), Some(recs[1].interaction_id)),
        ("not JSON", b"{\"interaction_id\": oops\n".to_vec(), None),
        ("not UTF-8", not_utf8, Some(recs[3].interaction_id)),
        ("not an interaction", b"{\"hello\":\"world\"}\n".to_vec(), None),
        (
            "an interaction's id, the rest not",
            format!("{{\"interaction_id\":\"{}\",\"user_id\":5}}\n", recs[5].interaction_id).into_bytes(),
            Some(recs[5].interaction_id),
        ),
    ];
    for (what, bad, id) in cases {
        let mut raw = Vec::new();
        raw.extend(line(&recs[0]));
        raw.extend(&bad);
        raw.extend(line(&recs[2]));
        objects.put(KEY, gzip(&raw), StorageClass::Standard).await.expect("put");
        let (back, unreadable) = read_counted(&objects, KEY).await.expect(what);
        assert_eq!(back, vec![recs[0].clone(), recs[2].clone()], "{what}: the other lines read");
        assert_eq!(unreadable, Unreadable { lines: vec![id], segments: 0 }, "{what}");
        assert_eq!(unreadable.total(), 1, "{what}");
        // The raw line is what compaction would copy.
        let mut lines = ArchiveLines::open(&objects, KEY).await.expect("open");
        let mut bad_lines = Vec::new();
        while let Some(l) = lines.next_line().await.expect("line") {
            if let Line::Bad { number, raw, id: found } = l {
                bad_lines.push((number, raw, found));
            }
        }
        let want = bad.strip_suffix(b"\n").unwrap_or(&bad).to_vec();
        assert_eq!(bad_lines, vec![(2, want, id)], "{what}: line 2, as stored");
    }
    // Every line bad: nothing, all counted.
    objects.put(KEY, gzip(b"x\ny\n\nz"), StorageClass::Standard).await.expect("put");
    let (back, unreadable) = read_counted(&objects, KEY).await.expect("read");
    assert!(back.is_empty());
    assert_eq!(unreadable.total(), 3);
}

/// A damaged gzip stream gives the lines inflated before the damage; the rest is one
/// unreadable segment. Only the store's own errors are errors.
#[tokio::test]
async fn a_corrupt_gzip_stream_gives_what_precedes_the_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = FolderStore::new(dir.path().to_path_buf());
    let recs: Vec<FullRecord> = (0..20).map(record).collect();
    let raw: Vec<u8> = recs.iter().flat_map(line).collect();
    let whole = gzip(&raw);
    let mut flipped = whole.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let mut extra = whole.clone();
    extra.extend(b"junk");
    /// What the reader gives back.
    enum Served {
        Every,
        /// Some records, each whole, in order, and not all.
        APrefix,
        /// The records before the damage, whole. Damaged deflate data can inflate to other
        /// bytes that still parse (gzip's checksum fails only at the end, after they were
        /// read): only the first, well before the damage, is checked.
        TheStart,
    }
    let cases: [(&str, Vec<u8>, Served); 5] = [
        ("a cut trailer", whole[..whole.len() - 4].to_vec(), Served::Every),
        ("a cut body", whole[..whole.len() / 2].to_vec(), Served::APrefix),
        ("a damaged middle", flipped, Served::TheStart),
        ("bytes after the trailer", extra, Served::Every),
        ("a damaged header", b"not gzip at all".to_vec(), Served::APrefix),
    ];
    for (what, bytes, served) in cases {
        objects.put(KEY, bytes, StorageClass::Standard).await.expect("put");
        let (back, unreadable) = read_counted(&objects, KEY).await.expect(what);
        assert_eq!(unreadable.segments, 1, "{what}: one unreadable segment");
        match served {
            Served::Every => assert_eq!(back, recs, "{what}"),
            Served::APrefix => {
                assert!(back.len() < recs.len(), "{what}: the damaged part is not served");
                assert_eq!(back, recs[..back.len()], "{what}: the records before the damage, whole");
            }
            Served::TheStart => assert_eq!(back.first(), recs.first(), "{what}"),
        }
    }
    assert!(matches!(
        read_all(&objects, "archive/missing.jsonl.gz").await,
        Err(AppError::Store(_)) | Err(AppError::NotFound)
    ));
}
