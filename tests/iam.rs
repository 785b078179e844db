//! Least privilege that matches the code (issue 14): for every function of `template.yaml`,
//! its own IAM policy covers every AWS call its routes make, including the large-payload
//! (overflow) paths, and grants nothing those calls do not use.
//!
//! How: the test starts its own moto server (infra/moto_locked.py from the venv
//! `infra/tools.sh` makes, on a free port, stopped when the test ends; the shared emulator on
//! 5055 is not touched), creates the template's tables and bucket, and one IAM user per
//! function whose policy is that function's statements from `template.yaml`, with `!Sub`,
//! `!GetAtt`, `!Ref` and SAM policy templates resolved to the emulator's ARNs. Then it turns
//! moto's IAM checks on (`/moto-api/reset-auth`, the server form of
//! `INITIAL_NO_AUTH_ACTION_COUNT`) and runs every route of each function through the function's
//! real router (`collector::http::routes`, the API Gateway events of `events/http/` as
//! lambda_http turns them into requests; the archiver through its handler with
//! `events/archiver/`), over an app whose SDK clients sign with that function's keys.
//!
//! Mode, per service (moto 5.2.5, as pinned by infra/tools.sh; read from its source:
//! `moto/core/authorization.py`, `moto/iam/access_control.py`, `moto/s3/responses.py`,
//! `moto/dynamodb/responses.py`):
//!
//! - **S3: enforced by the emulator.** moto maps each S3 request to the IAM action (a HEAD is
//!   `s3:GetObject`, the multipart calls are `s3:PutObject`, a listing is `s3:ListBucket` on
//!   the bucket) and the ARN of the object key, and evaluates `Action` and `Resource` with
//!   wildcards. A call the policy does not allow answers 403 AccessDenied.
//! - **DynamoDB: checked by this test from recorded calls.** moto checks DynamoDB actions
//!   against the resource `*` only (no `_determine_resource` in its DynamoDB handler), so a
//!   statement naming a table ARN never matches and every call would be refused; and it asks
//!   for `dynamodb:TransactWriteItems`, which is not an IAM action (IAM checks each item of a
//!   transaction as PutItem, UpdateItem, DeleteItem or ConditionCheckItem). So each function's
//!   emulator user also gets `dynamodb:*` on `*`, and an SDK interceptor on the function's
//!   clients records every call with the IAM actions and ARNs it needs (every item of a
//!   transaction, every table of a batch, `table/T/index/I` for an index query), which this
//!   test evaluates against the template's statements.
//! - Both: S3 calls are recorded and evaluated the same way, so this test's evaluator and
//!   moto's agree or the difference shows. Neither evaluates `Condition` keys: the evaluator
//!   here refuses statements with `Condition`, `NotAction` or `NotResource` rather than guess.
//!
//! A presigned GET (a spilled export) is recorded as `s3:GetObject` on its key: S3 checks the
//! signer's rights when the URL is fetched, and the signer is the function's role. Nothing is
//! mocked: the one helper that steers the calls, [`Gate`], holds two real requests'
//! transactions until both are ready, so one loses the optimistic version race and the
//! cleanup of its overflow object runs (the path that needs `s3:DeleteObject` in submit and
//! validate-log).
//!
//! Checks, per function: every route and event source the template gives it was exercised;
//! no call was refused by the emulator; every recorded call is allowed by a statement; every
//! action and every resource of every statement was used by some call (least privilege),
//! except the grants listed in [`UNEXERCISED`] with the reason they are kept; and each
//! statement is needed (removed, some recorded call is no longer allowed). The routes also
//! check what the overflow paths leave in the bucket (no object left after a replay, a lost
//! race or a delete). A statement removed from the template fails the first checks; one added
//! that no route uses fails the last ones.
//!
//! Needs the venv of `infra/tools.sh` (moto); without it the test prints `SKIPPED` locally and
//! fails under CI (`CI` set). Run: `cargo test -p collector-e2e --test iam -- --nocapture`
//! (prints each function's actions and resources as used); `IAM_TEMPLATE=path` checks another
//! copy of the template (try a change to a policy without touching template.yaml).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use axum::Router;
use collector::adapters::dynamodb::DynamoStore;
use collector::adapters::s3::S3Store;
use collector::app::App;
use collector::config::Config;
use collector::http::{HttpState, routes};
use collector::ports::conformance::noise;
use collector::testing::{Emulator, Stack};
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use tower::ServiceExt;

/// The template as built; `IAM_TEMPLATE=path` reads another (to try a changed policy without
/// touching template.yaml).
fn template_text() -> String {
    let path = std::env::var_os("IAM_TEMPLATE").map(PathBuf::from).unwrap_or_else(|| root().join("template.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
/// moto's default account and the region every client here uses.
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// Grants a function keeps although no route of this test makes the call, and why:
/// `(function or "*", action, resource pattern, reason)`, patterns with IAM wildcards.
const UNEXERCISED: &[(&str, &str, &str, &str)] = &[
    (
        "*",
        "s3:AbortMultipartUpload",
        "*",
        "a multipart upload that fails, or whose writer is dropped unfinished, is aborted (adapters::s3); \
         the test does not break uploads",
    ),
    (
        "log",
        "s3:ListBucket",
        "arn:aws:s3:::*",
        "without it S3 answers a GetObject of a missing key 403 AccessDenied, not 404 NoSuchKey, and a read \
         of an archive object not yet uploaded (a pending row) or just compacted away fails with 500 \
         instead of following the row (App::open_slot); the emulator answers 404 either way",
    ),
    (
        "export",
        "s3:ListBucket",
        "arn:aws:s3:::*",
        "as for log: an export with include_archived that meets a pending row or a compaction follows the \
         row only when a missing object answers 404",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
}

// -- the emulator, our own instance -------------------------------------------------------------

/// A moto server of this test's own, on a free port; killed (by its pid) when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    /// Its output; removed with it unless the test is failing.
    log: PathBuf,
}

impl Moto {
    /// The venv's bin folder: the one `infra/tools.sh` made if it already has moto (no install
    /// in the middle of a test run), else what `infra/tools.sh` prints after installing.
    fn venv_bin() -> Option<String> {
        let venv = std::env::var("COLLECTOR_VENV")
            .unwrap_or_else(|_| format!("{}/.cache/collector-venv", std::env::var("HOME").unwrap_or_default()));
        let bin = format!("{venv}/bin");
        let has_moto = Command::new(format!("{bin}/python3"))
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_moto {
            return Some(bin);
        }
        match Command::new("bash").arg(root().join("infra/tools.sh")).stderr(Stdio::inherit()).output() {
            Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            _ => None,
        }
    }

    fn start() -> Option<Moto> {
        let Some(bin) = Moto::venv_bin() else {
            skip_or_fail("infra/tools.sh did not provide the venv with moto");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::env::temp_dir().join(format!("collector-iam-moto-{port}.log"));
        let child = Command::new(format!("{bin}/python3"))
            .arg(root().join("infra/moto_locked.py"))
            .arg(port.to_string())
            .stdout(std::fs::File::create(&log).expect("moto log"))
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).expect("moto log")))
            .spawn()
            .expect("start moto");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), log: log.clone() };
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not start on port {port}; see {}", log.display());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// An IAM Query API call while the emulator's checks are still off (moto then reads only the
/// service from the credential scope, not the signature).
async fn iam(http: &reqwest::Client, endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut form = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let resp = http
        .post(format!("{endpoint}/"))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=setup/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .form(&form)
        .send()
        .await
        .expect("IAM call");
    let status = resp.status();
    let text = resp.text().await.expect("IAM answer");
    assert!(status.is_success(), "IAM {params:?}: {status}: {text}");
    text
}

fn xml_field(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no {name} in {xml}")) + open.len();
    let end = xml[start..].find('<').expect("closing tag") + start;
    xml[start..end].to_owned()
}

/// An IAM user with one inline policy; its access key.
async fn user_with_policy(http: &reqwest::Client, endpoint: &str, name: &str, policy: &Value) -> (String, String) {
    iam(http, endpoint, &[("Action", "CreateUser"), ("UserName", name)]).await;
    let doc = policy.to_string();
    iam(
        http,
        endpoint,
        &[("Action", "PutUserPolicy"), ("UserName", name), ("PolicyName", "template"), ("PolicyDocument", &doc)],
    )
    .await;
    let key = iam(http, endpoint, &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
    (xml_field(&key, "AccessKeyId"), xml_field(&key, "SecretAccessKey"))
}

// -- the template ---------------------------------------------------------------------------------

/// The emulator's names for the template's resources.
struct Names<'a>(&'a Stack);

impl Names<'_> {
    fn table_arn(name: &str) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
    }
    fn bucket_arn(name: &str) -> String {
        format!("arn:aws:s3:::{name}")
    }
    fn reference(&self, logical: &str) -> String {
        match logical {
            "HotTable" => self.0.table.clone(),
            "ArchiveTable" => self.0.archive_table.clone(),
            "ArchiveBucket" => self.0.bucket.clone(),
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            other => panic!("template: !Ref {other} is not a resource this test creates; extend Names"),
        }
    }
    fn attribute(&self, path: &str) -> String {
        match path {
            "HotTable.Arn" => Self::table_arn(&self.0.table),
            "ArchiveTable.Arn" => Self::table_arn(&self.0.archive_table),
            "HotTable.StreamArn" => format!("{}/stream/*", Self::table_arn(&self.0.table)),
            "ArchiveBucket.Arn" => Self::bucket_arn(&self.0.bucket),
            other => panic!("template: !GetAtt {other} is not known to this test; extend Names"),
        }
    }
    fn sub(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').unwrap_or_else(|| panic!("template: unclosed ${{ in {text}")) + i;
            let var = &rest[i + 2..end];
            out.push_str(&if var.contains('.') { self.attribute(var) } else { self.reference(var) });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// One string: a plain value or an intrinsic (short or long form).
    fn scalar(&self, v: &Yaml) -> String {
        match v {
            Yaml::String(s) => s.clone(),
            Yaml::Tagged(t) => {
                let inner = &t.value;
                match t.tag.to_string().as_str() {
                    "!Ref" => self.reference(inner.as_str().expect("!Ref of a name")),
                    "!Sub" => self.sub(inner.as_str().expect("!Sub of a string (the list form is not used)")),
                    "!GetAtt" => self.attribute(&match inner {
                        Yaml::String(s) => s.clone(),
                        Yaml::Sequence(parts) => {
                            parts.iter().map(|p| p.as_str().expect("GetAtt part")).collect::<Vec<_>>().join(".")
                        }
                        other => panic!("template: !GetAtt {other:?}"),
                    }),
                    other => panic!("template: intrinsic {other} in a policy is not supported by this test"),
                }
            }
            Yaml::Mapping(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next().expect("one entry");
                match k.as_str() {
                    Some("Ref") => self.reference(inner.as_str().expect("Ref of a name")),
                    Some("Fn::Sub") => self.sub(inner.as_str().expect("Fn::Sub of a string")),
                    Some("Fn::GetAtt") => self.attribute(
                        &inner
                            .as_sequence()
                            .expect("Fn::GetAtt list")
                            .iter()
                            .filter_map(Yaml::as_str)
                            .collect::<Vec<_>>()
                            .join("."),
                    ),
                    _ => panic!("template: {v:?} in a policy"),
                }
            }
            other => panic!("template: {other:?} where a string was expected"),
        }
    }

    /// A string or a list of them.
    fn list(&self, v: &Yaml) -> Vec<String> {
        match v {
            Yaml::Sequence(items) => items.iter().map(|i| self.scalar(i)).collect(),
            other => vec![self.scalar(other)],
        }
    }
}

#[derive(Debug, Clone)]
struct Statement {
    /// `LogFunction[2]`: where it is, for messages.
    at: String,
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// One function of the template: its binary, what invokes it, its policy.
#[derive(Debug, Clone)]
struct Function {
    logical: String,
    binary: String,
    /// `POST /api/interactions` for HTTP routes; the event type (`Schedule`, `DynamoDB`) else.
    routes: BTreeSet<String>,
    statements: Vec<Statement>,
}

/// The SAM policy templates (serverless-application-model `policy_templates.json`) a function
/// might use, expanded as SAM does: (actions, resources from the one parameter).
fn sam_policy(name: &str, params: &Yaml, names: &Names) -> Vec<(Vec<&'static str>, Vec<String>)> {
    let param = |p: &str| names.scalar(params.get(p).unwrap_or_else(|| panic!("template: {name} without {p}")));
    match name {
        "DynamoDBCrudPolicy" | "DynamoDBReadPolicy" | "DynamoDBWritePolicy" => {
            let arn = Names::table_arn(&param("TableName"));
            let actions = match name {
                "DynamoDBCrudPolicy" => vec![
                    "dynamodb:GetItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:PutItem",
                    "dynamodb:Scan",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:DescribeTable",
                    "dynamodb:ConditionCheckItem",
                ],
                "DynamoDBReadPolicy" => {
                    vec![
                        "dynamodb:GetItem",
                        "dynamodb:Scan",
                        "dynamodb:Query",
                        "dynamodb:BatchGetItem",
                        "dynamodb:DescribeTable",
                    ]
                }
                _ => vec!["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
            };
            vec![(actions, vec![arn.clone(), format!("{arn}/index/*")])]
        }
        "S3ReadPolicy" | "S3CrudPolicy" | "S3WritePolicy" => {
            let arn = Names::bucket_arn(&param("BucketName"));
            let actions = match name {
                "S3ReadPolicy" => vec![
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:GetObjectVersion",
                    "s3:GetLifecycleConfiguration",
                ],
                "S3CrudPolicy" => vec![
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:PutObjectAcl",
                    "s3:GetLifecycleConfiguration",
                    "s3:PutLifecycleConfiguration",
                    "s3:DeleteObject",
                ],
                _ => vec!["s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"],
            };
            vec![(actions, vec![arn.clone(), format!("{arn}/*")])]
        }
        other => panic!("template: SAM policy template {other} is not expanded by this test; add it to sam_policy"),
    }
}

fn functions(names: &Names) -> Vec<Function> {
    let template: Yaml = serde_yaml::from_str(&template_text()).expect("template.yaml parses");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut out = Vec::new();
    for (logical, res) in resources {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let logical = logical.as_str().expect("logical id").to_owned();
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{logical}: no Metadata.BuildProperties.Binary"))
            .to_owned();
        let props = &res["Properties"];
        let mut routes = BTreeSet::new();
        if let Some(events) = props["Events"].as_mapping() {
            for ev in events.values() {
                match ev["Type"].as_str() {
                    Some("HttpApi") => {
                        let p = &ev["Properties"];
                        let method = p["Method"].as_str().expect("Method").to_uppercase();
                        routes.insert(format!("{method} {}", p["Path"].as_str().expect("Path")));
                    }
                    Some(other) => {
                        routes.insert(other.to_owned());
                    }
                    None => panic!("{logical}: an event without Type"),
                }
            }
        }
        let mut statements = Vec::new();
        for policy in props["Policies"].as_sequence().map(Vec::as_slice).unwrap_or_default() {
            let mut push = |allow: bool, actions: Vec<String>, resources: Vec<String>| {
                let at = format!("{logical}[{}]", statements.len());
                statements.push(Statement { at, allow, actions, resources });
            };
            match policy {
                Yaml::Mapping(m) if m.contains_key("Statement") => {
                    for st in policy["Statement"].as_sequence().expect("Statement list") {
                        for unsupported in ["Condition", "NotAction", "NotResource", "Principal"] {
                            assert!(
                                st.get(unsupported).is_none(),
                                "{logical}: a statement with {unsupported}: this test's evaluator does not handle it"
                            );
                        }
                        let allow = match st["Effect"].as_str() {
                            Some("Allow") => true,
                            Some("Deny") => false,
                            other => panic!("{logical}: Effect {other:?}"),
                        };
                        push(allow, names.list(&st["Action"]), names.list(&st["Resource"]));
                    }
                }
                Yaml::Mapping(m) if m.len() == 1 => {
                    let (name, params) = m.iter().next().expect("one entry");
                    for (actions, resources) in sam_policy(name.as_str().expect("template name"), params, names) {
                        push(true, actions.into_iter().map(str::to_owned).collect(), resources);
                    }
                }
                other => panic!("{logical}: policy {other:?} (a managed policy?) is not understood by this test"),
            }
        }
        out.push(Function { logical, binary, routes, statements });
    }
    out
}

// -- the evaluator --------------------------------------------------------------------------------

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn covers(st: &Statement, need: &Need) -> bool {
    st.actions.iter().any(|a| glob(a, &need.action, true))
        && st.resources.iter().any(|r| glob(r, &need.resource, false))
}

/// The statements that allow `need`, or None when a Deny matches or nothing allows it.
fn allowed_by(statements: &[Statement], need: &Need) -> Option<Vec<usize>> {
    if statements.iter().any(|s| !s.allow && covers(s, need)) {
        return None;
    }
    let by: Vec<usize> =
        statements.iter().enumerate().filter(|(_, s)| s.allow && covers(s, need)).map(|(i, _)| i).collect();
    (!by.is_empty()).then_some(by)
}

// -- recording the calls --------------------------------------------------------------------------

/// An IAM action on a resource ARN that a call needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    action: String,
    resource: String,
}

#[derive(Debug, Clone)]
struct Call {
    /// The route (or event source) being served when the call was made.
    route: String,
    op: String,
    needs: Vec<Need>,
    /// Mapped from the input; false for an operation this test does not know.
    mapped: bool,
    /// The last attempt's HTTP status; None for a presigned request (signed, never sent here).
    status: Option<u16>,
}

/// Lets the next `n` TransactWriteItems calls through only once all `n` have arrived, so
/// concurrent requests both read before either writes (an optimistic version race, made
/// deterministic).
struct Gate {
    n: usize,
    arrived: Mutex<usize>,
    all_in: Condvar,
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
    route: Mutex<String>,
    gate: Mutex<Option<Arc<Gate>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

#[derive(Debug, Clone)]
struct Rec(Arc<Recorder>);

#[derive(Debug, Clone)]
struct CallIndex(usize);

impl Storable for CallIndex {
    type Storer = StoreReplace<Self>;
}

fn need(action: &str, resource: String) -> Need {
    Need { action: action.into(), resource }
}

/// The IAM actions and ARNs a DynamoDB or S3 call needs, from its input. None: unknown input.
fn needs_of(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<Vec<Need>> {
    use aws_sdk_dynamodb::operation as d;
    use aws_sdk_s3::operation as s;
    let table = |t: Option<&str>| Names::table_arn(t.unwrap_or_default());
    let index = |t: Option<&str>, i: Option<&str>| match i {
        Some(i) => format!("{}/index/{i}", table(t)),
        None => table(t),
    };
    macro_rules! ddb {
        ($ty:ty, $action:literal) => {
            if let Some(i) = input.downcast_ref::<$ty>() {
                return Some(vec![need($action, table(i.table_name()))]);
            }
        };
    }
    ddb!(d::get_item::GetItemInput, "dynamodb:GetItem");
    ddb!(d::put_item::PutItemInput, "dynamodb:PutItem");
    ddb!(d::update_item::UpdateItemInput, "dynamodb:UpdateItem");
    ddb!(d::delete_item::DeleteItemInput, "dynamodb:DeleteItem");
    ddb!(d::describe_table::DescribeTableInput, "dynamodb:DescribeTable");
    if let Some(i) = input.downcast_ref::<d::query::QueryInput>() {
        return Some(vec![need("dynamodb:Query", index(i.table_name(), i.index_name()))]);
    }
    if let Some(i) = input.downcast_ref::<d::scan::ScanInput>() {
        return Some(vec![need("dynamodb:Scan", index(i.table_name(), i.index_name()))]);
    }
    if let Some(i) = input.downcast_ref::<d::batch_get_item::BatchGetItemInput>() {
        let tables = i.request_items().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        return Some(tables.iter().map(|t| need("dynamodb:BatchGetItem", table(Some(t)))).collect());
    }
    if let Some(i) = input.downcast_ref::<d::batch_write_item::BatchWriteItemInput>() {
        let tables = i.request_items().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        return Some(tables.iter().map(|t| need("dynamodb:BatchWriteItem", table(Some(t)))).collect());
    }
    if let Some(i) = input.downcast_ref::<d::transact_write_items::TransactWriteItemsInput>() {
        let mut out = Vec::new();
        for it in i.transact_items() {
            if let Some(p) = it.put() {
                out.push(need("dynamodb:PutItem", table(Some(p.table_name()))));
            }
            if let Some(u) = it.update() {
                out.push(need("dynamodb:UpdateItem", table(Some(u.table_name()))));
            }
            if let Some(x) = it.delete() {
                out.push(need("dynamodb:DeleteItem", table(Some(x.table_name()))));
            }
            if let Some(c) = it.condition_check() {
                out.push(need("dynamodb:ConditionCheckItem", table(Some(c.table_name()))));
            }
        }
        return Some(out);
    }
    if let Some(i) = input.downcast_ref::<d::transact_get_items::TransactGetItemsInput>() {
        let gets = i.transact_items().iter().filter_map(|t| t.get());
        return Some(gets.map(|g| need("dynamodb:GetItem", table(Some(g.table_name())))).collect());
    }

    let object =
        |b: Option<&str>, k: Option<&str>| format!("arn:aws:s3:::{}/{}", b.unwrap_or_default(), k.unwrap_or_default());
    macro_rules! obj {
        ($ty:ty, $action:literal) => {
            if let Some(i) = input.downcast_ref::<$ty>() {
                return Some(vec![need($action, object(i.bucket(), i.key()))]);
            }
        };
    }
    obj!(s::put_object::PutObjectInput, "s3:PutObject");
    obj!(s::create_multipart_upload::CreateMultipartUploadInput, "s3:PutObject");
    obj!(s::upload_part::UploadPartInput, "s3:PutObject");
    obj!(s::complete_multipart_upload::CompleteMultipartUploadInput, "s3:PutObject");
    obj!(s::abort_multipart_upload::AbortMultipartUploadInput, "s3:AbortMultipartUpload");
    obj!(s::get_object::GetObjectInput, "s3:GetObject");
    obj!(s::head_object::HeadObjectInput, "s3:GetObject");
    obj!(s::delete_object::DeleteObjectInput, "s3:DeleteObject");
    if let Some(i) = input.downcast_ref::<s::delete_objects::DeleteObjectsInput>() {
        let keys =
            i.delete().map(|d| d.objects().iter().map(|o| o.key().to_owned()).collect::<Vec<_>>()).unwrap_or_default();
        return Some(keys.iter().map(|k| need("s3:DeleteObject", object(i.bucket(), Some(k)))).collect());
    }
    if let Some(i) = input.downcast_ref::<s::list_objects_v2::ListObjectsV2Input>() {
        return Some(vec![need("s3:ListBucket", Names::bucket_arn(i.bucket().unwrap_or_default()))]);
    }
    if let Some(i) = input.downcast_ref::<s::head_bucket::HeadBucketInput>() {
        return Some(vec![need("s3:ListBucket", Names::bucket_arn(i.bucket().unwrap_or_default()))]);
    }
    None
}

impl Intercept for Rec {
    fn name(&self) -> &'static str {
        "IamRecorder"
    }

    /// Before serialization rather than before execution: a client's interceptors see the
    /// latter before the operation's configuration (its name) is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or("?".to_owned(), |m| format!("{}:{}", m.service(), m.name()));
        let needs = needs_of(context.input());
        let route = self.0.route.lock().expect("route").clone();
        let mut calls = self.0.calls.lock().expect("calls");
        calls.push(Call { route, op, mapped: needs.is_some(), needs: needs.unwrap_or_default(), status: None });
        cfg.interceptor_state().store_put(CallIndex(calls.len() - 1));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_tx = cfg.load::<Metadata>().is_some_and(|m| m.name() == "TransactWriteItems");
        let gate = self.0.gate.lock().expect("gate").clone();
        if let (true, Some(gate)) = (is_tx, gate) {
            let mut arrived = gate.arrived.lock().expect("gate");
            if *arrived < gate.n {
                *arrived += 1;
                gate.all_in.notify_all();
                // The other request runs on another worker meanwhile (block_in_place hands this
                // worker's queue over); a partner that never comes lets this one go after 20 s.
                tokio::task::block_in_place(|| {
                    let _unused = gate
                        .all_in
                        .wait_timeout_while(arrived, Duration::from_secs(20), |n| *n < gate.n)
                        .expect("gate");
                });
            }
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallIndex(i)) = cfg.load::<CallIndex>() {
            self.0.calls.lock().expect("calls")[*i].status = Some(context.response().status().as_u16());
        }
        Ok(())
    }
}

// -- apps over the emulator -----------------------------------------------------------------------

/// An app over the stack whose clients sign with `key`, recording into `rec`; configured as the
/// template configures the functions.
fn app_as(endpoint: &str, stack: &Stack, key: &(String, String), rec: &Rec) -> App {
    let creds = aws_sdk_dynamodb::config::Credentials::new(&key.0, &key.1, None, None, "iam-test");
    let ddb = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .credentials_provider(creds.clone())
        .endpoint_url(endpoint)
        .interceptor(rec.clone())
        .build();
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .interceptor(rec.clone())
        .build();
    let config = Config::from_lookup(|k| match k {
        "COLLECTOR_BACKEND" => Some("aws".into()),
        "TABLE_NAME" => Some(stack.table.clone()),
        "ARCHIVE_TABLE_NAME" => Some(stack.archive_table.clone()),
        "S3_BUCKET_NAME" => Some(stack.bucket.clone()),
        "DATA_RETENTION_DAYS" => Some("30".into()),
        _ => None,
    })
    .expect("config");
    let objects = Arc::new(S3Store::new(aws_sdk_s3::Client::from_conf(s3), stack.bucket.clone()));
    let hot = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(ddb),
        stack.table.clone(),
        stack.archive_table.clone(),
        objects.clone(),
        config.data_retention_days,
    );
    App::new(config, Arc::new(hot), objects)
}

// -- events ---------------------------------------------------------------------------------------

fn load(rel: &str) -> Value {
    let path = root().join("events").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event JSON")
}

/// An API Gateway event of `events/http/{function}/{name}.json`, patched as JSON.
#[derive(Clone)]
struct Ev(Value);

fn ev(function: &str, name: &str) -> Ev {
    Ev(load(&format!("http/{function}/{name}.json")))
}

impl Ev {
    fn who(mut self, who: &str) -> Ev {
        self.0["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": load(&format!("claims/{who}.json")), "scopes": null}});
        self
    }
    fn path(mut self, path: &str) -> Ev {
        self.0["rawPath"] = path.into();
        self.0["requestContext"]["http"]["path"] = path.into();
        self
    }
    fn query(mut self, q: &str) -> Ev {
        self.0["rawQueryString"] = q.into();
        let map: serde_json::Map<String, Value> =
            q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        self.0["queryStringParameters"] = Value::Object(map);
        self
    }
    fn body(mut self, body: Value) -> Ev {
        self.0["body"] = body.to_string().into();
        self
    }
    fn field(self, name: &str, value: Value) -> Ev {
        let mut body: Value =
            serde_json::from_str(self.0["body"].as_str().expect("event has a body")).expect("JSON body");
        body[name] = value;
        self.body(body)
    }
    fn route(&self) -> String {
        self.0["routeKey"].as_str().expect("routeKey").to_owned()
    }
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(router: Router, e: &Ev) -> Reply {
    let req = lambda_http::request::from_str(&e.0.to_string()).expect("an API Gateway v2 event");
    let resp = router.oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body").to_vec();
    Reply { status, body }
}

// -- one function's run ---------------------------------------------------------------------------

/// A function's routes over the stack: `call` runs as the function (recorded), `seed` as an
/// admin of the account (the setup a route needs, not recorded).
#[derive(Clone)]
struct Run {
    binary: String,
    stack: Stack,
    rec: Rec,
    app: App,
    admin: HttpState,
    /// The bucket as the admin sees it.
    admin_s3: aws_sdk_s3::Client,
    seen: Arc<Mutex<BTreeSet<String>>>,
    problems: Arc<Mutex<Vec<String>>>,
}

const ALICE_OLD: &str = "01936f4e-7a00-7000-8000-0000000000a1";
const ALICE_BIG: &str = "01936f4e-7a00-7000-8000-0000000000b1";
const ALICE_SMALL: &str = "01936f4e-7a00-7000-8000-0000000000c1";
const ALICE_MANY: &str = "01936f4e-7a00-7000-8000-0000000000d1";
const BOB_BIG: &str = "01936f4e-7a00-7000-8000-0000000000b2";
const ALICE_HUGE: &str = "01936f4e-7a00-7000-8000-0000000000e1";

/// Big enough that the item goes over the 350 KB budget even gzip-compressed (a workflow).
fn big_text(seed: u64) -> String {
    noise(600 * 1024, seed)
}

fn big_workflow(seed: u64) -> Value {
    json!({"nodes": [{"name": "Webhook", "type": "n8n-nodes-base.webhookTrigger", "parameters": {"blob": big_text(seed)}}], "connections": {}})
}

/// `created_at` of a record the archive run takes (older than the 30 days retention).
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339()
}

impl Run {
    fn problem(&self, p: String) {
        self.problems.lock().expect("problems").push(p);
    }

    fn check(&self, what: &str, r: &Reply, status: u16) -> bool {
        if r.status != status {
            let body = String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
            self.problem(format!("{}: {what}: answered {} (wanted {status}): {body}", self.binary, r.status));
            return false;
        }
        true
    }

    /// A request to this function, as this function.
    async fn call(&self, e: Ev, status: u16) -> Reply {
        let route = e.route();
        self.seen.lock().expect("seen").insert(route.clone());
        *self.rec.0.route.lock().expect("route") = route.clone();
        let router = routes::by_name(&self.binary, HttpState::lambda(self.app.clone())).expect("a function router");
        let r = send(router, &e).await;
        self.check(&route, &r, status);
        r
    }

    /// A request to any function's router, as an admin of the account.
    async fn seed(&self, function: &str, e: Ev, status: u16) -> Reply {
        let router = routes::by_name(function, self.admin.clone()).expect("a function router");
        let r = send(router, &e).await;
        self.check(&format!("seed {function} {}", e.route()), &r, status);
        r
    }

    async fn seed_interaction(&self, id: &str, user: &str, created_at: Option<String>, ai_response: String) {
        let mut e = ev("log", "post-interactions").field("interaction_id", id.into()).field("user_id", user.into());
        e = e.field("ai_response", ai_response.into());
        if let Some(t) = created_at {
            e = e.field("created_at", t.into());
        }
        self.seed("log", e, 201).await;
    }

    /// Alice's conversation with a `kib` KiB answer (under the item budget): enough of them make
    /// an export or a right-of-access answer over 5 MiB.
    async fn seed_conversation(&self, id: &str, kib: usize, seed: u64) {
        let e = ev("log", "post-interactions")
            .field("interaction_id", id.into())
            .field("kind", "conversation".into())
            .field("workflow", Value::Null)
            .field("user_message", format!("question {seed}").into()) // the export dedupes prompts
            .field("ai_response", noise(kib * 1024, seed).into());
        self.seed("log", e, 201).await;
    }

    async fn seed_archive_run(&self) {
        self.seed("archive-run", ev("archive-run", "post-feedback-archive").body(json!({"dry_run": false})), 200).await;
    }

    async fn overflow_keys(&self) -> Vec<String> {
        let listed =
            self.admin_s3.list_objects_v2().bucket(&self.stack.bucket).prefix("overflow/").send().await.expect("list");
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// Two requests at once whose transactions wait for each other (so one loses the version race).
    async fn race(&self, a: Ev, b: Ev, status: u16) {
        *self.rec.0.gate.lock().expect("gate") =
            Some(Arc::new(Gate { n: 2, arrived: Mutex::new(0), all_in: Condvar::new() }));
        let (ra, rb) = (self.clone(), self.clone());
        let ta = tokio::spawn(async move { ra.call(a, status).await });
        let tb = tokio::spawn(async move { rb.call(b, status).await });
        let _ = (ta.await.expect("race a"), tb.await.expect("race b"));
        *self.rec.0.gate.lock().expect("gate") = None;
    }

    fn recorded(&self, action: &str, prefix: &str) -> bool {
        let calls = self.rec.0.calls.lock().expect("calls");
        calls.iter().flat_map(|c| &c.needs).any(|n| n.action == action && n.resource.contains(prefix))
    }
}

async fn admin_sdk(endpoint: &str, key: &(String, String)) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(&key.0, &key.1, None, None, "iam-test-admin"))
        .endpoint_url(endpoint)
        .load()
        .await
}

// -- the routes of each function ------------------------------------------------------------------

async fn scenario(run: &Run) {
    let alice_big = || {
        ev("log", "post-interactions")
            .field("interaction_id", ALICE_BIG.into())
            .field("ai_response", big_text(1).into())
    };
    match run.binary.as_str() {
        "log" => {
            run.seed_interaction(ALICE_OLD, "alice", Some(days_ago(60)), "old".into()).await;
            run.seed_archive_run().await;
            run.call(ev("log", "post-interactions").field("interaction_id", ALICE_SMALL.into()), 201).await;
            // Over the item budget: the payload goes to overflow/ ...
            run.call(alice_big(), 201).await;
            // ... and a replay writes its own object, then deletes it when the id is taken.
            run.call(alice_big(), 200).await;
            let keys = run.overflow_keys().await;
            if keys.len() != 1 {
                run.problem(format!("log: a replayed large insert left overflow objects behind: {keys:?}"));
            }
            run.call(ev("log", "post-interactions-batch"), 200).await;
            run.call(ev("log", "get-interactions"), 200).await;
            run.call(ev("log", "get-interactions").who("admin").query("limit=20"), 200).await;
            run.call(ev("log", "get-interaction").path(&format!("/api/interactions/{ALICE_BIG}")), 200).await;
            // An archived record is read from its archive object.
            run.call(ev("log", "get-interaction").path(&format!("/api/interactions/{ALICE_OLD}")), 200).await;
            // A record too large for Lambda's answer: spilled to exports/ and answered 303.
            let huge = ev("log", "post-interactions")
                .field("interaction_id", ALICE_HUGE.into())
                .field("ai_response", noise(5_600 * 1024, 5).into());
            run.call(huge, 201).await;
            run.call(ev("log", "get-interaction").path(&format!("/api/interactions/{ALICE_HUGE}")), 303).await;
        }
        "submit" => {
            run.seed("log", alice_big(), 201).await;
            run.seed_interaction(ALICE_SMALL, "alice", None, "small".into()).await;
            let fb = |id: &str| ev("submit", "post-feedback-submit").field("interaction_id", id.into());
            let big_fb = |id: &str, seed: u64| {
                fb(id).field("feedback_type", "edit".into()).field("corrected_workflow", big_workflow(seed))
            };
            run.call(fb(ALICE_SMALL), 201).await;
            // A large interaction is read back from overflow/; a large feedback goes there.
            run.call(big_fb(ALICE_BIG, 2), 201).await;
            // Two at once: the loser deletes its object and tries again.
            run.race(big_fb(ALICE_SMALL, 3), big_fb(ALICE_SMALL, 4), 201).await;
            if !run.recorded("s3:DeleteObject", "/overflow/") {
                run.problem("submit: the version race was not provoked (no overflow delete recorded)".into());
            }
            let keys = run.overflow_keys().await;
            if keys.len() != 4 {
                run.problem(format!("submit: want 4 overflow objects (interaction, 3 feedback), found {keys:?}"));
            }
        }
        "validate-log" => {
            run.seed("log", alice_big(), 201).await;
            run.seed_interaction(ALICE_SMALL, "alice", None, "small".into()).await;
            let v = |id: &str| ev("validate-log", "post-workflow-validate").field("interaction_id", id.into());
            let big_v = |id: &str, seed: u64| v(id).field("workflow", big_workflow(seed));
            run.call(v(ALICE_SMALL), 200).await;
            run.call(big_v(ALICE_BIG, 5), 200).await;
            // Unlinked: a service logs a validation for a user.
            let unlinked = ev("validate-log", "post-workflow-validate")
                .who("service")
                .field("interaction_id", Value::Null)
                .field("user_id", "alice".into())
                .field("workflow", big_workflow(6));
            run.call(unlinked, 200).await;
            // A platform an admin added (read from the table, as every function that takes a
            // platform may), and one nobody did (400, not an AWS error).
            run.seed("curation", ev("curation", "post-platforms").body(json!({"platform": "pipedream"})), 201).await;
            let on = |p: &str| {
                ev("validate-log", "post-workflow-validate")
                    .who("service")
                    .field("interaction_id", Value::Null)
                    .field("user_id", "alice".into())
                    .field("platform", p.into())
            };
            run.call(on("pipedream"), 200).await;
            run.call(on("nosuchplatform"), 400).await;
            run.race(big_v(ALICE_SMALL, 7), big_v(ALICE_SMALL, 8), 200).await;
            if !run.recorded("s3:DeleteObject", "/overflow/") {
                run.problem("validate-log: the version race was not provoked (no overflow delete recorded)".into());
            }
        }
        "stats" => {
            run.seed_interaction(ALICE_SMALL, "alice", None, "small".into()).await;
            run.call(ev("stats", "get-feedback-stats"), 200).await;
            run.call(ev("stats", "get-health"), 200).await;
            run.call(ev("stats", "get-openapi"), 200).await;
        }
        "readiness" => {
            run.seed_interaction(ALICE_SMALL, "alice", None, "small".into()).await;
            run.call(ev("readiness", "get-feedback-readiness"), 200).await;
            // The admin dashboard's static files: no AWS call.
            run.call(ev("readiness", "get-admin"), 200).await;
            run.call(ev("readiness", "get-admin-script"), 200).await;
            run.call(ev("readiness", "get-admin-style"), 200).await;
        }
        "export" => {
            run.seed_interaction(ALICE_OLD, "alice", Some(days_ago(60)), "old".into()).await;
            run.seed_archive_run().await;
            run.seed("log", alice_big(), 201).await;
            let example = ev("curation", "post-examples").field("description", big_text(9).into());
            run.seed("curation", example, 201).await;
            // Archived lines, overflow payloads (the record, the curated example), usage counts.
            run.call(ev("export", "get-feedback-export").query("format=openai&include_archived=true"), 200).await;
            // Its manifest (CONTRACT 4a): listed, and read back by id.
            let list = run.call(ev("export", "get-exports"), 200).await.json();
            let id = list["items"][0]["export_id"].as_str().unwrap_or("none").to_owned();
            run.call(ev("export", "get-export").path(&format!("/api/exports/{id}")), 200).await;
            // Over 5 MiB: spilled to exports/ and answered 303 with a presigned URL.
            // (Answers of 110 KiB: a record over the export's token limit would be left out.)
            for i in 0..50u64 {
                run.seed_conversation(&format!("01936f4e-7a00-7000-8000-0000000010{i:02}"), 110, 100 + i).await;
            }
            run.call(ev("export", "get-feedback-export"), 303).await;
        }
        "delete" => {
            // Alice: a large record with a large feedback, an archived one, enough for a spill.
            run.seed("log", alice_big(), 201).await;
            let fb = ev("submit", "post-feedback-submit")
                .who("service")
                .field("interaction_id", ALICE_BIG.into())
                .field("feedback_type", "edit".into())
                .field("corrected_workflow", big_workflow(10));
            run.seed("submit", fb, 201).await;
            run.seed_interaction(ALICE_OLD, "alice", Some(days_ago(60)), "old".into()).await;
            run.seed_archive_run().await;
            for i in 0..18u64 {
                run.seed_conversation(&format!("01936f4e-7a00-7000-8000-0000000020{i:02}"), 300, 200 + i).await;
            }
            // An export that holds alice's archived record (her large ones are over its token
            // limit): deleting it names the export, whose manifest is read (CONTRACT 4a).
            run.seed("export", ev("export", "get-feedback-export").query("format=openai&include_archived=true"), 200).await;
            // Right of access: hot, overflow and archived, over 5 MiB: spilled, 303.
            run.call(ev("delete", "get-me-data"), 303).await;
            // One hot record: its overflow objects go too.
            run.call(ev("delete", "delete-feedback-data-one").path(&format!("/api/feedback/data/{ALICE_BIG}")), 200).await;
            // One archived record: a tombstone.
            run.call(ev("delete", "delete-feedback-data-one").path(&format!("/api/feedback/data/{ALICE_OLD}")), 200).await;
            // Bob's data as an admin deletes it: a large record and a large unlinked validation.
            run.seed(
                "log",
                ev("log", "post-interactions").field("interaction_id", BOB_BIG.into()).field("user_id", "bob".into()).field("ai_response", big_text(11).into()),
                201,
            )
            .await;
            let unlinked = ev("validate-log", "post-workflow-validate")
                .who("service")
                .field("interaction_id", Value::Null)
                .field("user_id", "bob".into())
                .field("workflow", big_workflow(12));
            run.seed("validate-log", unlinked, 200).await;
            run.call(ev("delete", "delete-feedback-data-user").query("user_id=bob"), 200).await;
            if !run.recorded("dynamodb:BatchGetItem", "") {
                run.problem("delete: no deleted record was in an export (affected_exports not exercised)".into());
            }
            run.call(ev("delete", "delete-me-data"), 200).await;
            let keys = run.overflow_keys().await;
            if !keys.is_empty() {
                run.problem(format!("delete: overflow objects of deleted records left behind: {keys:?}"));
            }
        }
        "curation" => {
            run.call(ev("curation", "post-examples"), 201).await;
            // Ten large examples: the list is over 5 MiB, spilled to exports/ and answered 303.
            let mut big = Vec::new();
            for seed in 0..10 {
                let description = big_text(30 + seed).into();
                big.push(run.call(ev("curation", "post-examples").field("description", description), 201).await);
            }
            run.call(ev("curation", "get-examples"), 303).await;
            for added in big {
                match added.json()["example_id"].as_str() {
                    Some(id) => {
                        run.call(ev("curation", "delete-example").path(&format!("/api/examples/{id}")), 200).await;
                    }
                    None => run.problem("curation: no example_id from a large example".into()),
                }
            }
            run.call(ev("curation", "get-examples"), 200).await;
            run.call(ev("curation", "post-training-metrics").field("notes", big_text(14).into()), 201).await;
            run.call(ev("curation", "get-training-metrics"), 200).await;
            run.call(ev("curation", "post-platforms"), 201).await;
            run.call(ev("curation", "get-platforms"), 200).await;
            let keys = run.overflow_keys().await;
            if keys.len() != 1 {
                run.problem(format!("curation: want the metric's overflow object only, found {keys:?}"));
            }
        }
        "archive-run" | "archiver" => {
            // Old records, one with its payload and a feedback in overflow/.
            run.seed_interaction(ALICE_OLD, "alice", Some(days_ago(60)), big_text(15)).await;
            let fb = ev("submit", "post-feedback-submit")
                .who("service")
                .field("interaction_id", ALICE_OLD.into())
                .field("feedback_type", "edit".into())
                .field("corrected_workflow", big_workflow(16));
            run.seed("submit", fb, 201).await;
            run.seed_interaction(ALICE_SMALL, "alice", Some(days_ago(61)), "small".into()).await;
            // More links than one transaction holds: the rest are batch-deleted after it.
            run.seed_interaction(ALICE_MANY, "alice", Some(days_ago(62)), "many".into()).await;
            for _ in 0..100 {
                let fb = ev("submit", "post-feedback-submit").who("service").field("interaction_id", ALICE_MANY.into());
                run.seed("submit", fb, 201).await;
            }
            archive(run).await;
            // A deleted archived line: the next run compacts its object (and sweeps).
            let del = ev("delete", "delete-feedback-data-one").path(&format!("/api/feedback/data/{ALICE_SMALL}"));
            run.seed("delete", del, 200).await;
            archive(run).await;
            if !run.recorded("s3:DeleteObject", "/archive/") {
                run.problem(format!("{}: no compaction happened (no archive object replaced)", run.binary));
            }
            let keys = run.overflow_keys().await;
            if !keys.is_empty() {
                run.problem(format!("{}: overflow objects of archived records left behind: {keys:?}", run.binary));
            }
            if run.binary == "archive-run" {
                run.call(ev("archive-run", "post-feedback-archive"), 200).await; // the event's own dry run
            } else {
                run.seen.lock().expect("seen").insert("DynamoDB".into());
                *run.rec.0.route.lock().expect("route") = "DynamoDB".into();
                let batch = serde_json::from_value(load("archiver/stream-insert.json")).expect("stream event");
                let ctx = lambda_runtime::Context::default();
                if let Err(e) = fn_archiver::handle(&run.app, lambda_runtime::LambdaEvent::new(batch, ctx)).await {
                    run.problem(format!("archiver: stream batch failed: {e}"));
                }
            }
        }
        other => run.problem(format!(
            "function {other}: no IAM scenario in tests/iam.rs; add one that runs each of its routes, large payloads included"
        )),
    }
}

/// One real archive run as the function: the HTTP route, or the archiver's schedule event.
async fn archive(run: &Run) {
    if run.binary == "archive-run" {
        run.call(ev("archive-run", "post-feedback-archive").body(json!({"dry_run": false})), 200).await;
        return;
    }
    run.seen.lock().expect("seen").insert("Schedule".into());
    *run.rec.0.route.lock().expect("route") = "Schedule".into();
    let schedule = serde_json::from_value(load("archiver/schedule.json")).expect("schedule event");
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = (chrono::Utc::now().timestamp_millis() + 900_000) as u64;
    if let Err(e) = fn_archiver::handle(&run.app, lambda_runtime::LambdaEvent::new(schedule, ctx)).await {
        run.problem(format!("archiver: scheduled run failed: {e}"));
    }
}

// -- the checks -----------------------------------------------------------------------------------

fn unexercised_ok(binary: &str, action: &str, resource: &str) -> bool {
    UNEXERCISED
        .iter()
        .any(|(f, a, r, _)| (*f == "*" || *f == binary) && glob(a, action, true) && glob(r, resource, false))
}

/// What is wrong with `f`'s policy given what its routes did; and a summary of the grants used.
fn judge(f: &Function, calls: &[Call], seen: &BTreeSet<String>) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    for r in f.routes.difference(seen) {
        problems.push(format!("{}: route {r} was not exercised", f.binary));
    }
    for r in seen.difference(&f.routes) {
        problems.push(format!("{}: exercised {r}, which the template does not route to {}", f.binary, f.logical));
    }
    let mut used: Vec<(usize, Need)> = Vec::new();
    let mut summary: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in calls {
        if !c.mapped {
            problems.push(format!(
                "{}: {}: {} is not mapped to IAM actions by tests/iam.rs (needs_of)",
                f.binary, c.route, c.op
            ));
        }
        if c.status == Some(403) {
            problems.push(format!(
                "{}: {}: {} was refused by the emulator (AccessDenied): {:?}",
                f.binary, c.route, c.op, c.needs
            ));
        }
        for n in &c.needs {
            summary.entry(n.action.clone()).or_default().insert(n.resource.clone());
            match allowed_by(&f.statements, n) {
                Some(by) => used.extend(by.into_iter().map(|i| (i, n.clone()))),
                None => problems.push(format!(
                    "{}: {}: {} needs {} on {}, which no statement of {} allows",
                    f.binary, c.route, c.op, n.action, n.resource, f.logical
                )),
            }
        }
    }
    for (i, st) in f.statements.iter().enumerate().filter(|(_, s)| s.allow) {
        let mine: Vec<&Need> = used.iter().filter(|(j, _)| *j == i).map(|(_, n)| n).collect();
        for a in &st.actions {
            let hit = mine.iter().any(|n| glob(a, &n.action, true));
            if !hit && !st.resources.iter().all(|r| unexercised_ok(&f.binary, a, r)) {
                problems.push(format!("{}: {} grants {a} on {:?}, which no call used", f.binary, st.at, st.resources));
            }
        }
        for r in &st.resources {
            let hit = mine.iter().any(|n| glob(r, &n.resource, false));
            if !hit && !st.actions.iter().all(|a| unexercised_ok(&f.binary, a, r)) {
                problems.push(format!("{}: {} grants {:?} on {r}, which no call used", f.binary, st.at, st.actions));
            }
        }
    }
    let text = summary
        .iter()
        .map(|(a, rs)| format!("  {a}: {}", rs.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("\n");
    (problems, text)
}

/// A statement of `f` as the emulator's user gets it: S3 statements as written, DynamoDB ones
/// replaced by `dynamodb:*` on `*` (see the module doc: this test evaluates those itself).
fn emulator_policy(f: &Function) -> Value {
    let mut statements: Vec<Value> = f
        .statements
        .iter()
        .filter(|s| s.actions.iter().all(|a| a.to_lowercase().starts_with("s3:")))
        .map(
            |s| json!({"Effect": if s.allow { "Allow" } else { "Deny" }, "Action": s.actions, "Resource": s.resources}),
        )
        .collect();
    for s in &f.statements {
        let services: BTreeSet<&str> = s.actions.iter().filter_map(|a| a.split(':').next()).collect();
        assert!(
            services.iter().all(|sv| matches!(sv.to_lowercase().as_str(), "s3" | "dynamodb")),
            "{}: actions outside s3 and dynamodb ({:?}) are not checked by this test",
            s.at,
            s.actions
        );
        assert!(services.len() == 1, "{}: one service per statement, please ({:?})", s.at, s.actions);
    }
    statements.push(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}));
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_policy_covers_its_routes_and_no_more() {
    let Some(moto) = Moto::start() else { return };
    let endpoint = moto.endpoint.clone();
    let http = reqwest::Client::new();

    // Setup with the emulator's checks off: one stack per function, its user, an admin.
    let setup =
        Emulator { endpoint: endpoint.clone(), sdk: admin_sdk(&endpoint, &("setup".into(), "setup".into())).await };
    let admin_key = user_with_policy(
        &http,
        &endpoint,
        "admin",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    .await;
    let probe = Stack { table: "t".into(), archive_table: "a".into(), bucket: "b".into() };
    let binaries: Vec<String> = functions(&Names(&probe)).into_iter().map(|f| f.binary).collect();
    let mut planned = Vec::new();
    for binary in binaries {
        let stack = setup.create_stack().await;
        let f = functions(&Names(&stack)).into_iter().find(|f| f.binary == binary).expect("function");
        let key = user_with_policy(&http, &endpoint, &format!("fn-{binary}"), &emulator_policy(&f)).await;
        planned.push((f, stack, key));
    }

    // The emulator checks every request from now on.
    let on = http.post(format!("{endpoint}/moto-api/reset-auth")).body("0").send().await.expect("reset-auth");
    assert!(on.status().is_success(), "moto refused reset-auth");
    // Canary: the checks are really on. No policy grants `iam-canary/`: a function may not
    // write there, the admin may.
    let (_, stack, key) = &planned[0];
    let class = collector::domain::archive::StorageClass::Standard;
    let as_function = app_as(&endpoint, stack, key, &Rec(Arc::default()));
    let refused = as_function.objects.put("iam-canary/probe", b"x".to_vec(), class).await;
    assert!(refused.is_err(), "the emulator let a function write outside its policy: IAM checks are not on");
    let as_admin = app_as(&endpoint, stack, &admin_key, &Rec(Arc::default()));
    as_admin.objects.put("iam-canary/probe", b"x".to_vec(), class).await.expect("the admin may write anywhere");

    let mut runs = Vec::new();
    for (f, stack, key) in planned {
        let rec = Rec(Arc::default());
        let app = app_as(&endpoint, &stack, &key, &rec);
        let admin = HttpState::lambda(app_as(&endpoint, &stack, &admin_key, &Rec(Arc::default())));
        let admin_s3 = Emulator { endpoint: endpoint.clone(), sdk: admin_sdk(&endpoint, &admin_key).await }.s3();
        let run = Run {
            binary: f.binary.clone(),
            stack,
            rec,
            app,
            admin,
            admin_s3,
            seen: Arc::default(),
            problems: Arc::default(),
        };
        let r = run.clone();
        runs.push((f, run, tokio::spawn(async move { scenario(&r).await })));
    }

    let mut problems = Vec::new();
    for (f, run, task) in runs {
        if let Err(e) = task.await {
            problems.push(format!("{}: the scenario panicked: {e}", f.binary));
        }
        problems.extend(run.problems.lock().expect("problems").drain(..));
        let calls = run.rec.0.calls.lock().expect("calls").clone();
        let seen = run.seen.lock().expect("seen").clone();
        let (mut found, summary) = judge(&f, &calls, &seen);
        eprintln!("{} ({} calls):\n{summary}", f.binary, calls.len());
        // Each statement is needed: without it, some call of these routes is not allowed.
        if found.is_empty() {
            for (i, st) in f.statements.iter().enumerate().filter(|(_, s)| s.allow) {
                // A statement of named unexercised grants only is kept for its stated reason.
                let named = st.actions.iter().all(|a| st.resources.iter().all(|r| unexercised_ok(&f.binary, a, r)));
                if named {
                    continue;
                }
                let mut fewer = f.clone();
                fewer.statements.remove(i);
                let (without, _) = judge(&fewer, &calls, &seen);
                if !without.iter().any(|p| p.contains("which no statement")) {
                    problems.push(format!(
                        "{}: nothing needs {} ({:?} on {:?})",
                        f.binary, st.at, st.actions, st.resources
                    ));
                }
            }
        }
        problems.append(&mut found);
    }
    drop(moto);
    assert!(problems.is_empty(), "IAM does not match the code:\n{}", problems.join("\n"));
}

// -- the evaluator itself -------------------------------------------------------------------------

#[test]
fn the_evaluator_matches_wildcards_and_denies() {
    assert!(glob("arn:aws:s3:::b/overflow/*", "arn:aws:s3:::b/overflow/x/y", false));
    assert!(!glob("arn:aws:s3:::b/overflow/*", "arn:aws:s3:::b/archive/x", false));
    assert!(!glob("arn:aws:s3:::b/overflow/*", "arn:aws:s3:::b", false));
    assert!(glob("dynamodb:Get*", "dynamodb:getitem", true));
    assert!(glob("a?c", "abc", false) && !glob("a?c", "ac", false));
    let st = |allow, a: &str, r: &str| Statement {
        at: "t".into(),
        allow,
        actions: vec![a.into()],
        resources: vec![r.into()],
    };
    let get = need("s3:GetObject", "arn:aws:s3:::b/overflow/1".into());
    assert_eq!(allowed_by(&[st(true, "s3:GetObject", "arn:aws:s3:::b/overflow/*")], &get), Some(vec![0]));
    assert_eq!(allowed_by(&[st(true, "s3:*", "*"), st(false, "s3:GetObject", "*")], &get), None);
    assert_eq!(allowed_by(&[st(true, "s3:PutObject", "*")], &get), None);
}

#[test]
fn every_template_function_has_a_policy_this_test_reads() {
    let stack = Stack { table: "hot".into(), archive_table: "cat".into(), bucket: "bkt".into() };
    let fs = functions(&Names(&stack));
    assert!(fs.len() >= 10, "{:?}", fs.iter().map(|f| &f.binary).collect::<Vec<_>>());
    for f in &fs {
        assert!(!f.statements.is_empty(), "{}: no policy", f.logical);
        assert!(!f.routes.is_empty(), "{}: no events", f.logical);
        for s in &f.statements {
            for r in &s.resources {
                assert!(
                    r.starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/")
                        || r.starts_with("arn:aws:s3:::bkt"),
                    "{}: {r}",
                    s.at
                );
            }
        }
    }
}
