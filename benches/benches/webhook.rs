//! The webhook's own work per review, apart from the policy engine: the denial text
//! (`block_message`) and the response body (`response_bytes`, which writes a denial's text
//! JSON-escaped straight into the body), on what the corpus mix makes of them, and
//! `review_compiled` and the review with its response end to end for scale.
//!
//! The reviews are those of the load test (`scripts/load-test`, `loadgen`): the corpus' test
//! resources under pod-security and best-practices, each wrapped in a CREATE review, against
//! those two policy sets. The denials are rebuilt from the set engine's results the way the
//! webhook folds them (failing and erroring rules, by policy and rule).
//!
//! Run with `cargo bench -p palisade-benches --bench webhook`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

use palisade_compiler::bundle;
use palisade_runtime::engine::Status;
use palisade_runtime::set::Review;
use palisade_runtime::webhook::{Endpoint, Engine, admission};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies").join(rel)
}

type Blocked = BTreeMap<String, BTreeMap<String, String>>;

struct Denial {
    kind: String,
    namespace: String,
    name: String,
    blocked: Blocked,
}

fn webhook(c: &mut Criterion) {
    let dirs = [corpus("pod-security"), corpus("best-practices")];
    let mut inputs = Vec::new();
    for d in &dirs {
        palisade_benches::policy_inputs(d, &mut inputs);
    }
    let Some(bundle) = bundle::compile(&inputs).bundle else { return };
    let engine = Engine::new(bundle, "bench".into(), Duration::ZERO);
    let endpoint = Endpoint::ValidateFail;
    let Some(set) = engine.compiled(endpoint) else { return };
    let mut objects = Vec::new();
    for d in &dirs {
        palisade_benches::corpus_resources(d, &mut objects);
    }
    let bodies: Vec<Vec<u8>> = objects.iter().enumerate().map(|(i, o)| palisade_benches::admission_review(i, o)).collect();

    // The denials, folded from the set engine's results as the webhook folds them.
    let mut denials = Vec::new();
    let mut out = Vec::new();
    for (body, object) in bodies.iter().zip(&objects) {
        let Ok(review) = Review::parse(body, set) else { continue };
        out.clear();
        set.evaluate(&review.request(), &mut out);
        let mut blocked = Blocked::new();
        let mut block = false;
        for r in &out {
            if !matches!(r.status, Status::Fail | Status::Error) {
                continue;
            }
            block |= r.status == Status::Error || r.enforce;
            let full = set.rule_result(r);
            if full.message != "preconditions not met" {
                blocked.entry(full.policy).or_default().insert(full.rule, full.message);
            }
        }
        if block && !blocked.is_empty() {
            let text = |at: &str| object.pointer(at).and_then(Value::as_str).map(str::to_owned);
            denials.push(Denial {
                kind: text("/kind").unwrap_or_default(),
                namespace: text("/metadata/namespace").unwrap_or_else(|| "default".into()),
                name: text("/metadata/name").unwrap_or_default(),
                blocked,
            });
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3600);
    let verdicts: Vec<(String, admission::Verdict)> = bodies
        .iter()
        .filter_map(|b| admission::review_compiled(&engine, endpoint, b, deadline))
        .map(|(adm, v)| (adm.uid, v))
        .collect();
    let text_bytes: usize = denials.iter().map(|d| admission::block_message(&d.kind, &d.namespace, &d.name, &d.blocked).len()).sum();
    let response_bytes: usize = verdicts.iter().map(|(uid, v)| admission::response_bytes(uid, v).len()).sum();
    eprintln!(
        "{} reviews, {} denials ({} bytes of denial text), {} responses ({response_bytes} bytes)",
        bodies.len(),
        denials.len(),
        text_bytes,
        verdicts.len()
    );

    let mut g = c.benchmark_group("webhook");
    g.throughput(Throughput::Elements(denials.len() as u64));
    g.bench_function("block_message (all corpus denials)", |b| {
        b.iter(|| denials.iter().map(|d| admission::block_message(&d.kind, &d.namespace, &d.name, &d.blocked).len()).sum::<usize>())
    });
    g.throughput(Throughput::Elements(verdicts.len() as u64));
    g.bench_function("response_bytes (all corpus reviews)", |b| {
        b.iter(|| verdicts.iter().map(|(uid, v)| admission::response_bytes(uid, v).len()).sum::<usize>())
    });
    // The former way, for comparison: the denial text written, then escaped into the response.
    g.bench_function("response_json on the text (all corpus reviews)", |b| {
        b.iter(|| {
            verdicts
                .iter()
                .map(|(uid, v)| {
                    let text = v.message.as_ref().map(|m| m.text().into_owned());
                    palisade_runtime::set::response_json(uid, v.allowed, text.as_deref(), &v.warnings, v.patch.as_deref()).len()
                })
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(bodies.len() as u64));
    g.bench_function("review_compiled (all corpus reviews)", |b| {
        b.iter(|| bodies.iter().filter_map(|body| admission::review_compiled(&engine, endpoint, body, deadline)).count())
    });
    g.bench_function("review_compiled and response_bytes (all corpus reviews)", |b| {
        b.iter(|| {
            bodies
                .iter()
                .filter_map(|body| admission::review_compiled(&engine, endpoint, body, deadline))
                .map(|(adm, v)| admission::response_bytes(&adm.uid, &v).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = webhook
}
criterion_main!(benches);
