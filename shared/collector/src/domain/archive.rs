//! Archive planning: which key, which storage class, what an object's metadata says.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::counters::PlatformCounters;
use super::types::{Id, Platform};

/// Objects of this size and more go to STANDARD_IA; smaller ones to STANDARD (IA bills 128 KiB minimum).
pub const IA_MIN_BYTES: i64 = 128 * 1024;
/// At most this many records per object, so rewriting one (a user's delete) stays cheap.
pub const MAX_RECORDS_PER_OBJECT: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum StorageClass {
    #[serde(rename = "STANDARD")]
    Standard,
    #[serde(rename = "STANDARD_IA")]
    StandardIa,
}

impl StorageClass {
    pub fn for_size(compressed_bytes: i64) -> StorageClass {
        if compressed_bytes >= IA_MIN_BYTES { StorageClass::StandardIa } else { StorageClass::Standard }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
        }
    }
    pub fn parse(s: &str) -> Option<StorageClass> {
        match s {
            "STANDARD" => Some(StorageClass::Standard),
            "STANDARD_IA" => Some(StorageClass::StandardIa),
            _ => None,
        }
    }
}

/// How a streamed write picks its storage class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassPolicy {
    /// From the final size ([`StorageClass::for_size`]): archive objects.
    BySize,
    /// Always this class. Spilled exports are STANDARD: they expire after 7 days, and
    /// STANDARD_IA bills a 30-day minimum.
    Fixed(StorageClass),
}

impl ClassPolicy {
    pub fn pick(self, bytes: i64) -> StorageClass {
        match self {
            ClassPolicy::BySize => StorageClass::for_size(bytes),
            ClassPolicy::Fixed(class) => class,
        }
    }
}

/// `archive/platform={p}/date={YYYY-MM-DD}/{run}-{n}.jsonl.gz`, the same in the folder and in S3.
pub fn object_key(platform: &Platform, date: NaiveDate, run: &str, n: usize) -> String {
    format!("archive/platform={platform}/date={}/{run}-{n}.jsonl.gz", date.format("%Y-%m-%d"))
}

/// Where an object is in the two-phase archive commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectState {
    /// Recorded before its bytes were written; its records may still be hot. The next run
    /// reconciles it: rolled forward if the object exists, back if not.
    Pending,
    /// Every line is live or tombstoned.
    #[default]
    Committed,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Pending => "pending",
            ObjectState::Committed => "committed",
        }
    }
    pub fn parse(s: &str) -> Option<ObjectState> {
        match s {
            "pending" => Some(ObjectState::Pending),
            "committed" => Some(ObjectState::Committed),
            _ => None,
        }
    }
}

/// One archive object, as its metadata row records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveObject {
    /// Where the bytes are now.
    pub object_key: String,
    /// The catalog's name for the object: the key it was first written under. Stubs and
    /// tombstones refer to it; compaction writes a new key and keeps the slot.
    pub slot: String,
    pub state: ObjectState,
    #[schema(value_type = String)]
    pub platform: Platform,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub run_id: String,
    pub record_count: i64,
    pub raw_bytes: i64,
    pub compressed_bytes: i64,
    pub storage_class: StorageClass,
    pub created_at: DateTime<Utc>,
}

impl ArchiveObject {
    /// A row for a new object at `key` (its slot), pending, sizes still zero.
    pub fn pending(platform: Platform, date: NaiveDate, key: String, run_id: &str, now: DateTime<Utc>) -> ArchiveObject {
        ArchiveObject {
            slot: key.clone(),
            object_key: key,
            state: ObjectState::Pending,
            platform,
            date,
            run_id: run_id.to_owned(),
            record_count: 0,
            raw_bytes: 0,
            compressed_bytes: 0,
            storage_class: StorageClass::Standard,
            created_at: now,
        }
    }

    pub fn compression_ratio(&self) -> f64 {
        if self.compressed_bytes == 0 { 0.0 } else { ((self.raw_bytes as f64 / self.compressed_bytes as f64) * 100.0).round() / 100.0 }
    }

    /// What adding this object adds to its platform's counters (records move separately).
    pub fn contribution(&self) -> PlatformCounters {
        PlatformCounters {
            archive_bytes: self.compressed_bytes,
            archived_raw_bytes: self.raw_bytes,
            archive_objects: 1,
            ..PlatformCounters::default()
        }
    }
}

/// The `interaction_id` of an archive line that does not read as a record (nested too deep,
/// cut short, not UTF-8 somewhere, not an interaction), found leniently in its bytes: the
/// string value of the `interaction_id` key of the line's top-level object, if it is a UUID.
/// Only a top-level key counts, so an id inside a workflow or a text is never taken for the
/// record's. A line's first key is its id (the record's field order), so it is found before any
/// nesting or damage further on.
pub fn line_interaction_id(raw: &[u8]) -> Option<Id> {
    const KEY: &[u8] = b"interaction_id";
    let mut depth = 0usize;
    // The top-level key just read is `interaction_id`: the next token is its value.
    let mut value_next = false;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                let end = string_end(raw, start)?;
                i = end + 1;
                if depth == 0 {
                    return None;
                }
                if depth == 1 {
                    let s = &raw[start..end];
                    if value_next {
                        return std::str::from_utf8(s).ok().and_then(|t| Id::parse(t).ok());
                    }
                    let colon = skip_ws(raw, i);
                    if s == KEY && raw.get(colon) == Some(&b':') {
                        value_next = true;
                        i = colon + 1;
                    }
                }
                continue;
            }
            _ if b.is_ascii_whitespace() => {}
            b'{' | b'[' => {
                if value_next || (depth == 0 && b == b'[') {
                    return None;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            _ if depth == 0 || value_next => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where the JSON string starting at `start` (after its opening quote) ends: its closing quote.
fn string_end(raw: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while let Some(&b) = raw.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(raw: &[u8], mut i: usize) -> usize {
    while raw.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// A new run id: sortable by time, unique.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &Id::new().0.simple().to_string()[24..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_and_storage_class_edge() {
        let p = Platform::parse("n8n").unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        assert_eq!(object_key(&p, d, "r1", 0), "archive/platform=n8n/date=2026-01-05/r1-0.jsonl.gz");
        assert_eq!(StorageClass::for_size(IA_MIN_BYTES - 1), StorageClass::Standard);
        assert_eq!(StorageClass::for_size(IA_MIN_BYTES), StorageClass::StandardIa);
        assert_eq!(ClassPolicy::BySize.pick(IA_MIN_BYTES), StorageClass::StandardIa);
        assert_eq!(ClassPolicy::Fixed(StorageClass::Standard).pick(IA_MIN_BYTES * 100), StorageClass::Standard);
        assert_eq!(ClassPolicy::Fixed(StorageClass::StandardIa).pick(0), StorageClass::StandardIa);
    }

    #[test]
    fn a_bad_line_gives_its_top_level_id_only() {
        let id = "0190a4b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        let other = "0190a4b2-0000-7e4f-8a9b-0c1d2e3f4a5b";
        let want = Some(Id::parse(id).unwrap());
        let deep = format!("{{\"interaction_id\":\"{id}\",\"workflow\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(line_interaction_id(deep.as_bytes()), want, "nested too deep");
        let cut = format!("{{\"interaction_id\":\"{id}\",\"user_message\":\"hel");
        assert_eq!(line_interaction_id(cut.as_bytes()), want, "cut short");
        let mut not_utf8 = format!("{{\"interaction_id\" : \"{id}\", \"user_message\":\"").into_bytes();
        not_utf8.extend([0xff, 0xfe, b'"', b'}']);
        assert_eq!(line_interaction_id(&not_utf8), want, "not UTF-8 further on");
        let later = format!("{{\"workflow\":{{\"interaction_id\":\"{other}\"}},\"note\":\"\\\"interaction_id\\\":\\\"{other}\\\"\",\"interaction_id\":\"{id}\"}}");
        assert_eq!(line_interaction_id(later.as_bytes()), want, "nested and quoted ids are not the record's");
        for bad in [
            "not json at all".to_owned(),
            format!("[\"interaction_id\",\"{id}\"]"),
            format!("\"interaction_id\":\"{id}\""),
            format!("{{\"interaction_id\":42,\"x\":\"{id}\"}}"),
            format!("{{\"interaction_id\":{{\"id\":\"{id}\"}}}}"),
            "{\"interaction_id\":\"not-a-uuid\"}".to_owned(),
            format!("{{\"workflow\":{{\"interaction_id\":\"{other}\"}}}}"),
            String::new(),
        ] {
            assert_eq!(line_interaction_id(bad.as_bytes()), None, "{bad}");
        }
    }
}
