//! Producing cosign-format artifacts offline: pushing small OCI images, signing them with a key
//! (or a certificate plus a Rekor bundle signed by a local Rekor key), and attaching in-toto
//! attestations. The test suite, the examples and `palisade bench` build their fixtures with
//! this; keys are generated at run time and never written to the repository.
//!
//! Signatures are pushed in cosign's tag form: an OCI manifest at `sha256-<hex>.sig` whose
//! layers are simple-signing payloads carrying the signature (and optionally the certificate and
//! Rekor bundle) in layer annotations; attestations at `sha256-<hex>.att` as DSSE envelopes.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use oci_client::Reference;
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sigstore::cosign::payload::simple_signing::{Optional, SimpleSigning};
use sigstore::crypto::SigStoreSigner;
pub use sigstore::crypto::SigningScheme;
use sigstore::registry::OciReference;

use super::cosign::{Access, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, pae, pem_to_der, rekor_log_id};

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const CERT_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// A signing key generated at run time.
pub struct KeyPair {
    pub signer: SigStoreSigner,
    pub public_pem: String,
    pub private_pem: String,
}

impl KeyPair {
    pub fn generate(scheme: &SigningScheme) -> Result<KeyPair, String> {
        let signer = scheme.create_signer().map_err(|e| format!("cannot create a {scheme} key: {e}"))?;
        KeyPair::from_signer(signer)
    }

    /// Loads an unencrypted PKCS#8 ECDSA private key (what [`KeyPair::generate`] writes as
    /// `private_pem`); the curve picks the scheme (P-256 signs with SHA-256).
    pub fn from_private_pem(pem: &str) -> Result<KeyPair, String> {
        let keys = sigstore::crypto::signing_key::ecdsa::ECDSAKeys::from_pem(pem.as_bytes())
            .map_err(|e| format!("not an unencrypted PKCS#8 ECDSA private key: {e}"))?;
        let signer = keys.to_sigstore_signer().map_err(|e| e.to_string())?;
        KeyPair::from_signer(signer)
    }

    fn from_signer(signer: SigStoreSigner) -> Result<KeyPair, String> {
        let pair = signer.to_sigstore_keypair().map_err(|e| e.to_string())?;
        let public_pem = pair.public_key_to_pem().map_err(|e| e.to_string())?;
        let private_pem = pair.private_key_to_pem().map_err(|e| e.to_string())?.to_string();
        Ok(KeyPair { signer, public_pem, private_pem })
    }

    pub fn sign(&self, msg: &[u8]) -> Result<String, String> {
        self.signer.sign(msg).map(|s| B64.encode(s)).map_err(|e| format!("signing failed: {e}"))
    }
}

fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn push_manifest(access: &Access, reference: &Reference, layers: Vec<ImageLayer>, config_data: &[u8]) -> Result<String, String> {
    let client = access.oci_client(reference.registry());
    let config = Config::oci_v1(config_data.to_vec(), None);
    let manifest = OciImageManifest::build(&layers, &config, None);
    client.store_auth_if_needed(reference.resolve_registry(), &access.oci_auth()).await;
    for (layer, descriptor) in layers.iter().zip(&manifest.layers) {
        client.push_blob(reference, layer.data.clone(), &descriptor.digest).await.map_err(|e| format!("push to {reference} failed: {e}"))?;
    }
    client.push_blob(reference, config.data.clone(), &manifest.config.digest).await.map_err(|e| format!("push to {reference} failed: {e}"))?;
    // The manifest is sent as plain JSON: `oci-client`'s canonical form leaves control characters
    // in strings unescaped, which registries reject when an annotation holds a PEM certificate.
    let body = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let content_type = oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.parse().map_err(|e| format!("{e}"))?;
    client.push_manifest_raw(reference, body, content_type).await.map_err(|e| format!("push to {reference} failed: {e}"))?;
    client.fetch_manifest_digest(reference, &access.oci_auth()).await.map_err(|e| format!("cannot read the digest of {reference}: {e}"))
}

/// Pushes a one-layer image with the given content and returns its manifest digest.
pub async fn push_image(access: &Access, registry: &str, repository: &str, tag: &str, content: &[u8]) -> Result<String, String> {
    let reference = Reference::with_tag(registry.to_owned(), repository.to_owned(), tag.to_owned());
    let layer = ImageLayer::new(content.to_vec(), "application/vnd.oci.image.layer.v1.tar".to_owned(), None);
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256_digest(content)]}});
    push_manifest(access, &reference, vec![layer], config.to_string().as_bytes()).await
}

/// The simple-signing payload cosign signs for an image digest, with optional annotations.
pub fn payload(registry: &str, repository: &str, digest: &str, annotations: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let reference = OciReference::with_digest(registry.to_owned(), repository.to_owned(), digest.to_owned());
    let mut ss = SimpleSigning::new(&reference, digest);
    if !annotations.is_empty() {
        let extra = annotations.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        ss.optional = Some(Optional { creator: None, timestamp: None, extra });
    }
    serde_json::to_vec(&ss).map_err(|e| e.to_string())
}

/// One signature to push: the payload, its base64 signature and optional keyless material.
pub struct SignatureSpec {
    pub payload: Vec<u8>,
    pub signature: String,
    pub certificate: Option<String>,
    pub chain: Option<String>,
    pub bundle: Option<String>,
}

/// Pushes signatures to the image's `.sig` tag (replacing what was there).
pub async fn push_signatures(access: &Access, registry: &str, repository: &str, digest: &str, sigs: Vec<SignatureSpec>) -> Result<(), String> {
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let reference = Reference::with_tag(registry.to_owned(), repository.to_owned(), tag);
    let layers = sigs
        .into_iter()
        .map(|s| {
            let mut annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), s.signature)]);
            if let Some(c) = s.certificate {
                annotations.insert(CERT_ANNOTATION.to_owned(), c);
            }
            if let Some(c) = s.chain {
                annotations.insert(CHAIN_ANNOTATION.to_owned(), c);
            }
            if let Some(b) = s.bundle {
                annotations.insert(BUNDLE_ANNOTATION.to_owned(), b);
            }
            ImageLayer::new(s.payload, SIMPLE_SIGNING_MEDIA_TYPE.to_owned(), Some(annotations))
        })
        .collect();
    push_manifest(access, &reference, layers, b"{}").await.map(|_| ())
}

/// Signs an image digest with each key and pushes the signatures.
pub async fn sign(access: &Access, registry: &str, repository: &str, digest: &str, keys: &[&KeyPair], annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let payload = payload(registry, repository, digest, annotations)?;
    let mut sigs = Vec::new();
    for key in keys {
        sigs.push(SignatureSpec { payload: payload.clone(), signature: key.sign(&payload)?, certificate: None, chain: None, bundle: None });
    }
    push_signatures(access, registry, repository, digest, sigs).await
}

/// A Rekor bundle (`SignedEntryTimestamp` + payload) for a signature, signed by a local Rekor
/// key: what a transparency log would return, made offline for tests.
pub fn rekor_bundle(rekor: &KeyPair, signature: &str, integrated_time: i64) -> Result<String, String> {
    let der = pem_to_der(&rekor.public_pem).ok_or("invalid Rekor public key PEM")?;
    let log_id = rekor_log_id(&der);
    let body = B64.encode(json!({"kind": "hashedrekord", "apiVersion": "0.0.1", "spec": {"signature": {"content": signature}}}).to_string());
    // RFC 8785 canonical form: keys sorted, no whitespace; these values need no escaping.
    let canonical = format!(r#"{{"body":"{body}","integratedTime":{integrated_time},"logID":"{log_id}","logIndex":1}}"#);
    let set = rekor.sign(canonical.as_bytes())?;
    Ok(json!({"SignedEntryTimestamp": set, "Payload": {"body": body, "integratedTime": integrated_time, "logIndex": 1, "logID": log_id}}).to_string())
}

/// What a keyless signature is made of: the certificate and its key, and the local Rekor key
/// that signs the bundle recording the signature at `integrated_time` (Unix seconds).
pub struct KeylessSigner<'a> {
    pub leaf: &'a KeyPair,
    pub cert_pem: &'a str,
    pub rekor: &'a KeyPair,
    pub integrated_time: i64,
}

/// Signs an image digest keyless-style: the signature is made with the certificate's key, and
/// carries the certificate and a Rekor bundle.
pub async fn sign_keyless(access: &Access, registry: &str, repository: &str, digest: &str, signer: &KeylessSigner<'_>) -> Result<(), String> {
    let payload = payload(registry, repository, digest, &BTreeMap::new())?;
    let signature = signer.leaf.sign(&payload)?;
    let bundle = rekor_bundle(signer.rekor, &signature, signer.integrated_time)?;
    let spec = SignatureSpec { payload, signature, certificate: Some(signer.cert_pem.to_owned()), chain: None, bundle: Some(bundle) };
    push_signatures(access, registry, repository, digest, vec![spec]).await
}

/// An in-toto statement about an image digest.
pub fn statement(repository: &str, digest: &str, predicate_type: &str, predicate: &Value) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": repository, "digest": {"sha256": hex}}],
        "predicate": predicate,
    })
}

/// Pushes attestations (DSSE envelopes signed with `key`) to the image's `.att` tag.
pub async fn attest(access: &Access, registry: &str, repository: &str, digest: &str, key: &KeyPair, statements: &[Value]) -> Result<(), String> {
    let tag = format!("{}.att", digest.replace(':', "-"));
    let reference = Reference::with_tag(registry.to_owned(), repository.to_owned(), tag);
    let mut layers = Vec::new();
    for st in statements {
        let payload = serde_json::to_vec(st).map_err(|e| e.to_string())?;
        let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload))?;
        let envelope = json!({"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": B64.encode(&payload), "signatures": [{"keyid": "", "sig": sig}]});
        let predicate_type = st.get("predicateType").and_then(Value::as_str).unwrap_or_default().to_owned();
        let annotations = BTreeMap::from([("predicateType".to_owned(), predicate_type)]);
        layers.push(ImageLayer::new(envelope.to_string().into_bytes(), DSSE_MEDIA_TYPE.to_owned(), Some(annotations)));
    }
    push_manifest(access, &reference, layers, b"{}").await.map(|_| ())
}

/// Runs one of this module's async operations to completion on a small runtime of its own, for
/// synchronous callers such as the command line.
pub fn block_on<F: std::future::Future>(work: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start a runtime: {e}"))?;
    Ok(runtime.block_on(work))
}
