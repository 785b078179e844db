//! Figure 5: archive throughput and peak RSS over ~1 GB raw, in a child process.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use collector::app::App;
use collector::domain::records::FullRecord;
use collector::domain::workflow::StoredWorkflow;

use crate::{data::*, export::*, procfs::*, report::*};

/// Child process: open the store in `FIGURES_CHILD_DIR`, run one archive (records older than
/// DATA_RETENTION_DAYS), print raw and compressed bytes, wall and CPU seconds, peak RSS.
pub(crate) fn archive_child(dir: &Path) {
    let rt = runtime("figures-arc", 2);
    let app = App::open_local(config_for(dir)).expect("open store");
    let base_kb = status_kb(Path::new("/proc/self"), "VmHWM:").unwrap_or(0);
    let cpu0 = tasks_cpu_ns(Path::new("/proc/self"), any_thread);
    let started = Instant::now();
    let req = collector::domain::input::ArchiveRequest { days_old: None, dry_run: false, platform: None, wait: false };
    let report = rt.block_on(app.archive(&req, None, None)).expect("archive run");
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = tasks_cpu_ns(Path::new("/proc/self"), any_thread).saturating_sub(cpu0) as f64 / 1e9;
    let hwm_kb = status_kb(Path::new("/proc/self"), "VmHWM:").unwrap_or(0);
    let raw: i64 = report.archives.iter().map(|o| o.raw_bytes).sum();
    let compressed: i64 = report.archives.iter().map(|o| o.compressed_bytes).sum();
    println!(
        "FIGURES_CHILD_RESULT {raw} {compressed} {} {} {secs} {cpu_secs} {base_kb} {hwm_kb}",
        report.archived_records,
        report.archives.len()
    );
}

/// gzip levels on archive lines (the bench's records as the archive writes them): bytes against
/// CPU, with the flate2 backend this build uses. Info only; it is how ARCHIVE_GZIP_LEVEL was chosen.
pub(crate) fn archive_gzip_levels(base: chrono::DateTime<Utc>, wfs: &[StoredWorkflow]) {
    use std::io::Write;
    let mut lines = Vec::new();
    for i in 0..10_000u64 {
        let rec = export_record(i, base, wfs);
        lines
            .extend(serde_json::to_vec(&FullRecord::build(&rec, vec![], vec![], true).expect("record")).expect("line"));
        lines.push(b'\n');
    }
    let mut row = Vec::new();
    for level in [1u32, 2, 3, 4, 6, 9] {
        let c0 = thread_cpu_ns().unwrap_or(0);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        for line in lines.split_inclusive(|&b| b == b'\n') {
            gz.write_all(line).expect("gzip");
        }
        let out = gz.finish().expect("gzip");
        let cpu = thread_cpu_ns().unwrap_or(0).saturating_sub(c0) as f64 / 1e9;
        row.push(format!(
            "{level}: {:.1}x, {:.0} MB/CPU-s",
            lines.len() as f64 / out.len() as f64,
            lines.len() as f64 / 1e6 / cpu.max(1e-9)
        ));
    }
    info(format!(
        "gzip of {:.1} MB of archive lines by level (ratio, raw MB per CPU-second): {}",
        lines.len() as f64 / 1e6,
        row.join("; ")
    ));
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy file");
        }
    }
}

pub(crate) fn archive_throughput(report: &mut Report) {
    let n = env_num("FIGURES_ARCHIVE_RECORDS", 360_000);
    // The workflow's size in KiB: 2 (the default) is the bench's; over 10 they are stored gzipped.
    let workflow_kib = env_num("FIGURES_ARCHIVE_WORKFLOW_KIB", 2) as usize;
    println!(
        "\n== 5. archive: {n} records older than the retention ({workflow_kib} KiB workflows; at 2, about 2.9 KB of raw JSONL each), one run in a child process"
    );
    let threshold = config_for(Path::new("/nonexistent")).compression_threshold_bytes();
    let wfs: Arc<Vec<StoredWorkflow>> = Arc::new(
        (0..16).map(|s| StoredWorkflow::pack(&realistic_workflow(workflow_kib * 1024, 300 + s), threshold)).collect(),
    );
    // Spread over 8 days, 40 days back: several objects per run, as a daily run after a pause.
    let base = Utc::now() - chrono::Duration::days(40);
    archive_gzip_levels(base, &wfs);
    // FIGURES_ARCHIVE_KEEP=DIR: the filled store is kept in DIR/seed (and reused when it is
    // there: delete it after changing FIGURES_ARCHIVE_RECORDS); each run archives a copy in DIR/run.
    let tmp = tempfile::tempdir().expect("tempdir");
    let keep = std::env::var_os("FIGURES_ARCHIVE_KEEP").map(PathBuf::from);
    let (seed, data) = match &keep {
        Some(k) => (k.join("seed"), k.join("run")),
        None => (tmp.path().join("data"), tmp.path().join("data")),
    };
    if keep.is_some() && seed.exists() {
        info(format!("reusing the store in {} (FIGURES_ARCHIVE_KEEP)", seed.display()));
    } else {
        let rt = runtime("figures-fil", 2);
        let app = App::open_local(config_for(&seed)).expect("open store");
        let per_day = (n / 8).max(1);
        let wfs = wfs.clone();
        rt.block_on(fill(&app, 0, n, "archive store", move |i| {
            let mut rec = export_record(i, base, &wfs);
            rec.created_at = base - chrono::Duration::days((i / per_day) as i64)
                + chrono::Duration::milliseconds((i % per_day) as i64);
            rec
        }));
        drop(app);
        drop(rt);
    }
    if seed != data {
        let _ = std::fs::remove_dir_all(&data);
        copy_dir(&seed, &data);
    }
    settle(&data);
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .env("FIGURES_CHILD", "archive")
        .env("FIGURES_CHILD_DIR", &data)
        .output()
        .expect("run archive child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("FIGURES_CHILD_RESULT ")).unwrap_or_else(|| {
        panic!("archive child failed ({}): {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    });
    let f: Vec<f64> = line.split_whitespace().map(|x| x.parse().expect("child result field")).collect();
    let [raw, compressed, records, objects, secs, cpu_secs, base_kb, hwm_kb] = f[..] else {
        panic!("child result: {line}")
    };
    info(format!(
        "{records} records into {objects} objects: {:.0} MB raw JSONL -> {:.0} MB gzip in {secs:.1} s wall, {cpu_secs:.1} CPU-s ({:.2} cores busy); child peak RSS {:.1} MiB (after open {:.1} MiB)",
        raw / 1e6,
        compressed / 1e6,
        cpu_secs / secs,
        hwm_kb / 1024.0,
        base_kb / 1024.0
    ));
    report.add(
        "archive_raw_mb_per_cpu_s",
        raw / 1e6 / cpu_secs,
        Goal::AtLeast(80.0),
        "raw JSONL MB (10^6 B) per CPU-second, all threads",
    );
    report.add("archive_raw_mb_per_s_wall", raw / 1e6 / secs, Goal::Info, "MB/s, wall clock");
    report.add(
        "archive_peak_rss_mb",
        hwm_kb / 1024.0,
        Goal::AtMost(100.0),
        format!("child VmHWM, MiB, archiving {:.2} GB raw", raw / 1e9),
    );
    report.add("archive_records_missing", n as f64 - records, Goal::Exactly(0.0), "");
    if keep.is_some() {
        let _ = std::fs::remove_dir_all(&data);
    }
}
