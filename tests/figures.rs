//! Performance figures: `cargo bench -p collector-e2e --bench figures`.
//!
//! Prints one line per figure with its goal and PASS/MISS, then a summary. See
//! docs/PERFORMANCE.md for what each figure measures and the numbers on the reference machine.
//!
//! 1. ingest CPU per 50 KB workflow: body limits, `NewInteraction::parse_text`, `content_hash`,
//!    `StoredWorkflow::pack_text` (no storage), thread CPU time of a single-threaded loop.
//! 2. local server interactions/s: the real router on 127.0.0.1:0 (in-process, its own 2-worker
//!    runtime; or the `collector serve` binary given by FIGURES_SERVER_BIN), 64 keep-alive
//!    clients, then stats must count exactly the 201s.
//!    2b. the same with 50 KB workflows (gzip-compressed on ingest), 32 clients (issue 16).
//! 3. stats time at 10k vs 1M records (same store, grown).
//! 4. export MB/s and peak RSS at 20k vs 200k records, each export in a child process.
//! 5. archive: raw MB per CPU-second and peak RSS archiving ~1 GB raw in a child process.
//!
//! Knobs (env): FIGURES_ONLY=ingest,server,server50,stats,export,archive; FIGURES_INGEST_ITERS
//! (2000); FIGURES_SERVER_REQUESTS (30000); FIGURES_SERVER_CLIENTS (64); FIGURES_SERVER50_REQUESTS
//! (10000); FIGURES_SERVER50_CLIENTS (32); FIGURES_SERVER_BIN (unset);
//! FIGURES_STATS_SMALL (10000); FIGURES_STATS_BIG (1000000); FIGURES_STATS_CALLS (200);
//! FIGURES_EXPORT_SMALL (20000); FIGURES_EXPORT_BIG (200000); FIGURES_EXPORT_KEEP (unset: a
//! directory to build the export store in and keep); FIGURES_ARCHIVE_RECORDS (360000);
//! FIGURES_ARCHIVE_WORKFLOW_KIB (2: the archive records' workflow size);
//! FIGURES_ARCHIVE_KEEP (unset: a directory; the filled store is kept in DIR/seed and reused).

use std::path::Path;
use std::time::Instant;

// The bench's parts, in tests/figures/ (this file is the bench target's root, so each path is
// given).
#[path = "figures/archive.rs"]
mod archive;
#[path = "figures/data.rs"]
mod data;
#[path = "figures/export.rs"]
mod export;
#[path = "figures/ingest.rs"]
mod ingest;
#[path = "figures/procfs.rs"]
mod procfs;
#[path = "figures/report.rs"]
mod report;
#[path = "figures/server.rs"]
mod server;
#[path = "figures/stats.rs"]
mod stats;

use archive::{archive_child, archive_throughput};
use export::{export_child, export_scaling};
use ingest::ingest_cpu;
use procfs::LoadWatch;
use report::{Goal, Report};
use server::{server_throughput, server_throughput_50kb};
use stats::stats_scaling;

// The same global allocator as the `collector` binary (cli/src/main.rs): the figures are for
// the shipped binary. The request and export paths allocate many small JSON values, so the
// allocator moves the figures (glibc malloc vs mimalloc: docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// As cli/src/main.rs (same option, same reason). mimalloc commits its arenas eagerly on Linux (overcommit): memory it has freed stays
// counted in RSS until its purge delay passes, which nearly doubled the archive run's peak RSS
// (88 -> 44 MiB with lazy commit, same CPU: docs/PERFORMANCE.md). The option is read when an
// arena is reserved, i.e. at the first allocation, which happens before `main`; so it is set
// from an ELF constructor, which runs after mimalloc's own (priority 101) and before `main`.
// 4 is `mi_option_arena_eager_commit` in mimalloc.h (v2 and v3); libmimalloc-sys names no
// constant for it.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static MIMALLOC_LAZY_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_commit() {
        const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        // SAFETY: sets one integer option; mimalloc is initialised (its constructor ran first).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
    }
    lazy_commit
};

// -- main -----------------------------------------------------------------------------------------

fn main() {
    if std::env::var("FIGURES_CHILD").as_deref() == Ok("export") {
        let dir = std::env::var("FIGURES_CHILD_DIR").expect("FIGURES_CHILD_DIR");
        export_child(Path::new(&dir));
        return;
    }
    if std::env::var("FIGURES_CHILD").as_deref() == Ok("archive") {
        let dir = std::env::var("FIGURES_CHILD_DIR").expect("FIGURES_CHILD_DIR");
        archive_child(Path::new(&dir));
        return;
    }
    let only = std::env::var("FIGURES_ONLY").unwrap_or_default();
    let want = |f: &str| only.trim().is_empty() || only.split(',').any(|o| o.trim() == f);
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "collector performance figures ({cpus} CPUs available; build profile: {}; allocator: mimalloc, as the collector binary)",
        if cfg!(debug_assertions) { "DEBUG - numbers are meaningless" } else { "optimized" }
    );
    let mut report = Report::default();
    let mut noisy: Vec<(&str, f64)> = Vec::new();
    type Run = fn(&mut Report);
    let figures: [(&str, Run); 6] = [
        ("ingest", ingest_cpu),
        ("server", server_throughput),
        ("server50", server_throughput_50kb),
        ("stats", stats_scaling),
        ("export", export_scaling),
        ("archive", archive_throughput),
    ];
    for (name, run) in figures {
        if want(name) {
            let w = LoadWatch::start();
            run(&mut report);
            noisy.push((name, w.finish(name)));
        }
    }
    println!("\n== summary");
    for f in &report.figures {
        println!("{}", f.line());
    }
    let goals = report.figures.iter().filter(|f| !matches!(f.goal, Goal::Info)).count();
    let missed = report.figures.iter().filter(|f| !f.pass()).count();
    println!("total time {:.1} s; {goals} goals checked, {missed} missed", started.elapsed().as_secs_f64());
    let loud: Vec<String> =
        noisy.iter().filter(|(_, o)| *o > 0.10).map(|(n, o)| format!("{n} ({:.0}%)", o * 100.0)).collect();
    if loud.is_empty() {
        println!("machine was quiet (other processes < 10% of the CPUs during every figure)");
    } else {
        println!(
            "WARNING: other processes used > 10% of the CPUs during: {}; rerun on a quiet machine",
            loud.join(", ")
        );
    }
}
