//! Stats and training readiness, computed from the per-platform counters alone.
//!
//! Pure functions: callers load the counters (no record scans) and the clock; everything
//! here is arithmetic, so the contract's formulas are tested in one place.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::counters::PlatformCounters;

/// GiB, the unit storage is priced in.
const GB: f64 = (1u64 << 30) as f64;

/// Above this much hot data, suggesting archiving is worth the reader's attention.
const ARCHIVE_HINT_BYTES: i64 = 1 << 30;

/// Below this share of records with feedback, readiness is mostly blocked on users rating.
const LOW_FEEDBACK_RATE: f64 = 0.1;

/// Below this share of positive feedback, training on the data would learn the wrong things.
const LOW_POSITIVE_RATE: f64 = 0.5;

/// What a platform needs before its data is worth training on.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Thresholds {
    pub total_examples: i64,
    pub successful: i64,
    pub with_feedback: i64,
    pub quality_examples: i64,
    pub min_score: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            total_examples: 50,
            successful: 30,
            with_feedback: 10,
            quality_examples: 20,
            min_score: 70,
        }
    }
}

/// Storage prices in USD per GiB-month.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Prices {
    pub hot_gb_month: f64,
    pub archive_gb_month: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            hot_gb_month: 0.25,
            archive_gb_month: 0.0125,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessStatus {
    Ready,
    AlmostReady,
    NotReady,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ReadinessMetrics {
    pub total_examples: i64,
    pub successful: i64,
    pub with_feedback: i64,
    pub quality_examples: i64,
    /// positive / (positive + negative) feedback events; 0 when there are none.
    pub positive_feedback_rate: f64,
}

/// GET /api/feedback/readiness/{platform}
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Readiness {
    pub platform: String,
    /// 0..=100
    pub readiness_score: i64,
    pub is_ready: bool,
    pub status: ReadinessStatus,
    pub metrics: ReadinessMetrics,
    pub thresholds: Thresholds,
    pub recommendations: Vec<String>,
}

/// One threshold as the score and the recommendations see it.
struct Requirement {
    singular: &'static str,
    plural: &'static str,
    have: i64,
    need: i64,
}

impl Requirement {
    fn met(&self) -> bool {
        self.have >= self.need
    }

    /// Share of the threshold reached, 0..=1; a threshold of 0 (or less) counts as fully met.
    fn fraction(&self) -> f64 {
        if self.need <= 0 {
            return 1.0;
        }
        // Clamp in integers so `25 * m / t` stays exact for the .5 cases.
        self.have.clamp(0, self.need) as f64 / self.need as f64
    }

    fn missing(&self) -> String {
        let n = self.need - self.have;
        let noun = if n == 1 { self.singular } else { self.plural };
        format!("{n} more {noun}")
    }
}

fn requirements(m: &ReadinessMetrics, t: &Thresholds) -> [Requirement; 4] {
    [
        Requirement {
            singular: "example",
            plural: "examples",
            have: m.total_examples,
            need: t.total_examples,
        },
        Requirement {
            singular: "successful example",
            plural: "successful examples",
            have: m.successful,
            need: t.successful,
        },
        Requirement {
            singular: "example with feedback",
            plural: "examples with feedback",
            have: m.with_feedback,
            need: t.with_feedback,
        },
        Requirement {
            singular: "quality example",
            plural: "quality examples",
            have: m.quality_examples,
            need: t.quality_examples,
        },
    ]
}

/// The unmet requirement costing the most score, i.e. the largest relative shortfall
/// (first one on ties, in contract order).
fn largest_gap(reqs: &[Requirement]) -> Option<&Requirement> {
    let mut best: Option<&Requirement> = None;
    for r in reqs.iter().filter(|r| !r.met()) {
        if best.is_none_or(|b| r.fraction() < b.fraction()) {
            best = Some(r);
        }
    }
    best
}

fn score(reqs: &[Requirement]) -> i64 {
    let sum: f64 = reqs.iter().map(|r| 25.0 * r.fraction()).sum();
    // Snap to 1e-6 first so a sum that is exactly k.5 in rationals but k.4999… in f64
    // still rounds half away from zero, as the contract's round() does.
    let snapped = (sum * 1e6).round() / 1e6;
    snapped.round() as i64
}

/// 0 when the divisor is 0; clamped into 0..=1 so a drifted counter cannot produce a bogus rate.
fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    (part as f64 / whole as f64).clamp(0.0, 1.0)
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn percent(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

pub fn readiness(platform: &str, c: &PlatformCounters, t: &Thresholds) -> Readiness {
    // Counts of consenting records: readiness counts what an export would produce.
    let metrics = ReadinessMetrics {
        total_examples: c.consented,
        successful: c.consented_successful,
        with_feedback: c.consented_with_feedback,
        quality_examples: c.quality + c.curated_examples,
        positive_feedback_rate: rate(
            c.positive_feedback,
            c.positive_feedback + c.negative_feedback,
        ),
    };
    let reqs = requirements(&metrics, t);
    // Zero thresholds would otherwise make an empty platform "ready": nothing to train on is never ready.
    let no_data = metrics.total_examples <= 0 && metrics.quality_examples <= 0;
    let readiness_score = if no_data { 0 } else { score(&reqs) };
    let is_ready = !no_data && reqs.iter().all(Requirement::met) && readiness_score >= t.min_score;
    let status = if is_ready {
        ReadinessStatus::Ready
    } else if readiness_score >= 50 {
        ReadinessStatus::AlmostReady
    } else {
        ReadinessStatus::NotReady
    };

    let mut recommendations = Vec::new();
    if is_ready {
        recommendations.push(format!("ready for training (score {readiness_score})"));
    } else {
        if no_data {
            recommendations.push(format!("no data collected yet for {platform}"));
        }
        for r in reqs.iter().filter(|r| !r.met()) {
            recommendations.push(format!(
                "needs {} (have {} of {})",
                r.missing(),
                r.have,
                r.need
            ));
        }
        if !no_data && readiness_score < t.min_score {
            recommendations.push(format!(
                "score {readiness_score} is below the minimum of {}",
                t.min_score
            ));
        }
    }
    if c.positive_feedback + c.negative_feedback > 0
        && metrics.positive_feedback_rate < LOW_POSITIVE_RATE
    {
        recommendations.push(format!(
            "positive feedback rate is {}: review negatively rated workflows before training",
            percent(metrics.positive_feedback_rate)
        ));
    }

    Readiness {
        platform: platform.to_string(),
        readiness_score,
        is_ready,
        status,
        metrics,
        thresholds: t.clone(),
        recommendations,
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Overview {
    pub total_records: i64,
    pub active_records: i64,
    pub archived_records: i64,
    pub successful: i64,
    /// successful / total_records, 0..1
    pub success_rate: f64,
    pub with_feedback: i64,
    /// with_feedback / total_records, 0..1
    pub feedback_rate: f64,
    pub positive_feedback: i64,
    pub negative_feedback: i64,
}

fn sum(all: &BTreeMap<String, PlatformCounters>) -> PlatformCounters {
    let mut s = PlatformCounters::default();
    for c in all.values() {
        s.add(c);
    }
    s
}

fn overview_of(s: &PlatformCounters) -> Overview {
    Overview {
        total_records: s.total,
        active_records: s.active(),
        archived_records: s.archived,
        successful: s.successful,
        success_rate: rate(s.successful, s.total),
        with_feedback: s.with_feedback,
        feedback_rate: rate(s.with_feedback, s.total),
        positive_feedback: s.positive_feedback,
        negative_feedback: s.negative_feedback,
    }
}

/// Sums the platforms.
pub fn overview(all: &BTreeMap<String, PlatformCounters>) -> Overview {
    overview_of(&sum(all))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Storage {
    pub hot_bytes: i64,
    pub hot_human: String,
    pub archive_bytes: i64,
    pub archive_human: String,
    pub archive_objects: i64,
    pub compressed_records: i64,
    pub compression_saved_bytes: i64,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Costs {
    pub hot_monthly_usd: f64,
    pub archive_monthly_usd: f64,
    pub total_monthly_usd: f64,
    /// What the archived records would cost kept hot at their raw size, plus the hot store.
    pub without_archiving_monthly_usd: f64,
    pub savings_monthly_usd: f64,
    /// 0..100
    pub savings_percentage: f64,
    pub prices: Prices,
}

pub fn costs(hot_bytes: i64, archive_bytes: i64, archived_raw_bytes: i64, p: &Prices) -> Costs {
    let hot = hot_bytes as f64 / GB * p.hot_gb_month;
    let archive = archive_bytes as f64 / GB * p.archive_gb_month;
    let total = hot + archive;
    let without = (hot_bytes as f64 + archived_raw_bytes as f64) / GB * p.hot_gb_month;
    let savings = without - total;
    let percentage = if without == 0.0 {
        0.0
    } else {
        (100.0 * savings / without).clamp(0.0, 100.0)
    };
    // Round only the outputs, so totals are computed from exact parts.
    Costs {
        hot_monthly_usd: round6(hot),
        archive_monthly_usd: round6(archive),
        total_monthly_usd: round6(total),
        without_archiving_monthly_usd: round6(without),
        savings_monthly_usd: round6(savings),
        savings_percentage: round6(percentage),
        prices: p.clone(),
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct PlatformStats {
    pub total: i64,
    pub active: i64,
    pub archived: i64,
    pub successful: i64,
    pub with_feedback: i64,
    pub hot_bytes: i64,
    pub archive_bytes: i64,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ReadinessBrief {
    pub readiness_score: i64,
    pub is_ready: bool,
}

/// GET /api/feedback/stats
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Stats {
    pub generated_at: DateTime<Utc>,
    pub overview: Overview,
    pub storage: Storage,
    pub costs: Costs,
    pub by_platform: BTreeMap<String, PlatformStats>,
    pub training_readiness: BTreeMap<String, ReadinessBrief>,
    pub recommendations: Vec<String>,
}

/// One line per platform: ready, or the gap that costs it the most.
fn platform_recommendation(platform: &str, c: &PlatformCounters, t: &Thresholds) -> String {
    let r = readiness(platform, c, t);
    if r.is_ready {
        return format!(
            "{platform}: ready for training (score {})",
            r.readiness_score
        );
    }
    if r.metrics.total_examples <= 0 && r.metrics.quality_examples <= 0 {
        return format!("{platform}: no examples collected yet");
    }
    let reqs = requirements(&r.metrics, t);
    match largest_gap(&reqs) {
        Some(g) => format!("{platform}: needs {}", g.missing()),
        None => format!(
            "{platform}: score {} is below the minimum of {}",
            r.readiness_score, t.min_score
        ),
    }
}

pub fn stats(
    all: &BTreeMap<String, PlatformCounters>,
    t: &Thresholds,
    p: &Prices,
    generated_at: DateTime<Utc>,
) -> Stats {
    let s = sum(all);
    let overview = overview_of(&s);
    // All-zero counters are what deleted platforms leave behind: not worth a row.
    let live: Vec<(&String, &PlatformCounters)> =
        all.iter().filter(|(_, c)| !c.is_zero()).collect();

    let by_platform = live
        .iter()
        .map(|(name, c)| {
            let ps = PlatformStats {
                total: c.total,
                active: c.active(),
                archived: c.archived,
                successful: c.successful,
                with_feedback: c.with_feedback,
                hot_bytes: c.hot_bytes,
                archive_bytes: c.archive_bytes,
            };
            ((*name).clone(), ps)
        })
        .collect();
    let training_readiness = live
        .iter()
        .map(|(name, c)| {
            let r = readiness(name, c, t);
            let brief = ReadinessBrief {
                readiness_score: r.readiness_score,
                is_ready: r.is_ready,
            };
            ((*name).clone(), brief)
        })
        .collect();

    let storage = Storage {
        hot_bytes: s.hot_bytes,
        hot_human: human_bytes(s.hot_bytes),
        archive_bytes: s.archive_bytes,
        archive_human: human_bytes(s.archive_bytes),
        archive_objects: s.archive_objects,
        compressed_records: s.compressed_records,
        compression_saved_bytes: s.compression_saved_bytes,
    };
    let costs = costs(s.hot_bytes, s.archive_bytes, s.archived_raw_bytes, p);

    let mut recommendations = Vec::new();
    if live.is_empty() {
        recommendations.push("no data collected yet".to_string());
    } else {
        for (name, c) in &live {
            recommendations.push(platform_recommendation(name, c, t));
        }
        if overview.total_records > 0 && overview.feedback_rate < LOW_FEEDBACK_RATE {
            recommendations.push(format!(
                "feedback rate is {}: ask users to rate workflows",
                percent(overview.feedback_rate)
            ));
        }
        // Lower bound: archiving also compresses, which only adds to this.
        let potential = s.hot_bytes as f64 / GB * (p.hot_gb_month - p.archive_gb_month);
        if s.hot_bytes >= ARCHIVE_HINT_BYTES && potential >= 0.01 {
            recommendations.push(format!(
                "archiving the {} hot store would save at least ${potential:.2}/month",
                storage.hot_human
            ));
        }
    }

    Stats {
        generated_at,
        overview,
        storage,
        costs,
        by_platform,
        training_readiness,
        recommendations,
    }
}

/// Binary units, one decimal above bytes: "0 B", "1.5 KiB", "3.2 MiB", "1.0 GiB".
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let sign = if n < 0 { "-" } else { "" };
    let abs = n.unsigned_abs();
    if abs < 1024 {
        return format!("{sign}{abs} B");
    }
    let mut v = abs as f64;
    let mut unit = 0;
    // Step up while the one-decimal rendering would reach 1024.0, so 1048575 B is "1.0 MiB", not "1024.0 KiB".
    while unit == 0 || (v >= 1023.95 && unit < UNITS.len() - 1) {
        v /= 1024.0;
        unit += 1;
    }
    format!("{sign}{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters where every record has consent.
    fn counters(total: i64, successful: i64, with_feedback: i64, quality: i64) -> PlatformCounters {
        PlatformCounters {
            total,
            successful,
            with_feedback,
            quality,
            consented: total,
            consented_successful: successful,
            consented_with_feedback: with_feedback,
            ..PlatformCounters::default()
        }
    }

    #[test]
    fn readiness_counts_only_consenting_records() {
        let c = PlatformCounters { consented: 10, consented_successful: 5, consented_with_feedback: 2, ..counters(50, 30, 10, 0) };
        let r = ready(c);
        assert_eq!((r.metrics.total_examples, r.metrics.successful, r.metrics.with_feedback), (10, 5, 2));
    }

    fn ready(c: PlatformCounters) -> Readiness {
        readiness("n8n", &c, &Thresholds::default())
    }

    #[test]
    fn exactly_at_thresholds_is_100_and_ready() {
        let r = ready(counters(50, 30, 10, 20));
        assert_eq!(r.readiness_score, 100);
        assert!(r.is_ready);
        assert_eq!(r.status, ReadinessStatus::Ready);
        assert_eq!(r.recommendations[0], "ready for training (score 100)");
    }

    #[test]
    fn total_49_rounds_to_100_but_is_not_ready() {
        // 25*49/50 = 24.5 rounds up: the score alone says 100, the count says no.
        let r = ready(counters(49, 30, 10, 20));
        assert_eq!(r.readiness_score, 100);
        assert!(!r.is_ready);
        assert_eq!(r.status, ReadinessStatus::AlmostReady);
        assert_eq!(
            r.recommendations,
            vec!["needs 1 more example (have 49 of 50)"]
        );
    }

    #[test]
    fn half_rounds_away_from_zero() {
        assert_eq!(ready(counters(1, 0, 0, 0)).readiness_score, 1); // 0.5
        assert_eq!(ready(counters(3, 0, 0, 0)).readiness_score, 2); // 1.5
        assert_eq!(ready(counters(2, 0, 0, 0)).readiness_score, 1); // 1.0
        assert_eq!(ready(counters(0, 0, 0, 2)).readiness_score, 3); // 25*2/20 = 2.5
    }

    #[test]
    fn score_matches_exact_rational_rounding() {
        // Default thresholds: score = round((6a + 10b + 30c + 15d) / 12), half up.
        for a in 0..=50 {
            for b in 0..=30 {
                for c in 0..=10 {
                    for d in 0..=20 {
                        let num = 6 * a + 10 * b + 30 * c + 15 * d;
                        let want = (2 * num + 12) / 24;
                        if a == 0 && d == 0 {
                            continue; // nothing to train on: the no-data rule, tested apart
                        }
                        let got = ready(counters(a, b, c, d));
                        assert_eq!(got.readiness_score, want, "a={a} b={b} c={c} d={d}");
                    }
                }
            }
        }
    }

    #[test]
    fn score_70_with_a_count_short_is_almost_ready() {
        // 25 + 25 + 25*8/10 + 0 = 70 >= min_score, but with_feedback and quality are short.
        let r = ready(counters(50, 30, 8, 0));
        assert_eq!(r.readiness_score, 70);
        assert!(!r.is_ready);
        assert_eq!(r.status, ReadinessStatus::AlmostReady);
        assert_eq!(
            r.recommendations,
            vec![
                "needs 2 more examples with feedback (have 8 of 10)",
                "needs 20 more quality examples (have 0 of 20)",
            ]
        );
        // One quality example short: 99, still not ready.
        let r = ready(counters(50, 30, 10, 19));
        assert_eq!(r.readiness_score, 99);
        assert!(!r.is_ready);
        assert_eq!(r.status, ReadinessStatus::AlmostReady);
    }

    #[test]
    fn status_boundary_between_49_and_50() {
        let r = ready(counters(50, 30, 0, 0));
        assert_eq!(r.readiness_score, 50);
        assert_eq!(r.status, ReadinessStatus::AlmostReady);
        // 25 + 25*29/30 = 49.17
        let r = ready(counters(50, 29, 0, 0));
        assert_eq!(r.readiness_score, 49);
        assert_eq!(r.status, ReadinessStatus::NotReady);
        assert!(
            r.recommendations
                .iter()
                .any(|s| s == "score 49 is below the minimum of 70")
        );
    }

    #[test]
    fn min_score_above_100_blocks_readiness() {
        let t = Thresholds {
            min_score: 101,
            ..Thresholds::default()
        };
        let r = readiness("n8n", &counters(50, 30, 10, 20), &t);
        assert_eq!(r.readiness_score, 100);
        assert!(!r.is_ready);
        assert_eq!(
            r.recommendations,
            vec!["score 100 is below the minimum of 101"]
        );
    }

    #[test]
    fn curated_examples_count_as_quality() {
        let c = PlatformCounters {
            curated_examples: 5,
            ..counters(50, 30, 10, 15)
        };
        let r = ready(c);
        assert_eq!(r.metrics.quality_examples, 20);
        assert!(r.is_ready);
    }

    #[test]
    fn zero_thresholds_count_as_met() {
        let t = Thresholds {
            total_examples: 0,
            successful: 0,
            with_feedback: 0,
            quality_examples: 0,
            min_score: 70,
        };
        let r = readiness("n8n", &counters(3, 0, 0, 0), &t);
        assert_eq!(r.readiness_score, 100);
        assert!(r.is_ready);
        // Only the quality threshold zero: that quarter is full with no quality examples.
        let t = Thresholds {
            quality_examples: 0,
            ..Thresholds::default()
        };
        let r = readiness("n8n", &counters(50, 30, 10, 0), &t);
        assert_eq!(r.readiness_score, 100);
        assert!(r.is_ready);
    }

    #[test]
    fn empty_platform_is_zeros_and_not_ready() {
        for t in [
            Thresholds::default(),
            Thresholds {
                total_examples: 0,
                successful: 0,
                with_feedback: 0,
                quality_examples: 0,
                min_score: 0,
            },
        ] {
            let r = readiness("zapier", &PlatformCounters::default(), &t);
            assert_eq!(r.platform, "zapier");
            assert_eq!(r.readiness_score, 0);
            assert!(!r.is_ready);
            assert_eq!(r.status, ReadinessStatus::NotReady);
            assert_eq!(
                r.metrics,
                ReadinessMetrics {
                    total_examples: 0,
                    successful: 0,
                    with_feedback: 0,
                    quality_examples: 0,
                    positive_feedback_rate: 0.0
                }
            );
            assert_eq!(r.recommendations[0], "no data collected yet for zapier");
        }
    }

    #[test]
    fn positive_feedback_rate_and_hint() {
        let c = PlatformCounters {
            positive_feedback: 1,
            negative_feedback: 3,
            ..counters(50, 30, 10, 20)
        };
        let r = ready(c);
        assert_eq!(r.metrics.positive_feedback_rate, 0.25);
        assert!(
            r.recommendations
                .iter()
                .any(|s| s.starts_with("positive feedback rate is 25%"))
        );
    }

    #[test]
    fn readiness_json_shape() {
        let v = serde_json::to_value(ready(counters(50, 30, 8, 0))).unwrap();
        assert_eq!(v["status"], "almost_ready");
        let t = serde_json::json!({"total_examples": 50, "successful": 30, "with_feedback": 10,
                                   "quality_examples": 20, "min_score": 70});
        assert_eq!(v["thresholds"], t);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "platform",
                "readiness_score",
                "is_ready",
                "status",
                "metrics",
                "thresholds",
                "recommendations"
            ]
        );
        let mkeys: Vec<&str> = v["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            mkeys,
            [
                "total_examples",
                "successful",
                "with_feedback",
                "quality_examples",
                "positive_feedback_rate"
            ]
        );
        let ready_v = serde_json::to_value(ReadinessStatus::Ready).unwrap();
        let not_v = serde_json::to_value(ReadinessStatus::NotReady).unwrap();
        assert_eq!(
            (ready_v, not_v),
            (serde_json::json!("ready"), serde_json::json!("not_ready"))
        );
    }

    const GIB: i64 = 1 << 30;

    #[test]
    fn costs_formula() {
        let c = costs(GIB, GIB, 3 * GIB, &Prices::default());
        assert_eq!(c.hot_monthly_usd, 0.25);
        assert_eq!(c.archive_monthly_usd, 0.0125);
        assert_eq!(c.total_monthly_usd, 0.2625);
        assert_eq!(c.without_archiving_monthly_usd, 1.0);
        assert_eq!(c.savings_monthly_usd, 0.7375);
        assert_eq!(c.savings_percentage, 73.75);
        assert_eq!(c.prices, Prices::default());
    }

    #[test]
    fn costs_are_rounded_to_6_decimals() {
        // 1000 bytes hot: 2.328e-7 USD, below a millionth.
        let c = costs(1000, 0, 0, &Prices::default());
        assert_eq!(c.hot_monthly_usd, 0.0);
        let c = costs(GIB / 3, 0, 0, &Prices::default());
        assert_eq!(c.hot_monthly_usd, 0.083333);
    }

    #[test]
    fn costs_percentage_zero_without_and_clamped() {
        let c = costs(0, 0, 0, &Prices::default());
        assert_eq!(c.without_archiving_monthly_usd, 0.0);
        assert_eq!(c.savings_percentage, 0.0);
        // Archive dearer than hot: negative savings, percentage clamped at 0.
        let dear = Prices {
            hot_gb_month: 0.01,
            archive_gb_month: 1.0,
        };
        let c = costs(0, GIB, GIB, &dear);
        assert!(c.savings_monthly_usd < 0.0);
        assert_eq!(c.savings_percentage, 0.0);
        // Nonsense negative price: savings exceed `without`, clamped at 100.
        let odd = Prices {
            hot_gb_month: 0.25,
            archive_gb_month: -1.0,
        };
        let c = costs(0, GIB, GIB, &odd);
        assert_eq!(c.savings_percentage, 100.0);
    }

    fn sample() -> BTreeMap<String, PlatformCounters> {
        let mut all = BTreeMap::new();
        all.insert(
            "n8n".to_string(),
            PlatformCounters {
                total: 60,
                archived: 20,
                successful: 40,
                with_feedback: 12,
                positive_feedback: 10,
                negative_feedback: 2,
                quality: 18,
                curated_examples: 4,
                hot_bytes: 2 * GIB,
                archive_bytes: GIB / 4,
                archived_raw_bytes: GIB,
                archive_objects: 2,
                compressed_records: 30,
                compression_saved_bytes: 5000,
                consented: 60,
                consented_successful: 40,
                consented_with_feedback: 12,
            },
        );
        all.insert(
            "make".to_string(),
            PlatformCounters {
                total: 10,
                successful: 4,
                with_feedback: 0,
                quality: 1,
                hot_bytes: 4096,
                consented: 10,
                consented_successful: 4,
                ..PlatformCounters::default()
            },
        );
        // Everything deleted: must not show up.
        all.insert("zapier".to_string(), PlatformCounters::default());
        all
    }

    #[test]
    fn stats_invariants() {
        let all = sample();
        let now = Utc::now();
        let s = stats(&all, &Thresholds::default(), &Prices::default(), now);
        let o = &s.overview;
        assert_eq!(o.total_records, 70);
        assert_eq!(o.total_records, o.active_records + o.archived_records);
        assert_eq!(o.archived_records, 20);
        for rate in [o.success_rate, o.feedback_rate] {
            assert!((0.0..=1.0).contains(&rate), "{rate}");
        }
        assert_eq!(o.success_rate, 44.0 / 70.0);
        assert_eq!(*o, overview(&all));

        assert_eq!(s.by_platform.keys().collect::<Vec<_>>(), ["make", "n8n"]);
        assert_eq!(
            s.training_readiness.keys().collect::<Vec<_>>(),
            ["make", "n8n"]
        );
        let add = |f: fn(&PlatformStats) -> i64| s.by_platform.values().map(f).sum::<i64>();
        assert_eq!(add(|p| p.total), o.total_records);
        assert_eq!(add(|p| p.active), o.active_records);
        assert_eq!(add(|p| p.archived), o.archived_records);
        assert_eq!(add(|p| p.successful), o.successful);
        assert_eq!(add(|p| p.with_feedback), o.with_feedback);
        assert_eq!(add(|p| p.hot_bytes), s.storage.hot_bytes);
        assert_eq!(add(|p| p.archive_bytes), s.storage.archive_bytes);
        for p in s.by_platform.values() {
            assert_eq!(p.total, p.active + p.archived);
        }

        assert_eq!(s.storage.hot_human, "2.0 GiB");
        assert_eq!(s.storage.archive_human, "256.0 MiB");
        assert_eq!(
            s.costs,
            costs(2 * GIB + 4096, GIB / 4, GIB, &Prices::default())
        );
        assert!((0.0..=100.0).contains(&s.costs.savings_percentage));

        assert_eq!(
            s.training_readiness["n8n"],
            ReadinessBrief {
                readiness_score: 100,
                is_ready: true
            }
        );
        assert!(!s.training_readiness["make"].is_ready);
        assert_eq!(s.generated_at, now);
    }

    #[test]
    fn stats_recommendations() {
        let s = stats(
            &sample(),
            &Thresholds::default(),
            &Prices::default(),
            Utc::now(),
        );
        assert_eq!(
            s.recommendations[0],
            "make: needs 10 more examples with feedback"
        );
        assert_eq!(s.recommendations[1], "n8n: ready for training (score 100)");
        assert!(
            !s.recommendations
                .iter()
                .any(|r| r.starts_with("feedback rate")),
            "12/70 is above 10%"
        );
        assert!(
            s.recommendations
                .iter()
                .any(|r| r.starts_with("archiving the 2.0 GiB hot store would save"))
        );

        let mut all = BTreeMap::new();
        all.insert("n8n".to_string(), counters(50, 30, 2, 19));
        let s = stats(&all, &Thresholds::default(), &Prices::default(), Utc::now());
        assert_eq!(
            s.recommendations,
            vec![
                "n8n: needs 8 more examples with feedback",
                "feedback rate is 4%: ask users to rate workflows"
            ]
        );
    }

    #[test]
    fn empty_stats() {
        let mut all = BTreeMap::new();
        all.insert("n8n".to_string(), PlatformCounters::default());
        for all in [BTreeMap::new(), all] {
            let s = stats(&all, &Thresholds::default(), &Prices::default(), Utc::now());
            assert_eq!(s.overview.total_records, 0);
            assert_eq!(s.overview.success_rate, 0.0);
            assert_eq!(s.overview.feedback_rate, 0.0);
            assert!(s.by_platform.is_empty());
            assert!(s.training_readiness.is_empty());
            assert_eq!(s.costs.savings_percentage, 0.0);
            assert_eq!(s.storage.hot_human, "0 B");
            assert_eq!(s.recommendations, vec!["no data collected yet"]);
        }
    }

    #[test]
    fn stats_json_shape() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = serde_json::to_value(stats(
            &sample(),
            &Thresholds::default(),
            &Prices::default(),
            now,
        ))
        .unwrap();
        assert_eq!(v["generated_at"], "2024-05-01T12:00:00Z");
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&v),
            [
                "generated_at",
                "overview",
                "storage",
                "costs",
                "by_platform",
                "training_readiness",
                "recommendations"
            ]
        );
        assert_eq!(
            keys(&v["overview"]),
            [
                "total_records",
                "active_records",
                "archived_records",
                "successful",
                "success_rate",
                "with_feedback",
                "feedback_rate",
                "positive_feedback",
                "negative_feedback"
            ]
        );
        assert_eq!(
            keys(&v["storage"]),
            [
                "hot_bytes",
                "hot_human",
                "archive_bytes",
                "archive_human",
                "archive_objects",
                "compressed_records",
                "compression_saved_bytes"
            ]
        );
        assert_eq!(
            keys(&v["costs"]),
            [
                "hot_monthly_usd",
                "archive_monthly_usd",
                "total_monthly_usd",
                "without_archiving_monthly_usd",
                "savings_monthly_usd",
                "savings_percentage",
                "prices"
            ]
        );
        assert_eq!(
            keys(&v["costs"]["prices"]),
            ["hot_gb_month", "archive_gb_month"]
        );
        assert_eq!(
            keys(&v["by_platform"]["n8n"]),
            [
                "total",
                "active",
                "archived",
                "successful",
                "with_feedback",
                "hot_bytes",
                "archive_bytes"
            ]
        );
        assert_eq!(
            keys(&v["training_readiness"]["n8n"]),
            ["readiness_score", "is_ready"]
        );
    }

    #[test]
    fn human_bytes_cases() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3_355_443), "3.2 MiB");
        assert_eq!(human_bytes(GIB), "1.0 GiB");
        assert_eq!(human_bytes(1_048_575), "1.0 MiB");
        assert_eq!(human_bytes(5 * (1 << 40)), "5.0 TiB");
        assert_eq!(human_bytes(i64::MAX), "8.0 EiB");
        assert_eq!(human_bytes(-1536), "-1.5 KiB");
        assert_eq!(human_bytes(i64::MIN), "-8.0 EiB");
    }
}
