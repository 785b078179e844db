//! Encoding shared by every table: SQLite errors mapped to [`StoreError`]s (busy: throttled,
//! duplicate key: conflict, I/O: unavailable), and values to and from column text (times, ids,
//! users, platforms, JSON), plus [`collect`] to map a statement's rows.

use std::time::Duration;

use rusqlite::{ErrorCode, Row};

use crate::domain::types::Id;
use crate::ports::StoreError;

/// What a caller should wait when another process holds the write lock past the busy timeout.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

// -- errors ---------------------------------------------------------------------------------

pub(super) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(db_error)
    }
}

pub(super) fn db_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            // Another process held the write lock for the whole busy timeout.
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Throttled { retry_after: BUSY_RETRY_AFTER };
            }
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return StoreError::Conflict("id already exists");
            }
            ErrorCode::DiskFull | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::ReadOnly => {
                return StoreError::Unavailable(e.to_string());
            }
            _ => {}
        }
    }
    StoreError::backend("sqlite", e)
}

// -- value encoding (shared with the DynamoDB store: adapters::encoding) ------------------------

pub(super) use crate::adapters::encoding::{
    corrupt, from_json, parse_id, parse_platform, parse_ts, parse_user, to_json, ts,
};

pub(super) fn id_text(id: Id) -> String {
    id.to_string()
}

pub(super) fn opt_json<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>, StoreError> {
    v.map(to_json).transpose()
}

pub(super) fn opt_from_json<T: serde::de::DeserializeOwned>(
    s: Option<String>,
    what: &str,
) -> Result<Option<T>, StoreError> {
    s.map(|s| from_json(&s, what)).transpose()
}

/// JSON array of id texts, for `IN (SELECT value FROM json_each(?))`: one cached statement for any count.
pub(super) fn id_list(ids: &[Id]) -> Result<String, StoreError> {
    to_json(&ids.iter().map(|id| id_text(*id)).collect::<Vec<_>>())
}

pub(super) fn collect<T>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = stmt.query(params).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(map(row)?);
    }
    Ok(out)
}
