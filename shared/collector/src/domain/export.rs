//! Training export: which records make a line, and the OpenAI chat line itself.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::records::{Feedback, FeedbackType, FullRecord, Interaction, ValidationLog};
use super::types::{Id, Kind, Platform, UserId};
use super::workflow::{PayloadError, StoredWorkflow};

/// Default system text; `{platform}` is filled in.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are an expert automation engineer. Build correct, complete {platform} workflows from the user's request.";

/// The export's query: which records to take.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFilter {
    pub success_only: bool,
    pub with_feedback_only: bool,
    pub include_archived: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u64>,
    pub include_metadata: bool,
    pub format: super::formats::Format,
    /// Only one side of the leakage-free split (by user), when set.
    pub split: Option<super::formats::Split>,
    pub validation_fraction: f64,
    /// Estimated-token limit per line (EXPORT_MAX_TOKENS).
    pub max_tokens: u64,
}

pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.1;

impl Default for ExportFilter {
    fn default() -> Self {
        ExportFilter {
            success_only: true,
            with_feedback_only: false,
            include_archived: false,
            since: None,
            until: None,
            limit: None,
            include_metadata: false,
            format: super::formats::Format::Openai,
            split: None,
            validation_fraction: DEFAULT_VALIDATION_FRACTION,
            max_tokens: super::formats::DEFAULT_MAX_TOKENS,
        }
    }
}

pub fn system_text(template: &str, platform: &str) -> String {
    template.replace("{platform}", platform)
}

/// A workflow as an export reads it: a parsed value (archived records, curated examples) or the
/// stored compact text of a hot record, which is used as is (no parse, no re-serialization).
#[derive(Debug, Clone, Copy)]
pub enum WorkflowRef<'a> {
    Value(&'a Value),
    Stored(&'a StoredWorkflow),
}

impl<'a> WorkflowRef<'a> {
    /// The compact JSON text. Both sources give the same text for the same workflow.
    pub fn text(self) -> Result<Cow<'a, str>, PayloadError> {
        match self {
            WorkflowRef::Value(v) => serde_json::to_string(v).map(Cow::Owned).map_err(|_| PayloadError::NotJson),
            WorkflowRef::Stored(s) => s.json_str(),
        }
    }
}

/// What an export reads of a record, borrowed: from a hot-store row (no [`FullRecord`] is built
/// and the workflow is not parsed) or from a [`FullRecord`] (archives, curated examples).
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub interaction_id: Id,
    pub user_id: &'a UserId,
    pub platform: &'a Platform,
    pub kind: Kind,
    pub user_message: &'a str,
    pub ai_response: Option<&'a str>,
    pub workflow: Option<WorkflowRef<'a>>,
    pub success: bool,
    pub model_version: Option<&'a str>,
    pub training_consent: bool,
    pub created_at: DateTime<Utc>,
    pub has_feedback: bool,
    pub last_feedback_type: Option<FeedbackType>,
    pub archived: bool,
    /// Oldest first.
    pub feedback: &'a [Feedback],
    /// Oldest first.
    pub validations: &'a [ValidationLog],
}

impl<'a> RecordView<'a> {
    /// A hot record with its links, as [`FullRecord::build`] would see it.
    pub fn hot(
        rec: &'a Interaction,
        feedback: &'a [Feedback],
        validations: &'a [ValidationLog],
        archived: bool,
    ) -> Self {
        RecordView {
            interaction_id: rec.id,
            user_id: &rec.user_id,
            platform: &rec.platform,
            kind: rec.kind,
            user_message: &rec.user_message,
            ai_response: rec.ai_response.as_deref(),
            workflow: rec.workflow.as_ref().map(WorkflowRef::Stored),
            success: rec.success,
            model_version: rec.model_version.as_deref(),
            training_consent: rec.training_consent,
            created_at: rec.created_at,
            has_feedback: rec.summary.has_feedback(),
            last_feedback_type: rec.summary.last_feedback_type,
            archived,
            feedback,
            validations,
        }
    }

    /// The latest feedback that carries a corrected workflow.
    pub fn latest_correction(&self) -> Option<&'a Value> {
        self.feedback.iter().rev().find_map(|f| f.corrected_workflow.as_ref())
    }

    pub fn latest_feedback(&self) -> Option<&'a Feedback> {
        self.feedback.last()
    }

    /// The assistant turn: the latest corrected workflow, else the workflow (compact JSON) for
    /// `workflow_generation`, else `ai_response`. None when there is no usable text.
    pub fn assistant(&self) -> Result<Option<Cow<'a, str>>, PayloadError> {
        let text = if let Some(c) = self.latest_correction() {
            WorkflowRef::Value(c).text()?
        } else if let (Kind::WorkflowGeneration, Some(w)) = (self.kind, self.workflow) {
            w.text()?
        } else {
            match self.ai_response {
                Some(t) => Cow::Borrowed(t),
                None => return Ok(None),
            }
        };
        Ok(Some(text).filter(|t| !t.trim().is_empty()))
    }

    /// Whether the record belongs in the export, before building its line.
    pub fn selected(&self, f: &ExportFilter) -> bool {
        if !self.training_consent || (f.success_only && !self.success) || (f.with_feedback_only && !self.has_feedback) {
            return false;
        }
        if f.since.is_some_and(|s| self.created_at < s) || f.until.is_some_and(|u| self.created_at >= u) {
            return false;
        }
        // Latest feedback thumbs_down/report without a correction: the user said it is wrong.
        !self.latest_feedback().is_some_and(|fb| fb.feedback_type.is_negative() && fb.corrected_workflow.is_none())
    }
}

impl<'a> From<&'a FullRecord> for RecordView<'a> {
    fn from(rec: &'a FullRecord) -> Self {
        RecordView {
            interaction_id: rec.interaction_id,
            user_id: &rec.user_id,
            platform: &rec.platform,
            kind: rec.kind,
            user_message: &rec.user_message,
            ai_response: rec.ai_response.as_deref(),
            workflow: rec.workflow.as_ref().map(WorkflowRef::Value),
            success: rec.success,
            model_version: rec.model_version.as_deref(),
            training_consent: rec.training_consent,
            created_at: rec.created_at,
            has_feedback: rec.has_feedback,
            last_feedback_type: rec.last_feedback_type,
            archived: rec.archived,
            feedback: &rec.feedback,
            validations: &rec.validations,
        }
    }
}

/// The assistant turn: the latest corrected workflow, else the workflow (compact JSON) for
/// `workflow_generation`, else `ai_response`. None when there is no usable text.
pub fn assistant_text(rec: &FullRecord) -> Option<String> {
    // A FullRecord's workflow is a parsed value: serializing it cannot fail.
    RecordView::from(rec).assistant().ok().flatten().map(Cow::into_owned)
}

/// Whether the record belongs in the export, before building its line.
pub fn selected(rec: &FullRecord, f: &ExportFilter) -> bool {
    RecordView::from(rec).selected(f)
}

/// `training_data_{platform}_{YYYYMMDD}.jsonl`
pub fn file_name(platform: &str, now: DateTime<Utc>) -> String {
    format!("training_data_{platform}_{}.jsonl", now.format("%Y%m%d"))
}

/// Checks an OpenAI chat line the way the OpenAI cookbook's format check does: a dict with
/// `messages`, known roles, string content, at least one assistant turn. Returns the problem.
pub fn check_openai_line(line: &str) -> Result<(), &'static str> {
    let v: Value = serde_json::from_str(line).map_err(|_| "not JSON")?;
    let msgs = v.get("messages").and_then(Value::as_array).ok_or("no messages list")?;
    if msgs.is_empty() {
        return Err("empty messages");
    }
    let mut assistant = false;
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).ok_or("message without role")?;
        if !matches!(role, "system" | "user" | "assistant" | "function" | "tool") {
            return Err("unknown role");
        }
        if !m.get("content").is_some_and(Value::is_string) {
            return Err("content is not a string");
        }
        assistant |= role == "assistant";
    }
    if assistant { Ok(()) } else { Err("no assistant turn") }
}

/// Parse the export query (`format`, `success_only`, `with_feedback_only`, `include_archived`,
/// `since`, `until`, `limit`, `include_metadata`, `split`, `validation_fraction`). Unknown
/// parameters are ignored. `max_tokens` is configuration, not a query parameter.
pub fn parse_query(
    params: &std::collections::HashMap<String, String>,
) -> Result<ExportFilter, Vec<super::types::FieldError>> {
    use super::formats::{Format, Split};
    use super::types::FieldError;
    let mut errors = Vec::new();
    let mut f = ExportFilter::default();
    if let Some(raw) = params.get("format") {
        match Format::parse(raw) {
            Some(format) => f.format = format,
            None => errors.push(FieldError::new("format", "must be openai, openai_dpo or bedrock")),
        }
    }
    if let Some(raw) = params.get("split") {
        match Split::parse(raw) {
            Some(split) => f.split = Some(split),
            None => errors.push(FieldError::new("split", "must be train or validation")),
        }
    }
    if let Some(raw) = params.get("validation_fraction") {
        match raw.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => f.validation_fraction = x,
            _ => errors.push(FieldError::new("validation_fraction", "must be a number from 0 to 1")),
        }
    }
    let mut flag = |name: &str, slot: &mut bool| match params.get(name).map(String::as_str) {
        None => {}
        Some("true" | "1") => *slot = true,
        Some("false" | "0") => *slot = false,
        Some(_) => errors.push(FieldError::new(name, "must be true or false")),
    };
    flag("success_only", &mut f.success_only);
    flag("with_feedback_only", &mut f.with_feedback_only);
    flag("include_archived", &mut f.include_archived);
    flag("include_metadata", &mut f.include_metadata);
    for (name, slot) in [("since", &mut f.since), ("until", &mut f.until)] {
        if let Some(raw) = params.get(name) {
            match parse_time_or_date(raw) {
                Some(t) => *slot = Some(t),
                None => errors.push(FieldError::new(name, "must be an RFC 3339 time or a YYYY-MM-DD date")),
            }
        }
    }
    if let Some(raw) = params.get("limit") {
        match raw.parse::<u64>() {
            Ok(n) if n >= 1 => f.limit = Some(n),
            _ => errors.push(FieldError::new("limit", "must be an integer >= 1")),
        }
    }
    if errors.is_empty() { Ok(f) } else { Err(errors) }
}

/// `2026-01-31T12:00:00Z` or `2026-01-31` (midnight UTC).
pub fn parse_time_or_date(raw: &str) -> Option<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?.and_utc(),
    };
    crate::domain::types::storable_time(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{feedback, record};
    use crate::domain::formats::{Format, candidates};
    use crate::domain::records::FeedbackType;
    use serde_json::json;

    fn openai_line(r: &FullRecord, system: &str, f: &ExportFilter) -> Option<String> {
        candidates(r, Format::Openai, system, f).first().map(|c| c.line.to_string())
    }

    #[test]
    fn times_outside_the_stored_years_are_refused() {
        assert!(parse_time_or_date("2026-01-05").is_some());
        assert!(parse_time_or_date("9999-12-31T23:00:00Z").is_some());
        // An offset moves these out of years 0000..=9999 in UTC, which stored times (fixed-width
        // text) cannot be compared with.
        assert_eq!(parse_time_or_date("9999-12-31T23:59:59-01:00"), None);
        assert_eq!(parse_time_or_date("0000-01-01T00:00:00+01:00"), None);
    }

    #[test]
    fn assistant_turn_prefers_correction_then_workflow_then_response() {
        let mut r = record(Kind::WorkflowGeneration);
        assert_eq!(assistant_text(&r).as_deref(), Some(r#"{"nodes":[1.5,2]}"#));
        r.feedback.push(feedback(FeedbackType::Edit, Some(json!({"a": 1}))));
        r.feedback.push(feedback(FeedbackType::Edit, Some(json!({"b": 2}))));
        assert_eq!(assistant_text(&r).as_deref(), Some(r#"{"b":2}"#));
        assert_eq!(assistant_text(&record(Kind::Conversation)).as_deref(), Some("Here it is"));
    }

    #[test]
    fn negative_latest_feedback_without_correction_is_left_out() {
        let f = ExportFilter::default();
        let mut r = record(Kind::WorkflowGeneration);
        r.feedback.push(feedback(FeedbackType::ThumbsUp, None));
        assert!(openai_line(&r, "sys", &f).is_some());
        r.feedback.push(feedback(FeedbackType::ThumbsDown, None));
        assert!(openai_line(&r, "sys", &f).is_none());
        r.feedback.push(feedback(FeedbackType::Report, Some(json!({"fixed": true}))));
        assert!(openai_line(&r, "sys", &f).is_some());
    }

    #[test]
    fn filters_and_empty_assistant() {
        let mut r = record(Kind::Conversation);
        r.success = false;
        assert!(openai_line(&r, "s", &ExportFilter::default()).is_none());
        assert!(openai_line(&r, "s", &ExportFilter { success_only: false, ..Default::default() }).is_some());
        r.ai_response = Some("  ".into());
        assert!(openai_line(&r, "s", &ExportFilter { success_only: false, ..Default::default() }).is_none());
        let mut r = record(Kind::Conversation);
        r.training_consent = false;
        assert!(openai_line(&r, "s", &ExportFilter::default()).is_none());
    }

    #[test]
    fn lines_pass_the_cookbook_checks() {
        let line = openai_line(
            &record(Kind::WorkflowGeneration),
            "sys",
            &ExportFilter { include_metadata: true, ..Default::default() },
        )
        .unwrap();
        assert_eq!(check_openai_line(&line), Ok(()));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["messages"][0]["role"], "system");
        assert!(v["metadata"]["interaction_id"].is_string());
        assert_eq!(check_openai_line(r#"{"messages":[{"role":"user","content":"x"}]}"#), Err("no assistant turn"));
        assert_eq!(check_openai_line(r#"{"messages":[{"role":"bot","content":"x"}]}"#), Err("unknown role"));
    }
}
