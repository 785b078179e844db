//! Generated data and stores: a deterministic PRNG, realistic workflows, request bodies and
//! records, the store config and runtimes, filling a store, and settling it before timing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use collector::app::App;
use collector::config::Config;
use collector::domain::records::{FeedbackSummary, Interaction};
use collector::domain::types::{Id, Kind, Platform, UserId};
use collector::domain::workflow::{StoredWorkflow, compact};
use collector_e2e::SECRET;
use serde_json::{Value, json};

use crate::report::*;

/// Small deterministic PRNG (xorshift) so the data is varied but reproducible.
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    pub(crate) fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.pick(WORDS)).collect::<Vec<_>>().join(" ")
    }
}

pub(crate) const WORDS: &[&str] = &[
    "customer", "order", "invoice", "email", "slack", "channel", "sheet", "row", "update", "create", "lookup",
    "status", "pending", "shipped", "refund", "total", "amount", "currency", "date", "filter", "merge", "split",
    "batch", "retry", "webhook", "payload", "header", "token", "api", "response", "items", "map", "reduce", "json",
    "parse", "format", "notify", "team", "owner", "priority", "ticket", "crm", "lead", "contact", "company", "deal",
    "stage", "won", "lost", "const", "return", "await", "let", "if", "else", "for", "of", "=>", "{{", "}}", "$json",
    "$node", "input",
];

pub(crate) const NODE_TYPES: &[&str] = &[
    "n8n-nodes-base.httpRequest",
    "n8n-nodes-base.code",
    "n8n-nodes-base.set",
    "n8n-nodes-base.if",
    "n8n-nodes-base.slack",
    "n8n-nodes-base.googleSheets",
    "n8n-nodes-base.merge",
    "n8n-nodes-base.splitInBatches",
];

/// An n8n-shaped workflow of at least `target` bytes of compact JSON: varied nodes (ids,
/// positions, URLs, code snippets built from a word list), chained connections. Not a run of
/// one repeated character, so gzip does realistic work.
pub(crate) fn realistic_workflow(target: usize, seed: u64) -> Value {
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

pub(crate) fn interaction_body(wf: &Value, msg: &str) -> Value {
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

pub(crate) fn config_for(dir: &Path) -> Config {
    let vars: HashMap<&str, String> = HashMap::from([
        ("COLLECTOR_DATA_DIR", dir.display().to_string()),
        ("COLLECTOR_JWT_SECRET", SECRET.to_string()),
    ]);
    Config::from_lookup(|k| vars.get(k).cloned()).expect("config")
}

pub(crate) fn runtime(name: &str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        // Keep blocking threads alive so per-thread CPU accounting sees all of them.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub(crate) async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("client task panicked"));
    }
    out
}

/// Insert `n` records straight into the hot store from `tasks` concurrent tasks, `make(i)`
/// building record i. Prints progress; returns the rate (records/s).
pub(crate) async fn fill(
    app: &App,
    from: u64,
    to: u64,
    what: &str,
    make: impl Fn(u64) -> Interaction + Send + Sync + 'static,
) -> f64 {
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
                info(format!(
                    "{what}: {}/{to} ({:.0} inserts/s)",
                    from + d,
                    d as f64 / started.elapsed().as_secs_f64()
                ));
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

pub(crate) fn small_record(i: u64, base: chrono::DateTime<Utc>) -> Interaction {
    const PLATFORMS: [&str; 3] = ["n8n", "zapier", "make"];
    let wf =
        StoredWorkflow { bytes: br#"{"nodes":[{"name":"Start"}]}"#.to_vec(), compressed: false, original_bytes: 28 };
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

/// Put both measurements on the same footing: flush the store's files to disk (so kernel
/// writeback of a fresh fill does not run during the timing) and let the writer go idle.
pub(crate) fn settle(data_dir: &Path) {
    let started = Instant::now();
    for name in ["collector.sqlite3", "collector.sqlite3-wal"] {
        if let Ok(f) = std::fs::File::open(data_dir.join(name)) {
            let _ = f.sync_all();
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    info(format!("settled (store files synced to disk, 1 s idle) in {:.1} s", started.elapsed().as_secs_f64()));
}
