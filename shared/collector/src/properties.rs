//! Property tests (issue 14): whatever bytes arrive, the parsers at the edge do not panic and
//! every refusal is a clean 4xx with our error body. Four surfaces: request bodies through the
//! real router (embedded store), the legacy gzip hex path, the archive line reader, and the
//! groups claim. Case counts are kept small enough for CI (`PROPTEST_CASES` raises them).

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::app::App;
use crate::config::Config;
use crate::http::{HttpState, auth, router};

const SECRET: &str = "property-test-secret";

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        Just(Value::String("n8n".into())),
        Just(Value::String("00000000-0000-7000-8000-000000000000".into())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,10}", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A JSON string literal of `s`: serde_json's escaping, or every character as `\uXXXX`.
fn quoted(s: &str, escape_all: bool) -> String {
    if !escape_all {
        return serde_json::to_string(s).unwrap_or_default();
    }
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// JSON text of any shape as clients write it: any spacing, escapes serde_json would not
/// write, numbers in every form, objects that repeat keys.
fn json_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(|f| f.to_string()),
        prop::sample::select(vec!["-0", "0.10", "1E+2", "-0.0e-0", "123456789012345678901234567890", "5e-324"])
            .prop_map(String::from),
    ];
    let string = (".{0,12}", any::<bool>()).prop_map(|(s, all)| quoted(&s, all));
    let leaf = prop_oneof![prop::sample::select(vec!["null", "true", "false"]).prop_map(String::from), number, string,];
    let space = || prop::sample::select(vec!["", " ", "\n  ", "\t"]);
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), space())
                .prop_map(|(items, w)| format!("[{w}{}{w}]", items.join(&format!(",{w}")))),
            (
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "\"k", "é", "nodes"]), any::<bool>(), inner),
                    0..6
                ),
                space()
            )
                .prop_map(|(entries, w)| {
                    let entries: Vec<String> =
                        entries.iter().map(|(k, all, v)| format!("{w}{}{w}:{w}{v}", quoted(k, *all))).collect();
                    format!("{{{}{w}}}", entries.join(","))
                }),
        ]
    })
}

/// Bodies shaped like the routes' own: their field names with any values, often plausible ones.
fn body_like() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(vec![
        "interaction_id",
        "user_id",
        "platform",
        "kind",
        "user_message",
        "ai_response",
        "intent",
        "workflow",
        "workflow_gzip_hex",
        "success",
        "error_message",
        "processing_time_ms",
        "model_version",
        "metadata",
        "created_at",
        "training_consent",
        "feedback_type",
        "sentiment_score",
        "comment",
        "corrected_workflow",
        "issue_category",
        "original_workflow",
        "user_edited",
        "interactions",
        "tags",
        "description",
        "model",
        "dataset_size",
        "metrics",
        "days_old",
        "dry_run",
    ]);
    let value = prop_oneof![
        json_value(),
        Just(json!("n8n")),
        Just(json!("zapier")),
        Just(json!("thumbs_up")),
        Just(json!("hello")),
        Just(json!({"nodes": [{"name": "a", "type": "t"}], "connections": {}})),
        Just(json!("1f8b08")),
        Just(json!("2020-01-01T00:00:00Z")),
        Just(json!([{"platform": "n8n", "user_message": "x", "user_id": "u"}])),
    ];
    prop::collection::vec((fields, value), 0..10)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().into_owned();
        let config = Config::from_lookup(|k| match k {
            "COLLECTOR_DATA_DIR" => Some(data.clone()),
            "COLLECTOR_JWT_SECRET" => Some(SECRET.into()),
            _ => None,
        })
        .expect("config");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let router = rt.block_on(async { router(HttpState::local(App::open_local(config).expect("app"))) });
        Harness { rt, router, _dir: dir }
    })
}

fn bearer(sub: &str, group: Option<&str>) -> String {
    let groups: Vec<String> = group.map(str::to_owned).into_iter().collect();
    auth::mint_token(SECRET, sub, &groups, "cognito:groups", None).expect("token")
}

/// Send `body` to `path` as `who`; the status and the answer's JSON (if any).
fn send(path: &str, who: &str, body: Vec<u8>) -> (StatusCode, Option<Value>) {
    let h = harness();
    let req =
        Request::post(path).header("authorization", format!("Bearer {who}")).body(Body::from(body)).expect("request");
    h.rt.block_on(async {
        let resp = h.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&bytes).ok())
    })
}

/// No 5xx, and every 4xx carries `{"error": {"code", "message"}}`.
fn assert_clean(path: &str, status: StatusCode, answer: &Option<Value>) {
    assert!(!status.is_server_error(), "{path}: {status} {answer:?}");
    if status.is_client_error() {
        let error = answer.as_ref().and_then(|a| a.get("error"));
        assert!(
            error.is_some_and(|e| e["code"].as_str().is_some_and(|c| !c.is_empty()) && e["message"].is_string()),
            "{path}: {status} without our error body: {answer:?}"
        );
    }
}

const ROUTES: [&str; 6] = [
    "/api/interactions",
    "/api/interactions/batch",
    "/api/workflow/validate",
    "/api/feedback/submit",
    "/api/examples",
    "/api/training-metrics",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_to_any_write_route_get_a_clean_answer(bytes in prop::collection::vec(any::<u8>(), 0..512), route in 0..ROUTES.len()) {
        let who = bearer("prop-user", None);
        let (status, answer) = send(ROUTES[route], &who, bytes);
        assert_clean(ROUTES[route], status, &answer);
    }

    #[test]
    fn route_shaped_bodies_get_a_clean_answer(body in body_like(), route in 0..ROUTES.len(), role in 0..3usize) {
        let who = bearer("prop-user", [None, Some("service"), Some("admin")][role]);
        let bytes = serde_json::to_vec(&body).expect("serialize");
        let (status, answer) = send(ROUTES[route], &who, bytes);
        assert_clean(ROUTES[route], status, &answer);
    }

    #[test]
    fn legacy_gzip_hex_never_panics_and_round_trips(value in json_value(), junk in prop::collection::vec(any::<u8>(), 0..256), cut in 0usize..64) {
        use crate::domain::workflow::{PayloadError, compact, from_gzip_hex, gzip};
        // Well-formed payloads come back as they went in.
        let gz = gzip(&compact(&value));
        prop_assert_eq!(from_gzip_hex(&hex::encode(&gz)), Ok(value.clone()));
        // Junk, junk that starts like gzip, and a cut-short payload are refusals, not panics.
        let _ = from_gzip_hex(&hex::encode(&junk));
        let _ = from_gzip_hex(&hex::encode([&[0x1f, 0x8b, 0x08][..], &junk].concat()));
        let _ = from_gzip_hex(&String::from_utf8_lossy(&junk));
        let short = &gz[..gz.len().saturating_sub(cut + 1)];
        prop_assert!(from_gzip_hex(&hex::encode(short)).is_err() || short.len() == gz.len());
        prop_assert_eq!(from_gzip_hex(&hex::encode(gzip(b"[1,"))), Err(PayloadError::NotJson));
    }

    #[test]
    fn an_interaction_parsed_from_its_text_is_the_one_parsed_from_its_value(workflow in json_text(), metadata in json_text(), repeat in any::<bool>()) {
        use crate::domain::input::{BodyText, NewInteraction};
        // The workflow is parsed into a tree, the rest into Values; a repeated `workflow` key
        // keeps its last value either way.
        let first = if repeat { format!(r#""workflow": {metadata}, "#) } else { String::new() };
        let text = format!(
            r#"{{"platform": "n8n", {first}"workflow": {workflow}, "user_message": "hi", "metadata": {metadata}}}"#
        );
        let now = chrono::Utc::now();
        let by_value = serde_json::from_str::<Value>(&text).map(|v| NewInteraction::parse(v, now));
        let by_text = NewInteraction::parse_text(text.as_bytes(), now);
        match (by_value, by_text) {
            (Ok(by_value), Some(BodyText::Parsed(by_text))) => {
                prop_assert_eq!(&by_text.result, &by_value);
                if let (Ok(a), Ok(b)) = (&by_text.result, &by_value) {
                    let user = crate::domain::types::UserId::parse("u").expect("user");
                    prop_assert_eq!(a.content_hash(&user), b.content_hash(&user));
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&workflow) {
                        let wf = a.workflow.as_ref().expect("workflow");
                        prop_assert_eq!(wf.compact(), &serde_json::to_vec(&m).expect("compact")[..]);
                    }
                }
            }
            (Err(_), None) => {}
            (v, t) => prop_assert!(false, "value {:?} vs text {:?}", v, t.is_some()),
        }
    }

    #[test]
    fn a_body_scan_counts_the_same_whatever_the_chunks(text in json_text(), cuts in prop::collection::vec(0usize..4096, 0..4)) {
        use crate::domain::json::JsonShape;
        let whole = JsonShape::of(text.as_bytes());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunked = JsonShape::default();
        let mut at = 0;
        for c in cuts.into_iter().chain([text.len()]) {
            chunked.feed(&text.as_bytes()[at..c]);
            at = c;
        }
        prop_assert_eq!(
            (whole.values, whole.string_bytes, whole.max_depth_seen, whole.bytes),
            (chunked.values, chunked.string_bytes, chunked.max_depth_seen, chunked.bytes)
        );
        // Every string's bytes between its quotes are counted, escapes included.
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let strings = |v: &Value| -> u64 {
                fn walk(v: &Value, n: &mut u64) {
                    match v {
                        Value::String(_) => *n += 1,
                        Value::Array(a) => a.iter().for_each(|x| walk(x, n)),
                        Value::Object(m) => m.values().for_each(|x| walk(x, n)),
                        _ => {}
                    }
                }
                let mut n = 0;
                walk(v, &mut n);
                n
            };
            prop_assert!(whole.values >= strings(&v));
        }
    }

    #[test]
    fn groups_claim_of_any_shape_is_read_without_panicking(claim in json_value(), names in prop::collection::vec("[a-z]{1,8}", 0..5)) {
        let _ = auth::parse_groups(Some(&claim));
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("someone"));
        claims.insert("cognito:groups".into(), claim);
        let _ = auth::caller_from_claims(&claims, "cognito:groups");
        // API Gateway's string form reads back as the array it came from.
        let as_string = format!("[{}]", names.join(" "));
        prop_assert_eq!(auth::parse_groups(Some(&Value::String(as_string))), names.clone());
        prop_assert_eq!(auth::parse_groups(Some(&json!(names.clone()))), names);
    }
}

/// A line of an archive object: a real record, or damage of some kind.
#[derive(Debug, Clone)]
enum ArchiveLine {
    Good,
    Junk(Vec<u8>),
    TooDeep(usize),
    NotARecord(Value),
}

fn archive_line() -> impl Strategy<Value = ArchiveLine> {
    prop_oneof![
        3 => Just(ArchiveLine::Good),
        1 => prop::collection::vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 1..64)
            .prop_filter("not blank", |v| !v.iter().all(u8::is_ascii_whitespace))
            .prop_map(ArchiveLine::Junk),
        1 => (129usize..400).prop_map(ArchiveLine::TooDeep),
        1 => json_value().prop_map(ArchiveLine::NotARecord),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn archive_reader_serves_every_good_line_whatever_surrounds_it(lines in prop::collection::vec(archive_line(), 0..12), cut in prop::option::of(1usize..40)) {
        use crate::adapters::fs::FolderStore;
        use crate::app::archive::ArchiveLines;
        use crate::domain::records::FullRecord;
        use crate::ports::ObjectStore;
        use crate::ports::conformance::{at, interaction};

        let mut text = Vec::new();
        let mut good = 0usize;
        for (i, line) in lines.iter().enumerate() {
            match line {
                ArchiveLine::Good => {
                    let rec = interaction("owner", "n8n", at(i as i64));
                    let full = FullRecord::build(&rec, vec![], vec![], true).expect("record");
                    text.extend(serde_json::to_vec(&full).expect("line"));
                    good += 1;
                }
                ArchiveLine::Junk(b) => text.extend(b),
                ArchiveLine::TooDeep(n) => text.extend(format!("{}{}", "[".repeat(*n), "]".repeat(*n)).into_bytes()),
                ArchiveLine::NotARecord(v) => text.extend(serde_json::to_vec(v).expect("line")),
            }
            text.push(b'\n');
        }
        let mut gz = crate::domain::workflow::gzip(&text);
        if let Some(c) = cut {
            gz.truncate(gz.len().saturating_sub(c));
        }
        let h = harness();
        let (served, unreadable) = h.rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = FolderStore::new(dir.path().to_path_buf());
            store.put("archive/p.jsonl.gz", gz, crate::domain::archive::StorageClass::Standard).await.expect("put");
            let mut reader = ArchiveLines::open(&store, "archive/p.jsonl.gz").await.expect("open");
            let mut served = 0usize;
            while let Some(_rec) = reader.next().await.expect("a damaged object is not an error") {
                served += 1;
            }
            (served, reader.unreadable.total())
        });
        if cut.is_none() {
            // Whole stream: every good line served, every other line counted.
            prop_assert_eq!(served, good);
            let bad = lines.iter().filter(|l| !matches!(l, ArchiveLine::Good)).count() as u64;
            // A junk or non-record value may, rarely, still read as a record: never fewer served.
            prop_assert!(unreadable <= bad);
        } else {
            // Cut short: what precedes the damage is served, the rest is one lost segment.
            prop_assert!(served <= good);
            prop_assert!(unreadable >= 1 || text.is_empty());
        }
    }
}
