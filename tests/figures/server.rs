//! Figures 2 and 2b: local server throughput (small and 50 KB workflows), in-process or the
//! `collector serve` binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collector::app::App;
use collector::http::{self, HttpState};
use collector_e2e::{SECRET, token};
use serde_json::Value;

use crate::{data::*, procfs::*, report::*};

pub(crate) enum Server {
    InProcess { rt: tokio::runtime::Runtime, _app: App },
    Binary { child: std::process::Child },
}

impl Server {
    pub(crate) fn cpu_ns(&self) -> u64 {
        match self {
            Server::InProcess { .. } => tasks_cpu_ns(Path::new("/proc/self"), is_server_thread),
            Server::Binary { child } => tasks_cpu_ns(&PathBuf::from(format!("/proc/{}", child.id())), any_thread),
        }
    }
    pub(crate) fn stop(self) {
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

pub(crate) fn start_server(data_dir: &Path) -> (Server, String) {
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
    info(format!(
        "server: in-process router on its own runtime (2 workers, like `collector serve` here) at http://{addr}"
    ));
    (Server::InProcess { rt, _app: app }, format!("http://{addr}"))
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) created: u64,
    pub(crate) other: HashMap<String, u64>,
    pub(crate) samples: Vec<String>,
    pub(crate) latencies_us: Vec<u32>,
}

pub(crate) async fn post_many(
    client: reqwest::Client,
    url: String,
    tok: String,
    wf_text: Arc<String>,
    who: usize,
    n: u64,
) -> Tally {
    let mut t = Tally::default();
    for k in 0..n {
        let body = format!(
            r#"{{"platform":"n8n","kind":"workflow_generation","user_message":"client {who} request {k}: sync new Shopify orders to HubSpot and ping #sales","ai_response":"Here is a workflow that does that.","workflow":{wf_text},"success":true,"processing_time_ms":{},"model_version":"claude-sonnet-4-5","metadata":{{"client":"web","session":"s{who}"}}}}"#,
            900 + k % 1000
        );
        let t0 = Instant::now();
        let res =
            client.post(&url).bearer_auth(&tok).header("content-type", "application/json").body(body).send().await;
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
                        t.samples.push(format!(
                            "{status}: {}",
                            bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
                        ));
                    }
                }
            }
            Err(e) => {
                *t.other
                    .entry(format!("transport error ({})", if e.is_timeout() { "timeout" } else { "other" }))
                    .or_default() += 1;
                if t.samples.len() < 3 {
                    t.samples.push(e.to_string());
                }
            }
        }
    }
    t
}

pub(crate) fn server_throughput(report: &mut Report) {
    let total = env_num("FIGURES_SERVER_REQUESTS", 30_000);
    let clients = env_num("FIGURES_SERVER_CLIENTS", 64).max(1) as usize;
    println!(
        "\n== 2. local server: {clients} keep-alive clients logging {total} interactions (POST /api/interactions)"
    );
    server_case(report, "server", 2, total, clients, 5000.0, None);
}

/// Issue 16's large case: 50 KB workflows (gzip-compressed on ingest), 32 connections.
pub(crate) fn server_throughput_50kb(report: &mut Report) {
    let total = env_num("FIGURES_SERVER50_REQUESTS", 10_000);
    let clients = env_num("FIGURES_SERVER50_CLIENTS", 32).max(1) as usize;
    println!("\n== 2b. local server, 50 KB workflows: {clients} keep-alive clients logging {total} interactions");
    server_case(report, "server_50kb", 50, total, clients, 2500.0, Some(30.0));
}

/// `clients` keep-alive clients post `total` interactions with a `wf_kb` KB workflow each;
/// figures are named `{name}_...`. `p99_goal`: ms, or None to show p99 without a goal.
pub(crate) fn server_case(
    report: &mut Report,
    name: &str,
    wf_kb: usize,
    total: u64,
    clients: usize,
    rate_goal: f64,
    p99_goal: Option<f64>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, base) = start_server(&dir.path().join("data"));
    let client_rt = runtime("figures-cli", 2);
    let wf = realistic_workflow(wf_kb * 1024, 7);
    let wf_text = Arc::new(serde_json::to_string(&wf).expect("wf"));
    info(format!(
        "body: ~{} B each, workflow {} B ({} nodes); user tokens, one user per client",
        wf_text.len() + 330,
        wf_text.len(),
        wf["nodes"].as_array().map_or(0, Vec::len)
    ));
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
                .map(|(i, &n)| {
                    tokio::spawn(post_many(client.clone(), url.clone(), toks[i].clone(), wf_text.clone(), i, n))
                })
                .collect();
            let mut all = Tally::default();
            let joined = tokio::time::timeout(Duration::from_secs(600), futures_join(tasks))
                .await
                .expect("server run took over 10 minutes");
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
    let per: Vec<u64> =
        (0..clients as u64).map(|i| total / clients as u64 + u64::from(i < total % clients as u64)).collect();
    let srv0 = server.cpu_ns();
    let cli0 = tasks_cpu_ns(Path::new("/proc/self"), is_client_thread);
    let (mut t, elapsed) = run(per);
    let srv_cpu = server.cpu_ns().saturating_sub(srv0) as f64 / 1e9;
    let cli_cpu = tasks_cpu_ns(Path::new("/proc/self"), is_client_thread).saturating_sub(cli0) as f64 / 1e9;
    let secs = elapsed.as_secs_f64();
    let rate = t.created as f64 / secs;
    t.latencies_us.sort_unstable();
    let pct = |p: f64| {
        t.latencies_us.get(((t.latencies_us.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0
    };
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
    report.add(
        &format!("{name}_logged_interactions_per_s"),
        rate,
        Goal::AtLeast(rate_goal),
        format!("{clients} clients, {total} requests, loopback"),
    );
    report.add(
        &format!("{name}_p99_ms"),
        pct(0.99),
        p99_goal.map_or(Goal::Info, Goal::AtMost),
        format!("latency, {clients} clients"),
    );

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
    report.add(
        &format!("{name}_lost_records"),
        answered as f64 - stored as f64,
        Goal::Exactly(0.0),
        "201s minus stats total_records",
    );
    drop(client_rt);
    server.stop();
}
