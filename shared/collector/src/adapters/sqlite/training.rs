//! The training side tables: curated examples (with their usage counts) and training metrics.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::codec::{
    Db, collect, from_json, id_text, opt_from_json, opt_json, parse_id, parse_platform, parse_ts, parse_user, to_json,
    ts,
};
use super::counters::add_counters;
use crate::domain::counters::PlatformCounters;
use crate::domain::records::{CuratedExample, TrainingMetric};
use crate::domain::types::{Id, Platform};
use crate::ports::StoreError;

pub(super) async fn insert_example(this: &SqliteStore, ex: &CuratedExample) -> Result<(), StoreError> {
    let ex = ex.clone();
    this.write(move |tx| {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO examples (example_id, platform, user_message, workflow, ai_response, description, tags, \
                 usage_count, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .db()?;
        stmt.execute(params![
            id_text(ex.example_id),
            ex.platform.as_str(),
            ex.user_message,
            opt_json(ex.workflow.as_ref())?,
            ex.ai_response,
            ex.description,
            to_json(&ex.tags)?,
            ex.usage_count,
            ex.created_by.as_str(),
            ts(&ex.created_at),
        ])
        .db()?;
        add_counters(tx, &ex.platform, &PlatformCounters { curated_examples: 1, ..PlatformCounters::default() })
    })
    .await
}

pub(super) async fn list_examples(
    this: &SqliteStore,
    platform: Option<&Platform>,
) -> Result<Vec<CuratedExample>, StoreError> {
    let platform = platform.map(|p| p.as_str().to_owned());
    this.read(move |tx| {
        let cols = "example_id, platform, user_message, workflow, ai_response, description, tags, usage_count, \
                    created_by, created_at";
        let map = |r: &Row<'_>| -> Result<CuratedExample, StoreError> {
            Ok(CuratedExample {
                example_id: parse_id(&r.get::<_, String>(0).db()?)?,
                platform: parse_platform(&r.get::<_, String>(1).db()?)?,
                user_message: r.get(2).db()?,
                workflow: opt_from_json(r.get(3).db()?, "example workflow")?,
                ai_response: r.get(4).db()?,
                description: r.get(5).db()?,
                tags: from_json(&r.get::<_, String>(6).db()?, "tags")?,
                usage_count: r.get(7).db()?,
                created_by: parse_user(&r.get::<_, String>(8).db()?)?,
                created_at: parse_ts(&r.get::<_, String>(9).db()?)?,
            })
        };
        match platform {
            Some(p) => {
                let sql = format!(
                    "SELECT {cols} FROM examples WHERE platform = ?1 ORDER BY created_at DESC, example_id DESC"
                );
                collect(&mut tx.prepare_cached(&sql).db()?, [&p], map)
            }
            None => {
                let sql = format!("SELECT {cols} FROM examples ORDER BY created_at DESC, example_id DESC");
                collect(&mut tx.prepare_cached(&sql).db()?, [], map)
            }
        }
    })
    .await
}

pub(super) async fn delete_example(this: &SqliteStore, id: Id) -> Result<bool, StoreError> {
    this.write(move |tx| {
        let platform: Option<String> = tx
            .prepare_cached("DELETE FROM examples WHERE example_id = ?1 RETURNING platform")
            .db()?
            .query_row([id_text(id)], |r| r.get(0))
            .optional()
            .db()?;
        let Some(platform) = platform else { return Ok(false) };
        let minus_one = PlatformCounters { curated_examples: -1, ..PlatformCounters::default() };
        add_counters(tx, &parse_platform(&platform)?, &minus_one)?;
        Ok(true)
    })
    .await
}

pub(super) async fn increment_example_usage(this: &SqliteStore, ids: &[Id]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids =
        serde_json::to_string(&ids.iter().map(|i| id_text(*i)).collect::<Vec<_>>()).map_err(StoreError::internal)?;
    this.write(move |tx| {
        tx.prepare_cached(
            "UPDATE examples SET usage_count = usage_count + 1 WHERE example_id IN (SELECT value FROM json_each(?1))",
        )
        .db()?
        .execute([ids])
        .db()?;
        Ok(())
    })
    .await
}

pub(super) async fn insert_metric(this: &SqliteStore, m: &TrainingMetric) -> Result<(), StoreError> {
    let m = m.clone();
    this.write(move |tx| {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO metrics (metric_id, platform, model, dataset_size, run_id, metrics, notes, created_by, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .db()?;
        stmt.execute(params![
            id_text(m.metric_id),
            m.platform.as_str(),
            m.model,
            m.dataset_size,
            m.run_id,
            to_json(&m.metrics)?,
            m.notes,
            m.created_by.as_str(),
            ts(&m.created_at),
        ])
        .db()?;
        Ok(())
    })
    .await
}

pub(super) async fn list_metrics(
    this: &SqliteStore,
    platform: Option<&Platform>,
) -> Result<Vec<TrainingMetric>, StoreError> {
    let platform = platform.map(|p| p.as_str().to_owned());
    this.read(move |tx| {
        let cols = "metric_id, platform, model, dataset_size, run_id, metrics, notes, created_by, created_at";
        let map = |r: &Row<'_>| -> Result<TrainingMetric, StoreError> {
            Ok(TrainingMetric {
                metric_id: parse_id(&r.get::<_, String>(0).db()?)?,
                platform: parse_platform(&r.get::<_, String>(1).db()?)?,
                model: r.get(2).db()?,
                dataset_size: r.get(3).db()?,
                run_id: r.get(4).db()?,
                metrics: from_json(&r.get::<_, String>(5).db()?, "metrics")?,
                notes: r.get(6).db()?,
                created_by: parse_user(&r.get::<_, String>(7).db()?)?,
                created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
            })
        };
        match platform {
            Some(p) => {
                let sql =
                    format!("SELECT {cols} FROM metrics WHERE platform = ?1 ORDER BY created_at DESC, metric_id DESC");
                collect(&mut tx.prepare_cached(&sql).db()?, [&p], map)
            }
            None => {
                let sql = format!("SELECT {cols} FROM metrics ORDER BY created_at DESC, metric_id DESC");
                collect(&mut tx.prepare_cached(&sql).db()?, [], map)
            }
        }
    })
    .await
}
