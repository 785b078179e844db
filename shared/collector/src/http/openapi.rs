//! The OpenAPI document, as the API really answers (`/openapi.json`, browsable at `/docs`).
//!
//! Each handler's `#[utoipa::path]` names its request body, its parameters with their bounds and
//! the statuses only it answers (403 on a role check, 404, its 409s). What every route shares is
//! added here, once, by [`CommonResponses`], from what the operation takes:
//! - every operation: 500 `internal`;
//! - every operation that needs an identity (all but `GET /api/health` and the document
//!   itself): 401 `unauthenticated`, and 503 `unavailable` with `Retry-After` (the store);
//! - a request body: 400 `invalid_json` / `validation_failed` and 413 `payload_too_large`;
//! - a query or `{platform}` parameter: 400 `validation_failed`;
//! - every error status: the [`ErrorBody`] schema.
//!
//! The request body schemas say what the parsers (`domain::input`) accept, no more and no less,
//! so that a client (or a fuzzer) that follows them is answered 2xx: a rule a schema cannot say
//! (a time not in the future, a role's own `user_id`) is in the operation's description.
//!
//! A platform a request names must be known (CONTRACT section 7a): the served document lists the
//! configured ones (`PLATFORMS`) in the [`KnownPlatform`] component ([`document`]); platforms an
//! admin adds are accepted too (`GET /api/platforms` lists them all).

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Content, HttpMethod, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::config::Config;
use crate::domain::types::FieldError;

/// A platform slug, as `Platform::parse` takes it.
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,31}$";
/// Holds a character that is not white space (Rust's `char::is_whitespace`, which `trim` uses):
/// required text fields must not be blank.
pub const NOT_BLANK_PATTERN: &str =
    "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
/// A user id (`UserId::parse`): no control characters (1-256 characters, by `minLength`/`maxLength`).
pub const USER_ID_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// Every error answer: `{"error": {"code", "message", "details"?}}` (CONTRACT section 2).
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "1 field(s) failed validation",
    "details": [{"field": "platform", "message": "is required"}]}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error object (also each failed item of a batch).
#[derive(ToSchema)]
pub struct ErrorDetail {
    /// `invalid_json`, `validation_failed`, `unauthenticated`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `archiving_disabled`, `archive_running`,
    /// `platform_limit`, `payload_too_large`, `unavailable` or `internal`.
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    pub code: String,
    /// For a human; never internals, never the values sent.
    pub message: String,
    /// `validation_failed`: one entry per problem, all at once.
    #[schema(required = false)]
    pub details: Option<Vec<FieldError>>,
}

/// A platform a request names: one of the known platforms. The served document lists the
/// configured ones (`PLATFORMS`); platforms an admin added (`POST /api/platforms`) are accepted
/// too. Any other slug answers 400 `validation_failed` naming the known platforms.
pub struct KnownPlatform;

impl PartialSchema for KnownPlatform {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(SLUG_PATTERN))
            .description(Some("A known platform (GET /api/platforms)."))
            .into()
    }
}

impl ToSchema for KnownPlatform {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KnownPlatform")
    }
}

/// Any JSON value but null.
pub struct NotNull;

impl PartialSchema for NotNull {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Array, Type::String, Type::Number, Type::Boolean]))
            .description(Some("Any JSON value but null."))
            .into()
    }
}

impl ToSchema for NotNull {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NotNull")
    }
}

/// `POST /api/interactions` (and each item of a batch).
#[derive(ToSchema)]
#[schema(example = json!({"platform": "n8n", "kind": "workflow_generation", "user_message": "Post new Gmail messages to Slack",
    "ai_response": "Here is your workflow.", "workflow": {"nodes": [{"name": "Start", "type": "n8n-nodes-base.gmailTrigger", "parameters": {}}],
    "connections": {}}}))]
pub struct InteractionInput {
    #[schema(value_type = KnownPlatform)]
    pub platform: String,
    /// Not blank.
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub user_message: String,
    /// `conversation` when absent.
    pub kind: Option<crate::domain::types::Kind>,
    pub ai_response: Option<String>,
    pub intent: Option<String>,
    /// A JSON object; stored gzip-compressed past `COMPRESSION_THRESHOLD_KB`. Nesting at most 64.
    #[schema(value_type = Option<Object>)]
    pub workflow: Option<Map<String, Value>>,
    /// Import from the older system, instead of `workflow`: hex of gzip of the workflow JSON (an
    /// object), at most 64 MiB inflated. Not both.
    pub workflow_gzip_hex: Option<String>,
    /// `true` when absent.
    pub success: Option<bool>,
    pub error_message: Option<String>,
    #[schema(minimum = 0, maximum = 18446744073709551615_u64)]
    pub processing_time_ms: Option<u64>,
    pub model_version: Option<String>,
    /// A JSON object, at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// `DEFAULT_TRAINING_CONSENT` when absent.
    pub training_consent: Option<bool>,
    /// Client idempotency key: the same id with the same content again answers 200, with other
    /// content 409.
    #[schema(format = Uuid)]
    pub interaction_id: Option<String>,
    /// Whose interaction: required of a service or an admin; a user may omit it or give their own
    /// `sub` (another answers 403).
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub user_id: Option<String>,
    /// Service and admin only (a user sending it gets 403), for importing history; not in the
    /// future (400).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /api/interactions/batch`: each item is logged (or fails) alone, with its own status in
/// the answer, so an item may be any JSON value ([`InteractionInput`] is what succeeds).
#[derive(ToSchema)]
#[schema(example = json!({"interactions": [{"platform": "n8n", "user_id": "alice", "user_message": "hi"}]}))]
pub struct BatchInput {
    #[schema(min_items = 1, max_items = 100)]
    pub interactions: Vec<Value>,
}

/// The batch answer: one entry per item, in order.
#[derive(ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchItemDoc>,
}

/// One item's outcome: 201/200/202 with its id, or an error status with the error object.
#[derive(ToSchema)]
#[schema(as = BatchItem)]
pub struct BatchItemDoc {
    pub index: u32,
    pub status: u16,
    #[schema(required = false, format = Uuid)]
    pub interaction_id: Option<String>,
    #[schema(required = false)]
    pub error: Option<ErrorDetail>,
}

/// `202` of `POST /api/interactions` with `ENABLE_DATA_COLLECTION=false`: nothing is stored.
#[derive(ToSchema)]
pub struct NotCollected {
    #[schema(value_type = bool, example = false)]
    pub collected: bool,
}

/// `GET /api/interactions`: newest first.
#[derive(ToSchema)]
pub struct InteractionPage {
    pub items: Vec<crate::domain::records::FullRecord>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /api/workflow/validate`.
#[derive(ToSchema)]
#[schema(example = json!({"platform": "zapier", "workflow": {"trigger": {"app": "gmail", "event": "new_email"}, "actions": []}}))]
pub struct ValidateInput {
    #[schema(value_type = KnownPlatform)]
    pub platform: String,
    /// Any JSON but null: a non-object is the validator's `not_an_object` error, not a 400.
    #[schema(value_type = NotNull)]
    pub workflow: Value,
    /// The caller's own interaction (admin and service: any); unknown: 404; archived, or its
    /// feedback and validations at their 16 MiB of JSON: 409.
    #[schema(format = Uuid)]
    pub interaction_id: Option<String>,
    /// When given, the answer's `diff` goes from it to `workflow`.
    pub original_workflow: Option<Value>,
    pub user_edited: Option<bool>,
    /// Whose validation, without `interaction_id`: required of a service; a user may only name
    /// themselves (403).
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub user_id: Option<String>,
}

/// `POST /api/feedback/submit`. `edit` feedback needs `corrected_workflow`.
#[derive(ToSchema)]
#[schema(example = json!({"interaction_id": "01936f0e-7b1c-7d4e-9a3b-2c1d0e9f8a7b", "feedback_type": "thumbs_up", "sentiment_score": 5}))]
pub struct FeedbackInput {
    /// Unknown or someone else's: 404; archived, or its feedback and validations at their 16 MiB
    /// of JSON: 409.
    #[schema(format = Uuid)]
    pub interaction_id: String,
    pub feedback_type: crate::domain::records::FeedbackType,
    #[schema(minimum = 1, maximum = 5)]
    pub sentiment_score: Option<u8>,
    #[schema(max_length = 4000)]
    pub comment: Option<String>,
    /// Required for `edit`.
    #[schema(value_type = Option<Object>)]
    pub corrected_workflow: Option<Map<String, Value>>,
    pub issue_category: Option<IssueCategory>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum IssueCategory {
    IncorrectWorkflow,
    MissingSteps,
    WrongPlatform,
    InvalidSyntax,
    Incomplete,
    Other,
}

/// `201` of `POST /api/feedback/submit`.
#[derive(ToSchema)]
pub struct FeedbackReceipt {
    #[schema(format = Uuid)]
    pub feedback_id: String,
    #[schema(format = Uuid)]
    pub interaction_id: String,
}

/// `POST /api/feedback/archive`; the body may be empty.
#[derive(ToSchema)]
#[schema(example = json!({"dry_run": true}))]
pub struct ArchiveInput {
    /// Archive records older than this many days (default `DATA_RETENTION_DAYS`).
    #[schema(minimum = 1, maximum = 36500)]
    pub days_old: Option<u32>,
    /// List what would be written; change nothing.
    pub dry_run: Option<bool>,
    /// Only this platform.
    #[schema(value_type = Option<KnownPlatform>)]
    pub platform: Option<String>,
    /// Wait for a run that holds the archive lease instead of answering 409 `archive_running`.
    pub wait: Option<bool>,
}

/// `POST /api/examples`: a `workflow` or an `ai_response` (or both).
#[derive(ToSchema)]
#[schema(example = json!({"platform": "make", "user_message": "Copy new rows to a sheet", "ai_response": "Use the Google Sheets module.", "tags": ["sheets"]}))]
pub struct ExampleInput {
    #[schema(value_type = KnownPlatform)]
    pub platform: String,
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub user_message: String,
    #[schema(value_type = Option<Object>)]
    pub workflow: Option<Map<String, Value>>,
    pub ai_response: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// `201` of `POST /api/examples`.
#[derive(ToSchema)]
pub struct ExampleReceipt {
    #[schema(format = Uuid)]
    pub example_id: String,
}

/// `GET /api/examples`.
#[derive(ToSchema)]
pub struct ExampleList {
    pub items: Vec<crate::domain::records::CuratedExample>,
}

/// `DELETE /api/examples/{id}`: `{"deleted": {"examples": 1}}`.
#[derive(ToSchema)]
pub struct ExampleDeleted {
    pub deleted: ExampleCount,
}

#[derive(ToSchema)]
pub struct ExampleCount {
    #[schema(minimum = 1, maximum = 1)]
    pub examples: u32,
}

/// `POST /api/training-metrics`.
#[derive(ToSchema)]
#[schema(example = json!({"platform": "n8n", "model": "gpt-4o-mini-ft", "dataset_size": 1200, "metrics": {"loss": 0.41, "accuracy": 0.87}}))]
pub struct MetricInput {
    #[schema(value_type = KnownPlatform)]
    pub platform: String,
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub model: String,
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub dataset_size: u64,
    pub run_id: Option<String>,
    /// Named numbers (loss, accuracy, ...).
    #[schema(value_type = Option<std::collections::BTreeMap<String, f64>>)]
    pub metrics: Option<Map<String, Value>>,
    pub notes: Option<String>,
}

/// `201` of `POST /api/training-metrics`.
#[derive(ToSchema)]
pub struct MetricReceipt {
    #[schema(format = Uuid)]
    pub metric_id: String,
}

/// `GET /api/training-metrics`: newest first.
#[derive(ToSchema)]
pub struct MetricList {
    pub items: Vec<crate::domain::records::TrainingMetric>,
}

/// `format` of an export (default `openai`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ExportFormat {
    Openai,
    OpenaiDpo,
    Bedrock,
}

/// `split` of an export.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ExportSplit {
    Train,
    Validation,
}

/// What a DELETE answers: counts, the exports that held a deleted record (CONTRACT 4a), plus
/// `pending_erasure` when archived lines were tombstoned (they leave the archive objects' bytes
/// at the next archive run).
#[derive(ToSchema)]
pub struct DeleteAnswer {
    pub deleted: crate::app::DeletedCounts,
    /// Ids of the exports (`GET /api/exports/{export_id}`) that held any deleted record, newest
    /// first; empty when none did.
    pub affected_exports: Vec<uuid::Uuid>,
    #[schema(required = false)]
    pub pending_erasure: Option<PendingErasure>,
}

#[derive(ToSchema)]
pub struct PendingErasure {
    pub archive_objects: u64,
}

/// `POST /api/platforms`: a new platform's slug (any slug: this is how one becomes known).
#[derive(ToSchema)]
#[schema(example = json!({"platform": "pipedream"}))]
pub struct PlatformInput {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub platform: String,
}

/// `GET /api/health`.
#[derive(ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    pub version: String,
    /// `local` or `aws`.
    pub backend: String,
}

/// Adds the responses every route shares (see the module's doc), the error body to every error
/// status, and the cross-field rules the derived schemas cannot say.
pub struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        // The error body is referenced by the responses added below; the others by parameters,
        // whose schemas utoipa does not collect.
        for (name, schema) in [
            (ErrorBody::name(), ErrorBody::schema()),
            (ErrorDetail::name(), ErrorDetail::schema()),
            (KnownPlatform::name(), KnownPlatform::schema()),
            (ExportFormat::name(), ExportFormat::schema()),
            (ExportSplit::name(), ExportSplit::schema()),
        ] {
            components.schemas.entry(name.into_owned()).or_insert(schema);
        }
        require_one_of(components, "ExampleInput", &[("workflow", Type::Object), ("ai_response", Type::String)]);
        require_for_edit(components);
        for item in doc.paths.paths.values_mut() {
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete] {
                if let Some(op) = operation_mut(item, &method) {
                    add_common(op);
                }
            }
        }
    }
}

fn operation_mut<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &HttpMethod,
) -> Option<&'a mut utoipa::openapi::path::Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// Whether an operation needs an identity: it does unless it says `security(())`.
pub fn is_public(op: &utoipa::openapi::path::Operation) -> bool {
    op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == Default::default()))
}

fn add_common(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    // An optional body (`Option<T>`) may be left out, but when sent it is the object, not null.
    if let Some(body) = op.request_body.as_mut().filter(|b| b.required != Some(utoipa::openapi::Required::True)) {
        for content in body.content.values_mut() {
            if let Some(RefOr::T(Schema::OneOf(one))) = &content.schema {
                let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
                if let [a, b] = one.items.as_slice() {
                    let inner = if is_null(a) {
                        Some(b)
                    } else if is_null(b) {
                        Some(a)
                    } else {
                        None
                    };
                    if let Some(inner) = inner.cloned() {
                        content.schema = Some(inner);
                    }
                }
            }
        }
    }
    let takes_body = op.request_body.is_some();
    let params = op.parameters.as_deref().unwrap_or_default();
    let takes_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let takes_platform = params.iter().any(|p| p.parameter_in == ParameterIn::Path && p.name == "platform");
    let public = is_public(op);
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| ResponseBuilder::new().description(description).into());
    };
    if takes_body {
        add("400", "`invalid_json` (the body is not JSON) or `validation_failed` (`details` lists every problem)");
        add("413", "`payload_too_large`: the body is over 6 MiB, nests deeper than 64, or holds too many values");
    }
    if takes_query || takes_platform {
        add("400", "`validation_failed`: a parameter is out of its bounds or names an unknown platform");
    }
    add("500", "`internal`: something failed on the server's side (the message never shows internals)");
    if !public {
        add("401", "`unauthenticated`: no bearer token, or one that does not verify");
        add("503", "`unavailable`: the store is throttled after retries; retry after `Retry-After` seconds");
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if status.as_str() >= "400" && response.content.is_empty() {
            response.content.insert("application/json".into(), Content::new(Some(Ref::from_schema_name("ErrorBody"))));
        }
        if status == "503" && !response.headers.contains_key("Retry-After") {
            let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
            let mut header = utoipa::openapi::header::Header::new(seconds);
            header.description = Some("seconds to wait before retrying".into());
            response.headers.insert("Retry-After".into(), header);
        }
    }
}

/// `name` (an object schema) also requires one of `fields`, present with its type (not null).
fn require_one_of(components: &mut utoipa::openapi::Components, name: &str, fields: &[(&str, Type)]) {
    let Some(base) = components.schemas.remove(name) else { return };
    let mut any = AnyOfBuilder::new();
    for (field, ty) in fields {
        any = any
            .item(ObjectBuilder::new().property(*field, ObjectBuilder::new().schema_type(ty.clone())).required(*field));
    }
    let all = utoipa::openapi::schema::AllOfBuilder::new().item(base).item(any);
    components.schemas.insert(name.to_owned(), all.into());
}

/// `FeedbackInput`: `edit` feedback requires a `corrected_workflow` object.
fn require_for_edit(components: &mut utoipa::openapi::Components) {
    let Some(base) = components.schemas.remove("FeedbackInput") else { return };
    let not_edit = ObjectBuilder::new().property(
        "feedback_type",
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["thumbs_up", "thumbs_down", "report"])),
    );
    let corrected = ObjectBuilder::new()
        .property("corrected_workflow", ObjectBuilder::new().schema_type(Type::Object))
        .required("corrected_workflow");
    let all = utoipa::openapi::schema::AllOfBuilder::new()
        .item(base)
        .item(AnyOfBuilder::new().item(not_edit).item(corrected));
    components.schemas.insert("FeedbackInput".to_owned(), all.into());
}

/// The bearer scheme, required by every operation that does not say `security(())`.
pub struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The document as [`super::ApiDoc`] generates it, stored as JSON text: `collector serve` and the
/// Lambda functions serve it without linking the document's builders (the `stats` function went
/// over its 10 MiB budget with them). `tests::the_stored_document_is_the_generated_one` holds it
/// to the generated document; `UPDATE_OPENAPI=1 cargo test -p collector --lib openapi` rewrites it
/// after a handler's `#[utoipa::path]` or a schema changes.
const STORED: &str = include_str!("openapi.json");

/// The [`KnownPlatform`] component of the served document: the configured platforms.
fn known_platform(config: &Config) -> Value {
    let names: Vec<&str> = config.platforms.iter().map(|p| p.as_str()).collect();
    json!({
        "type": "string",
        "description": format!(
            "A known platform: the configured ones ({}), or one an admin added (GET /api/platforms lists them all). \
             Any other slug answers 400 validation_failed.",
            names.join(", ")
        ),
        "enum": names,
    })
}

/// The document with the configured platforms listed in [`KnownPlatform`], built by utoipa (the
/// `/docs` UI and the tests; what is served is [`document_json`], the same document).
pub fn document(config: &Config) -> OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = super::ApiDoc::openapi();
    if let (Some(c), Ok(known)) = (doc.components.as_mut(), serde_json::from_value::<Schema>(known_platform(config))) {
        c.schemas.insert(KnownPlatform::name().into_owned(), known.into());
    }
    doc
}

/// The served document as JSON: the stored document with the configured platforms.
pub fn document_json(config: &Config) -> Value {
    // Parsed once per process; each answer adds the platforms to a copy.
    static PARSED: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| serde_json::from_str(STORED).unwrap_or_else(|_| json!({})));
    let mut doc = PARSED.clone();
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        schemas.insert(KnownPlatform::name().into_owned(), known_platform(config));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/openapi.json");

    /// The stored document is what the handlers' annotations generate. With `UPDATE_OPENAPI=1`
    /// the test rewrites it instead (then rebuild: it is compiled in).
    #[test]
    fn the_stored_document_is_the_generated_one() {
        use utoipa::OpenApi as _;
        let generated = serde_json::to_value(crate::http::ApiDoc::openapi()).expect("document");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let text = serde_json::to_string(&generated).expect("document");
            std::fs::write(STORED_PATH, format!("{text}\n")).expect("write src/http/openapi.json");
            return;
        }
        let stored: Value = serde_json::from_str(STORED).expect("src/http/openapi.json is JSON");
        assert!(
            stored == generated,
            "src/http/openapi.json is not the generated document: UPDATE_OPENAPI=1 cargo test -p collector --lib openapi"
        );
    }

    #[test]
    fn the_served_document_is_the_generated_one_with_the_configured_platforms() {
        for platforms in ["n8n,zapier,make", "airflow"] {
            let config = Config::from_lookup(|k| (k == "PLATFORMS").then(|| platforms.to_owned())).expect("config");
            let served = document_json(&config);
            assert_eq!(served, serde_json::to_value(document(&config)).expect("document"));
            let listed = &served["components"]["schemas"]["KnownPlatform"]["enum"];
            assert_eq!(listed, &json!(platforms.split(',').collect::<Vec<_>>()));
        }
    }
}
