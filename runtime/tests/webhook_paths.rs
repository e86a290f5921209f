//! The webhook's two ways of answering a validate review must give the same verdict: the
//! compiled-set path (review bytes parsed once into the matching document, kind index, native
//! matchers) and the general path (serde parse, every policy through the interpreter). For
//! every test folder of the shared corpus, its policies are compiled into a bundle as
//! `palisade compile` does, and every resource of the folder is sent to both, on both validate
//! endpoints. Allowed, message and warnings must be identical.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod corpus;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use palisade_compiler::bundle::{self, Input};
use palisade_runtime::cli::runner;
use palisade_runtime::webhook::admission;
use palisade_runtime::webhook::{Endpoint, Engine};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn review(object: &Value, uid: usize) -> Vec<u8> {
    let (group, version) = match object["apiVersion"].as_str().unwrap_or_default().rsplit_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), object["apiVersion"].as_str().unwrap_or_default().to_owned()),
    };
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{uid}"),
            "kind": {"group": group, "version": version, "kind": object["kind"]},
            "namespace": object.pointer("/metadata/namespace").cloned().unwrap_or(json!("")),
            "name": object.pointer("/metadata/name").cloned().unwrap_or(json!("")),
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": object,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[test]
fn compiled_and_general_paths_agree_on_corpus() {
    let mut dirs = Vec::new();
    corpus::test_folders(&corpus::root(), &mut dirs);
    let (mut compared, mut denied) = (0usize, 0usize);
    let mut failures = Vec::new();
    for dir in &dirs {
        let mut files = Vec::new();
        yaml_files(dir, &mut files);
        if let Some(parent) = corpus::tested_folder(dir) {
            let mut beside: Vec<PathBuf> = std::fs::read_dir(parent).into_iter().flatten().filter_map(Result::ok).map(|e| e.path()).collect();
            beside.sort();
            files.extend(beside.into_iter().filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml")));
        }
        let inputs: Vec<Input> = files
            .iter()
            .filter_map(|p| Some(Input { name: p.display().to_string(), text: std::fs::read_to_string(p).ok()?, explicit: false }))
            .collect();
        let Some(bundle) = bundle::compile(&inputs).bundle else { continue };
        let engine = Engine::new(bundle, "test".into(), Duration::ZERO);
        if engine.compiled(Endpoint::ValidateFail).is_none() && engine.compiled(Endpoint::ValidateIgnore).is_none() {
            continue;
        }
        let mut resources = Vec::new();
        for f in &files {
            for d in runner::load_documents(f).unwrap_or_default() {
                runner::expand_list(d, &mut resources);
            }
        }
        for (i, object) in resources.iter().enumerate() {
            let api = object["apiVersion"].as_str().unwrap_or_default();
            if object["kind"].as_str().is_none() || api.starts_with("kyverno.io") || api.starts_with("cli.kyverno.io") {
                continue;
            }
            let body = review(object, i);
            for endpoint in [Endpoint::ValidateFail, Endpoint::ValidateIgnore] {
                if engine.compiled(endpoint).is_none() {
                    continue;
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                let Some((_, fast)) = admission::review_compiled(&engine, endpoint, &body, deadline) else {
                    failures.push(format!("{}: resource {i}: the compiled path declined a well-formed review", dir.display()));
                    continue;
                };
                let adm = match admission::parse(&body) {
                    Ok(a) => a,
                    Err(e) => {
                        failures.push(format!("{}: resource {i}: {}", dir.display(), e.0));
                        continue;
                    }
                };
                let general = admission::review(&engine, endpoint, &adm, deadline);
                compared += 1;
                denied += usize::from(!general.allowed);
                if (fast.allowed, &fast.message, &fast.warnings) != (general.allowed, &general.message, &general.warnings) {
                    failures.push(format!(
                        "{}: resource {i} on {}:\n  compiled: {} {:?} {:?}\n  general:  {} {:?} {:?}",
                        dir.display(),
                        endpoint.label(),
                        fast.allowed,
                        fast.message,
                        fast.warnings,
                        general.allowed,
                        general.message,
                        general.warnings
                    ));
                }
            }
        }
    }
    println!("compared {compared} reviews ({denied} denied)");
    assert!(compared > 500, "only {compared} reviews compared");
    assert!(denied > 50, "only {denied} denials among the reviews: the comparison would not see message differences");
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn a_review_whose_object_lacks_the_namespace_takes_the_general_path() {
    let policy = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  validationFailureAction: Enforce
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
"#;
    let compiled = bundle::compile(&[Input { name: "p.yaml".into(), text: policy.into(), explicit: true }]);
    let engine = Engine::new(compiled.bundle.expect("the policy compiles"), "test".into(), Duration::ZERO);
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": []}});
    let mut body: Value = serde_json::from_slice(&review(&pod, 1)).unwrap_or_default();
    body["request"]["namespace"] = json!("team-a");
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    assert!(admission::review_compiled(&engine, Endpoint::ValidateFail, &bytes, deadline).is_none());
    let adm = admission::parse(&bytes).expect("a valid review");
    let general = admission::review(&engine, Endpoint::ValidateFail, &adm, deadline);
    assert!(!general.allowed);
    assert!(general.message.map(|m| m.text().into_owned()).unwrap_or_default().contains("resource Pod/team-a/web was blocked"));
    // With the namespace in the object, the compiled path answers, with the same words.
    pod["metadata"]["namespace"] = json!("team-a");
    let (_, fast) = admission::review_compiled(&engine, Endpoint::ValidateFail, &review(&pod, 2), deadline).expect("answered");
    assert!(!fast.allowed);
    assert!(fast.message.map(|m| m.text().into_owned()).unwrap_or_default().contains("resource Pod/team-a/web was blocked"));
}
