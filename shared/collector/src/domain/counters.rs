//! Counters maintained on every write, so stats and readiness never scan records.
//!
//! Each hot or archived record contributes a fixed amount to its platform's counters,
//! computed from its [`RecordFacts`]. A write applies `contribution(after) - contribution(before)`;
//! adapters only add the delta, the rules live here.

use serde::{Deserialize, Serialize};

/// Per-platform totals. Signed so the same type carries deltas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformCounters {
    /// Active plus archived records.
    pub total: i64,
    pub archived: i64,
    pub successful: i64,
    /// Records with at least one feedback.
    pub with_feedback: i64,
    /// Positive feedback events (thumbs_up).
    pub positive_feedback: i64,
    /// Negative feedback events (thumbs_down, report).
    pub negative_feedback: i64,
    /// Records that are quality examples (see [`RecordFacts::is_quality`]).
    pub quality: i64,
    /// Curated examples (admin-made) for the platform; each counts as a quality example.
    pub curated_examples: i64,
    /// Stored size of active records.
    pub hot_bytes: i64,
    /// Compressed size of archive objects.
    pub archive_bytes: i64,
    /// Uncompressed JSONL size of archive objects: what the archived records would weigh hot.
    pub archived_raw_bytes: i64,
    pub archive_objects: i64,
    /// Active records whose workflow is stored compressed.
    pub compressed_records: i64,
    /// Bytes saved by compression on active records.
    pub compression_saved_bytes: i64,
    /// Records with training consent: what an export can produce, so readiness counts these.
    pub consented: i64,
    pub consented_successful: i64,
    pub consented_with_feedback: i64,
}

impl PlatformCounters {
    pub fn active(&self) -> i64 {
        self.total - self.archived
    }

    pub fn add(&mut self, d: &PlatformCounters) {
        for (f, x) in self.fields_mut().into_iter().zip(d.values()) {
            *f += x;
        }
    }

    pub fn negated(&self) -> PlatformCounters {
        let mut z = PlatformCounters::default();
        z.sub(self);
        z
    }

    pub fn sub(&mut self, d: &PlatformCounters) {
        let mut n = *d;
        for f in n.fields_mut() {
            *f = -*f;
        }
        self.add(&n);
    }

    /// `after - before`: the delta a write applies.
    pub fn delta(before: &PlatformCounters, after: &PlatformCounters) -> PlatformCounters {
        let mut d = *after;
        d.sub(before);
        d
    }

    pub fn is_zero(&self) -> bool {
        *self == PlatformCounters::default()
    }

    /// Column names, in the order of [`Self::values`]/[`Self::fields_mut`], for adapters that store one column per counter.
    pub const FIELDS: [&'static str; 17] = [
        "total",
        "archived",
        "successful",
        "with_feedback",
        "positive_feedback",
        "negative_feedback",
        "quality",
        "curated_examples",
        "hot_bytes",
        "archive_bytes",
        "archived_raw_bytes",
        "archive_objects",
        "compressed_records",
        "compression_saved_bytes",
        "consented",
        "consented_successful",
        "consented_with_feedback",
    ];

    pub fn values(&self) -> [i64; 17] {
        [
            self.total,
            self.archived,
            self.successful,
            self.with_feedback,
            self.positive_feedback,
            self.negative_feedback,
            self.quality,
            self.curated_examples,
            self.hot_bytes,
            self.archive_bytes,
            self.archived_raw_bytes,
            self.archive_objects,
            self.compressed_records,
            self.compression_saved_bytes,
            self.consented,
            self.consented_successful,
            self.consented_with_feedback,
        ]
    }

    pub fn from_values(v: [i64; 17]) -> PlatformCounters {
        let mut c = PlatformCounters::default();
        for (f, x) in c.fields_mut().into_iter().zip(v) {
            *f = x;
        }
        c
    }

    fn fields_mut(&mut self) -> [&mut i64; 17] {
        [
            &mut self.total,
            &mut self.archived,
            &mut self.successful,
            &mut self.with_feedback,
            &mut self.positive_feedback,
            &mut self.negative_feedback,
            &mut self.quality,
            &mut self.curated_examples,
            &mut self.hot_bytes,
            &mut self.archive_bytes,
            &mut self.archived_raw_bytes,
            &mut self.archive_objects,
            &mut self.compressed_records,
            &mut self.compression_saved_bytes,
            &mut self.consented,
            &mut self.consented_successful,
            &mut self.consented_with_feedback,
        ]
    }
}

/// What the counters need to know about one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFacts {
    pub success: bool,
    pub archived: bool,
    pub positive_feedback: i64,
    pub negative_feedback: i64,
    pub feedback_count: i64,
    /// The latest feedback is thumbs_down or report.
    pub latest_negative: bool,
    /// A passed validation scoring >= 80 is linked to the record.
    pub good_validation: bool,
    /// Stored size of the record in the hot store.
    pub stored_bytes: i64,
    /// The record may be used for training (exports leave it out otherwise).
    #[serde(default = "consent_default")]
    pub consent: bool,
    /// Workflow stored compressed.
    pub compressed: bool,
    /// Bytes compression saved on the workflow.
    pub saved_bytes: i64,
}

fn consent_default() -> bool {
    true
}

impl RecordFacts {
    /// The contract's quality example: successful, no negative latest feedback, and positive
    /// feedback or a passed validation scoring >= 80. (Curated examples are counted apart.)
    /// Only records with consent count: readiness counts what an export would produce.
    pub fn is_quality(&self) -> bool {
        self.consent && self.success && !self.latest_negative && (self.positive_feedback > 0 || self.good_validation)
    }

    pub fn contribution(&self) -> PlatformCounters {
        let b = |x: bool| x as i64;
        let hot = !self.archived;
        PlatformCounters {
            total: 1,
            archived: b(self.archived),
            successful: b(self.success),
            with_feedback: b(self.feedback_count > 0),
            positive_feedback: self.positive_feedback,
            negative_feedback: self.negative_feedback,
            quality: b(self.is_quality()),
            hot_bytes: if hot { self.stored_bytes } else { 0 },
            compressed_records: b(hot && self.compressed),
            compression_saved_bytes: if hot && self.compressed { self.saved_bytes } else { 0 },
            consented: b(self.consent),
            consented_successful: b(self.consent && self.success),
            consented_with_feedback: b(self.consent && self.feedback_count > 0),
            ..PlatformCounters::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RecordFacts {
        RecordFacts {
            success: true,
            consent: true,
            stored_bytes: 1000,
            compressed: true,
            saved_bytes: 400,
            ..RecordFacts::default()
        }
    }

    #[test]
    fn quality_needs_success_positive_signal_and_no_negative_latest() {
        let mut f = facts();
        assert!(!f.is_quality(), "no positive signal yet");
        f.positive_feedback = 1;
        assert!(f.is_quality());
        f.latest_negative = true;
        assert!(!f.is_quality());
        f.latest_negative = false;
        f.success = false;
        assert!(!f.is_quality());
        let g = RecordFacts { good_validation: true, ..facts() };
        assert!(g.is_quality());
    }

    #[test]
    fn records_without_consent_do_not_count_towards_readiness() {
        let f = RecordFacts { consent: false, positive_feedback: 1, feedback_count: 1, ..facts() };
        let c = f.contribution();
        assert_eq!((c.total, c.successful, c.with_feedback), (1, 1, 1), "storage counts every record");
        assert_eq!((c.consented, c.consented_successful, c.consented_with_feedback, c.quality), (0, 0, 0, 0));
    }

    #[test]
    fn archiving_moves_bytes_out_of_hot_and_keeps_totals() {
        let hot = facts();
        let archived = RecordFacts { archived: true, ..hot };
        let d = PlatformCounters::delta(&hot.contribution(), &archived.contribution());
        assert_eq!(d.total, 0);
        assert_eq!(d.archived, 1);
        assert_eq!(d.hot_bytes, -1000);
        assert_eq!(d.compressed_records, -1);
        assert_eq!(d.compression_saved_bytes, -400);
        assert_eq!(d.successful, 0);
    }

    #[test]
    fn values_round_trip_in_field_order() {
        let c = RecordFacts { positive_feedback: 2, feedback_count: 2, ..facts() }.contribution();
        assert_eq!(PlatformCounters::from_values(c.values()), c);
        let mut sum = c;
        sum.add(&c.negated());
        assert!(sum.is_zero());
    }
}
