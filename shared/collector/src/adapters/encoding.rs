//! How both hot stores write values as text and read them back: times in a sortable form, ids,
//! user ids and platforms parsed back into their domain types, JSON documents. A value that does
//! not read back is a corrupt store (`StoreError::Internal`, naming what, never the value).

use chrono::{DateTime, Utc};

use crate::domain::types::{Id, Platform, UserId};
use crate::ports::StoreError;

/// RFC 3339 in UTC with nine fractional digits: fixed width, so text order is time order (both
/// stores sort and range-query on it).
pub fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

pub fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("the store holds an unreadable {what}"))
}

pub fn parse_ts(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt("timestamp"))
}

pub fn parse_id(raw: &str) -> Result<Id, StoreError> {
    Id::parse(raw).map_err(|_| corrupt("id"))
}

pub fn parse_user(raw: &str) -> Result<UserId, StoreError> {
    UserId::parse(raw).map_err(|_| corrupt("user id"))
}

pub fn parse_platform(raw: &str) -> Result<Platform, StoreError> {
    Platform::parse(raw).map_err(|_| corrupt("platform"))
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::internal)
}

pub fn from_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|_| corrupt(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_as_text_and_read_back() {
        let a = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z").expect("time").with_timezone(&Utc);
        let b = a + chrono::Duration::nanoseconds(1);
        assert_eq!(ts(&a), "2026-01-02T03:04:05.500000000Z");
        assert!(ts(&a) < ts(&b) && ts(&a).len() == ts(&b).len());
        assert_eq!(parse_ts(&ts(&b)).expect("parse"), b);
        assert!(matches!(parse_ts("yesterday"), Err(StoreError::Internal(m)) if !m.contains("yesterday")));
    }
}
