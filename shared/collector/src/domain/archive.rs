//! Archive planning: which key, which storage class, what an object's metadata says.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::counters::PlatformCounters;
use super::records::{Feedback, Interaction, ValidationLog};
use super::types::{Id, Platform};
use super::workflow::{PayloadError, StoredWorkflow};

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
    pub fn pending(
        platform: Platform,
        date: NaiveDate,
        key: String,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> ArchiveObject {
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
        if self.compressed_bytes == 0 {
            0.0
        } else {
            ((self.raw_bytes as f64 / self.compressed_bytes as f64) * 100.0).round() / 100.0
        }
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

/// Append the archive line of `rec` with its links (no newline) to `out`: the bytes of
/// `serde_json::to_vec(&FullRecord::build(rec, feedback, validations, true))`, field for field,
/// without building the workflow's `Value`. The stored workflow is the compact JSON text ingest
/// wrote with `serde_json` from the parsed value, which parsing and writing again gives back
/// byte for byte (`float_roundtrip`, `preserve_order`; the export relies on the same), so it
/// goes in as it is, once checked to be exactly one JSON value within serde_json's nesting limit:
/// a damaged workflow fails the run here, as the parse did, rather than becoming an unreadable
/// line. A test holds this to `FullRecord`'s own serialization, field order included.
pub fn write_line(
    out: &mut Vec<u8>,
    rec: &Interaction,
    feedback: &[Feedback],
    validations: &[ValidationLog],
) -> Result<(), PayloadError> {
    let workflow = rec.workflow.as_ref().map(StoredWorkflow::json_str).transpose()?;
    if let Some(text) = &workflow {
        serde_json::from_str::<Checked>(text).map_err(|_| PayloadError::NotJson)?;
    }
    let s = &rec.summary;
    let mut w = LineWriter { out, first: true };
    w.field("interaction_id", &rec.id)?;
    w.field("user_id", &rec.user_id)?;
    w.field("platform", &rec.platform)?;
    w.field("kind", &rec.kind)?;
    w.field("user_message", &rec.user_message)?;
    w.field("ai_response", &rec.ai_response)?;
    w.field("intent", &rec.intent)?;
    w.key("workflow");
    w.out.extend_from_slice(workflow.as_deref().unwrap_or("null").as_bytes());
    w.field("success", &rec.success)?;
    w.field("error_message", &rec.error_message)?;
    w.field("processing_time_ms", &rec.processing_time_ms)?;
    w.field("model_version", &rec.model_version)?;
    w.field("metadata", &rec.metadata)?;
    w.field("training_consent", &rec.training_consent)?;
    w.field("created_at", &rec.created_at)?;
    w.field("has_feedback", &s.has_feedback())?;
    w.field("last_feedback_type", &s.last_feedback_type)?;
    w.field("positive_feedback", &s.positive_feedback)?;
    w.field("negative_feedback", &s.negative_feedback)?;
    w.field("archived", &true)?;
    w.field("feedback", &feedback)?;
    w.field("validations", &validations)?;
    w.out.push(b'}');
    Ok(())
}

/// A JSON text checked the way `serde_json` parses it into a `Value` (its nesting limit
/// included) without building anything. (`IgnoredAny` skips containers without the nesting limit.)
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// The fields of one JSON object, written one after the other with serde_json.
struct LineWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl LineWriter<'_> {
    fn key(&mut self, name: &str) {
        self.out.push(if std::mem::take(&mut self.first) { b'{' } else { b',' });
        self.out.push(b'"');
        // Field names are plain ASCII identifiers: nothing to escape.
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), PayloadError> {
        self.key(name);
        // Writing into a Vec does not fail, nor does serializing these types (string keys only).
        serde_json::to_writer(&mut *self.out, value).map_err(|_| PayloadError::NotJson)
    }
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
    fn an_archive_line_is_the_full_record_serialized() {
        use crate::domain::fixtures;
        use crate::domain::records::{FeedbackSummary, FeedbackType, FullRecord};
        use crate::domain::types::{Kind, UserId};
        use serde_json::{Map, Value, json};

        let workflow = json!({"nodes": [{"name": "Start \"quoted\" \u{e9}\u{1f600}\n", "n": 1.5, "big": u64::MAX, "neg": i64::MIN,
            "tiny": 5e-324, "f": 0.1, "e": [], "o": {}, "z": null, "b": true}], "connections": {"Start": {"main": [[]]}}, "notes": "compressible ".repeat(100)});
        let base = Interaction {
            id: Id::new(),
            user_id: UserId::parse("u-1").unwrap(),
            platform: Platform::parse("n8n").unwrap(),
            kind: Kind::WorkflowGeneration,
            user_message: "line\nbreak \u{7f} \u{1} tab\t \"q\" \\ \u{2028}".into(),
            ai_response: Some("ok".into()),
            intent: Some("create".into()),
            workflow: Some(StoredWorkflow::pack(&workflow, u64::MAX)),
            success: false,
            error_message: Some("boom".into()),
            processing_time_ms: Some(u64::MAX),
            model_version: Some("m".into()),
            metadata: Some(Map::from_iter([
                ("client".to_string(), json!("web")),
                ("a".to_string(), json!([1, {"b": 2.25}])),
            ])),
            training_consent: false,
            created_at: Utc::now(),
            content_hash: "h".into(),
            summary: FeedbackSummary {
                feedback_count: 2,
                last_feedback_type: Some(FeedbackType::ThumbsDown),
                positive_feedback: 1,
                negative_feedback: 1,
                latest_negative: true,
                good_validation: true,
                link_bytes: 700,
            },
        };
        let fb = vec![
            fixtures::feedback(FeedbackType::ThumbsUp, None),
            fixtures::feedback(FeedbackType::Edit, Some(json!({"nodes": [{"x": "y"}]}))),
        ];
        let v: crate::domain::records::ValidationLog = serde_json::from_value(json!({
            "validation_id": Id::new(), "interaction_id": base.id, "user_id": "u-1", "platform": "n8n",
            "passed": true, "score": 90, "errors": [], "warnings": [{"code": "no_trigger", "path": "/nodes/0", "message": "m"}],
            "user_edited": false, "workflow": {"a": 1}, "duration_ms": 1.25, "created_at": Utc::now()}))
        .unwrap();
        let mut nan = v.clone();
        nan.duration_ms = f64::NAN;
        let compressed = Interaction { workflow: Some(StoredWorkflow::pack(&workflow, 0)), ..base.clone() };
        assert!(compressed.workflow.as_ref().unwrap().compressed);
        let bare = Interaction {
            ai_response: None,
            intent: None,
            workflow: None,
            error_message: None,
            processing_time_ms: None,
            model_version: None,
            metadata: None,
            summary: FeedbackSummary::default(),
            ..base.clone()
        };
        let cases: [(&Interaction, &[Feedback], &[ValidationLog]); 4] = [
            (&base, &fb, std::slice::from_ref(&v)),
            (&compressed, &fb[..1], &[]),
            (&bare, &[], &[]),
            (&bare, &[], &[v.clone(), nan]),
        ];
        for (rec, fb, vs) in cases {
            let want = serde_json::to_vec(&FullRecord::build(rec, fb.to_vec(), vs.to_vec(), true).unwrap()).unwrap();
            let mut got = b"left alone".to_vec();
            write_line(&mut got, rec, fb, vs).unwrap();
            assert_eq!(String::from_utf8_lossy(&got[10..]), String::from_utf8_lossy(&want));
            assert_eq!(&got[..10], b"left alone");
        }

        // A stored workflow that is not one JSON value fails the line, as the parse did.
        let too_deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for bad in [&b"{\"a\":"[..], b"{} {}", b"", b"\xff", b"{\"a\" 1}", b"[1,]", too_deep.as_bytes()] {
            let rec = Interaction {
                workflow: Some(StoredWorkflow {
                    bytes: bad.to_vec(),
                    compressed: false,
                    original_bytes: bad.len() as i64,
                }),
                ..base.clone()
            };
            assert_eq!(write_line(&mut Vec::new(), &rec, &[], &[]), Err(PayloadError::NotJson));
            assert!(FullRecord::build(&rec, vec![], vec![], true).is_err());
        }
        let not_gzip = Interaction {
            workflow: Some(StoredWorkflow { bytes: b"xx".to_vec(), compressed: true, original_bytes: 2 }),
            ..base.clone()
        };
        assert_eq!(write_line(&mut Vec::new(), &not_gzip, &[], &[]), Err(PayloadError::NotGzip));
        // Nesting the parse accepts is accepted.
        let deep: Value = serde_json::from_str(&format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100))).unwrap();
        let rec = Interaction { workflow: Some(StoredWorkflow::pack(&deep, u64::MAX)), ..base.clone() };
        let mut line = Vec::new();
        write_line(&mut line, &rec, &[], &[]).unwrap();
        assert_eq!(serde_json::from_slice::<FullRecord>(&line).unwrap().workflow, Some(deep));
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
        let later = format!(
            "{{\"workflow\":{{\"interaction_id\":\"{other}\"}},\"note\":\"\\\"interaction_id\\\":\\\"{other}\\\"\",\"interaction_id\":\"{id}\"}}"
        );
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
