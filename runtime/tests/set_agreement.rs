//! The set engine (kind index, selection over the matching document, native matchers, whole
//! policy fallback to the interpreter) against the interpreter alone, on the shared corpus:
//! every policy of a test folder, as one compiled set, against every resource of that folder,
//! sent as an AdmissionReview. Results, messages and paths must be identical.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod corpus;

use serde_json::{Value, json};

use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::cli::runner;
use palisade_runtime::engine::{self, Request, RuleResult, UserInfo};
use palisade_runtime::set::{CompiledSet, Review, Route};

fn is_policy(d: &Value) -> bool {
    d.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("kyverno.io/"))
        && d.get("kind").and_then(Value::as_str).is_some_and(|k| k == "ClusterPolicy" || k == "Policy")
}

#[test]
fn set_engine_agrees_with_interpreter_on_corpus() {
    let mut dirs = Vec::new();
    corpus::test_folders(&corpus::root(), &mut dirs);
    let (mut cases, mut results, mut native_passes, mut tape, mut walked) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut interpreted, mut foreach_failures) = (0usize, 0usize);
    let mut failures = Vec::new();
    let user = UserInfo { username: "kubernetes-admin".into(), groups: vec!["system:masters".into()], ..UserInfo::default() };
    for dir in &dirs {
        let mut docs = Vec::new();
        corpus::documents(dir, &mut docs);
        if let Some(parent) = corpus::tested_folder(dir) {
            for e in std::fs::read_dir(parent).into_iter().flatten().filter_map(Result::ok) {
                if e.path().is_file() {
                    docs.extend(runner::load_documents(&e.path()).unwrap_or_default());
                }
            }
        }
        let policies: Vec<PolicyIr> = docs.iter().filter(|d| is_policy(d)).filter_map(|d| PolicyIr::lower(d).ok()).collect();
        if policies.is_empty() {
            continue;
        }
        let set = match CompiledSet::new(policies.clone()) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: compile: {e}", dir.display()));
                continue;
            }
        };
        for resource in docs.iter().filter(|d| !is_policy(d) && d.get("kind").is_some() && d.is_object()) {
            for operation in ["CREATE", "DELETE"] {
                let (object, old) = if operation == "DELETE" { (Value::Null, resource.clone()) } else { (resource.clone(), Value::Null) };
                let review = json!({
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "1", "operation": operation, "object": object, "oldObject": old,
                                "userInfo": {"username": user.username, "groups": user.groups}}
                });
                let Ok(bytes) = serde_json::to_vec(&review) else { continue };
                // The interpreter sees what a webhook would: the resource parsed from the bytes.
                let Ok(reparsed) = serde_json::from_slice::<Value>(&bytes) else { continue };
                let target = &reparsed["request"][if operation == "DELETE" { "oldObject" } else { "object" }];
                let old_ref = (operation == "DELETE").then_some(target);
                let req = Request { operation, object: target, old_object: old_ref, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
                let expected: Vec<RuleResult> = policies.iter().flat_map(|p| engine::evaluate(p, &req)).collect();
                let parsed = match Review::parse(&bytes, &set) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{}: review: {e}", dir.display()));
                        continue;
                    }
                };
                let mut out = Vec::new();
                set.evaluate(&parsed.request(), &mut out);
                native_passes += out.iter().filter(|r| r.message.text().is_none()).count();
                tape += out.iter().filter(|r| r.route == Route::Tape).count();
                walked += out.iter().filter(|r| r.route == Route::Walk).count();
                interpreted += out.iter().filter(|r| r.route == Route::Interpreter).count();
                // A foreach element whose pattern fails is worded on the tape too.
                foreach_failures += out.iter().filter(|r| r.route == Route::Tape && r.message.text().is_some_and(|m| m.starts_with("validation failure: validation error:"))).count();
                let actual: Vec<RuleResult> = out.iter().map(|r| set.rule_result(r)).collect();
                cases += 1;
                results += expected.len();
                if actual != expected {
                    failures.push(format!("{} ({operation}):\n  set engine:  {actual:?}\n  interpreter: {expected:?}", dir.display()));
                }
            }
        }
    }
    println!("set engine: {cases} reviews, {results} rule results, {native_passes} native passes, {tape} answered on the tape, {walked} patterns walked on the tape, {foreach_failures} foreach pattern failures worded on the tape, {interpreted} answered by the interpreter, {} divergences", failures.len());
    assert!(cases > 500, "expected hundreds of corpus reviews, got {cases}");
    assert!(native_passes > 100, "the native path should answer many rules, got {native_passes}");
    assert!(walked > 300, "failed patterns should be worded on the tape, got {walked}");
    assert!(foreach_failures > 5, "failing foreach patterns should be worded on the tape, got {foreach_failures}");
    assert!(tape > 500, "the tape should answer many preconditions, deny and foreach rules, got {tape}");
    assert!(failures.is_empty(), "{} divergences:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

/// `benches/data/compliant-pod-review.json` is the load test's and the benches' passing case: a
/// Pod that every rule of the pod-security and best-practices sets passes or skips, so its
/// review is allowed with no warnings. This keeps it so when either set changes.
#[test]
fn the_compliant_pod_review_passes_both_sets() {
    let root = corpus::root();
    let (policies, problems) = palisade_runtime::set::load_policies(&[root.join("pod-security"), root.join("best-practices")]);
    assert!(policies.len() > 30, "both sets load: {} policies, problems {problems:?}", policies.len());
    let set = CompiledSet::new(policies).expect("the sets compile");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/data/compliant-pod-review.json");
    let bytes = std::fs::read(&path).expect("the review is in benches/data");
    let mut results = Vec::new();
    let response: Value = serde_json::from_slice(&palisade_runtime::set::admit(&set, &bytes, &mut results)).expect("a JSON response");
    let failing: Vec<RuleResult> = results.iter().filter(|r| !matches!(r.status, engine::Status::Pass | engine::Status::Skip)).map(|r| set.rule_result(r)).collect();
    assert!(failing.is_empty(), "rules that do not pass: {failing:?}");
    assert!(results.iter().filter(|r| r.status == engine::Status::Pass).count() > 30, "most rules apply to a Pod: {results:?}");
    assert_eq!(response["response"]["allowed"], json!(true), "{response}");
    assert!(response["response"].get("warnings").is_none(), "{response}");
}
