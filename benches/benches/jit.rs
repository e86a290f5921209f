//! The native matchers on their own: what building the pod-security + best-practices set costs
//! (`CompiledSet::new`, nearly all of it Cranelift's code generation, paid at start and on every
//! reload of `palisade serve`), and what running every static pattern of that set costs on the
//! Deployment of `benches/data/deployment-review.json`, without the interpreter fallbacks that
//! dominate `palisade bench`'s `jit_ns`. Together they show the compile-time/run-time trade of
//! Cranelift's settings.
//!
//! Run with `cargo bench -p palisade-benches --bench jit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::ir::policy::{Check, PatternItem, PolicyIr, RuleBody};
use palisade_runtime::doc::{Doc, KeyTable};
use palisade_runtime::jit::{Jit, Verdict};
use palisade_runtime::set::{self, CompiledSet};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load() -> Vec<PolicyIr> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies");
    let paths: Vec<PathBuf> = ["pod-security", "best-practices"].iter().map(|p| corpus.join(p)).collect();
    set::load_policies(&paths).0
}

/// Every static pattern of the set's validate rules, preconditions or not: the matcher code
/// the JIT is asked to produce.
fn patterns(policies: &[PolicyIr]) -> Vec<Pattern> {
    let mut out = Vec::new();
    for rule in policies.iter().flat_map(|p| &p.rules) {
        let RuleBody::Validate(v) = &rule.body else { continue };
        match &v.check {
            Check::Pattern(p) => out.push(p.clone()),
            Check::AnyPattern(items) => out.extend(items.iter().filter_map(|i| match i {
                PatternItem::Static(p) => Some(p.clone()),
                PatternItem::Dynamic(_) => None,
            })),
            _ => {}
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let policies = load();
    let review: Value =
        serde_json::from_slice(&std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/deployment-review.json")).unwrap())
            .unwrap();
    let object = serde_json::to_vec(&review["request"]["object"]).unwrap();

    let mut group = c.benchmark_group("jit");
    group.sample_size(20);
    group.bench_function("compile_set/pod-security+best-practices", |b| {
        b.iter(|| CompiledSet::new(black_box(policies.clone())).unwrap())
    });

    let patterns = patterns(&policies);
    let mut keys = KeyTable::default();
    let mut jit = Jit::new().unwrap();
    for p in &patterns {
        jit.add(p, &mut keys).ok();
    }
    let compiled = jit.finish().unwrap();
    let doc = Doc::parse(&object, &keys).unwrap();
    group.bench_function(format!("run_all/{}_patterns_on_deployment", compiled.len()), |b| {
        b.iter(|| compiled.iter().filter(|m| m.run(black_box(&doc), doc.root()) == Verdict::Pass).count())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
