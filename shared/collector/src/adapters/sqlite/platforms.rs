//! The platforms admins added (the configured ones are not stored), within the platform limit.

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::SqliteStore;
use super::codec::{Db, collect, parse_platform};
use crate::domain::platforms::{PlatformAdded, PlatformLimit};
use crate::domain::types::Platform;
use crate::ports::StoreError;

pub(super) fn added_platforms(tx: &Connection) -> Result<BTreeSet<Platform>, StoreError> {
    let names =
        collect(&mut tx.prepare_cached("SELECT platform FROM platforms").db()?, [], |r| r.get::<_, String>(0).db())?;
    names.iter().map(|n| parse_platform(n)).collect()
}

pub(super) async fn add_platform(
    this: &SqliteStore,
    p: &Platform,
    limit: &PlatformLimit,
) -> Result<PlatformAdded, StoreError> {
    let (p, limit) = (p.clone(), limit.clone());
    // One write transaction (BEGIN IMMEDIATE): the count and the insert cannot interleave
    // with another process's add.
    this.write(move |tx| {
        let added = added_platforms(tx)?;
        if added.contains(&p) {
            return Ok(PlatformAdded::AlreadyAdded);
        }
        if !limit.has_room(&added) {
            return Ok(PlatformAdded::LimitReached);
        }
        tx.prepare_cached("INSERT INTO platforms (platform) VALUES (?1)").db()?.execute([p.as_str()]).db()?;
        Ok(PlatformAdded::Added)
    })
    .await
}
