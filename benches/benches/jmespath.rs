//! Parse and evaluation cost of typical Kyverno JMESPath expressions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_stdlib::jmespath::{EvalConfig, eval, parse};
use serde_json::{Value, json};
use std::hint::black_box;

const EXPRESSIONS: &[(&str, &str)] = &[
    ("images", "request.object.spec.containers[].image"),
    ("label_or_default", "request.object.metadata.labels.app || ''"),
    ("filter_projection", "request.object.spec.containers[?image != 'nginx'].name"),
    ("privileged_count", "length(request.object.spec.containers[?securityContext.privileged])"),
    ("kyverno_function", "regex_match('^registry\\.example\\.com/.*', request.object.spec.containers[0].image)"),
];

fn admission_request() -> Value {
    let container = |name: &str, image: &str, privileged: bool| {
        json!({"name": name, "image": image, "securityContext": {"privileged": privileged, "runAsNonRoot": true},
               "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}})
    };
    json!({"request": {"operation": "CREATE", "object": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "frontend"}},
        "spec": {"containers": [
            container("web", "registry.example.com/web:1.2", false),
            container("sidecar", "nginx", true),
            container("log", "registry.example.com/fluent-bit:2.1", false),
        ]}}}})
}

fn bench(c: &mut Criterion) {
    let data = admission_request();
    let cfg = EvalConfig::kyverno();
    for (name, source) in EXPRESSIONS {
        c.bench_function(&format!("parse/{name}"), |b| b.iter(|| parse(black_box(source)).unwrap()));
        let expr = parse(source).unwrap();
        c.bench_function(&format!("eval/{name}"), |b| b.iter(|| eval(black_box(&expr), black_box(&data), &cfg).unwrap()));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
