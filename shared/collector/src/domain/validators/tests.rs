//! Tests of the workflow validators: n8n, Zapier and Make rules, issue order, scores, and
//! messages that never echo user values.

use super::*;

/// The report of a workflow within the limits (the tests of the limits call `super::validate`).
fn validate(platform: &Platform, workflow: &Value) -> Report {
    super::validate(platform, workflow).expect("within the report limits")
}

fn platform(slug: &str) -> Platform {
    Platform::parse(slug).expect("platform")
}
use serde_json::json;

fn codes(issues: &[Issue]) -> Vec<(&str, &str)> {
    issues.iter().map(|i| (i.code.as_str(), i.path.as_str())).collect()
}

fn n8n_ok() -> Value {
    json!({
        "name": "demo",
        "nodes": [
            {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}},
            {"name": "HTTP", "type": "n8n-nodes-base.httpRequest", "parameters": {"url": "x"}}
        ],
        "connections": {
            "Start": {"main": [[{"node": "HTTP", "type": "main", "index": 0}]]}
        }
    })
}

fn assert_clean(r: &Report) {
    assert!(r.passed(), "{r:?}");
    assert!(r.warnings.is_empty(), "{r:?}");
    assert_eq!(r.score(), 100);
}

#[test]
fn valid_workflows_score_100() {
    assert_clean(&validate(&platform("n8n"), &n8n_ok()));
    assert_clean(&validate(
        &platform("zapier"),
        &json!({
            "trigger": {"app": "gmail", "event": "new_email"},
            "actions": [{"app": "slack", "action": "send_message", "params": {"channel": "#x"}}]
        }),
    ));
    assert_clean(&validate(
        &platform("make"),
        &json!({
            "name": "bp",
            "flow": [
                {"id": 1, "module": "gateway:CustomWebHook", "mapper": {}},
                {"id": 2, "module": "http:ActionSendData", "mapper": {"url": "x"}}
            ]
        }),
    ));
}

#[test]
fn not_an_object_and_empty() {
    for v in [json!([1, 2]), json!("x"), json!(null), json!(3)] {
        let r = validate(&platform("n8n"), &v);
        assert_eq!(codes(&r.errors), [("not_an_object", "")]);
        assert!(r.warnings.is_empty());
        assert!(!r.passed());
        assert_eq!(r.score(), 80);
    }
    let r = validate(&platform("zapier"), &json!({}));
    assert_eq!(codes(&r.errors), [("empty_workflow", "")]);
    assert!(r.warnings.is_empty());
    // Unknown platforms stop there too.
    let r = validate(&platform("other"), &json!({}));
    assert_eq!(codes(&r.errors), [("empty_workflow", "")]);
    assert!(r.warnings.is_empty());
}

#[test]
fn unknown_platform_warns_only() {
    let r = validate(&platform("airflow"), &json!({"anything": [1]}));
    assert!(r.passed());
    assert_eq!(codes(&r.warnings), [("unknown_platform", "")]);
    assert_eq!(r.score(), 95);
}

#[test]
fn n8n_missing_and_wrong_sections() {
    let r = validate(&platform("n8n"), &json!({"name": "x"}));
    assert_eq!(codes(&r.errors), [("missing_field", "/nodes"), ("missing_field", "/connections")]);
    assert!(r.warnings.is_empty());

    let r = validate(&platform("n8n"), &json!({"nodes": {}, "connections": []}));
    assert_eq!(codes(&r.errors), [("wrong_type", "/nodes"), ("wrong_type", "/connections")]);

    let r = validate(&platform("n8n"), &json!({"nodes": [], "connections": {}}));
    assert_eq!(codes(&r.errors), [("empty_field", "/nodes")]);
    assert!(r.warnings.is_empty());
}

#[test]
fn n8n_node_fields() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                "not a node",
                {"type": "a.trigger", "parameters": {}},
                {"name": 5, "type": ["x"], "parameters": {}},
                {"name": "B", "parameters": {}}
            ],
            "connections": {}
        }),
    );
    assert_eq!(
        codes(&r.errors),
        [
            ("wrong_type", "/nodes/0"),
            ("missing_field", "/nodes/1/name"),
            ("wrong_type", "/nodes/2/name"),
            ("wrong_type", "/nodes/2/type"),
            ("missing_field", "/nodes/3/type"),
        ]
    );
    // Only the named node can be judged disconnected.
    assert_eq!(codes(&r.warnings), [("disconnected_node", "/nodes/3")]);
}

#[test]
fn n8n_duplicate_names_flag_later_ones() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": "A", "type": "x.trigger", "parameters": {}},
                {"name": "A", "type": "x.y", "parameters": {}},
                {"name": "B", "type": "x.y", "parameters": {}},
                {"name": "A", "type": "x.y", "parameters": {}}
            ],
            "connections": {"A": {"main": [[{"node": "B"}]]}}
        }),
    );
    assert_eq!(codes(&r.errors), [("duplicate_node_name", "/nodes/1/name"), ("duplicate_node_name", "/nodes/3/name"),]);
    assert!(r.errors.iter().all(|i| i.message == "node name must be unique"));
    assert!(r.warnings.is_empty());
}

#[test]
fn n8n_unknown_nodes_in_connections_with_escaping() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": "Start", "type": "x.trigger", "parameters": {}},
                {"name": "a/b~c", "type": "x.y", "parameters": {}}
            ],
            "connections": {
                "Start": {"main": [[{"node": "a/b~c"}, {"node": "Ghost"}]]},
                "No/de~": {"main": [[{"node": "Start"}]]}
            }
        }),
    );
    assert_eq!(
        codes(&r.errors),
        [("unknown_node", "/connections/Start/main/0/1/node"), ("unknown_node", "/connections/No~1de~0"),]
    );
    // Messages never echo user values.
    for i in &r.errors {
        assert!(!i.message.contains("Ghost") && !i.message.contains("No/de"));
    }
    assert!(r.warnings.is_empty());
}

#[test]
fn n8n_odd_connection_shapes_are_wrong_type() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": "S", "type": "x.trigger", "parameters": {}},
                {"name": "T", "type": "x.y", "parameters": {}}
            ],
            "connections": {
                "S": {
                    "main": [null, [{"node": "T"}], 7, [3, {"type": "main"}, {"node": 1}]],
                    "ai_tool": {"x": 1}
                },
                "T": "nope"
            }
        }),
    );
    assert_eq!(
        codes(&r.errors),
        [
            ("wrong_type", "/connections/S/main/2"),
            ("wrong_type", "/connections/S/main/3/0"),
            ("missing_field", "/connections/S/main/3/1/node"),
            ("wrong_type", "/connections/S/main/3/2/node"),
            ("wrong_type", "/connections/S/ai_tool"),
            ("wrong_type", "/connections/T"),
        ]
    );
    assert!(r.warnings.is_empty());
}

#[test]
fn n8n_non_main_output_types_count_as_connections() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": "Agent", "type": "x.chatTrigger", "parameters": {}},
                {"name": "Tool", "type": "x.tool", "parameters": {}}
            ],
            "connections": {"Tool": {"ai_tool": [[{"node": "Agent", "type": "ai_tool", "index": 0}]]}}
        }),
    );
    assert_clean(&r);
}

#[test]
fn n8n_warnings() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": "A", "type": "x.set"},
                {"name": "B", "type": "x.set", "parameters": null},
                {"name": "C", "type": "x.set", "parameters": {}}
            ],
            "connections": {"A": {"main": [[{"node": "B"}]]}}
        }),
    );
    assert!(r.passed());
    assert_eq!(
        codes(&r.warnings),
        [
            ("no_trigger", "/nodes"),
            ("missing_parameters", "/nodes/0"),
            ("missing_parameters", "/nodes/1"),
            ("disconnected_node", "/nodes/2"),
        ]
    );
    assert_eq!(r.score(), 80);
}

#[test]
fn n8n_trigger_is_case_insensitive_and_single_node_is_connected_enough() {
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [{"name": "Go", "type": "N8n-nodes-base.ManualTrigger", "parameters": {}}],
            "connections": {}
        }),
    );
    assert_clean(&r);
}

#[test]
fn n8n_missing_connections_leaves_nodes_disconnected() {
    let mut wf = n8n_ok();
    wf.as_object_mut().map(|o| o.remove("connections"));
    let r = validate(&platform("n8n"), &wf);
    assert_eq!(codes(&r.errors), [("missing_field", "/connections")]);
    assert_eq!(codes(&r.warnings), [("disconnected_node", "/nodes/0"), ("disconnected_node", "/nodes/1")]);
}

#[test]
fn issues_follow_document_order() {
    // connections before nodes in the document: its issues come first.
    let r = validate(
        &platform("n8n"),
        &json!({
            "connections": {"Ghost": {}},
            "nodes": [{"type": "x.trigger", "name": 1, "parameters": {}}]
        }),
    );
    assert_eq!(codes(&r.errors), [("unknown_node", "/connections/Ghost"), ("wrong_type", "/nodes/0/name")]);
    // Within an object, present fields in key order, then absent ones.
    let r = validate(&platform("zapier"), &json!({"actions": [{"action": 1}], "trigger": {"event": 2, "app": 3}}));
    assert_eq!(
        codes(&r.errors),
        [
            ("wrong_type", "/actions/0/action"),
            ("missing_field", "/actions/0/app"),
            ("wrong_type", "/trigger/event"),
            ("wrong_type", "/trigger/app"),
        ]
    );
}

#[test]
fn zapier_rules() {
    let r = validate(&platform("zapier"), &json!({"name": "z"}));
    assert_eq!(codes(&r.errors), [("missing_field", "/trigger"), ("missing_field", "/actions")]);
    let r = validate(&platform("zapier"), &json!({"trigger": [], "actions": {}}));
    assert_eq!(codes(&r.errors), [("wrong_type", "/trigger"), ("wrong_type", "/actions")]);
    let r = validate(&platform("zapier"), &json!({"trigger": {"app": "a"}, "actions": []}));
    assert_eq!(codes(&r.errors), [("missing_field", "/trigger/event"), ("empty_field", "/actions")]);
    let r = validate(
        &platform("zapier"),
        &json!({
            "trigger": {"app": "a", "event": "e"},
            "actions": [1, {"app": "s", "action": "x"}, {"app": true, "params": {}}]
        }),
    );
    assert_eq!(
        codes(&r.errors),
        [("wrong_type", "/actions/0"), ("wrong_type", "/actions/2/app"), ("missing_field", "/actions/2/action"),]
    );
    assert_eq!(codes(&r.warnings), [("missing_parameters", "/actions/1")]);
}

#[test]
fn make_rules() {
    let r = validate(&platform("make"), &json!({"name": "m"}));
    assert_eq!(codes(&r.errors), [("missing_field", "/flow")]);
    let r = validate(&platform("make"), &json!({"flow": {}}));
    assert_eq!(codes(&r.errors), [("wrong_type", "/flow")]);
    let r = validate(&platform("make"), &json!({"flow": []}));
    assert_eq!(codes(&r.errors), [("empty_field", "/flow")]);

    let r = validate(
        &platform("make"),
        &json!({"flow": [
            {"id": 1, "module": "a:b", "mapper": {}},
            {"id": "1", "module": "a:b:c", "mapper": {}},
            {"id": 1.5, "module": ":b", "mapper": {}},
            {"id": 1, "module": "a:", "mapper": {}},
            {"id": 2, "module": "ab", "mapper": {}},
            {"id": 3, "module": 7},
            "x",
            {"mapper": {}},
            {"id": -4, "module": "a:b", "mapper": {}},
            {"id": 18446744073709551615u64, "module": "a:b", "mapper": {}},
            {"id": 18446744073709551615u64, "module": "a:b", "mapper": {}}
        ]}),
    );
    assert_eq!(
        codes(&r.errors),
        [
            ("wrong_type", "/flow/1/id"),
            ("invalid_module", "/flow/1/module"),
            ("wrong_type", "/flow/2/id"),
            ("invalid_module", "/flow/2/module"),
            ("duplicate_module_id", "/flow/3/id"),
            ("invalid_module", "/flow/3/module"),
            ("invalid_module", "/flow/4/module"),
            ("wrong_type", "/flow/5/module"),
            ("wrong_type", "/flow/6"),
            ("missing_field", "/flow/7/id"),
            ("missing_field", "/flow/7/module"),
            ("duplicate_module_id", "/flow/10/id"),
        ]
    );
    assert_eq!(codes(&r.warnings), [("missing_parameters", "/flow/5")]);
    assert_eq!(r.score(), 0);
}

#[test]
fn score_floors_at_zero() {
    let nodes: Vec<Value> = (0..50).map(|_| json!(1)).collect();
    let r = validate(&platform("n8n"), &json!({"nodes": nodes, "connections": {}}));
    assert_eq!(r.errors.len(), 50);
    assert_eq!(r.score(), 0);
    assert!(!r.passed());

    let r = Report {
        errors: vec![],
        warnings: vec![Issue { code: IssueCode::NoTrigger, path: String::new(), message: "m".into() }; 3],
    };
    assert!(r.passed());
    assert_eq!(r.score(), 85);
}

#[test]
fn messages_never_echo_user_values() {
    let secret = "SECRET-VALUE";
    let r = validate(
        &platform("n8n"),
        &json!({
            "nodes": [
                {"name": secret, "type": secret},
                {"name": secret, "type": 1},
                {"name": "z", "type": "y"}
            ],
            "connections": {secret: {"main": [[{"node": "nobody-SECRET-VALUE"}]]}, "x": {"m": 1}}
        }),
    );
    assert!(!r.errors.is_empty() && !r.warnings.is_empty());
    for i in r.errors.iter().chain(&r.warnings) {
        assert!(!i.message.contains(secret), "{i:?}");
        assert!(!i.message.is_empty());
    }
}

#[test]
fn report_serializes_plainly() {
    let r = validate(&platform("x"), &json!({"a": 1}));
    let v = serde_json::to_value(&r).expect("serialize");
    assert_eq!(
        v,
        json!({"errors": [], "warnings": [{"code": "unknown_platform", "path": "", "message": r.warnings[0].message}]})
    );
    let back: Report = serde_json::from_value(v).expect("deserialize");
    assert_eq!(back, r);
}

/// A long key above many array items is in every pointer under it: the validator stops at its
/// limits and refuses the report, instead of copying the key once per item (about 60 GB here).
#[test]
fn a_long_key_above_many_slots_is_refused_not_copied_per_slot() {
    let key = "k".repeat(200 * 1024);
    let slots: Vec<Value> = (0..100_000).map(|_| json!([{"node": "a"}])).collect();
    let wf = json!({"nodes": [{"name": "a", "type": "x"}], "connections": {key.clone(): {"main": slots}}});
    assert_eq!(super::validate(&platform("n8n"), &wf), Err(ReportTooLarge));
    // Items that are each an issue: refused once the issues pass 8 MiB.
    let bad: Vec<Value> = (0..100_000).map(|_| json!(0)).collect();
    let wf = json!({"nodes": [{"name": "a", "type": "x"}], "connections": {key: {"main": bad}}});
    assert_eq!(super::validate(&platform("n8n"), &wf), Err(ReportTooLarge));
}

/// A large workflow with an issue per node stays well within the limits.
#[test]
fn a_large_workflow_with_many_issues_is_reported_whole() {
    let nodes: Vec<Value> = (0..20_000).map(|i| json!({"name": format!("n{i}"), "type": "x"})).collect();
    let r = validate(&platform("n8n"), &json!({"nodes": nodes, "connections": {}}));
    // No trigger, then per node: no parameters and not connected.
    assert_eq!(r.warnings.len(), 1 + 2 * 20_000);
    assert!(r.passed());
}
