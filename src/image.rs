//! `palisade image push|sign`: the cosign side of image verification, for trying verifyImages
//! policies against a registry of your own (the offline example in `examples/verify-images/`
//! uses it with a registry on 127.0.0.1).
//!
//! `push` pushes a one-layer OCI image and prints its digest; `sign` signs an image's digest
//! with a key from `palisade keygen` in cosign's format (a simple-signing payload at the
//! `sha256-<hex>.sig` tag), which a `keys.publicKeys` entry with the `.pub` file verifies.
//! These sign images; `palisade sign`/`verify` sign policy bundles.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_runtime::images::cosign::Access;
use palisade_runtime::images::reference::ImageInfo;
use palisade_runtime::images::sign::{self, KeyPair};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Push a small one-layer image to REGISTRY/REPOSITORY:TAG and print its digest.
    Push {
        /// The image, `registry/repository:tag`.
        image: String,
        /// The layer's content; a distinct content makes a distinct digest.
        #[arg(long, default_value = "palisade example image")]
        content: String,
        /// Use plain HTTP when the registry does not speak TLS (a registry on 127.0.0.1).
        #[arg(long = "allow-insecure-registry")]
        insecure: bool,
    },
    /// Sign an image's manifest digest with a private key and push the cosign signature.
    Sign {
        /// The image, by tag or digest.
        image: String,
        /// The private key, unencrypted (`palisade keygen` writes one).
        #[arg(long, default_value = "palisade.key")]
        key: PathBuf,
        /// Use plain HTTP when the registry does not speak TLS (a registry on 127.0.0.1).
        #[arg(long = "allow-insecure-registry")]
        insecure: bool,
    },
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::Push { image, content, insecure } => push(&image, &content, insecure),
        Command::Sign { image, key, insecure } => sign_image(&image, &key, insecure),
    };
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(image: &str) -> Result<ImageInfo, String> {
    ImageInfo::parse(image, "", "", "").ok_or_else(|| format!("{image} is not an image reference"))
}

fn push(image: &str, content: &str, insecure: bool) -> Result<String, String> {
    let info = parse(image)?;
    if !info.digest.is_empty() {
        return Err(format!("{image}: push takes a tag, not a digest"));
    }
    let access = Access { insecure, basic: None };
    sign::block_on(sign::push_image(&access, &info.registry, &info.path, &info.tag, content.as_bytes()))?
}

fn sign_image(image: &str, key: &PathBuf, insecure: bool) -> Result<String, String> {
    let info = parse(image)?;
    let pem = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let pair = KeyPair::from_private_pem(&pem).map_err(|e| format!("{}: {e}", key.display()))?;
    let access = Access { insecure, basic: None };
    sign::block_on(async {
        let digest = palisade_runtime::images::cosign::resolve_digest(&access, &info).await.map_err(|e| e.message().to_owned())?;
        sign::sign(&access, &info.registry, &info.path, &digest, &[&pair], &Default::default()).await?;
        Ok::<_, String>(format!("signed {}@{digest}", info.repository()))
    })?
}
