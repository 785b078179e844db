//! Tests of the stats and readiness formulas: thresholds and rounding, costs, the stats
//! invariants, recommendations and JSON shapes.

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
    let c = PlatformCounters {
        consented: 10,
        consented_successful: 5,
        consented_with_feedback: 2,
        ..counters(50, 30, 10, 0)
    };
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
    assert_eq!(r.recommendations, vec!["needs 1 more example (have 49 of 50)"]);
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
        vec!["needs 2 more examples with feedback (have 8 of 10)", "needs 20 more quality examples (have 0 of 20)",]
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
    assert!(r.recommendations.iter().any(|s| s == "score 49 is below the minimum of 70"));
}

#[test]
fn min_score_above_100_blocks_readiness() {
    let t = Thresholds { min_score: 101, ..Thresholds::default() };
    let r = readiness("n8n", &counters(50, 30, 10, 20), &t);
    assert_eq!(r.readiness_score, 100);
    assert!(!r.is_ready);
    assert_eq!(r.recommendations, vec!["score 100 is below the minimum of 101"]);
}

#[test]
fn curated_examples_count_as_quality() {
    let c = PlatformCounters { curated_examples: 5, ..counters(50, 30, 10, 15) };
    let r = ready(c);
    assert_eq!(r.metrics.quality_examples, 20);
    assert!(r.is_ready);
}

#[test]
fn zero_thresholds_count_as_met() {
    let t = Thresholds { total_examples: 0, successful: 0, with_feedback: 0, quality_examples: 0, min_score: 70 };
    let r = readiness("n8n", &counters(3, 0, 0, 0), &t);
    assert_eq!(r.readiness_score, 100);
    assert!(r.is_ready);
    // Only the quality threshold zero: that quarter is full with no quality examples.
    let t = Thresholds { quality_examples: 0, ..Thresholds::default() };
    let r = readiness("n8n", &counters(50, 30, 10, 0), &t);
    assert_eq!(r.readiness_score, 100);
    assert!(r.is_ready);
}

#[test]
fn empty_platform_is_zeros_and_not_ready() {
    for t in [
        Thresholds::default(),
        Thresholds { total_examples: 0, successful: 0, with_feedback: 0, quality_examples: 0, min_score: 0 },
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
    let c = PlatformCounters { positive_feedback: 1, negative_feedback: 3, ..counters(50, 30, 10, 20) };
    let r = ready(c);
    assert_eq!(r.metrics.positive_feedback_rate, 0.25);
    assert!(r.recommendations.iter().any(|s| s.starts_with("positive feedback rate is 25%")));
}

#[test]
fn readiness_json_shape() {
    let v = serde_json::to_value(ready(counters(50, 30, 8, 0))).unwrap();
    assert_eq!(v["status"], "almost_ready");
    let t = serde_json::json!({"total_examples": 50, "successful": 30, "with_feedback": 10,
                               "quality_examples": 20, "min_score": 70});
    assert_eq!(v["thresholds"], t);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["platform", "readiness_score", "is_ready", "status", "metrics", "thresholds", "recommendations"]);
    let mkeys: Vec<&str> = v["metrics"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(mkeys, ["total_examples", "successful", "with_feedback", "quality_examples", "positive_feedback_rate"]);
    let ready_v = serde_json::to_value(ReadinessStatus::Ready).unwrap();
    let not_v = serde_json::to_value(ReadinessStatus::NotReady).unwrap();
    assert_eq!((ready_v, not_v), (serde_json::json!("ready"), serde_json::json!("not_ready")));
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
    let dear = Prices { hot_gb_month: 0.01, archive_gb_month: 1.0 };
    let c = costs(0, GIB, GIB, &dear);
    assert!(c.savings_monthly_usd < 0.0);
    assert_eq!(c.savings_percentage, 0.0);
    // Nonsense negative price: savings exceed `without`, clamped at 100.
    let odd = Prices { hot_gb_month: 0.25, archive_gb_month: -1.0 };
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
    assert_eq!(s.training_readiness.keys().collect::<Vec<_>>(), ["make", "n8n"]);
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
    assert_eq!(s.costs, costs(2 * GIB + 4096, GIB / 4, GIB, &Prices::default()));
    assert!((0.0..=100.0).contains(&s.costs.savings_percentage));

    assert_eq!(s.training_readiness["n8n"], ReadinessBrief { readiness_score: 100, is_ready: true });
    assert!(!s.training_readiness["make"].is_ready);
    assert_eq!(s.generated_at, now);
}

#[test]
fn stats_recommendations() {
    let s = stats(&sample(), &Thresholds::default(), &Prices::default(), Utc::now());
    assert_eq!(s.recommendations[0], "make: needs 10 more examples with feedback");
    assert_eq!(s.recommendations[1], "n8n: ready for training (score 100)");
    assert!(!s.recommendations.iter().any(|r| r.starts_with("feedback rate")), "12/70 is above 10%");
    assert!(s.recommendations.iter().any(|r| r.starts_with("archiving the 2.0 GiB hot store would save")));

    let mut all = BTreeMap::new();
    all.insert("n8n".to_string(), counters(50, 30, 2, 19));
    let s = stats(&all, &Thresholds::default(), &Prices::default(), Utc::now());
    assert_eq!(
        s.recommendations,
        vec!["n8n: needs 8 more examples with feedback", "feedback rate is 4%: ask users to rate workflows"]
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
    let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").unwrap().with_timezone(&Utc);
    let v = serde_json::to_value(stats(&sample(), &Thresholds::default(), &Prices::default(), now)).unwrap();
    assert_eq!(v["generated_at"], "2024-05-01T12:00:00Z");
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&v),
        ["generated_at", "overview", "storage", "costs", "by_platform", "training_readiness", "recommendations"]
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
    assert_eq!(keys(&v["costs"]["prices"]), ["hot_gb_month", "archive_gb_month"]);
    assert_eq!(
        keys(&v["by_platform"]["n8n"]),
        ["total", "active", "archived", "successful", "with_feedback", "hot_bytes", "archive_bytes"]
    );
    assert_eq!(keys(&v["training_readiness"]["n8n"]), ["readiness_score", "is_ready"]);
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
