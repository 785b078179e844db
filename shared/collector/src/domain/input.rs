//! Request bodies parsed into validated types. Every problem is collected, none stops the others.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::json::Node;
use super::records::FeedbackType;
use super::types::{FieldError, Id, Kind, Platform, UserId};
use super::workflow::{self, PayloadError, WorkflowText};

pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_COMMENT_CHARS: usize = 4000;
/// Clock skew tolerated for a client-supplied `created_at`.
pub const CREATED_AT_SKEW_SECS: i64 = 60;
pub const ISSUE_CATEGORIES: [&str; 6] =
    ["incorrect_workflow", "missing_steps", "wrong_platform", "invalid_syntax", "incomplete", "other"];

/// Reads fields out of a JSON object, recording one error per bad field.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// The body must be an object; otherwise the single error says so.
    pub fn of(body: &'a Value) -> Result<Fields<'a>, Vec<FieldError>> {
        match body {
            Value::Object(obj) => Ok(Fields { obj, errors: Vec::new() }),
            _ => Err(vec![FieldError::new("body", "must be a JSON object")]),
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Present and not null.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    pub fn opt_str(&mut self, field: &str) -> Option<String> {
        match self.get(field)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    pub fn req_str(&mut self, field: &str) -> Option<String> {
        if !self.has(field) {
            self.fail(field, "is required");
            return None;
        }
        let s = self.opt_str(field)?;
        if s.trim().is_empty() {
            self.fail(field, "must not be empty");
            return None;
        }
        Some(s)
    }

    pub fn opt_bool(&mut self, field: &str) -> Option<bool> {
        match self.get(field)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.fail(field, "must be true or false");
                None
            }
        }
    }

    /// An integer >= 0. JSON does not tell `5` from `5.0` (nor does JSON Schema's `integer`):
    /// a number without a fraction is taken as the integer it is.
    pub fn opt_u64(&mut self, field: &str) -> Option<u64> {
        let v = self.get(field)?;
        let integral =
            |f: f64| (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64);
        match v.as_u64().or_else(|| v.as_f64().and_then(integral)) {
            Some(n) => Some(n),
            None => {
                self.fail(field, "must be an integer >= 0");
                None
            }
        }
    }

    pub fn opt_object(&mut self, field: &str) -> Option<Map<String, Value>> {
        match self.get(field)? {
            Value::Object(m) => Some(m.clone()),
            _ => {
                self.fail(field, "must be a JSON object");
                None
            }
        }
    }

    pub fn req_object(&mut self, field: &str) -> Option<Map<String, Value>> {
        if !self.has(field) {
            self.fail(field, "is required");
            return None;
        }
        self.opt_object(field)
    }

    pub fn platform(&mut self) -> Option<Platform> {
        let raw = self.req_str("platform")?;
        Platform::parse(&raw).map_err(|m| self.fail("platform", m)).ok()
    }

    pub fn opt_id(&mut self, field: &str) -> Option<Id> {
        let raw = self.opt_str(field)?;
        Id::parse(&raw).map_err(|m| self.fail(field, m)).ok()
    }

    pub fn req_id(&mut self, field: &str) -> Option<Id> {
        if !self.has(field) {
            self.fail(field, "is required");
            return None;
        }
        self.opt_id(field)
    }

    pub fn opt_user_id(&mut self, field: &str) -> Option<UserId> {
        let raw = self.opt_str(field)?;
        UserId::parse(&raw).map_err(|m| self.fail(field, m)).ok()
    }

    pub fn opt_time(&mut self, field: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let raw = self.opt_str(field)?;
        match DateTime::parse_from_rfc3339(&raw) {
            Ok(t) if crate::domain::types::storable_time(t.with_timezone(&Utc)).is_none() => {
                // An offset can write year -1 in UTC (0000-01-01T00:00:00+01:00): stored
                // times are fixed-width text, which that would not sort with.
                self.fail(field, "must be within the years 0000-9999 in UTC");
                None
            }
            Ok(t) if t.with_timezone(&Utc) <= now + chrono::Duration::seconds(CREATED_AT_SKEW_SECS) => {
                Some(t.with_timezone(&Utc))
            }
            Ok(_) => {
                self.fail(field, "must not be in the future");
                None
            }
            Err(_) => {
                self.fail(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z");
                None
            }
        }
    }

    pub fn opt_string_list(&mut self, field: &str) -> Option<Vec<String>> {
        match self.get(field)? {
            Value::Array(a) if a.iter().all(Value::is_string) => {
                Some(a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            }
            _ => {
                self.fail(field, "must be an array of strings");
                None
            }
        }
    }

    /// Finish: the value when no field failed, else every problem.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            // Every field that fed `value` passed, so it is Some.
            value().ok_or_else(|| vec![FieldError::new("body", "is incomplete")])
        } else {
            Err(self.errors)
        }
    }
}

fn payload_message(e: PayloadError) -> &'static str {
    match e {
        PayloadError::TooLarge => "inflates past the 64 MiB limit",
        PayloadError::TooDeep => "holds a workflow nested deeper than 64 levels",
        PayloadError::TooCostly => "holds a workflow with too many JSON values to parse within the memory limit",
        PayloadError::NotGzip => "is not valid gzip",
        PayloadError::NotHex => "must be hex of gzip of the workflow JSON",
        PayloadError::NotJson => "does not hold a JSON workflow",
    }
}

/// A body parsed at the edge, before the app checks the platform it names against the known
/// ones (which needs the store): the parse's outcome, and the body's `platform` when it is a
/// well-formed slug, so an unknown platform is reported together with the body's other problems.
#[derive(Debug)]
pub struct Parsed<T> {
    pub named_platform: Option<Platform>,
    /// The body sets `created_at` (not null), valid or not: only service and admin may, so a
    /// user's body that does is refused (403) before its fields are judged.
    pub sets_created_at: bool,
    pub result: Result<T, Vec<FieldError>>,
}

impl<T> Parsed<T> {
    /// `parse` over `body`; the platform is read first, since a parse may consume the body.
    pub fn new(body: Value, parse: impl FnOnce(Value) -> Result<T, Vec<FieldError>>) -> Parsed<T> {
        let named_platform = body.get("platform").and_then(Value::as_str).and_then(|p| Platform::parse(p).ok());
        let sets_created_at = body.get("created_at").is_some_and(|v| !v.is_null());
        Parsed { named_platform, sets_created_at, result: parse(body) }
    }
}

impl Parsed<NewInteraction> {
    /// A logged interaction's body (`created_at` checked against the clock now).
    pub fn interaction(body: Value) -> Self {
        let now = Utc::now();
        Parsed::new(body, |b| NewInteraction::parse(b, now))
    }
}

impl Parsed<ValidateRequest> {
    /// A workflow validation's body.
    pub fn validation(body: Value) -> Self {
        Parsed::new(body, |b| ValidateRequest::parse(&b))
    }
}

/// Most interactions one batch may log.
pub const MAX_BATCH: usize = 100;

/// The items of a batch body (`{"interactions": [...]}`, 1 to [`MAX_BATCH`]); each is parsed
/// alone, so one bad item fails alone.
pub fn batch_items(mut body: Value) -> Result<Vec<Value>, Vec<FieldError>> {
    match body.get_mut("interactions").map(Value::take) {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_BATCH => Ok(a),
        Some(Value::Array(a)) if a.len() > MAX_BATCH => {
            Err(vec![FieldError::new("interactions", "must hold at most 100 interactions")])
        }
        _ => Err(vec![FieldError::new("interactions", "must be a non-empty array of interactions")]),
    }
}

/// A logged interaction's `workflow` field, parsed apart from the rest of its body.
#[derive(Debug, PartialEq)]
enum BodyWorkflow {
    Null,
    NotAnObject,
    Object(WorkflowText),
}

/// An interaction body with its `workflow` as a borrowed tree and every other field a `Value`
/// (a repeated key's last value wins, as in a `Value`).
struct SplitBody<'a> {
    fields: Map<String, Value>,
    workflow: Option<Node<'a>>,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for SplitBody<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SplitVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for SplitVisitor<'a> {
            type Value = SplitBody<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SplitBody<'a>, A::Error> {
                let mut body = SplitBody { fields: Map::new(), workflow: None };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "workflow" {
                        body.workflow = Some(map.next_value()?);
                    } else {
                        body.fields.insert(key, map.next_value()?);
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(SplitVisitor(std::marker::PhantomData))
    }
}

/// An interaction body's text after [`NewInteraction::parse_text`].
// Returned once per request and matched at once: boxing the parse would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum BodyText {
    Parsed(Parsed<NewInteraction>),
    /// A body with `workflow_gzip_hex`, for [`Parsed::interaction`].
    Legacy(Value),
}

/// `POST /api/interactions` body, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInteraction {
    pub interaction_id: Option<Id>,
    pub user_id: Option<UserId>,
    pub platform: Platform,
    pub kind: Kind,
    pub user_message: String,
    pub ai_response: Option<String>,
    pub intent: Option<String>,
    pub workflow: Option<WorkflowText>,
    pub success: bool,
    pub error_message: Option<String>,
    pub processing_time_ms: Option<u64>,
    pub model_version: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub training_consent: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
}

impl NewInteraction {
    /// Takes the body by value: the metadata is moved out, never copied.
    pub fn parse(mut body: Value, now: DateTime<Utc>) -> Result<NewInteraction, Vec<FieldError>> {
        let workflow = body.as_object_mut().and_then(|m| m.remove("workflow")).map(|w| match w {
            Value::Object(m) => BodyWorkflow::Object(WorkflowText::of_map(&m)),
            Value::Null => BodyWorkflow::Null,
            _ => BodyWorkflow::NotAnObject,
        });
        NewInteraction::parse_parts(body, workflow, now)
    }

    /// The body's text, its `workflow` parsed into a [`Node`] (no `Value` built for it).
    /// `None` when the text is not a JSON object: [`NewInteraction::parse`] of its `Value`
    /// reports that as it always has. A legacy body (`workflow_gzip_hex`) comes back as its
    /// `Value`, to be parsed where its inflation may take long.
    pub fn parse_text(text: &[u8], now: DateTime<Utc>) -> Option<BodyText> {
        let SplitBody { mut fields, workflow } = serde_json::from_slice(text).ok()?;
        if fields.contains_key("workflow_gzip_hex") {
            if let Some(node) = workflow {
                // Serializing a tree into a Value cannot fail (string keys only).
                fields.insert("workflow".into(), serde_json::to_value(&node).unwrap_or(Value::Null));
            }
            return Some(BodyText::Legacy(Value::Object(fields)));
        }
        let workflow = workflow.map(|w| match w {
            Node::Null => BodyWorkflow::Null,
            node => WorkflowText::of_node(&node).map_or(BodyWorkflow::NotAnObject, BodyWorkflow::Object),
        });
        Some(BodyText::Parsed(Parsed::new(Value::Object(fields), |body| {
            NewInteraction::parse_parts(body, workflow, now)
        })))
    }

    /// `body` without its `workflow`, which is given apart.
    fn parse_parts(
        mut body: Value,
        workflow: Option<BodyWorkflow>,
        now: DateTime<Utc>,
    ) -> Result<NewInteraction, Vec<FieldError>> {
        let workflow_raw = workflow.filter(|w| *w != BodyWorkflow::Null);
        let metadata_raw = body.as_object_mut().and_then(|m| m.remove("metadata")).filter(|v| !v.is_null());
        let mut f = Fields::of(&body)?;
        let interaction_id = f.opt_id("interaction_id");
        let user_id = f.opt_user_id("user_id");
        let platform = f.platform();
        let kind = match f.opt_str("kind") {
            None => Some(Kind::Conversation),
            Some(k) => Kind::parse(&k).or_else(|| {
                f.fail("kind", "must be conversation or workflow_generation");
                None
            }),
        };
        let user_message = f.req_str("user_message");
        let ai_response = f.opt_str("ai_response");
        let intent = f.opt_str("intent");
        let workflow = match (workflow_raw.is_some(), f.has("workflow_gzip_hex")) {
            (true, true) => {
                f.fail("workflow_gzip_hex", "give either workflow or workflow_gzip_hex, not both");
                None
            }
            (false, true) => f.opt_str("workflow_gzip_hex").and_then(|hex| match workflow::from_gzip_hex(&hex) {
                Ok(Value::Object(m)) => Some(WorkflowText::of_map(&m)),
                Ok(_) => {
                    f.fail("workflow_gzip_hex", "must hold a JSON object");
                    None
                }
                Err(e) => {
                    f.fail("workflow_gzip_hex", payload_message(e));
                    None
                }
            }),
            _ => match workflow_raw {
                Some(BodyWorkflow::Object(w)) => Some(w),
                Some(_) => {
                    f.fail("workflow", "must be a JSON object");
                    None
                }
                None => None,
            },
        };
        let success = f.opt_bool("success").unwrap_or(true);
        let error_message = f.opt_str("error_message");
        let processing_time_ms = f.opt_u64("processing_time_ms");
        let model_version = f.opt_str("model_version");
        let metadata = match metadata_raw {
            Some(Value::Object(m)) => {
                if serde_json::to_vec(&m).map_or(usize::MAX, |b| b.len()) > MAX_METADATA_BYTES {
                    f.fail("metadata", "must be at most 16 KiB of JSON");
                }
                Some(m)
            }
            Some(_) => {
                f.fail("metadata", "must be a JSON object");
                None
            }
            None => None,
        };
        let training_consent = f.opt_bool("training_consent");
        let created_at = f.opt_time("created_at", now);
        f.finish(|| {
            Some(NewInteraction {
                interaction_id,
                user_id,
                platform: platform?,
                kind: kind?,
                user_message: user_message?,
                ai_response,
                intent,
                workflow,
                success,
                error_message,
                processing_time_ms,
                model_version,
                metadata,
                training_consent,
                created_at,
            })
        })
    }

    /// Canonical hash of what the client sent (not of what the server filled in), for
    /// idempotency. Fed field by field, so nothing is copied.
    pub fn content_hash(&self, user_id: &UserId) -> String {
        use super::json::{Hasher, Node, write_canonical_str};
        use std::io::Write;
        let mut h = Hasher::new();
        let put = |h: &mut Hasher, bytes: &[u8]| {
            // Writing into a hasher cannot fail.
            let _ = h.write_all(bytes);
        };
        let opt_str = |h: &mut Hasher, s: &Option<String>| match s {
            Some(s) => write_canonical_str(h, s),
            None => put(h, b"-"),
        };
        write_canonical_str(&mut h, user_id.as_str());
        write_canonical_str(&mut h, self.platform.as_str());
        write_canonical_str(&mut h, self.kind.as_str());
        write_canonical_str(&mut h, &self.user_message);
        opt_str(&mut h, &self.ai_response);
        opt_str(&mut h, &self.intent);
        // An object goes in as its canonical encoding, which the workflow already holds.
        match &self.workflow {
            Some(w) => put(&mut h, w.canonical()),
            None => put(&mut h, b"-"),
        }
        put(&mut h, &[self.success as u8]);
        opt_str(&mut h, &self.error_message);
        match self.processing_time_ms {
            Some(n) => put(&mut h, &n.to_be_bytes()),
            None => put(&mut h, b"-"),
        }
        opt_str(&mut h, &self.model_version);
        match &self.metadata {
            Some(m) => Node::of_map(m).write_canonical(&mut h),
            None => put(&mut h, b"-"),
        }
        match self.training_consent {
            Some(c) => put(&mut h, &[c as u8]),
            None => put(&mut h, b"-"),
        }
        opt_str(&mut h, &self.created_at.map(|t| t.to_rfc3339()));
        h.hex()
    }
}

/// `POST /api/feedback/submit` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeedback {
    pub interaction_id: Id,
    pub feedback_type: FeedbackType,
    pub sentiment_score: Option<u8>,
    pub comment: Option<String>,
    pub corrected_workflow: Option<Map<String, Value>>,
    pub issue_category: Option<String>,
}

impl NewFeedback {
    pub fn parse(body: &Value) -> Result<NewFeedback, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let interaction_id = f.req_id("interaction_id");
        let feedback_type = if f.has("feedback_type") {
            f.opt_str("feedback_type").and_then(|t| {
                FeedbackType::parse(&t).or_else(|| {
                    f.fail("feedback_type", "must be thumbs_up, thumbs_down, edit or report");
                    None
                })
            })
        } else {
            f.fail("feedback_type", "is required");
            None
        };
        let sentiment_score = if f.has("sentiment_score") {
            match f.opt_u64("sentiment_score") {
                Some(n @ 1..=5) => Some(n as u8),
                Some(_) => {
                    f.fail("sentiment_score", "must be an integer from 1 to 5");
                    None
                }
                None => None,
            }
        } else {
            None
        };
        let comment = f.opt_str("comment");
        if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
            f.fail("comment", "must be at most 4000 characters");
        }
        let corrected_workflow = f.opt_object("corrected_workflow");
        if feedback_type == Some(FeedbackType::Edit) && corrected_workflow.is_none() && !f.has("corrected_workflow") {
            f.fail("corrected_workflow", "is required for edit feedback");
        }
        let issue_category = f.opt_str("issue_category");
        if issue_category.as_deref().is_some_and(|c| !ISSUE_CATEGORIES.contains(&c)) {
            f.fail("issue_category", format!("must be one of {}", ISSUE_CATEGORIES.join(", ")));
        }
        f.finish(|| {
            Some(NewFeedback {
                interaction_id: interaction_id?,
                feedback_type: feedback_type?,
                sentiment_score,
                comment,
                corrected_workflow,
                issue_category,
            })
        })
    }
}

/// `POST /api/workflow/validate` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateRequest {
    pub platform: Platform,
    pub workflow: Value,
    pub interaction_id: Option<Id>,
    pub original_workflow: Option<Value>,
    pub user_edited: bool,
    /// Whose validation it is when no interaction names the owner (service and admin callers).
    pub user_id: Option<UserId>,
}

impl ValidateRequest {
    pub fn parse(body: &Value) -> Result<ValidateRequest, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let platform = f.platform();
        // Any JSON is accepted here: a non-object is the validator's `not_an_object`, not a 400.
        let workflow = body.get("workflow").filter(|v| !v.is_null()).cloned();
        if workflow.is_none() {
            f.fail("workflow", "is required");
        }
        let interaction_id = f.opt_id("interaction_id");
        let original_workflow = body.get("original_workflow").filter(|v| !v.is_null()).cloned();
        let user_edited = f.opt_bool("user_edited").unwrap_or(false);
        let user_id = f.opt_user_id("user_id");
        f.finish(|| {
            Some(ValidateRequest {
                platform: platform?,
                workflow: workflow?,
                interaction_id,
                original_workflow,
                user_edited,
                user_id,
            })
        })
    }
}

/// `POST /api/examples` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExample {
    pub platform: Platform,
    pub user_message: String,
    pub workflow: Option<Map<String, Value>>,
    pub ai_response: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
}

impl NewExample {
    pub fn parse(body: &Value) -> Result<NewExample, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let platform = f.platform();
        let user_message = f.req_str("user_message");
        let workflow = f.opt_object("workflow");
        let ai_response = f.opt_str("ai_response");
        if !f.has("workflow") && !f.has("ai_response") {
            f.fail("workflow", "give a workflow or an ai_response");
        }
        let description = f.opt_str("description");
        let tags = f.opt_string_list("tags").unwrap_or_default();
        f.finish(|| {
            Some(NewExample {
                platform: platform?,
                user_message: user_message?,
                workflow,
                ai_response,
                description,
                tags,
            })
        })
    }
}

/// `POST /api/training-metrics` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMetric {
    pub platform: Platform,
    pub model: String,
    pub dataset_size: i64,
    pub run_id: Option<String>,
    pub metrics: Map<String, Value>,
    pub notes: Option<String>,
}

impl NewMetric {
    pub fn parse(body: &Value) -> Result<NewMetric, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let platform = f.platform();
        let model = f.req_str("model");
        let dataset_size = if f.has("dataset_size") {
            // Stored as a signed 64-bit integer: a larger count would come back negative.
            match f.opt_u64("dataset_size").map(i64::try_from) {
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => {
                    f.fail("dataset_size", "must be an integer from 0 to 9223372036854775807");
                    None
                }
                None => None,
            }
        } else {
            f.fail("dataset_size", "is required");
            None
        };
        let run_id = f.opt_str("run_id");
        let metrics = f.opt_object("metrics").unwrap_or_default();
        if metrics.values().any(|v| !v.is_number()) {
            f.fail("metrics", "values must be numbers");
        }
        let notes = f.opt_str("notes");
        f.finish(|| {
            Some(NewMetric { platform: platform?, model: model?, dataset_size: dataset_size?, run_id, metrics, notes })
        })
    }
}

/// `POST /api/feedback/archive` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRequest {
    pub days_old: Option<u32>,
    pub dry_run: bool,
    pub platform: Option<Platform>,
    /// Wait for a run that holds the archive lease instead of answering `archive_running`.
    pub wait: bool,
}

impl ArchiveRequest {
    pub fn parse(body: &Value) -> Result<ArchiveRequest, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let days_old = match f.opt_u64("days_old") {
            Some(n) if (1..=36_500).contains(&n) => Some(n as u32),
            Some(_) => {
                f.fail("days_old", "must be an integer from 1 to 36500");
                None
            }
            None => None,
        };
        let dry_run = f.opt_bool("dry_run").unwrap_or(false);
        let wait = f.opt_bool("wait").unwrap_or(false);
        let platform = if f.has("platform") { f.platform() } else { None };
        f.finish(|| Some(ArchiveRequest { days_old, dry_run, platform, wait }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let body = json!({"platform": "Bad Slug!", "user_message": "", "processing_time_ms": -5, "metadata": [1], "kind": "x"});
        let errs = NewInteraction::parse(body.clone(), Utc::now()).unwrap_err();
        assert_eq!(fields(&errs), ["platform", "kind", "user_message", "processing_time_ms", "metadata"]);
    }

    #[test]
    fn defaults_and_hex_import() {
        let wf = json!({"nodes": []});
        let hex = hex::encode(workflow::gzip(&workflow::compact(&wf)));
        let n = NewInteraction::parse(
            json!({"platform": "n8n", "user_message": "hi", "workflow_gzip_hex": hex}),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(n.kind, Kind::Conversation);
        assert!(n.success);
        assert_eq!(n.workflow, wf.as_object().map(WorkflowText::of_map));
        let both = json!({"platform": "n8n", "user_message": "hi", "workflow": {}, "workflow_gzip_hex": hex});
        assert_eq!(fields(&NewInteraction::parse(both, Utc::now()).unwrap_err()), ["workflow_gzip_hex"]);
    }

    #[test]
    fn created_at_in_the_future_is_refused() {
        let now = Utc::now();
        let later = (now + chrono::Duration::hours(1)).to_rfc3339();
        let body = json!({"platform": "n8n", "user_message": "hi", "created_at": later});
        assert_eq!(fields(&NewInteraction::parse(body.clone(), now).unwrap_err()), ["created_at"]);
    }

    #[test]
    fn created_at_before_year_0000_in_utc_is_refused() {
        let now = Utc::now();
        let body = json!({"platform": "n8n", "user_message": "hi", "created_at": "0000-01-01T00:00:00+01:00"});
        assert_eq!(fields(&NewInteraction::parse(body, now).unwrap_err()), ["created_at"]);
        let body = json!({"platform": "n8n", "user_message": "hi", "created_at": "0000-01-01T00:00:00Z"});
        assert!(NewInteraction::parse(body, now).is_ok(), "year 0000 itself is fine");
    }

    #[test]
    fn metadata_over_16k_is_refused() {
        let body = json!({"platform": "n8n", "user_message": "hi", "metadata": {"x": "y".repeat(16 * 1024)}});
        assert_eq!(fields(&NewInteraction::parse(body.clone(), Utc::now()).unwrap_err()), ["metadata"]);
    }

    #[test]
    fn content_hash_ignores_key_order_and_sees_changes() {
        let now = Utc::now();
        let a =
            NewInteraction::parse(json!({"platform": "n8n", "user_message": "hi", "workflow": {"a": 1, "b": 2}}), now)
                .unwrap();
        let b =
            NewInteraction::parse(json!({"workflow": {"b": 2, "a": 1}, "user_message": "hi", "platform": "n8n"}), now)
                .unwrap();
        let c =
            NewInteraction::parse(json!({"platform": "n8n", "user_message": "hi!", "workflow": {"a": 1, "b": 2}}), now)
                .unwrap();
        let u = UserId::parse("u").unwrap();
        assert_eq!(a.content_hash(&u), b.content_hash(&u));
        assert_ne!(a.content_hash(&u), c.content_hash(&u));
    }

    #[test]
    fn hashes_and_stored_text_are_those_of_earlier_versions() {
        // Values computed by the code before workflows were parsed into trees (commit d92e097):
        // a stored record's hash must still match its replay, and its text must not change.
        let text = r#"{"platform": "n8n", "user_message": "h\u00e9llo \"there\"", "ai_response": "ok", "intent": "create", "workflow": {"nodes": [{"id": "a\u00e9", "position": [240, -300.5, 1e21, 0.1]}], "b": null, "a": true, "b": {"z": [], "y": {}}, "k": 18446744073709551615}, "success": false, "error_message": "boom", "processing_time_ms": 42, "model_version": "m1", "metadata": {"z": 1, "a": [1.5]}, "training_consent": true, "created_at": "2026-01-02T03:04:05Z"}"#;
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let user = UserId::parse("user-1").unwrap();
        let Some(BodyText::Parsed(Parsed { result: Ok(by_text), .. })) =
            NewInteraction::parse_text(text.as_bytes(), now)
        else {
            panic!("parses")
        };
        let by_value = NewInteraction::parse(serde_json::from_str(text).unwrap(), now).unwrap();
        assert_eq!(by_text, by_value);
        for n in [&by_text, &by_value] {
            assert_eq!(n.content_hash(&user), "ab8ca97eecce8d17a2d49a80b7d36faac8049fe3133d65a486bfbd8768662bd3");
            assert_eq!(
                std::str::from_utf8(n.workflow.as_ref().unwrap().compact()).unwrap(),
                r#"{"nodes":[{"id":"aé","position":[240,-300.5,1e+21,0.1]}],"b":{"z":[],"y":{}},"a":true,"k":18446744073709551615}"#
            );
        }
        assert_eq!(
            super::super::json::canonical_hash(&serde_json::from_str(text).unwrap()),
            "6194e89555a65be00743e7978651d9c0d51b4b9942cf3359400eb30c747fe5cb"
        );
    }

    #[test]
    fn integers_may_be_written_as_numbers_without_a_fraction() {
        let id = Id::new().to_string();
        let fb =
            NewFeedback::parse(&json!({"interaction_id": id, "feedback_type": "thumbs_up", "sentiment_score": 4.0}))
                .unwrap();
        assert_eq!(fb.sentiment_score, Some(4));
        let bad =
            NewFeedback::parse(&json!({"interaction_id": id, "feedback_type": "thumbs_up", "sentiment_score": 4.5}));
        assert_eq!(fields(&bad.unwrap_err()), ["sentiment_score"]);
        let metric = |size: Value| NewMetric::parse(&json!({"platform": "n8n", "model": "m", "dataset_size": size}));
        assert_eq!(metric(json!(1200.0)).unwrap().dataset_size, 1200);
        assert_eq!(metric(json!(i64::MAX)).unwrap().dataset_size, i64::MAX);
        // Stored signed: a larger count would come back negative, so it is refused.
        assert_eq!(fields(&metric(json!(i64::MAX as u64 + 1)).unwrap_err()), ["dataset_size"]);
        assert_eq!(fields(&metric(json!(-1.0)).unwrap_err()), ["dataset_size"]);
        assert_eq!(fields(&metric(json!(1e30)).unwrap_err()), ["dataset_size"]);
    }

    #[test]
    fn feedback_rules() {
        let id = Id::new().to_string();
        let errs = NewFeedback::parse(&json!({"interaction_id": id, "feedback_type": "edit", "sentiment_score": 6,
            "comment": "x".repeat(4001), "issue_category": "nope"}))
        .unwrap_err();
        assert_eq!(fields(&errs), ["sentiment_score", "comment", "corrected_workflow", "issue_category"]);
        assert!(
            NewFeedback::parse(&json!({"interaction_id": id, "feedback_type": "thumbs_up", "sentiment_score": 5}))
                .is_ok()
        );
        assert_eq!(fields(&NewFeedback::parse(&json!({})).unwrap_err()), ["interaction_id", "feedback_type"]);
    }
}
