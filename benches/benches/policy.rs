//! Policy-set benchmarks: per stage (parse, index, evaluate, respond, and all of them end to
//! end), interpreter against
//! native matchers, on sets of 1, 17 (Pod Security), ~60 (pod-security + best-practices) and
//! 1,000+ rules, and against regorus evaluating same-meaning Rego.
//!
//! Run with `cargo bench -p palisade-benches --bench policy`. The request is
//! `benches/data/deployment-review.json`; the policies come from `../shared/corpus`.

use std::path::{Path, PathBuf};

/// The `palisade` binary's allocator (regorus runs on it too, in the same process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::Value;

use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::doc::Doc;
use palisade_runtime::engine::{self, Request, UserInfo};
use palisade_runtime::set::{self, CompiledSet, Review};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn corpus(rel: &str) -> PathBuf {
    root().join("../../shared/corpus/kyverno-policies").join(rel)
}

fn review_bytes() -> Vec<u8> {
    let text = std::fs::read(root().join("data/deployment-review.json")).unwrap_or_default();
    serde_json::from_slice::<Value>(&text).and_then(|v| serde_json::to_vec(&v)).unwrap_or_default()
}

fn load(paths: &[&str], pad: usize) -> Vec<PolicyIr> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| corpus(p)).collect();
    let (mut policies, _) = set::load_policies(&paths);
    policies.extend(set::padding(pad));
    policies
}

fn interpret(policies: &[PolicyIr], review: &Value, user: &UserInfo) -> usize {
    let object = review.pointer("/request/object").unwrap_or(&Value::Null);
    let req = Request { operation: "CREATE", object, old_object: None, user, namespace_labels: None, variables: &[], rule_variables: None };
    // One evaluation of the request for every policy, as `palisade apply` runs them.
    let mut evaluation = engine::Evaluation::new(&req);
    policies.iter().map(|p| evaluation.policy(p).len()).sum()
}

fn sets() -> Vec<(&'static str, Vec<PolicyIr>)> {
    vec![
        ("1 rule", load(&["best-practices/require-labels"], 0)),
        ("pod-security", load(&["pod-security/baseline", "pod-security/restricted"], 0)),
        ("pod-security+best-practices", load(&["pod-security", "best-practices"], 0)),
        ("+1000 padded", load(&["pod-security", "best-practices"], 1000)),
        ("+10000 padded", load(&["pod-security", "best-practices"], 10_000)),
    ]
}

fn stages(c: &mut Criterion) {
    let bytes = review_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let user = UserInfo { username: "kubernetes-admin".into(), ..UserInfo::default() };
    let mut parse = c.benchmark_group("parse");
    parse.bench_function("serde_json Value", |b| b.iter(|| serde_json::from_slice::<Value>(&bytes).ok()));
    let keys = match CompiledSet::new(load(&["pod-security", "best-practices"], 0)) {
        Ok(s) => s.keys().clone(),
        Err(_) => return,
    };
    parse.bench_function("matching document", |b| b.iter(|| Doc::parse(&bytes, &keys).ok().map(|d| d.node_count())));
    parse.finish();

    for (name, policies) in sets() {
        let rules: usize = policies.iter().map(|p| p.rules.len()).sum();
        let Ok(compiled) = CompiledSet::new(policies.clone()) else { continue };
        let Ok(review) = Review::parse(&bytes, &compiled) else { continue };
        let mut g = c.benchmark_group(format!("evaluate {name} ({rules} rules)"));
        g.bench_function(BenchmarkId::new("interpreter", rules), |b| b.iter(|| interpret(&policies, &value, &user)));
        let mut out = Vec::new();
        g.bench_function(BenchmarkId::new("jit", rules), |b| {
            b.iter(|| {
                out.clear();
                compiled.evaluate(&review.request(), &mut out)
            })
        });
        g.bench_function(BenchmarkId::new("end to end", rules), |b| b.iter(|| set::admit(&compiled, &bytes, &mut out).len()));
        g.finish();
        // The stages of `end to end` apart: the review parsed into the matching document, the
        // candidate rules taken from the kind index, and the response written from the results
        // (evaluation is the `jit` row above).
        let mut s = c.benchmark_group(format!("stages {name} ({rules} rules)"));
        s.bench_function("parse review", |b| b.iter(|| Review::parse(&bytes, &compiled).map(|r| r.object).ok()));
        s.bench_function("index", |b| b.iter(|| compiled.candidates(std::hint::black_box("Deployment")).len()));
        out.clear();
        compiled.evaluate(&review.request(), &mut out);
        s.bench_function("respond", |b| b.iter(|| set::respond(&compiled, &review, &out).len()));
        s.finish();
    }
}

const REGO: &str = include_str!("../rego/kyverno_three.rego");

fn regorus_comparison(c: &mut Criterion) {
    let bytes = review_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap_or_default();
    let policies = load(
        &[
            "best-practices/require-labels",
            "best-practices/restrict-image-registries",
            "pod-security/baseline/disallow-privileged-containers",
        ],
        0,
    );
    let Ok(compiled) = CompiledSet::new(policies) else { return };
    let mut engine = regorus::Engine::new();
    if engine.add_policy("kyverno_three.rego".into(), REGO.into()).is_err() {
        return;
    }
    let mut g = c.benchmark_group("regorus comparison (3 policies)");
    let mut out = Vec::new();
    g.bench_function("palisade end to end", |b| b.iter(|| set::admit(&compiled, &bytes, &mut out).len()));
    g.bench_function("regorus end to end", |b| {
        b.iter(|| {
            let _ = engine.set_input_json(&text);
            engine.eval_rule("data.palisade.bench.deny".into()).ok()
        })
    });
    g.finish();
}

criterion_group!(benches, stages, regorus_comparison);
criterion_main!(benches);
