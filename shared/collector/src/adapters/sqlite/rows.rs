//! How each record lies in its row: the column lists of interactions, feedback, validations,
//! archive objects and archived entries, and each record written to and read from a row.
//! Queries live with the methods that run them; the column order is kept here.

use std::sync::LazyLock;

use chrono::NaiveDate;
use rusqlite::{Connection, Row, params};
use serde_json::{Map, Value};

use super::codec::{
    Db, corrupt, db_error, from_json, id_text, opt_from_json, opt_json, parse_id, parse_platform, parse_ts, parse_user,
    to_json, ts,
};
use crate::domain::archive::{ArchiveObject, ObjectState, StorageClass};
use crate::domain::counters::RecordFacts;
use crate::domain::records::{Feedback, FeedbackSummary, FeedbackType, IngestReceipt, Interaction, ValidationLog};
use crate::domain::types::Kind;
use crate::domain::workflow::StoredWorkflow;
use crate::ports::{ArchivedEntry, StoreError};

// -- interactions -----------------------------------------------------------------------------

pub(super) const ICOLS: &str = "id, user_id, platform, kind, user_message, ai_response, intent, workflow, workflow_compressed, \
     workflow_original_bytes, success, error_message, processing_time_ms, model_version, metadata, training_consent, \
     created_at, content_hash, feedback_count, last_feedback_type, positive_feedback, negative_feedback, \
     latest_negative, good_validation, link_bytes";

static INSERT_INTERACTION: LazyLock<String> = LazyLock::new(|| {
    let n = ICOLS.split(',').count();
    let marks = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO interactions ({ICOLS}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING")
});

pub(super) fn insert_interaction_row(tx: &Connection, rec: &Interaction) -> Result<bool, StoreError> {
    let wf = rec.workflow.as_ref();
    let metadata = rec.metadata.as_ref().map(to_json).transpose()?;
    let s = &rec.summary;
    let mut stmt = tx.prepare_cached(&INSERT_INTERACTION).db()?;
    let n = stmt
        .execute(params![
            id_text(rec.id),
            rec.user_id.as_str(),
            rec.platform.as_str(),
            rec.kind.as_str(),
            rec.user_message,
            rec.ai_response,
            rec.intent,
            wf.map(|w| &w.bytes),
            wf.is_some_and(|w| w.compressed),
            wf.map_or(0, |w| w.original_bytes),
            rec.success,
            rec.error_message,
            // Bit-preserving: u64 values above i64::MAX come back unchanged.
            rec.processing_time_ms.map(|v| v as i64),
            rec.model_version,
            metadata,
            rec.training_consent,
            ts(&rec.created_at),
            rec.content_hash,
            s.feedback_count,
            s.last_feedback_type.map(FeedbackType::as_str),
            s.positive_feedback,
            s.negative_feedback,
            s.latest_negative,
            s.good_validation,
            s.link_bytes,
        ])
        .db()?;
    Ok(n == 1)
}

pub(super) fn interaction_from_row(r: &Row<'_>) -> Result<Interaction, StoreError> {
    let workflow = match r.get::<_, Option<Vec<u8>>>(7).db()? {
        Some(bytes) => Some(StoredWorkflow { bytes, compressed: r.get(8).db()?, original_bytes: r.get(9).db()? }),
        None => None,
    };
    let last_feedback_type = match r.get::<_, Option<String>>(19).db()? {
        Some(t) => Some(FeedbackType::parse(&t).ok_or_else(|| corrupt("feedback type"))?),
        None => None,
    };
    Ok(Interaction {
        id: parse_id(&r.get::<_, String>(0).db()?)?,
        user_id: parse_user(&r.get::<_, String>(1).db()?)?,
        platform: parse_platform(&r.get::<_, String>(2).db()?)?,
        kind: Kind::parse(&r.get::<_, String>(3).db()?).ok_or_else(|| corrupt("kind"))?,
        user_message: r.get(4).db()?,
        ai_response: r.get(5).db()?,
        intent: r.get(6).db()?,
        workflow,
        success: r.get(10).db()?,
        error_message: r.get(11).db()?,
        processing_time_ms: r.get::<_, Option<i64>>(12).db()?.map(|v| v as u64),
        model_version: r.get(13).db()?,
        metadata: opt_from_json::<Map<String, Value>>(r.get(14).db()?, "metadata")?,
        training_consent: r.get(15).db()?,
        created_at: parse_ts(&r.get::<_, String>(16).db()?)?,
        content_hash: r.get(17).db()?,
        summary: FeedbackSummary {
            feedback_count: r.get(18).db()?,
            last_feedback_type,
            positive_feedback: r.get(20).db()?,
            negative_feedback: r.get(21).db()?,
            latest_negative: r.get(22).db()?,
            good_validation: r.get(23).db()?,
            link_bytes: r.get(24).db()?,
        },
    })
}

// -- links ------------------------------------------------------------------------------------

pub(super) const FCOLS: &str = "feedback_id, interaction_id, submitted_by, feedback_type, sentiment_score, comment, corrected_workflow, issue_category, created_at";
pub(super) const VCOLS: &str = "validation_id, interaction_id, user_id, platform, passed, score, errors, warnings, diff, user_edited, \
     workflow, original_workflow, duration_ms, created_at";

pub(super) fn feedback_from_row(r: &Row<'_>) -> Result<Feedback, StoreError> {
    Ok(Feedback {
        feedback_id: parse_id(&r.get::<_, String>(0).db()?)?,
        interaction_id: parse_id(&r.get::<_, String>(1).db()?)?,
        submitted_by: parse_user(&r.get::<_, String>(2).db()?)?,
        feedback_type: FeedbackType::parse(&r.get::<_, String>(3).db()?).ok_or_else(|| corrupt("feedback type"))?,
        sentiment_score: r.get(4).db()?,
        comment: r.get(5).db()?,
        corrected_workflow: opt_from_json(r.get(6).db()?, "corrected workflow")?,
        issue_category: r.get(7).db()?,
        created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
    })
}

pub(super) fn validation_from_row(r: &Row<'_>) -> Result<ValidationLog, StoreError> {
    Ok(ValidationLog {
        validation_id: parse_id(&r.get::<_, String>(0).db()?)?,
        interaction_id: r.get::<_, Option<String>>(1).db()?.map(|s| parse_id(&s)).transpose()?,
        user_id: parse_user(&r.get::<_, String>(2).db()?)?,
        platform: parse_platform(&r.get::<_, String>(3).db()?)?,
        passed: r.get(4).db()?,
        score: u32::try_from(r.get::<_, i64>(5).db()?).map_err(|_| corrupt("score"))?,
        errors: from_json(&r.get::<_, String>(6).db()?, "validation errors")?,
        warnings: from_json(&r.get::<_, String>(7).db()?, "validation warnings")?,
        diff: opt_from_json(r.get(8).db()?, "diff")?,
        user_edited: r.get(9).db()?,
        workflow: from_json(&r.get::<_, String>(10).db()?, "workflow")?,
        original_workflow: opt_from_json(r.get(11).db()?, "original workflow")?,
        // SQLite stores NaN as NULL.
        duration_ms: r.get::<_, Option<f64>>(12).db()?.unwrap_or(f64::NAN),
        created_at: parse_ts(&r.get::<_, String>(13).db()?)?,
    })
}

pub(super) fn insert_validation_row(tx: &Connection, v: &ValidationLog) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO validations ({VCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))
        .db()?;
    stmt.execute(params![
        id_text(v.validation_id),
        v.interaction_id.map(id_text),
        v.user_id.as_str(),
        v.platform.as_str(),
        v.passed,
        i64::from(v.score),
        to_json(&v.errors)?,
        to_json(&v.warnings)?,
        opt_json(v.diff.as_ref())?,
        v.user_edited,
        to_json(&v.workflow)?,
        opt_json(v.original_workflow.as_ref())?,
        v.duration_ms,
        ts(&v.created_at),
    ])
    .db()?;
    Ok(())
}

// -- archive catalog ----------------------------------------------------------------------------

pub(super) const OCOLS: &str = "object_key, platform, date, run_id, record_count, raw_bytes, compressed_bytes, storage_class, \
     created_at, location, state";
pub(super) const ACOLS: &str = "interaction_id, user_id, platform, created_at, object_key, content_hash, receipt_compressed, \
     receipt_original_bytes, receipt_stored_bytes, facts";

pub(super) fn object_from_row(r: &Row<'_>) -> Result<ArchiveObject, StoreError> {
    let slot: String = r.get(0).db()?;
    let location: Option<String> = r.get(9).db()?;
    Ok(ArchiveObject {
        object_key: location.unwrap_or_else(|| slot.clone()),
        slot,
        state: ObjectState::parse(&r.get::<_, String>(10).db()?).ok_or_else(|| corrupt("object state"))?,
        platform: parse_platform(&r.get::<_, String>(1).db()?)?,
        date: NaiveDate::parse_from_str(&r.get::<_, String>(2).db()?, "%Y-%m-%d").map_err(|_| corrupt("date"))?,
        run_id: r.get(3).db()?,
        record_count: r.get(4).db()?,
        raw_bytes: r.get(5).db()?,
        compressed_bytes: r.get(6).db()?,
        storage_class: StorageClass::parse(&r.get::<_, String>(7).db()?).ok_or_else(|| corrupt("storage class"))?,
        created_at: parse_ts(&r.get::<_, String>(8).db()?)?,
    })
}

pub(super) fn insert_object_row(tx: &Connection, o: &ArchiveObject) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO archive_objects ({OCOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))
        .db()?;
    stmt.execute(params![
        o.slot,
        o.platform.as_str(),
        o.date.format("%Y-%m-%d").to_string(),
        o.run_id,
        o.record_count,
        o.raw_bytes,
        o.compressed_bytes,
        o.storage_class.as_str(),
        ts(&o.created_at),
        (o.object_key != o.slot).then_some(o.object_key.as_str()),
        o.state.as_str(),
    ])
    .map_err(|e| match db_error(e) {
        StoreError::Conflict(_) => StoreError::Conflict("archive object key already recorded"),
        other => other,
    })?;
    Ok(())
}

pub(super) fn entry_from_row(r: &Row<'_>) -> Result<ArchivedEntry, StoreError> {
    let interaction_id = parse_id(&r.get::<_, String>(0).db()?)?;
    let created_at = parse_ts(&r.get::<_, String>(3).db()?)?;
    Ok(ArchivedEntry {
        interaction_id,
        user_id: parse_user(&r.get::<_, String>(1).db()?)?,
        platform: parse_platform(&r.get::<_, String>(2).db()?)?,
        created_at,
        object_key: r.get(4).db()?,
        content_hash: r.get(5).db()?,
        receipt: IngestReceipt {
            interaction_id,
            created_at,
            compressed: r.get(6).db()?,
            original_bytes: r.get(7).db()?,
            stored_bytes: r.get(8).db()?,
        },
        facts: from_json::<RecordFacts>(&r.get::<_, String>(9).db()?, "record facts")?,
    })
}

pub(super) fn insert_entry(tx: &Connection, e: &ArchivedEntry) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("INSERT INTO archived ({ACOLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))
        .db()?;
    stmt.execute(params![
        id_text(e.interaction_id),
        e.user_id.as_str(),
        e.platform.as_str(),
        ts(&e.created_at),
        e.object_key,
        e.content_hash,
        e.receipt.compressed,
        e.receipt.original_bytes,
        e.receipt.stored_bytes,
        to_json(&e.facts)?,
    ])
    .db()?;
    Ok(())
}
