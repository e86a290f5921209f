//! Bundles: a compiled set survives encoding unchanged, and every damaged, foreign or hostile
//! bundle is refused with its own clear error instead of a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use std::path::{Path, PathBuf};

use palisade_compiler::bundle::{self, Bundle, FORMAT_VERSION, Input, LoadError, MAGIC};
use palisade_compiler::ir::pattern::Pattern;

fn corpus(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies").join(set)
}

fn inputs(dir: &Path, out: &mut Vec<Input>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if p.is_dir() && !hidden {
            inputs(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(Input { name: p.display().to_string(), text: std::fs::read_to_string(&p).unwrap(), explicit: false });
        }
    }
}

fn sample() -> Vec<u8> {
    let mut files = Vec::new();
    inputs(&corpus("pod-security"), &mut files);
    inputs(&corpus("best-practices"), &mut files);
    let compiled = bundle::compile(&files);
    let bundle = compiled.bundle.expect("the corpus sets compile");
    assert!(bundle.policies.len() > 30, "{} policies", bundle.policies.len());
    bundle.encode().unwrap()
}

/// Rewrites the digest after a deliberate change, as a forger (or a buggy writer) would.
fn reseal(bytes: &mut Vec<u8>) {
    use sha2::{Digest, Sha256};
    let n = bytes.len() - 32;
    bytes.truncate(n);
    let d: [u8; 32] = Sha256::digest(&bytes[..]).into();
    bytes.extend_from_slice(&d);
}

#[test]
fn round_trip_is_exact() {
    let bytes = sample();
    let (decoded, digest) = Bundle::decode(&bytes).unwrap();
    assert_eq!(digest.len(), 64);
    // Encoding is deterministic, so equal bytes mean an identical IR.
    assert_eq!(decoded.encode().unwrap(), bytes);
    let p = decoded.policies.iter().find(|p| p.meta.name == "require-labels").unwrap();
    assert!(p.ir.rules.iter().any(|r| r.name == "autogen-check-for-labels"));
    assert!(p.source.locate("autogen-check-for-labels").contains("require-labels.yaml:"));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample();
    for len in (0..bytes.len()).step_by(997).chain([bytes.len() - 1, 12, 51]) {
        let err = Bundle::decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, LoadError::NotABundle | LoadError::Truncated { .. }), "{len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(Bundle::decode(&longer), Err(LoadError::Invalid(_))));
}

#[test]
fn every_flipped_byte_is_caught() {
    let bytes = sample();
    for at in (0..bytes.len()).step_by(1009) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        assert!(Bundle::decode(&bad).is_err(), "flip at {at} went unnoticed");
    }
    let mut bad = bytes.clone();
    let mid = bytes.len() / 2;
    bad[mid] ^= 1;
    let err = Bundle::decode(&bad).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[test]
fn foreign_versions_are_refused_with_a_clear_message() {
    let bytes = sample();
    let mut other = bytes.clone();
    other[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    reseal(&mut other);
    let err = Bundle::decode(&other).unwrap_err().to_string();
    assert!(err.contains(&format!("format version {} is not supported", FORMAT_VERSION + 1)), "{err}");
    assert!(err.contains("recompile"), "{err}");

    let mut abi = bytes.clone();
    abi[12] ^= 0xff;
    reseal(&mut abi);
    let err = Bundle::decode(&abi).unwrap_err().to_string();
    assert!(err.contains("different stdlib/IR"), "{err}");

    let err = Bundle::decode(b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\n").unwrap_err();
    assert_eq!(err, LoadError::NotABundle);
    assert!(err.to_string().contains("palisade compile"));
}

#[test]
fn a_resealed_garbage_payload_is_a_decode_error() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&bundle::abi_hash());
    let payload = [0xdc, 0xff, 0xff, 0x93, 0x01];
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&[0; 32]);
    reseal(&mut bytes);
    let err = Bundle::decode(&bytes).unwrap_err();
    assert!(matches!(err, LoadError::Decode(_)), "{err}");
}

#[test]
fn a_cyclic_pattern_is_refused() {
    let p = Pattern::lower(&serde_json::json!({"spec": {"containers": [{"image": "!*:latest"}]}})).unwrap();
    assert_eq!(p.validate(), Ok(()));
    let mut json = serde_json::to_value(&p).unwrap();
    // Point the first map entry back at the root.
    let root = json["root"].clone();
    json["entries"][0]["value"] = root;
    let forged: Pattern = serde_json::from_value(json).unwrap();
    let err = forged.validate().unwrap_err();
    assert!(err.contains("does not precede it"), "{err}");
}

/// The CEL kinds of the corpus compile into bundles and survive encoding: every
/// policies.kyverno.io policy of the CEL folders is bundled, none skipped.
#[test]
fn cel_policies_round_trip() {
    let mut files = Vec::new();
    for set in ["best-practices-vpol", "other-mpol", "cleanup-dpol", "other/verify-image-ivpol"] {
        if corpus(set).is_dir() {
            inputs(&corpus(set), &mut files);
        }
    }
    let compiled = bundle::compile(&files);
    let bundle = compiled.bundle.expect("the CEL sets compile");
    let kinds: std::collections::BTreeSet<&str> = bundle.cel.iter().map(|p| p.meta.kind.as_str()).collect();
    for kind in ["ValidatingPolicy", "MutatingPolicy", "DeletingPolicy", "ImageValidatingPolicy"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    assert!(bundle.skipped.is_empty(), "skipped: {:?}", bundle.skipped.iter().map(|s| &s.name).collect::<Vec<_>>());
    let bytes = bundle.encode().unwrap();
    let (decoded, _) = Bundle::decode(&bytes).unwrap();
    assert_eq!(decoded.cel.len(), bundle.cel.len());
    assert_eq!(decoded.encode().unwrap(), bytes);
}
