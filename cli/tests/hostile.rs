//! Hostile bodies against the real `collector serve` process, 8 at once: each gets its clean
//! answer, the server stays up, and its peak RSS (VmHWM from /proc) stays under the budget.
//! (Issue 14; the limits are in docs/DESIGN.md, "Hostile input".)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

mod common;

const SECRET: &str = "hostile-test-secret";
/// What 8 hostile requests at once may take the whole server to (issue 14's goal).
const RSS_BUDGET_MIB: u64 = 256;

fn token(sub: &str, group: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["token", "--sub", sub, "--group", group])
        .env("COLLECTOR_JWT_SECRET", SECRET)
        .output()
        .expect("collector token");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

/// One HTTP/1.1 request; the status and body of the answer.
fn send(addr: &str, method: &str, path: &str, bearer: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (413) before reading a body over the limit and close; that is fine.
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn gzip(chunks: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    for c in chunks {
        enc.write_all(&c).expect("gzip");
    }
    enc.finish().expect("gzip")
}

/// An interaction whose workflow comes as the older system's gzip hex.
fn legacy_body(gz: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"user_id": "mallory", "platform": "n8n", "user_message": "import", "workflow_gzip_hex": "{}"}}"#,
        hex::encode(gz)
    )
    .into_bytes()
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM");
    kib / 1024
}

#[test]
fn eight_hostile_bodies_at_once_get_clean_answers_within_the_memory_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::serve(dir.path(), SECRET);
    let service = token("importer", "service");

    // 60 MiB of `[0,0,...]` (under the 64 MiB inflate cap): ~2 GB of Values if built.
    let dense = gzip([b"{\"a\":[".to_vec(), b"0,".repeat(30 * 1024 * 1024), b"0]}".to_vec()]);
    // 256 MiB of spaces, and an 80 MiB string: past the inflate cap.
    let spaces = gzip((0..256).map(|_| vec![b' '; 1024 * 1024]));
    let long = gzip([b"{\"s\":\"".to_vec(), vec![b'x'; 80 * 1024 * 1024], b"\"}".to_vec()]);
    // A workflow nested 126 deep in a few hundred bytes.
    let deep = gzip([format!("{{\"a\":{}{}}}", "[".repeat(125), "]".repeat(125)).into_bytes()]);
    // The largest kind that is accepted: a 28 MiB string (its text and its Value fit 64 MiB).
    let big_ok = gzip([b"{\"s\":\"".to_vec(), vec![b'y'; 28 * 1024 * 1024], b"\"}".to_vec()]);
    // A plain 5 MiB body of `[0,0,...]`: 2.6 M values, ~170 MiB of Values if built.
    let plain_dense = [
        br#"{"user_id": "mallory", "platform": "n8n", "user_message": "x", "workflow": {"a": ["#.to_vec(),
        b"0,".repeat(2_600_000),
        b"0]}}".to_vec(),
    ]
    .concat();

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("dense 60 MiB", legacy_body(&dense), 400),
        ("dense 60 MiB again", legacy_body(&dense), 400),
        ("256 MiB of spaces", legacy_body(&spaces), 400),
        ("256 MiB of spaces again", legacy_body(&spaces), 400),
        ("80 MiB string", legacy_body(&long), 400),
        ("nested 126 deep", legacy_body(&deep), 400),
        ("plain dense body", plain_dense, 413),
        ("28 MiB string", legacy_body(&big_ok), 201),
    ];
    assert!(legacy_body(&dense).len() < 200 * 1024, "the dense bomb is a small body");

    let answers: Vec<(String, u16, u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, body, want)| {
                let (addr, service) = (&server.addr, &service);
                scope.spawn(move || {
                    let (status, answer) = send(addr, "POST", "/api/interactions", service, body);
                    (name.to_string(), *want, status, answer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("request thread")).collect()
    });
    for (name, want, status, answer) in &answers {
        assert_eq!(status, want, "{name}: {answer}");
        if *want == 400 {
            assert!(answer.contains("validation_failed") && answer.contains("workflow_gzip_hex"), "{name}: {answer}");
        }
        if *want == 413 {
            assert!(answer.contains("payload_too_large"), "{name}: {answer}");
        }
    }

    let peak_writes = peak_rss_mib(server.child.id());
    eprintln!("peak RSS of collector serve after the 8 hostile bodies: {peak_writes} MiB");

    // Still up, and the accepted workflow reads back whole.
    let (status, _) = send(&server.addr, "GET", "/api/health", &service, b"");
    assert_eq!(status, 200);
    let id = answers
        .iter()
        .find(|a| a.1 == 201)
        .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.3).ok())
        .and_then(|v| v["interaction_id"].as_str().map(str::to_owned))
        .expect("the accepted import's id");
    let (status, record) = send(&server.addr, "GET", &format!("/api/interactions/{id}"), &service, b"");
    assert_eq!(status, 200);
    assert!(record.contains(&"y".repeat(1024)), "the 28 MiB workflow comes back");

    let peak = peak_rss_mib(server.child.id());
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB, budget {RSS_BUDGET_MIB} MiB");
    eprintln!("peak RSS of collector serve under 8 hostile bodies: {peak} MiB");
}

/// Validations whose report would be huge: a long key above many array items is in every
/// pointer under it (the diff's and the n8n connection checks'). They answer 413 at once; the
/// server stays up and within the memory budget.
#[test]
fn validations_with_huge_reports_get_413_within_the_memory_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::serve(dir.path(), SECRET);
    // A plain user: no group.
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["token", "--sub", "mallory"])
        .env("COLLECTOR_JWT_SECRET", SECRET)
        .output()
        .expect("collector token");
    assert!(out.status.success());
    let user = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    let key = "k".repeat(2 * 1024 * 1024);
    // Both pass the body's own limits (size, depth, JSON cost). 100k added pointers of 2 MiB
    // each (200 GB) if listed.
    let diff_bomb = format!(
        r#"{{"platform": "make", "original_workflow": {{"{key}": []}}, "workflow": {{"{key}": [{}0]}}}}"#,
        "0,".repeat(100_000)
    );
    // 20k connection slots, each of whose pointers holds the key (120 GB copied) if built.
    let slots_bomb = format!(
        r#"{{"platform": "n8n", "workflow": {{"nodes": [{{"name": "a", "type": "x"}}], "connections": {{"{key}": {{"main": [{}[{{"node": "a"}}]]}}}}}}}}"#,
        "[{\"node\": \"a\"}],".repeat(20_000)
    );
    let cases = [diff_bomb.as_str(), diff_bomb.as_str(), slots_bomb.as_str(), slots_bomb.as_str()];
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|body| {
                let (addr, user) = (&server.addr, &user);
                scope.spawn(move || send(addr, "POST", "/api/workflow/validate", user, body.as_bytes()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("request thread")).collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 413, "{answer}");
        assert!(answer.contains("payload_too_large") && answer.contains("8 MiB"), "{answer}");
    }
    let (status, _) = send(&server.addr, "GET", "/api/health", &user, b"");
    assert_eq!(status, 200);
    let peak = peak_rss_mib(server.child.id());
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB, budget {RSS_BUDGET_MIB} MiB");
    eprintln!("peak RSS of collector serve under 4 validation report bombs: {peak} MiB");
}

/// Many large bodies at once: each is read only under its share of the read budget (64 MiB of
/// bodies held at once), so 64 bodies of 5.9 MiB (377 MiB in all) do not add up in memory.
/// Each is a JSON string, not an object: 400, and the server stays within the memory budget.
#[test]
fn many_large_bodies_at_once_wait_for_the_read_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::serve(dir.path(), SECRET);
    let user = token("mallory", "service");
    let body = format!("\"{}\"", "x".repeat(5_900 * 1024)).into_bytes();
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (addr, user, body) = (&server.addr, &user, &body);
                scope.spawn(move || send(addr, "POST", "/api/feedback/submit", user, body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("request thread")).collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 400, "{answer}");
    }
    let peak = peak_rss_mib(server.child.id());
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB, budget {RSS_BUDGET_MIB} MiB");
    eprintln!("peak RSS of collector serve under 64 bodies of 5.9 MiB at once: {peak} MiB");
}
