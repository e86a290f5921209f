//! Cosign verification against an OCI registry, with `sigstore` and `oci-client`.
//!
//! Signatures are read from the cosign `sha256-<digest>.sig` tag (and the OCI referrers form,
//! which `sigstore` reads as well); attestations from the `sha256-<digest>.att` tag, whose layers
//! are DSSE envelopes around in-toto statements. Key-based entries verify offline. Keyless
//! entries need their own roots and a Rekor public key: a certificate is trusted only when it
//! chains to the roots and its signature carries a Rekor bundle signed by that key, and Palisade
//! never contacts the public Sigstore services.
//!
//! Errors are split the way Kyverno splits them: a registry that cannot be reached is an
//! [`VerifyError::Unreachable`] (the rule errors and failurePolicy decides), anything else is a
//! [`VerifyError::Failed`] with Kyverno's message text.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::crypto::{CosignVerificationKey, Signature};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use sigstore::trust::ManualTrustRoot;

use palisade_compiler::ir::images::{Attestor, AttestorKind, Keyless, Keys, Rekor, SerdeRegex};
use palisade_stdlib::wildcard;

use super::reference::ImageInfo;

/// The media type of a cosign attestation layer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The registry could not be reached (connection refused, timeout): a rule error.
    Unreachable(String),
    /// Verification ran and did not succeed: a rule failure with this message.
    Failed(String),
}

impl VerifyError {
    pub fn message(&self) -> &str {
        match self {
            VerifyError::Unreachable(m) | VerifyError::Failed(m) => m,
        }
    }
}

/// How to reach one registry: plain HTTP (and unchecked certificates) only for a registry an
/// entry or the command line marks insecure, and basic credentials when some are configured.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub insecure: bool,
    /// `(username, password)` for the registry, from a Docker config file.
    pub basic: Option<(String, String)>,
}

impl Access {
    pub fn oci_auth(&self) -> RegistryAuth {
        match &self.basic {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    fn sigstore_auth(&self) -> Auth {
        match &self.basic {
            Some((user, password)) => Auth::Basic(user.clone(), password.clone()),
            None => Auth::Anonymous,
        }
    }

    fn oci_config(&self, registry: &str) -> oci_client::client::ClientConfig {
        oci_client::client::ClientConfig {
            protocol: if self.insecure {
                oci_client::client::ClientProtocol::HttpsExcept(vec![registry.to_owned()])
            } else {
                oci_client::client::ClientProtocol::Https
            },
            accept_invalid_certificates: self.insecure,
            ..Default::default()
        }
    }

    fn sigstore_config(&self, registry: &str) -> ClientConfig {
        ClientConfig {
            protocol: if self.insecure { ClientProtocol::HttpsExcept(vec![registry.to_owned()]) } else { ClientProtocol::Https },
            accept_invalid_certificates: self.insecure,
            ..Default::default()
        }
    }

    pub fn oci_client(&self, registry: &str) -> oci_client::Client {
        oci_client::Client::new(self.oci_config(registry))
    }
}

fn classify(image: &str, e: &OciDistributionError) -> VerifyError {
    if let OciDistributionError::RequestError(re) = e && (re.is_connect() || re.is_timeout() || re.is_request()) {
        return VerifyError::Unreachable(format!("failed to verify image {image}: {e}"));
    }
    VerifyError::Failed(format!("failed to verify image {image}: {e}"))
}

fn oci_ref(image: &ImageInfo) -> Reference {
    if image.digest.is_empty() {
        Reference::with_tag(image.registry.clone(), image.path.clone(), image.tag.clone())
    } else {
        Reference::with_digest(image.registry.clone(), image.path.clone(), image.digest.clone())
    }
}

/// Resolves an image to its manifest digest (a HEAD request; no request for a pinned image).
pub async fn resolve_digest(access: &Access, image: &ImageInfo) -> Result<String, VerifyError> {
    resolve_digest_with(&access.oci_client(&image.registry), access, image).await
}

/// [`resolve_digest`] with a client the caller keeps: the verifier keeps one per registry, so a
/// verification answered from the cache costs one HEAD request on an open connection rather
/// than a new client (TLS configuration, connection pool) per request.
pub async fn resolve_digest_with(client: &oci_client::Client, access: &Access, image: &ImageInfo) -> Result<String, VerifyError> {
    if !image.digest.is_empty() {
        return Ok(image.digest.clone());
    }
    client.fetch_manifest_digest(&oci_ref(image), &access.oci_auth()).await.map_err(|e| classify(&image.reference(), &e))
}

/// Decodes the first PEM block of a text into DER bytes.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    B64.decode(body).ok()
}

/// All PEM blocks of a text, as DER.
fn pem_blocks(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN") {
        let tail = rest.get(start..).unwrap_or_default();
        let end = tail.find("-----END").and_then(|e| tail.get(e..).and_then(|t| t.find("\n").map(|n| e + n)).or(Some(tail.len())));
        let Some(end) = end else { break };
        if let Some(der) = tail.get(..end).and_then(pem_to_der) {
            out.push(der);
        }
        rest = tail.get(end..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
    }
    out
}

/// Rekor's log id for a public key: the hex SHA-256 of its DER encoding.
pub fn rekor_log_id(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

fn trust_root(roots: &str, rekor: &Rekor) -> Result<ManualTrustRoot<'static>, String> {
    let fulcio_certs = pem_blocks(roots).into_iter().map(rustls_pki_types::CertificateDer::from).collect();
    let mut rekor_keys = BTreeMap::new();
    if let Some(pubkey) = &rekor.pubkey {
        let der = pem_to_der(pubkey).ok_or_else(|| "failed to load Rekor public keys: invalid PEM".to_owned())?;
        rekor_keys.insert(rekor_log_id(&der), der);
    }
    Ok(ManualTrustRoot { fulcio_certs, rekor_keys, ctfe_keys: BTreeMap::new() })
}

/// Fetches the signature layers of an image digest. `sigstore` checks every layer against the
/// digest, checks Rekor bundles against the given keys and certificates against the roots.
async fn signature_layers(access: &Access, image: &ImageInfo, digest: &str, trust: Option<&ManualTrustRoot<'_>>) -> Result<Vec<SignatureLayer>, VerifyError> {
    let mut builder = ClientBuilder::default().with_oci_client_config(access.sigstore_config(&image.registry));
    if let Some(t) = trust {
        builder = builder.with_trust_repository(t).map_err(|e| VerifyError::Failed(format!("failed to load roots: {e}")))?;
    }
    let mut client = builder.build().map_err(|e| VerifyError::Failed(format!("failed to build the cosign client: {e}")))?;
    let reference = OciReference::with_digest(image.registry.clone(), image.path.clone(), digest.to_owned());
    client.trusted_signature_layers(&access.sigstore_auth(), &reference).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("error sending request") || text.contains("onnect") || text.contains("timed out") {
            VerifyError::Unreachable(format!("failed to verify image {}: {text}", image.reference()))
        } else {
            VerifyError::Failed(format!("failed to verify image {}: {text}", image.reference()))
        }
    })
}

/// The text cosign (through Go's crypto) gives for a signature that does not verify.
fn mismatch_reason(key: &CosignVerificationKey) -> &'static str {
    match key {
        CosignVerificationKey::ED25519(_) => "ed25519: invalid signature",
        CosignVerificationKey::RSA_PSS_SHA256(_) | CosignVerificationKey::RSA_PKCS1_SHA256(_) => "crypto/rsa: verification error",
        _ => "invalid signature when validating ASN.1 encoded signature",
    }
}

/// Loads a policy public key, honouring `signatureAlgorithm` where the key type allows it.
pub fn load_key(keys: &Keys, secrets: &dyn Fn(&str, &str) -> Option<String>) -> Result<CosignVerificationKey, String> {
    let pem = match (&keys.secret, keys.public_keys.trim().is_empty()) {
        (Some((ns, name)), true) => {
            secrets(ns, name).ok_or_else(|| format!("failed to load public key from k8s://{ns}/{name}: secret not found (set it in the values file)"))?
        }
        _ => keys.public_keys.clone(),
    };
    if pem.trim().is_empty() {
        if let Some(kms) = &keys.kms {
            return Err(format!("failed to load public key from {kms}: KMS keys are not supported by Palisade"));
        }
        return Err("failed to load public key from PEM: no key given".to_owned());
    }
    let key = CosignVerificationKey::try_from_pem(pem.as_bytes()).map_err(|e| format!("failed to load public key from PEM: pem to public key: {e}"))?;
    // `sigstore` ties the hash to the key type (SHA-384 for P-384, SHA-512 for P-521, SHA-256
    // otherwise); other combinations are refused rather than verified with the wrong hash.
    let algorithm = keys.signature_algorithm.as_str();
    let key = match (algorithm, &key) {
        ("" | "sha256", _) => key,
        ("sha384", CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_)) | ("sha512", CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_)) => key,
        ("sha224" | "sha384" | "sha512", _) => {
            return Err(format!("signatureAlgorithm {algorithm} is not supported for this key type by Palisade"));
        }
        (other, _) => return Err(format!("invalid signature algorithm provided {other}")),
    };
    Ok(key)
}

/// Checks the tlog requirement of an entry against a layer: the layer must carry a Rekor bundle
/// verified with the entry's Rekor key, unless `ignoreTlog` is set.
fn tlog_ok(rekor: &Rekor, layer: &SignatureLayer) -> Result<(), String> {
    if rekor.ignore_tlog || layer.bundle.is_some() {
        return Ok(());
    }
    if rekor.pubkey.is_none() {
        return Err("transparency log verification needs rekor.pubkey: Palisade does not contact a public Rekor; set rekor.pubkey or rekor.ignoreTlog: true".to_owned());
    }
    Err("signature not found in transparency log".to_owned())
}

fn annotations_ok(layer: &SignatureLayer, wanted: &BTreeMap<String, String>) -> Result<(), String> {
    if wanted.is_empty() {
        return Ok(());
    }
    let got = layer.simple_signing.optional.as_ref().map(|o| o.extra.clone()).unwrap_or_default();
    for (k, v) in wanted {
        let have = got.get(k).map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()));
        if have.as_deref() != Some(v.as_str()) {
            return Err(format!("annotations mismatch: {} does not match expected value {v} for key {k}", have.unwrap_or_default()));
        }
    }
    Ok(())
}

/// Verifies that one attestor entry signed the image digest. The error is the entry's reason,
/// without its path (the caller adds it).
pub async fn verify_signature(
    access: &Access,
    image: &ImageInfo,
    digest: &str,
    entry: &Attestor,
    default_annotations: &BTreeMap<String, String>,
    secrets: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<(), VerifyError> {
    let annotations = if entry.annotations.is_empty() { default_annotations } else { &entry.annotations };
    if entry.repository.is_some() {
        return Err(VerifyError::Failed("signatures in a separate repository are not supported by Palisade yet".to_owned()));
    }
    match &entry.kind {
        AttestorKind::Keys(keys) => {
            let key = load_key(keys, secrets).map_err(VerifyError::Failed)?;
            let trust = trust_root("", &keys.rekor).map_err(VerifyError::Failed)?;
            let layers = signature_layers(access, image, digest, Some(&trust)).await?;
            if layers.is_empty() {
                return Err(VerifyError::Failed("no signatures found".to_owned()));
            }
            let mut reasons = Vec::new();
            for layer in &layers {
                let Some(sig) = &layer.signature else { continue };
                if key.verify_signature(Signature::Base64Encoded(sig.as_bytes()), &layer.raw_data).is_err() {
                    reasons.push(mismatch_reason(&key).to_owned());
                    continue;
                }
                match tlog_ok(&keys.rekor, layer).and_then(|()| annotations_ok(layer, annotations)) {
                    Ok(()) => return Ok(()),
                    Err(r) => reasons.push(r),
                }
            }
            reasons.dedup();
            Err(VerifyError::Failed(format!("no matching signatures: {}", reasons.join("; "))))
        }
        AttestorKind::Certificates(c) => {
            if !c.cert_chain.trim().is_empty() {
                return Err(VerifyError::Failed("certChain validation is not supported by Palisade yet".to_owned()));
            }
            let layers = signature_layers(access, image, digest, None).await?;
            if layers.is_empty() {
                return Err(VerifyError::Failed("no signatures found".to_owned()));
            }
            let cert = cert_pem(&c.cert);
            let mut reasons = Vec::new();
            for layer in &layers {
                let Some(sig) = &layer.signature else { continue };
                match sigstore::cosign::Client::verify_blob(&cert, sig, &layer.raw_data) {
                    Ok(()) => match tlog_ok(&c.rekor, layer).and_then(|()| annotations_ok(layer, annotations)) {
                        Ok(()) => return Ok(()),
                        Err(r) => reasons.push(r),
                    },
                    Err(_) => reasons.push("invalid signature when validating ASN.1 encoded signature".to_owned()),
                }
            }
            reasons.dedup();
            Err(VerifyError::Failed(format!("no matching signatures: {}", reasons.join("; "))))
        }
        AttestorKind::Keyless(k) => verify_keyless(access, image, digest, k, annotations).await,
        AttestorKind::Nested(_) => Err(VerifyError::Failed("nested attestor sets are verified by the caller".to_owned())),
        AttestorKind::Empty => Err(VerifyError::Failed("an attestor entry needs keys, certificates, keyless or attestor".to_owned())),
    }
}

/// A certificate given base64-encoded or as PEM, as PEM text.
fn cert_pem(text: &str) -> String {
    if text.contains("-----BEGIN") {
        return text.to_owned();
    }
    match B64.decode(text.trim()) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
        Err(_) => text.to_owned(),
    }
}

/// Kyverno's reason when the certificate's `field` (subject or issuer), `value`, is not what the
/// attestor asks for: first by its wildcard (`text` as written), then by its regular expression.
fn identity_mismatch(field: &str, value: &str, pattern: Option<&wildcard::Wildcard>, text: &str, regexp: Option<&SerdeRegex>) -> Option<String> {
    let expected = if pattern.is_some_and(|w| !w.matches(value)) {
        text
    } else {
        regexp.filter(|re| !re.0.is_match(value))?.0.as_str()
    };
    Some(format!("{field} mismatch: expected {expected}, received {value}"))
}

async fn verify_keyless(access: &Access, image: &ImageInfo, digest: &str, k: &Keyless, annotations: &BTreeMap<String, String>) -> Result<(), VerifyError> {
    if k.roots.trim().is_empty() {
        return Err(VerifyError::Failed(
            "keyless verification needs roots: Palisade does not fetch the public Fulcio roots; set keyless.roots".to_owned(),
        ));
    }
    if k.rekor.pubkey.is_none() {
        return Err(VerifyError::Failed(
            "keyless verification needs rekor.pubkey: a certificate is trusted only with a Rekor bundle signed by a known key".to_owned(),
        ));
    }
    let trust = trust_root(&k.roots, &k.rekor).map_err(VerifyError::Failed)?;
    if trust.fulcio_certs.is_empty() {
        return Err(VerifyError::Failed("failed to load Root certificates: error creating root cert pool".to_owned()));
    }
    let layers = signature_layers(access, image, digest, Some(&trust)).await?;
    if layers.is_empty() {
        return Err(VerifyError::Failed("no signatures found".to_owned()));
    }
    let mut reasons = Vec::new();
    for layer in &layers {
        let (Some(sig), Some(cert)) = (&layer.signature, &layer.certificate_signature) else {
            reasons.push("certificate not found".to_owned());
            continue;
        };
        if cert.verification_key.verify_signature(Signature::Base64Encoded(sig.as_bytes()), &layer.raw_data).is_err() {
            reasons.push(mismatch_reason(&cert.verification_key).to_owned());
            continue;
        }
        let subject = match &cert.subject {
            sigstore::cosign::signature_layers::CertificateSubject::Email(s) | sigstore::cosign::signature_layers::CertificateSubject::Uri(s) => s.clone(),
        };
        let issuer = cert.issuer.clone().unwrap_or_default();
        let mismatch = identity_mismatch("subject", &subject, k.subject.as_ref(), &k.subject_text, k.subject_regexp.as_ref())
            .or_else(|| identity_mismatch("issuer", &issuer, k.issuer.as_ref(), &k.issuer_text, k.issuer_regexp.as_ref()));
        if let Some(reason) = mismatch {
            reasons.push(reason);
            continue;
        }
        if let Err(r) = extensions_ok(cert, &k.additional_extensions) {
            reasons.push(r);
            continue;
        }
        if let Err(r) = annotations_ok(layer, annotations) {
            reasons.push(r);
            continue;
        }
        return Ok(());
    }
    reasons.dedup();
    // Identity mismatches are reported bare, as Kyverno reports them; others as cosign does.
    if reasons.iter().all(|r| r.contains(" mismatch: ")) {
        return Err(VerifyError::Failed(reasons.join("; ")));
    }
    Err(VerifyError::Failed(format!("no matching signatures: {}", reasons.join("; "))))
}

fn extensions_ok(cert: &sigstore::cosign::signature_layers::CertificateSignature, wanted: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, want) in wanted {
        let got = match key.as_str() {
            "issuer" => cert.issuer.clone(),
            "githubWorkflowTrigger" => cert.github_workflow_trigger.clone(),
            "githubWorkflowSha" => cert.github_workflow_sha.clone(),
            "githubWorkflowName" => cert.github_workflow_name.clone(),
            "githubWorkflowRepository" => cert.github_workflow_repository.clone(),
            "githubWorkflowRef" => cert.github_workflow_ref.clone(),
            other => return Err(format!("invalid certificate extension key {other}")),
        }
        .unwrap_or_default();
        if !wildcard::matches(want, &got) {
            return Err(format!("extension mismatch: expected {want} for key {key}, received {got}"));
        }
    }
    Ok(())
}

/// DSSE's pre-authentication encoding: what an attestation signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Fetches the attestations of an image digest signed by a key entry and returns their decoded
/// in-toto statements (with `type` set from `predicateType`, as Kyverno does). Only statements
/// whose envelope verifies with the key and whose subject names the digest are returned.
pub async fn fetch_attestations(
    access: &Access,
    image: &ImageInfo,
    digest: &str,
    entry: &Attestor,
    secrets: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Vec<Value>, VerifyError> {
    let key = match &entry.kind {
        AttestorKind::Keys(keys) => {
            if !keys.rekor.ignore_tlog && keys.rekor.pubkey.is_none() {
                return Err(VerifyError::Failed(
                    "transparency log verification needs rekor.pubkey: Palisade does not contact a public Rekor; set rekor.pubkey or rekor.ignoreTlog: true".to_owned(),
                ));
            }
            load_key(keys, secrets).map_err(VerifyError::Failed)?
        }
        AttestorKind::Certificates(_) | AttestorKind::Keyless(_) | AttestorKind::Nested(_) => {
            return Err(VerifyError::Failed("attestations are verified with keys only by Palisade so far".to_owned()));
        }
        AttestorKind::Empty => {
            return Err(VerifyError::Failed(
                "attestations without attestors would be checked against the public Sigstore roots, which Palisade does not contact".to_owned(),
            ));
        }
    };
    let client = access.oci_client(&image.registry);
    let tag = format!("{}.att", digest.replace(':', "-"));
    let att_ref = Reference::with_tag(image.registry.clone(), image.path.clone(), tag);
    let data = match client.pull(&att_ref, &access.oci_auth(), vec![DSSE_MEDIA_TYPE]).await {
        Ok(d) => d,
        Err(OciDistributionError::ImageManifestNotFoundError(_)) => return Err(VerifyError::Failed(format!("failed to verify image {}: no matching attestations", image.reference()))),
        Err(e) => {
            let failed = classify(&image.reference(), &e);
            // A missing `.att` tag is the registry's MANIFEST_UNKNOWN: no attestations at all.
            if let VerifyError::Failed(m) = &failed
                && (m.contains("MANIFEST_UNKNOWN") || m.contains("manifest unknown") || m.contains("not found"))
            {
                return Err(VerifyError::Failed(format!("failed to verify image {}: no matching attestations", image.reference())));
            }
            return Err(failed);
        }
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let mut statements = Vec::new();
    for layer in &data.layers {
        let Ok(envelope) = serde_json::from_slice::<Value>(&layer.data) else { continue };
        let payload_type = envelope.get("payloadType").and_then(Value::as_str).unwrap_or_default();
        let Some(payload) = envelope.get("payload").and_then(Value::as_str).and_then(|p| B64.decode(p).ok()) else { continue };
        let signed = envelope.get("signatures").and_then(Value::as_array).into_iter().flatten().any(|s| {
            s.get("sig").and_then(Value::as_str).is_some_and(|sig| key.verify_signature(Signature::Base64Encoded(sig.as_bytes()), &pae(payload_type, &payload)).is_ok())
        });
        if !signed {
            continue;
        }
        let Ok(Value::Object(mut statement)) = serde_json::from_slice::<Value>(&payload) else { continue };
        let names_digest = statement.get("subject").and_then(Value::as_array).into_iter().flatten().any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(hex));
        if !names_digest {
            continue;
        }
        if let Some(t) = statement.get("predicateType").cloned() {
            statement.insert("type".to_owned(), t);
        }
        statements.push(Value::Object(statement));
    }
    if statements.is_empty() {
        return Err(VerifyError::Failed(format!(
            "failed to verify image {}: no matching attestations: {}",
            image.reference(),
            mismatch_reason(&key)
        )));
    }
    Ok(statements)
}
