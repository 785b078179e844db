//! JSON helpers: nesting depth before parsing, canonical hashing.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Deepest nesting the API accepts; deeper bodies are 413 before a `Value` is built.
pub const MAX_DEPTH: usize = 64;

/// True when `bytes` nests arrays/objects deeper than `max`. Scans raw bytes (strings skipped),
/// so it costs one pass and no allocation.
pub fn too_deep(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
    fn hash_ignores_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": null}});
        let b: Value = serde_json::from_str(r#"{"b": {"y": null, "x": [1, 2]}, "a": 1}"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&json!({"a": 2, "b": {"x": [1, 2], "y": null}})));
        assert_ne!(canonical_hash(&json!(["ab", "c"])), canonical_hash(&json!(["a", "bc"])));
    }
}
