//! What tests/lambda.rs and tests/lambda_archive.rs share: the functions built once, one
//! `cargo lambda watch` per function (the Lambda runtime API emulator) over the emulator's stack,
//! and an invoker that sends them events as API Gateway, EventBridge or a table stream would.
//!
//! Needs `infra/emulator.sh start` and cargo-lambda (`infra/tools.sh` installs both; its venv
//! `bin` is looked up after PATH). Without them a test prints why and passes locally; under CI
//! (`CI` set) it fails. The functions are built once (debug, `cargo build -p fn-NAME ...`) before
//! the watchers start, so each watcher's own `cargo run -p fn-NAME` finds its binary up to date:
//! the binaries are the lean ones, collector with `lambda` only, as `sam build` makes them.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collector::testing::{Emulator, Stack};
use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An event of `events/`, by its path under it.
pub fn event(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(rel)).expect("event file");
    serde_json::from_str(&text).expect("event JSON")
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// cargo-lambda on PATH, else in the venv `infra/tools.sh` makes. Returns a PATH that has it.
fn cargo_lambda_path() -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let has = |dir: &Path| dir.join("cargo-lambda").is_file();
    if std::env::split_paths(&path).any(|d| has(&d)) {
        return Some(path);
    }
    let venv = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/collector-venv/bin");
    has(&venv).then(|| format!("{}:{path}", venv.display()))
}

/// The emulator with a fresh stack on it, and the PATH that has cargo-lambda; `None` (after
/// saying why, or failing under CI) when either is missing.
pub async fn emulator_and_cargo_lambda() -> Option<(Emulator, Stack, String)> {
    let emu = Emulator::connect().await?;
    let Some(path) = cargo_lambda_path() else {
        skip_or_fail("cargo-lambda is not on PATH (infra/tools.sh installs it)");
        return None;
    };
    let stack = emu.create_stack().await;
    Some((emu, stack, path))
}

/// The settings every function gets to run over `stack` on the emulator, plus `extra`.
pub fn stack_env<'a>(emu: &'a Emulator, stack: &'a Stack, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("COLLECTOR_BACKEND", "aws"),
        ("TABLE_NAME", stack.table.as_str()),
        ("ARCHIVE_TABLE_NAME", stack.archive_table.as_str()),
        ("S3_BUCKET_NAME", stack.bucket.as_str()),
        ("DYNAMODB_ENDPOINT", emu.endpoint.as_str()),
        ("S3_ENDPOINT", emu.endpoint.as_str()),
        ("S3_ACCESS_KEY", "test"),
        ("S3_SECRET_KEY", "test"),
        ("S3_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    env.extend_from_slice(extra);
    env.push(("RUST_LOG", "info"));
    env
}

/// `cargo lambda watch` in its own process group, stopped (group and all) on drop.
struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The functions running, one watcher each; stopped on drop.
pub struct Functions {
    watchers: Vec<Watcher>,
    bases: HashMap<&'static str, String>,
}

impl Functions {
    /// Builds `functions` (binary names; packages are `fn-{name}`) once in the workspace, then
    /// runs each under `cargo lambda watch` (PATH `path`) with `env`, its log in `dir`, and waits
    /// until each listens.
    pub async fn start(functions: &[&'static str], path: &str, env: &[(&str, &str)], dir: &Path) -> Functions {
        let started = Instant::now();
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.current_dir(root()).arg("build").arg("--quiet");
        for f in functions {
            build.args(["-p", &format!("fn-{f}")]);
        }
        assert!(build.status().expect("cargo build").success(), "building the functions failed");
        eprintln!("functions built in {:.0?}", started.elapsed());

        let env_file = dir.join("functions.env");
        let mut f = std::fs::File::create(&env_file).expect("env file");
        for (k, v) in env {
            writeln!(f, "{k}={v}").expect("write env");
        }
        drop(f);

        let mut watchers = Vec::new();
        let mut bases = HashMap::new();
        for &function in functions {
            let port = free_port();
            let log = dir.join(format!("watch-{function}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let child = {
                use std::os::unix::process::CommandExt;
                Command::new("cargo")
                    .current_dir(root())
                    .env("PATH", path)
                    .args(["lambda", "watch", "--package", &format!("fn-{function}"), "--ignore-changes", "--quiet"])
                    .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
                    .arg("--env-file")
                    .arg(&env_file)
                    .stdin(Stdio::null())
                    .stdout(out.try_clone().expect("log"))
                    .stderr(out)
                    .process_group(0)
                    .spawn()
                    .expect("cargo lambda watch")
            };
            watchers.push(Watcher { child, log });
            bases.insert(function, format!("http://127.0.0.1:{port}"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                let w = watchers.last().expect("watcher");
                assert!(Instant::now() < deadline, "cargo lambda watch ({function}) did not listen:\n{}", w.log_tail());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Functions { watchers, bases }
    }

    /// An invoker of these functions.
    pub fn invoker(&self) -> Invoker {
        Invoker {
            client: reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client"),
            bases: self.bases.clone(),
        }
    }

    /// The end of each watcher's log.
    fn logs(&self) -> String {
        self.watchers.iter().map(|w| format!("== {}\n{}", w.log.display(), w.log_tail())).collect::<Vec<_>>().join("\n")
    }

    /// Runs `checks` (which own an [`Invoker`]) for at most 10 minutes; a failure or a timeout
    /// panics with the watchers' logs.
    pub async fn check(&self, checks: impl Future<Output = ()> + Send + 'static) {
        match tokio::time::timeout(Duration::from_secs(600), tokio::spawn(checks)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let msg =
                    e.try_into_panic().ok().and_then(|p| p.downcast::<String>().ok().map(|s| *s)).unwrap_or_default();
                panic!("{msg}\ncargo lambda watch said:\n{}", self.logs());
            }
            Err(_) => panic!("timed out; cargo lambda watch said:\n{}", self.logs()),
        }
    }
}

/// What API Gateway would get back from an HTTP function.
pub struct Answer {
    pub status: u16,
    pub headers: Value,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, String::from_utf8_lossy(&self.body)))
    }
}

/// Invokes the functions through their runtime API emulators.
pub struct Invoker {
    client: reqwest::Client,
    bases: HashMap<&'static str, String>,
}

impl Invoker {
    /// The function's raw answer (the archiver's report or batch response; an HTTP function's
    /// API Gateway response object).
    pub async fn invoke(&self, function: &str, event: &Value) -> Value {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.bases[function]);
        let resp = self.client.post(&url).json(event).send().await.unwrap_or_else(|e| panic!("invoke {function}: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("invoke body");
        assert!(status.is_success(), "invoke {function}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("invoke {function}: not a response: {text}"))
    }

    /// An HTTP function's answer: status, headers and the body (decoded when base64).
    pub async fn http(&self, function: &str, event: &Value) -> Answer {
        let out = self.invoke(function, event).await;
        let raw = out["body"].as_str().unwrap_or_default();
        let body = if out["isBase64Encoded"] == true {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(raw).expect("base64 body")
        } else {
            raw.as_bytes().to_vec()
        };
        Answer {
            status: out["statusCode"].as_u64().unwrap_or_else(|| panic!("invoke {function}: no statusCode: {out}"))
                as u16,
            headers: out["headers"].clone(),
            body,
        }
    }
}
