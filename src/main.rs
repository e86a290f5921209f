//! The `palisade` command line. One module per subcommand; each returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Evaluation allocates and frees many small maps per request; mimalloc does that markedly
/// faster than the system allocator (see `palisade bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apply;
mod bench;
mod check;
mod compile;
mod image;
mod serve;
mod webhook_config;
mod jp;
mod lsp;
mod oci;
mod schema;
mod sign;
mod test;

#[derive(Parser)]
#[command(name = "palisade", version, about = "Compile, check and run Kyverno admission policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check policies; print diagnostics.
    Check(check::Args),
    /// Query, parse and list functions of Kyverno's JMESPath dialect.
    Jp(jp::Args),
    /// Apply policies to resources, like `kyverno apply`.
    Apply(apply::Args),
    /// Run kyverno-test.yaml files, like `kyverno test`.
    Test(test::Args),
    /// Run the language server over standard input and output.
    Lsp(lsp::Args),
    /// Print the JSON schema of the policy kinds (for yaml-language-server).
    Schema(schema::Args),
    /// Compile policies into a versioned bundle for `palisade serve`.
    Compile(compile::Args),
    /// Run the HTTPS admission webhook.
    Serve(serve::Args),
    /// Print the webhook configurations that send admission requests to `palisade serve`.
    WebhookConfig(webhook_config::Args),
    /// Measure a policy set on AdmissionReviews: parse, interpreter, JIT, end to end.
    Bench(bench::Args),
    /// Push, pull, sign and verify policies and bundles in an OCI registry.
    Oci(oci::Args),
    /// Sign a bundle file with a cosign key (writes BUNDLE.sig, like `cosign sign-blob`).
    Sign(sign::SignArgs),
    /// Verify a bundle file's signature with a public key.
    Verify(sign::VerifyArgs),
    /// Generate an ECDSA P-256 key pair for signing bundles.
    Keygen(sign::KeygenArgs),
    /// Push small images and sign them with cosign signatures (for trying verifyImages
    /// policies against a registry of your own).
    Image(image::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Jp(args) => jp::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Test(args) => test::run(args),
        Command::Lsp(args) => lsp::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Serve(args) => serve::run(args),
        Command::WebhookConfig(args) => webhook_config::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Oci(args) => oci::run(args),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => sign::verify(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Image(args) => image::run(args),
    }
}
