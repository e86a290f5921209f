//! Compiling the pod-security + best-practices sets from YAML versus loading the same set from a
//! compiled bundle (what `palisade serve --policies` and `--bundle` pay at start and on reload).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_compiler::bundle::{self, Bundle};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies");
    let mut files = Vec::new();
    palisade_benches::policy_inputs(&root.join("pod-security"), &mut files);
    palisade_benches::policy_inputs(&root.join("best-practices"), &mut files);
    let bytes = bundle::compile(&files).bundle.unwrap().encode().unwrap();
    let mut group = c.benchmark_group("bundle");
    group.sample_size(20);
    group.bench_function("compile_yaml/pod-security+best-practices", |b| {
        b.iter(|| bundle::compile(black_box(&files)).bundle.unwrap())
    });
    group.bench_function("load_bundle/pod-security+best-practices", |b| b.iter(|| Bundle::decode(black_box(&bytes)).unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
