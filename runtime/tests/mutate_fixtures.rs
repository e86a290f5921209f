//! Mutation and generation fixtures (`tests/data/mutate/*/kyverno-test.yaml`), run through the
//! same runner as `palisade test`: every expected result must hold, patched and generated
//! resources included. The engine is also called directly to check the messages of a patch
//! that cannot apply, and that the rules after it still run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use serde_json::Value;

use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::cli::runner;
use palisade_runtime::engine::{Request, Status, UserInfo};
use palisade_runtime::mutate;

fn data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mutate"))
}

#[test]
fn every_fixture_passes() {
    let files = runner::discover(&[data()]);
    assert_eq!(files.len(), 4, "fixtures: {files:?}");
    for r in runner::run_all(&files) {
        assert!(r.error.is_none(), "{}: {:?}", r.file.display(), r.error);
        assert!(!r.outcomes.is_empty(), "{}: no results", r.file.display());
        for o in &r.outcomes {
            assert!(o.ok, "{}: {}/{} {}: expected {}, got {}: {}", r.file.display(), o.policy, o.rule, o.resource, o.expected, o.actual, o.reason);
        }
    }
}

#[test]
fn a_patch_that_cannot_apply_is_an_error_and_later_rules_run() {
    let dir = data().join("cascade-and-errors");
    let policy = PolicyIr::lower(&runner::load_documents(&dir.join("policy.yaml")).unwrap()[0]).unwrap();
    let pods = runner::load_documents(&dir.join("resource.yaml")).unwrap();
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: &pods[1], old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let m = mutate::mutate(&policy, &req);
    let summary: Vec<(String, Status, String)> = m.results.iter().map(|r| (r.rule.clone(), r.status, r.message.clone())).collect();
    let expected: Vec<(String, Status, String)> = vec![
        ("broken-patch".into(), Status::Error, "failed to apply JSON patch: replace: path `/spec/nothing/here` does not exist in the resource".into()),
        ("add-team-label".into(), Status::Skip, "no patches applied".into()),
        ("copy-team-to-annotation".into(), Status::Pass, "mutated Pod/untrusted in namespace apps".into()),
        ("pull-always-for-trusted".into(), Status::Skip, "no patches applied".into()),
        ("json-ops".into(), Status::Error, "failed to apply JSON patch: test failed at `/spec/containers/-1/name`: expected \"last\", found \"other\"".into()),
    ];
    assert_eq!(summary, expected);
    assert_eq!(m.patched.pointer("/metadata/annotations/owner"), Some(&Value::String("web".into())));
    // The webhook's patch for the same request: only the annotation was added.
    assert_eq!(
        mutate::admission_patch(&pods[1], &m.patched),
        serde_json::json!([{"op": "add", "path": "/metadata/annotations", "value": {"owner": "web"}}])
    );
}

#[test]
fn a_mismatch_prints_a_diff_of_expected_and_actual() {
    let dir = std::env::temp_dir().join(format!("palisade-mutate-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = data().join("foreach-nested");
    for f in ["policy.yaml", "resource.yaml", "kyverno-test.yaml"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let patched = std::fs::read_to_string(src.join("patched.yaml")).unwrap().replace("value: \"9090\"", "value: \"9091\"");
    std::fs::write(dir.join("patched.yaml"), patched).unwrap();
    let report = runner::run_file(&dir.join("kyverno-test.yaml"));
    std::fs::remove_dir_all(&dir).unwrap();
    let o = report.outcomes.iter().find(|o| o.rule == "port-env").unwrap();
    assert!(!o.ok);
    let diff: Vec<&str> = o.reason.lines().collect();
    assert_eq!(diff[0], "Patched resource didn't match the patched resource in the test result");
    assert!(diff.contains(&"-       value: '9091'") && diff.contains(&"+       value: '9090'"), "{}", o.reason);
}
