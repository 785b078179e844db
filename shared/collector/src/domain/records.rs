//! The stored records and the rules that change them (feedback summary, facts for counters).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::counters::{PlatformCounters, RecordFacts};
use super::diff::Diff;
use super::types::{Id, Kind, Platform, UserId};
use super::validators::Issue;
use super::workflow::{PayloadError, StoredWorkflow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackType {
    ThumbsUp,
    ThumbsDown,
    Edit,
    Report,
}

impl FeedbackType {
    pub fn parse(raw: &str) -> Option<FeedbackType> {
        Some(match raw {
            "thumbs_up" => FeedbackType::ThumbsUp,
            "thumbs_down" => FeedbackType::ThumbsDown,
            "edit" => FeedbackType::Edit,
            "report" => FeedbackType::Report,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackType::ThumbsUp => "thumbs_up",
            FeedbackType::ThumbsDown => "thumbs_down",
            FeedbackType::Edit => "edit",
            FeedbackType::Report => "report",
        }
    }
    /// thumbs_up counts positive; thumbs_down and report negative; an edit neither (it carries a correction).
    pub fn is_positive(self) -> bool {
        self == FeedbackType::ThumbsUp
    }
    pub fn is_negative(self) -> bool {
        matches!(self, FeedbackType::ThumbsDown | FeedbackType::Report)
    }
}

/// The feedback summary kept on the interaction, updated in the same write as the feedback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackSummary {
    pub feedback_count: i64,
    pub last_feedback_type: Option<FeedbackType>,
    pub positive_feedback: i64,
    pub negative_feedback: i64,
    /// The latest feedback is negative and carries no correction.
    pub latest_negative: bool,
    /// A passed validation scoring >= 80 is linked to the interaction.
    pub good_validation: bool,
    /// The JSON bytes of the feedback and validations linked to the interaction, held under
    /// [`MAX_LINK_BYTES`]. (Missing in items written before it was kept: 0.)
    #[serde(default)]
    pub link_bytes: i64,
}

impl FeedbackSummary {
    pub fn has_feedback(&self) -> bool {
        self.feedback_count > 0
    }

    pub fn with_feedback(&self, fb: &Feedback) -> FeedbackSummary {
        let mut s = self.clone();
        s.feedback_count += 1;
        s.last_feedback_type = Some(fb.feedback_type);
        s.positive_feedback += fb.feedback_type.is_positive() as i64;
        s.negative_feedback += fb.feedback_type.is_negative() as i64;
        s.latest_negative = fb.feedback_type.is_negative() && fb.corrected_workflow.is_none();
        s.link_bytes = s.link_bytes.saturating_add(NewLink::Feedback(fb).json_bytes());
        s
    }

    pub fn with_validation(&self, v: &ValidationLog) -> FeedbackSummary {
        let mut s = self.clone();
        s.good_validation |= v.is_good();
        s.link_bytes = s.link_bytes.saturating_add(NewLink::Validation(v).json_bytes());
        s
    }
}

/// The most JSON (in bytes) the feedback and validations of one interaction may add up to.
/// Every read of the record (its GET, an export line, an archive line) carries all of its links,
/// so without a bound one caller could make a record of any size. 16 MiB is room for thousands
/// of ratings or a dozen validations of very large workflows.
pub const MAX_LINK_BYTES: i64 = 16 * 1024 * 1024;

/// Adding a link would take the interaction's links past [`MAX_LINK_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", LinksFull::MESSAGE)]
pub struct LinksFull;

impl LinksFull {
    pub const MESSAGE: &'static str = "the interaction's feedback and validations have reached their limit of 16 MiB of JSON; no more can be linked to it";
}

/// A feedback or a linked validation being added to a hot interaction.
#[derive(Debug, Clone, Copy)]
pub enum NewLink<'a> {
    Feedback(&'a Feedback),
    Validation(&'a ValidationLog),
}

impl NewLink<'_> {
    /// The bytes of the link's JSON, as its record's answers and lines carry it.
    pub fn json_bytes(&self) -> i64 {
        match self {
            NewLink::Feedback(fb) => json_len(fb),
            NewLink::Validation(v) => json_len(v),
        }
    }
}

/// The bytes of `v`'s compact JSON, counted as it is written (nothing is kept).
fn json_len<T: Serialize + ?Sized>(v: &T) -> i64 {
    let mut n = ByteCount(0);
    // Serializing these plain values cannot fail, and a counter takes every byte.
    let _ = serde_json::to_writer(&mut n, v);
    i64::try_from(n.0).unwrap_or(i64::MAX)
}

/// A writer that only counts what is written to it.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What adding a link changes: the interaction's new summary, and the delta its platform's
/// counters take (the record's contribution after, less before). Both hot stores write exactly
/// this, in the same transaction as the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkChange {
    pub summary: FeedbackSummary,
    pub counters: PlatformCounters,
}

/// A page of records bounded in bytes as well as in count: the first record always goes on (a
/// page is never empty while records remain), later ones while their bytes fit what is left.
#[derive(Debug, Clone)]
pub struct PageBudget {
    left: u64,
    taken: usize,
}

impl PageBudget {
    pub fn new(bytes: u64) -> PageBudget {
        PageBudget { left: bytes, taken: 0 }
    }

    /// Whether a record of `bytes` goes on the page (and if so, count it).
    pub fn admits(&mut self, bytes: u64) -> bool {
        if self.taken > 0 && bytes > self.left {
            return false;
        }
        self.left = self.left.saturating_sub(bytes);
        self.taken += 1;
        true
    }
}

/// The bytes one page of a store scan (records with their links: exports, the right of access,
/// the archive run) holds at most besides its first record, by [`Interaction::scan_bytes`]. A
/// record can carry a 6 MiB text, a workflow inflating to tens of MiB and 16 MiB of links, so
/// pages of a fixed count could take gigabytes; ordinary records (a few KB) never reach it.
pub const SCAN_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// An interaction as the hot store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: Id,
    pub user_id: UserId,
    pub platform: Platform,
    pub kind: Kind,
    pub user_message: String,
    pub ai_response: Option<String>,
    pub intent: Option<String>,
    pub workflow: Option<StoredWorkflow>,
    pub success: bool,
    pub error_message: Option<String>,
    pub processing_time_ms: Option<u64>,
    pub model_version: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub training_consent: bool,
    pub created_at: DateTime<Utc>,
    /// Canonical hash of the request content: same id + same hash is a replay, else a conflict.
    pub content_hash: String,
    pub summary: FeedbackSummary,
}

/// Fixed per-record overhead counted in hot bytes (ids, timestamps, flags, index entries).
const RECORD_OVERHEAD_BYTES: i64 = 256;

impl Interaction {
    /// The change adding `link` makes to this (hot) record; [`LinksFull`] when the record's
    /// links would pass [`MAX_LINK_BYTES`].
    pub fn linking(&self, link: NewLink<'_>) -> Result<LinkChange, LinksFull> {
        let summary = match link {
            NewLink::Feedback(fb) => self.summary.with_feedback(fb),
            NewLink::Validation(v) => self.summary.with_validation(v),
        };
        if summary.link_bytes > MAX_LINK_BYTES {
            return Err(LinksFull);
        }
        let before = self.facts(false).contribution();
        let after = self.facts_with(&summary, false).contribution();
        Ok(LinkChange { summary, counters: PlatformCounters::delta(&before, &after) })
    }

    /// Stored size: what this record costs in the hot store (its text, payload and overhead).
    pub fn stored_bytes(&self) -> i64 {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() as i64);
        RECORD_OVERHEAD_BYTES
            + self.user_message.len() as i64
            + opt(&self.ai_response)
            + opt(&self.intent)
            + opt(&self.error_message)
            + opt(&self.model_version)
            + self.metadata.as_ref().map_or(0, json_len)
            + self.workflow.as_ref().map_or(0, StoredWorkflow::stored_bytes)
    }

    /// About the bytes of this record's JSON without its links: [`Self::stored_bytes`] with the
    /// workflow counted inflated, as an answer carries it.
    pub fn answer_bytes(&self) -> u64 {
        let wf = self.workflow.as_ref();
        let stored = wf.map_or(0, StoredWorkflow::stored_bytes);
        let inflated = wf.map_or(0, |w| w.original_bytes);
        u64::try_from(self.stored_bytes() - stored + inflated).unwrap_or(0)
    }

    /// About the bytes of this record with its links, as a scan page holds them.
    pub fn scan_bytes(&self) -> u64 {
        self.answer_bytes().saturating_add(u64::try_from(self.summary.link_bytes).unwrap_or(0))
    }

    pub fn facts(&self, archived: bool) -> RecordFacts {
        self.facts_with(&self.summary, archived)
    }

    /// [`Self::facts`] as if the record's summary were `summary`.
    fn facts_with(&self, summary: &FeedbackSummary, archived: bool) -> RecordFacts {
        let wf = self.workflow.as_ref();
        let compressed = wf.is_some_and(|w| w.compressed);
        RecordFacts {
            success: self.success,
            archived,
            positive_feedback: summary.positive_feedback,
            negative_feedback: summary.negative_feedback,
            feedback_count: summary.feedback_count,
            latest_negative: summary.latest_negative,
            good_validation: summary.good_validation,
            stored_bytes: self.stored_bytes(),
            consent: self.training_consent,
            compressed,
            saved_bytes: wf.filter(|w| w.compressed).map_or(0, |w| w.original_bytes - w.stored_bytes()),
        }
    }

    /// The answer to a (re)played ingest of this record.
    pub fn receipt(&self) -> IngestReceipt {
        IngestReceipt {
            interaction_id: self.id,
            created_at: self.created_at,
            compressed: self.workflow.as_ref().is_some_and(|w| w.compressed),
            original_bytes: self.workflow.as_ref().map_or(0, |w| w.original_bytes),
            stored_bytes: self.workflow.as_ref().map_or(0, StoredWorkflow::stored_bytes),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestReceipt {
    #[schema(value_type = String, format = Uuid)]
    pub interaction_id: Id,
    pub created_at: DateTime<Utc>,
    pub compressed: bool,
    pub original_bytes: i64,
    pub stored_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feedback {
    #[schema(value_type = String, format = Uuid)]
    pub feedback_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub interaction_id: Id,
    /// Who submitted it (the owner, or the service/admin acting for them).
    #[schema(value_type = String)]
    pub submitted_by: UserId,
    pub feedback_type: FeedbackType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_score: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub corrected_workflow: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_category: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationLog {
    #[schema(value_type = String, format = Uuid)]
    pub validation_id: Id,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub interaction_id: Option<Id>,
    #[schema(value_type = String)]
    pub user_id: UserId,
    #[schema(value_type = String)]
    pub platform: Platform,
    pub passed: bool,
    pub score: u32,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub diff: Option<Diff>,
    pub user_edited: bool,
    pub workflow: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_workflow: Option<Value>,
    pub duration_ms: f64,
    pub created_at: DateTime<Utc>,
}

impl ValidationLog {
    /// Counts towards a quality example: passed and scoring >= 80.
    pub fn is_good(&self) -> bool {
        self.passed && self.score >= 80
    }

    /// Its JSON bytes, as a page of a store scan holds them (a [`PageBudget`]).
    pub fn scan_bytes(&self) -> u64 {
        u64::try_from(json_len(self)).unwrap_or(u64::MAX)
    }
}

/// An interaction with everything linked to it: the API's record, an archive line, an access-export line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FullRecord {
    #[schema(value_type = String, format = Uuid)]
    pub interaction_id: Id,
    #[schema(value_type = String)]
    pub user_id: UserId,
    #[schema(value_type = String)]
    pub platform: Platform,
    pub kind: Kind,
    pub user_message: String,
    pub ai_response: Option<String>,
    pub intent: Option<String>,
    pub workflow: Option<Value>,
    pub success: bool,
    pub error_message: Option<String>,
    pub processing_time_ms: Option<u64>,
    pub model_version: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub training_consent: bool,
    pub created_at: DateTime<Utc>,
    pub has_feedback: bool,
    pub last_feedback_type: Option<FeedbackType>,
    pub positive_feedback: i64,
    pub negative_feedback: i64,
    pub archived: bool,
    /// Oldest first.
    pub feedback: Vec<Feedback>,
    /// Oldest first.
    pub validations: Vec<ValidationLog>,
}

impl FullRecord {
    pub fn build(
        rec: &Interaction,
        feedback: Vec<Feedback>,
        validations: Vec<ValidationLog>,
        archived: bool,
    ) -> Result<FullRecord, PayloadError> {
        Ok(FullRecord {
            interaction_id: rec.id,
            user_id: rec.user_id.clone(),
            platform: rec.platform.clone(),
            kind: rec.kind,
            user_message: rec.user_message.clone(),
            ai_response: rec.ai_response.clone(),
            intent: rec.intent.clone(),
            workflow: rec.workflow.as_ref().map(StoredWorkflow::unpack).transpose()?,
            success: rec.success,
            error_message: rec.error_message.clone(),
            processing_time_ms: rec.processing_time_ms,
            model_version: rec.model_version.clone(),
            metadata: rec.metadata.clone(),
            training_consent: rec.training_consent,
            created_at: rec.created_at,
            has_feedback: rec.summary.has_feedback(),
            last_feedback_type: rec.summary.last_feedback_type,
            positive_feedback: rec.summary.positive_feedback,
            negative_feedback: rec.summary.negative_feedback,
            archived,
            feedback,
            validations,
        })
    }

    /// The latest feedback that carries a corrected workflow.
    pub fn latest_correction(&self) -> Option<&Value> {
        self.feedback.iter().rev().find_map(|f| f.corrected_workflow.as_ref())
    }

    pub fn latest_feedback(&self) -> Option<&Feedback> {
        self.feedback.last()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CuratedExample {
    #[schema(value_type = String, format = Uuid)]
    pub example_id: Id,
    #[schema(value_type = String)]
    pub platform: Platform,
    pub user_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub usage_count: i64,
    #[schema(value_type = String)]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

impl CuratedExample {
    /// The example as a record an export can take: successful, consenting, split as its own
    /// "user" (`curated:{id}`) so examples spread over both sides of a split.
    pub fn as_record(&self) -> FullRecord {
        FullRecord {
            interaction_id: self.example_id,
            user_id: UserId(format!("curated:{}", self.example_id)),
            platform: self.platform.clone(),
            kind: if self.workflow.is_some() { Kind::WorkflowGeneration } else { Kind::Conversation },
            user_message: self.user_message.clone(),
            ai_response: self.ai_response.clone(),
            intent: None,
            workflow: self.workflow.clone(),
            success: true,
            error_message: None,
            processing_time_ms: None,
            model_version: None,
            metadata: None,
            training_consent: true,
            created_at: self.created_at,
            has_feedback: false,
            last_feedback_type: None,
            positive_feedback: 0,
            negative_feedback: 0,
            archived: false,
            feedback: vec![],
            validations: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrainingMetric {
    #[schema(value_type = String, format = Uuid)]
    pub metric_id: Id,
    #[schema(value_type = String)]
    pub platform: Platform,
    pub model: String,
    pub dataset_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub metrics: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[schema(value_type = String)]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb(t: FeedbackType, corrected: bool) -> Feedback {
        super::super::fixtures::feedback(t, corrected.then(|| serde_json::json!({"a": 1})))
    }

    fn interaction_for_links() -> Interaction {
        Interaction {
            id: Id::new(),
            user_id: UserId::parse("u").expect("user"),
            platform: Platform::parse("n8n").expect("platform"),
            kind: Kind::WorkflowGeneration,
            user_message: "make a flow".into(),
            ai_response: None,
            intent: None,
            workflow: None,
            success: true,
            error_message: None,
            processing_time_ms: None,
            model_version: None,
            metadata: None,
            training_consent: true,
            created_at: Utc::now(),
            content_hash: String::new(),
            summary: FeedbackSummary::default(),
        }
    }

    #[test]
    fn a_link_changes_the_summary_and_moves_the_counters_by_the_difference() {
        let rec = interaction_for_links();
        let first = rec.linking(NewLink::Feedback(&fb(FeedbackType::ThumbsUp, false))).expect("room");
        assert_eq!(first.summary, rec.summary.with_feedback(&fb(FeedbackType::ThumbsUp, false)));
        assert_eq!((first.counters.with_feedback, first.counters.positive_feedback, first.counters.total), (1, 1, 0));
        let rated = Interaction { summary: first.summary, ..rec };
        let second = rated.linking(NewLink::Feedback(&fb(FeedbackType::ThumbsDown, false))).expect("room");
        assert_eq!((second.counters.with_feedback, second.counters.negative_feedback), (0, 1), "already had feedback");
        assert_eq!(second.counters.hot_bytes, 0, "a link does not change the record's stored size");
    }

    #[test]
    fn links_count_their_json_and_stop_at_the_limit() {
        let rec = Interaction { summary: FeedbackSummary::default(), ..interaction_for_links() };
        let up = fb(FeedbackType::ThumbsUp, false);
        let first = rec.linking(NewLink::Feedback(&up)).expect("room");
        assert_eq!(first.summary.link_bytes, serde_json::to_vec(&up).expect("json").len() as i64);
        let mut big = fb(FeedbackType::Edit, false);
        big.corrected_workflow = Some(serde_json::json!({ "text": "x".repeat(1024 * 1024) }));
        let big_bytes = NewLink::Feedback(&big).json_bytes();
        assert_eq!(big_bytes, serde_json::to_vec(&big).expect("json").len() as i64);
        let near = Interaction {
            summary: FeedbackSummary { link_bytes: MAX_LINK_BYTES - big_bytes, ..FeedbackSummary::default() },
            ..interaction_for_links()
        };
        let full = near.linking(NewLink::Feedback(&big)).expect("exactly at the limit fits");
        assert_eq!(full.summary.link_bytes, MAX_LINK_BYTES);
        let at_limit = Interaction { summary: full.summary, ..interaction_for_links() };
        assert_eq!(at_limit.linking(NewLink::Feedback(&up)), Err(LinksFull), "one byte past it does not");
    }

    #[test]
    fn a_page_budget_takes_the_first_record_whatever_its_size_then_what_fits() {
        let mut b = PageBudget::new(100);
        assert!(b.admits(250), "the first record always goes on");
        assert!(!b.admits(1), "nothing is left after it");
        let mut b = PageBudget::new(100);
        assert!(b.admits(60));
        assert!(b.admits(40), "exactly the budget fits");
        assert!(!b.admits(1));
        let mut b = PageBudget::new(100);
        assert!(b.admits(60));
        assert!(!b.admits(41));
        assert!(b.admits(40), "a smaller record after a refused one still fits (callers stop at the first refusal)");
    }

    #[test]
    fn summary_counts_positive_and_negative_and_tracks_latest() {
        let s = FeedbackSummary::default()
            .with_feedback(&fb(FeedbackType::ThumbsUp, false))
            .with_feedback(&fb(FeedbackType::Edit, true))
            .with_feedback(&fb(FeedbackType::Report, false));
        assert_eq!((s.feedback_count, s.positive_feedback, s.negative_feedback), (3, 1, 1));
        assert_eq!(s.last_feedback_type, Some(FeedbackType::Report));
        assert!(s.latest_negative);
        let s = s.with_feedback(&fb(FeedbackType::ThumbsDown, true));
        assert!(!s.latest_negative, "a negative feedback with a correction is usable");
        let s = s.with_feedback(&fb(FeedbackType::Edit, true));
        assert_eq!((s.positive_feedback, s.negative_feedback), (1, 2), "an edit is neither");
    }
}
