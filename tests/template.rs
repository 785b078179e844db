//! What `template.yaml` promises a deployer (issue 15, docs/DEPLOY.md), read from the file:
//!
//! - the data stays: tables, bucket (and its TLS-only policy) and the Cognito user pool are
//!   retained on stack deletion and replacement, tables and pool deletion-protected, the bucket
//!   encrypted, private and unversioned;
//! - the archiver runs one at a time and its failures land in SQS queues (14 days) that raise
//!   alarms: the schedule (Lambda's async on-failure destination, EventBridge's DLQ) and the
//!   stream (on-failure destination, bounded retries, bisecting, the FilterCriteria kept);
//! - every function logs to a group with the retention parameter and has alarms; the API is
//!   throttled and keeps an access log;
//! - no policy grants a `*` action or resource, but the exceptions named below with the reason;
//! - every setting of `config.rs` that the functions read is a stack parameter whose default is
//!   config.rs's default and whose bounds are config.rs's bounds (checked by loading the
//!   configuration at the default, at each bound and past it), passed to exactly the functions
//!   that read it;
//! - `events/env.json` (for `sam local invoke --env-vars`) only names variables declared on the
//!   function it names (SAM ignores any other), and samconfig.toml opts into SAM's beta features
//!   (cargo lambda builds).
//!
//! No emulator, no network: `cargo test -p collector-e2e --test template`
//! (`TEMPLATE_CHECK=path` to check another copy of the template).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use collector::config::Config;
use serde_yaml::Value as Yaml;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `TEMPLATE_CHECK=path` checks another copy (try a change without touching template.yaml).
fn template() -> Yaml {
    let path = std::env::var_os("TEMPLATE_CHECK").map(PathBuf::from).unwrap_or_else(|| root().join("template.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// `!Tag value` as (tag without `!`, value).
fn tagged(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        _ => None,
    }
}

/// The logical id a `!Ref X` or `!GetAtt X.Attr` names.
fn target(v: &Yaml) -> Option<String> {
    let (tag, value) = tagged(v)?;
    let s = value.as_str()?;
    match tag.as_str() {
        "Ref" => Some(s.to_owned()),
        "GetAtt" => Some(s.split('.').next()?.to_owned()),
        _ => None,
    }
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"].as_mapping().expect("Resources").iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v)).collect()
}

fn of_type<'a>(t: &'a Yaml, ty: &str) -> Vec<(String, &'a Yaml)> {
    resources(t).into_iter().filter(|(_, r)| r["Type"].as_str() == Some(ty)).collect()
}

fn functions(t: &Yaml) -> Vec<(String, &Yaml)> {
    of_type(t, "AWS::Serverless::Function")
}

fn binary(f: &Yaml) -> &str {
    f["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Metadata.BuildProperties.Binary")
}

fn kept(t: &Yaml, logical: &str) {
    let r = &t["Resources"][logical];
    assert_eq!(r["DeletionPolicy"].as_str(), Some("Retain"), "{logical}: DeletionPolicy");
    assert_eq!(r["UpdateReplacePolicy"].as_str(), Some("Retain"), "{logical}: UpdateReplacePolicy");
}

#[test]
fn the_stack_keeps_its_data() {
    let t = template();
    for table in ["HotTable", "ArchiveTable"] {
        kept(&t, table);
        let p = &t["Resources"][table]["Properties"];
        assert_eq!(p["DeletionProtectionEnabled"].as_bool(), Some(true), "{table}: deletion protection");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{table}: PITR"
        );
        assert!(p.get("TimeToLiveSpecification").is_none(), "{table}: no TTL (CONTRACT 6a)");
    }
    assert_eq!(of_type(&t, "AWS::DynamoDB::Table").len(), 2, "a new table must be kept and protected too");

    kept(&t, "ArchiveBucket");
    let b = &t["Resources"]["ArchiveBucket"]["Properties"];
    let sse =
        &b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"];
    assert!(matches!(sse.as_str(), Some("AES256" | "aws:kms")), "bucket encrypted at rest");
    for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(b["PublicAccessBlockConfiguration"][flag].as_bool(), Some(true), "{flag}");
    }
    // Versions would keep the lines compaction erases (a deleted user's data).
    assert!(b.get("VersioningConfiguration").is_none(), "the bucket must stay unversioned");
    assert_eq!(of_type(&t, "AWS::S3::Bucket").len(), 1);

    // TLS only, on the bucket and its objects.
    let policies = of_type(&t, "AWS::S3::BucketPolicy");
    let (name, policy) = policies
        .iter()
        .find(|(_, p)| target(&p["Properties"]["Bucket"]).as_deref() == Some("ArchiveBucket"))
        .expect("a bucket policy");
    kept(&t, name);
    let tls = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"].as_str() == Some("false"))
        .expect("a statement on aws:SecureTransport = false");
    assert_eq!(tls["Effect"].as_str(), Some("Deny"));
    assert_eq!(tls["Principal"].as_str(), Some("*"));
    assert_eq!(tls["Action"].as_str(), Some("s3:*"));
    let res = tls["Resource"].as_sequence().expect("bucket and objects");
    assert!(res.iter().any(|r| target(r).as_deref() == Some("ArchiveBucket")), "the bucket itself");
    assert!(
        res.iter()
            .any(|r| tagged(r).is_some_and(|(tag, v)| tag == "Sub" && v.as_str() == Some("${ArchiveBucket.Arn}/*"))),
        "its objects"
    );

    // The user pool: users' records are keyed by their sub, which a new pool would not give back.
    kept(&t, "UserPool");
    assert_eq!(t["Resources"]["UserPool"]["Properties"]["DeletionProtection"].as_str(), Some("ACTIVE"));
    // And what makes it usable as an existing issuer later: groups, clients, scope, domain.
    let cognito: Vec<String> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str().is_some_and(|ty| ty.starts_with("AWS::Cognito::")))
        .map(|(n, _)| n)
        .collect();
    assert!(cognito.len() >= 7, "{cognito:?}");
    for name in &cognito {
        kept(&t, name);
    }
}

/// The queue a destination names, checked: 14 days' retention, encrypted, an alarm on depth.
fn alarmed_queue(t: &Yaml, destination: &Yaml, what: &str) -> String {
    let queue = target(destination).unwrap_or_else(|| panic!("{what}: destination is not a !GetAtt of a resource"));
    let q = &t["Resources"][queue.as_str()];
    assert_eq!(q["Type"].as_str(), Some("AWS::SQS::Queue"), "{what}: {queue} is an SQS queue");
    assert_eq!(q["Properties"]["MessageRetentionPeriod"].as_i64(), Some(1_209_600), "{queue}: 14 days");
    assert_eq!(q["Properties"]["SqsManagedSseEnabled"].as_bool(), Some(true), "{queue}: encrypted");
    let alarmed = of_type(t, "AWS::CloudWatch::Alarm").iter().any(|(_, a)| {
        let p = &a["Properties"];
        p["Namespace"].as_str() == Some("AWS/SQS")
            && p["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
            && p["Dimensions"][0]["Name"].as_str() == Some("QueueName")
            && target(&p["Dimensions"][0]["Value"]).as_deref() == Some(queue.as_str())
            && alarm_actions_are_the_topic(p)
    });
    assert!(alarmed, "{queue}: an alarm on its depth");
    queue
}

fn alarm_actions_are_the_topic(p: &Yaml) -> bool {
    // !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]
    tagged(&p["AlarmActions"]).is_some_and(|(tag, v)| {
        tag == "If" && v[0].as_str() == Some("HasAlarmTopic") && target(&v[1][0]).as_deref() == Some("AlarmTopicArn")
    })
}

#[test]
fn the_archiver_runs_alone_and_its_failures_raise_alarms() {
    let t = template();
    let (_, archiver) = functions(&t).into_iter().find(|(_, f)| binary(f) == "archiver").expect("the archiver");
    let p = &archiver["Properties"];
    assert_eq!(p["ReservedConcurrentExecutions"].as_i64(), Some(1));

    let events = p["Events"].as_mapping().unwrap();
    let (schedule_name, schedule) =
        events.iter().find(|(_, e)| e["Type"].as_str() == Some("Schedule")).expect("a Schedule event");
    let stream = events.values().find(|e| e["Type"].as_str() == Some("DynamoDB")).expect("the stream event");

    // The schedule: Lambda's async retries, then the on-failure destination.
    let invoke = &p["EventInvokeConfig"];
    assert!(invoke["MaximumRetryAttempts"].as_i64().is_some_and(|n| (0..=2).contains(&n)));
    assert_eq!(invoke["DestinationConfig"]["OnFailure"]["Type"].as_str(), Some("SQS"));
    let queue = alarmed_queue(&t, &invoke["DestinationConfig"]["OnFailure"]["Destination"], "EventInvokeConfig");
    // EventBridge's failed deliveries: the rule's DLQ, which its queue policy lets EventBridge
    // (that rule only) write.
    let s = &schedule["Properties"];
    assert!(s["RetryPolicy"]["MaximumRetryAttempts"].as_i64().is_some());
    assert_eq!(alarmed_queue(&t, &s["DeadLetterConfig"]["Arn"], "Schedule DeadLetterConfig"), queue);
    let rule = format!("ArchiverFunction{}", schedule_name.as_str().unwrap());
    let allowed = of_type(&t, "AWS::SQS::QueuePolicy").iter().any(|(_, qp)| {
        let pp = &qp["Properties"];
        pp["Queues"].as_sequence().unwrap().iter().any(|q| target(q).as_deref() == Some(queue.as_str()))
            && pp["PolicyDocument"]["Statement"].as_sequence().unwrap().iter().any(|st| {
                st["Principal"]["Service"].as_str() == Some("events.amazonaws.com")
                    && st["Action"].as_str() == Some("sqs:SendMessage")
                    && target(&st["Condition"]["ArnEquals"]["aws:SourceArn"]).as_deref() == Some(rule.as_str())
            })
    });
    assert!(allowed, "a queue policy lets the rule {rule} send to {queue}");

    // The stream: retried until the record leaves the stream (a TTL removal's old image is its
    // only copy), bisecting, the filter, then its own queue.
    let s = &stream["Properties"];
    assert_eq!(s["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(s["MaximumRetryAttempts"].as_i64(), Some(-1));
    assert!(s["MaximumRecordAgeInSeconds"].is_null(), "kept until the stream drops it (24 hours)");
    assert_eq!(s["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    assert_eq!(
        s["FilterCriteria"]["Filters"].as_sequence().map(Vec::len),
        Some(2),
        "tombstone inserts and TTL removals"
    );
    assert_eq!(s["DestinationConfig"]["OnFailure"]["Type"].as_str(), Some("SQS"));
    let stream_queue =
        alarmed_queue(&t, &s["DestinationConfig"]["OnFailure"]["Destination"], "stream DestinationConfig");
    assert_ne!(stream_queue, queue, "two queues: a failed run and a failed erasure need different remedies");
}

#[test]
fn every_function_keeps_its_logs_and_has_alarms() {
    let t = template();
    let retention = |group: &str| {
        let g = &t["Resources"][group];
        assert_eq!(g["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{group}");
        assert_eq!(
            target(&g["Properties"]["RetentionInDays"]).as_deref(),
            Some("LogRetentionDays"),
            "{group}: retention"
        );
    };
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let alarm_on = |function: &str, metric: &str| {
        alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"].as_str() == Some("AWS/Lambda")
                && p["MetricName"].as_str() == Some(metric)
                && p["Dimensions"][0]["Name"].as_str() == Some("FunctionName")
                && target(&p["Dimensions"][0]["Value"]).as_deref() == Some(function)
                && alarm_actions_are_the_topic(p)
        })
    };
    let fns = functions(&t);
    assert!(fns.len() >= 10);
    for (logical, f) in &fns {
        let group = target(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{logical}: LoggingConfig.LogGroup"));
        retention(&group);
        assert!(alarm_on(logical, "Errors"), "{logical}: an alarm on Errors");
        // The archiver's throttles are by design (one execution; Lambda retries them).
        if binary(f) != "archiver" {
            assert!(alarm_on(logical, "Throttles"), "{logical}: an alarm on Throttles");
        }
    }
    assert_eq!(t["Globals"]["Function"]["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));

    let api = &t["Resources"]["HttpApi"]["Properties"];
    assert_eq!(target(&api["DefaultRouteSettings"]["ThrottlingRateLimit"]).as_deref(), Some("ApiThrottlingRateLimit"));
    assert_eq!(
        target(&api["DefaultRouteSettings"]["ThrottlingBurstLimit"]).as_deref(),
        Some("ApiThrottlingBurstLimit")
    );
    retention(&target(&api["AccessLogSettings"]["DestinationArn"]).expect("an access log"));
    assert!(alarms.iter().any(|(_, a)| a["Properties"]["Namespace"].as_str() == Some("AWS/ApiGateway")
        && a["Properties"]["MetricName"].as_str() == Some("5xx")));
}

/// Statements allowed a `*`, each with AWS's reason. Everything else names its actions and
/// resources (the functions' grants are checked call by call in tests/iam.rs).
const WILDCARD_EXCEPTIONS: &[(&str, &str)] = &[(
    "ArchiveBucketPolicy/DenyInsecureTransport",
    "TLS only: AWS's documented form denies every action (s3:*) to every principal (*) without aws:SecureTransport",
)];

#[test]
fn no_policy_grants_a_wildcard_but_the_named_exceptions() {
    let t = template();
    let mut statements: Vec<(String, &Yaml)> = Vec::new();
    for (logical, r) in resources(&t) {
        let docs: Vec<&Yaml> = match r["Type"].as_str() {
            Some("AWS::Serverless::Function") => {
                r["Properties"]["Policies"].as_sequence().map(|p| p.iter().collect()).unwrap_or_default()
            }
            Some("AWS::S3::BucketPolicy" | "AWS::SQS::QueuePolicy") => vec![&r["Properties"]["PolicyDocument"]],
            Some("AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                panic!("{logical}: a role or policy of our own: add it to this test")
            }
            _ => continue,
        };
        for doc in docs {
            let list = doc["Statement"].as_sequence().unwrap_or_else(|| panic!("{logical}: a policy must be a statement list (no SAM policy templates or managed policies: they grant *)"));
            for (i, st) in list.iter().enumerate() {
                let sid = st["Sid"].as_str().map(str::to_owned).unwrap_or_else(|| i.to_string());
                statements.push((format!("{logical}/{sid}"), st));
            }
        }
    }
    assert!(statements.len() > 30);
    let strings = |v: &Yaml| -> Vec<String> {
        match v {
            Yaml::String(s) => vec![s.clone()],
            Yaml::Sequence(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    };
    let mut used = BTreeSet::new();
    for (at, st) in &statements {
        let wild_action = strings(&st["Action"]).iter().any(|a| a.contains('*'));
        let wild_resource = strings(&st["Resource"]).iter().any(|r| r == "*");
        let wild_principal = st["Principal"].as_str() == Some("*");
        if wild_action || wild_resource || wild_principal {
            let excepted = WILDCARD_EXCEPTIONS.iter().any(|(name, _)| name == at);
            assert!(
                excepted,
                "{at}: a * action, resource or principal; name the statement and the reason in WILDCARD_EXCEPTIONS"
            );
            assert_eq!(st["Effect"].as_str(), Some("Deny"), "{at}: the exceptions are denials");
            used.insert(at.clone());
        }
    }
    for (name, _) in WILDCARD_EXCEPTIONS {
        assert!(used.contains(*name), "{name}: an exception no statement needs any more");
    }
}

/// S3 answers a GetObject of a missing key 403 AccessDenied, not 404, to a caller that may not
/// list the bucket. The archive reads treat a missing object as "follow the catalog row"
/// (`App::open_slot`): a function that reads `archive/` objects without `s3:ListBucket` would
/// answer 500 where the row says the object is not written yet or was compacted away. The
/// emulator answers 404 either way, so `tests/iam.rs` cannot see it; this test holds it.
#[test]
fn every_function_that_reads_archive_objects_may_list_the_bucket() {
    let t = template();
    let mut readers = 0;
    for (logical, f) in functions(&t) {
        let statements: Vec<&Yaml> = f["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|doc| doc["Statement"].as_sequence().into_iter().flatten())
            .filter(|st| st["Effect"].as_str() == Some("Allow"))
            .collect();
        let actions = |st: &Yaml| -> Vec<String> {
            match &st["Action"] {
                Yaml::String(a) => vec![a.clone()],
                Yaml::Sequence(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            }
        };
        let resource = |st: &Yaml| serde_yaml::to_string(&st["Resource"]).unwrap_or_default();
        let reads_archive = statements.iter().any(|st| {
            actions(st).iter().any(|a| a == "s3:GetObject") && resource(st).contains("${ArchiveBucket.Arn}/archive/*")
        });
        if !reads_archive {
            continue;
        }
        readers += 1;
        let lists = statements
            .iter()
            .any(|st| actions(st).iter().any(|a| a == "s3:ListBucket") && resource(st).contains("ArchiveBucket.Arn"));
        assert!(lists, "{logical} reads archive/ objects but may not list the bucket (s3:ListBucket)");
    }
    assert!(readers >= 5, "log, export, delete, archive-run and archiver read archive objects: {readers}");
}

// -- configuration ------------------------------------------------------------------------------

/// The functions that read each setting the template passes (config.rs's variables: the
/// use cases that read them, `collector::app`). Variables of the local server only are not
/// parameters: COLLECTOR_DATA_DIR, COLLECTOR_JWT_SECRET, COLLECTOR_ARCHIVE_AT.
const READERS: &[(&str, &str, &[&str])] = &[
    ("ENABLE_DATA_COLLECTION", "EnableDataCollection", &["log", "validate-log"]),
    ("COMPRESSION_THRESHOLD_KB", "CompressionThresholdKb", &["log"]),
    ("DEFAULT_TRAINING_CONSENT", "DefaultTrainingConsent", &["log"]),
    ("ENABLE_DATA_ARCHIVING", "EnableDataArchiving", &["archive-run", "archiver"]),
    ("DATA_RETENTION_DAYS", "DataRetentionDays", &["archive-run", "archiver"]),
    ("PRICE_HOT_GB_MONTH", "PriceHotGbMonth", &["stats"]),
    ("PRICE_ARCHIVE_GB_MONTH", "PriceArchiveGbMonth", &["stats"]),
    ("READINESS_MIN_TOTAL", "ReadinessMinTotal", &["stats", "readiness"]),
    ("READINESS_MIN_SUCCESSFUL", "ReadinessMinSuccessful", &["stats", "readiness"]),
    ("READINESS_MIN_FEEDBACK", "ReadinessMinFeedback", &["stats", "readiness"]),
    ("READINESS_MIN_QUALITY", "ReadinessMinQuality", &["stats", "readiness"]),
    ("READINESS_MIN_SCORE", "ReadinessMinScore", &["stats", "readiness"]),
    ("EXPORT_SYSTEM_PROMPT", "ExportSystemPrompt", &["export"]),
    ("EXPORT_MAX_TOKENS", "ExportMaxTokens", &["export"]),
    ("COLLECTOR_GROUPS_CLAIM", "GroupsClaim", &["*"]),
    ("PLATFORMS", "Platforms", &["*"]),
    ("MAX_PLATFORMS", "MaxPlatforms", &["*"]),
];
/// Set by the stack itself (names of its resources) or declared empty for `sam local invoke`.
const FIXED: &[&str] = &[
    "COLLECTOR_BACKEND",
    "TABLE_NAME",
    "ARCHIVE_TABLE_NAME",
    "S3_BUCKET_NAME",
    "DYNAMODB_ENDPOINT",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
];
const LOCAL_ONLY: &[&str] = &["COLLECTOR_DATA_DIR", "COLLECTOR_JWT_SECRET", "COLLECTOR_ARCHIVE_AT"];

/// Each function's environment as deployed: Globals, then its own (SAM merges them).
fn environments(t: &Yaml) -> BTreeMap<String, (String, BTreeMap<String, Yaml>)> {
    let globals: BTreeMap<String, Yaml> = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Globals environment")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect();
    functions(t)
        .into_iter()
        .map(|(logical, f)| {
            let mut env = globals.clone();
            for (k, v) in f["Properties"]["Environment"]["Variables"].as_mapping().into_iter().flatten() {
                env.insert(k.as_str().unwrap().to_owned(), v.clone());
            }
            (logical, (binary(f).to_owned(), env))
        })
        .collect()
}

/// The variables config.rs reads: every upper-case string literal before its tests.
fn config_variables() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("shared/collector/src/config.rs")).expect("config.rs");
    let code = src.split("#[cfg(test)]").next().unwrap();
    let mut out = BTreeSet::new();
    for piece in code.split('"').skip(1).step_by(2) {
        if piece.len() > 3 && piece.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            out.insert(piece.to_owned());
        }
    }
    out
}

fn load(pairs: &[(&str, String)]) -> Result<Config, collector::config::ConfigError> {
    let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Config::from_lookup(|k| m.get(k).cloned())
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("a scalar, not {other:?}"),
    }
}

#[test]
fn every_setting_is_a_parameter_with_config_rs_defaults_and_bounds() {
    let vars = config_variables();
    assert!(vars.contains("DATA_RETENTION_DAYS") && vars.contains("EXPORT_MAX_TOKENS"), "{vars:?}");
    let covered: BTreeSet<String> = READERS
        .iter()
        .map(|(v, _, _)| *v)
        .chain(FIXED.iter().copied())
        .chain(LOCAL_ONLY.iter().copied())
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = vars.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "config.rs reads {missing:?}: add a parameter (template.yaml, READERS here, docs/DEPLOY.md)"
    );

    let t = template();
    let baseline = format!("{:?}", load(&[]).unwrap());
    for (var, param, _) in READERS {
        let p = &t["Parameters"][*param];
        assert!(p.is_mapping(), "{var}: no parameter {param}");
        assert!(p["Description"].as_str().is_some_and(|d| d.contains(var)), "{param}: its description names {var}");
        // The default is config.rs's default (or empty, which config.rs reads as unset).
        let default = scalar(&p["Default"]);
        assert_eq!(format!("{:?}", load(&[(var, default.clone())]).unwrap()), baseline, "{param}: default {default:?}");
        if let Some(values) = p["AllowedValues"].as_sequence() {
            for v in values {
                load(&[(var, scalar(v))]).unwrap_or_else(|e| panic!("{param}: allowed value {v:?} refused: {e}"));
            }
        }
        if p["Type"].as_str() == Some("Number") {
            let min = p["MinValue"].as_f64().unwrap_or_else(|| panic!("{param}: MinValue"));
            let max = p["MaxValue"].as_f64().unwrap_or_else(|| panic!("{param}: MaxValue"));
            for (v, ok) in [(min, true), (max, true), (min - 1.0, false), (max + 1.0, false)] {
                let text = if v.fract() == 0.0 { format!("{v:.0}") } else { v.to_string() };
                // MAX_PLATFORMS may be as low as the number of PLATFORMS: one, at the bound.
                let mut pairs = vec![(*var, text.clone())];
                if *var == "MAX_PLATFORMS" {
                    pairs.push(("PLATFORMS", "n8n".to_owned()));
                }
                let r = load(&pairs);
                assert_eq!(r.is_ok(), ok, "{param}={text}: config.rs and the template disagree on the bounds ({r:?})");
            }
        }
    }
    // Platforms: the pattern takes the default and refuses an empty list.
    let platforms = &t["Parameters"]["Platforms"];
    assert!(load(&[("PLATFORMS", scalar(&platforms["Default"]))]).is_ok());
    assert!(platforms["AllowedPattern"].as_str().is_some());
}

#[test]
fn each_function_gets_the_settings_it_reads_and_no_others() {
    let t = template();
    let envs = environments(&t);
    assert!(envs.len() >= 10);
    for (logical, (binary, env)) in &envs {
        for var in FIXED {
            assert!(env.contains_key(*var), "{logical}: {var} not declared");
        }
        for (var, param, readers) in READERS {
            let reads = readers.contains(&"*") || readers.contains(&binary.as_str());
            match env.get(*var) {
                Some(v) => {
                    assert!(reads, "{logical} ({binary}) gets {var} but does not read it (READERS)");
                    assert_eq!(target(v).as_deref(), Some(*param), "{logical}: {var} is !Ref {param}");
                }
                None => assert!(!reads, "{logical} ({binary}) reads {var}: pass it !Ref {param}"),
            }
        }
        for (var, value) in env {
            let known = FIXED.contains(&var.as_str()) || READERS.iter().any(|(v, _, _)| v == var);
            assert!(known, "{logical}: {var} is set but not known to this test (READERS or FIXED)");
            if ["DYNAMODB_ENDPOINT", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY"]
                .contains(&var.as_str())
            {
                assert_eq!(
                    value.as_str(),
                    Some(""),
                    "{logical}: {var} is empty on AWS (set only by sam local's env.json)"
                );
            }
        }
    }
    // Lambda caps a function's environment at 4 KB: the export function's, with the longest prompt.
    let (_, (_, export_env)) = envs.iter().find(|(_, (b, _))| b == "export").unwrap();
    let prompt_max = t["Parameters"]["ExportSystemPrompt"]["MaxLength"].as_u64().expect("MaxLength");
    let rest: usize = export_env.keys().map(|k| k.len() + 64).sum();
    assert!(prompt_max as usize + rest < 4096, "export's environment could pass 4 KB");
}

#[test]
fn env_json_names_only_declared_variables() {
    let t = template();
    let envs = environments(&t);
    let text = std::fs::read_to_string(root().join("events/env.json")).expect("events/env.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("events/env.json parses");
    let sections = json.as_object().expect("an object of sections");
    assert!(sections.contains_key("Parameters"), "a Parameters section (every function)");
    for (section, vars) in sections {
        let targets: Vec<&String> = if section == "Parameters" {
            envs.keys().collect()
        } else {
            assert!(envs.contains_key(section), "events/env.json: {section} is not a function of template.yaml");
            vec![section]
        };
        for (var, value) in vars.as_object().unwrap_or_else(|| panic!("{section}: an object")) {
            assert!(value.is_string(), "{section}.{var}: SAM wants strings");
            for logical in &targets {
                assert!(
                    envs[*logical].1.contains_key(var),
                    "events/env.json: {section}.{var} is not declared on {logical}, so sam local would ignore it"
                );
            }
        }
    }
    // The point of the file: the SDK endpoints reach the emulator.
    for var in ["DYNAMODB_ENDPOINT", "S3_ENDPOINT"] {
        assert!(sections["Parameters"][var].as_str().is_some_and(|v| v.starts_with("http://")), "{var}");
    }
}

#[test]
fn samconfig_opts_into_beta_features_for_cargo_lambda_builds() {
    let t = template();
    assert!(functions(&t).iter().all(|(_, f)| f["Metadata"]["BuildMethod"].as_str() == Some("rust-cargolambda")));
    let text = std::fs::read_to_string(root().join("samconfig.toml")).expect("samconfig.toml");
    let section = |name: &str| -> String {
        let start = text.find(&format!("[{name}]")).unwrap_or_else(|| panic!("samconfig.toml: no [{name}]"));
        let rest = &text[start + name.len() + 2..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
    };
    for name in ["default.global.parameters", "default.build.parameters"] {
        assert!(
            section(name).lines().any(|l| l.replace(' ', "") == "beta_features=true"),
            "[{name}] beta_features = true"
        );
    }
    assert!(section("default.deploy.parameters").contains("CAPABILITY_IAM"));
}
