//! Training formats and their per-line checks: OpenAI chat SFT, OpenAI DPO preference pairs,
//! Bedrock conversation. Each line is checked the way its trainer checks it before it is
//! written; a failing line is left out and counted by reason. Also: the dedupe key and the
//! leakage-free train/validation split.

use std::borrow::Cow;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::export::{ExportFilter, RecordView};
use super::records::FullRecord;
use super::workflow::PayloadError;

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

fn content_digest(user: &str, assistant: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    // Length-prefixed, so ("ab","c") and ("a","bc") differ.
    h.update((user.len() as u64).to_be_bytes());
    h.update(user.as_bytes());
    h.update(assistant.as_bytes());
    h.finalize().into()
}

pub fn content_hash(user: &str, assistant: &str) -> String {
    hex::encode(content_digest(user, assistant))
}

/// The dedupe key: the first 16 bytes of [`content_hash`] (its first 32 hex digits as a number).
pub fn content_key(user: &str, assistant: &str) -> u128 {
    let d = content_digest(user, assistant);
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_be_bytes(first)
}

/// One line's content, borrowed: what its check, its dedupe key and its text are made of. The
/// export checks these parts and writes the line straight from them, without a `Value`; the
/// result is the line [`candidates`] builds, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line<'a> {
    pub system: &'a str,
    pub user: &'a str,
    /// The assistant turn (DPO: the preferred output).
    pub assistant: &'a str,
    /// DPO only: the non-preferred output.
    pub rejected: Option<&'a str>,
    /// The metadata's `source`: `interaction`, `edit_feedback` or `user_edited_validation`.
    pub source: &'static str,
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn reserved(s: &str) -> bool {
    BEDROCK_RESERVED.iter().any(|r| s.contains(r))
}

/// `s` as a JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl Line<'_> {
    /// [`check`] of the line this writes, from its parts: the same reasons in the same order.
    pub fn check(&self, format: Format, max_tokens: u64) -> Result<(), Reject> {
        let tokens = match format {
            Format::Openai => {
                if blank(self.system) || blank(self.user) || blank(self.assistant) {
                    return Err(Reject::EmptyContent);
                }
                estimate_tokens(self.system) + estimate_tokens(self.user) + estimate_tokens(self.assistant)
            }
            Format::Bedrock => {
                if reserved(self.system) {
                    return Err(Reject::ReservedString);
                }
                if blank(self.user) {
                    return Err(Reject::EmptyContent);
                }
                if reserved(self.user) {
                    return Err(Reject::ReservedString);
                }
                if blank(self.assistant) {
                    return Err(Reject::EmptyContent);
                }
                estimate_tokens(self.system) + estimate_tokens(self.user) + estimate_tokens(self.assistant)
            }
            Format::OpenaiDpo => {
                let rejected = self.rejected.unwrap_or_default();
                if blank(self.assistant) || blank(rejected) {
                    return Err(Reject::EmptyContent);
                }
                if self.assistant == rejected {
                    return Err(Reject::IdenticalPair);
                }
                if blank(self.system) || blank(self.user) {
                    return Err(Reject::EmptyContent);
                }
                estimate_tokens(self.assistant).max(estimate_tokens(rejected))
                    + estimate_tokens(self.system)
                    + estimate_tokens(self.user)
            }
        };
        if tokens > max_tokens { Err(Reject::TooManyTokens) } else { Ok(()) }
    }

    /// The dedupe key of the line: user message and assistant output (DPO: the preferred one).
    pub fn key(&self) -> u128 {
        content_key(self.user, self.assistant)
    }

    /// Append the line's compact JSON (no newline) to `out`, with `metadata` when given.
    pub fn write(&self, format: Format, metadata: Option<&Value>, out: &mut Vec<u8>) {
        match format {
            Format::Openai => {
                out.extend_from_slice(br#"{"messages":[{"role":"system","content":"#);
                write_str(out, self.system);
                out.extend_from_slice(br#"},{"role":"user","content":"#);
                write_str(out, self.user);
                out.extend_from_slice(br#"},{"role":"assistant","content":"#);
                write_str(out, self.assistant);
                out.extend_from_slice(b"}]");
            }
            Format::Bedrock => {
                out.extend_from_slice(br#"{"schemaVersion":"bedrock-conversation-2024","system":[{"text":"#);
                write_str(out, self.system);
                out.extend_from_slice(br#"}],"messages":[{"role":"user","content":[{"text":"#);
                write_str(out, self.user);
                out.extend_from_slice(br#"}]},{"role":"assistant","content":[{"text":"#);
                write_str(out, self.assistant);
                out.extend_from_slice(b"}]}]");
            }
            Format::OpenaiDpo => {
                out.extend_from_slice(br#"{"input":{"messages":[{"role":"system","content":"#);
                write_str(out, self.system);
                out.extend_from_slice(br#"},{"role":"user","content":"#);
                write_str(out, self.user);
                out.extend_from_slice(br#"}]},"preferred_output":[{"role":"assistant","content":"#);
                write_str(out, self.assistant);
                out.extend_from_slice(br#"}],"non_preferred_output":[{"role":"assistant","content":"#);
                write_str(out, self.rejected.unwrap_or_default());
                out.extend_from_slice(b"}]");
            }
        }
        if let Some(m) = metadata {
            out.extend_from_slice(br#","metadata":"#);
            // Serializing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, m);
        }
        out.push(b'}');
    }
}

/// The `metadata` object of a line (`include_metadata`).
pub fn metadata(rec: &RecordView, source: &str) -> Value {
    json!({
        "interaction_id": rec.interaction_id, "platform": rec.platform, "kind": rec.kind,
        "created_at": rec.created_at, "model_version": rec.model_version, "has_feedback": rec.has_feedback,
        "last_feedback_type": rec.last_feedback_type, "corrected": rec.latest_correction().is_some(),
        "archived": rec.archived, "source": source,
    })
}

/// Calls `each` with every line a record yields in a format (DPO: one per preference pair),
/// unchecked. Filters apply first. Fails only when a stored workflow cannot be read.
pub fn each_line(
    rec: &RecordView,
    format: Format,
    system: &str,
    f: &ExportFilter,
    mut each: impl FnMut(&Line),
) -> Result<(), PayloadError> {
    if !rec.selected(f) {
        return Ok(());
    }
    match format {
        Format::Openai | Format::Bedrock => {
            if let Some(assistant) = rec.assistant()? {
                each(&Line {
                    system,
                    user: rec.user_message,
                    assistant: &assistant,
                    rejected: None,
                    source: "interaction",
                });
            }
        }
        Format::OpenaiDpo => {
            for (preferred, rejected, source) in pairs_of(rec)? {
                each(&Line {
                    system,
                    user: rec.user_message,
                    assistant: &preferred,
                    rejected: Some(&rejected),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// The lines a record yields in a format (DPO: one per preference pair). Filters apply first.
pub fn candidates(rec: &FullRecord, format: Format, system: &str, f: &ExportFilter) -> Vec<Candidate> {
    let view = RecordView::from(rec);
    let mut out = Vec::new();
    // A FullRecord's workflows are parsed values: nothing to fail on.
    let _ = each_line(&view, format, system, f, |l| {
        let mut text = Vec::new();
        l.write(format, f.include_metadata.then(|| metadata(&view, l.source)).as_ref(), &mut text);
        if let Ok(line) = serde_json::from_slice(&text) {
            out.push(Candidate { line, content_hash: content_hash(l.user, l.assistant) });
        }
    });
    out
}

/// Preference pairs (preferred, non-preferred, source): the latest correction against the
/// generated workflow, and each user-edited validation (edited against original).
pub fn dpo_pairs(rec: &FullRecord) -> Vec<(String, String, &'static str)> {
    pairs_of(&RecordView::from(rec))
        .unwrap_or_default()
        .into_iter()
        .map(|(a, b, source)| (a.into_owned(), b.into_owned(), source))
        .collect()
}

type Pair<'a> = (Cow<'a, str>, Cow<'a, str>, &'static str);

fn pairs_of<'a>(rec: &RecordView<'a>) -> Result<Vec<Pair<'a>>, PayloadError> {
    let text = |v: &Value| Cow::Owned(serde_json::to_string(v).unwrap_or_default());
    let mut out = Vec::new();
    if let (Some(corrected), Some(generated)) = (rec.latest_correction(), rec.workflow) {
        out.push((text(corrected), generated.text()?, "edit_feedback"));
    }
    for v in rec.validations {
        if let (true, Some(original)) = (v.user_edited, v.original_workflow.as_ref()) {
            out.push((text(&v.workflow), text(original), "user_edited_validation"));
        }
    }
    Ok(out)
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
    let input = line
        .pointer("/input/messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or(Reject::NoMessages)?;
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
        let parts =
            m.get("content").and_then(Value::as_array).filter(|p| !p.is_empty()).ok_or(Reject::NonStringContent)?;
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
        assert_eq!(
            pairs,
            vec![(r#"{"edited":true}"#.to_owned(), r#"{"edited":false}"#.to_owned(), "user_edited_validation")]
        );
    }

    #[test]
    fn every_format_passes_its_own_check() {
        let mut r = record();
        r.feedback.push(edit(json!({"fixed": 1})));
        for f in [Format::Openai, Format::OpenaiDpo, Format::Bedrock] {
            let c = candidates(
                &r,
                f,
                "You build n8n workflows.",
                &ExportFilter { include_metadata: true, ..Default::default() },
            );
            assert_eq!(c.len(), 1, "{f:?}");
            assert_eq!(check(f, &c[0].line, DEFAULT_MAX_TOKENS), Ok(()), "{f:?}");
        }
    }

    #[test]
    fn checks_reject_with_reasons() {
        let chat = |msgs: Value| json!({ "messages": msgs });
        assert_eq!(check(Format::Openai, &json!({}), 100), Err(Reject::NoMessages));
        assert_eq!(
            check(Format::Openai, &chat(json!([{"role": "bot", "content": "x"}])), 100),
            Err(Reject::UnknownRole)
        );
        assert_eq!(
            check(Format::Openai, &chat(json!([{"role": "user", "content": 1}])), 100),
            Err(Reject::NonStringContent)
        );
        assert_eq!(
            check(Format::Openai, &chat(json!([{"role": "user", "content": " "}])), 100),
            Err(Reject::EmptyContent)
        );
        assert_eq!(
            check(Format::Openai, &chat(json!([{"role": "user", "content": "x"}])), 100),
            Err(Reject::NoAssistantTurn)
        );
        let long = chat(json!([{"role": "user", "content": "x".repeat(401)}, {"role": "assistant", "content": "y"}]));
        assert_eq!(check(Format::Openai, &long, 100), Err(Reject::TooManyTokens));
        assert_eq!(check(Format::Openai, &long, 102), Ok(()));
        let bed = |msgs: Value| json!({"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}], "messages": msgs});
        let u = |t: &str| json!({"role": "user", "content": [{"text": t}]});
        let a = |t: &str| json!({"role": "assistant", "content": [{"text": t}]});
        assert_eq!(check(Format::Bedrock, &bed(json!([u("hi"), a("yo")])), 100), Ok(()));
        assert_eq!(check(Format::Bedrock, &bed(json!([a("yo")])), 100), Err(Reject::FirstNotUser));
        assert_eq!(
            check(Format::Bedrock, &bed(json!([u("hi"), u("again"), a("yo")])), 100),
            Err(Reject::NotAlternating)
        );
        assert_eq!(
            check(Format::Bedrock, &bed(json!([u("hi"), a("yo"), u("more")])), 100),
            Err(Reject::LastNotAssistant)
        );
        assert_eq!(check(Format::Bedrock, &bed(json!([u("User: do it"), a("yo")])), 100), Err(Reject::ReservedString));
        let same = json!({"input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "a"}], "non_preferred_output": [{"role": "assistant", "content": "a"}]});
        assert_eq!(check(Format::OpenaiDpo, &same, 100), Err(Reject::IdenticalPair));
    }

    /// Every part the checks look at, in turn empty, reserved, too long or identical.
    fn edge_lines() -> Vec<(String, String, String, Option<String>)> {
        let long = "x".repeat(500);
        let mut out = Vec::new();
        for system in ["sys", "", "System: be good", &long] {
            for user in ["make a flow", " ", "User: do it", "caf\u{e9} \"quoted\"\n\t\u{1}", &long] {
                for assistant in [r#"{"nodes":[1.5,2],"s":"a\"b\\c"}"#, "\n ", "Assistant: ok", &long] {
                    for rejected in [None, Some("other"), Some(assistant), Some("")] {
                        out.push((
                            system.to_owned(),
                            user.to_owned(),
                            assistant.to_owned(),
                            rejected.map(str::to_owned),
                        ));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn lines_written_from_parts_check_like_their_values() {
        for (system, user, assistant, rejected) in edge_lines() {
            for format in [Format::Openai, Format::OpenaiDpo, Format::Bedrock] {
                if (format == Format::OpenaiDpo) != rejected.is_some() {
                    continue;
                }
                let line = Line {
                    system: &system,
                    user: &user,
                    assistant: &assistant,
                    rejected: rejected.as_deref(),
                    source: "interaction",
                };
                let mut text = Vec::new();
                line.write(format, Some(&json!({"source": "interaction"})), &mut text);
                let value: Value = serde_json::from_slice(&text).expect("a written line is JSON");
                assert_eq!(serde_json::to_vec(&value).unwrap(), text, "compact, as serde_json writes it");
                for max in [10, 200, DEFAULT_MAX_TOKENS] {
                    assert_eq!(line.check(format, max), check(format, &value, max), "{format:?} {max} {line:?}");
                }
                assert_eq!(format!("{:032x}", line.key()), content_hash(&user, &assistant)[..32]);
            }
        }
    }

    #[test]
    fn a_hot_record_gives_the_lines_of_its_full_record() {
        use crate::domain::records::{FeedbackSummary, Interaction};
        use crate::domain::workflow::StoredWorkflow;
        let workflow = json!({"name": "caf\u{e9} \"x\"", "nodes": [{"id": 1, "f": 0.1, "big": 1.7976931348623157e308, "u": u64::MAX}], "z": {"b": 1, "a": [null, true]}});
        for threshold in [0, 1 << 20] {
            let hot = Interaction {
                id: Id::new(),
                user_id: crate::domain::types::UserId::parse("u").unwrap(),
                platform: crate::domain::types::Platform::parse("n8n").unwrap(),
                kind: Kind::WorkflowGeneration,
                user_message: "make a flow".into(),
                ai_response: Some("Here it is".into()),
                intent: None,
                workflow: Some(StoredWorkflow::pack(&workflow, threshold)),
                success: true,
                error_message: None,
                processing_time_ms: None,
                model_version: Some("m1".into()),
                metadata: None,
                training_consent: true,
                created_at: Utc::now(),
                content_hash: String::new(),
                summary: FeedbackSummary::default(),
            };
            for corrected in [false, true] {
                let mut fb = Vec::new();
                if corrected {
                    let mut f = edit(json!({"fixed": 1}));
                    f.interaction_id = hot.id;
                    fb.push(f);
                }
                let full = FullRecord::build(&hot, fb.clone(), vec![], false).unwrap();
                let view = RecordView::hot(&hot, &fb, &[], false);
                for format in [Format::Openai, Format::OpenaiDpo, Format::Bedrock] {
                    let f = ExportFilter { include_metadata: true, ..Default::default() };
                    let want: Vec<String> =
                        candidates(&full, format, "sys", &f).iter().map(|c| c.line.to_string()).collect();
                    let mut got = Vec::new();
                    each_line(&view, format, "sys", &f, |l| {
                        let mut text = Vec::new();
                        l.write(format, Some(&metadata(&view, l.source)), &mut text);
                        got.push(String::from_utf8(text).unwrap());
                    })
                    .unwrap();
                    assert_eq!(got, want, "{format:?} corrected={corrected} threshold={threshold}");
                }
            }
        }
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
