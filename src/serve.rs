//! `palisade serve`: run the HTTPS admission webhook on a bundle (`--bundle`) or on policy files
//! compiled at start (`--policies`), with certificate files or a self-managed certificate.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use palisade_compiler::bundle::{self, Bundle};
use palisade_runtime::webhook::{self, BundleSource, Config, TlsSource, tls::SelfManaged};

#[derive(clap::Args)]
pub struct Args {
    /// A compiled bundle (`palisade compile`); reloaded when the file changes or on SIGHUP.
    #[arg(long, conflicts_with = "policies", required_unless_present = "policies")]
    bundle: Option<PathBuf>,
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
}

pub fn run(args: Args) -> ExitCode {
    let source: Box<dyn BundleSource> = match &args.bundle {
        Some(path) => Box::new(BundleFile { path: path.clone() }),
        None => Box::new(PolicyFiles { paths: args.policies.clone() }),
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
    config.watch_interval = Duration::from_millis(args.watch_interval_ms);
    config.workers = args.workers;
    config.log_requests = args.log_requests;
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
}

impl BundleSource for BundleFile {
    fn load(&self) -> Result<(Bundle, String), String> {
        let bytes = std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        Bundle::decode(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn fingerprint(&self) -> Option<u64> {
        fingerprint(std::slice::from_ref(&self.path))
    }

    fn describe(&self) -> String {
        format!("bundle {}", self.path.display())
    }
}

struct PolicyFiles {
    paths: Vec<PathBuf>,
}

impl BundleSource for PolicyFiles {
    fn load(&self) -> Result<(Bundle, String), String> {
        let inputs = crate::compile::read_inputs(&self.paths)?;
        let compiled = bundle::compile(&inputs);
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
