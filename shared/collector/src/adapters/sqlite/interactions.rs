//! Interactions and their links (feedback, validations): insert, read, list and scan pages,
//! add links (moving the summary and the counters with them), delete a record or a user.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::SqliteStore;
use super::archive::archived_entry;
use super::codec::{Db, collect, id_list, id_text, opt_json, parse_ts, parse_user, ts};
use super::counters::{add_all, add_counters};
use super::rows::{
    FCOLS, ICOLS, VCOLS, feedback_from_row, insert_interaction_row, insert_validation_row, interaction_from_row,
    validation_from_row,
};
use crate::domain::counters::PlatformCounters;
use crate::domain::records::{
    Feedback, FeedbackSummary, FeedbackType, IngestReceipt, Interaction, NewLink, PageBudget, SCAN_PAGE_BYTES,
    ValidationLog,
};
use crate::domain::types::{Id, Platform, UserId};
use crate::ports::{Cursor, HotDeleted, Inserted, Linked, ListQuery, ScanQuery, StoreError};

static SELECT_INTERACTION: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ICOLS} FROM interactions WHERE id = ?1"));

fn load_interaction(conn: &Connection, id: Id) -> Result<Option<Interaction>, StoreError> {
    let mut stmt = conn.prepare_cached(&SELECT_INTERACTION).db()?;
    let mut rows = stmt.query([id_text(id)]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(interaction_from_row(row)?)),
        None => Ok(None),
    }
}

fn write_summary(tx: &Connection, id: Id, s: &FeedbackSummary) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE interactions SET feedback_count = ?2, last_feedback_type = ?3, positive_feedback = ?4, \
             negative_feedback = ?5, latest_negative = ?6, good_validation = ?7, link_bytes = ?8 WHERE id = ?1",
        )
        .db()?;
    stmt.execute(params![
        id_text(id),
        s.feedback_count,
        s.last_feedback_type.map(FeedbackType::as_str),
        s.positive_feedback,
        s.negative_feedback,
        s.latest_negative,
        s.good_validation,
        s.link_bytes,
    ])
    .db()?;
    Ok(())
}

/// The stored answer for an id that is already taken, hot or archived.
fn existing(conn: &Connection, id: Id) -> Result<Option<Inserted>, StoreError> {
    if let Some(e) = archived_entry(conn, id)? {
        return Ok(Some(Inserted::Existing { content_hash: e.content_hash, receipt: e.receipt }));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT content_hash, created_at, workflow_compressed, workflow_original_bytes, length(workflow) \
             FROM interactions WHERE id = ?1",
        )
        .db()?;
    let row = stmt
        .query_row([id_text(id)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()
        .db()?;
    let Some((content_hash, created_at, compressed, original_bytes, stored)) = row else {
        return Ok(None);
    };
    let receipt = IngestReceipt {
        interaction_id: id,
        created_at: parse_ts(&created_at)?,
        compressed,
        original_bytes,
        stored_bytes: stored.unwrap_or(0),
    };
    Ok(Some(Inserted::Existing { content_hash, receipt }))
}

/// Whether `id` is of a deleted interaction ([`mark_erased`]).
fn is_erased(tx: &Connection, id: Id) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM erased WHERE interaction_id = ?1").db()?;
    stmt.exists([id_text(id)]).db()
}

/// Keep a deleted interaction's id, so it is never used again (`Inserted::Erased`).
pub(super) fn mark_erased(tx: &Connection, id: Id) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO erased (interaction_id) VALUES (?1) ON CONFLICT DO NOTHING")
        .db()?
        .execute([id_text(id)])
        .db()?;
    Ok(())
}

/// Delete a hot interaction's links and row; returns (feedback, validations) removed.
fn delete_hot(tx: &Connection, id: Id) -> Result<(i64, i64), StoreError> {
    mark_erased(tx, id)?;
    let key = id_text(id);
    let fb = tx.prepare_cached("DELETE FROM feedback WHERE interaction_id = ?1").db()?.execute([&key]).db()?;
    let val = tx.prepare_cached("DELETE FROM validations WHERE interaction_id = ?1").db()?.execute([&key]).db()?;
    tx.prepare_cached("DELETE FROM interactions WHERE id = ?1").db()?.execute([&key]).db()?;
    Ok((fb as i64, val as i64))
}

/// Feedback and validations of a page of interactions: one query per link table.
fn attach_links(conn: &Connection, recs: Vec<Interaction>) -> Result<Vec<Linked>, StoreError> {
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
    let list = id_list(&ids)?;
    let mut feedback: HashMap<Id, Vec<Feedback>> = HashMap::new();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {FCOLS} FROM feedback WHERE interaction_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, rowid"
        ))
        .db()?;
    for f in collect(&mut stmt, [&list], feedback_from_row)? {
        feedback.entry(f.interaction_id).or_default().push(f);
    }
    let mut validations: HashMap<Id, Vec<ValidationLog>> = HashMap::new();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {VCOLS} FROM validations WHERE interaction_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at, rowid"
        ))
        .db()?;
    for v in collect(&mut stmt, [&list], validation_from_row)? {
        if let Some(id) = v.interaction_id {
            validations.entry(id).or_default().push(v);
        }
    }
    Ok(recs
        .into_iter()
        .map(|interaction| Linked {
            feedback: feedback.remove(&interaction.id).unwrap_or_default(),
            validations: validations.remove(&interaction.id).unwrap_or_default(),
            interaction,
        })
        .collect())
}

/// Oldest-first page of interactions matching `filter` (`column = value` pairs) and bounds.
fn scan(
    conn: &Connection,
    filter: &[(&str, String)],
    after: Option<Cursor>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<Linked>, StoreError> {
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    for (col, val) in filter {
        args.push(SqlValue::Text(val.clone()));
        clauses.push(format!("{col} = ?{}", args.len()));
    }
    if let Some(c) = after {
        args.push(SqlValue::Text(ts(&c.created_at)));
        args.push(SqlValue::Text(id_text(c.id)));
        clauses.push(format!("(created_at, id) > (?{}, ?{})", args.len() - 1, args.len()));
    }
    if let Some(t) = since {
        args.push(SqlValue::Text(ts(&t)));
        clauses.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = until {
        args.push(SqlValue::Text(ts(&t)));
        clauses.push(format!("created_at < ?{}", args.len()));
    }
    args.push(SqlValue::Integer(i64::from(limit)));
    let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let sql = format!("SELECT {ICOLS} FROM interactions {where_} ORDER BY created_at, id LIMIT ?{}", args.len());
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(params_from_iter(args)).db()?;
    let (mut recs, mut budget) = (Vec::new(), PageBudget::new(SCAN_PAGE_BYTES));
    while let Some(row) = rows.next().db()? {
        let rec = interaction_from_row(row)?;
        if !budget.admits(rec.scan_bytes()) {
            break;
        }
        recs.push(rec);
    }
    drop(rows);
    attach_links(conn, recs)
}

pub(super) async fn insert_interaction(this: &SqliteStore, rec: &Interaction) -> Result<Inserted, StoreError> {
    let rec = rec.clone();
    this.write(move |tx| {
        // The writer lock plus BEGIN IMMEDIATE serialise these checks with every other write.
        if is_erased(tx, rec.id)? {
            return Ok(Inserted::Erased);
        }
        if let Some(e) = archived_entry(tx, rec.id)? {
            return Ok(Inserted::Existing { content_hash: e.content_hash, receipt: e.receipt });
        }
        if !insert_interaction_row(tx, &rec)? {
            return existing(tx, rec.id)?.ok_or_else(|| StoreError::Internal("conflicting id vanished".into()));
        }
        add_counters(tx, &rec.platform, &rec.facts(false).contribution())?;
        Ok(Inserted::New)
    })
    .await
}

pub(super) async fn get_linked(this: &SqliteStore, id: Id) -> Result<Option<Linked>, StoreError> {
    this.read(move |tx| match load_interaction(tx, id)? {
        Some(rec) => Ok(attach_links(tx, vec![rec])?.pop()),
        None => Ok(None),
    })
    .await
}

pub(super) async fn hot_owner(this: &SqliteStore, id: Id) -> Result<Option<UserId>, StoreError> {
    this.read(move |tx| {
        let mut stmt = tx.prepare_cached("SELECT user_id FROM interactions WHERE id = ?1").db()?;
        let user = stmt.query_row([id_text(id)], |r| r.get::<_, String>(0)).optional().db()?;
        user.map(|u| parse_user(&u)).transpose()
    })
    .await
}

pub(super) async fn list_interactions(this: &SqliteStore, q: &ListQuery) -> Result<Vec<Interaction>, StoreError> {
    let q = q.clone();
    this.read(move |tx| {
        let mut clauses = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(u) = &q.user_id {
            args.push(SqlValue::Text(u.as_str().to_owned()));
            clauses.push(format!("user_id = ?{}", args.len()));
        }
        if let Some(p) = &q.platform {
            args.push(SqlValue::Text(p.as_str().to_owned()));
            clauses.push(format!("platform = ?{}", args.len()));
        }
        if let Some(c) = q.before {
            args.push(SqlValue::Text(ts(&c.created_at)));
            args.push(SqlValue::Text(id_text(c.id)));
            clauses.push(format!("(created_at, id) < (?{}, ?{})", args.len() - 1, args.len()));
        }
        args.push(SqlValue::Integer(i64::from(q.limit)));
        let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!(
            "SELECT {ICOLS} FROM interactions {where_} ORDER BY created_at DESC, id DESC LIMIT ?{}",
            args.len()
        );
        let mut stmt = tx.prepare_cached(&sql).db()?;
        collect(&mut stmt, params_from_iter(args), interaction_from_row)
    })
    .await
}

pub(super) async fn scan_platform(this: &SqliteStore, q: &ScanQuery) -> Result<Vec<Linked>, StoreError> {
    let q = q.clone();
    this.read(move |tx| scan(tx, &[("platform", q.platform.as_str().to_owned())], q.after, q.since, q.until, q.limit))
        .await
}

pub(super) async fn scan_user(
    this: &SqliteStore,
    user: &UserId,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Vec<Linked>, StoreError> {
    let user = user.as_str().to_owned();
    this.read(move |tx| scan(tx, &[("user_id", user)], after, None, None, limit)).await
}

pub(super) async fn unlinked_validations(
    this: &SqliteStore,
    user: &UserId,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Vec<ValidationLog>, StoreError> {
    let user = user.as_str().to_owned();
    // Before the first position: the empty string sorts below every timestamp.
    let (at, id) = after.map_or((String::new(), String::new()), |c| (ts(&c.created_at), id_text(c.id)));
    this.read(move |tx| {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {VCOLS} FROM validations WHERE user_id = ?1 AND interaction_id IS NULL \
                 AND (created_at, validation_id) > (?2, ?3) ORDER BY created_at, validation_id LIMIT ?4"
            ))
            .db()?;
        let mut rows = stmt.query(params![user, at, id, i64::from(limit)]).db()?;
        let (mut out, mut budget) = (Vec::new(), PageBudget::new(SCAN_PAGE_BYTES));
        while let Some(row) = rows.next().db()? {
            let v = validation_from_row(row)?;
            if !budget.admits(v.scan_bytes()) {
                break;
            }
            out.push(v);
        }
        Ok(out)
    })
    .await
}

pub(super) async fn add_feedback(this: &SqliteStore, fb: &Feedback) -> Result<(), StoreError> {
    let fb = fb.clone();
    this.write(move |tx| {
        let rec = load_interaction(tx, fb.interaction_id)?.ok_or(StoreError::NotFound)?;
        let change = rec.linking(NewLink::Feedback(&fb))?;
        write_summary(tx, rec.id, &change.summary)?;
        let mut stmt = tx
            .prepare_cached(&format!("INSERT INTO feedback ({FCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))
            .db()?;
        stmt.execute(params![
            id_text(fb.feedback_id),
            id_text(fb.interaction_id),
            fb.submitted_by.as_str(),
            fb.feedback_type.as_str(),
            fb.sentiment_score,
            fb.comment,
            opt_json(fb.corrected_workflow.as_ref())?,
            fb.issue_category,
            ts(&fb.created_at),
        ])
        .db()?;
        add_counters(tx, &rec.platform, &change.counters)
    })
    .await
}

pub(super) async fn add_validation(this: &SqliteStore, v: &ValidationLog) -> Result<(), StoreError> {
    let v = v.clone();
    this.write(move |tx| {
        if let Some(id) = v.interaction_id {
            let rec = load_interaction(tx, id)?.ok_or(StoreError::NotFound)?;
            let change = rec.linking(NewLink::Validation(&v))?;
            if change.summary != rec.summary {
                write_summary(tx, id, &change.summary)?;
            }
            insert_validation_row(tx, &v)?;
            add_counters(tx, &rec.platform, &change.counters)
        } else {
            insert_validation_row(tx, &v)
        }
    })
    .await
}

pub(super) async fn delete_interaction(this: &SqliteStore, id: Id) -> Result<HotDeleted, StoreError> {
    this.write(move |tx| {
        let Some(rec) = load_interaction(tx, id)? else {
            return Ok(HotDeleted::default());
        };
        let (feedback, validation_logs) = delete_hot(tx, id)?;
        add_counters(tx, &rec.platform, &rec.facts(false).contribution().negated())?;
        Ok(HotDeleted { interactions: 1, feedback, validation_logs })
    })
    .await
}

pub(super) async fn delete_user(this: &SqliteStore, user: &UserId) -> Result<HotDeleted, StoreError> {
    let user = user.as_str().to_owned();
    this.write(move |tx| {
        // Streamed: one record in memory at a time, however many the user has.
        let mut deltas: BTreeMap<Platform, PlatformCounters> = BTreeMap::new();
        let mut stmt = tx.prepare_cached(&format!("SELECT {ICOLS} FROM interactions WHERE user_id = ?1")).db()?;
        let mut rows = stmt.query([&user]).db()?;
        while let Some(row) = rows.next().db()? {
            let rec = interaction_from_row(row)?;
            deltas.entry(rec.platform.clone()).or_default().sub(&rec.facts(false).contribution());
        }
        drop(rows);
        let run =
            |sql: &str| -> Result<i64, StoreError> { Ok(tx.prepare_cached(sql).db()?.execute([&user]).db()? as i64) };
        let feedback =
            run("DELETE FROM feedback WHERE interaction_id IN (SELECT id FROM interactions WHERE user_id = ?1)")?;
        let linked =
            run("DELETE FROM validations WHERE interaction_id IN (SELECT id FROM interactions WHERE user_id = ?1)")?;
        run(
            "INSERT INTO erased (interaction_id) SELECT id FROM interactions WHERE user_id = ?1 ON CONFLICT DO NOTHING",
        )?;
        let interactions = run("DELETE FROM interactions WHERE user_id = ?1")?;
        let unlinked = run("DELETE FROM validations WHERE user_id = ?1 AND interaction_id IS NULL")?;
        add_all(tx, &deltas)?;
        Ok(HotDeleted { interactions, feedback, validation_logs: linked + unlinked })
    })
    .await
}
