//! `palisade webhook-config --bundle FILE`: prints the Validating- and
//! MutatingWebhookConfiguration that send a cluster's admission requests to `palisade serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_compiler::bundle::Bundle;
use palisade_runtime::webhook::config::{Target, configurations};

#[derive(clap::Args)]
pub struct Args {
    /// The compiled bundle the webhook serves.
    #[arg(long)]
    bundle: PathBuf,
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
    let loaded = std::fs::read(&args.bundle)
        .map_err(|e| e.to_string())
        .and_then(|bytes| Bundle::decode(&bytes).map_err(|e| e.to_string()));
    let bundle = match loaded {
        Ok((b, _)) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", args.bundle.display());
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
