//! Validating CEL policies end to end on small requests.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::json;

use super::*;
use crate::engine::UserInfo;

fn run(policy: Value, object: Value, operation: &str) -> Vec<(String, Status, String)> {
    let p = CelPolicyIr::lower(&policy).unwrap();
    let user = UserInfo::default();
    let req = Request { operation, object: &object, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let b = bindings(&req, None);
    evaluate_policy(&p, &req, &b, &CelInputs::default(), None).into_iter().map(|r| (r.rule, r.status, r.message)).collect()
}

fn vpol() -> Value {
    json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "no-latest"},
        "spec": {"validationActions": ["Deny"],
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
            "matchConditions": [{"name": "not-system", "expression": "object.metadata.?namespace.orValue('') != 'kube-system'"}],
            "variables": [{"name": "images", "expression": "object.spec.containers.map(c, c.image)"}],
            "validations": [{"expression": "variables.images.all(i, !i.endsWith(':latest'))", "messageExpression": "'bad images: ' + variables.images.join(', ')"}]}})
}

fn pod(image: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}, "spec": {"containers": [{"name": "c", "image": image}]}})
}

#[test]
fn validating_policy_results() {
    assert_eq!(run(vpol(), pod("nginx:1.2", "default"), "CREATE"), vec![(String::new(), Status::Pass, String::new())]);
    assert_eq!(
        run(vpol(), pod("nginx:latest", "default"), "CREATE"),
        vec![(String::new(), Status::Fail, "Policy no-latest failed: bad images: nginx:latest".into())]
    );
    // Unmet match conditions skip; operations outside the resource rules give no result.
    assert_eq!(run(vpol(), pod("nginx:latest", "kube-system"), "CREATE")[0].1, Status::Skip);
    assert!(run(vpol(), pod("nginx:latest", "default"), "DELETE").is_empty());
    // A Deployment is checked by the autogen variant, on its Pod template.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": {"metadata": {"namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x:latest"}]}}}});
    let got = run(vpol(), deploy, "CREATE");
    assert_eq!((got[0].0.as_str(), got[0].1), ("autogen-defaults", Status::Fail));
}

#[test]
fn errors_and_ignore() {
    let mut p = vpol();
    p["spec"]["validations"][0]["expression"] = json!("object.spec.nosuch == 1");
    // The default failure policy (Fail) denies on an error, which Kyverno reports as fail.
    assert_eq!(run(p.clone(), pod("a:1", "default"), "CREATE")[0].1, Status::Fail);
    p["spec"]["failurePolicy"] = json!("Ignore");
    assert_eq!(run(p, pod("a:1", "default"), "CREATE")[0].1, Status::Skip);
}

#[test]
fn mutating_policy_applies_configurations_and_patches_in_order() {
    let doc = json!({"apiVersion": "policies.kyverno.io/v1", "kind": "MutatingPolicy", "metadata": {"name": "m"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
            "variables": [{"name": "team", "expression": "'payments'"}],
            "matchConditions": [{"name": "unlabelled", "expression": "!has(object.metadata.labels) || !('team' in object.metadata.labels)"}],
            "mutations": [
                {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": "Object{metadata: Object.metadata{labels: {'team': variables.team}}}"}},
                {"patchType": "JSONPatch", "jsonPatch": {"expression": "[JSONPatch{op: 'add', path: '/metadata/labels/' + jsonpatch.escapeKey('a/b'), value: object.metadata.labels.team}]"}}
            ]}});
    let p = MutatingPolicyIr::lower(&doc).unwrap();
    let user = UserInfo::default();
    let object = pod("nginx:1", "default");
    let req = Request { operation: "CREATE", object: &object, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let out = mutate_policy(&p, &req, None).unwrap();
    assert_eq!(out.result.status, Status::Pass);
    assert_eq!(out.patched["metadata"]["labels"], json!({"team": "payments", "a/b": "payments"}));
    // The mutated pod no longer meets the match condition: a second pass skips.
    let again = Request { object: &out.patched, ..req.clone() };
    assert_eq!(mutate_policy(&p, &again, None).unwrap().result.status, Status::Skip);
}

#[test]
fn generating_policy_collects_what_generator_apply_produces() {
    let doc = json!({"apiVersion": "policies.kyverno.io/v1", "kind": "GeneratingPolicy", "metadata": {"name": "g"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["namespaces"]}]},
            "variables": [{"name": "ns", "expression": "object.metadata.name"}],
            "generate": [{"expression": "generator.Apply(variables.ns, [{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'cm'}}])"}]}});
    let p = GeneratingPolicyIr::lower(&doc).unwrap();
    let user = UserInfo::default();
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    let req = Request { operation: "CREATE", object: &object, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let out = generate_policy(&p, &req, None).unwrap();
    assert_eq!(out.result.status, Status::Pass);
    assert_eq!(out.resources, vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "team-a"}})]);
}
