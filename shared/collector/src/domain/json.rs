//! JSON helpers: nesting depth before parsing, canonical hashing.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Deepest nesting the API accepts; deeper bodies are 413 before a `Value` is built.
pub const MAX_DEPTH: usize = 64;

/// What building a `Value` from a JSON text may cost at most, by [`JsonShape::cost`]: a body or
/// an inflated workflow over it is refused before anything is built, so one request's parse
/// stays near this much memory whatever the input (a 6 MiB body of `[0,0,...]` would otherwise
/// become ~200 MiB of `Value`s).
pub const MAX_JSON_COST: u64 = 48 * 1024 * 1024;

/// Bytes one JSON value (a scalar, a container, an object key) costs in a `serde_json::Value`
/// tree beyond its text: the 32-byte `Value`, a map entry's key and index, growth slack.
pub const VALUE_COST: u64 = 64;

/// Why a JSON text was refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeError {
    /// Nests deeper than allowed.
    TooDeep,
    /// Would cost more than allowed to build (see [`JsonShape::cost`]).
    TooCostly,
}

/// One pass over JSON text, fed in chunks (so an inflating stream never needs to be held whole):
/// nesting depth, how many values it holds and how many bytes sit inside strings. Strings are
/// skipped, so brackets in them do not count. It does not check that the text is valid JSON
/// (the parser does that afterwards); it bounds what that parse may build.
#[derive(Debug, Clone, Default)]
pub struct JsonShape {
    depth: usize,
    pub max_depth_seen: usize,
    pub values: u64,
    pub string_bytes: u64,
    pub bytes: u64,
    in_string: bool,
    escaped: bool,
    in_scalar: bool,
}

impl JsonShape {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    continue;
                }
                self.string_bytes += 1;
                continue;
            }
            let scalar = matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' | b'+' | b'.');
            if scalar {
                if !self.in_scalar {
                    self.values += 1;
                }
                self.in_scalar = true;
                continue;
            }
            self.in_scalar = false;
            match b {
                b'"' => {
                    self.in_string = true;
                    self.values += 1;
                }
                b'{' | b'[' => {
                    self.values += 1;
                    self.depth += 1;
                    self.max_depth_seen = self.max_depth_seen.max(self.depth);
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Memory a `Value` tree of this text may take: its string bytes plus [`VALUE_COST`] per value.
    pub fn cost(&self) -> u64 {
        self.string_bytes.saturating_add(self.values.saturating_mul(VALUE_COST))
    }

    /// The first limit this text breaks, if any.
    pub fn check(&self, max_depth: usize, max_cost: u64) -> Result<(), ShapeError> {
        if self.max_depth_seen > max_depth {
            Err(ShapeError::TooDeep)
        } else if self.cost() > max_cost {
            Err(ShapeError::TooCostly)
        } else {
            Ok(())
        }
    }

    /// The shape of a whole text.
    pub fn of(bytes: &[u8]) -> JsonShape {
        let mut s = JsonShape::default();
        s.feed(bytes);
        s
    }
}

/// Check a JSON text against the API's limits (depth [`MAX_DEPTH`], cost [`MAX_JSON_COST`]).
pub fn check_shape(bytes: &[u8]) -> Result<(), ShapeError> {
    JsonShape::of(bytes).check(MAX_DEPTH, MAX_JSON_COST)
}

/// True when `bytes` nests arrays/objects deeper than `max`.
pub fn too_deep(bytes: &[u8], max: usize) -> bool {
    JsonShape::of(bytes).max_depth_seen > max
}

/// sha256 (hex) of a value with object keys sorted, so key order does not change the hash.
pub fn canonical_hash(v: &Value) -> String {
    let mut h = Sha256::new();
    feed_canonical(&mut h, v);
    hex::encode(h.finalize())
}

/// Feed a value into a hasher canonically: keys sorted, strings length-prefixed, numbers as
/// JSON text. Allocates only a key list per object (ingest hashes 50 KB workflows per request).
pub fn feed_canonical(h: &mut Sha256, v: &Value) {
    use std::io::Write;
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            // Writing into a hasher cannot fail.
            let _ = write!(h, "{n};");
        }
        Value::String(s) => feed_str(h, s),
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_be_bytes());
            for x in a {
                feed_canonical(h, x);
            }
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            h.update(b"{");
            h.update((keys.len() as u64).to_be_bytes());
            for k in keys {
                feed_str(h, k);
                feed_canonical(h, &m[k]);
            }
        }
    }
}

/// A string, length-prefixed so ("ab","c") and ("a","bc") differ.
pub fn feed_str(h: &mut Sha256, s: &str) {
    h.update(b"s");
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_nesting_not_brackets_in_strings() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(too_deep(deep.as_bytes(), 64));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(!too_deep(ok.as_bytes(), 64));
        let in_string = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(!too_deep(in_string.as_bytes(), 64));
    }

    #[test]
    fn shape_counts_values_and_string_bytes_across_chunks() {
        let text = br#"{"a": [1, -2.5e3, true, null], "b\"c": "x[y"}"#;
        let whole = JsonShape::of(text);
        // {, "a", [, 1, -2.5e3, true, null, "b\"c", "x[y"
        assert_eq!(whole.values, 9);
        assert_eq!(whole.max_depth_seen, 2);
        assert_eq!(whole.string_bytes, 1 + 4 + 3);
        // The same answer whatever the chunking (an escape or a number split across chunks).
        for split in 1..text.len() {
            let mut s = JsonShape::default();
            s.feed(&text[..split]);
            s.feed(&text[split..]);
            assert_eq!((s.values, s.max_depth_seen, s.string_bytes), (9, 2, 8), "split at {split}");
        }
    }

    #[test]
    fn dense_arrays_cost_more_than_their_bytes() {
        // 1.5 MB of `0,` is 750k values: 48 MB of Values, not 1.5 MB.
        let dense = format!("[{}0]", "0,".repeat(800_000));
        assert_eq!(check_shape(dense.as_bytes()), Err(ShapeError::TooCostly));
        let long_string = format!("{{\"s\": \"{}\"}}", "x".repeat(6 * 1024 * 1024));
        assert_eq!(check_shape(long_string.as_bytes()), Ok(()));
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(check_shape(deep.as_bytes()), Err(ShapeError::TooDeep));
    }

    #[test]
    fn hash_ignores_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": null}});
        let b: Value = serde_json::from_str(r#"{"b": {"y": null, "x": [1, 2]}, "a": 1}"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&json!({"a": 2, "b": {"x": [1, 2], "y": null}})));
        assert_ne!(canonical_hash(&json!(["ab", "c"])), canonical_hash(&json!(["a", "bc"])));
    }
}
