//! Policies and compiled bundles as OCI artifacts, and their cosign signatures.
//!
//! Two artifact forms are pushed and pulled:
//! - **Kyverno policies**, the way `kyverno oci push` writes them: an OCI image manifest whose
//!   config has the media type [`KYVERNO_CONFIG_MEDIA_TYPE`] and which has one layer per policy
//!   ([`KYVERNO_POLICY_LAYER_MEDIA_TYPE`], the policy's YAML) annotated with the policy's kind,
//!   name and apiVersion. Kyverno can pull what Palisade pushes, and the other way round.
//! - **A compiled bundle** (`palisade compile` output): one layer of media type
//!   [`BUNDLE_MEDIA_TYPE`] holding the bundle file byte for byte, and a small JSON config
//!   ([`BUNDLE_CONFIG_MEDIA_TYPE`]) naming the producer and the bundle's content digest.
//!
//! Signatures use cosign's key-based format (what `cosign sign --key --tlog-upload=false` pushes;
//! not checked against the cosign binary here, which Debian does not package): a manifest at the
//! tag `sha256-<hex>.sig` whose layers are
//! simple-signing payloads naming the signed manifest digest, with the base64 signature in the
//! `dev.cosignproject.cosign/signature` annotation. A bundle file outside a registry is signed
//! like `cosign sign-blob`: a base64 signature of the file's bytes, kept beside it as `FILE.sig`.
//!
//! Palisade never contacts a transparency log: a bundle signature is trusted when it verifies
//! with the configured public key and names the digest that was pulled. Every registry round
//! trip runs under a deadline; plain HTTP is used only when the caller asks for it.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sigstore::cosign::payload::simple_signing::SimpleSigning;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::{Signature, SigningScheme};
/// The key types callers hold, re-exported so that they need no `sigstore` dependency.
pub use sigstore::crypto::{CosignVerificationKey, SigStoreSigner};

use crate::images::sign::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, payload};

/// The config media type of a Kyverno policy image.
pub const KYVERNO_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.kyverno.config.v1+json";
/// The media type of one policy layer of a Kyverno policy image (the policy as YAML).
pub const KYVERNO_POLICY_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.kyverno.policy.layer.v1+yaml";
/// Layer annotations Kyverno writes for each policy.
pub const ANNOTATION_KIND: &str = "io.kyverno.image.kind";
pub const ANNOTATION_NAME: &str = "io.kyverno.image.name";
pub const ANNOTATION_API_VERSION: &str = "io.kyverno.image.apiVersion";
/// The layer media type of a compiled Palisade bundle (the `palisade compile` file, unchanged).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.palisade.bundle.v1";
/// The config media type of a bundle artifact: JSON with `producer` and `digest`.
pub const BUNDLE_CONFIG_MEDIA_TYPE: &str = "application/vnd.palisade.bundle.config.v1+json";
/// Manifests, signatures and layers larger than this are refused (a bundle is capped at 256 MiB
/// by its own header; a policy image is a few kilobytes).
const MAX_ARTIFACT_BYTES: u64 = 256 << 20;

/// Registry credentials.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    Anonymous,
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Auth {
    // Passwords never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

impl Auth {
    fn to_registry_auth(&self) -> RegistryAuth {
        match self {
            Auth::Anonymous => RegistryAuth::Anonymous,
            Auth::Basic { username, password } => RegistryAuth::Basic(username.clone(), password.clone()),
        }
    }
}

/// How to reach a registry.
#[derive(Clone, Debug)]
pub struct Options {
    pub auth: Auth,
    /// Plain HTTP (and unverified certificates) for the reference's registry. Only on request.
    pub insecure: bool,
    /// The deadline for one whole operation (push, pull, sign, verify).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { auth: Auth::Anonymous, insecure: false, timeout: Duration::from_secs(60) }
    }
}

/// One policy layer of a Kyverno policy image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLayer {
    pub kind: String,
    pub name: String,
    pub api_version: String,
    pub yaml: Vec<u8>,
}

/// What an OCI reference holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    Policies(Vec<PolicyLayer>),
    /// The bundle file's bytes.
    Bundle(Vec<u8>),
}

/// A pulled artifact and the manifest digest it was pulled at.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub artifact: Artifact,
    pub digest: String,
}

/// Parses `[oci://]registry/repository[:tag][@digest]`.
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    bare.parse::<Reference>().map_err(|e| format!("invalid OCI reference {text:?}: {e}"))
}

/// The hex SHA-256 digest of bytes, as `sha256:<hex>`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn client(reference: &Reference, opts: &Options) -> oci_client::Client {
    let registry = reference.resolve_registry().to_owned();
    oci_client::Client::new(ClientConfig {
        protocol: if opts.insecure { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https },
        accept_invalid_certificates: opts.insecure,
        connect_timeout: Some(Duration::from_secs(10).min(opts.timeout)),
        read_timeout: Some(opts.timeout),
        ..Default::default()
    })
}

/// Says what went wrong talking to a registry, naming it, and separating "cannot reach" from
/// "answered with an error".
fn describe(reference: &Reference, what: &str, e: &OciDistributionError) -> String {
    let registry = reference.registry();
    if let OciDistributionError::RequestError(re) = e {
        // The innermost cause ("Connection refused", "deadline has elapsed") is the useful part.
        let mut cause: &dyn std::error::Error = re;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        if re.is_connect() || re.is_timeout() {
            return format!("cannot reach the registry {registry} to {what} {}: {cause}", reference.whole());
        }
        return format!("cannot {what} {}: {e}: {cause}", reference.whole());
    }
    if matches!(e, OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. }) {
        return format!("the registry {registry} refused the credentials to {what} {}: {e}", reference.whole());
    }
    format!("cannot {what} {}: {e}", reference.whole())
}

async fn deadline<T>(opts: &Options, what: String, fut: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(opts.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("{what}: no answer within {} s", opts.timeout.as_secs())),
    }
}

/// Pushes a manifest built from the layers and config. The manifest is sent as plain JSON (see
/// `images::sign`: annotations may hold control characters that a canonical encoder leaves
/// unescaped). Returns the manifest digest.
async fn push_manifest(
    client: &oci_client::Client,
    reference: &Reference,
    opts: &Options,
    layers: &[ImageLayer],
    config: &Config,
    annotations: Option<BTreeMap<String, String>>,
) -> Result<String, String> {
    let auth = opts.auth.to_registry_auth();
    let manifest = OciImageManifest::build(layers, config, annotations);
    client
        .auth(reference, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| describe(reference, "push to", &e))?;
    for (layer, descriptor) in layers.iter().zip(&manifest.layers) {
        client.push_blob(reference, layer.data.clone(), &descriptor.digest).await.map_err(|e| describe(reference, "push to", &e))?;
    }
    client.push_blob(reference, config.data.clone(), &manifest.config.digest).await.map_err(|e| describe(reference, "push to", &e))?;
    let body = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let digest = sha256_digest(&body);
    let content_type = oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.parse().map_err(|e| format!("{e}"))?;
    client.push_manifest_raw(reference, body, content_type).await.map_err(|e| describe(reference, "push to", &e))?;
    Ok(digest)
}

/// Pushes policies or a bundle to a reference; returns the manifest digest.
pub async fn push(reference: &Reference, artifact: &Artifact, opts: &Options) -> Result<String, String> {
    let what = format!("pushing {}", reference.whole());
    deadline(opts, what, async {
        let client = client(reference, opts);
        match artifact {
            Artifact::Policies(policies) => {
                if policies.is_empty() {
                    return Err("no policies to push".to_owned());
                }
                let layers: Vec<ImageLayer> = policies
                    .iter()
                    .map(|p| {
                        let annotations = BTreeMap::from([
                            (ANNOTATION_KIND.to_owned(), p.kind.clone()),
                            (ANNOTATION_NAME.to_owned(), p.name.clone()),
                            (ANNOTATION_API_VERSION.to_owned(), p.api_version.clone()),
                        ]);
                        ImageLayer::new(p.yaml.clone(), KYVERNO_POLICY_LAYER_MEDIA_TYPE.to_owned(), Some(annotations))
                    })
                    .collect();
                let config = Config::new(b"{}".to_vec(), KYVERNO_CONFIG_MEDIA_TYPE.to_owned(), None);
                push_manifest(&client, reference, opts, &layers, &config, None).await
            }
            Artifact::Bundle(bytes) => {
                let layer_annotations = BTreeMap::from([("org.opencontainers.image.title".to_owned(), "bundle.plb".to_owned())]);
                let layers = [ImageLayer::new(bytes.clone(), BUNDLE_MEDIA_TYPE.to_owned(), Some(layer_annotations))];
                let config_json = json!({"producer": format!("palisade {}", env!("CARGO_PKG_VERSION")), "digest": sha256_digest(bytes)});
                let config = Config::new(config_json.to_string().into_bytes(), BUNDLE_CONFIG_MEDIA_TYPE.to_owned(), None);
                push_manifest(&client, reference, opts, &layers, &config, None).await
            }
        }
    })
    .await
}

/// Resolves a reference to its manifest digest (one HEAD request; none for a pinned reference).
pub async fn resolve(reference: &Reference, opts: &Options) -> Result<String, String> {
    if let Some(d) = reference.digest() {
        return Ok(d.to_owned());
    }
    let what = format!("resolving {}", reference.whole());
    deadline(opts, what, async {
        let client = client(reference, opts);
        client.fetch_manifest_digest(reference, &opts.auth.to_registry_auth()).await.map_err(|e| describe(reference, "resolve", &e))
    })
    .await
}

/// Pulls the image manifest at a reference (checked against the digest the registry names and
/// the one in the reference, by `oci-client`).
async fn pull_manifest(client: &oci_client::Client, reference: &Reference, opts: &Options) -> Result<(OciImageManifest, String), String> {
    client
        .auth(reference, &opts.auth.to_registry_auth(), oci_client::RegistryOperation::Pull)
        .await
        .map_err(|e| describe(reference, "pull", &e))?;
    let (manifest, digest) = client.pull_manifest(reference, &opts.auth.to_registry_auth()).await.map_err(|e| describe(reference, "pull", &e))?;
    match manifest {
        OciManifest::Image(m) => Ok((m, digest)),
        OciManifest::ImageIndex(_) => Err(format!("{} is an image index, not a policy or bundle artifact", reference.whole())),
    }
}

/// Pulls one blob; `oci-client` checks its content against the descriptor's digest, so a blob
/// changed in the registry's storage is an error here.
async fn pull_blob(client: &oci_client::Client, reference: &Reference, descriptor: &oci_client::manifest::OciDescriptor) -> Result<Vec<u8>, String> {
    if descriptor.size < 0 || descriptor.size as u64 > MAX_ARTIFACT_BYTES {
        return Err(format!("layer {} of {} is {} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit", descriptor.digest, reference.whole(), descriptor.size));
    }
    // The registry may send more than the descriptor says; never hold more than that.
    let mut writer = BoundedWriter { buf: Vec::new(), limit: descriptor.size as usize };
    client.pull_blob(reference, descriptor, &mut writer).await.map_err(|e| describe(reference, "pull", &e))?;
    let out = writer.buf;
    if out.len() as i64 != descriptor.size {
        return Err(format!("layer {} of {} has {} bytes, the manifest says {}", descriptor.digest, reference.whole(), out.len(), descriptor.size));
    }
    Ok(out)
}

/// An in-memory blob sink that refuses bytes past a limit.
struct BoundedWriter {
    buf: Vec<u8>,
    limit: usize,
}

impl tokio::io::AsyncWrite for BoundedWriter {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, data: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            let message = format!("the blob is larger than the {} bytes its descriptor gives", self.limit);
            return std::task::Poll::Ready(Err(std::io::Error::other(message)));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Pulls policies or a bundle. With `digest` given, pulls exactly that manifest (what a caller
/// that verified a signature for it wants); otherwise the reference as written.
pub async fn pull(reference: &Reference, digest: Option<&str>, opts: &Options) -> Result<Pulled, String> {
    let what = format!("pulling {}", reference.whole());
    deadline(opts, what, async {
        let client = client(reference, opts);
        let pinned = match digest {
            Some(d) => reference.clone_with_digest(d.to_owned()),
            None => reference.clone(),
        };
        let (manifest, digest) = pull_manifest(&client, &pinned, opts).await?;
        let artifact = match manifest.config.media_type.as_str() {
            KYVERNO_CONFIG_MEDIA_TYPE => {
                let mut policies = Vec::new();
                for layer in &manifest.layers {
                    // Kyverno skips layers of other media types; so does Palisade.
                    if layer.media_type != KYVERNO_POLICY_LAYER_MEDIA_TYPE {
                        continue;
                    }
                    let yaml = pull_blob(&client, &pinned, layer).await?;
                    let note = |k: &str| layer.annotations.as_ref().and_then(|a| a.get(k)).cloned().unwrap_or_default();
                    policies.push(PolicyLayer { kind: note(ANNOTATION_KIND), name: note(ANNOTATION_NAME), api_version: note(ANNOTATION_API_VERSION), yaml });
                }
                if policies.is_empty() {
                    return Err(format!("{} holds no policy layers ({KYVERNO_POLICY_LAYER_MEDIA_TYPE})", reference.whole()));
                }
                Artifact::Policies(policies)
            }
            BUNDLE_CONFIG_MEDIA_TYPE => {
                let mut bundles = manifest.layers.iter().filter(|l| l.media_type == BUNDLE_MEDIA_TYPE);
                let (Some(layer), None) = (bundles.next(), bundles.next()) else {
                    return Err(format!("{} must hold exactly one {BUNDLE_MEDIA_TYPE} layer", reference.whole()));
                };
                Artifact::Bundle(pull_blob(&client, &pinned, layer).await?)
            }
            other => {
                return Err(format!(
                    "{} is not a policy artifact: its config media type is {other:?}, expected {KYVERNO_CONFIG_MEDIA_TYPE} (policies) or {BUNDLE_CONFIG_MEDIA_TYPE} (a Palisade bundle)",
                    reference.whole()
                ));
            }
        };
        Ok(Pulled { artifact, digest })
    })
    .await
}

/// The cosign signature tag of a manifest digest.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Signs the manifest a reference points at (resolved to its digest first) and pushes the
/// cosign signature. Other signatures already there are kept, as cosign keeps them.
pub async fn sign(reference: &Reference, signer: &SigStoreSigner, opts: &Options) -> Result<String, String> {
    let digest = resolve(reference, opts).await?;
    let what = format!("signing {}", reference.whole());
    deadline(opts, what, async {
        let client = client(reference, opts);
        let sig_ref = Reference::with_tag(reference.registry().to_owned(), reference.repository().to_owned(), signature_tag(&digest));
        let payload = payload(reference.registry(), reference.repository(), &digest, &BTreeMap::new())?;
        let signature = B64.encode(signer.sign(&payload).map_err(|e| format!("signing failed: {e}"))?);
        let mut layers = existing_signatures(&client, &sig_ref, opts).await?;
        layers.retain(|l| l.data != payload || l.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) != Some(&signature));
        let annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), signature)]);
        layers.push(ImageLayer::new(payload, SIMPLE_SIGNING_MEDIA_TYPE.to_owned(), Some(annotations)));
        let config = Config::oci_v1(b"{}".to_vec(), None);
        push_manifest(&client, &sig_ref, opts, &layers, &config, None).await?;
        Ok(digest)
    })
    .await
}

/// The signature layers already at a `.sig` tag (none when the tag does not exist).
async fn existing_signatures(client: &oci_client::Client, sig_ref: &Reference, opts: &Options) -> Result<Vec<ImageLayer>, String> {
    let (manifest, _) = match pull_manifest(client, sig_ref, opts).await {
        Ok(m) => m,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut layers = Vec::new();
    for d in manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
        let data = pull_blob(client, sig_ref, d).await?;
        layers.push(ImageLayer::new(data, d.media_type.clone(), d.annotations.clone()));
    }
    Ok(layers)
}

fn is_not_found(message: &str) -> bool {
    message.contains("MANIFEST_UNKNOWN") || message.contains("manifest unknown") || message.contains("Not Found") || message.contains("not found")
}

/// Checks that the manifest `digest` of `reference` carries a cosign signature made with `key`.
/// The error says why not: no signature at all, or none that verifies with this key.
pub async fn verify(reference: &Reference, digest: &str, key: &CosignVerificationKey, opts: &Options) -> Result<(), String> {
    let what = format!("verifying {}", reference.whole());
    deadline(opts, what, async {
        let client = client(reference, opts);
        let sig_ref = Reference::with_tag(reference.registry().to_owned(), reference.repository().to_owned(), signature_tag(digest));
        let (manifest, _) = match pull_manifest(&client, &sig_ref, opts).await {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => {
                return Err(format!("{}@{digest} is not signed: no signature at {}", reference_name(reference), sig_ref.whole()));
            }
            Err(e) => return Err(e),
        };
        let mut reasons = Vec::new();
        for layer in manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
            let Some(sig) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else { continue };
            let data = pull_blob(&client, &sig_ref, layer).await?;
            if key.verify_signature(Signature::Base64Encoded(sig.as_bytes()), &data).is_err() {
                reasons.push("a signature does not verify with the given key".to_owned());
                continue;
            }
            // The payload is trusted now; it must name the manifest that was pulled.
            match serde_json::from_slice::<SimpleSigning>(&data) {
                Ok(ss) if ss.critical.image.docker_manifest_digest == digest => return Ok(()),
                Ok(ss) => reasons.push(format!("a signature names {} instead", ss.critical.image.docker_manifest_digest)),
                Err(e) => reasons.push(format!("a signed payload is not a cosign simple-signing payload: {e}")),
            }
        }
        reasons.sort();
        reasons.dedup();
        if reasons.is_empty() {
            return Err(format!("{}@{digest} is not signed: {} holds no cosign signatures", reference_name(reference), sig_ref.whole()));
        }
        Err(format!("{}@{digest} has no valid signature for the given key: {}", reference_name(reference), reasons.join("; ")))
    })
    .await
}

fn reference_name(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// Signs bytes like `cosign sign-blob`: the base64 signature of the bytes.
pub fn sign_blob(signer: &SigStoreSigner, data: &[u8]) -> Result<String, String> {
    signer.sign(data).map(|s| B64.encode(s)).map_err(|e| format!("signing failed: {e}"))
}

/// Verifies a `sign_blob` (or `cosign sign-blob`) signature.
pub fn verify_blob(key: &CosignVerificationKey, data: &[u8], signature_b64: &str) -> Result<(), String> {
    let sig = signature_b64.trim();
    if B64.decode(sig).is_err() {
        return Err("the signature is not base64 (expected the output of `palisade sign` or `cosign sign-blob`)".to_owned());
    }
    key.verify_signature(Signature::Base64Encoded(sig.as_bytes()), data)
        .map_err(|_| "the signature does not verify with the given key: the bundle was changed after signing, or it was signed with another key".to_owned())
}

/// Loads a signing key: a PKCS#8 PEM (`PRIVATE KEY`, as `palisade keygen` writes without a
/// password), or cosign's encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED
/// COSIGN PRIVATE KEY`, as `cosign generate-key-pair` writes) with its password.
pub fn load_signer(pem: &[u8], password: &[u8]) -> Result<SigStoreSigner, String> {
    let text = String::from_utf8_lossy(pem);
    let pair = if text.contains("ENCRYPTED") {
        SigStoreKeyPair::from_encrypted_pem(pem, password).map_err(|e| format!("cannot decrypt the private key (is the password right? cosign reads it from COSIGN_PASSWORD): {e}"))?
    } else {
        SigStoreKeyPair::from_pem(pem).map_err(|e| format!("cannot read the private key (expected a PKCS#8 PEM or a cosign key): {e}"))?
    };
    let schemes = [SigningScheme::ECDSA_P256_SHA256_ASN1, SigningScheme::ECDSA_P384_SHA384_ASN1, SigningScheme::ED25519];
    schemes
        .iter()
        .find_map(|s| pair.to_sigstore_signer(s).ok())
        .ok_or_else(|| "the private key is not ECDSA P-256, P-384 or Ed25519".to_owned())
}

/// Loads a verification key from a PEM public key.
pub fn load_public_key(pem: &[u8]) -> Result<CosignVerificationKey, String> {
    CosignVerificationKey::try_from_pem(pem).map_err(|e| format!("cannot read the public key (expected a PEM PUBLIC KEY): {e}"))
}

/// A new ECDSA P-256 key pair: `(private PEM, public PEM)`. With a password the private key is
/// in cosign's encrypted format (readable by cosign); without, a plain PKCS#8 PEM.
pub fn generate_key_pair(password: Option<&[u8]>) -> Result<(String, String), String> {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().map_err(|e| format!("cannot create a key: {e}"))?;
    let pair = signer.to_sigstore_keypair().map_err(|e| e.to_string())?;
    let public = pair.public_key_to_pem().map_err(|e| e.to_string())?;
    let private = match password {
        Some(p) => pair.private_key_to_encrypted_pem(p).map_err(|e| e.to_string())?.to_string(),
        None => pair.private_key_to_pem().map_err(|e| e.to_string())?.to_string(),
    };
    Ok((private, public))
}

/// Credentials for a registry from a Docker config file (`~/.docker/config.json`, or a
/// Kubernetes `.dockerconfigjson` secret): `auths.<registry>.auth` (base64 `user:password`) or
/// `username`/`password`. Credential helpers are not run.
pub fn docker_config_auth(config_json: &str, registry: &str) -> Result<Option<Auth>, String> {
    let config: Value = serde_json::from_str(config_json).map_err(|e| format!("the Docker config is not JSON: {e}"))?;
    let Some(auths) = config.get("auths").and_then(Value::as_object) else { return Ok(None) };
    // Docker Hub is written several ways; other registries as `host[:port]`, maybe with a scheme.
    let hub = matches!(registry, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let entry = auths.iter().find(|(k, _)| {
        let host = k.trim_start_matches("https://").trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or_default();
        host == registry || (hub && matches!(host, "docker.io" | "index.docker.io" | "registry-1.docker.io"))
    });
    let Some((_, entry)) = entry else { return Ok(None) };
    if let Some(encoded) = entry.get("auth").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        let decoded = B64.decode(encoded.trim()).map_err(|_| format!("the Docker config entry for {registry} has an auth field that is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| format!("the Docker config entry for {registry} has an auth field that is not UTF-8"))?;
        let (user, pass) = text.split_once(':').ok_or_else(|| format!("the Docker config entry for {registry} has an auth field without user:password"))?;
        return Ok(Some(Auth::Basic { username: user.to_owned(), password: pass.to_owned() }));
    }
    match (entry.get("username").and_then(Value::as_str), entry.get("password").and_then(Value::as_str)) {
        (Some(u), Some(p)) => Ok(Some(Auth::Basic { username: u.to_owned(), password: p.to_owned() })),
        _ => Ok(None),
    }
}

/// Blocking access for callers outside an async runtime (the CLI, and the webhook's loader,
/// which runs on a blocking thread): a small runtime of its own, like the image verifier's.
pub struct Blocking {
    runtime: tokio::runtime::Runtime,
}

impl Blocking {
    pub fn new() -> Result<Blocking, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the registry client runtime: {e}"))?;
        Ok(Blocking { runtime })
    }

    pub fn push(&self, reference: &Reference, artifact: &Artifact, opts: &Options) -> Result<String, String> {
        self.runtime.block_on(push(reference, artifact, opts))
    }

    pub fn pull(&self, reference: &Reference, digest: Option<&str>, opts: &Options) -> Result<Pulled, String> {
        self.runtime.block_on(pull(reference, digest, opts))
    }

    pub fn resolve(&self, reference: &Reference, opts: &Options) -> Result<String, String> {
        self.runtime.block_on(resolve(reference, opts))
    }

    pub fn sign(&self, reference: &Reference, signer: &SigStoreSigner, opts: &Options) -> Result<String, String> {
        self.runtime.block_on(sign(reference, signer, opts))
    }

    pub fn verify(&self, reference: &Reference, digest: &str, key: &CosignVerificationKey, opts: &Options) -> Result<(), String> {
        self.runtime.block_on(verify(reference, digest, key, opts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn docker_config_entries() {
        let config = r#"{"auths": {
            "127.0.0.1:5000": {"auth": "dXNlcjpwYTpzcw=="},
            "https://index.docker.io/v1/": {"username": "hub", "password": "secret"},
            "broken.example": {"auth": "%%%"}
        }}"#;
        let local = docker_config_auth(config, "127.0.0.1:5000").unwrap();
        assert_eq!(format!("{local:?}"), "Some(Basic(user, ***))");
        let Some(Auth::Basic { password, .. }) = local else { panic!() };
        assert_eq!(password, "pa:ss", "only the first colon separates user and password");
        assert_eq!(format!("{:?}", docker_config_auth(config, "docker.io").unwrap()), "Some(Basic(hub, ***))");
        assert!(docker_config_auth(config, "ghcr.io").unwrap().is_none());
        assert!(docker_config_auth(config, "broken.example").unwrap_err().contains("not base64"));
        assert!(docker_config_auth("not json", "x").unwrap_err().contains("not JSON"));
        assert!(docker_config_auth("{}", "x").unwrap().is_none());
    }

    #[test]
    fn blob_signatures_round_trip_and_refuse_changes() {
        let (private, public) = generate_key_pair(None).unwrap();
        assert!(private.contains("BEGIN PRIVATE KEY"));
        let signer = load_signer(private.as_bytes(), b"").unwrap();
        let key = load_public_key(public.as_bytes()).unwrap();
        let sig = sign_blob(&signer, b"bundle bytes").unwrap();
        verify_blob(&key, b"bundle bytes", &sig).unwrap();
        assert!(verify_blob(&key, b"bundle bytez", &sig).unwrap_err().contains("does not verify"));
        assert!(verify_blob(&key, b"bundle bytes", "***").unwrap_err().contains("not base64"));
        let (_, other) = generate_key_pair(None).unwrap();
        assert!(verify_blob(&load_public_key(other.as_bytes()).unwrap(), b"bundle bytes", &sig).is_err());
    }

    #[test]
    fn encrypted_keys_need_their_password() {
        let (private, public) = generate_key_pair(Some(b"pw")).unwrap();
        assert!(private.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{private}");
        assert!(load_signer(private.as_bytes(), b"wrong").unwrap_err().contains("cannot decrypt"));
        let signer = load_signer(private.as_bytes(), b"pw").unwrap();
        let sig = sign_blob(&signer, b"x").unwrap();
        verify_blob(&load_public_key(public.as_bytes()).unwrap(), b"x", &sig).unwrap();
    }

    #[test]
    fn references() {
        let r = parse_reference("oci://127.0.0.1:5000/team/policies:v1").unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "team/policies", Some("v1")));
        assert!(parse_reference("oci://registry.example/a b").unwrap_err().contains("invalid OCI reference"));
        assert!(parse_reference("").unwrap_err().contains("invalid OCI reference"));
        assert_eq!(signature_tag("sha256:abc"), "sha256-abc.sig");
    }
}
