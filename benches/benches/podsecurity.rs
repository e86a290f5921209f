//! The `validate.podSecurity` rules of the corpus' `pod-security/subrule` policies (baseline,
//! restricted, and restricted with Capabilities or Seccomp exclusions) on the Deployment of
//! `benches/data/deployment-review.json`: the rule on the whole resource (`validate_rule`, what
//! the interpreter calls), on the pod parts a caller already holds (`validate_pod`, as `Value`s
//! and as nodes of the parsed request tape, which is what the set engine passes), and the bare
//! checks of each level without exclusions (`evaluate_pod`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_compiler::ir::podsecurity::{self as ir, Level, PodSecurity, Version};
use palisade_runtime::doc::{Doc, KeyTable};
use palisade_runtime::podsecurity::node::Node;
use palisade_runtime::podsecurity::{evaluate_pod, pod_of, pod_paths, validate_pod, validate_rule};
use serde_json::Value;

/// The allocator the `palisade` binary ships with, so the figures are what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every `podSecurity` rule of the subrule policies, with the policy's name.
fn rules(root: &Path) -> Vec<(String, PodSecurity)> {
    let mut out = Vec::new();
    for dir in ["podsecurity-subrule-baseline", "restricted/restricted-latest", "restricted/restricted-exclude-capabilities", "restricted/restricted-exclude-seccomp"] {
        let dir = root.join(dir);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap();
        let policy: Value = serde_yaml_ng::from_str(&text).unwrap();
        for rule in policy.pointer("/spec/rules").and_then(Value::as_array).unwrap() {
            if let Some(ps) = rule.pointer("/validate/podSecurity") {
                out.push((name.clone(), ir::lower(ps).unwrap()));
            }
        }
    }
    assert_eq!(out.len(), 4, "the four subrule policies hold one podSecurity rule each");
    out
}

fn bench(c: &mut Criterion) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(manifest.join("data/deployment-review.json")).unwrap();
    let review: Value = serde_json::from_slice(&bytes).unwrap();
    let deployment = review.pointer("/request/object").unwrap();
    let (meta, spec) = pod_of(deployment).unwrap();
    let (meta, spec) = (Node::Json(meta), Node::Json(spec));
    let doc = Doc::parse(&bytes, &KeyTable::default()).unwrap();
    let object = doc.path(doc.root(), &["request", "object"]).unwrap();
    let (meta_path, spec_path) = pod_paths("Deployment").unwrap();
    let tape_meta = Node::Tape(&doc, doc.path(object, meta_path).unwrap());
    let tape_spec = Node::Tape(&doc, doc.path(object, spec_path).unwrap());
    let mut group = c.benchmark_group("podsecurity");
    for (name, ps) in rules(&manifest.join("../../shared/corpus/kyverno-policies/pod-security/subrule")) {
        group.bench_function(format!("validate_rule/{name}"), |b| b.iter(|| validate_rule("check", black_box(&ps), black_box(deployment))));
        group.bench_function(format!("validate_pod/{name}"), |b| b.iter(|| validate_pod("check", black_box(&ps), "Deployment", black_box(meta), black_box(spec))));
        group.bench_function(format!("validate_pod_tape/{name}"), |b| {
            b.iter(|| validate_pod("check", black_box(&ps), "Deployment", black_box(tape_meta), black_box(tape_spec)))
        });
    }
    for (name, level) in [("baseline", Level::Baseline), ("restricted", Level::Restricted)] {
        group.bench_function(format!("evaluate_pod/{name}"), |b| b.iter(|| evaluate_pod(level, Version::Latest, black_box(meta), black_box(spec))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
