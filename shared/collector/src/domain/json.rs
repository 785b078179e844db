//! JSON helpers: nesting depth before parsing, a borrowed tree ([`Node`]), canonical hashing.

use std::io::{BufWriter, Write};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub mod tree;
pub use tree::{Node, write_canonical_str};

/// Deepest nesting the API accepts; deeper bodies are 413 before a `Value` is built.
pub const MAX_DEPTH: usize = 64;

/// Most bytes an answer's JSON may take once escaped into one JSON string, which is how a Lambda
/// function hands its body to API Gateway (at most 6 MB of JSON, less room for the envelope and
/// headers). Answers that can be larger spill to the bucket on Lambda (`http::spill`); the
/// validation answer, which is written before it is answered, is refused over it instead.
pub const ANSWER_BUDGET: usize = 6 * 1024 * 1024 - 64 * 1024;

/// How many bytes `v`'s JSON takes inside a JSON string, counted as it is written (nothing is
/// kept).
pub fn escaped_json_len<T: serde::Serialize + ?Sized>(v: &T) -> Result<usize, serde_json::Error> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += json_escaped_len(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, v)?;
    Ok(counter.0)
}

/// How many bytes `chunk` takes inside a JSON string.
pub fn json_escaped_len(chunk: &[u8]) -> usize {
    chunk
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

/// What building a `Value` from a JSON text may cost at most, by [`JsonShape::cost`]: a body or
/// an inflated workflow over it is refused before anything is built, so one request's parse
/// stays near this much memory whatever the input (a 6 MiB body of `[0,0,...]` would otherwise
/// become ~200 MiB of `Value`s).
pub const MAX_JSON_COST: u64 = 48 * 1024 * 1024;

/// Bytes one JSON value (a scalar, a container, an object key) may cost in a `serde_json::Value`
/// tree beyond its text: its slot in its container (a 72-byte `Value` in an array, a 104-byte
/// entry with the key's `String` and hash in an object, counted over its key and its value)
/// at up to twice the length, since the containers grow by doubling.
pub const VALUE_COST: u64 = 144;

/// Bytes a container may cost besides its values' slots: its first allocation, made for four
/// slots even when it holds one (an array: 4 x 72; an object: 4 entries and its hash table).
/// Measured with a counting allocator (serde_json 1 with `preserve_order`): `[[0],[0],...]`
/// takes 360 bytes per `[0]` and `[{"":0},...]` about 440 per `{"":0}`, where 64 bytes per
/// value, the cost before, allowed 128 and 192.
pub const CONTAINER_COST: u64 = 512;

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
    /// Arrays and objects (also counted in `values`).
    pub containers: u64,
    pub string_bytes: u64,
    pub bytes: u64,
    in_string: bool,
    escaped: bool,
    in_scalar: bool,
}

impl JsonShape {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    self.string_bytes += 1;
                    i += 1;
                    continue;
                }
                // Most of a body's bytes are inside strings: jump to the next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    None => {
                        self.string_bytes += (chunk.len() - i) as u64;
                        return;
                    }
                    Some(k) => {
                        self.string_bytes += k as u64;
                        i += k;
                        if chunk[i] == b'\\' {
                            self.escaped = true;
                            self.string_bytes += 1;
                        } else {
                            self.in_string = false;
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let b = chunk[i];
            i += 1;
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
                    self.containers += 1;
                    self.depth += 1;
                    self.max_depth_seen = self.max_depth_seen.max(self.depth);
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Memory a `Value` tree of this text may take at most: its string bytes, [`VALUE_COST`] per
    /// value and [`CONTAINER_COST`] per container.
    pub fn cost(&self) -> u64 {
        self.string_bytes
            .saturating_add(self.values.saturating_mul(VALUE_COST))
            .saturating_add(self.containers.saturating_mul(CONTAINER_COST))
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

/// sha256 (hex) of a value's canonical encoding ([`Node::write_canonical`]: keys sorted, so key
/// order does not change the hash).
pub fn canonical_hash(v: &Value) -> String {
    let mut h = Hasher::new();
    Node::of(v).write_canonical(&mut h);
    h.hex()
}

/// sha256 fed through a buffer: the canonical encoding arrives in pieces of a few bytes, and
/// each of those costs the hasher more than a copy into the buffer does.
pub struct Hasher(BufWriter<Sha256>);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(BufWriter::with_capacity(8 * 1024, Sha256::new()))
    }

    /// The digest, hex.
    pub fn hex(mut self) -> String {
        // Flushing into a hasher cannot fail.
        let _ = self.0.flush();
        let (h, _) = self.0.into_parts();
        hex::encode(h.finalize())
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The cost is at least what serde_json (with `preserve_order`) was measured to allocate for
    /// the cheapest-per-byte shapes, with a counting allocator: 360 bytes per `[0]` and about
    /// 440 per `{"":0}` in an array, 73 per `0`.
    #[test]
    fn the_cost_bounds_the_measured_memory_of_small_containers() {
        let n = 10_000usize;
        let arrays = format!("[{}[0]]", "[0],".repeat(n - 1));
        assert!(JsonShape::of(arrays.as_bytes()).cost() >= 360 * n as u64);
        let objects = format!("[{}{{\"\":0}}]", "{\"\":0},".repeat(n - 1));
        assert!(JsonShape::of(objects.as_bytes()).cost() >= 440 * n as u64);
        let zeros = format!("[{}0]", "0,".repeat(n - 1));
        assert!(JsonShape::of(zeros.as_bytes()).cost() >= 73 * n as u64);
    }

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
