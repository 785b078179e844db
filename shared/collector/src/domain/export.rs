//! Training export: which records make a line, and the OpenAI chat line itself.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::records::FullRecord;
use super::types::Kind;

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

/// The assistant turn: the latest corrected workflow, else the workflow (compact JSON) for
/// `workflow_generation`, else `ai_response`. None when there is no usable text.
pub fn assistant_text(rec: &FullRecord) -> Option<String> {
    let text = if let Some(c) = rec.latest_correction() {
        serde_json::to_string(c).ok()
    } else if rec.kind == Kind::WorkflowGeneration && rec.workflow.is_some() {
        rec.workflow.as_ref().and_then(|w| serde_json::to_string(w).ok())
    } else {
        rec.ai_response.clone()
    };
    text.filter(|t| !t.trim().is_empty())
}

/// Whether the record belongs in the export, before building its line.
pub fn selected(rec: &FullRecord, f: &ExportFilter) -> bool {
    if !rec.training_consent || (f.success_only && !rec.success) || (f.with_feedback_only && !rec.has_feedback) {
        return false;
    }
    if f.since.is_some_and(|s| rec.created_at < s) || f.until.is_some_and(|u| rec.created_at >= u) {
        return false;
    }
    // Latest feedback thumbs_down/report without a correction: the user said it is wrong.
    !rec.latest_feedback().is_some_and(|fb| fb.feedback_type.is_negative() && fb.corrected_workflow.is_none())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::formats::{Format, candidates};
    use serde_json::json;
    use crate::domain::fixtures::{feedback, record};
    use crate::domain::records::FeedbackType;

    fn openai_line(r: &FullRecord, system: &str, f: &ExportFilter) -> Option<String> {
        candidates(r, Format::Openai, system, f).first().map(|c| c.line.to_string())
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
        let line = openai_line(&record(Kind::WorkflowGeneration), "sys", &ExportFilter { include_metadata: true, ..Default::default() }).unwrap();
        assert_eq!(check_openai_line(&line), Ok(()));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["messages"][0]["role"], "system");
        assert!(v["metadata"]["interaction_id"].is_string());
        assert_eq!(check_openai_line(r#"{"messages":[{"role":"user","content":"x"}]}"#), Err("no assistant turn"));
        assert_eq!(check_openai_line(r#"{"messages":[{"role":"bot","content":"x"}]}"#), Err("unknown role"));
    }
}

/// Parse the export query (`format`, `success_only`, `with_feedback_only`, `include_archived`,
/// `since`, `until`, `limit`, `include_metadata`, `split`, `validation_fraction`). Unknown
/// parameters are ignored. `max_tokens` is configuration, not a query parameter.
pub fn parse_query(params: &std::collections::HashMap<String, String>) -> Result<ExportFilter, Vec<super::types::FieldError>> {
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
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}
