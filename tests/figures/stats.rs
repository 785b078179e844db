//! Figure 3: stats time at 10k vs 1M records.
use std::time::{Duration, Instant};

use chrono::Utc;
use collector::app::App;

use crate::{data::*, report::*};

/// `App::stats` timed `calls` times in each of 5 rounds one second apart (so a checkpoint or
/// kernel writeback left over from filling shows up as one odd round, not as the figure):
/// (median, p90 over all calls, total_records, median of each round).
pub(crate) fn time_stats(rt: &tokio::runtime::Runtime, app: &App, calls: usize) -> (f64, f64, i64, Vec<f64>) {
    rt.block_on(async {
        for _ in 0..10 {
            app.stats().await.expect("stats");
        }
        let mut all = Vec::with_capacity(calls * 5);
        let mut rounds = Vec::new();
        let mut total = 0;
        for round in 0..5 {
            if round > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut ms = Vec::with_capacity(calls);
            for _ in 0..calls {
                let t0 = Instant::now();
                let s = app.stats().await.expect("stats");
                ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                total = s.overview.total_records;
            }
            ms.sort_by(f64::total_cmp);
            rounds.push(ms[ms.len() / 2]);
            all.extend(ms);
        }
        all.sort_by(f64::total_cmp);
        (all[all.len() / 2], all[all.len() * 9 / 10], total, rounds)
    })
}

pub(crate) fn stats_scaling(report: &mut Report) {
    let small = env_num("FIGURES_STATS_SMALL", 10_000);
    let big = env_num("FIGURES_STATS_BIG", 1_000_000).max(small);
    let calls = env_num("FIGURES_STATS_CALLS", 200).max(1) as usize;
    println!("\n== 3. stats time at {small} vs {big} records (App::stats, median of 5 rounds x {calls} calls)");
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime("figures-sta", 2);
    let app = App::open_local(config_for(&dir.path().join("data"))).expect("open store");
    let base = Utc::now() - chrono::Duration::days(20);
    rt.block_on(fill(&app, 0, small, "stats store", move |i| small_record(i, base)));
    settle(&dir.path().join("data"));
    let (m_small, p90_small, n_small, r_small) = time_stats(&rt, &app, calls);
    info(format!(
        "at {n_small} records: median {m_small:.3} ms, p90 {p90_small:.3} ms (round medians {})",
        fmt_ms(&r_small)
    ));
    let fill_started = Instant::now();
    rt.block_on(fill(&app, small, big, "stats store", move |i| small_record(i, base)));
    let fill_secs = fill_started.elapsed().as_secs_f64();
    if fill_secs > 300.0 {
        info(format!("note: growing to {big} records took {fill_secs:.0} s (over 5 minutes) on this machine"));
    }
    settle(&dir.path().join("data"));
    let (m_big, p90_big, n_big, r_big) = time_stats(&rt, &app, calls);
    info(format!("at {n_big} records: median {m_big:.3} ms, p90 {p90_big:.3} ms (round medians {})", fmt_ms(&r_big)));
    let db = std::fs::metadata(dir.path().join("data/collector.sqlite3")).map(|m| m.len()).unwrap_or(0);
    info(format!("store file {:.0} MB", db as f64 / 1e6));
    report.add(&format!("stats_ms_at_{}", short(n_small as u64)), m_small, Goal::Info, "median");
    report.add(&format!("stats_ms_at_{}", short(n_big as u64)), m_big, Goal::Info, "median");
    report.add(
        "stats_time_ratio_big_over_small",
        m_big / m_small,
        Goal::AtMost(1.5),
        format!("{} / {}", short(n_big as u64), short(n_small as u64)),
    );
    drop(app);
    drop(rt);
}
