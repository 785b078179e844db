//! The object key rule: every [`ObjectStore`](super::ObjectStore) refuses the same keys, so a key
//! that works on one backend works on the other.

use super::StoreError;

/// Segments starting with this are hidden: the folder store keeps its staging files under such
/// names, so no object key may use one.
pub const HIDDEN: char = '.';

/// A key's segments: relative, `/`-separated, none empty or hidden (which rules out `.` and
/// `..`), no backslash or NUL.
pub fn key_segments(key: &str) -> Result<Vec<&str>, StoreError> {
    if key.is_empty() {
        return Err(bad_key());
    }
    let segs: Vec<&str> = key.split('/').collect();
    if segs.iter().all(|s| valid_segment(s)) { Ok(segs) } else { Err(bad_key()) }
}

/// [`key_segments`] without the segments.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    key_segments(key).map(|_| ())
}

/// One segment of a valid key (also what the folder store lists: staging files are hidden).
pub fn valid_segment(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(HIDDEN) && !s.contains(['\\', '\0'])
}

pub fn bad_key() -> StoreError {
    StoreError::Internal("invalid object key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_visible_segments() {
        assert!(check_key("archive/platform=n8n/date=2026-01-01/r-1.jsonl.gz").is_ok());
        for bad in ["", "/abs", "a//b", "a/./b", "a/../b", ".hidden", "a/.tmp", "a\\b", "a\0b", "trailing/"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(key_segments("a/b").expect("ok"), ["a", "b"]);
    }
}
