//! `palisade webhook-config --bundle FILE` (or `--policies PATH...`): prints the Validating- and
//! MutatingWebhookConfiguration that send a cluster's admission requests to `palisade serve`,
//! for the kyverno.io policies and the CEL kinds alike (see `palisade_runtime::webhook::config`).

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_compiler::bundle::Bundle;
use palisade_runtime::webhook::BundleSource as _;
use palisade_runtime::webhook::config::{Target, configurations};

#[derive(clap::Args)]
pub struct Args {
    /// The compiled bundle the webhook serves: a file or an `oci://` reference.
    #[arg(long, conflicts_with = "policies", required_unless_present = "policies")]
    bundle: Option<PathBuf>,
    /// Policy files or folders, compiled as `palisade serve --policies` compiles them.
    #[arg(long, num_args = 1..)]
    policies: Vec<PathBuf>,
    /// Public key (PEM) an `oci://` bundle must be signed with.
    #[arg(long)]
    bundle_key: Option<PathBuf>,
    /// Read an `oci://` bundle without a signature check.
    #[arg(long, conflicts_with = "bundle_key")]
    allow_unsigned_bundle: bool,
    /// Talk plain HTTP to the bundle's registry. Only for local registries.
    #[arg(long)]
    registry_insecure: bool,
    /// The Service in front of the webhook.
    #[arg(long, default_value = "palisade")]
    service: String,
    /// The namespace Palisade runs in (its own requests are not sent to it).
    #[arg(long, default_value = "palisade")]
    namespace: String,
    #[arg(long, default_value_t = 443)]
    port: u16,
    /// The CA certificate (PEM) to put in `caBundle`, e.g. `ca.crt` of `serve --self-managed-certs`.
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let (what, loaded) = match &args.bundle {
        Some(path) => (
            path.display().to_string(),
            match path.to_str().filter(|b| b.starts_with("oci://")) {
                Some(reference) => load_oci(reference, &args),
                None => std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| Bundle::decode(&bytes).map_err(|e| e.to_string())),
            },
        ),
        None => (
            "policies".to_owned(),
            crate::compile::read_inputs(&args.policies).and_then(|inputs| crate::serve::compile_inputs(&inputs)),
        ),
    };
    let bundle = match loaded {
        Ok((b, _)) => b,
        Err(e) => {
            eprintln!("error: {what}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ca_pem = match &args.ca_bundle {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let target = Target { service: args.service, namespace: args.namespace, port: args.port, ca_pem };
    match serde_yaml_ng::to_string(&configurations(&bundle, &target)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pulls (and, with a key, verifies) a bundle from a registry as `serve` would.
fn load_oci(reference: &str, args: &Args) -> Result<(Bundle, String), String> {
    let key = args.bundle_key.as_deref().map(crate::oci::read_public_key).transpose()?;
    let access = crate::serve::RegistryAccess { insecure: args.registry_insecure, timeout_secs: 60, allow_unsigned: args.allow_unsigned_bundle };
    crate::serve::OciBundle::new(reference, key, &access)?.load()
}
