//! Workflow payloads: compact JSON, gzip above the threshold, bounded inflate.

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde_json::{Map, Value};

use super::json::{JsonShape, MAX_DEPTH, MAX_JSON_COST, Node, ShapeError};

/// Inflated payloads larger than this are refused: a gzip bomb is a 400, not an OOM.
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;

/// gzip level of stored workflows, chosen by measurement (docs/PERFORMANCE.md, "Ingest, round
/// 3"): level 5 is the lowest level of zlib-rs that stores a workflow in no more bytes than the
/// older system's gzip-9 did (it stored hex of that, twice the bytes; issue 16). Its extra CPU
/// over level 2 is paid for by parsing workflows into trees instead of `Value`s.
pub const GZIP_LEVEL: u32 = 5;

/// A workflow as stored: compact JSON, gzip-compressed when it was over the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWorkflow {
    pub bytes: Vec<u8>,
    pub compressed: bool,
    /// Size of the compact JSON.
    pub original_bytes: i64,
}

impl StoredWorkflow {
    pub fn stored_bytes(&self) -> i64 {
        self.bytes.len() as i64
    }

    /// Compact JSON; gzip when it is larger than `threshold_bytes` and compression helps.
    pub fn pack(workflow: &Value, threshold_bytes: u64) -> StoredWorkflow {
        StoredWorkflow::pack_text(compact(workflow), threshold_bytes)
    }

    /// [`StoredWorkflow::pack`] of a workflow's compact text ([`WorkflowText::into_compact`]).
    pub fn pack_text(text: Vec<u8>, threshold_bytes: u64) -> StoredWorkflow {
        let original_bytes = text.len() as i64;
        if text.len() as u64 > threshold_bytes {
            let gz = gzip(&text);
            // Over the threshold but gzip does not help: store the text after all.
            if gz.len() < text.len() {
                return StoredWorkflow { bytes: gz, compressed: true, original_bytes };
            }
        }
        StoredWorkflow { bytes: text, compressed: false, original_bytes }
    }

    /// The original JSON value back.
    pub fn unpack(&self) -> Result<Value, PayloadError> {
        if self.compressed {
            let json = inflate_sized(&self.bytes, self.original_bytes.max(0) as u64, MAX_INFLATED_BYTES)?;
            serde_json::from_slice(&json).map_err(|_| PayloadError::NotJson)
        } else {
            serde_json::from_slice(&self.bytes).map_err(|_| PayloadError::NotJson)
        }
    }

    /// The compact JSON text (inflated if needed).
    pub fn json_text(&self) -> Result<String, PayloadError> {
        self.json_str().map(Cow::into_owned)
    }

    /// The compact JSON text, borrowed when it is stored uncompressed. It is the text
    /// [`StoredWorkflow::pack`] wrote (`serde_json` of the parsed value), so it equals
    /// `serde_json::to_string(&self.unpack()?)` without the parse (the export relies on this).
    pub fn json_str(&self) -> Result<Cow<'_, str>, PayloadError> {
        if self.compressed {
            let json = inflate_sized(&self.bytes, self.original_bytes.max(0) as u64, MAX_INFLATED_BYTES)?;
            String::from_utf8(json).map(Cow::Owned).map_err(|_| PayloadError::NotJson)
        } else {
            std::str::from_utf8(&self.bytes).map(Cow::Borrowed).map_err(|_| PayloadError::NotJson)
        }
    }
}

/// A workflow object as ingest keeps it: its compact JSON text (what is stored) and its
/// canonical encoding (what the content hash takes in), both written from one parse of the
/// request's text, so no `Value` is built for a workflow that is only hashed and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowText {
    compact: Vec<u8>,
    canonical: Vec<u8>,
}

impl WorkflowText {
    /// The workflow of a parsed tree; `None` unless it is an object.
    pub fn of_node(node: &Node<'_>) -> Option<WorkflowText> {
        matches!(node, Node::Object(_)).then(|| WorkflowText::written_from(node))
    }

    /// The workflow of an object already parsed into a `Value` (a batch item, a legacy import).
    pub fn of_map(map: &Map<String, Value>) -> WorkflowText {
        WorkflowText::written_from(&Node::of_map(map))
    }

    fn written_from(node: &Node<'_>) -> WorkflowText {
        let mut canonical = Vec::new();
        node.write_canonical(&mut canonical);
        WorkflowText { compact: node.compact(), canonical }
    }

    pub fn compact(&self) -> &[u8] {
        &self.compact
    }

    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    pub fn into_compact(self) -> Vec<u8> {
        self.compact
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload inflates past the 64 MiB limit")]
    TooLarge,
    #[error("payload nests deeper than 64 levels")]
    TooDeep,
    #[error("payload holds too many JSON values to parse within the memory limit")]
    TooCostly,
    #[error("payload is not valid gzip")]
    NotGzip,
    #[error("payload is not valid hex")]
    NotHex,
    #[error("payload is not JSON")]
    NotJson,
}

pub fn compact(v: &Value) -> Vec<u8> {
    // Serializing a Value cannot fail (string keys only).
    serde_json::to_vec(v).unwrap_or_default()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::new(GZIP_LEVEL));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Inflate at most `limit` bytes; one byte more is [`PayloadError::TooLarge`]. Memory stays bounded
/// by the limit whatever the input claims.
pub fn inflate_limited(gz: &[u8], limit: u64) -> Result<Vec<u8>, PayloadError> {
    inflate_sized(gz, 0, limit)
}

/// [`inflate_limited`] into a buffer sized for `expected` bytes up front (when the inflated
/// size is known), so a large payload takes its size in memory, not the next power of two.
pub fn inflate_sized(gz: &[u8], expected: u64, limit: u64) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::with_capacity(expected.min(limit) as usize);
    GzDecoder::new(gz).take(limit + 1).read_to_end(&mut out).map_err(|_| PayloadError::NotGzip)?;
    if out.len() as u64 > limit {
        return Err(PayloadError::TooLarge);
    }
    Ok(out)
}

/// The older system's `workflow_gzip_hex`: hex of gzip of the JSON.
///
/// Two passes over the gzip. The first streams it through [`JsonShape`] without holding it
/// (size, depth and what its `Value`s would cost), so a bomb is refused having cost one inflate
/// buffer. Only a payload whose text and `Value`s together fit [`MAX_INFLATED_PARSE`] is then
/// inflated (into a buffer of its exact size) and parsed: one request's parse stays under that
/// whatever the payload claims.
pub fn from_gzip_hex(hex_text: &str) -> Result<Value, PayloadError> {
    let gz = hex::decode(hex_text.trim()).map_err(|_| PayloadError::NotHex)?;
    let shape = check_inflated(&gz, MAX_INFLATED_BYTES)?;
    let json = inflate_sized(&gz, shape.bytes, MAX_INFLATED_BYTES)?;
    drop(gz);
    serde_json::from_slice(&json).map_err(|_| PayloadError::NotJson)
}

/// The inflated text and the `Value`s built from it may take this much at once.
pub const MAX_INFLATED_PARSE: u64 = 64 * 1024 * 1024;

/// Stream-inflate `gz` and check what it holds against the body limits, stopping at the first
/// limit passed.
fn check_inflated(gz: &[u8], limit: u64) -> Result<JsonShape, PayloadError> {
    let mut decoder = GzDecoder::new(gz);
    let mut shape = JsonShape::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = decoder.read(&mut buf).map_err(|_| PayloadError::NotGzip)?;
        if n == 0 {
            return if shape.bytes.saturating_add(shape.cost()) > MAX_INFLATED_PARSE {
                Err(PayloadError::TooCostly)
            } else {
                Ok(shape)
            };
        }
        shape.feed(&buf[..n]);
        if shape.bytes > limit {
            return Err(PayloadError::TooLarge);
        }
        shape.check(MAX_DEPTH, MAX_JSON_COST).map_err(|e| match e {
            ShapeError::TooDeep => PayloadError::TooDeep,
            ShapeError::TooCostly => PayloadError::TooCostly,
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workflow_of_size(n: usize) -> Value {
        // {"pad":"xxx..."} is 10 bytes plus the padding.
        json!({ "pad": "x".repeat(n - 10) })
    }

    #[test]
    fn compresses_only_above_the_threshold_and_round_trips() {
        let threshold = 10 * 1024;
        for (size, want_compressed) in
            [(threshold as usize - 1, false), (threshold as usize, false), (threshold as usize + 1, true)]
        {
            let wf = workflow_of_size(size);
            assert_eq!(compact(&wf).len(), size);
            let s = StoredWorkflow::pack(&wf, threshold);
            assert_eq!(s.compressed, want_compressed, "size {size}");
            assert_eq!(s.original_bytes, size as i64);
            assert_eq!(s.unpack().unwrap(), wf);
        }
    }

    #[test]
    fn numbers_come_back_exactly() {
        let text = r#"{"f":0.1,"g":1.7976931348623157e308,"h":-2.2250738585072014e-308,"u":18446744073709551615,"i":-9223372036854775808,"z":5e-324}"#;
        let wf: Value = serde_json::from_str(text).unwrap();
        let s = StoredWorkflow::pack(&wf, 0);
        assert!(s.compressed);
        let back = s.unpack().unwrap();
        assert_eq!(back, wf);
        assert_eq!(back["u"].as_u64(), Some(u64::MAX));
        assert_eq!(back["i"].as_i64(), Some(i64::MIN));
        assert_eq!(back["f"].as_f64().map(f64::to_bits), Some(0.1f64.to_bits()));
        let text_back: Value = serde_json::from_str(&s.json_text().unwrap()).unwrap();
        assert_eq!(text_back, wf);
        // The stored text is already what serializing the unpacked value gives (the export
        // writes it as is), compressed or not.
        for threshold in [0, u64::MAX] {
            let s = StoredWorkflow::pack(&wf, threshold);
            assert_eq!(s.json_str().unwrap(), serde_json::to_string(&s.unpack().unwrap()).unwrap());
        }
    }

    #[test]
    fn gzip_bomb_is_refused_without_inflating_it_whole() {
        // 65 MiB of zeros compresses to ~64 KiB.
        let zeros = vec![b'0'; 65 * 1024 * 1024];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 1024 * 1024);
        assert_eq!(inflate_limited(&bomb, MAX_INFLATED_BYTES), Err(PayloadError::TooLarge));
        assert_eq!(from_gzip_hex(&hex::encode(&bomb)), Err(PayloadError::TooLarge));
    }

    #[test]
    fn legacy_hex_import() {
        let wf = json!({"nodes": [1, 2.5, "x"]});
        let hex_text = hex::encode(gzip(&compact(&wf)));
        assert_eq!(from_gzip_hex(&hex_text), Ok(wf));
        assert_eq!(from_gzip_hex("zz"), Err(PayloadError::NotHex));
        assert_eq!(from_gzip_hex("abcd"), Err(PayloadError::NotGzip));
        assert_eq!(from_gzip_hex(&hex::encode(gzip(b"not json"))), Err(PayloadError::NotJson));
    }

    #[test]
    fn legacy_hex_gets_the_body_limits_on_the_inflated_workflow() {
        // A few hundred bytes of hex that would nest 126 deep once inflated.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(125), "]".repeat(125));
        assert_eq!(from_gzip_hex(&hex::encode(gzip(deep.as_bytes()))), Err(PayloadError::TooDeep));
        let ok_deep = format!("{{\"a\":{}{}}}", "[".repeat(63), "]".repeat(63));
        assert!(from_gzip_hex(&hex::encode(gzip(ok_deep.as_bytes()))).is_ok());
        // 60 MiB of `[0,0,...]` (under the 64 MiB cap) would be ~2 GB of Values.
        let dense = format!("{{\"a\":[{}0]}}", "0,".repeat(30 * 1024 * 1024));
        assert_eq!(from_gzip_hex(&hex::encode(gzip(dense.as_bytes()))), Err(PayloadError::TooCostly));
        // 256 MiB of spaces.
        let spaces = vec![b' '; 256 * 1024 * 1024];
        assert_eq!(from_gzip_hex(&hex::encode(gzip(&spaces))), Err(PayloadError::TooLarge));
        // A long string is fine while its text and its Value fit together (2 x 28 MiB)...
        let long = json!({"s": "x".repeat(28 * 1024 * 1024)});
        assert_eq!(from_gzip_hex(&hex::encode(gzip(&compact(&long)))), Ok(long));
        // ...and refused when they do not (2 x 40 MiB), though under the 64 MiB inflate cap.
        let longer = json!({"s": "x".repeat(40 * 1024 * 1024)});
        assert_eq!(from_gzip_hex(&hex::encode(gzip(&compact(&longer)))), Err(PayloadError::TooCostly));
    }

    #[test]
    fn pack_falls_back_to_plain_when_gzip_does_not_help() {
        // Incompressible text over the threshold stays plain.
        let noise: String =
            (0..40_000u32).map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26)).collect();
        let wf = json!({"n": noise});
        let s = StoredWorkflow::pack(&wf, 1024);
        assert_eq!(s.original_bytes, compact(&wf).len() as i64);
        assert_eq!(s.unpack().unwrap(), wf);
        assert_eq!(s.compressed, (s.bytes.len() as i64) < s.original_bytes);
        assert_eq!(s.json_str().unwrap(), String::from_utf8(compact(&wf)).unwrap());
        // Seven bytes over a five-byte threshold: gzip's header alone is bigger, so plain.
        let tiny = json!({"a": 1});
        let s = StoredWorkflow::pack(&tiny, 5);
        assert!(!s.compressed);
        assert_eq!(s.bytes, compact(&tiny));
        assert_eq!(s.original_bytes, 7);
    }
}
