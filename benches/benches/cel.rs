//! One rule, two languages: Pod Security's `disallow-privileged-containers` as a Kyverno pattern,
//! as `validate.cel` in a ClusterPolicy, and as a ValidatingPolicy, evaluated on the same Pod.
//! Also the parts of a CEL evaluation: converting the request once, and one expression.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

use palisade_compiler::ir::cel::CelPolicyIr;
use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::cel as rcel;
use palisade_runtime::cli::runner::load_documents;
use palisade_runtime::engine::{self, Request, UserInfo};
use palisade_stdlib::cel as scel;

fn corpus(path: &str) -> Value {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/kyverno-policies")).join(path);
    load_documents(&p).unwrap().into_iter().next().unwrap()
}

fn pod() -> Value {
    let container = |name: &str, image: &str, privileged: bool| {
        json!({"name": name, "image": image, "securityContext": {"privileged": privileged, "runAsNonRoot": true},
               "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "frontend"}},
        "spec": {"containers": [
            container("web", "registry.example.com/web:1.2", false),
            container("sidecar", "nginx", false),
            container("log", "registry.example.com/fluent-bit:2.1", false),
        ]}})
}

fn bench(c: &mut Criterion) {
    let object = pod();
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: &object, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };

    let pattern = PolicyIr::lower(&corpus("pod-security/baseline/disallow-privileged-containers/disallow-privileged-containers.yaml")).unwrap();
    let cel_rule = PolicyIr::lower(&corpus("pod-security-cel/baseline/disallow-privileged-containers/disallow-privileged-containers.yaml")).unwrap();
    let vpol = CelPolicyIr::lower(&corpus("pod-security-vpol/baseline/disallow-privileged-containers/disallow-privileged-containers.yaml")).unwrap();
    // Every form passes this Pod, so each measures the full check, not an early failure.
    for r in engine::evaluate(&pattern, &req).into_iter().chain(engine::evaluate(&cel_rule, &req)) {
        assert_eq!(r.status, engine::Status::Pass, "{}", r.message);
    }

    let mut g = c.benchmark_group("disallow-privileged-containers");
    g.bench_function("pattern", |b| b.iter(|| engine::evaluate(black_box(&pattern), black_box(&req))));
    g.bench_function("validate.cel", |b| b.iter(|| engine::evaluate(black_box(&cel_rule), black_box(&req))));
    let inputs = rcel::CelInputs::default();
    g.bench_function("ValidatingPolicy", |b| {
        b.iter(|| {
            let bindings = rcel::bindings(black_box(&req), None);
            rcel::evaluate_policy(black_box(&vpol), &req, &bindings, &inputs, None)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cel-parts");
    g.bench_function("bind request (convert once)", |b| b.iter(|| rcel::bindings(black_box(&req), None)));
    let bindings = rcel::bindings(&req, None);
    let expr = scel::compile("object.spec.containers.all(c, c.?securityContext.?privileged.orValue(false) == false)").unwrap();
    g.bench_function("one expression", |b| b.iter(|| expr.eval(black_box(&bindings), &[]).unwrap()));
    g.bench_function("compile", |b| {
        b.iter(|| scel::compile(black_box("object.spec.containers.all(c, c.?securityContext.?privileged.orValue(false) == false)")).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
