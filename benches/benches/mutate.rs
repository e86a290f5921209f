//! Cost of mutation on a typical Deployment: a strategic-merge patch with anchors (sidecar
//! injection, conditional on an annotation), a `patchesJson6902` list, a whole mutate policy
//! through the engine, and the webhook's JSON Patch from the original to the mutated object.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::engine::{Request, UserInfo};
use palisade_runtime::mutate::{admission_patch, apply_strategic, jsonpatch, mutate};
use serde_json::{Value, json};
use std::hint::black_box;

fn deployment() -> Value {
    let container = |name: &str, image: &str| {
        json!({"name": name, "image": image, "ports": [{"containerPort": 8080}],
               "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
               "volumeMounts": [{"name": "data", "mountPath": "/data"}]})
    };
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"vault.hashicorp.com/agent-inject": "true"}},
            "spec": {"containers": [container("web", "registry.example.com/web:1.2"), container("log", "fluent-bit:2.1")],
                     "volumes": [{"name": "data", "emptyDir": {}}]}}}})
}

fn sidecar_patch() -> Value {
    json!({"spec": {"template": {
        "metadata": {"annotations": {"(vault.hashicorp.com/agent-inject)": "true", "+(injected)": "yes"}},
        "spec": {"containers": [{"name": "vault-agent", "image": "vault:1.5.4", "volumeMounts": [{"name": "vault", "mountPath": "/vault"}]},
                                {"(name)": "web", "imagePullPolicy": "Always"}],
                 "volumes": [{"name": "vault", "emptyDir": {"medium": "Memory"}}]}}}})
}

const JSON6902: &str = "- op: add\n  path: /spec/template/spec/containers/0/env/-\n  value: {name: C, value: '3'}\n- op: replace\n  path: /spec/replicas\n  value: 5\n- op: remove\n  path: /metadata/labels/app\n";

fn policy() -> PolicyIr {
    PolicyIr::lower(&json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "inject"},
        "spec": {"rules": [
            {"name": "sidecar", "match": {"any": [{"resources": {"kinds": ["Deployment"]}}]},
             "mutate": {"patchStrategicMerge": sidecar_patch()}},
            {"name": "pull-policy", "match": {"any": [{"resources": {"kinds": ["Deployment"]}}]},
             "mutate": {"foreach": [{"list": "request.object.spec.template.spec.containers",
                 "patchStrategicMerge": {"spec": {"template": {"spec": {"containers": [{"name": "{{ element.name }}", "+(imagePullPolicy)": "IfNotPresent"}]}}}}}]}}]}}))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let d = deployment();
    c.bench_function("mutate/strategic_merge_with_anchors", |b| b.iter(|| apply_strategic(black_box(&d), sidecar_patch()).unwrap()));
    let ops = jsonpatch::decode(JSON6902).unwrap();
    c.bench_function("mutate/json6902_apply", |b| b.iter(|| jsonpatch::apply(black_box(&d), &ops).unwrap()));
    let p = policy();
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: &d, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    c.bench_function("mutate/policy_two_rules", |b| b.iter(|| mutate(black_box(&p), &req)));
    let mutated = mutate(&p, &req).patched;
    c.bench_function("mutate/admission_patch", |b| b.iter(|| admission_patch(black_box(&d), black_box(&mutated))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
