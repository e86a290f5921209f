//! End-to-end image verification against a real registry on 127.0.0.1.
//!
//! Every test starts its own `docker-registry`, pushes small images, signs them with keys (and a
//! throwaway certificate authority and Rekor key for keyless) generated in the test, and runs
//! `verifyImages` policies through the runtime's verifier: the mutate phase (verification, digest
//! patches, the verify-images annotation), the validate phase (`verifyDigest`, `required`) and
//! the admission decision. Messages are Kyverno's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support {
    pub mod registry;
    pub mod server;
}

use std::collections::BTreeMap;

use palisade_compiler::ir::policy::PolicyIr;
use palisade_runtime::engine::{Request, RuleResult, Status, UserInfo};
use palisade_runtime::images::cosign::Access;
use palisade_runtime::images::sign::{self, KeyPair, SignatureSpec};
use palisade_runtime::images::{self, ImageOutcome, Verifier, VerifierConfig};
use serde_json::{Value, json};
use sigstore::crypto::SigningScheme;
use support::registry::{Registry, dead_addr};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn access() -> Access {
    Access { insecure: true, basic: None }
}

/// Pushes an image with unique content and returns its digest.
fn push(reg: &str, repo: &str, tag: &str) -> String {
    let content = format!("{repo}:{tag} content");
    rt().block_on(sign::push_image(&access(), reg, repo, tag, content.as_bytes())).unwrap()
}

fn key(scheme: SigningScheme) -> KeyPair {
    KeyPair::generate(&scheme).unwrap()
}

fn sign_with(reg: &str, repo: &str, digest: &str, keys: &[&KeyPair]) {
    rt().block_on(sign::sign(&access(), reg, repo, digest, keys, &BTreeMap::new())).unwrap();
}

fn indent(text: &str, n: usize) -> String {
    text.lines().map(|l| format!("{}{l}", " ".repeat(n))).collect::<Vec<_>>().join("\n")
}

/// A ClusterPolicy with one verifyImages rule for Pods; `entry` is the YAML of the entry.
fn policy(name: &str, entry: &str, extra_spec: &str) -> PolicyIr {
    let text = format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  rules:\n  - name: check-image\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    verifyImages:\n{}\n",
        indent(entry, 4)
    );
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    PolicyIr::lower(&doc).unwrap()
}

/// An entry verifying `refs` with one public key, offline (no transparency log).
fn key_entry(refs: &str, pem: &str, action: &str) -> String {
    format!(
        "- imageReferences: ['{refs}']\n  failureAction: {action}\n  mutateDigest: {md}\n  imageRegistryCredentials:\n    allowInsecureRegistry: true\n  attestors:\n  - entries:\n    - keys:\n        publicKeys: |-\n{}\n        rekor:\n          ignoreTlog: true\n        ctlog:\n          ignoreSCT: true",
        indent(pem, 12),
        md = action == "Enforce"
    )
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn verify(v: &Verifier, p: &PolicyIr, resource: &Value) -> ImageOutcome {
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: resource, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    v.verify(p, &req)
}

fn validate(v: &Verifier, p: &PolicyIr, resource: &Value) -> Vec<RuleResult> {
    let user = UserInfo::default();
    let req = Request { operation: "CREATE", object: resource, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    v.validate(p, &req)
}

fn verifier() -> Verifier {
    Verifier::new(VerifierConfig::default()).unwrap()
}

fn only(out: &ImageOutcome) -> (Status, String) {
    assert_eq!(out.results.len(), 1, "{:?}", out.results);
    (out.results[0].status, out.results[0].message.clone())
}

#[test]
fn signed_image_is_allowed_pinned_and_annotated() {
    let reg = Registry::start();
    let r = &reg.addr;
    let digest = push(r, "team/app", "v1");
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    sign_with(r, "team/app", &digest, &[&k]);
    let p = policy("verify", &key_entry(&format!("{r}/team/*"), &k.public_pem, "Enforce"), "");
    let v = verifier();
    let resource = pod(&format!("{r}/team/app:v1"));
    let out = verify(&v, &p, &resource);
    assert_eq!(only(&out), (Status::Pass, format!("verified image signatures for {r}/team/app:v1")));
    // mutateDigest pins the tag, and the annotation records the pinned image as verified.
    assert_eq!(out.patches[0], json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("{r}/team/app:v1@{digest}")}));
    let pinned = format!("{r}/team/app@{digest}");
    assert_eq!(out.verified, BTreeMap::from([(pinned.clone(), "pass".to_owned())]));
    assert_eq!(out.patches[1]["path"], "/metadata/annotations");
    let mut mutated = resource.clone();
    images::apply_patches(&mut mutated, &out.patches).unwrap();
    let recorded: Value = serde_json::from_str(mutated["metadata"]["annotations"]["kyverno.io/verify-images"].as_str().unwrap()).unwrap();
    assert_eq!(recorded, json!({pinned: "pass"}));
    // The validate phase accepts the mutated resource and refuses the unmutated one.
    let ok = validate(&v, &p, &mutated);
    assert_eq!((ok[0].status, ok[0].message.as_str()), (Status::Pass, "image verified"));
    let missing = validate(&v, &p, &resource);
    assert_eq!((missing[0].status, missing[0].message.clone()), (Status::Fail, format!("missing digest for {r}/team/app:v1")));
    let decision = images::decide(&mutated, &[(out.results[0].clone(), false), (ok[0].clone(), false)]);
    assert!(decision.allowed && decision.warnings.is_empty(), "{decision:?}");
}

#[test]
fn unsigned_wrong_key_and_tampered_signatures_are_denied() {
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let other = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let unsigned = push(r, "team/unsigned", "v1");
    let _ = unsigned;
    let wrong = push(r, "team/wrong", "v1");
    sign_with(r, "team/wrong", &wrong, &[&other]);
    let tampered = push(r, "team/tampered", "v1");
    // A real signature over a payload for another digest, then the payload swapped for this
    // digest's: the signature no longer covers what the layer says.
    let payload = sign::payload(r, "team/tampered", &tampered, &BTreeMap::new()).unwrap();
    let mut forged = k.sign(&payload).unwrap().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let spec = SignatureSpec { payload, signature: String::from_utf8(forged).unwrap(), certificate: None, chain: None, bundle: None };
    rt().block_on(sign::push_signatures(&access(), r, "team/tampered", &tampered, vec![spec])).unwrap();

    let p = policy("verify", &key_entry(&format!("{r}/team/*"), &k.public_pem, "Enforce"), "");
    let v = verifier();
    let cases = [
        ("unsigned", "no signatures found"),
        ("wrong", "no matching signatures: invalid signature when validating ASN.1 encoded signature"),
        ("tampered", "no matching signatures: invalid signature when validating ASN.1 encoded signature"),
    ];
    for (repo, reason) in cases {
        let resource = pod(&format!("{r}/team/{repo}:v1"));
        let out = verify(&v, &p, &resource);
        let want = format!("failed to verify image {r}/team/{repo}:v1: .attestors[0].entries[0].keys: {reason}");
        assert_eq!(only(&out), (Status::Fail, want.clone()), "{repo}");
        assert_eq!(out.verified.values().collect::<Vec<_>>(), vec!["fail"], "{repo}");
        let decision = images::decide(&resource, &[(out.results[0].clone(), false)]);
        assert!(!decision.allowed, "{repo}");
        assert_eq!(decision.message, format!("\n\nresource Pod/default/app was blocked due to the following policies\n\nverify:\n  check-image: {want}\n"));
    }
}

#[test]
fn rsa_p384_and_ed25519_keys_verify() {
    let reg = Registry::start();
    let r = &reg.addr;
    let v = verifier();
    let schemes = [
        ("rsa", SigningScheme::RSA_PKCS1_SHA256(2048)),
        ("p384", SigningScheme::ECDSA_P384_SHA384_ASN1),
        ("ed25519", SigningScheme::ED25519),
    ];
    for (name, scheme) in schemes {
        let k = key(scheme);
        let digest = push(r, &format!("keys/{name}"), "v1");
        sign_with(r, &format!("keys/{name}"), &digest, &[&k]);
        let p = policy("verify", &key_entry(&format!("{r}/keys/{name}*"), &k.public_pem, "Enforce"), "");
        let out = verify(&v, &p, &pod(&format!("{r}/keys/{name}@{digest}")));
        assert_eq!(only(&out), (Status::Pass, format!("verified image signatures for {r}/keys/{name}@{digest}")), "{name}");
        // A pinned image needs no digest patch; only the annotation is added.
        assert_eq!(out.patches.len(), 1, "{name}");
    }
    // signatureAlgorithm that the key type cannot use is a clear failure, not a silent pass.
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let digest = push(r, "keys/algo", "v1");
    sign_with(r, "keys/algo", &digest, &[&k]);
    let entry = key_entry(&format!("{r}/keys/algo*"), &k.public_pem, "Enforce").replace("        rekor:", "        signatureAlgorithm: sha512\n        rekor:");
    let out = verify(&v, &policy("verify", &entry, ""), &pod(&format!("{r}/keys/algo:v1")));
    assert_eq!(only(&out).1, format!("failed to verify image {r}/keys/algo:v1: .attestors[0].entries[0].keys: signatureAlgorithm sha512 is not supported for this key type by Palisade"));
}

#[test]
fn count_semantics() {
    let reg = Registry::start();
    let r = &reg.addr;
    let a = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let b = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let digest = push(r, "team/app", "v1");
    sign_with(r, "team/app", &digest, &[&a]);
    let entries = format!(
        "    entries:\n    - keys:\n        publicKeys: |-\n{}\n        rekor: {{ignoreTlog: true}}\n    - keys:\n        publicKeys: |-\n{}\n        rekor: {{ignoreTlog: true}}",
        indent(&b.public_pem, 12),
        indent(&a.public_pem, 12)
    );
    let entry = |count: &str| {
        format!("- imageReferences: ['{r}/*']\n  failureAction: Enforce\n  imageRegistryCredentials: {{allowInsecureRegistry: true}}\n  attestors:\n  - {count}\n{entries}")
    };
    let v = verifier();
    let image = format!("{r}/team/app:v1");
    // count: 1 of [b, a]: a verifies, so the set passes.
    let out = verify(&v, &policy("one", &entry("count: 1"), ""), &pod(&image));
    assert_eq!(only(&out).0, Status::Pass);
    // No count means every entry: b does not verify.
    let out = verify(&v, &policy("all", &entry("entries_count_unset: true"), ""), &pod(&image));
    assert_eq!(
        only(&out),
        (Status::Fail, format!("failed to verify image {image}: .attestors[0].entries[0].keys: no matching signatures: invalid signature when validating ASN.1 encoded signature"))
    );
    // count: 2 of two keys with one signature fails the same way.
    let out = verify(&v, &policy("two", &entry("count: 2"), ""), &pod(&image));
    assert_eq!(only(&out).0, Status::Fail);
}

#[test]
fn keyless_with_own_roots_checks_subject_and_issuer() {
    let reg = Registry::start();
    let r = &reg.addr;
    // A throwaway CA issues a code-signing certificate for the signer's key, as Fulcio would.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "palisade test root");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let leaf_key = rcgen::KeyPair::from_pem(&leaf.private_pem).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::Rfc822Name("release@example.com".try_into().unwrap())];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 1], b"https://issuer.example.com".to_vec())];
    let cert = params.signed_by(&leaf_key, &issuer).unwrap();
    let rekor = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let digest = push(r, "team/keyless", "v1");
    let signer = sign::KeylessSigner { leaf: &leaf, cert_pem: &cert.pem(), rekor: &rekor, integrated_time: now };
    rt().block_on(sign::sign_keyless(&access(), r, "team/keyless", &digest, &signer)).unwrap();

    let entry = |subject: &str, issuer: &str| {
        format!(
            "- imageReferences: ['{r}/*']\n  failureAction: Enforce\n  imageRegistryCredentials: {{allowInsecureRegistry: true}}\n  attestors:\n  - entries:\n    - keyless:\n        subject: '{subject}'\n        issuer: '{issuer}'\n        roots: |-\n{}\n        rekor:\n          pubkey: |-\n{}\n        ctlog: {{ignoreSCT: true}}",
            indent(&ca_cert.pem(), 12),
            indent(&rekor.public_pem, 14)
        )
    };
    let v = verifier();
    let image = format!("{r}/team/keyless:v1");
    let out = verify(&v, &policy("keyless", &entry("*@example.com", "https://issuer.example.com"), ""), &pod(&image));
    assert_eq!(only(&out), (Status::Pass, format!("verified image signatures for {image}")));
    let out = verify(&v, &policy("keyless", &entry("someone@example.org", "https://issuer.example.com"), ""), &pod(&image));
    assert_eq!(
        only(&out),
        (Status::Fail, format!("failed to verify image {image}: .attestors[0].entries[0].keyless: subject mismatch: expected someone@example.org, received release@example.com"))
    );
    let out = verify(&v, &policy("keyless", &entry("release@example.com", "https://other.example.com"), ""), &pod(&image));
    assert_eq!(
        only(&out),
        (Status::Fail, format!("failed to verify image {image}: .attestors[0].entries[0].keyless: issuer mismatch: expected https://other.example.com, received https://issuer.example.com"))
    );
    // Another CA's roots do not trust the certificate at all.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other_ca = ca_params.self_signed(&other_key).unwrap();
    let untrusted = entry("release@example.com", "https://issuer.example.com").replace(&indent(&ca_cert.pem(), 12), &indent(&other_ca.pem(), 12));
    let out = verify(&v, &policy("keyless", &untrusted, ""), &pod(&image));
    assert_eq!(only(&out), (Status::Fail, format!("failed to verify image {image}: .attestors[0].entries[0].keyless: no matching signatures: certificate not found")));
}

#[test]
fn attestations_are_verified_and_conditions_always_checked() {
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let digest = push(r, "team/app", "v1");
    sign_with(r, "team/app", &digest, &[&k]);
    let st = sign::statement("team/app", &digest, "https://slsa.dev/provenance/v0.2", &json!({"builder": {"id": "https://ci.example.com/builder"}}));
    rt().block_on(sign::attest(&access(), r, "team/app", &digest, &k, &[st])).unwrap();
    let bare = push(r, "team/bare", "v1");
    sign_with(r, "team/bare", &bare, &[&k]);

    let entry = |ptype: &str, builder: &str| {
        format!(
            "- imageReferences: ['{r}/*']\n  failureAction: Enforce\n  mutateDigest: false\n  imageRegistryCredentials: {{allowInsecureRegistry: true}}\n  attestations:\n  - type: {ptype}\n    attestors:\n    - entries:\n      - keys:\n          publicKeys: |-\n{}\n          rekor: {{ignoreTlog: true}}\n    conditions:\n    - all:\n      - key: '{{{{ builder.id }}}}'\n        operator: Equals\n        value: '{builder}'",
            indent(&k.public_pem, 14)
        )
    };
    let v = verifier();
    let image = format!("{r}/team/app:v1");
    let good = policy("att", &entry("https://slsa.dev/provenance/v0.2", "https://ci.example.com/builder"), "");
    let out = verify(&v, &good, &pod(&image));
    assert_eq!(only(&out), (Status::Pass, format!("verified image attestations for {r}/team/app@{digest}")));
    // The same trust settings hit the cache; the stricter condition is still evaluated.
    let strict = policy("att", &entry("https://slsa.dev/provenance/v0.2", "https://other.example.com"), "");
    let out = verify(&v, &strict, &pod(&image));
    assert_eq!(
        only(&out),
        (
            Status::Fail,
            format!("{}: attestation checks failed for {r}/team/app@{digest} and predicate https://slsa.dev/provenance/v0.2", ".attestations[0].attestors[0].entries[0].keys")
        )
    );
    let out = verify(&v, &good, &pod(&image));
    assert_eq!(only(&out), (Status::Pass, "verified from cache".to_owned()));
    // Another predicate type, and an image without attestations.
    let out = verify(&v, &policy("att", &entry("https://spdx.dev/Document", "x"), ""), &pod(&image));
    assert_eq!(only(&out), (Status::Fail, ".attestations[0].attestors[0].entries[0].keys: attestions not found for predicate type https://spdx.dev/Document".to_owned()));
    let out = verify(&v, &good, &pod(&format!("{r}/team/bare:v1")));
    assert_eq!(only(&out), (Status::Fail, format!("failed to verify image {r}/team/bare:v1: no matching attestations")));
}

#[test]
fn audit_and_required_false_warn_instead_of_deny() {
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    push(r, "team/unsigned", "v1");
    let resource = pod(&format!("{r}/team/unsigned:v1"));
    let v = verifier();
    // Audit: the rule fails, the request is admitted with a warning.
    let audit = policy("audit", &key_entry(&format!("{r}/*"), &k.public_pem, "Audit"), "");
    let out = verify(&v, &audit, &resource);
    assert_eq!(only(&out).0, Status::Fail);
    let decision = images::decide(&resource, &[(out.results[0].clone(), false)]);
    assert!(decision.allowed);
    assert_eq!(decision.warnings, vec![format!("policy audit.check-image: failed to verify image {r}/team/unsigned:v1: .attestors[0].entries[0].keys: no signatures found")]);
    // required: false and verifyDigest: false: the validate phase does not ask for a verified or
    // pinned image; with the defaults it does.
    let lenient = key_entry(&format!("{r}/*"), &k.public_pem, "Audit").replace("  mutateDigest: false\n", "  mutateDigest: false\n  required: false\n  verifyDigest: false\n");
    let results = validate(&v, &policy("lenient", &lenient, ""), &resource);
    assert_eq!((results[0].status, results[0].message.as_str()), (Status::Pass, "image verified"));
    let strict = key_entry(&format!("{r}/*"), &k.public_pem, "Audit").replace("  mutateDigest: false\n", "  mutateDigest: false\n  verifyDigest: false\n");
    let results = validate(&v, &policy("strict", &strict, ""), &resource);
    assert_eq!((results[0].status, results[0].message.clone()), (Status::Fail, format!("unverified image {r}/team/unsigned:v1")));
    let decision = images::decide(&resource, &[(results[0].clone(), false)]);
    assert!(decision.allowed && decision.warnings.len() == 1, "{decision:?}");
}

#[test]
fn registry_down_is_an_error_that_follows_failure_policy() {
    let dead = dead_addr();
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let resource = pod(&format!("{dead}/team/app:v1"));
    let v = verifier();
    for (spec, blocked) in [("", true), ("  failurePolicy: Ignore\n", false)] {
        let p = policy("down", &key_entry(&format!("{dead}/*"), &k.public_pem, "Enforce"), spec);
        let out = verify(&v, &p, &resource);
        let (status, message) = only(&out);
        assert_eq!(status, Status::Error, "{message}");
        assert!(message.starts_with(&format!("failed to verify image {dead}/team/app:v1: ")), "{message}");
        let decision = images::decide(&resource, &[(out.results[0].clone(), p.failure_policy_ignore)]);
        assert_eq!(decision.allowed, !blocked, "{decision:?}");
    }
}

#[test]
fn skip_references_notary_and_unmatched_images() {
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let v = verifier();
    let skip = key_entry(&format!("{r}/*"), &k.public_pem, "Enforce").replace("  failureAction", &format!("  skipImageReferences: ['{r}/tools/*']\n  failureAction"));
    let out = verify(&v, &policy("skip", &skip, ""), &pod(&format!("{r}/tools/debug:v1")));
    assert!(out.results.is_empty() && out.patches.is_empty(), "{out:?}");
    let out = verify(&v, &policy("other", &key_entry("ghcr.io/*", &k.public_pem, "Enforce"), ""), &pod(&format!("{r}/team/app:v1")));
    assert!(out.results.is_empty());
    let notary = key_entry(&format!("{r}/*"), &k.public_pem, "Enforce").replacen("- imageReferences", "- type: Notary\n  imageReferences", 1);
    let out = verify(&v, &policy("notary", &notary, ""), &pod(&format!("{r}/team/app:v1")));
    assert_eq!(only(&out), (Status::Error, format!("failed to verify image {r}/team/app:v1: Notary signatures are not supported by Palisade; use type: Cosign")));
}

/// An ImageValidatingPolicy whose validation calls `verifyImageSignatures` with a cosign key
/// attestor, verified against the local registry through the same verifier.
fn image_validating_policy(registry: &str, pem: &str) -> palisade_compiler::ir::cel::ImageValidatingPolicyIr {
    let text = image_validating_policy_text(registry, pem, "");
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    palisade_compiler::ir::cel::ImageValidatingPolicyIr::lower(&doc).unwrap()
}

/// The policy of [`image_validating_policy`] as YAML; `extra_spec` adds lines to its spec.
fn image_validating_policy_text(registry: &str, pem: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: policies.kyverno.io/v1\nkind: ImageValidatingPolicy\nmetadata:\n  name: signed\nspec:\n{extra_spec}  matchConstraints:\n    resourceRules:\n    - apiGroups: ['']\n      apiVersions: [v1]\n      operations: [CREATE]\n      resources: [pods]\n  matchImageReferences:\n  - glob: '{registry}/team/*'\n  credentials:\n    allowInsecureRegistry: true\n  attestors:\n  - name: team-key\n    cosign:\n      key:\n        data: |-\n{}\n      ctlog:\n        insecureIgnoreTlog: true\n        insecureIgnoreSCT: true\n  validations:\n  - expression: \"images.containers.all(i, verifyImageSignatures(i, [attestors['team-key']]) > 0)\"\n    message: failed the verification\n",
        indent(pem, 10)
    )
}

#[test]
fn image_validating_policies_verify_signatures_against_the_registry() {
    use palisade_runtime::cel::{CelInputs, images as cel_images};
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let other = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let signed = push(r, "team/signed", "v1");
    sign_with(r, "team/signed", &signed, &[&k]);
    let wrong = push(r, "team/wrong", "v1");
    sign_with(r, "team/wrong", &wrong, &[&other]);
    let p = image_validating_policy(r, &k.public_pem);
    let v = std::sync::Arc::new(verifier());
    let user = UserInfo::default();
    let inputs = CelInputs::default();
    let run = |image: &str| {
        let resource = pod(image);
        let req = Request { operation: "CREATE", object: &resource, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
        let out = cel_images::evaluate(&p, &req, &inputs, None, Some(v.clone())).unwrap();
        (out.status, out.message)
    };
    assert_eq!(run(&format!("{r}/team/signed:v1")), (Status::Pass, String::new()));
    // A signature by another key: as in Kyverno, the attestor is not counted, so the validation
    // fails with the policy's message.
    assert_eq!(run(&format!("{r}/team/wrong:v1")), (Status::Fail, "Policy signed failed: failed the verification".to_owned()));
    // A registry that cannot be reached is an error, worded as Kyverno's handler words errors.
    let dead = dead_addr();
    let p_dead = image_validating_policy(&dead, &k.public_pem);
    let resource = pod(&format!("{dead}/team/app:v1"));
    let req = Request { operation: "CREATE", object: &resource, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let out = cel_images::evaluate(&p_dead, &req, &inputs, None, Some(v.clone())).unwrap();
    assert_eq!(out.status, Status::Error, "{}", out.message);
    assert!(out.message.starts_with("Policy signed error: expression"), "{}", out.message);
    assert!(out.message.contains("verifyImageSignatures"), "{}", out.message);
    // An image outside matchImageReferences is not verified at all.
    assert_eq!(run("docker.io/library/nginx:1.27"), (Status::Skip, "no images matched matchImageReferences".to_owned()));
}

/// A webhook engine over one policy's YAML, with a verifier, as `palisade serve` builds it.
fn webhook_engine(text: &str, v: std::sync::Arc<Verifier>) -> palisade_runtime::webhook::Engine {
    use palisade_compiler::bundle::{self, Input};
    let compiled = bundle::compile(&[Input { name: "policy.yaml".into(), text: text.to_owned(), explicit: true }]);
    let b = compiled.bundle.unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    palisade_runtime::webhook::Engine::new(b, "test".into(), std::time::Duration::ZERO).with_images(Some(v))
}

fn review_body(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "namespace": "default",
                    "userInfo": {"username": "dev"}, "object": object}
    }))
    .unwrap()
}

fn policy_text(name: &str, entry: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  rules:\n  - name: check-image\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    verifyImages:\n{}\n",
        indent(entry, 4)
    )
}

#[test]
fn webhook_mutate_pins_digests_and_validate_checks_them() {
    use palisade_runtime::webhook::{Endpoint, admission};
    let reg = Registry::start();
    let r = &reg.addr;
    let digest = push(r, "team/app", "v1");
    push(r, "team/tools", "v1");
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    sign_with(r, "team/app", &digest, &[&k]);
    let v = std::sync::Arc::new(verifier());
    let engine = webhook_engine(&policy_text("verify", &key_entry(&format!("{r}/team/*"), &k.public_pem, "Enforce"), ""), v);
    let deadline = || std::time::Instant::now() + std::time::Duration::from_secs(10);

    // Mutate endpoint: the digest patch and the annotation, at Kyverno's paths, as a JSONPatch.
    let signed = pod(&format!("{r}/team/app:v1"));
    let adm = admission::parse(&review_body(&signed)).unwrap();
    let verdict = admission::review(&engine, Endpoint::MutateFail, &adm, deadline());
    assert!(verdict.allowed, "{:?}", verdict.message);
    let response = admission::response(&adm.uid, &verdict);
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    use base64::Engine as _;
    let patch: Value = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(response["response"]["patch"].as_str().unwrap()).unwrap()).unwrap();
    let ops = patch.as_array().unwrap();
    assert!(ops.contains(&json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("{r}/team/app:v1@{digest}")})), "{patch}");
    assert!(ops.iter().any(|o| o["path"].as_str().unwrap().starts_with("/metadata/annotations")), "{patch}");

    // Validate endpoint on the object the API server sends after the patch: admitted. The
    // unpatched object (not pinned, not annotated) is refused with the block message.
    let mut mutated = signed.clone();
    images::apply_patches(&mut mutated, &[ops.iter().find(|o| o["path"] == "/spec/containers/0/image").unwrap().clone()]).unwrap();
    let annotation = ops.iter().find(|o| o["path"].as_str().unwrap().starts_with("/metadata/annotations")).unwrap().clone();
    images::apply_patches(&mut mutated, &[annotation]).unwrap();
    let adm = admission::parse(&review_body(&mutated)).unwrap();
    let verdict = admission::review(&engine, Endpoint::ValidateFail, &adm, deadline());
    assert!(verdict.allowed, "{:?}", verdict.message);
    let adm = admission::parse(&review_body(&signed)).unwrap();
    let verdict = admission::review(&engine, Endpoint::ValidateFail, &adm, deadline());
    assert!(!verdict.allowed);
    assert!(verdict.message.as_ref().unwrap().text().contains(&format!("check-image: missing digest for {r}/team/app:v1")), "{:?}", verdict.message);

    // An unsigned image is refused on the mutate endpoint with Kyverno's message.
    let adm = admission::parse(&review_body(&pod(&format!("{r}/team/tools:v1")))).unwrap();
    let verdict = admission::review(&engine, Endpoint::MutateFail, &adm, deadline());
    assert!(!verdict.allowed);
    let message = verdict.message.unwrap().text().into_owned();
    assert!(message.contains("resource Pod/default/app was blocked due to the following policies"), "{message}");
    // The message is folded as Go's YAML emitter folds it in Kyverno's block message.
    assert!(message.contains(&format!("check-image: 'failed to verify image {r}/team/tools:v1: .attestors[0].entries[0].keys:\n    no signatures found'")), "{message}");
    assert!(verdict.patch.is_none());
}

#[test]
fn webhook_registry_down_follows_failure_policy_within_the_deadline() {
    use palisade_runtime::webhook::{Endpoint, admission};
    // A registry that refuses connections, and one that accepts them and never answers (the
    // listener is kept open but never accepts): only the request deadline ends the wait.
    let refused = dead_addr();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let v = std::sync::Arc::new(verifier());
    let cases = [(refused, "  failurePolicy: Fail\n", Endpoint::MutateFail, false), (silent_addr, "  failurePolicy: Ignore\n", Endpoint::MutateIgnore, true)];
    for (dead, spec, endpoint, allowed) in cases {
        let object = pod(&format!("{dead}/team/app:v1"));
        let engine = webhook_engine(&policy_text("down", &key_entry(&format!("{dead}/*"), &k.public_pem, "Enforce"), spec), v.clone());
        let adm = admission::parse(&review_body(&object)).unwrap();
        let started = std::time::Instant::now();
        let verdict = admission::review(&engine, endpoint, &adm, started + std::time::Duration::from_secs(2));
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "the deadline bounds registry work");
        assert_eq!(verdict.allowed, allowed, "{spec}: {:?}", verdict.message);
        let errored: Vec<&RuleResult> = verdict.results.iter().filter(|r| r.status == Status::Error).collect();
        assert_eq!(errored.len(), 1, "{:?}", verdict.results);
        assert!(errored[0].message.starts_with(&format!("failed to verify image {dead}/team/app:v1: ")), "{}", errored[0].message);
        if allowed {
            assert!(verdict.warnings.iter().any(|w| w.starts_with("policy down.check-image: failed to verify image")), "{:?}", verdict.warnings);
        }
    }
}

#[test]
fn kyverno_test_files_verify_images_against_the_registry() {
    // `palisade test` reaches registries for verifyImages rules, as `kyverno test` does, and
    // compares the verification phase's result with the expected one.
    let reg = Registry::start();
    let r = &reg.addr;
    let digest = push(r, "team/app", "v1");
    push(r, "team/tools", "v1");
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    sign_with(r, "team/app", &digest, &[&k]);
    let dir = std::env::temp_dir().join(format!("palisade-images-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: verify\nspec:\n  rules:\n  - name: check-image\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    verifyImages:\n{}\n",
        indent(&key_entry(&format!("{r}/team/*"), &k.public_pem, "Enforce"), 4)
    );
    std::fs::write(dir.join("policy.yaml"), policy).unwrap();
    let pods = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: signed\nspec:\n  containers:\n  - name: app\n    image: {r}/team/app:v1\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: unsigned\nspec:\n  containers:\n  - name: app\n    image: {r}/team/tools:v1\n"
    );
    std::fs::write(dir.join("pods.yaml"), pods).unwrap();
    let test = "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: images\npolicies: [policy.yaml]\nresources: [pods.yaml]\nresults:\n- policy: verify\n  rule: check-image\n  kind: Pod\n  resources: [signed]\n  result: pass\n- policy: verify\n  rule: check-image\n  kind: Pod\n  resources: [unsigned]\n  result: fail\n";
    std::fs::write(dir.join("kyverno-test.yaml"), test).unwrap();
    let reports = palisade_runtime::cli::runner::run_all(&[dir.join("kyverno-test.yaml")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].error.is_none(), "{:?}", reports[0].error);
    let got: Vec<(&str, &str, bool)> = reports[0].outcomes.iter().map(|o| (o.resource.as_str(), o.actual.as_str(), o.ok)).collect();
    assert_eq!(got, vec![("signed", "pass", true), ("unsigned", "fail", true)], "{:?}", reports[0].outcomes);
}

#[test]
fn webhook_image_validating_policy_honours_the_deadline_and_failure_policy() {
    use palisade_runtime::webhook::{Endpoint, admission};
    // A registry that accepts connections and never answers: only the request deadline ends
    // the wait, and the error denies under failurePolicy Fail with Kyverno's wording.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap().to_string();
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let v = std::sync::Arc::new(verifier());
    for (spec, endpoint, allowed) in [("", Endpoint::Cel(palisade_compiler::bundle::FailurePolicy::Fail), false), ("  failurePolicy: Ignore\n", Endpoint::Cel(palisade_compiler::bundle::FailurePolicy::Ignore), true)] {
        let engine = webhook_engine(&image_validating_policy_text(&dead, &k.public_pem, spec), v.clone());
        let adm = admission::parse(&review_body(&pod(&format!("{dead}/team/app:v1")))).unwrap();
        let started = std::time::Instant::now();
        let verdict = admission::review(&engine, endpoint, &adm, started + std::time::Duration::from_secs(2));
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "the deadline bounds registry work");
        assert_eq!(verdict.allowed, allowed, "{spec}: {:?}", verdict.message);
        if !allowed {
            let message = verdict.message.unwrap().text().into_owned();
            assert!(message.starts_with("Policy signed error: expression"), "{message}");
            assert!(message.contains(&format!("failed to verify image {dead}/team/app:v1: registry did not answer within")), "{message}");
        }
    }
}

#[test]
fn image_validating_policy_over_https() {
    use support::server::Server;
    let reg = Registry::start();
    let r = &reg.addr;
    let k = key(SigningScheme::ECDSA_P256_SHA256_ASN1);
    let signed = push(r, "team/signed", "v1");
    sign_with(r, "team/signed", &signed, &[&k]);
    push(r, "team/unsigned", "v1");
    let dir = std::env::temp_dir().join(format!("palisade-ivpol-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The match condition reads `namespaceObject`, which the webhook builds from the request.
    let condition = "  matchConditions:\n  - name: default-namespace\n    expression: \"namespaceObject.metadata.name == 'default'\"\n";
    std::fs::write(dir.join("policy.yaml"), image_validating_policy_text(r, &k.public_pem, condition)).unwrap();
    let server = Server::start(&dir, &["--policies", "policy.yaml"]);
    let client = server.client();
    let post = |path: &str, object: &Value, namespace: &str| -> Value {
        let mut body: Value = serde_json::from_slice(&review_body(object)).unwrap();
        body["request"]["namespace"] = json!(namespace);
        body["request"]["object"]["metadata"]["namespace"] = json!(namespace);
        let url = server.url(path);
        rt().block_on(async {
            let resp = client.post(url).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
        })
    };
    // Signed: allowed, on the CEL endpoint and on the path the webhook configuration names it by.
    for path in ["/ivpol/validate/fail", "/ivpol/validate/fail/signed"] {
        let out = post(path, &pod(&format!("{r}/team/signed:v1")), "default");
        assert_eq!(out["response"], json!({"uid": "1", "allowed": true}), "{path}: {}", server.logs());
    }
    // Unsigned: denied with the message Kyverno's image policy handler gives.
    let out = post("/ivpol/validate/fail", &pod(&format!("{r}/team/unsigned:v1")), "default");
    assert_eq!(
        out["response"],
        json!({"uid": "1", "allowed": false, "status": {"status": "Failure", "message": "Policy signed failed: failed the verification"}})
    );
    // Outside the namespace the match condition selects, the policy does not apply.
    let out = post("/ivpol/validate/fail", &pod(&format!("{r}/team/unsigned:v1")), "other");
    assert_eq!(out["response"], json!({"uid": "1", "allowed": true}));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
