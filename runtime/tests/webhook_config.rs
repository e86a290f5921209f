//! `palisade webhook-config` for the CEL kinds: the configurations printed for corpus policies
//! are kept as snapshots (`tests/data/webhook-config/*.yaml`, refreshed with `UPDATE_EXPECT=1`),
//! checked against the Kubernetes schema of webhook configurations as far as it can be checked
//! offline (`tests/schemas/admissionregistration.k8s.io-v1-webhooks.json` plus the API
//! server's rules a JSON schema cannot say: unique names, match conditions that compile), and
//! every webhook's path is checked to reach, on `palisade serve`, exactly the policies whose
//! rules the webhook carries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use palisade_compiler::bundle::{self, Bundle, Input};
use palisade_runtime::webhook::config::{Target, configurations};
use palisade_runtime::webhook::{Endpoint, Engine};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies").join(rel)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/webhook-config").join(name)
}

fn compile(files: &[PathBuf]) -> Bundle {
    let inputs: Vec<Input> = files
        .iter()
        .map(|f| Input { name: f.file_name().unwrap().to_string_lossy().into_owned(), text: std::fs::read_to_string(f).unwrap(), explicit: true })
        .collect();
    let compiled = bundle::compile(&inputs);
    compiled.bundle.unwrap_or_else(|| panic!("{:?}", compiled.diagnostics))
}

fn target() -> Target {
    Target { service: "palisade".into(), namespace: "palisade".into(), port: 443, ca_pem: None }
}

fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/admissionregistration.k8s.io-v1-webhooks.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options().build(&schema).unwrap()
}

/// The configurations of `files`, checked, as the YAML `palisade webhook-config` prints.
fn checked_yaml(files: &[PathBuf]) -> String {
    let bundle = compile(files);
    let list = configurations(&bundle, &target());
    let text = serde_yaml_ng::to_string(&list).unwrap();
    // What is printed reads back as the same document.
    let back: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(back, list);
    check_schema(&list);
    check_api_server_rules(&list);
    check_routes(&bundle, &list);
    text
}

fn check_schema(list: &Value) {
    let v = validator();
    let errors: Vec<String> = v.iter_errors(list).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Rules of the API server's validation that the schema cannot express.
fn check_api_server_rules(list: &Value) {
    for config in list["items"].as_array().unwrap() {
        let mut names = BTreeSet::new();
        for hook in config["webhooks"].as_array().unwrap() {
            assert!(names.insert(hook["name"].as_str().unwrap()), "duplicate webhook name {}", hook["name"]);
            assert!(!hook["rules"].as_array().unwrap().is_empty(), "{} has no rules", hook["name"]);
            let mut conditions = BTreeSet::new();
            for c in hook["matchConditions"].as_array().into_iter().flatten() {
                assert!(conditions.insert(c["name"].as_str().unwrap()), "duplicate match condition {}", c["name"]);
                let expression = c["expression"].as_str().unwrap();
                palisade_stdlib::cel::compile(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
                for word in ["variables", "namespaceObject", "params"] {
                    assert!(!expression.contains(&format!("{word}.")), "{expression}: the API server does not bind {word}");
                }
            }
        }
    }
}

/// Every CEL webhook's path is served, and names the policies whose rules the webhook holds,
/// all of which the endpoint behind the path runs.
fn check_routes(bundle: &Bundle, list: &Value) {
    let engine = Engine::new(bundle.clone(), "test".into(), std::time::Duration::ZERO);
    for config in list["items"].as_array().unwrap() {
        for hook in config["webhooks"].as_array().unwrap() {
            let path = hook["clientConfig"]["service"]["path"].as_str().unwrap();
            let endpoint = Endpoint::from_path(path).unwrap_or_else(|| panic!("{path} is not served"));
            assert_eq!(endpoint.failure_policy().as_str(), hook["failurePolicy"].as_str().unwrap(), "{path}");
            if !endpoint.is_cel() {
                continue;
            }
            let named = Endpoint::policies_in_path(path).unwrap_or_else(|| panic!("{path} names no policies"));
            let mut served: Vec<&str> = engine.cel_selected(endpoint, Some(&named)).map(|(meta, _)| meta.name.as_str()).collect();
            served.sort_unstable();
            // Namespaced policies of one name in several namespaces all run; each applies in its own.
            served.dedup();
            assert_eq!(served, named.iter().map(String::as_str).collect::<Vec<_>>(), "{path}");
        }
    }
}

#[test]
fn validating_policies() {
    let text = checked_yaml(&[
        corpus("best-practices-vpol/disallow-latest-tag/disallow-latest-tag.yaml"),
        corpus("other-vpol/limit-hostpath-vols/limit-hostpath-vols.yaml"),
        corpus("other-vpol/restrict-jobs/restrict-jobs.yaml"),
        corpus("other-vpol/block-cluster-admin-from-ns/block-cluster-admin-from-ns.yaml"),
    ]);
    expect_test::expect_file![data("validating.yaml")].assert_eq(&text);
}

#[test]
fn image_and_mutating_policies() {
    let text = checked_yaml(&[
        corpus("other/verify-image-ivpol/verify-image-ivpol.yaml"),
        corpus("best-practices-mpol/add-safe-to-evict/add-safe-to-evict.yaml"),
        corpus("other-mpol/add-pod-priorityclassname/add-pod-priorityclassname.yaml"),
    ]);
    expect_test::expect_file![data("images-and-mutating.yaml")].assert_eq(&text);
}

#[test]
fn edge_cases() {
    let text = checked_yaml(&[data("edge-cases.yaml")]);
    expect_test::expect_file![data("edge-cases.expected.yaml")].assert_eq(&text);
}

#[test]
fn every_cel_policy_of_the_corpus_gets_a_valid_configuration() {
    // All CEL policies of the corpus that compile, in one bundle: one configuration, valid.
    let mut files = Vec::new();
    for dir in ["best-practices-vpol", "other-vpol", "pod-security-vpol", "other-mpol", "best-practices-mpol", "psa-mpol", "other"] {
        collect(&corpus(dir), &mut files);
    }
    let inputs: Vec<Input> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let cel = ["kind: ValidatingPolicy", "kind: MutatingPolicy", "kind: ImageValidatingPolicy", "kind: NamespacedValidatingPolicy"];
            cel.iter().any(|k| text.contains(k)).then(|| Input { name: f.display().to_string(), text, explicit: false })
        })
        .collect();
    // Policies that do not compile on their own are left out (the conformance runner owns them).
    let compiled: Vec<Input> = inputs.into_iter().filter(|i| bundle::compile(std::slice::from_ref(i)).bundle.is_some()).collect();
    assert!(compiled.len() > 50, "{}", compiled.len());
    let bundle = bundle::compile(&compiled).bundle.unwrap();
    let list = configurations(&bundle, &target());
    check_schema(&list);
    check_api_server_rules(&list);
    check_routes(&bundle, &list);
    let hooks: usize = list["items"].as_array().unwrap().iter().map(|c| c["webhooks"].as_array().unwrap().len()).sum();
    assert!(hooks > 10, "{hooks}");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() && !name.starts_with('.') {
            collect(&p, out);
        } else if name.ends_with(".yaml") && !name.contains("kyverno-test") && !name.starts_with("resource") {
            out.push(p);
        }
    }
}

#[test]
fn the_schema_refuses_what_the_api_server_refuses() {
    let bundle = compile(&[data("edge-cases.yaml")]);
    let list = configurations(&bundle, &target());
    let v = validator();
    assert!(v.iter_errors(&list).next().is_none());
    // The webhook of `labelled-secrets`, which has match conditions and an object selector.
    let at = list["items"][0]["webhooks"].as_array().unwrap().iter().position(|h| h["name"] == "vpol.validate.palisade.svc-ignore-finegrained-labelled-secrets").unwrap();
    let broken = |path: &str, value: Value| {
        let mut l = list.clone();
        *l.pointer_mut(&path.replace("webhooks/0", &format!("webhooks/{at}"))).unwrap() = value;
        v.iter_errors(&l).count()
    };
    assert_ne!(broken("/items/0/webhooks/0/matchConditions/0/name", Value::from("has spaces")), 0);
    assert_ne!(broken("/items/0/webhooks/0/timeoutSeconds", Value::from(31)), 0);
    assert_ne!(broken("/items/0/webhooks/0/sideEffects", Value::from("Some")), 0);
    assert_ne!(broken("/items/0/webhooks/0/rules/0/operations", serde_json::json!([])), 0);
    assert_ne!(broken("/items/0/webhooks/0/name", Value::from("two.parts")), 0);
    assert_ne!(broken("/items/0/webhooks/0/objectSelector/matchExpressions/0/operator", Value::from("In")), 0);
}
