//! The `collector` command as a user runs it: a fresh data folder, the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_collector"));
    c.args(args)
        .current_dir(dir)
        .env("COLLECTOR_DATA_DIR", dir.join("data"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for k in [
        "ENABLE_DATA_COLLECTION",
        "ENABLE_DATA_ARCHIVING",
        "DATA_RETENTION_DAYS",
        "COLLECTOR_BACKEND",
        "COLLECTOR_JWT_SECRET",
        "PLATFORMS",
        "MAX_PLATFORMS",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run collector")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, &[], args);
    assert!(out.status.success(), "collector {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let text = ok(dir, args);
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("collector {args:?} printed no JSON: {text}"))
}

#[test]
fn demo_stats_archive_export_as_a_newcomer_would() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let demo = json(d, &["demo", "--count", "240", "--json"]);
    assert_eq!(demo["interactions"], 240);

    let s = json(d, &["stats", "--json"]);
    let o = &s["overview"];
    assert_eq!(o["total_records"], 240);
    assert_eq!(
        o["total_records"].as_i64(),
        Some(o["active_records"].as_i64().unwrap() + o["archived_records"].as_i64().unwrap())
    );
    let platforms = s["by_platform"].as_object().unwrap();
    assert_eq!(platforms.keys().collect::<Vec<_>>(), ["make", "n8n", "zapier"]);
    assert_eq!(platforms.values().map(|p| p["total"].as_i64().unwrap()).sum::<i64>(), 240);
    assert!(s["training_readiness"]["n8n"]["readiness_score"].is_number());
    let text = ok(d, &["stats"]);
    assert!(text.contains("n8n") && text.contains("readiness") && text.contains("Costs"), "{text}");

    // The export passes the OpenAI cookbook's format checks line by line.
    let out = d.join("n8n.jsonl");
    ok(d, &["export", "n8n", "-o", out.to_str().unwrap()]);
    let lines: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(str::to_owned).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(collector::domain::export::check_openai_line(l), Ok(()), "{l}");
    }
    let stdout_lines = ok(d, &["export", "n8n"]).lines().count();
    assert_eq!(stdout_lines, lines.len(), "stdout and file exports agree");

    // Dry run changes nothing; the real run moves old records to archives.
    let dry = json(d, &["archive", "--dry-run", "--json"]);
    assert!(dry["archived_records"].as_i64().unwrap() > 0, "the demo spreads records over 60 days");
    assert_eq!(json(d, &["stats", "--json"])["overview"]["archived_records"], 0);
    let log = d.join("archive.log");
    let run_ = json(d, &["archive", "--json", "--log-file", log.to_str().unwrap()]);
    assert_eq!(run_["archived_records"], dry["archived_records"]);
    assert!(std::fs::read_to_string(&log).unwrap().contains("archived"));
    let after = json(d, &["stats", "--json"]);
    assert_eq!(after["overview"]["total_records"], 240);
    assert_eq!(after["overview"]["archived_records"], run_["archived_records"]);
    // Hot-only export shrank; with archives it is whole again.
    let hot_only = ok(d, &["export", "n8n"]).lines().count();
    assert!(hot_only < lines.len());
    let with_archived = ok(d, &["export", "n8n", "--include-archived"]).lines().count();
    assert_eq!(with_archived, lines.len());
    let stats_only = json(d, &["archive", "--stats-only", "--json"]);
    assert_eq!(stats_only["overview"]["archived_records"], run_["archived_records"]);
}

#[test]
fn bad_configuration_names_the_variable_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[("DATA_RETENTION_DAYS", "soon")], &["stats"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATA_RETENTION_DAYS") && err.contains("soon"), "{err}");
    let out = run(dir.path(), &[("ENABLE_DATA_ARCHIVING", "false")], &["archive"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("archiving is disabled"));
}

/// CONTRACT 7a from the command line: bad PLATFORMS/MAX_PLATFORMS stop start-up naming them;
/// `export` and `archive --platform` of a platform not known fail naming the known ones.
#[test]
fn platforms_are_checked_at_start_up_and_by_export_and_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (var, value) in [("PLATFORMS", ""), ("PLATFORMS", "n8n,Bad Slug"), ("MAX_PLATFORMS", "0")] {
        let out = run(d, &[(var, value)], &["stats"]);
        assert!(!out.status.success(), "{var}={value:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && err.contains(&format!("{value:?}")), "{err}");
    }
    let out = run(d, &[("PLATFORMS", "a,b,c"), ("MAX_PLATFORMS", "2")], &["stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAX_PLATFORMS"));
    for args in [&["export", "airflow"][..], &["archive", "--platform", "airflow", "--dry-run"][..]] {
        let out = run(d, &[], args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("platform") && err.contains("make, n8n, zapier"), "{args:?}: {err}");
    }
    // Configured, it is known.
    ok_with(d, &[("PLATFORMS", "n8n,airflow")], &["export", "airflow"]);
    ok_with(d, &[("PLATFORMS", "airflow")], &["archive", "--platform", "airflow", "--dry-run"]);
}

fn ok_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(dir, env, args);
    assert!(out.status.success(), "collector {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn token_mints_a_jwt_for_the_shared_secret() {
    let dir = tempfile::tempdir().unwrap();
    let t = ok(dir.path(), &["token", "--sub", "alice", "--group", "admin", "--ttl", "1h"]);
    assert_eq!(t.trim().matches('.').count(), 2);
    // The generated secret is kept (private) in the data folder and reused.
    let secret = std::fs::read_to_string(dir.path().join("data/jwt-secret")).unwrap();
    let key = jsonwebtoken_free_verify(t.trim(), secret.trim());
    assert!(key, "token verifies with the stored secret");
    let bad = run(dir.path(), &[], &["token", "--sub", "alice", "--group", "root"]);
    assert!(!bad.status.success());
}

/// Verify through the library (the same code `serve` uses).
fn jsonwebtoken_free_verify(token: &str, secret: &str) -> bool {
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    collector::http::auth::verify_token(&key, token).is_some_and(|c| c["sub"] == "alice")
}

#[test]
fn export_formats_checks_and_rejects_file() {
    use collector::domain::formats::{DEFAULT_MAX_TOKENS, Format, check};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--count", "400", "--json"]);
    for (name, format) in [("openai", Format::Openai), ("openai_dpo", Format::OpenaiDpo), ("bedrock", Format::Bedrock)]
    {
        let out = d.join(format!("{name}.jsonl"));
        let rejects = d.join(format!("{name}.rejects"));
        let summary = json(
            d,
            &[
                "export",
                "n8n",
                "--format",
                name,
                "-o",
                out.to_str().unwrap(),
                "--rejects",
                rejects.to_str().unwrap(),
                "--json",
            ],
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(!lines.is_empty(), "{name}: the demo has corrections, so every format has lines");
        assert_eq!(summary["lines"], lines.len());
        for l in &lines {
            assert_eq!(check(format, l, DEFAULT_MAX_TOKENS), Ok(()), "{name}: {l}");
        }
        assert!(rejects.exists());
    }
    // Train and validation sides together are the whole export.
    let all = ok(d, &["export", "make"]).lines().count();
    let train = ok(d, &["export", "make", "--split", "train", "--validation-fraction", "0.5"]).lines().count();
    let validation =
        ok(d, &["export", "make", "--split", "validation", "--validation-fraction", "0.5"]).lines().count();
    assert_eq!(train + validation, all);
    let bad = run(d, &[], &["export", "make", "--format", "csv"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--format"));
    // As the route (400 on `limit=0`): at least one line, or it is an error, not an empty file.
    let zero = run(d, &[], &["export", "make", "--limit", "0"]);
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--limit"));
    assert_eq!(ok(d, &["export", "make", "--limit", "1"]).lines().count(), 1);
}

#[test]
fn archive_answers_exit_code_3_while_another_run_holds_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--count", "20", "--json"]);
    // Another process (here: this test, through the library) holds the archive lease.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = collector::adapters::sqlite::SqliteStore::open(&d.join("data/collector.sqlite3")).unwrap();
    let lease = rt
        .block_on(collector::ports::HotStore::acquire_lease(
            &store,
            "other",
            chrono::Utc::now(),
            std::time::Duration::from_secs(300),
        ))
        .unwrap()
        .expect("the lease is free");
    let out = run(d, &[], &["archive"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("archive_running"));
    // A dry run takes no lease.
    ok(d, &["archive", "--dry-run"]);
    rt.block_on(collector::ports::HotStore::release_lease(&store, &lease)).unwrap();
    ok(d, &["archive"]);
    // --days-old takes N >= 1, like the route's days_old.
    assert!(!run(d, &[], &["archive", "--days-old", "0"]).status.success());
}

#[test]
fn token_ttl_overflow_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["token", "--sub", "alice", "--ttl", "999999999999999d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ttl"));
}

/// An archive object with an unreadable line: `collector export --include-archived` writes the
/// other records and says how many lines it skipped (stderr, and `--json`).
#[test]
fn export_reports_unreadable_archive_lines() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--count", "240", "--json"]);
    json(d, &["archive", "--json"]);
    // The first n8n archive object, its first line cut in half.
    let mut objects = vec![d.join("data/archive-store/archive/platform=n8n")];
    let mut files = Vec::new();
    while let Some(p) = objects.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                objects.push(path)
            } else if path.to_string_lossy().ends_with(".jsonl.gz") {
                files.push(path)
            }
        }
    }
    files.sort();
    let object = files.first().expect("an n8n archive object");
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(object).unwrap()).read_to_string(&mut raw).unwrap();
    let first = raw.lines().next().unwrap().to_owned();
    let poisoned = raw.replacen(&first, &first[..first.len() / 2], 1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(poisoned.as_bytes()).unwrap();
    std::fs::write(object, gz.finish().unwrap()).unwrap();

    let out = d.join("n8n.jsonl");
    let r = run(d, &[], &["export", "n8n", "--include-archived", "-o", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("skipped 1 unreadable archive lines"), "{stderr}");
    assert!(!stderr.contains(&first[first.len() / 4..first.len() / 2]), "no line content in the output");
    let summary = json(d, &["export", "n8n", "--include-archived", "-o", out.to_str().unwrap(), "--json"]);
    assert_eq!(summary["archive_skipped_lines"], 1);
    assert_eq!(summary["lines"], std::fs::read_to_string(&out).unwrap().lines().count());
    // Without archives, nothing to skip.
    assert!(
        !String::from_utf8_lossy(&run(d, &[], &["export", "n8n", "-o", out.to_str().unwrap()]).stderr)
            .contains("skipped")
    );
}

/// CONTRACT 4a: every export that writes a line records a manifest; the CLI prints its id (on
/// stderr, and in `--json`), with the sha256 and size of the file it wrote. An export of no
/// line records nothing.
#[test]
fn export_prints_its_manifest_id() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--count", "60", "--json"]);
    let out = d.join("n8n.jsonl");
    let r = run(d, &[], &["export", "n8n", "-o", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
    let id = stderr
        .split("export id: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id: {stderr}"));
    let id = collector::domain::types::Id::parse(id).expect("a UUID");
    let bytes = std::fs::read(&out).unwrap();
    let summary = json(
        d,
        &["export", "n8n", "--split", "train", "--validation-fraction", "0.5", "-o", out.to_str().unwrap(), "--json"],
    );
    let second = collector::domain::types::Id::parse(summary["export_id"].as_str().expect("export_id in --json"))
        .expect("a UUID");
    assert_eq!(summary["sha256"], hex::encode(sha2::Sha256::digest(std::fs::read(&out).unwrap())).as_str());
    // Nothing to export: no manifest, no id.
    let empty = run(d, &[], &["export", "zapier", "--since", "2999-01-01"]);
    assert!(empty.status.success() && empty.stdout.is_empty());
    assert!(
        !String::from_utf8_lossy(&empty.stderr).contains("export id"),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );

    // A failed export (an unknown platform: it fails in the store, after the file was opened)
    // leaves the target as it was, and no temporary file beside it.
    let before = std::fs::read(&out).unwrap();
    let failed = run(d, &[], &["export", "nosuchplatform", "-o", out.to_str().unwrap()]);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("platform"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), before, "the target is untouched");
    let left: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".collector-export-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The manifests, as the store holds them (newest first).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = collector::adapters::sqlite::SqliteStore::open(&d.join("data/collector.sqlite3")).unwrap();
    let all = rt.block_on(collector::ports::HotStore::list_exports(&store, None, 10)).unwrap();
    assert_eq!(all.iter().map(|m| m.export_id).collect::<Vec<_>>(), vec![second, id]);
    let first = &all[1];
    assert_eq!((first.caller.as_str(), first.platform.as_str(), first.format.as_str()), ("cli", "n8n", "openai"));
    assert_eq!(first.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!((first.bytes, first.lines), (bytes.len() as u64, bytes.iter().filter(|b| **b == b'\n').count() as u64));
    assert!(first.split.is_none());
    let split = all[0].split.as_ref().expect("the second asked for a split");
    assert_eq!((split.side.as_str(), split.validation_fraction), ("train", 0.5));
}

/// A short JWT secret still serves (the contract takes any), with a warning that says why it
/// is weak; a long one serves without it. The secret itself is never printed.
#[test]
fn serve_warns_about_a_short_jwt_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each server is dropped (killed) by the end of its statement: one data folder at a time.
    let short = common::serve(dir.path(), "tiny-secret").preamble.clone();
    assert!(short.iter().any(|l| l.contains("COLLECTOR_JWT_SECRET is shorter than 32 bytes")), "{short:?}");
    assert!(!short.iter().any(|l| l.contains("tiny-secret")), "the secret is not printed: {short:?}");
    let long = common::serve(dir.path(), &"k".repeat(64)).preamble.clone();
    assert!(!long.iter().any(|l| l.contains("COLLECTOR_JWT_SECRET")), "{long:?}");
}
