//! Data-driven tests of `validate.podSecurity`: `tests/data/podsecurity_cases.yaml`.
//!
//! Each case is a `podSecurity` block and a resource; the case is lowered as a one-rule
//! ClusterPolicy matching the resource's kind and evaluated by the engine, and the result is
//! compared with `expect` (`pass`, `fail`, `skip` or `error`) and, when given, with the exact
//! `message`. Cases with `lower_error` expect lowering to fail with a message containing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::engine::{Request, UserInfo, evaluate};
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    #[serde(rename = "podSecurity")]
    pod_security: Value,
    #[serde(default)]
    resource: Value,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    lower_error: Option<String>,
}

fn policy(case: &Case) -> Value {
    let kind = case.resource.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "pss"},
        "spec": {
            "background": true,
            "rules": [{
                "name": "check",
                "match": {"any": [{"resources": {"kinds": [kind]}}]},
                "validate": {"podSecurity": case.pod_security},
            }],
        },
    })
}

#[test]
fn podsecurity_cases() {
    let text = include_str!("data/podsecurity_cases.yaml");
    let cases: Vec<Case> = serde_yaml_ng::from_str(text).unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let lowered = PolicyIr::lower(&policy(case));
        if let Some(want) = &case.lower_error {
            match lowered {
                Ok(_) => failures.push(format!("{}: expected the lowering error `{want}`, but it lowered", case.name)),
                Err(e) if !e.to_string().contains(want.as_str()) => failures.push(format!("{}: lowering error `{e}` lacks `{want}`", case.name)),
                Err(_) => {}
            }
            continue;
        }
        let ir = match lowered {
            Ok(ir) => ir,
            Err(e) => {
                failures.push(format!("{}: lowering failed: {e}", case.name));
                continue;
            }
        };
        let user = UserInfo::default();
        let operation = case.operation.as_deref().unwrap_or("CREATE");
        let req = Request {
            operation,
            object: &case.resource,
            old_object: Some(&case.resource),
            user: &user,
            namespace_labels: None,
            variables: &[],
            rule_variables: None,
        };
        let results = evaluate(&ir, &req);
        let (status, message) = match results.as_slice() {
            [r] => (r.status.as_str().to_owned(), r.message.clone()),
            [] => ("no result".to_owned(), String::new()),
            more => (format!("{} results", more.len()), String::new()),
        };
        if Some(status.as_str()) != case.expect.as_deref() {
            failures.push(format!("{}: expected {:?}, got {status}: {message}", case.name, case.expect));
        } else if let Some(want) = &case.message && *want != message {
            failures.push(format!("{}: message differs\n  expected: {want}\n  got:      {message}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
