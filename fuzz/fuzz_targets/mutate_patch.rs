//! Arbitrary bytes through the mutation engine: the input is split at the first two NUL bytes
//! into a resource, a strategic-merge patch and a `patchesJson6902` text (YAML or JSON; the
//! first two fall back to a small Pod when they are not JSON). Anchor preprocessing, the merge
//! and the JSON 6902 patcher may fail but never panic or hang, and the webhook's patch from the
//! resource to whatever came out must turn the resource into it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_runtime::mutate::{admission_patch, apply_strategic, jsonpatch};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let default_pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
    let resource: Value = parts.next().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(default_pod.clone());
    let patch: Value = parts.next().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(json!({"spec": {"containers": [{"(name)": "a", "+(image)": "y"}]}}));
    let mut out = resource.clone();
    if let Ok(merged) = apply_strategic(&resource, patch) {
        out = merged;
    }
    if let Some(text) = parts.next().and_then(|b| std::str::from_utf8(b).ok()) {
        if let Ok(ops) = jsonpatch::decode(text) {
            if let Ok(patched) = jsonpatch::apply(&out, &ops) {
                out = patched;
            }
        }
    }
    let diff = admission_patch(&resource, &out);
    let ops = jsonpatch::decode_value(&diff).expect("the webhook's patch decodes");
    let roundtrip = jsonpatch::apply(&resource, &ops).expect("the webhook's patch applies");
    assert_eq!(roundtrip, out, "the webhook's patch must reproduce the mutated object");
});
