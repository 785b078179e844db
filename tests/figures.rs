//! Performance figures: `cargo bench -p collector-e2e --bench figures`.
//!
//! Prints one line per figure with its goal and PASS/MISS, then a summary. See
//! docs/PERFORMANCE.md for what each figure measures and the numbers on the reference machine.
//!
//! 1. ingest CPU per 50 KB workflow: body parse, `NewInteraction::parse`, `content_hash`,
//!    `StoredWorkflow::pack` (no storage), thread CPU time of a single-threaded loop.
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
//! FIGURES_ARCHIVE_KEEP (unset: a directory; the filled store is kept in DIR/seed and reused).

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use collector::app::{App, ExportRequest};
use collector::config::Config;
use collector::domain::export::ExportFilter;
use collector::domain::input::NewInteraction;
use collector::domain::records::{FeedbackSummary, FullRecord, Interaction};
use collector::domain::types::{Id, Kind, Platform, UserId};
use collector::domain::workflow::{StoredWorkflow, compact};
use collector::http::{self, HttpState};
use collector_e2e::{SECRET, token};
use serde_json::{Value, json};

// The same global allocator as the `collector` binary (cli/src/main.rs): the figures are for
// the shipped binary. The request and export paths allocate many small JSON values, so the
// allocator moves the figures (glibc malloc vs mimalloc: docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// -- output -----------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Must equal (counts).
    Exactly(f64),
    /// Shown for context; no goal of its own.
    Info,
}

struct Figure {
    name: String,
    value: f64,
    goal: Goal,
    note: String,
}

impl Figure {
    fn pass(&self) -> bool {
        match self.goal {
            Goal::AtMost(g) => self.value <= g,
            Goal::AtLeast(g) => self.value >= g,
            Goal::Exactly(g) => self.value == g,
            Goal::Info => true,
        }
    }
    fn line(&self) -> String {
        let goal = match self.goal {
            Goal::AtMost(g) => format!("goal <= {}", fmt_num(g)),
            Goal::AtLeast(g) => format!("goal >= {}", fmt_num(g)),
            Goal::Exactly(g) => format!("goal == {}", fmt_num(g)),
            Goal::Info => "info".to_string(),
        };
        let verdict = match (self.goal, self.pass()) {
            (Goal::Info, _) => "    ",
            (_, true) => "PASS",
            (_, false) => "MISS",
        };
        let note = if self.note.is_empty() { String::new() } else { format!("  [{}]", self.note) };
        format!("{:<42} {:>12}  ({goal})  {verdict}{note}", self.name, fmt_num(self.value))
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
}

impl Report {
    fn add(&mut self, name: &str, value: f64, goal: Goal, note: impl Into<String>) {
        let f = Figure { name: name.into(), value, goal, note: note.into() };
        println!("{}", f.line());
        self.figures.push(f);
    }
}

fn info(msg: impl AsRef<str>) {
    println!("    {}", msg.as_ref());
}

fn env_num(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        _ => default,
    }
}

// -- /proc helpers ------------------------------------------------------------------------------

/// CPU time of the calling thread, in ns (first field of /proc/thread-self/schedstat).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Sum of CPU ns of the live threads of `proc_dir` (e.g. /proc/self or /proc/1234) for which
/// `keep(thread name, is the main thread)` holds.
fn tasks_cpu_ns(proc_dir: &Path, keep: impl Fn(&str, bool) -> bool) -> u64 {
    let Ok(rd) = std::fs::read_dir(proc_dir.join("task")) else { return 0 };
    let main_tid = std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    let mut sum = 0;
    for t in rd.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !keep(comm.trim(), t.file_name().to_string_lossy() == main_tid) {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        {
            sum += ns;
        }
    }
    sum
}

/// Threads of the load generator (the client runtime, its blocking pool included).
fn is_client_thread(name: &str, _main: bool) -> bool {
    name.starts_with("figures-cli")
}

/// Threads of the in-process server: its runtime and whatever threads the store runs (e.g. the
/// SQLite writer): everything but the load generator and the idle main thread.
fn is_server_thread(name: &str, main: bool) -> bool {
    !main && !is_client_thread(name, main)
}

fn any_thread(_: &str, _: bool) -> bool {
    true
}

/// A `VmXxx:` line of /proc/<pid>/status, in kB.
fn status_kb(proc_dir: &Path, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Jiffies of the whole machine, from the `cpu` line of /proc/stat.
#[derive(Clone, Copy, Default)]
struct MachineTicks {
    /// user + nice + system + steal (guest time is already in user)
    busy: u64,
    /// irq + softirq: mostly our own loopback traffic, charged to no process
    irq: u64,
    total: u64,
}

fn machine_ticks() -> MachineTicks {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(7);
    let irq = get(5) + get(6);
    MachineTicks { busy, irq, total: busy + irq + get(3) + get(4) }
}

/// (pid, ppid, comm, utime + stime) of one /proc/<pid>/stat.
fn proc_stat(path: &Path) -> Option<(u32, u32, String, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let (pid, comm) = head.split_once(" (")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((pid.trim().parse().ok()?, f.get(1)?.parse().ok()?, comm.to_string(), ticks))
}

/// Jiffies used by this process, its threads and its waited-for children (export children, the server binary).
fn own_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    // After the comm: state(3) ... utime(14) stime(15) cutime(16) cstime(17), i.e. indexes 11..=14 here.
    after.split_whitespace().skip(11).take(4).filter_map(|x| x.parse::<u64>().ok()).sum()
}

/// CPU jiffies of every other live process: pid -> (comm, ticks, kernel thread?). Our own
/// children (the server binary, export children) are left out: they are counted as ours.
fn other_procs() -> HashMap<u32, (String, u64, bool)> {
    let me = std::process::id();
    let mut out = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some((pid, ppid, comm, ticks)) = proc_stat(&e.path().join("stat"))
            && pid != me
            && ppid != me
        {
            out.insert(pid, (comm, ticks, pid == 2 || ppid == 2));
        }
    }
    out
}

/// Watches how busy the machine was during a figure, and how much of that was someone else.
struct LoadWatch {
    machine: MachineTicks,
    own: u64,
    others: HashMap<u32, (String, u64, bool)>,
}

impl LoadWatch {
    fn start() -> LoadWatch {
        LoadWatch { machine: machine_ticks(), own: own_ticks(), others: other_procs() }
    }
    /// Share of all CPUs used by other work (not this bench, not kernel threads or interrupts,
    /// which mostly serve our own I/O), printed; returned for the summary.
    fn finish(self, what: &str) -> f64 {
        let m = machine_ticks();
        let total = m.total.saturating_sub(self.machine.total).max(1) as f64;
        let busy = m.busy.saturating_sub(self.machine.busy) as f64;
        let irq = m.irq.saturating_sub(self.machine.irq) as f64;
        let own = own_ticks().saturating_sub(self.own) as f64;
        let mut kernel = 0.0;
        let mut named: Vec<(String, f64)> = Vec::new();
        for (pid, (comm, ticks, kthread)) in other_procs() {
            let d = ticks.saturating_sub(self.others.get(&pid).map_or(0, |o| o.1)) as f64;
            if kthread {
                kernel += d;
            } else if d > 0.0 {
                named.push((comm, d));
            }
        }
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        // Whatever is neither ours nor a kernel thread: other processes, live or finished meanwhile.
        let other = ((busy - own - kernel) / total).max(0.0);
        let top: Vec<String> = named.iter().take(3).map(|(c, d)| format!("{c} {:.0}%", d / total * 100.0)).collect();
        info(format!(
            "machine during {what}: {:.0}% of all CPUs busy; this bench {:.0}%, kernel threads {:.0}%, interrupts {:.0}%, other processes {:.0}%{}{}",
            (busy + irq) / total * 100.0,
            own / total * 100.0,
            kernel / total * 100.0,
            irq / total * 100.0,
            other * 100.0,
            if top.is_empty() { String::new() } else { format!(" (top: {})", top.join(", ")) },
            if other > 0.10 { "  <-- WARNING: the machine was not quiet; figures are pessimistic" } else { "" }
        ));
        other
    }
}

// -- data ---------------------------------------------------------------------------------------

/// Small deterministic PRNG (xorshift) so the data is varied but reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.pick(WORDS)).collect::<Vec<_>>().join(" ")
    }
}

const WORDS: &[&str] = &[
    "customer", "order", "invoice", "email", "slack", "channel", "sheet", "row", "update", "create", "lookup", "status",
    "pending", "shipped", "refund", "total", "amount", "currency", "date", "filter", "merge", "split", "batch", "retry",
    "webhook", "payload", "header", "token", "api", "response", "items", "map", "reduce", "json", "parse", "format",
    "notify", "team", "owner", "priority", "ticket", "crm", "lead", "contact", "company", "deal", "stage", "won", "lost",
    "const", "return", "await", "let", "if", "else", "for", "of", "=>", "{{", "}}", "$json", "$node", "input",
];

const NODE_TYPES: &[&str] = &[
    "n8n-nodes-base.httpRequest", "n8n-nodes-base.code", "n8n-nodes-base.set", "n8n-nodes-base.if",
    "n8n-nodes-base.slack", "n8n-nodes-base.googleSheets", "n8n-nodes-base.merge", "n8n-nodes-base.splitInBatches",
];

/// An n8n-shaped workflow of at least `target` bytes of compact JSON: varied nodes (ids,
/// positions, URLs, code snippets built from a word list), chained connections. Not a run of
/// one repeated character, so gzip does realistic work.
fn realistic_workflow(target: usize, seed: u64) -> Value {
    let mut rng = Rng(seed | 1);
    let mut nodes = vec![json!({
        "id": uuid::Uuid::from_u64_pair(rng.next(), rng.next()).to_string(),
        "name": "When clicking Execute", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
        "position": [240, 300], "parameters": {}
    })];
    let mut names = vec!["When clicking Execute".to_string()];
    loop {
        let i = nodes.len();
        let ty = rng.pick(NODE_TYPES);
        let name = format!("{} {i}", ty.trim_start_matches("n8n-nodes-base."));
        let parameters = match ty {
            "n8n-nodes-base.httpRequest" => json!({
                "method": rng.pick(&["GET", "POST", "PATCH"]),
                "url": format!("https://api.example.com/v{}/{}/{}", rng.next() % 3 + 1, rng.pick(WORDS), rng.pick(WORDS)),
                "sendHeaders": true,
                "headerParameters": {"parameters": [
                    {"name": "Authorization", "value": "={{ 'Bearer ' + $json.token }}"},
                    {"name": "X-Request-Id", "value": format!("{:x}", rng.next())}
                ]},
                "options": {"timeout": 10000 + rng.next() % 5000}
            }),
            "n8n-nodes-base.code" => json!({
                "jsCode": (0..6).map(|_| format!("const {} = $input.item.json.{} ?? '{}';", rng.pick(WORDS), rng.pick(WORDS), rng.words(4))).collect::<Vec<_>>().join("\n")
            }),
            "n8n-nodes-base.set" => json!({
                "assignments": {"assignments": (0..3).map(|k| json!({
                    "id": format!("{:x}", rng.next()), "name": format!("{}_{k}", rng.pick(WORDS)),
                    "value": format!("={{{{ $json.{} }}}}", rng.pick(WORDS)), "type": "string"
                })).collect::<Vec<_>>()}
            }),
            "n8n-nodes-base.if" => json!({
                "conditions": {"conditions": [{"leftValue": format!("={{{{ $json.{} }}}}", rng.pick(WORDS)),
                    "rightValue": rng.pick(WORDS), "operator": {"type": "string", "operation": "equals"}}], "combinator": "and"}
            }),
            _ => json!({
                "resource": rng.pick(WORDS), "operation": rng.pick(&["create", "update", "get", "append"]),
                "text": rng.words(8), "options": {}
            }),
        };
        nodes.push(json!({
            "id": uuid::Uuid::from_u64_pair(rng.next(), rng.next()).to_string(),
            "name": name, "type": ty, "typeVersion": 1 + rng.next() % 4,
            "position": [240 + 220 * i as u64, 200 + rng.next() % 400], "parameters": parameters
        }));
        names.push(name);
        let mut conns = serde_json::Map::new();
        for w in names.windows(2) {
            conns.insert(w[0].clone(), json!({"main": [[{"node": w[1], "type": "main", "index": 0}]]}));
        }
        let wf = json!({"name": format!("Flow {seed}"), "nodes": nodes, "connections": conns,
                        "settings": {"executionOrder": "v1"}, "active": false});
        if compact(&wf).len() >= target {
            return wf;
        }
    }
}

fn interaction_body(wf: &Value, msg: &str) -> Value {
    json!({
        "platform": "n8n", "kind": "workflow_generation",
        "user_message": msg,
        "ai_response": "Here is a workflow that does that. It starts manually, calls the API and posts the result.",
        "intent": "create_workflow",
        "workflow": wf,
        "success": true,
        "processing_time_ms": 1834,
        "model_version": "claude-sonnet-4-5",
        "metadata": {"client": "web", "session": "c0ffee", "locale": "en-GB"},
    })
}

fn config_for(dir: &Path) -> Config {
    let vars: HashMap<&str, String> = HashMap::from([
        ("COLLECTOR_DATA_DIR", dir.display().to_string()),
        ("COLLECTOR_JWT_SECRET", SECRET.to_string()),
    ]);
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

fn runtime(name: &str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        // Keep blocking threads alive so per-thread CPU accounting sees all of them.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// -- 1. ingest CPU ------------------------------------------------------------------------------

fn ingest_cpu(report: &mut Report) {
    println!("\n== 1. ingest CPU per 50 KB workflow (parse body, NewInteraction::parse, content_hash, pack; no storage)");
    let wf = realistic_workflow(50 * 1024, 42);
    let body = serde_json::to_vec(&interaction_body(&wf, "Build me a flow that syncs new orders to the CRM and tells the team on Slack")).expect("body");
    let wf_len = compact(&wf).len();
    let threshold = config_for(Path::new("/nonexistent")).compression_threshold_bytes();
    let packed = StoredWorkflow::pack(&wf, threshold);
    info(format!(
        "workflow {wf_len} B compact JSON ({} nodes), body {} B; packs to {} B (gzip={}, threshold {threshold} B)",
        wf["nodes"].as_array().map_or(0, Vec::len),
        body.len(),
        packed.stored_bytes(),
        packed.compressed
    ));
    // What the older system stored for this workflow: hex of gzip level 9 (twice the gzip bytes).
    // Stored bytes must stay at or under half of that (issue 16).
    let text = compact(&wf);
    let legacy_hex_bytes = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&text).expect("gzip");
        2 * gz.finish().expect("gzip").len()
    };
    let mut row = Vec::new();
    for level in 1..=9u32 {
        use std::io::Write;
        let c0 = thread_cpu_ns().unwrap_or(0);
        let mut len = 0;
        for _ in 0..50 {
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(text.len() / 3), flate2::Compression::new(level));
            gz.write_all(&text).expect("gzip");
            len = gz.finish().expect("gzip").len();
        }
        let us = thread_cpu_ns().unwrap_or(0).saturating_sub(c0) as f64 / 1e3 / 50.0;
        row.push(format!("{level}: {len} B {us:.0} us"));
    }
    info(format!("gzip of the workflow by level (bytes, CPU per workflow): {}; older system stored {legacy_hex_bytes} B (hex of gzip-9)", row.join("; ")));
    report.add(
        "ingest_50kb_stored_bytes",
        packed.stored_bytes() as f64,
        Goal::AtMost((legacy_hex_bytes / 2) as f64),
        "<= the older system's hex(gzip-9) bytes / 2",
    );
    let user = UserId::parse("bench-user").expect("user");
    let iters = env_num("FIGURES_INGEST_ITERS", 2000) as u32;
    let warmup = (iters / 10).max(10);
    let mut step_ns = [0u128; 4];
    let one = |timed: bool, step_ns: &mut [u128; 4]| {
        let t0 = Instant::now();
        let v = http::body::parse_json(&body).expect("body parses");
        let t1 = Instant::now();
        let now = Utc::now();
        // Takes the body by value, as `App::log_interaction` does (workflow moved out, the rest dropped).
        let new = NewInteraction::parse(v, now).expect("valid interaction");
        let t2 = Instant::now();
        let hash = new.content_hash(&user);
        let t3 = Instant::now();
        let stored = new.workflow.map(|w| StoredWorkflow::pack(&Value::Object(w), threshold));
        let t4 = Instant::now();
        black_box((hash, stored));
        if timed {
            for (s, (a, b)) in step_ns.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)]) {
                *s += (b - a).as_nanos();
            }
        }
    };
    for _ in 0..warmup {
        one(false, &mut step_ns);
    }
    let cpu0 = thread_cpu_ns();
    let wall0 = Instant::now();
    // Ten batches, to show how steady the machine is (a VM's neighbours show up here).
    let mut batch_ms = Vec::with_capacity(10);
    for b in 0..10 {
        let n = iters / 10 + u32::from(b < iters % 10);
        let c = thread_cpu_ns();
        for _ in 0..n {
            one(true, &mut step_ns);
        }
        if let Some((c0, c1)) = c.zip(thread_cpu_ns()) {
            batch_ms.push((c1 - c0) as f64 / 1e6 / n.max(1) as f64);
        }
    }
    batch_ms.sort_by(f64::total_cmp);
    let wall_ms = wall0.elapsed().as_secs_f64() * 1000.0 / iters as f64;
    let cpu_ms = cpu0.zip(thread_cpu_ns()).map(|(a, b)| (b - a) as f64 / 1e6 / iters as f64);
    let per = |ns: u128| ns as f64 / 1e6 / iters as f64;
    info(format!(
        "{iters} iterations after {warmup} warm-up; wall {wall_ms:.3} ms/op; steps (wall): parse_json {:.3}, NewInteraction::parse {:.3}, content_hash {:.3}, pack {:.3} ms",
        per(step_ns[0]),
        per(step_ns[1]),
        per(step_ns[2]),
        per(step_ns[3])
    ));
    if let (Some(lo), Some(hi)) = (batch_ms.first(), batch_ms.last()) {
        info(format!("CPU ms/op over 10 batches: min {lo:.3}, median {:.3}, max {hi:.3}", batch_ms[batch_ms.len() / 2]));
    }
    match cpu_ms {
        Some(c) => report.add("ingest_cpu_per_50kb_workflow_ms", c, Goal::AtMost(2.0), "thread CPU time, mean"),
        None => report.add("ingest_cpu_per_50kb_workflow_ms", wall_ms, Goal::AtMost(2.0), "wall time of a 1-thread loop, mean"),
    }
}

// -- 2. server throughput -----------------------------------------------------------------------

enum Server {
    InProcess { rt: tokio::runtime::Runtime, _app: App },
    Binary { child: std::process::Child },
}

impl Server {
    fn cpu_ns(&self) -> u64 {
        match self {
            Server::InProcess { .. } => tasks_cpu_ns(Path::new("/proc/self"), is_server_thread),
            Server::Binary { child } => tasks_cpu_ns(&PathBuf::from(format!("/proc/{}", child.id())), any_thread),
        }
    }
    fn stop(self) {
        match self {
            Server::InProcess { rt, _app } => rt.shutdown_timeout(Duration::from_secs(5)),
            Server::Binary { mut child } => {
                if let Some(hwm) = status_kb(&PathBuf::from(format!("/proc/{}", child.id())), "VmHWM:") {
                    info(format!("server process peak RSS {:.1} MiB", hwm as f64 / 1024.0));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn start_server(data_dir: &Path) -> (Server, String) {
    if let Ok(bin) = std::env::var("FIGURES_SERVER_BIN") {
        let mut child = std::process::Command::new(&bin)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("COLLECTOR_DATA_DIR", data_dir)
            .env("COLLECTOR_JWT_SECRET", SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).expect("server binary did not report its address");
        info(format!("server: {bin} serve (pid {}) at {base}", child.id()));
        return (Server::Binary { child }, base);
    }
    let rt = runtime("figures-srv", 2);
    let app = App::open_local(config_for(data_dir)).expect("open store");
    let router = http::router(HttpState::local(app.clone()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let _ = axum::serve(listener, router).await;
    });
    info(format!("server: in-process router on its own runtime (2 workers, like `collector serve` here) at http://{addr}"));
    (Server::InProcess { rt, _app: app }, format!("http://{addr}"))
}

#[derive(Default)]
struct Tally {
    created: u64,
    other: HashMap<String, u64>,
    samples: Vec<String>,
    latencies_us: Vec<u32>,
}

async fn post_many(client: reqwest::Client, url: String, tok: String, wf_text: Arc<String>, who: usize, n: u64) -> Tally {
    let mut t = Tally::default();
    for k in 0..n {
        let body = format!(
            r#"{{"platform":"n8n","kind":"workflow_generation","user_message":"client {who} request {k}: sync new Shopify orders to HubSpot and ping #sales","ai_response":"Here is a workflow that does that.","workflow":{wf_text},"success":true,"processing_time_ms":{},"model_version":"claude-sonnet-4-5","metadata":{{"client":"web","session":"s{who}"}}}}"#,
            900 + k % 1000
        );
        let t0 = Instant::now();
        let res = client.post(&url).bearer_auth(&tok).header("content-type", "application/json").body(body).send().await;
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await;
                t.latencies_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if status == 201 && bytes.is_ok() {
                    t.created += 1;
                } else {
                    *t.other.entry(status.to_string()).or_default() += 1;
                    if t.samples.len() < 3 {
                        t.samples.push(format!("{status}: {}", bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()));
                    }
                }
            }
            Err(e) => {
                *t.other.entry(format!("transport error ({})", if e.is_timeout() { "timeout" } else { "other" })).or_default() += 1;
                if t.samples.len() < 3 {
                    t.samples.push(e.to_string());
                }
            }
        }
    }
    t
}

fn server_throughput(report: &mut Report) {
    let total = env_num("FIGURES_SERVER_REQUESTS", 30_000);
    let clients = env_num("FIGURES_SERVER_CLIENTS", 64).max(1) as usize;
    println!("\n== 2. local server: {clients} keep-alive clients logging {total} interactions (POST /api/interactions)");
    server_case(report, "server", 2, total, clients, 5000.0, None);
}

/// Issue 16's large case: 50 KB workflows (gzip-compressed on ingest), 32 connections.
fn server_throughput_50kb(report: &mut Report) {
    let total = env_num("FIGURES_SERVER50_REQUESTS", 10_000);
    let clients = env_num("FIGURES_SERVER50_CLIENTS", 32).max(1) as usize;
    println!("\n== 2b. local server, 50 KB workflows: {clients} keep-alive clients logging {total} interactions");
    server_case(report, "server_50kb", 50, total, clients, 2500.0, Some(30.0));
}

/// `clients` keep-alive clients post `total` interactions with a `wf_kb` KB workflow each;
/// figures are named `{name}_...`. `p99_goal`: ms, or None to show p99 without a goal.
fn server_case(report: &mut Report, name: &str, wf_kb: usize, total: u64, clients: usize, rate_goal: f64, p99_goal: Option<f64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, base) = start_server(&dir.path().join("data"));
    let client_rt = runtime("figures-cli", 2);
    let wf = realistic_workflow(wf_kb * 1024, 7);
    let wf_text = Arc::new(serde_json::to_string(&wf).expect("wf"));
    info(format!("body: ~{} B each, workflow {} B ({} nodes); user tokens, one user per client", wf_text.len() + 330, wf_text.len(), wf["nodes"].as_array().map_or(0, Vec::len)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("{base}/api/interactions");
    let toks: Vec<String> = (0..clients).map(|i| token(&format!("bench-user-{i}"), &[])).collect();

    let run = |per: Vec<u64>| -> (Tally, Duration) {
        client_rt.block_on(async {
            let started = Instant::now();
            let tasks: Vec<_> = per
                .iter()
                .enumerate()
                .map(|(i, &n)| tokio::spawn(post_many(client.clone(), url.clone(), toks[i].clone(), wf_text.clone(), i, n)))
                .collect();
            let mut all = Tally::default();
            let joined = tokio::time::timeout(Duration::from_secs(600), futures_join(tasks)).await.expect("server run took over 10 minutes");
            for t in joined {
                all.created += t.created;
                for (k, v) in t.other {
                    *all.other.entry(k).or_default() += v;
                }
                all.samples.extend(t.samples);
                all.latencies_us.extend(t.latencies_us);
            }
            (all, started.elapsed())
        })
    };

    // Warm-up: open every connection, fill caches.
    let (warm, _) = run(vec![10; clients]);
    let per: Vec<u64> = (0..clients as u64).map(|i| total / clients as u64 + u64::from(i < total % clients as u64)).collect();
    let srv0 = server.cpu_ns();
    let cli0 = tasks_cpu_ns(Path::new("/proc/self"), is_client_thread);
    let (mut t, elapsed) = run(per);
    let srv_cpu = server.cpu_ns().saturating_sub(srv0) as f64 / 1e9;
    let cli_cpu = tasks_cpu_ns(Path::new("/proc/self"), is_client_thread).saturating_sub(cli0) as f64 / 1e9;
    let secs = elapsed.as_secs_f64();
    let rate = t.created as f64 / secs;
    t.latencies_us.sort_unstable();
    let pct = |p: f64| t.latencies_us.get(((t.latencies_us.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    info(format!(
        "{} x 201 in {secs:.2} s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        t.created,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    ));
    info(format!(
        "CPU during the run: server {srv_cpu:.2} s ({:.0} us/request, {:.0}% of 2 cores), load generator {cli_cpu:.2} s ({:.0}% of 2 cores)",
        srv_cpu * 1e6 / total as f64,
        srv_cpu / secs / 2.0 * 100.0,
        cli_cpu / secs / 2.0 * 100.0
    ));
    if !t.other.is_empty() {
        info(format!("non-201 answers: {:?}; e.g. {:?}", t.other, t.samples));
    }
    report.add(&format!("{name}_logged_interactions_per_s"), rate, Goal::AtLeast(rate_goal), format!("{clients} clients, {total} requests, loopback"));
    report.add(&format!("{name}_p99_ms"), pct(0.99), p99_goal.map_or(Goal::Info, Goal::AtMost), format!("latency, {clients} clients"));

    // No lost record: the store counts exactly what was answered 201.
    let answered = warm.created + t.created;
    let stats: Value = client_rt.block_on(async {
        client
            .get(format!("{base}/api/feedback/stats"))
            .bearer_auth(token("root", &["admin"]))
            .send()
            .await
            .expect("stats request")
            .json()
            .await
            .expect("stats JSON")
    });
    let stored = stats["overview"]["total_records"].as_i64().unwrap_or(-1);
    info(format!("201 answers (incl. {} warm-up) {answered}, stats total_records {stored}", warm.created));
    let non_201 = t.other.values().sum::<u64>() + warm.other.values().sum::<u64>();
    report.add(&format!("{name}_non_201_answers"), non_201 as f64, Goal::Exactly(0.0), "");
    report.add(&format!("{name}_lost_records"), answered as f64 - stored as f64, Goal::Exactly(0.0), "201s minus stats total_records");
    drop(client_rt);
    server.stop();
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("client task panicked"));
    }
    out
}

// -- store filling ------------------------------------------------------------------------------

/// Insert `n` records straight into the hot store from `tasks` concurrent tasks, `make(i)`
/// building record i. Prints progress; returns the rate (records/s).
async fn fill(app: &App, from: u64, to: u64, what: &str, make: impl Fn(u64) -> Interaction + Send + Sync + 'static) -> f64 {
    const TASKS: u64 = 8;
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let n = to - from;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let (app, make, done) = (app.clone(), make.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let mut i = from + t;
            while i < to {
                let rec = make(i);
                match app.hot.insert_interaction(&rec).await {
                    Ok(collector::ports::Inserted::New) => {}
                    other => panic!("insert {i}: {other:?}"),
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += TASKS;
            }
        }));
    }
    let step = (n / 10).max(1);
    let mut next = step;
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let d = done.load(Ordering::Relaxed);
            if d >= next && d < n {
                info(format!("{what}: {}/{to} ({:.0} inserts/s)", from + d, d as f64 / started.elapsed().as_secs_f64()));
                next = (d / step + 1) * step;
            }
        }
    };
    tokio::select! {
        _ = futures_join(handles) => {}
        _ = progress => {}
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    info(format!("{what}: {to} records ({n} inserted in {secs:.1} s, {rate:.0} inserts/s)"));
    rate
}

fn small_record(i: u64, base: chrono::DateTime<Utc>) -> Interaction {
    const PLATFORMS: [&str; 3] = ["n8n", "zapier", "make"];
    let wf = StoredWorkflow { bytes: br#"{"nodes":[{"name":"Start"}]}"#.to_vec(), compressed: false, original_bytes: 28 };
    Interaction {
        id: Id::new(),
        user_id: UserId::parse(&format!("user-{}", i % 500)).expect("user"),
        platform: Platform::parse(PLATFORMS[(i % 3) as usize]).expect("platform"),
        kind: if i.is_multiple_of(2) { Kind::WorkflowGeneration } else { Kind::Conversation },
        user_message: format!("request {i}: move new leads into the CRM"),
        ai_response: Some("Done.".into()),
        intent: None,
        workflow: i.is_multiple_of(2).then_some(wf),
        success: !i.is_multiple_of(10),
        error_message: None,
        processing_time_ms: Some(500 + i % 1000),
        model_version: Some("m1".into()),
        metadata: None,
        training_consent: true,
        created_at: base + chrono::Duration::milliseconds(i as i64),
        content_hash: format!("{i:064x}"),
        summary: FeedbackSummary::default(),
    }
}

// -- 3. stats at 10k vs 1M ------------------------------------------------------------------------

/// `App::stats` timed `calls` times in each of 5 rounds one second apart (so a checkpoint or
/// kernel writeback left over from filling shows up as one odd round, not as the figure):
/// (median, p90 over all calls, total_records, median of each round).
fn time_stats(rt: &tokio::runtime::Runtime, app: &App, calls: usize) -> (f64, f64, i64, Vec<f64>) {
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

fn stats_scaling(report: &mut Report) {
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
    info(format!("at {n_small} records: median {m_small:.3} ms, p90 {p90_small:.3} ms (round medians {})", fmt_ms(&r_small)));
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
    report.add("stats_time_ratio_big_over_small", m_big / m_small, Goal::AtMost(1.5), format!("{} / {}", short(n_big as u64), short(n_small as u64)));
    drop(app);
    drop(rt);
}

/// Put both measurements on the same footing: flush the store's files to disk (so kernel
/// writeback of a fresh fill does not run during the timing) and let the writer go idle.
fn settle(data_dir: &Path) {
    let started = Instant::now();
    for name in ["collector.sqlite3", "collector.sqlite3-wal"] {
        if let Ok(f) = std::fs::File::open(data_dir.join(name)) {
            let _ = f.sync_all();
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    info(format!("settled (store files synced to disk, 1 s idle) in {:.1} s", started.elapsed().as_secs_f64()));
}

fn fmt_ms(xs: &[f64]) -> String {
    xs.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ")
}

fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

// -- 4. export --------------------------------------------------------------------------------------

struct ChildResult {
    bytes: u64,
    lines: u64,
    secs: f64,
    base_kb: u64,
    hwm_kb: u64,
    /// CPU seconds of all the child's threads during the export.
    cpu_secs: f64,
    /// VmRSS (kB) at 1/4, 1/2, 3/4 and the end of the stream, "a/b/c/d".
    rss_timeline: String,
    chunks: u64,
    max_chunk: u64,
}

/// Child process: open the store in `FIGURES_CHILD_DIR`, export platform n8n (all records),
/// count bytes and lines, print the result with this process's peak RSS.
fn export_child(dir: &Path) {
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
    let timeline = format!("{}/{}/{}/{}", at(1), at(2), at(3), status_kb(Path::new("/proc/self"), "VmRSS:").unwrap_or(0));
    let cpu_secs = tasks_cpu_ns(Path::new("/proc/self"), any_thread).saturating_sub(cpu0) as f64 / 1e9;
    let hwm_kb = status_kb(Path::new("/proc/self"), "VmHWM:").unwrap_or(0);
    println!("FIGURES_CHILD_RESULT {bytes} {lines} {secs} {base_kb} {hwm_kb} {cpu_secs} {timeline} {chunks} {max_chunk}");
}

fn run_export_child(dir: &Path) -> ChildResult {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .env("FIGURES_CHILD", "export")
        .env("FIGURES_CHILD_DIR", dir)
        .output()
        .expect("run export child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FIGURES_CHILD_RESULT "))
        .unwrap_or_else(|| panic!("export child failed ({}): {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).expect("child result field");
    ChildResult { bytes: num(0) as u64, lines: num(1) as u64, secs: num(2), base_kb: num(3) as u64, hwm_kb: num(4) as u64, cpu_secs: num(5), rss_timeline: f.get(6).map_or(String::new(), |t| t.to_string()),
        chunks: num(7) as u64,
        max_chunk: num(8) as u64,
    }
}

fn export_record(i: u64, base: chrono::DateTime<Utc>, wfs: &[StoredWorkflow]) -> Interaction {
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

fn export_scaling(report: &mut Report) {
    let small = env_num("FIGURES_EXPORT_SMALL", 20_000);
    let big = env_num("FIGURES_EXPORT_BIG", 200_000).max(small);
    println!("\n== 4. export (training JSONL, all records, success_only=false) at {small} and {big} records; each export in a child process");
    let dir = tempfile::tempdir().expect("tempdir");
    // FIGURES_EXPORT_KEEP=PATH: build the store in PATH/data (must not exist yet) and keep it, to
    // re-run just the export child on it: FIGURES_CHILD=export FIGURES_CHILD_DIR=PATH/data.
    let keep = std::env::var_os("FIGURES_EXPORT_KEEP").map(PathBuf::from);
    let data = keep.as_ref().map_or_else(|| dir.path().join("data"), |k| k.join("data"));
    let rt = runtime("figures-fil", 2);
    let app = App::open_local(config_for(&data)).expect("open store");
    let threshold = app.config.compression_threshold_bytes();
    // 16 different ~2 KB workflows, stored as ingest stores them (below the gzip threshold).
    let wfs: Arc<Vec<StoredWorkflow>> = Arc::new((0..16).map(|s| StoredWorkflow::pack(&realistic_workflow(2 * 1024, 100 + s), threshold)).collect());
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
        let mib: Vec<String> = r.rss_timeline.split('/').map(|kb| format!("{:.1}", kb.parse::<f64>().unwrap_or(0.0) / 1024.0)).collect();
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
        report.add(&format!("export_mb_per_s_at_{}", short(*n)), *mb_s, Goal::AtLeast(100.0), format!("MB = 10^6 B; {:.0} MB out", r.bytes as f64 / 1e6));
    }
    for (n, r, _) in &results {
        report.add(&format!("export_peak_rss_mb_at_{}", short(*n)), r.hwm_kb as f64 / 1024.0, Goal::Info, "child VmHWM, MiB");
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

// -- 5. archive ------------------------------------------------------------------------------------

/// Child process: open the store in `FIGURES_CHILD_DIR`, run one archive (records older than
/// DATA_RETENTION_DAYS), print raw and compressed bytes, wall and CPU seconds, peak RSS.
fn archive_child(dir: &Path) {
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
fn archive_gzip_levels(base: chrono::DateTime<Utc>, wfs: &[StoredWorkflow]) {
    use std::io::Write;
    let mut lines = Vec::new();
    for i in 0..10_000u64 {
        let rec = export_record(i, base, wfs);
        lines.extend(serde_json::to_vec(&FullRecord::build(&rec, vec![], vec![], true).expect("record")).expect("line"));
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
        row.push(format!("{level}: {:.1}x, {:.0} MB/CPU-s", lines.len() as f64 / out.len() as f64, lines.len() as f64 / 1e6 / cpu.max(1e-9)));
    }
    info(format!("gzip of {:.1} MB of archive lines by level (ratio, raw MB per CPU-second): {}", lines.len() as f64 / 1e6, row.join("; ")));
}

fn copy_dir(from: &Path, to: &Path) {
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

fn archive_throughput(report: &mut Report) {
    let n = env_num("FIGURES_ARCHIVE_RECORDS", 360_000);
    println!("\n== 5. archive: {n} records older than the retention (about 2.9 KB of raw JSONL each), one run in a child process");
    let threshold = config_for(Path::new("/nonexistent")).compression_threshold_bytes();
    let wfs: Arc<Vec<StoredWorkflow>> = Arc::new((0..16).map(|s| StoredWorkflow::pack(&realistic_workflow(2 * 1024, 300 + s), threshold)).collect());
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
            rec.created_at = base - chrono::Duration::days((i / per_day) as i64) + chrono::Duration::milliseconds((i % per_day) as i64);
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
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FIGURES_CHILD_RESULT "))
        .unwrap_or_else(|| panic!("archive child failed ({}): {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    let f: Vec<f64> = line.split_whitespace().map(|x| x.parse().expect("child result field")).collect();
    let [raw, compressed, records, objects, secs, cpu_secs, base_kb, hwm_kb] = f[..] else { panic!("child result: {line}") };
    info(format!(
        "{records} records into {objects} objects: {:.0} MB raw JSONL -> {:.0} MB gzip in {secs:.1} s wall, {cpu_secs:.1} CPU-s ({:.2} cores busy); child peak RSS {:.1} MiB (after open {:.1} MiB)",
        raw / 1e6,
        compressed / 1e6,
        cpu_secs / secs,
        hwm_kb / 1024.0,
        base_kb / 1024.0
    ));
    report.add("archive_raw_mb_per_cpu_s", raw / 1e6 / cpu_secs, Goal::AtLeast(80.0), "raw JSONL MB (10^6 B) per CPU-second, all threads");
    report.add("archive_raw_mb_per_s_wall", raw / 1e6 / secs, Goal::Info, "MB/s, wall clock");
    report.add("archive_peak_rss_mb", hwm_kb / 1024.0, Goal::AtMost(100.0), format!("child VmHWM, MiB, archiving {:.2} GB raw", raw / 1e9));
    report.add("archive_records_missing", n as f64 - records, Goal::Exactly(0.0), "");
    if keep.is_some() {
        let _ = std::fs::remove_dir_all(&data);
    }
}

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
    let loud: Vec<String> = noisy.iter().filter(|(_, o)| *o > 0.10).map(|(n, o)| format!("{n} ({:.0}%)", o * 100.0)).collect();
    if loud.is_empty() {
        println!("machine was quiet (other processes < 10% of the CPUs during every figure)");
    } else {
        println!("WARNING: other processes used > 10% of the CPUs during: {}; rerun on a quiet machine", loud.join(", "));
    }
}
