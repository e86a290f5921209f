//! Shared helpers for the criterion benchmarks in `benches/` and the load generator.

#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Every YAML file under `dir` (recursively, in path order, hidden folders such as
/// `.kyverno-test` skipped) as a bundle input: the policy sets the benchmarks compile.
pub fn policy_inputs(dir: &Path, out: &mut Vec<palisade_compiler::bundle::Input>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if p.is_dir() {
            policy_inputs(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            out.push(palisade_compiler::bundle::Input { name: p.display().to_string(), text, explicit: false });
        }
    }
}

/// The corpus' own test resources (`resource*.yaml` beside the policies) under `dir`, in path
/// order: the objects the load generator and the webhook benchmark wrap in reviews.
pub fn corpus_resources(dir: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if p.is_dir() {
            corpus_resources(&p, out);
        } else if name.starts_with("resource") && name.ends_with(".yaml") {
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else { continue };
                if v.get("kind").and_then(Value::as_str).is_some() && v.get("metadata").is_some() {
                    out.push(v);
                }
            }
        }
    }
}

/// A CREATE AdmissionReview (compact JSON) for `object`, with uid `load-{i}`; an object without
/// a namespace is put in `default`, as the API server fills it in for namespaced kinds.
pub fn admission_review(i: usize, object: &Value) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    let mut object = object.clone();
    if object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = json!("default");
    }
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("load-{i}"), "kind": {"group": group, "version": version, "kind": kind},
            "namespace": object["metadata"]["namespace"], "name": object["metadata"]["name"],
            "operation": "CREATE", "userInfo": {"username": "load", "groups": ["system:authenticated"]},
            "object": object, "dryRun": false,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
