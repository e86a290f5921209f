//! `palisade serve`: run the HTTPS admission webhook on a bundle (`--bundle`) or on policy files
//! compiled at start (`--policies`), with certificate files or a self-managed certificate.
//!
//! `--bundle` takes a file or an `oci://` reference. With `--bundle-key`, a bundle is loaded only
//! when its cosign signature verifies (the file's `FILE.sig`, or the reference's `.sig` tag for
//! the pulled digest); an OCI reference needs a key unless `--allow-unsigned-bundle` says
//! otherwise. A reference is polled every `--poll-interval-secs`: a new digest is pulled, verified
//! and swapped in, and one that does not verify leaves the serving bundle in place.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use palisade_compiler::bundle::{self, Bundle};
use palisade_runtime::images::{self, Verifier, VerifierConfig};
use palisade_runtime::oci;
use palisade_runtime::webhook::{self, BundleSource, Config, TlsSource, tls::SelfManaged};

#[derive(clap::Args)]
pub struct Args {
    /// A compiled bundle (`palisade compile`) file or `oci://` reference (a bundle or a Kyverno
    /// policy image); reloaded when the file or the reference's digest changes, or on SIGHUP.
    #[arg(long, conflicts_with = "policies", required_unless_present = "policies")]
    bundle: Option<PathBuf>,
    /// Public key (PEM) the bundle must be signed with (`palisade sign` / `palisade oci sign`).
    #[arg(long, requires = "bundle")]
    bundle_key: Option<PathBuf>,
    /// Serve an `oci://` bundle without a signature check.
    #[arg(long, conflicts_with = "bundle_key")]
    allow_unsigned_bundle: bool,
    /// How often an `oci://` bundle reference is checked for a new digest, in seconds (0: never).
    #[arg(long, default_value_t = 60)]
    poll_interval_secs: u64,
    /// Talk plain HTTP to the bundle's registry. Only for local registries.
    #[arg(long)]
    registry_insecure: bool,
    /// Deadline for one registry operation, in seconds.
    #[arg(long, default_value_t = 30)]
    registry_timeout_secs: u64,
    /// Policy files or folders, compiled at start and again when they change or on SIGHUP.
    #[arg(long, num_args = 1..)]
    policies: Vec<PathBuf>,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0:9443")]
    addr: SocketAddr,
    /// PEM certificate chain for TLS.
    #[arg(long, requires = "tls_key", conflicts_with = "self_managed_certs")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Make and rotate a CA and serving certificate in this folder (`ca.crt` is the caBundle).
    #[arg(long, required_unless_present = "tls_cert")]
    self_managed_certs: Option<PathBuf>,
    /// Names the self-managed serving certificate is valid for (DNS names or IP addresses).
    #[arg(long = "cert-name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string(), "palisade.palisade.svc".to_string()])]
    cert_names: Vec<String>,
    /// Validity of the self-managed serving certificate, in seconds (Kyverno: 150 days).
    #[arg(long, default_value_t = 150 * 86_400)]
    cert_validity_secs: u64,
    /// Validity of the self-managed CA, in seconds (Kyverno: 365 days).
    #[arg(long, default_value_t = 365 * 86_400)]
    ca_validity_secs: u64,
    /// Renew self-managed certificates this many seconds before they expire (Kyverno: 15 days).
    #[arg(long, default_value_t = 15 * 86_400)]
    cert_renew_before_secs: u64,
    /// Largest admission request body in bytes.
    #[arg(long, default_value_t = 3 << 20)]
    max_body_bytes: usize,
    /// Deadline for evaluating one request, in milliseconds.
    #[arg(long, default_value_t = 8000)]
    request_deadline_ms: u64,
    /// Time a client gets to send its headers, and then its body, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    read_timeout_ms: u64,
    /// How often to look for a changed bundle or policy file, in milliseconds (0: never).
    #[arg(long, default_value_t = 2000)]
    watch_interval_ms: u64,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Log every admission review, not only denials and errors.
    #[arg(long)]
    log_requests: bool,
    /// verifyImages: reach image registries over plain HTTP where they do not speak TLS and
    /// accept any certificate, for every entry (Kyverno's `allowInsecureRegistry`). The
    /// `--registry-*` flags are for the bundle's registry.
    #[arg(long = "image-allow-insecure-registry")]
    allow_insecure_registry: bool,
    /// verifyImages: a Docker config file (`config.json`) with image registry credentials.
    #[arg(long = "image-registry-config")]
    registry_config: Option<PathBuf>,
    /// verifyImages: deadline for the registry work of one image, in milliseconds (the request
    /// deadline bounds it too).
    #[arg(long = "image-registry-timeout-ms", default_value_t = 5000)]
    registry_timeout_ms: u64,
    /// How long a successful image verification stays cached, in seconds (Kyverno: one hour).
    #[arg(long = "image-cache-ttl-secs", default_value_t = 3600)]
    image_cache_ttl_secs: u64,
    /// How many image verifications the cache holds (Kyverno: 1000).
    #[arg(long = "image-cache-size", default_value_t = 1000)]
    image_cache_size: usize,
}

pub fn run(args: Args) -> ExitCode {
    let key = match args.bundle_key.as_deref().map(crate::oci::read_public_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let oci_ref = args.bundle.as_ref().and_then(|p| p.to_str()).filter(|p| p.starts_with("oci://"));
    let mut watch_interval = Duration::from_millis(args.watch_interval_ms);
    let source: Box<dyn BundleSource> = match (&args.bundle, oci_ref) {
        (_, Some(text)) => {
            let registry = RegistryAccess { insecure: args.registry_insecure, timeout_secs: args.registry_timeout_secs, allow_unsigned: args.allow_unsigned_bundle };
            let source = match OciBundle::new(text, key, &registry) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            watch_interval = Duration::from_secs(args.poll_interval_secs);
            Box::new(source)
        }
        (Some(path), None) => Box::new(BundleFile { path: path.clone(), key }),
        (None, None) => Box::new(PolicyFiles { paths: args.policies.clone() }),
    };
    let tls = match (&args.tls_cert, &args.tls_key, &args.self_managed_certs) {
        (Some(cert), Some(key), _) => TlsSource::Files { cert: cert.clone(), key: key.clone() },
        (_, _, Some(dir)) => {
            let mut s = SelfManaged::new(dir.clone(), args.cert_names.clone());
            s.cert_validity = Duration::from_secs(args.cert_validity_secs);
            s.ca_validity = Duration::from_secs(args.ca_validity_secs);
            s.renew_before = Duration::from_secs(args.cert_renew_before_secs);
            TlsSource::SelfManaged(s)
        }
        _ => {
            eprintln!("error: give --tls-cert and --tls-key, or --self-managed-certs DIR");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::new(args.addr, tls, source);
    config.max_body = args.max_body_bytes;
    config.request_deadline = Duration::from_millis(args.request_deadline_ms);
    config.read_timeout = Duration::from_millis(args.read_timeout_ms);
    config.watch_interval = watch_interval;
    config.workers = args.workers;
    config.log_requests = args.log_requests;
    let mut images = VerifierConfig {
        allow_insecure: args.allow_insecure_registry,
        timeout: Duration::from_millis(args.registry_timeout_ms),
        cache_ttl: Duration::from_secs(args.image_cache_ttl_secs),
        cache_capacity: args.image_cache_size,
        ..VerifierConfig::default()
    };
    if let Some(path) = &args.registry_config {
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| images::docker_credentials(&t)) {
            Ok(c) => images.credentials = c,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    match Verifier::new(images) {
        Ok(v) => config.images = Some(std::sync::Arc::new(v)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match webhook::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct BundleFile {
    path: PathBuf,
    /// With a key, the file's detached signature (`FILE.sig`) must verify before it loads.
    key: Option<oci::CosignVerificationKey>,
}

impl BundleSource for BundleFile {
    fn load(&self) -> Result<(Bundle, String), String> {
        let bytes = std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if let Some(key) = &self.key {
            crate::sign::verify_file(&self.path, &bytes, &crate::sign::signature_path(&self.path), key)?;
        }
        Bundle::decode(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn fingerprint(&self) -> Option<u64> {
        // A new signature for the same bundle is a change too.
        let mut files = vec![self.path.clone()];
        if self.key.is_some() {
            files.push(crate::sign::signature_path(&self.path));
        }
        fingerprint(&files)
    }

    fn describe(&self) -> String {
        format!("bundle {}", self.path.display())
    }
}

/// A bundle (or a Kyverno policy image) in a registry. Each load resolves the reference to a
/// digest, verifies that digest's signature, and pulls exactly that digest, so what is loaded is
/// what was verified even when the tag moves in between.
pub struct OciBundle {
    reference: oci::Reference,
    text: String,
    key: Option<oci::CosignVerificationKey>,
    options: oci::Options,
}

/// How `serve` and `webhook-config` reach a bundle's registry.
pub struct RegistryAccess {
    pub insecure: bool,
    pub timeout_secs: u64,
    pub allow_unsigned: bool,
}

impl OciBundle {
    pub fn new(text: &str, key: Option<oci::CosignVerificationKey>, args: &RegistryAccess) -> Result<OciBundle, String> {
        let reference = oci::parse_reference(text)?;
        if key.is_none() && !args.allow_unsigned {
            return Err(format!(
                "--bundle {text} needs --bundle-key PUB.pem to verify its signature (or --allow-unsigned-bundle to serve it unverified)"
            ));
        }
        let auth = crate::oci::docker_config_auth(reference.resolve_registry())?;
        let options = oci::Options { auth, insecure: args.insecure, timeout: Duration::from_secs(args.timeout_secs.max(1)) };
        Ok(OciBundle { reference, text: text.to_owned(), key, options })
    }
}

impl BundleSource for OciBundle {
    fn load(&self) -> Result<(Bundle, String), String> {
        let client = oci::Blocking::new()?;
        let digest = client.resolve(&self.reference, &self.options)?;
        match &self.key {
            Some(key) => client.verify(&self.reference, &digest, key, &self.options).map_err(|e| format!("refusing the bundle: {e}"))?,
            None => webhook::log("warn", "serving an unsigned bundle", serde_json::json!({"bundle": self.text, "digest": digest})),
        }
        let pulled = client.pull(&self.reference, Some(&digest), &self.options)?;
        match pulled.artifact {
            oci::Artifact::Bundle(bytes) => Bundle::decode(&bytes).map_err(|e| format!("{}@{digest}: {e}", self.text)),
            oci::Artifact::Policies(layers) => {
                let inputs: Vec<bundle::Input> = layers
                    .into_iter()
                    .map(|l| bundle::Input { name: format!("{}@{digest}/{}", self.text, l.name), text: String::from_utf8_lossy(&l.yaml).into_owned(), explicit: true })
                    .collect();
                compile_inputs(&inputs)
            }
        }
    }

    fn fingerprint(&self) -> Option<u64> {
        // The manifest digest: a new push to the tag is a change, a re-push of the same content
        // is not. With a key, the digest of its signature manifest too, so that a refused bundle
        // is tried again once someone signs it.
        let digests = oci::Blocking::new().and_then(|c| {
            let digest = c.resolve(&self.reference, &self.options)?;
            let signature = match &self.key {
                Some(_) => {
                    let tag = oci::signature_tag(&digest);
                    let sig_ref = oci::Reference::with_tag(self.reference.registry().to_owned(), self.reference.repository().to_owned(), tag);
                    // No signature yet is a state like any other, not an error.
                    c.resolve(&sig_ref, &self.options).ok()
                }
                None => None,
            };
            Ok((digest, signature))
        });
        match digests {
            Ok(d) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                d.hash(&mut h);
                Some(h.finish())
            }
            Err(e) => {
                webhook::log("warn", "cannot check the bundle reference for changes", serde_json::json!({"bundle": self.text, "error": e}));
                None
            }
        }
    }

    fn describe(&self) -> String {
        let signed = if self.key.is_some() { "signature verified with --bundle-key" } else { "unsigned" };
        format!("bundle {} ({signed})", self.text)
    }
}

struct PolicyFiles {
    paths: Vec<PathBuf>,
}

impl BundleSource for PolicyFiles {
    fn load(&self) -> Result<(Bundle, String), String> {
        compile_inputs(&crate::compile::read_inputs(&self.paths)?)
    }

    fn fingerprint(&self) -> Option<u64> {
        let mut files = Vec::new();
        for p in &self.paths {
            walk(p, &mut files);
        }
        files.sort();
        fingerprint(&files)
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("policies {}", names.join(" "))
    }
}

fn walk(path: &std::path::Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.filter_map(Result::ok) {
                walk(&e.path(), out);
            }
        }
    } else {
        out.push(path.to_owned());
    }
}

/// Modification times and sizes of the files, hashed.
fn fingerprint(files: &[PathBuf]) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        let meta = std::fs::metadata(f).ok()?;
        f.hash(&mut h);
        meta.len().hash(&mut h);
        meta.modified().ok()?.hash(&mut h);
    }
    Some(h.finish())
}

/// Compiles policy inputs into a bundle; the error names the first error diagnostic.
pub(crate) fn compile_inputs(inputs: &[bundle::Input]) -> Result<(Bundle, String), String> {
    let compiled = bundle::compile(inputs);
    let Some(b) = compiled.bundle else {
        let first = compiled
            .diagnostics
            .iter()
            .find(|d| d.severity == palisade_compiler::Severity::Error)
            .map(|d| palisade_runtime::cli::runner::render(&compiled.sources, d))
            .unwrap_or_default();
        return Err(format!("the policies do not compile: {first}"));
    };
    // The digest is the one the same policies would have as a bundle file.
    let bytes = b.encode()?;
    let digest = bundle::hex(bytes.get(bytes.len().saturating_sub(32)..).unwrap_or_default());
    Ok((b, digest))
}
