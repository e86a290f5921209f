//! CEL policy fixtures (`tests/data/cel/*/kyverno-test.yaml`), run through the same runner as
//! `palisade test`: every expected result must hold, and the results Kyverno's CLI leaves
//! unchecked are exactly the listed ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use palisade_runtime::cli::runner;

fn data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cel"))
}

/// `(fixture, policy, resource, actual)` of every outcome, with `unchecked` marked.
fn outcomes(fixture: &str) -> Vec<String> {
    let report = runner::run_file(&data().join(fixture).join("kyverno-test.yaml"));
    assert!(report.error.is_none(), "{fixture}: {:?}", report.error);
    report
        .outcomes
        .iter()
        .map(|o| {
            assert!(o.ok, "{fixture}: {} {}: expected {}, got {}: {}", o.policy, o.resource, o.expected, o.actual, o.reason);
            format!("{} {} {}{}", o.policy, o.resource, o.actual, if o.unchecked { " (unchecked)" } else { "" })
        })
        .collect()
}

#[test]
fn every_fixture_passes() {
    let files = runner::discover(&[data()]);
    assert_eq!(files.len(), 3, "fixtures: {files:?}");
    for r in runner::run_all(&files) {
        assert!(r.error.is_none(), "{}: {:?}", r.file.display(), r.error);
        assert!(!r.outcomes.is_empty(), "{}: no results", r.file.display());
        for o in &r.outcomes {
            assert!(o.ok, "{}: {}/{} {}: expected {}, got {}: {}", r.file.display(), o.policy, o.rule, o.resource, o.expected, o.actual, o.reason);
        }
    }
}

/// Kyverno's CLI finds the patched resource in `patchedResources` by apiVersion, kind,
/// namespace and name; a file without it drops the result row. The corpus relies on this
/// (psa-mpol/add-psa-labels and other-mpol/prepend-image-registry expect `fail` or `pass` for
/// resources their patched files do not hold).
#[test]
fn a_patched_file_without_the_resource_leaves_the_result_unchecked() {
    assert_eq!(
        outcomes("mutating-unchecked"),
        [
            "add-team-label first pass",
            "add-team-label second pass (unchecked)",
            "add-owner-annotation second pass (unchecked)",
        ]
    );
}

#[test]
fn deleting_policies_report_what_would_be_deleted() {
    assert_eq!(
        outcomes("deleting"),
        [
            "clean-bare-pods bare pass",
            // Owned, kept by a variable, left out by the namespace selector, exempted.
            "clean-bare-pods owned fail",
            "clean-bare-pods labelled-keep fail",
            "clean-bare-pods system fail",
            "clean-bare-pods debug fail",
            "clean-empty-replicasets empty pass",
            "clean-empty-replicasets busy fail",
            // Outside the namespaced policy's namespace.
            "clean-empty-replicasets elsewhere fail",
            "clean-empty-replicasets no-replicas error",
        ]
    );
}

#[test]
fn a_deleting_policy_with_a_bad_schedule_does_not_load() {
    let doc = serde_json::json!({"apiVersion": "policies.kyverno.io/v1", "kind": "DeletingPolicy", "metadata": {"name": "p"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]},
                 "conditions": [{"name": "c", "expression": "true"}], "schedule": "*/5 * * *"}});
    let mut set = runner::PolicySet::default();
    assert_eq!(set.add_document(&doc).unwrap_err(), "policy p: spec.schedule: `*/5 * * *` is not a cron schedule: it has 4 fields, not 5");
    let doc = serde_json::json!({"apiVersion": "policies.kyverno.io/v1", "kind": "DeletingPolicy", "metadata": {"name": "p"},
        "spec": {"conditions": [{"name": "c", "expression": "true"}], "schedule": "@daily"}});
    assert_eq!(
        set.add_document(&doc).unwrap_err(),
        "policy p: spec.matchConstraints: a matchConstraints with at least one resource rule is required"
    );
}

/// The messages of the image validating fixture: the failing images are named, and offline
/// signature checks say why they cannot run.
#[test]
fn image_validating_policies_explain_their_verdicts() {
    use palisade_compiler::ir::cel::ImageValidatingPolicyIr;
    use palisade_runtime::cel::{CelInputs, images};
    use palisade_runtime::engine::{Request, UserInfo};

    let dir = data().join("image-validating");
    let policies: Vec<ImageValidatingPolicyIr> =
        runner::load_documents(&dir.join("policy.yaml")).unwrap().iter().map(|d| ImageValidatingPolicyIr::lower(d).unwrap()).collect();
    let resources = runner::load_documents(&dir.join("resources.yaml")).unwrap();
    let user = UserInfo::default();
    let inputs = CelInputs::default();
    let verdict = |policy: &str, resource: &str| {
        let p = policies.iter().find(|p| p.name == policy).unwrap();
        let r = resources.iter().find(|r| r["metadata"]["name"] == resource).unwrap();
        let req = Request { operation: "CREATE", object: r, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
        images::evaluate(p, &req, &inputs, None, None).map(|r| format!("{}: {}", r.status.as_str(), r.message))
    };
    assert_eq!(
        verdict("pinned-images", "tagged").unwrap(),
        "fail: Policy pinned-images failed: unpinned images: ghcr.io/acme/app:1.0, registry.local/tools/init:v2"
    );
    assert_eq!(verdict("pinned-images", "web").unwrap(), "fail: Policy pinned-images failed: unpinned images: ghcr.io/acme/web:2.1");
    assert_eq!(verdict("pinned-images", "elsewhere").unwrap(), "skip: no images matched matchImageReferences");
    // The match condition leaves Pods outside namespace `signed` alone.
    assert_eq!(verdict("signed-images", "tagged"), None);
    let signed = verdict("signed-images", "needs-signature").unwrap();
    assert!(signed.starts_with("error: Policy signed-images error: expression"), "{signed}");
    assert!(signed.contains("verifying ghcr.io/acme/app:1.0 needs registry access, which this evaluation does not have"), "{signed}");
    let notary = verdict("notary-images", "needs-signature").unwrap();
    assert!(notary.contains("attestor notary: notary signatures are not supported by Palisade; use a cosign attestor"), "{notary}");
}
