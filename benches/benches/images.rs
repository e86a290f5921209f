//! Image verification against a real registry (Debian's docker-registry on 127.0.0.1, started
//! by the same harness the tests use): one signed image, one key-based verifyImages policy.
//!
//! - `verify/cold`: an empty cache, so the tag is resolved, the `.sig` manifest and its layers
//!   are fetched and the signature is checked (what the first Pod with a new image pays).
//! - `verify/cached_tag`: a warm cache; the tag is still resolved to its digest (one HEAD
//!   request), as Kyverno does, since a tag can move.
//! - `verify/cached_digest`: a warm cache and an image pinned by digest: no registry work.
//! - `admission/mutate_cached`: a whole Pod AdmissionReview through the webhook's mutate
//!   endpoint (parse, verify from the cache, digest patch, response); its throughput is the
//!   requests per second of one core with a warm cache.
//!
//! Kubewarden reports 413 µs for its verify-image-signatures policy, for comparison.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

// The registry harness of the tests (`tests/support/registry.rs`), shared by path.
#[path = "../../tests/support/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_compiler::bundle::{self, Input};
use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::engine::{Request, Status, UserInfo};
use palisade_runtime::images::cosign::Access;
use palisade_runtime::images::sign::{self, KeyPair, SigningScheme};
use palisade_runtime::images::{Verifier, VerifierConfig};
use palisade_runtime::webhook::{Endpoint, Engine, admission};
use serde_json::{Value, json};

fn policy_text(registry: &str, public_pem: &str) -> String {
    let key: String = public_pem.lines().map(|l| format!("              {l}\n")).collect();
    format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: verify-image-signatures\nspec:\n  rules:\n  - name: check-signature\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    verifyImages:\n    - imageReferences: ['{registry}/team/*']\n      failureAction: Enforce\n      imageRegistryCredentials: {{allowInsecureRegistry: true}}\n      attestors:\n      - entries:\n        - keys:\n            publicKeys: |-\n{key}            rekor: {{ignoreTlog: true}}\n            ctlog: {{ignoreSCT: true}}\n"
    )
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn verify(v: &Verifier, p: &PolicyIr, resource: &Value) -> Status {
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: resource, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let out = v.verify(p, &req);
    out.results[0].status
}

fn bench(c: &mut Criterion) {
    let reg = registry::Registry::start();
    let r = reg.addr.clone();
    let access = Access { insecure: true, basic: None };
    let key = KeyPair::generate(&SigningScheme::ECDSA_P256_SHA256_ASN1).unwrap();
    let digest = sign::block_on(sign::push_image(&access, &r, "team/app", "v1", b"bench image")).unwrap().unwrap();
    sign::block_on(sign::sign(&access, &r, "team/app", &digest, &[&key], &BTreeMap::new())).unwrap().unwrap();

    let text = policy_text(&r, &key.public_pem);
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let policy = PolicyIr::lower(&doc).unwrap();
    let v = Verifier::new(VerifierConfig::default()).unwrap();
    let tagged = pod(&format!("{r}/team/app:v1"));
    let pinned = pod(&format!("{r}/team/app@{digest}"));
    assert_eq!(verify(&v, &policy, &tagged), Status::Pass);

    let mut group = c.benchmark_group("images");
    group.sample_size(30);
    group.bench_function("verify/cold", |b| {
        b.iter(|| {
            v.clear_cache();
            black_box(verify(&v, &policy, &tagged))
        })
    });
    verify(&v, &policy, &tagged);
    group.bench_function("verify/cached_tag", |b| b.iter(|| black_box(verify(&v, &policy, &tagged))));
    group.bench_function("verify/cached_digest", |b| b.iter(|| black_box(verify(&v, &policy, &pinned))));

    let compiled = bundle::compile(&[Input { name: "policy.yaml".into(), text, explicit: true }]);
    let engine = Engine::new(compiled.bundle.unwrap(), "bench".into(), Duration::ZERO).with_images(Some(Arc::new(v)));
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "namespace": "default",
                    "userInfo": {"username": "dev"}, "object": tagged}
    }))
    .unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("admission/mutate_cached", |b| {
        b.iter(|| {
            let adm = admission::parse(black_box(&body)).unwrap();
            let verdict = admission::review(&engine, Endpoint::MutateFail, &adm, Instant::now() + Duration::from_secs(8));
            assert!(verdict.allowed && verdict.patch.is_some());
            black_box(admission::response(&adm.uid, &verdict))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
