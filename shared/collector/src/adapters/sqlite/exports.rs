//! Export manifests and the records each export held (by record and by user), so a delete finds
//! the exports that hold it without reading any manifest.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::SqliteStore;
use super::codec::{Db, collect, from_json, id_list, id_text, parse_id, to_json, ts};
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::types::Id;
use crate::ports::StoreError;

/// The condition on `export_records` for a record (its primary key) or a user
/// (`export_records_by_user`), with its arguments.
fn held_where(by: HeldBy<'_>) -> (&'static str, Vec<String>) {
    match by {
        HeldBy::Record { id, user } => {
            ("interaction_id = ?1 AND user_id = ?2", vec![id_text(id), user.as_str().to_owned()])
        }
        HeldBy::User(user) => ("user_id = ?1", vec![user.as_str().to_owned()]),
    }
}

pub(super) async fn record_export(
    this: &SqliteStore,
    manifest: &ExportManifest,
    held: &HeldRecords,
) -> Result<(), StoreError> {
    let (manifest, held) = (manifest.clone(), held.clone());
    // One transaction: the manifest and every held record appear together.
    this.write(move |tx| {
        let export_id = id_text(manifest.export_id);
        tx.prepare_cached("INSERT INTO exports (export_id, created_at, manifest) VALUES (?1, ?2, ?3)")
            .db()?
            .execute(params![export_id, ts(&manifest.created_at), to_json(&manifest)?])
            .db()?;
        let mut stmt = tx
            .prepare_cached("INSERT INTO export_records (interaction_id, export_id, user_id) VALUES (?1, ?2, ?3)")
            .db()?;
        for (user, ids) in held.by_user() {
            for id in ids {
                stmt.execute(params![id_text(id), export_id, user.as_str()]).db()?;
            }
        }
        Ok(())
    })
    .await
}

pub(super) async fn list_exports(
    this: &SqliteStore,
    before: Option<Id>,
    limit: u32,
) -> Result<Vec<ExportManifest>, StoreError> {
    this.read(move |tx| {
        let map = |r: &Row<'_>| from_json::<ExportManifest>(&r.get::<_, String>(0).db()?, "export manifest");
        match before {
            Some(b) => collect(
                &mut tx
                    .prepare_cached(
                        "SELECT manifest FROM exports WHERE export_id < ?1 ORDER BY export_id DESC LIMIT ?2",
                    )
                    .db()?,
                params![id_text(b), i64::from(limit)],
                map,
            ),
            None => collect(
                &mut tx.prepare_cached("SELECT manifest FROM exports ORDER BY export_id DESC LIMIT ?1").db()?,
                params![i64::from(limit)],
                map,
            ),
        }
    })
    .await
}

pub(super) async fn export_manifest(this: &SqliteStore, id: Id) -> Result<Option<ExportManifest>, StoreError> {
    this.read(move |tx| {
        let raw: Option<String> = tx
            .prepare_cached("SELECT manifest FROM exports WHERE export_id = ?1")
            .db()?
            .query_row([id_text(id)], |r| r.get(0))
            .optional()
            .db()?;
        raw.map(|m| from_json(&m, "export manifest")).transpose()
    })
    .await
}

pub(super) async fn exports_holding(this: &SqliteStore, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
    let (cond, args) = held_where(by);
    let sql = format!("SELECT DISTINCT export_id FROM export_records WHERE {cond}");
    this.read(move |tx| {
        let ids = collect(&mut tx.prepare_cached(&sql).db()?, params_from_iter(args), |r| r.get::<_, String>(0).db())?;
        ids.iter().map(|i| parse_id(i)).collect()
    })
    .await
}

pub(super) async fn forget_held(this: &SqliteStore, by: HeldBy<'_>) -> Result<(), StoreError> {
    let (cond, args) = held_where(by);
    let sql = format!("DELETE FROM export_records WHERE {cond}");
    this.write(move |tx| {
        tx.prepare_cached(&sql).db()?.execute(params_from_iter(args)).db()?;
        Ok(())
    })
    .await
}

pub(super) async fn drop_export(
    this: &SqliteStore,
    manifest: &ExportManifest,
    held: &HeldRecords,
) -> Result<(), StoreError> {
    let (export_id, held) = (id_text(manifest.export_id), held.clone());
    this.write(move |tx| {
        tx.prepare_cached("DELETE FROM exports WHERE export_id = ?1").db()?.execute([&export_id]).db()?;
        let mut stmt =
            tx.prepare_cached("DELETE FROM export_records WHERE interaction_id = ?1 AND export_id = ?2").db()?;
        for (_, ids) in held.by_user() {
            for id in ids {
                stmt.execute(params![id_text(id), export_id]).db()?;
            }
        }
        Ok(())
    })
    .await
}

/// Ids are looked up 500 at a time (one `json_each` list per query).
const LIVE_CHUNK: usize = 500;

pub(super) async fn live_records(this: &SqliteStore, ids: &[Id]) -> Result<HashSet<Id>, StoreError> {
    let ids = ids.to_vec();
    this.read(move |tx| {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id FROM interactions WHERE id IN (SELECT value FROM json_each(?1)) \
                 UNION ALL SELECT interaction_id FROM archived WHERE interaction_id IN (SELECT value FROM json_each(?1))",
            )
            .db()?;
        let mut live = HashSet::new();
        for chunk in ids.chunks(LIVE_CHUNK) {
            for id in collect(&mut stmt, [id_list(chunk)?], |r| r.get::<_, String>(0).db())? {
                live.insert(parse_id(&id)?);
            }
        }
        Ok(live)
    })
    .await
}
