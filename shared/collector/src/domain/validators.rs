//! Structural validation of automation workflows (n8n, Zapier, Make).
//!
//! Issues carry an RFC 6901 pointer and a fixed message: messages never echo
//! workflow content, so reports are safe to log and to show to other users.
//!
//! Issues are listed in document order: issues about an object come before
//! those about its members, members are visited in the object's own key order
//! (array items by index), and absent required fields are reported after the
//! present ones, where they would be appended.
//!
//! Error codes: `not_an_object`, `empty_workflow`, `missing_field`,
//! `wrong_type`, `empty_field` (a required array that is present but empty),
//! `duplicate_node_name`, `unknown_node`, `duplicate_module_id`,
//! `invalid_module`. Warning codes: `no_trigger`, `missing_parameters`,
//! `disconnected_node`, `unknown_platform`.
//!
//! A report has limits, whatever the workflow: the issues it lists hold at most
//! [`MAX_REPORT_BYTES`], and the pointers built on the way at most [`MAX_BUILT_BYTES`] (a long
//! key in a path is copied into every path under it). Past either, [`validate`] answers
//! [`ReportTooLarge`] instead of a report.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::platforms::Validator;
use super::types::Platform;

/// What an issue is about (CONTRACT section 5). Serialized as its snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    NotAnObject,
    EmptyWorkflow,
    MissingField,
    WrongType,
    EmptyField,
    DuplicateNodeName,
    UnknownNode,
    DuplicateModuleId,
    InvalidModule,
    NoTrigger,
    MissingParameters,
    DisconnectedNode,
    UnknownPlatform,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::NotAnObject => "not_an_object",
            IssueCode::EmptyWorkflow => "empty_workflow",
            IssueCode::MissingField => "missing_field",
            IssueCode::WrongType => "wrong_type",
            IssueCode::EmptyField => "empty_field",
            IssueCode::DuplicateNodeName => "duplicate_node_name",
            IssueCode::UnknownNode => "unknown_node",
            IssueCode::DuplicateModuleId => "duplicate_module_id",
            IssueCode::InvalidModule => "invalid_module",
            IssueCode::NoTrigger => "no_trigger",
            IssueCode::MissingParameters => "missing_parameters",
            IssueCode::DisconnectedNode => "disconnected_node",
            IssueCode::UnknownPlatform => "unknown_platform",
        }
    }
}

/// One problem found in a workflow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Issue {
    /// Stable machine-readable code, e.g. `missing_field`.
    pub code: IssueCode,
    /// RFC 6901 JSON Pointer into the workflow; "" is the root.
    pub path: String,
    /// Human-readable rule description; never contains workflow values.
    pub message: String,
}

/// Outcome of validating one workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl Report {
    /// True exactly when there are no errors (warnings do not fail a workflow).
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    /// 100 minus 20 per error and 5 per warning, floored at 0.
    pub fn score(&self) -> u32 {
        // Saturating math: a hostile workflow can yield huge issue counts.
        let penalty = (self.errors.len() as u64)
            .saturating_mul(20)
            .saturating_add((self.warnings.len() as u64).saturating_mul(5));
        100u64.saturating_sub(penalty) as u32
    }
}

/// Most bytes a report's issues (or a diff's pointers, `domain::diff`) may hold.
pub const MAX_REPORT_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of pointers one validation may build, listed or not.
pub const MAX_BUILT_BYTES: usize = 64 * 1024 * 1024;

/// The report (or diff) would pass [`MAX_REPORT_BYTES`] or [`MAX_BUILT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the report would list more than 8 MiB of issues or paths")]
pub struct ReportTooLarge;

/// A report being built, with what it has spent of its limits. Once over, nothing more is
/// built or listed (each further step costs O(1)) and [`Check::finish`] refuses the report.
#[derive(Default)]
struct Check {
    report: Report,
    listed: usize,
    built: usize,
    over: bool,
}

impl Check {
    fn error(&mut self, code: IssueCode, path: String, message: impl Into<String>) {
        if let Some(issue) = self.admit(code, path, message) {
            self.report.errors.push(issue);
        }
    }

    fn warn(&mut self, code: IssueCode, path: String, message: impl Into<String>) {
        if let Some(issue) = self.admit(code, path, message) {
            self.report.warnings.push(issue);
        }
    }

    fn admit(&mut self, code: IssueCode, path: String, message: impl Into<String>) -> Option<Issue> {
        let message = message.into();
        self.listed = self.listed.saturating_add(path.len() + message.len() + std::mem::size_of::<Issue>());
        self.over |= self.listed > MAX_REPORT_BYTES;
        (!self.over).then_some(Issue { code, path, message })
    }

    fn extend(&mut self, other: Check) {
        self.report.errors.extend(other.report.errors);
        self.report.warnings.extend(other.report.warnings);
        self.listed = self.listed.saturating_add(other.listed);
        self.built = self.built.saturating_add(other.built);
        self.over |= other.over || self.listed > MAX_REPORT_BYTES || self.built > MAX_BUILT_BYTES;
    }

    /// `path` + `/key` (escaped), counted; empty once over the limits.
    fn child(&mut self, path: &str, key: &str) -> String {
        if !self.spend(path.len() + key.len() + 1) {
            return String::new();
        }
        let mut out = String::with_capacity(path.len() + key.len() + 1);
        out.push_str(path);
        super::diff::push_key(&mut out, key);
        out
    }

    /// `path` + `/i`, counted; empty once over the limits.
    fn index(&mut self, path: &str, i: usize) -> String {
        if self.spend(path.len() + 21) { format!("{path}/{i}") } else { String::new() }
    }

    fn spend(&mut self, bytes: usize) -> bool {
        self.built = self.built.saturating_add(bytes);
        self.over |= self.built > MAX_BUILT_BYTES;
        !self.over
    }

    fn finish(self) -> Result<Report, ReportTooLarge> {
        if self.over { Err(ReportTooLarge) } else { Ok(self.report) }
    }
}

/// Validate a workflow with its platform's rules (generic checks only for a platform without).
pub fn validate(platform: &Platform, workflow: &Value) -> Result<Report, ReportTooLarge> {
    let mut report = Check::default();
    let Some(root) = workflow.as_object() else {
        report.error(IssueCode::NotAnObject, String::new(), "workflow must be a JSON object");
        return report.finish();
    };
    if root.is_empty() {
        report.error(IssueCode::EmptyWorkflow, String::new(), "workflow must not be empty");
        return report.finish();
    }
    match Validator::of(platform) {
        Some(Validator::N8n) => validate_n8n(&mut report, root),
        Some(Validator::Zapier) => validate_zapier(&mut report, root),
        Some(Validator::Make) => validate_make(&mut report, root),
        None => report.warn(
            IssueCode::UnknownPlatform,
            String::new(),
            "platform has no structural rules; only basic checks were applied",
        ),
    }
    report.finish()
}

// ---------------------------------------------------------------- n8n

fn validate_n8n(report: &mut Check, root: &Map<String, Value>) {
    let nodes = root.get("nodes").and_then(Value::as_array);
    // Connections need the node names and nodes need the connected names, so
    // both are gathered first; the issues are then emitted in document order.
    let names: HashSet<&str> =
        nodes.into_iter().flatten().filter_map(|n| n.get("name").and_then(Value::as_str)).collect();
    let mut connected = HashSet::new();
    let mut conn_report = Check::default();
    if let Some(conns) = root.get("connections") {
        check_n8n_connections(&mut conn_report, conns, &names, &mut connected);
    }
    let mut conn_report = Some(conn_report);

    walk_fields(report, root, "", "workflow", &["nodes", "connections"], |report, field, value, path| match field {
        "nodes" => check_n8n_nodes(report, value, path, &connected),
        _ => report.extend(conn_report.take().unwrap_or_default()),
    });
}

fn check_n8n_nodes(report: &mut Check, value: &Value, path: String, connected: &HashSet<&str>) {
    let Some(nodes) = non_empty_array(report, value, &path, "workflow field 'nodes'") else {
        return;
    };
    let has_trigger = nodes
        .iter()
        .any(|n| n.get("type").and_then(Value::as_str).is_some_and(|t| t.to_ascii_lowercase().contains("trigger")));
    if !has_trigger {
        report.warn(IssueCode::NoTrigger, path.clone(), "workflow should contain a trigger node");
    }
    let several = nodes.len() > 1;
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let node_path = report.index(&path, i);
        let Some(obj) = node.as_object() else {
            report.error(IssueCode::WrongType, node_path, "node must be an object");
            continue;
        };
        if is_absent(obj, "parameters") {
            report.warn(IssueCode::MissingParameters, node_path.clone(), "node should have parameters");
        }
        if several {
            // A node without a valid name cannot be judged; its name error suffices.
            if let Some(name) = obj.get("name").and_then(Value::as_str)
                && !connected.contains(name)
            {
                report.warn(
                    IssueCode::DisconnectedNode,
                    node_path.clone(),
                    "node should appear in at least one connection",
                );
            }
        }
        walk_fields(report, obj, &node_path, "node", &["name", "type"], |report, field, value, path| {
            let Some(s) = expect_str(report, value, path.clone(), "node", field) else {
                return;
            };
            if field == "name" && !seen.insert(s) {
                report.error(IssueCode::DuplicateNodeName, path, "node name must be unique");
            }
        });
    }
}

/// Walks `{"<source>": {"<output type>": [[{"node": "<target>"}, ...] | null, ...]}}`.
/// Null output slots are accepted: n8n writes them for unconnected outputs
/// (e.g. a switch node with only some branches wired).
fn check_n8n_connections<'a>(
    report: &mut Check,
    value: &'a Value,
    names: &HashSet<&str>,
    connected: &mut HashSet<&'a str>,
) {
    let path = "/connections";
    let Some(sources) = value.as_object() else {
        report.error(IssueCode::WrongType, path.to_owned(), "workflow field 'connections' must be an object");
        return;
    };
    for (source, outputs) in sources {
        let source_path = report.child(path, source);
        connected.insert(source.as_str());
        if !names.contains(source.as_str()) {
            report.error(
                IssueCode::UnknownNode,
                source_path.clone(),
                "connection source must be an existing node name",
            );
        }
        let Some(outputs) = outputs.as_object() else {
            report.error(IssueCode::WrongType, source_path, "connection source entry must be an object");
            continue;
        };
        for (kind, slots) in outputs {
            let kind_path = report.child(&source_path, kind);
            let Some(slots) = slots.as_array() else {
                report.error(IssueCode::WrongType, kind_path, "connection output list must be an array");
                continue;
            };
            for (i, slot) in slots.iter().enumerate() {
                let slot_path = report.index(&kind_path, i);
                let targets = match slot {
                    Value::Null => continue,
                    Value::Array(targets) => targets,
                    _ => {
                        report.error(IssueCode::WrongType, slot_path, "connection output must be an array or null");
                        continue;
                    }
                };
                for (j, target) in targets.iter().enumerate() {
                    let target_path = report.index(&slot_path, j);
                    let Some(target) = target.as_object() else {
                        report.error(IssueCode::WrongType, target_path, "connection target must be an object");
                        continue;
                    };
                    walk_fields(
                        report,
                        target,
                        &target_path,
                        "connection target",
                        &["node"],
                        |report, field, value, path| {
                            let Some(name) = expect_str(report, value, path.clone(), "connection target", field) else {
                                return;
                            };
                            connected.insert(name);
                            if !names.contains(name) {
                                report.error(
                                    IssueCode::UnknownNode,
                                    path,
                                    "connection target must be an existing node name",
                                );
                            }
                        },
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------- zapier

fn validate_zapier(report: &mut Check, root: &Map<String, Value>) {
    walk_fields(report, root, "", "workflow", &["trigger", "actions"], |report, field, value, path| {
        if field == "trigger" {
            let Some(trigger) = value.as_object() else {
                report.error(IssueCode::WrongType, path, "workflow field 'trigger' must be an object");
                return;
            };
            walk_fields(report, trigger, &path, "trigger", &["app", "event"], |report, field, value, path| {
                expect_str(report, value, path, "trigger", field);
            });
            return;
        }
        let Some(actions) = non_empty_array(report, value, &path, "workflow field 'actions'") else {
            return;
        };
        for (i, action) in actions.iter().enumerate() {
            let action_path = report.index(&path, i);
            let Some(obj) = action.as_object() else {
                report.error(IssueCode::WrongType, action_path, "action must be an object");
                continue;
            };
            if is_absent(obj, "params") {
                report.warn(IssueCode::MissingParameters, action_path.clone(), "action should have params");
            }
            walk_fields(report, obj, &action_path, "action", &["app", "action"], |report, field, value, path| {
                expect_str(report, value, path, "action", field);
            });
        }
    });
}

// ---------------------------------------------------------------- make

fn validate_make(report: &mut Check, root: &Map<String, Value>) {
    walk_fields(report, root, "", "workflow", &["flow"], |report, _, value, path| {
        let Some(flow) = non_empty_array(report, value, &path, "workflow field 'flow'") else {
            return;
        };
        // i128 holds every i64 and u64, so ids of either sign compare exactly.
        let mut seen: HashSet<i128> = HashSet::new();
        for (i, module) in flow.iter().enumerate() {
            let module_path = report.index(&path, i);
            let Some(obj) = module.as_object() else {
                report.error(IssueCode::WrongType, module_path, "module must be an object");
                continue;
            };
            if is_absent(obj, "mapper") {
                report.warn(IssueCode::MissingParameters, module_path.clone(), "module should have a mapper");
            }
            walk_fields(report, obj, &module_path, "module", &["id", "module"], |report, field, value, path| {
                if field == "id" {
                    let id = value.as_i64().map(i128::from).or_else(|| value.as_u64().map(i128::from));
                    match id {
                        None => report.error(IssueCode::WrongType, path, "module field 'id' must be an integer"),
                        Some(id) if !seen.insert(id) => {
                            report.error(IssueCode::DuplicateModuleId, path, "module id must be unique")
                        }
                        Some(_) => {}
                    }
                    return;
                }
                let Some(s) = expect_str(report, value, path.clone(), "module", field) else {
                    return;
                };
                if !is_app_action(s) {
                    report.error(
                        IssueCode::InvalidModule,
                        path,
                        "module field 'module' must be 'app:action' with one colon and both parts non-empty",
                    );
                }
            });
        }
    });
}

fn is_app_action(s: &str) -> bool {
    match s.split_once(':') {
        Some((app, action)) => !app.is_empty() && !action.is_empty() && !action.contains(':'),
        None => false,
    }
}

// ---------------------------------------------------------------- helpers

/// Runs `check` on each of `fields` present in `obj` (in the object's key
/// order), then reports the absent ones as `missing_field`.
fn walk_fields<'a>(
    report: &mut Check,
    obj: &'a Map<String, Value>,
    path: &str,
    what: &str,
    fields: &[&str],
    mut check: impl FnMut(&mut Check, &str, &'a Value, String),
) {
    for (key, value) in obj {
        if let Some(field) = fields.iter().find(|f| **f == key.as_str()) {
            let path = report.child(path, key);
            check(report, field, value, path);
        }
    }
    for field in fields {
        if !obj.contains_key(*field) {
            let path = report.child(path, field);
            report.error(IssueCode::MissingField, path, format!("{what} field '{field}' is required"));
        }
    }
}

/// A required array: `wrong_type` if not an array, `empty_field` if empty.
fn non_empty_array<'a>(report: &mut Check, value: &'a Value, path: &str, what: &str) -> Option<&'a Vec<Value>> {
    let Some(items) = value.as_array() else {
        report.error(IssueCode::WrongType, path.to_owned(), format!("{what} must be an array"));
        return None;
    };
    if items.is_empty() {
        report.error(IssueCode::EmptyField, path.to_owned(), format!("{what} must not be empty"));
        return None;
    }
    Some(items)
}

fn expect_str<'a>(report: &mut Check, value: &'a Value, path: String, what: &str, field: &str) -> Option<&'a str> {
    let s = value.as_str();
    if s.is_none() {
        report.error(IssueCode::WrongType, path, format!("{what} field '{field}' must be a string"));
    }
    s
}

/// An explicit null counts as absent: it carries no configuration either.
fn is_absent(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key).is_none_or(Value::is_null)
}

#[cfg(test)]
mod tests;
