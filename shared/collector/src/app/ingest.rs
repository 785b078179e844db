//! Writes: interactions (single and batch), validations, feedback.

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::{App, AppError};
use crate::domain::diff::{Diff, diff};
use crate::domain::input::{NewFeedback, NewInteraction, Parsed, ValidateRequest};
use crate::domain::json;
use crate::domain::records::{Feedback, FeedbackSummary, IngestReceipt, Interaction, ValidationLog};
use crate::domain::types::{Caller, Id, Role};
use crate::domain::validators::{self, Issue};
use crate::domain::workflow::StoredWorkflow;
use crate::ports::{Inserted, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// 201
    Created(IngestReceipt),
    /// 200: the same id with the same content again.
    Replayed(IngestReceipt),
    /// 202: collection is switched off; nothing stored.
    NotCollected,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ValidationResult {
    #[schema(value_type = String, format = Uuid)]
    pub validation_id: Id,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub interaction_id: Option<Id>,
    pub passed: bool,
    pub score: u32,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub diff: Option<Diff>,
    pub duration_ms: f64,
}

impl App {
    /// Log one interaction parsed at the edge. A legacy body (`workflow_gzip_hex`) was inflated
    /// under [`App::inflation_permit`], which its caller holds until this returns.
    pub async fn log_interaction(
        &self,
        caller: &Caller,
        input: Parsed<NewInteraction>,
    ) -> Result<IngestOutcome, AppError> {
        let now = Utc::now();
        if caller.role == Role::User && input.sets_created_at {
            return Err(AppError::Forbidden("only service and admin may set created_at"));
        }
        let new = self.checked_platform(input).await?;
        let user_id = match (caller.role, new.user_id.clone()) {
            (Role::User, Some(u)) if u != caller.sub => {
                return Err(AppError::Forbidden("a user logs interactions only as themselves"));
            }
            (Role::User, _) => caller.sub.clone(),
            (_, Some(u)) => u,
            (_, None) => return Err(AppError::field("user_id", "is required when logging on behalf of a user")),
        };
        if !self.config.enable_data_collection {
            return Ok(IngestOutcome::NotCollected);
        }
        let content_hash = new.content_hash(&user_id);
        let rec = Interaction {
            id: new.interaction_id.unwrap_or_else(Id::new),
            user_id,
            platform: new.platform,
            kind: new.kind,
            user_message: new.user_message,
            ai_response: new.ai_response,
            intent: new.intent,
            workflow: new
                .workflow
                .map(|w| StoredWorkflow::pack_text(w.into_compact(), self.config.compression_threshold_bytes())),
            success: new.success,
            error_message: new.error_message,
            processing_time_ms: new.processing_time_ms,
            model_version: new.model_version,
            metadata: new.metadata,
            training_consent: new.training_consent.unwrap_or(self.config.default_training_consent),
            created_at: new.created_at.unwrap_or(now),
            content_hash,
            summary: FeedbackSummary::default(),
        };
        match self.hot.insert_interaction(&rec).await? {
            Inserted::New => Ok(IngestOutcome::Created(rec.receipt())),
            Inserted::Existing { content_hash, receipt } if content_hash == rec.content_hash => {
                Ok(IngestOutcome::Replayed(receipt))
            }
            Inserted::Existing { .. } => Err(AppError::Conflict("interaction_id already used with other content")),
            Inserted::Erased => Err(AppError::Conflict("interaction_id is of deleted data and is not used again")),
        }
    }

    /// A permit of the gate that bounds legacy inflations (`workflow_gzip_hex`, which may take
    /// a second of CPU each) running at once; hold it from the inflation until the interaction is
    /// stored, so the inflated workflows in memory are bounded too.
    pub async fn inflation_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        self.inflations.clone().acquire_owned().await.map_err(|e| AppError::internal_from("inflation gate", e))
    }

    pub async fn validate_workflow(
        &self,
        caller: &Caller,
        input: Parsed<ValidateRequest>,
    ) -> Result<ValidationResult, AppError> {
        let req = self.checked_platform(input).await?;
        // The validation belongs to a user and leaves with their data (CONTRACT section 6a):
        // the linked interaction's owner; else the named user (required of a service, which
        // has no data of its own); else the caller.
        let owner = match (req.interaction_id, caller.role, req.user_id.clone()) {
            (Some(id), _, _) => Some(self.owner_of_hot(caller, id).await?),
            (None, Role::User, Some(u)) if u != caller.sub => {
                return Err(AppError::Forbidden("a user logs validations only as themselves"));
            }
            (None, Role::User, _) => None,
            (None, Role::Service, None) => {
                return Err(AppError::field(
                    "user_id",
                    "is required when a service logs a validation without interaction_id",
                ));
            }
            (None, _, named) => named,
        };
        let started = Instant::now();
        let report = validators::validate(&req.platform, &req.workflow)?;
        let d = req.original_workflow.as_ref().map(|o| diff(o, &req.workflow)).transpose()?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let log = ValidationLog {
            validation_id: Id::new(),
            interaction_id: req.interaction_id,
            user_id: owner.unwrap_or_else(|| caller.sub.clone()),
            platform: req.platform,
            passed: report.passed(),
            score: report.score(),
            errors: report.errors,
            warnings: report.warnings,
            diff: d,
            user_edited: req.user_edited,
            workflow: req.workflow,
            original_workflow: req.original_workflow,
            duration_ms,
            created_at: Utc::now(),
        };
        // Checked before anything is written: an answer Lambda cannot return would fail after
        // the log was stored (and every retry would store another). The answer's other fields
        // are a few hundred bytes, within the budget's margin.
        let answer_len = json::escaped_json_len(&(&log.errors, &log.warnings, &log.diff))
            .map_err(|e| AppError::internal_from("validation answer", e))?;
        if answer_len > json::ANSWER_BUDGET {
            return Err(AppError::TooLarge("the validation's answer (its issues and diff) would pass 6 MB"));
        }
        if self.config.enable_data_collection {
            self.hot.add_validation(&log).await.map_err(archived_or)?;
        }
        Ok(ValidationResult {
            validation_id: log.validation_id,
            interaction_id: log.interaction_id,
            passed: log.passed,
            score: log.score,
            errors: log.errors,
            warnings: log.warnings,
            diff: log.diff,
            duration_ms,
        })
    }

    pub async fn submit_feedback(&self, caller: &Caller, n: NewFeedback) -> Result<(Id, Id), AppError> {
        self.owner_of_hot(caller, n.interaction_id).await?;
        let fb = Feedback {
            feedback_id: Id::new(),
            interaction_id: n.interaction_id,
            submitted_by: caller.sub.clone(),
            feedback_type: n.feedback_type,
            sentiment_score: n.sentiment_score,
            comment: n.comment,
            corrected_workflow: n.corrected_workflow.map(Value::Object),
            issue_category: n.issue_category,
            created_at: Utc::now(),
        };
        self.hot.add_feedback(&fb).await.map_err(archived_or)?;
        Ok((fb.feedback_id, fb.interaction_id))
    }

    /// The owner of a hot interaction the caller may touch. Someone else's: NotFound.
    /// Archived: Conflict, since archived records are closed to new feedback and validations.
    async fn owner_of_hot(&self, caller: &Caller, id: Id) -> Result<crate::domain::types::UserId, AppError> {
        if let Some(owner) = self.hot.hot_owner(id).await? {
            return if caller.can_access(&owner) { Ok(owner) } else { Err(AppError::NotFound) };
        }
        match self.hot.archived_entry(id).await? {
            Some(e) if caller.can_access(&e.user_id) => {
                Err(AppError::Conflict("interaction is archived; it takes no new feedback or validations"))
            }
            _ => Err(AppError::NotFound),
        }
    }
}

/// The record went between our check and the write (deleted or archived meanwhile).
fn archived_or(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::NotFound,
        other => AppError::Store(other),
    }
}
