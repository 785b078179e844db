//! Training formats and their per-line checks: OpenAI chat SFT, OpenAI DPO preference pairs,
//! Bedrock conversation. Each line is checked the way its trainer checks it before it is
//! written; a failing line is left out and counted by reason. Also: the dedupe key and the
//! leakage-free train/validation split.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::export::{ExportFilter, assistant_text, selected};
use super::records::FullRecord;

/// Default estimated-token limit per line (OpenAI's context for fine-tuning examples).
pub const DEFAULT_MAX_TOKENS: u64 = 65_536;
/// Strings Bedrock reserves as turn markers; they must not appear in prompts.
pub const BEDROCK_RESERVED: [&str; 4] = ["User:", "Bot:", "Assistant:", "System:"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Openai,
    OpenaiDpo,
    Bedrock,
}

impl Format {
    pub fn parse(raw: &str) -> Option<Format> {
        match raw {
            "openai" => Some(Format::Openai),
            "openai_dpo" => Some(Format::OpenaiDpo),
            "bedrock" => Some(Format::Bedrock),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Openai => "openai",
            Format::OpenaiDpo => "openai_dpo",
            Format::Bedrock => "bedrock",
        }
    }
}

/// Why a line was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    NoMessages,
    UnknownRole,
    NonStringContent,
    EmptyContent,
    NoAssistantTurn,
    TooManyTokens,
    FirstNotUser,
    LastNotAssistant,
    NotAlternating,
    ReservedString,
    IdenticalPair,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NoMessages => "no_messages",
            Reject::UnknownRole => "unknown_role",
            Reject::NonStringContent => "non_string_content",
            Reject::EmptyContent => "empty_content",
            Reject::NoAssistantTurn => "no_assistant_turn",
            Reject::TooManyTokens => "too_many_tokens",
            Reject::FirstNotUser => "first_not_user",
            Reject::LastNotAssistant => "last_not_assistant",
            Reject::NotAlternating => "not_alternating",
            Reject::ReservedString => "reserved_string",
            Reject::IdenticalPair => "identical_pair",
        }
    }
}

/// A rough token estimate (about 4 characters a token), the usual rule when no tokenizer is at hand.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// A line built from a record, with what dedupe and the split need.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub line: Value,
    /// sha256 (hex) of user message + assistant output: equal content, equal key.
    pub content_hash: String,
}

pub fn content_hash(user: &str, assistant: &str) -> String {
    let mut h = Sha256::new();
    // Length-prefixed, so ("ab","c") and ("a","bc") differ.
    h.update((user.len() as u64).to_be_bytes());
    h.update(user.as_bytes());
    h.update(assistant.as_bytes());
    hex::encode(h.finalize())
}

fn openai_messages(system: &str, user: &str, assistant: &str) -> Value {
    json!([
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ])
}

/// The lines a record yields in a format (DPO: one per preference pair). Filters apply first.
pub fn candidates(rec: &FullRecord, format: Format, system: &str, f: &ExportFilter) -> Vec<Candidate> {
    if !selected(rec, f) {
        return Vec::new();
    }
    let meta = |line: &mut Value, source: &str| {
        if f.include_metadata {
            line["metadata"] = json!({
                "interaction_id": rec.interaction_id, "platform": rec.platform, "kind": rec.kind,
                "created_at": rec.created_at, "model_version": rec.model_version, "has_feedback": rec.has_feedback,
                "last_feedback_type": rec.last_feedback_type, "corrected": rec.latest_correction().is_some(),
                "archived": rec.archived, "source": source,
            });
        }
    };
    match format {
        Format::Openai | Format::Bedrock => {
            let Some(assistant) = assistant_text(rec) else { return Vec::new() };
            let mut line = if format == Format::Openai {
                json!({ "messages": openai_messages(system, &rec.user_message, &assistant) })
            } else {
                json!({
                    "schemaVersion": "bedrock-conversation-2024",
                    "system": [{"text": system}],
                    "messages": [
                        {"role": "user", "content": [{"text": rec.user_message}]},
                        {"role": "assistant", "content": [{"text": assistant}]},
                    ],
                })
            };
            meta(&mut line, "interaction");
            vec![Candidate { content_hash: content_hash(&rec.user_message, &assistant), line }]
        }
        Format::OpenaiDpo => dpo_pairs(rec)
            .into_iter()
            .map(|(preferred, rejected, source)| {
                let mut line = json!({
                    "input": {"messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": rec.user_message},
                    ]},
                    "preferred_output": [{"role": "assistant", "content": preferred}],
                    "non_preferred_output": [{"role": "assistant", "content": rejected}],
                });
                meta(&mut line, source);
                Candidate { content_hash: content_hash(&rec.user_message, &preferred), line }
            })
            .collect(),
    }
}

/// Preference pairs (preferred, non-preferred, source): the latest correction against the
/// generated workflow, and each user-edited validation (edited against original).
pub fn dpo_pairs(rec: &FullRecord) -> Vec<(String, String, &'static str)> {
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut out = Vec::new();
    if let (Some(corrected), Some(generated)) = (rec.latest_correction(), rec.workflow.as_ref()) {
        out.push((text(corrected), text(generated), "edit_feedback"));
    }
    for v in &rec.validations {
        if let (true, Some(original)) = (v.user_edited, v.original_workflow.as_ref()) {
            out.push((text(&v.workflow), text(original), "user_edited_validation"));
        }
    }
    out
}

/// Check a line as its trainer would. `max_tokens` bounds the estimated tokens of the line.
pub fn check(format: Format, line: &Value, max_tokens: u64) -> Result<(), Reject> {
    match format {
        Format::Openai => check_chat(line.get("messages"), max_tokens),
        Format::OpenaiDpo => check_dpo(line, max_tokens),
        Format::Bedrock => check_bedrock(line, max_tokens),
    }
}

fn check_chat(messages: Option<&Value>, max_tokens: u64) -> Result<(), Reject> {
    let msgs = messages.and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or(Reject::NoMessages)?;
    let mut tokens = 0;
    let mut assistant = false;
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).ok_or(Reject::UnknownRole)?;
        if !matches!(role, "system" | "user" | "assistant") {
            return Err(Reject::UnknownRole);
        }
        let content = m.get("content").ok_or(Reject::NonStringContent)?.as_str().ok_or(Reject::NonStringContent)?;
        if content.trim().is_empty() {
            return Err(Reject::EmptyContent);
        }
        tokens += estimate_tokens(content);
        assistant |= role == "assistant";
    }
    if !assistant {
        return Err(Reject::NoAssistantTurn);
    }
    if tokens > max_tokens {
        return Err(Reject::TooManyTokens);
    }
    Ok(())
}

fn check_dpo(line: &Value, max_tokens: u64) -> Result<(), Reject> {
    let input = line.pointer("/input/messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or(Reject::NoMessages)?;
    let side = |key: &str| -> Result<String, Reject> {
        let out = line.get(key).and_then(Value::as_array).filter(|a| a.len() == 1).ok_or(Reject::NoAssistantTurn)?;
        if out[0].get("role").and_then(Value::as_str) != Some("assistant") {
            return Err(Reject::NoAssistantTurn);
        }
        let c = out[0].get("content").and_then(Value::as_str).ok_or(Reject::NonStringContent)?;
        if c.trim().is_empty() { Err(Reject::EmptyContent) } else { Ok(c.to_owned()) }
    };
    let preferred = side("preferred_output")?;
    let rejected = side("non_preferred_output")?;
    if preferred == rejected {
        return Err(Reject::IdenticalPair);
    }
    // The prompt must be a valid chat without an assistant answer yet.
    let mut tokens = estimate_tokens(&preferred).max(estimate_tokens(&rejected));
    for m in input {
        let role = m.get("role").and_then(Value::as_str).ok_or(Reject::UnknownRole)?;
        if !matches!(role, "system" | "user" | "assistant") {
            return Err(Reject::UnknownRole);
        }
        let c = m.get("content").and_then(Value::as_str).ok_or(Reject::NonStringContent)?;
        if c.trim().is_empty() {
            return Err(Reject::EmptyContent);
        }
        tokens += estimate_tokens(c);
    }
    if input.last().and_then(|m| m.get("role")).and_then(Value::as_str) != Some("user") {
        return Err(Reject::LastNotAssistant);
    }
    if tokens > max_tokens { Err(Reject::TooManyTokens) } else { Ok(()) }
}

fn check_bedrock(line: &Value, max_tokens: u64) -> Result<(), Reject> {
    let msgs = line.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or(Reject::NoMessages)?;
    let text_of = |m: &Value| -> Result<String, Reject> {
        let parts = m.get("content").and_then(Value::as_array).filter(|p| !p.is_empty()).ok_or(Reject::NonStringContent)?;
        let mut s = String::new();
        for p in parts {
            s.push_str(p.get("text").and_then(Value::as_str).ok_or(Reject::NonStringContent)?);
        }
        if s.trim().is_empty() { Err(Reject::EmptyContent) } else { Ok(s) }
    };
    let mut tokens = 0;
    let system: Vec<&str> = line
        .get("system")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("text").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    for s in &system {
        if BEDROCK_RESERVED.iter().any(|r| s.contains(r)) {
            return Err(Reject::ReservedString);
        }
        tokens += estimate_tokens(s);
    }
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or(Reject::UnknownRole)?;
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if !matches!(role, "user" | "assistant") {
            return Err(Reject::UnknownRole);
        }
        if role != want {
            return Err(if i == 0 { Reject::FirstNotUser } else { Reject::NotAlternating });
        }
        let text = text_of(m)?;
        if role == "user" && BEDROCK_RESERVED.iter().any(|r| text.contains(r)) {
            return Err(Reject::ReservedString);
        }
        tokens += estimate_tokens(&text);
    }
    if msgs.last().and_then(|m| m.get("role")).and_then(Value::as_str) != Some("assistant") {
        return Err(Reject::LastNotAssistant);
    }
    if tokens > max_tokens { Err(Reject::TooManyTokens) } else { Ok(()) }
}

/// Which side of the split a user's examples go to, by a stable hash of the user id: one
/// user's examples never sit on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn parse(raw: &str) -> Option<Split> {
        match raw {
            "train" => Some(Split::Train),
            "validation" => Some(Split::Validation),
            _ => None,
        }
    }
    pub fn of_user(user_id: &str, validation_fraction: f64) -> Split {
        let d = Sha256::digest(user_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        let x = u64::from_be_bytes(first) as f64 / u64::MAX as f64;
        if x < validation_fraction { Split::Validation } else { Split::Train }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::feedback;
    use crate::domain::records::{Feedback, FeedbackType, ValidationLog};
    use crate::domain::types::{Id, Kind};
    use chrono::Utc;

    fn record() -> FullRecord {
        let mut r = crate::domain::fixtures::record(Kind::WorkflowGeneration);
        r.workflow = Some(json!({"generated": 1}));
        r
    }

    fn edit(corrected: Value) -> Feedback {
        feedback(FeedbackType::Edit, Some(corrected))
    }

    #[test]
    fn a_correction_yields_exactly_one_pair_with_the_right_sides() {
        let mut r = record();
        assert!(candidates(&r, Format::OpenaiDpo, "sys", &ExportFilter::default()).is_empty());
        r.feedback.push(edit(json!({"fixed": 1})));
        let c = candidates(&r, Format::OpenaiDpo, "sys", &ExportFilter::default());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].line["preferred_output"][0]["content"], r#"{"fixed":1}"#);
        assert_eq!(c[0].line["non_preferred_output"][0]["content"], r#"{"generated":1}"#);
        assert_eq!(c[0].line["input"]["messages"][1]["content"], "make a flow");
        assert_eq!(check(Format::OpenaiDpo, &c[0].line, DEFAULT_MAX_TOKENS), Ok(()));
    }

    #[test]
    fn user_edited_validations_are_pairs_too() {
        let mut r = record();
        r.validations.push(ValidationLog {
            validation_id: Id::new(),
            interaction_id: Some(r.interaction_id),
            user_id: r.user_id.clone(),
            platform: r.platform.clone(),
            passed: true,
            score: 100,
            errors: vec![],
            warnings: vec![],
            diff: None,
            user_edited: true,
            workflow: json!({"edited": true}),
            original_workflow: Some(json!({"edited": false})),
            duration_ms: 0.1,
            created_at: Utc::now(),
        });
        let pairs = dpo_pairs(&r);
        assert_eq!(pairs, vec![(r#"{"edited":true}"#.to_owned(), r#"{"edited":false}"#.to_owned(), "user_edited_validation")]);
    }

    #[test]
    fn every_format_passes_its_own_check() {
        let mut r = record();
        r.feedback.push(edit(json!({"fixed": 1})));
        for f in [Format::Openai, Format::OpenaiDpo, Format::Bedrock] {
            let c = candidates(&r, f, "You build n8n workflows.", &ExportFilter { include_metadata: true, ..Default::default() });
            assert_eq!(c.len(), 1, "{f:?}");
            assert_eq!(check(f, &c[0].line, DEFAULT_MAX_TOKENS), Ok(()), "{f:?}");
        }
    }

    #[test]
    fn checks_reject_with_reasons() {
        let chat = |msgs: Value| json!({ "messages": msgs });
        assert_eq!(check(Format::Openai, &json!({}), 100), Err(Reject::NoMessages));
        assert_eq!(check(Format::Openai, &chat(json!([{"role": "bot", "content": "x"}])), 100), Err(Reject::UnknownRole));
        assert_eq!(check(Format::Openai, &chat(json!([{"role": "user", "content": 1}])), 100), Err(Reject::NonStringContent));
        assert_eq!(check(Format::Openai, &chat(json!([{"role": "user", "content": " "}])), 100), Err(Reject::EmptyContent));
        assert_eq!(check(Format::Openai, &chat(json!([{"role": "user", "content": "x"}])), 100), Err(Reject::NoAssistantTurn));
        let long = chat(json!([{"role": "user", "content": "x".repeat(401)}, {"role": "assistant", "content": "y"}]));
        assert_eq!(check(Format::Openai, &long, 100), Err(Reject::TooManyTokens));
        assert_eq!(check(Format::Openai, &long, 102), Ok(()));
        let bed = |msgs: Value| json!({"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}], "messages": msgs});
        let u = |t: &str| json!({"role": "user", "content": [{"text": t}]});
        let a = |t: &str| json!({"role": "assistant", "content": [{"text": t}]});
        assert_eq!(check(Format::Bedrock, &bed(json!([u("hi"), a("yo")])), 100), Ok(()));
        assert_eq!(check(Format::Bedrock, &bed(json!([a("yo")])), 100), Err(Reject::FirstNotUser));
        assert_eq!(check(Format::Bedrock, &bed(json!([u("hi"), u("again"), a("yo")])), 100), Err(Reject::NotAlternating));
        assert_eq!(check(Format::Bedrock, &bed(json!([u("hi"), a("yo"), u("more")])), 100), Err(Reject::LastNotAssistant));
        assert_eq!(check(Format::Bedrock, &bed(json!([u("User: do it"), a("yo")])), 100), Err(Reject::ReservedString));
        let same = json!({"input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "a"}], "non_preferred_output": [{"role": "assistant", "content": "a"}]});
        assert_eq!(check(Format::OpenaiDpo, &same, 100), Err(Reject::IdenticalPair));
    }

    #[test]
    fn content_hash_is_sha256_of_user_and_assistant() {
        assert_eq!(content_hash("ab", "c").len(), 64);
        assert_ne!(content_hash("ab", "c"), content_hash("a", "bc"));
        assert_eq!(content_hash("q", "a"), content_hash("q", "a"));
    }

    #[test]
    fn split_is_stable_per_user_and_near_the_fraction() {
        assert_eq!(Split::of_user("alice", 0.1), Split::of_user("alice", 0.1));
        let validation = (0..10_000).filter(|i| Split::of_user(&format!("user{i}"), 0.1) == Split::Validation).count();
        assert!((800..1200).contains(&validation), "{validation}");
        assert_eq!(Split::of_user("x", 0.0), Split::Train);
        assert_eq!(Split::of_user("x", 1.0), Split::Validation);
    }
}
