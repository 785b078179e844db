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
        Thresholds { total_examples: 50, successful: 30, with_feedback: 10, quality_examples: 20, min_score: 70 }
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
        Prices { hot_gb_month: 0.25, archive_gb_month: 0.0125 }
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
        Requirement { singular: "example", plural: "examples", have: m.total_examples, need: t.total_examples },
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
        positive_feedback_rate: rate(c.positive_feedback, c.positive_feedback + c.negative_feedback),
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
            recommendations.push(format!("needs {} (have {} of {})", r.missing(), r.have, r.need));
        }
        if !no_data && readiness_score < t.min_score {
            recommendations.push(format!("score {readiness_score} is below the minimum of {}", t.min_score));
        }
    }
    if c.positive_feedback + c.negative_feedback > 0 && metrics.positive_feedback_rate < LOW_POSITIVE_RATE {
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
    let percentage = if without == 0.0 { 0.0 } else { (100.0 * savings / without).clamp(0.0, 100.0) };
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
        return format!("{platform}: ready for training (score {})", r.readiness_score);
    }
    if r.metrics.total_examples <= 0 && r.metrics.quality_examples <= 0 {
        return format!("{platform}: no examples collected yet");
    }
    let reqs = requirements(&r.metrics, t);
    match largest_gap(&reqs) {
        Some(g) => format!("{platform}: needs {}", g.missing()),
        None => format!("{platform}: score {} is below the minimum of {}", r.readiness_score, t.min_score),
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
    let live: Vec<(&String, &PlatformCounters)> = all.iter().filter(|(_, c)| !c.is_zero()).collect();

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
            let brief = ReadinessBrief { readiness_score: r.readiness_score, is_ready: r.is_ready };
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
            recommendations
                .push(format!("feedback rate is {}: ask users to rate workflows", percent(overview.feedback_rate)));
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

    Stats { generated_at, overview, storage, costs, by_platform, training_readiness, recommendations }
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
mod tests;
