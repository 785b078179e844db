//! The CLI with `COLLECTOR_BACKEND=aws`: demo, stats, archive and export against DynamoDB and S3
//! on the emulator (infra/emulator.sh), in a stack of tables and bucket of its own.

use std::path::Path;
use std::process::{Command, Output};

use collector::testing::{Emulator, Stack};
use serde_json::Value;

struct Aws {
    emu: Emulator,
    stack: Stack,
    rt: tokio::runtime::Runtime,
}

impl Aws {
    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_collector"));
        c.args(args).current_dir(dir).env("NO_COLOR", "1").env_remove("RUST_LOG");
        for k in [
            "ENABLE_DATA_COLLECTION",
            "ENABLE_DATA_ARCHIVING",
            "DATA_RETENTION_DAYS",
            "S3_ACCESS_KEY",
            "S3_SECRET_KEY",
            "S3_REGION",
        ] {
            c.env_remove(k);
        }
        // Local data goes to a folder the assertions check stays empty.
        c.env("COLLECTOR_DATA_DIR", dir.join("local"));
        c.env("COLLECTOR_BACKEND", "aws")
            .env("TABLE_NAME", &self.stack.table)
            .env("ARCHIVE_TABLE_NAME", &self.stack.archive_table)
            .env("S3_BUCKET_NAME", &self.stack.bucket)
            .env("DYNAMODB_ENDPOINT", &self.emu.endpoint)
            .env("S3_ENDPOINT", &self.emu.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
        c.output().expect("run collector")
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(out.status.success(), "collector {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    fn json(&self, dir: &Path, args: &[&str]) -> Value {
        let text = self.ok(dir, args);
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("collector {args:?} printed no JSON: {text}"))
    }

    fn archive_keys(&self) -> Vec<String> {
        let s3 = self.emu.s3();
        let out =
            self.rt.block_on(s3.list_objects_v2().bucket(&self.stack.bucket).prefix("archive/").send()).expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }
}

fn aws() -> Option<Aws> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let emu = rt.block_on(Emulator::connect())?;
    let stack = rt.block_on(emu.create_stack());
    Some(Aws { emu, stack, rt })
}

#[test]
fn demo_stats_archive_export_against_dynamodb_and_s3() {
    let Some(aws) = aws() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    assert_eq!(aws.json(d, &["demo", "--count", "90", "--json"])["interactions"], 90);
    let s = aws.json(d, &["stats", "--json"]);
    assert_eq!(s["overview"]["total_records"], 90);
    assert_eq!(s["overview"]["archived_records"], 0);
    let by_platform = s["by_platform"].as_object().expect("by_platform");
    assert_eq!(by_platform.values().map(|p| p["total"].as_i64().unwrap_or(0)).sum::<i64>(), 90);

    let out = d.join("n8n.jsonl");
    aws.ok(d, &["export", "n8n", "-o", out.to_str().expect("path")]);
    let lines: Vec<String> = std::fs::read_to_string(&out).expect("export file").lines().map(str::to_owned).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(collector::domain::export::check_openai_line(l), Ok(()), "{l}");
    }

    // The demo spreads records over 60 days, so the default retention archives some: to S3.
    let dry = aws.json(d, &["archive", "--dry-run", "--json"]);
    let moved = dry["archived_records"].as_i64().expect("count");
    assert!(moved > 0);
    assert!(aws.archive_keys().is_empty(), "a dry run writes nothing");
    let run = aws.json(d, &["archive", "--json"]);
    assert_eq!(run["archived_records"].as_i64(), Some(moved));
    let keys = aws.archive_keys();
    assert!(!keys.is_empty() && keys.iter().all(|k| k.ends_with(".jsonl.gz")), "{keys:?}");

    let after = aws.json(d, &["stats", "--json"]);
    assert_eq!(after["overview"]["total_records"], 90);
    assert_eq!(after["overview"]["archived_records"].as_i64(), Some(moved));
    let hot_only = aws.ok(d, &["export", "n8n"]).lines().count();
    assert!(hot_only < lines.len(), "archived records left the hot export");
    let with_archived = aws.ok(d, &["export", "n8n", "--include-archived"]).lines().count();
    assert_eq!(with_archived, lines.len(), "with archives the export is whole again");

    assert!(!d.join("local").exists(), "nothing went to the local store");
}

#[test]
fn a_missing_table_name_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new(env!("CARGO_BIN_EXE_collector"));
    c.args(["stats"]).current_dir(dir.path()).env("COLLECTOR_BACKEND", "aws").env_remove("TABLE_NAME");
    c.env("ARCHIVE_TABLE_NAME", "archive").env("S3_BUCKET_NAME", "bucket");
    let out = c.output().expect("run collector");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TABLE_NAME") && err.contains("COLLECTOR_BACKEND=aws"), "{err}");
}
