//! The archive catalog: the archive lease (fencing each run's writes), the two-phase archive
//! commit (begin, commit: hot rows become archived entries, abort), tombstones of deleted
//! archived lines, compaction, and the object and entry lookups.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::codec::{Db, collect, id_list, id_text, parse_id, parse_ts, ts};
use super::counters::{add_all, add_counters};
use super::rows::{
    ACOLS, ICOLS, OCOLS, entry_from_row, insert_entry, insert_object_row, interaction_from_row, object_from_row,
};
use crate::domain::archive::{ArchiveObject, ObjectState};
use crate::domain::counters::PlatformCounters;
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{ArchiveItem, ArchivedEntry, Lease as ArchiveLease, StoreError};

/// The hot rows of a JSON list of ids, each with its number of links (after [`ICOLS`]), but
/// those tombstoned in slot ?2: a record whose line is dead in a slot is never moved into it.
static SELECT_FOR_COMMIT: LazyLock<String> = LazyLock::new(|| {
    let cols = ICOLS.split(',').map(|c| format!("i.{}", c.trim())).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT {cols}, (SELECT count(*) FROM feedback f WHERE f.interaction_id = i.id) + \
         (SELECT count(*) FROM validations v WHERE v.interaction_id = i.id) \
         FROM json_each(?1) AS j CROSS JOIN interactions AS i ON i.id = j.value \
         WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.slot = ?2 AND t.interaction_id = i.id)"
    )
});

pub(super) fn archived_entry(conn: &Connection, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ACOLS} FROM archived WHERE interaction_id = ?1")).db()?;
    let mut rows = stmt.query([id_text(id)]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(entry_from_row(row)?)),
        None => Ok(None),
    }
}

const LEASE_NAME: &str = "archive";

/// Fencing: a run's write goes through only while its lease is the current one.
fn check_lease(tx: &Connection, lease: &ArchiveLease) -> Result<(), StoreError> {
    let token: Option<i64> = tx
        .prepare_cached("SELECT token FROM leases WHERE name = ?1")
        .db()?
        .query_row([LEASE_NAME], |r| r.get(0))
        .optional()
        .db()?;
    if token == Some(lease.token) { Ok(()) } else { Err(StoreError::Fenced) }
}

pub(super) fn object_row(conn: &Connection, slot: &str) -> Result<Option<ArchiveObject>, StoreError> {
    let sql = format!("SELECT {OCOLS} FROM archive_objects WHERE object_key = ?1");
    Ok(collect(&mut conn.prepare_cached(&sql).db()?, [slot], object_from_row)?.pop())
}

fn insert_tombstone(tx: &Connection, slot: &str, id: Id) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO tombstones (slot, interaction_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .db()?
        .execute(params![slot, id_text(id)])
        .db()?;
    Ok(())
}

fn delete_tombstones(tx: &Connection, slot: &str, ids: &[Id]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("DELETE FROM tombstones WHERE slot = ?1 AND interaction_id = ?2").db()?;
    for id in ids {
        stmt.execute(params![slot, id_text(*id)]).db()?;
    }
    Ok(())
}

/// A lease expiring at `until` is held at `now`: not expired, and not set under a clock that
/// has gone back since (expiring past `clock_went_back`).
fn held_by_another(until: DateTime<Utc>, now: DateTime<Utc>, clock_went_back: DateTime<Utc>) -> bool {
    until > now && until <= clock_went_back
}

pub(super) async fn acquire_lease(
    this: &SqliteStore,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Option<ArchiveLease>, StoreError> {
    let holder = holder.to_owned();
    let expires = now + chrono::Duration::from_std(ttl).map_err(StoreError::internal)?;
    let set_before_a_clock_went_back =
        expires + chrono::Duration::from_std(crate::ports::LEASE_CLOCK_SLACK).map_err(StoreError::internal)?;
    this.write(move |tx| {
        let held: Option<(i64, String)> = tx
            .prepare_cached("SELECT token, expires_at FROM leases WHERE name = ?1")
            .db()?
            .query_row([LEASE_NAME], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?;
        let token = match held {
            Some((_, until)) if held_by_another(parse_ts(&until)?, now, set_before_a_clock_went_back) => {
                return Ok(None);
            }
            Some((token, _)) => token + 1,
            None => 1,
        };
        tx.prepare_cached(
            "INSERT INTO leases (name, holder, token, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO UPDATE SET holder = ?2, token = ?3, expires_at = ?4",
        )
        .db()?
        .execute(params![LEASE_NAME, holder, token, ts(&expires)])
        .db()?;
        Ok(Some(ArchiveLease { token, holder, expires_at: expires }))
    })
    .await
}

pub(super) async fn renew_lease(
    this: &SqliteStore,
    lease: &ArchiveLease,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Option<ArchiveLease>, StoreError> {
    let lease = lease.clone();
    let expires = now + chrono::Duration::from_std(ttl).map_err(StoreError::internal)?;
    this.write(move |tx| {
        let n = tx
            .prepare_cached("UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND token = ?2")
            .db()?
            .execute(params![LEASE_NAME, lease.token, ts(&expires)])
            .db()?;
        Ok((n == 1).then_some(ArchiveLease { expires_at: expires, ..lease }))
    })
    .await
}

pub(super) async fn release_lease(this: &SqliteStore, lease: &ArchiveLease) -> Result<(), StoreError> {
    let token = lease.token;
    this.write(move |tx| {
        // Expired at once, token kept: the next holder's token is still larger.
        tx.prepare_cached("UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND token = ?2")
            .db()?
            .execute(params![LEASE_NAME, token, ts(&DateTime::<Utc>::UNIX_EPOCH)])
            .db()?;
        Ok(())
    })
    .await
}

pub(super) async fn begin_archive(
    this: &SqliteStore,
    lease: &ArchiveLease,
    obj: &ArchiveObject,
) -> Result<(), StoreError> {
    let (lease, obj) = (lease.clone(), obj.clone());
    this.write(move |tx| {
        check_lease(tx, &lease)?;
        match object_row(tx, &obj.slot)? {
            Some(row) if row == obj => Ok(()),
            Some(_) => Err(StoreError::Conflict("archive object key already recorded")),
            None => insert_object_row(tx, &obj),
        }
    })
    .await
}

pub(super) async fn commit_archive(
    this: &SqliteStore,
    lease: &ArchiveLease,
    obj: &ArchiveObject,
    items: &[ArchiveItem],
) -> Result<Vec<Id>, StoreError> {
    let (lease, obj, items) = (lease.clone(), obj.clone(), items.to_vec());
    // One transaction: the stubs, the tombstones and the flip commit together. Up to
    // 20,000 records: alone, not in a batch's savepoint.
    this.write_alone(move |tx| {
        // Foreign keys checked at COMMIT, not after each statement (this transaction only; a
        // violation still fails the commit). An immediate check makes every DELETE of an
        // interaction a statement that may abort, which opens a statement journal: each page
        // it changes is copied there first, and a page it frees is still written to the WAL
        // (SQLite skips writing freed pages only with no savepoint or statement open). Its
        // links are deleted before it, so no violation is expected.
        tx.execute_batch("PRAGMA defer_foreign_keys = ON").db()?;
        check_lease(tx, &lease)?;
        let row = object_row(tx, &obj.slot)?.ok_or(StoreError::NotFound)?;
        let mut deltas: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
        // The items' hot rows with their link counts, read in one statement and moved as
        // they come (one row in memory at a time); then their rows and links go in three
        // set deletes. A record still hot with the line's number of links is the record the
        // line was written from: it moves. Every other item is handled below.
        let wanted: HashMap<Id, i64> = items.iter().map(|i| (i.id, i.links)).collect();
        let all_ids = id_list(&items.iter().map(|i| i.id).collect::<Vec<_>>())?;
        let mut moved: HashSet<Id> = HashSet::with_capacity(items.len());
        {
            let mut stmt = tx.prepare_cached(&SELECT_FOR_COMMIT).db()?;
            let mut rows = stmt.query(params![all_ids, obj.slot]).db()?;
            let links_at = ICOLS.split(',').count();
            while let Some(r) = rows.next().db()? {
                let rec = interaction_from_row(r)?;
                let links: i64 = r.get(links_at).db()?;
                if wanted.get(&rec.id) != Some(&links) || moved.contains(&rec.id) {
                    continue;
                }
                let (entry, delta) = ArchivedEntry::archiving(&rec, &obj.slot);
                insert_entry(tx, &entry)?;
                deltas.entry(rec.platform.clone()).or_default().add(&delta);
                moved.insert(rec.id);
            }
        }
        if !moved.is_empty() {
            // Sorted: each delete below first copies the list into a temporary b-tree keyed by
            // id (`IN (SELECT ...)`), which ids given in order are appended to rather than
            // inserted all over (1-5% less CPU on the 1 GB archive bench, docs/PERFORMANCE.md).
            let mut ids: Vec<Id> = moved.iter().copied().collect();
            ids.sort_unstable();
            let list = id_list(&ids)?;
            for sql in [
                "DELETE FROM feedback WHERE interaction_id IN (SELECT value FROM json_each(?1))",
                "DELETE FROM validations WHERE interaction_id IN (SELECT value FROM json_each(?1))",
                "DELETE FROM interactions WHERE id IN (SELECT value FROM json_each(?1))",
            ] {
                tx.prepare_cached(sql).db()?.execute([&list]).db()?;
            }
        }
        // Deleted or changed meanwhile: a tombstone in this slot, unless the record's entry
        // already points here (a reconcile of a commit that went through).
        let mut tombstoned = Vec::new();
        for item in &items {
            if moved.contains(&item.id) {
                continue;
            }
            if archived_entry(tx, item.id)?.is_none_or(|e| e.object_key != obj.slot) {
                insert_tombstone(tx, &obj.slot, item.id)?;
                tombstoned.push(item.id);
            }
        }
        if row.state == ObjectState::Pending {
            tx.prepare_cached(
                "UPDATE archive_objects SET state = 'committed', record_count = ?2, raw_bytes = ?3, \
                 compressed_bytes = ?4, storage_class = ?5, created_at = ?6 WHERE object_key = ?1",
            )
            .db()?
            .execute(params![
                obj.slot,
                obj.record_count,
                obj.raw_bytes,
                obj.compressed_bytes,
                obj.storage_class.as_str(),
                ts(&obj.created_at)
            ])
            .db()?;
            deltas.entry(obj.platform.clone()).or_default().add(&obj.contribution());
        }
        add_all(tx, &deltas)?;
        Ok(tombstoned)
    })
    .await
}

pub(super) async fn abort_archive(
    this: &SqliteStore,
    lease: &ArchiveLease,
    obj: &ArchiveObject,
) -> Result<(), StoreError> {
    let (lease, slot) = (lease.clone(), obj.slot.clone());
    this.write(move |tx| {
        check_lease(tx, &lease)?;
        match object_row(tx, &slot)? {
            None => Ok(()),
            Some(row) if row.state == ObjectState::Committed => {
                Err(StoreError::Conflict("archive object is committed"))
            }
            Some(_) => {
                tx.prepare_cached("DELETE FROM archive_objects WHERE object_key = ?1").db()?.execute([&slot]).db()?;
                Ok(())
            }
        }
    })
    .await
}

pub(super) async fn delete_archived(this: &SqliteStore, id: Id) -> Result<Option<ArchivedEntry>, StoreError> {
    this.write(move |tx| {
        let Some(entry) = archived_entry(tx, id)? else {
            return Ok(None);
        };
        tx.prepare_cached("DELETE FROM archived WHERE interaction_id = ?1").db()?.execute([id_text(id)]).db()?;
        super::interactions::mark_erased(tx, id)?;
        insert_tombstone(tx, &entry.object_key, id)?;
        add_counters(tx, &entry.platform, &entry.facts.contribution().negated())?;
        Ok(Some(entry))
    })
    .await
}

pub(super) async fn tombstones(this: &SqliteStore, slot: &str) -> Result<HashSet<Id>, StoreError> {
    let slot = slot.to_owned();
    this.read(move |tx| {
        let ids = collect(
            &mut tx.prepare_cached("SELECT interaction_id FROM tombstones WHERE slot = ?1").db()?,
            [&slot],
            |r| parse_id(&r.get::<_, String>(0).db()?),
        )?;
        Ok(ids.into_iter().collect())
    })
    .await
}

pub(super) async fn tombstoned_slots(this: &SqliteStore) -> Result<BTreeSet<String>, StoreError> {
    this.read(move |tx| {
        let slots = collect(&mut tx.prepare_cached("SELECT DISTINCT slot FROM tombstones").db()?, [], |r| {
            r.get::<_, String>(0).db()
        })?;
        Ok(slots.into_iter().collect())
    })
    .await
}

pub(super) async fn clear_tombstones(
    this: &SqliteStore,
    lease: &ArchiveLease,
    slot: &str,
    ids: &[Id],
) -> Result<(), StoreError> {
    let (lease, slot, ids) = (lease.clone(), slot.to_owned(), ids.to_vec());
    this.write(move |tx| {
        check_lease(tx, &lease)?;
        delete_tombstones(tx, &slot, &ids)
    })
    .await
}

pub(super) async fn apply_compaction(
    this: &SqliteStore,
    lease: &ArchiveLease,
    old: &ArchiveObject,
    new: Option<&ArchiveObject>,
    cleared: &[Id],
) -> Result<(), StoreError> {
    let (lease, old, new, cleared) = (lease.clone(), old.clone(), new.cloned(), cleared.to_vec());
    this.write(move |tx| {
        check_lease(tx, &lease)?;
        let row = object_row(tx, &old.slot)?.ok_or(StoreError::Conflict("archive object row is gone"))?;
        if row.object_key != old.object_key {
            return Err(StoreError::Conflict("archive object was compacted by another run"));
        }
        let mut delta = old.contribution().negated();
        match &new {
            Some(n) => {
                tx.prepare_cached(
                    "UPDATE archive_objects SET location = ?2, run_id = ?3, record_count = ?4, raw_bytes = ?5, \
                     compressed_bytes = ?6, storage_class = ?7, created_at = ?8 WHERE object_key = ?1",
                )
                .db()?
                .execute(params![
                    old.slot,
                    (n.object_key != old.slot).then_some(n.object_key.as_str()),
                    n.run_id,
                    n.record_count,
                    n.raw_bytes,
                    n.compressed_bytes,
                    n.storage_class.as_str(),
                    ts(&n.created_at)
                ])
                .db()?;
                delta.add(&n.contribution());
            }
            None => {
                tx.prepare_cached("DELETE FROM archive_objects WHERE object_key = ?1")
                    .db()?
                    .execute([&old.slot])
                    .db()?;
            }
        }
        delete_tombstones(tx, &old.slot, &cleared)?;
        add_counters(tx, &old.platform, &delta)
    })
    .await
}

pub(super) async fn list_archive_objects(
    this: &SqliteStore,
    platform: Option<&Platform>,
) -> Result<Vec<ArchiveObject>, StoreError> {
    let platform = platform.map(|p| p.as_str().to_owned());
    this.read(move |tx| match platform {
        Some(p) => {
            let sql = format!(
                "SELECT {OCOLS} FROM archive_objects WHERE platform = ?1 ORDER BY date, created_at, object_key"
            );
            collect(&mut tx.prepare_cached(&sql).db()?, [&p], object_from_row)
        }
        None => {
            let sql = format!("SELECT {OCOLS} FROM archive_objects ORDER BY date, created_at, object_key");
            collect(&mut tx.prepare_cached(&sql).db()?, [], object_from_row)
        }
    })
    .await
}

pub(super) async fn archived_entries_of_user(
    this: &SqliteStore,
    user: &UserId,
) -> Result<Vec<ArchivedEntry>, StoreError> {
    let user = user.as_str().to_owned();
    this.read(move |tx| {
        let sql = format!("SELECT {ACOLS} FROM archived WHERE user_id = ?1 ORDER BY created_at, interaction_id");
        collect(&mut tx.prepare_cached(&sql).db()?, [&user], entry_from_row)
    })
    .await
}
