//! Figure 4: export MB/s and peak RSS at 20k vs 200k records, each export in a child process.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use collector::app::{App, ExportRequest};
use collector::domain::export::ExportFilter;
use collector::domain::records::{FeedbackSummary, Interaction};
use collector::domain::types::{Id, Kind, Platform, UserId};
use collector::domain::workflow::StoredWorkflow;
use serde_json::json;

use crate::{data::*, procfs::*, report::*};

pub(crate) struct ChildResult {
    pub(crate) bytes: u64,
    pub(crate) lines: u64,
    pub(crate) secs: f64,
    pub(crate) base_kb: u64,
    pub(crate) hwm_kb: u64,
    /// CPU seconds of all the child's threads during the export.
    pub(crate) cpu_secs: f64,
    /// VmRSS (kB) at 1/4, 1/2, 3/4 and the end of the stream, "a/b/c/d".
    pub(crate) rss_timeline: String,
    pub(crate) chunks: u64,
    pub(crate) max_chunk: u64,
}

/// Child process: open the store in `FIGURES_CHILD_DIR`, export platform n8n (all records),
/// count bytes and lines, print the result with this process's peak RSS.
pub(crate) fn export_child(dir: &Path) {
    let rt = runtime("figures-exp", 2);
    let app = App::open_local(config_for(dir)).expect("open store");
    let base_kb = status_kb(Path::new("/proc/self"), "VmHWM:").unwrap_or(0);
    let cpu0 = tasks_cpu_ns(Path::new("/proc/self"), any_thread);
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let (bytes, lines, secs, chunks, max_chunk) = rt.block_on(async {
        let filter = ExportFilter { success_only: false, ..Default::default() };
        let started = Instant::now();
        let mut rx = app.export(ExportRequest { platform: Platform::parse("n8n").expect("platform"), filter });
        let (mut bytes, mut lines, mut chunks, mut max_chunk) = (0u64, 0u64, 0u64, 0u64);
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.expect("export chunk");
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            chunks += 1;
            max_chunk = max_chunk.max(chunk.len() as u64);
            if chunks % 16 == 0 {
                rss.push((bytes, status_kb(Path::new("/proc/self"), "VmRSS:").unwrap_or(0)));
            }
        }
        (bytes, lines, started.elapsed().as_secs_f64(), chunks, max_chunk)
    });
    // Resident set at a quarter, half, three quarters and the end of the stream: flat or growing?
    let at = |q: u64| rss.iter().find(|(b, _)| *b * 4 >= bytes * q).map_or(0, |(_, kb)| *kb);
    let timeline =
        format!("{}/{}/{}/{}", at(1), at(2), at(3), status_kb(Path::new("/proc/self"), "VmRSS:").unwrap_or(0));
    let cpu_secs = tasks_cpu_ns(Path::new("/proc/self"), any_thread).saturating_sub(cpu0) as f64 / 1e9;
    let hwm_kb = status_kb(Path::new("/proc/self"), "VmHWM:").unwrap_or(0);
    println!(
        "FIGURES_CHILD_RESULT {bytes} {lines} {secs} {base_kb} {hwm_kb} {cpu_secs} {timeline} {chunks} {max_chunk}"
    );
}

pub(crate) fn run_export_child(dir: &Path) -> ChildResult {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .env("FIGURES_CHILD", "export")
        .env("FIGURES_CHILD_DIR", dir)
        .output()
        .expect("run export child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("FIGURES_CHILD_RESULT ")).unwrap_or_else(|| {
        panic!("export child failed ({}): {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    });
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).expect("child result field");
    ChildResult {
        bytes: num(0) as u64,
        lines: num(1) as u64,
        secs: num(2),
        base_kb: num(3) as u64,
        hwm_kb: num(4) as u64,
        cpu_secs: num(5),
        rss_timeline: f.get(6).map_or(String::new(), |t| t.to_string()),
        chunks: num(7) as u64,
        max_chunk: num(8) as u64,
    }
}

pub(crate) fn export_record(i: u64, base: chrono::DateTime<Utc>, wfs: &[StoredWorkflow]) -> Interaction {
    Interaction {
        id: Id::new(),
        user_id: UserId::parse(&format!("user-{}", i % 1000)).expect("user"),
        platform: Platform::parse("n8n").expect("platform"),
        kind: Kind::WorkflowGeneration,
        user_message: format!("request {i}: when a Typeform is submitted, add the lead to HubSpot and post in #sales"),
        ai_response: Some("Here is a workflow that does that.".into()),
        intent: Some("create_workflow".into()),
        workflow: Some(wfs[(i % wfs.len() as u64) as usize].clone()),
        success: !i.is_multiple_of(10),
        error_message: None,
        processing_time_ms: Some(1200 + i % 1000),
        model_version: Some("claude-sonnet-4-5".into()),
        metadata: Some(serde_json::Map::from_iter([("client".to_string(), json!("web"))])),
        training_consent: true,
        created_at: base + chrono::Duration::milliseconds(i as i64),
        content_hash: format!("{i:064x}"),
        summary: FeedbackSummary::default(),
    }
}

pub(crate) fn export_scaling(report: &mut Report) {
    let small = env_num("FIGURES_EXPORT_SMALL", 20_000);
    let big = env_num("FIGURES_EXPORT_BIG", 200_000).max(small);
    println!(
        "\n== 4. export (training JSONL, all records, success_only=false) at {small} and {big} records; each export in a child process"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // FIGURES_EXPORT_KEEP=PATH: build the store in PATH/data (must not exist yet) and keep it, to
    // re-run just the export child on it: FIGURES_CHILD=export FIGURES_CHILD_DIR=PATH/data.
    let keep = std::env::var_os("FIGURES_EXPORT_KEEP").map(PathBuf::from);
    let data = keep.as_ref().map_or_else(|| dir.path().join("data"), |k| k.join("data"));
    let rt = runtime("figures-fil", 2);
    let app = App::open_local(config_for(&data)).expect("open store");
    let threshold = app.config.compression_threshold_bytes();
    // 16 different ~2 KB workflows, stored as ingest stores them (below the gzip threshold).
    let wfs: Arc<Vec<StoredWorkflow>> =
        Arc::new((0..16).map(|s| StoredWorkflow::pack(&realistic_workflow(2 * 1024, 100 + s), threshold)).collect());
    info(format!("records carry ~{} B workflows (compressed: {})", wfs[0].original_bytes, wfs[0].compressed));
    let base = Utc::now() - chrono::Duration::days(5);
    let mut results = Vec::new();
    let mut have = 0;
    for n in [small, big] {
        let w = wfs.clone();
        rt.block_on(fill(&app, have, n, "export store", move |i| export_record(i, base, &w)));
        have = n;
        let r = run_export_child(&data);
        let mb_s = r.bytes as f64 / 1e6 / r.secs;
        info(format!(
            "{n} records: {} lines, {:.1} MB in {:.2} s = {mb_s:.0} MB/s ({:.2} CPU-s, {:.2} cores busy); child peak RSS {:.1} MiB (after open, before export {:.1} MiB)",
            r.lines,
            r.bytes as f64 / 1e6,
            r.secs,
            r.cpu_secs,
            r.cpu_secs / r.secs,
            r.hwm_kb as f64 / 1024.0,
            r.base_kb as f64 / 1024.0
        ));
        let mib: Vec<String> =
            r.rss_timeline.split('/').map(|kb| format!("{:.1}", kb.parse::<f64>().unwrap_or(0.0) / 1024.0)).collect();
        info(format!(
            "  child RSS at 1/4, 1/2, 3/4, end of the stream: {} MiB; {} chunks received, mean {:.0} KB, largest {:.0} KB",
            mib.join(", "),
            r.chunks,
            r.bytes as f64 / r.chunks.max(1) as f64 / 1e3,
            r.max_chunk as f64 / 1e3
        ));
        if r.lines != n {
            info(format!("WARNING: exported {} lines for {n} records", r.lines));
        }
        results.push((n, r, mb_s));
    }
    for (n, r, mb_s) in &results {
        report.add(
            &format!("export_mb_per_s_at_{}", short(*n)),
            *mb_s,
            Goal::AtLeast(100.0),
            format!("MB = 10^6 B; {:.0} MB out", r.bytes as f64 / 1e6),
        );
    }
    for (n, r, _) in &results {
        report.add(
            &format!("export_peak_rss_mb_at_{}", short(*n)),
            r.hwm_kb as f64 / 1024.0,
            Goal::Info,
            "child VmHWM, MiB",
        );
    }
    if let [(n1, a, _), (n2, b, _)] = &results[..] {
        report.add(
            "export_peak_rss_ratio_big_over_small",
            b.hwm_kb as f64 / a.hwm_kb.max(1) as f64,
            Goal::AtMost(1.5),
            format!("output {:.1}x larger ({} vs {})", b.bytes as f64 / a.bytes.max(1) as f64, short(*n2), short(*n1)),
        );
        report.add("export_lines_missing", (n1 + n2) as f64 - (a.lines + b.lines) as f64, Goal::Exactly(0.0), "");
    }
    drop(app);
    drop(rt);
}
