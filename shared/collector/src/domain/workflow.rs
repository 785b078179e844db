//! Workflow payloads: compact JSON, gzip above the threshold, bounded inflate.

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde_json::Value;

/// Inflated payloads larger than this are refused: a gzip bomb is a 400, not an OOM.
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;

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
        let json = compact(workflow);
        let original_bytes = json.len() as i64;
        if json.len() as u64 > threshold_bytes {
            let gz = gzip(&json);
            if gz.len() < json.len() {
                return StoredWorkflow { bytes: gz, compressed: true, original_bytes };
            }
        }
        StoredWorkflow { bytes: json, compressed: false, original_bytes }
    }

    /// The original JSON value back.
    pub fn unpack(&self) -> Result<Value, PayloadError> {
        if self.compressed {
            let json = inflate_limited(&self.bytes, MAX_INFLATED_BYTES)?;
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
            let json = inflate_limited(&self.bytes, MAX_INFLATED_BYTES)?;
            String::from_utf8(json).map(Cow::Owned).map_err(|_| PayloadError::NotJson)
        } else {
            std::str::from_utf8(&self.bytes).map(Cow::Borrowed).map_err(|_| PayloadError::NotJson)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload inflates past the 64 MiB limit")]
    TooLarge,
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
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Inflate at most `limit` bytes; one byte more is [`PayloadError::TooLarge`]. Memory stays bounded
/// by the limit whatever the input claims.
pub fn inflate_limited(gz: &[u8], limit: u64) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    GzDecoder::new(gz)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|_| PayloadError::NotGzip)?;
    if out.len() as u64 > limit {
        return Err(PayloadError::TooLarge);
    }
    Ok(out)
}

/// The older system's `workflow_gzip_hex`: hex of gzip of the JSON.
pub fn from_gzip_hex(hex_text: &str) -> Result<Value, PayloadError> {
    let gz = hex::decode(hex_text.trim()).map_err(|_| PayloadError::NotHex)?;
    let json = inflate_limited(&gz, MAX_INFLATED_BYTES)?;
    serde_json::from_slice(&json).map_err(|_| PayloadError::NotJson)
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
        for (size, want_compressed) in [(threshold as usize - 1, false), (threshold as usize, false), (threshold as usize + 1, true)] {
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
}
