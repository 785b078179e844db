//! The per-platform counters: one row per platform, moved by a delta in the same transaction
//! as the rows it counts, and read as a whole.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{Connection, ToSql};

use super::SqliteStore;
use super::codec::{Db, collect, parse_platform};
use crate::domain::counters::PlatformCounters;
use crate::domain::types::Platform;
use crate::ports::StoreError;

static COUNTERS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let cols = PlatformCounters::FIELDS.join(", ");
    let marks = (2..=PlatformCounters::FIELDS.len() + 1).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let sets =
        PlatformCounters::FIELDS.iter().map(|f| format!("{f} = {f} + excluded.{f}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO counters (platform, {cols}) VALUES (?1, {marks}) ON CONFLICT (platform) DO UPDATE SET {sets}")
});

static COUNTERS_SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT platform, {} FROM counters", PlatformCounters::FIELDS.join(", ")));

pub(super) fn add_counters(tx: &Connection, platform: &Platform, d: &PlatformCounters) -> Result<(), StoreError> {
    if d.is_zero() {
        return Ok(());
    }
    let values = d.values();
    let name = platform.as_str();
    let mut args: Vec<&dyn ToSql> = Vec::with_capacity(values.len() + 1);
    args.push(&name);
    for v in &values {
        args.push(v);
    }
    tx.prepare_cached(&COUNTERS_UPSERT).db()?.execute(&*args).db()?;
    Ok(())
}

pub(super) fn add_all(tx: &Connection, deltas: &BTreeMap<Platform, PlatformCounters>) -> Result<(), StoreError> {
    for (p, d) in deltas {
        add_counters(tx, p, d)?;
    }
    Ok(())
}

pub(super) async fn counters(this: &SqliteStore) -> Result<BTreeMap<Platform, PlatformCounters>, StoreError> {
    this.read(move |tx| {
        let mut stmt = tx.prepare_cached(&COUNTERS_SELECT).db()?;
        let rows = collect(&mut stmt, [], |r| {
            let platform = parse_platform(&r.get::<_, String>(0).db()?)?;
            let mut values = [0i64; PlatformCounters::FIELDS.len()];
            for (i, v) in values.iter_mut().enumerate() {
                *v = r.get(i + 1).db()?;
            }
            Ok((platform, PlatformCounters::from_values(values)))
        })?;
        Ok(rows.into_iter().filter(|(_, c)| !c.is_zero()).collect())
    })
    .await
}
