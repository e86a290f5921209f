//! `palisade sign`, `palisade verify` and `palisade keygen`: cosign-key signatures of bundle files.
//!
//! A signature is what `cosign sign-blob --key` makes: the base64 ECDSA (or Ed25519) signature of
//! the file's bytes (SHA-256 digest, ASN.1 ECDSA), written beside the bundle as `BUNDLE.sig`. `palisade
//! serve --bundle FILE --bundle-key KEY.pub` refuses a bundle whose `.sig` is missing or wrong.
//!
//! Keys: `palisade keygen` writes an ECDSA P-256 pair. Without a password the private key is a
//! plain PKCS#8 PEM (file mode 0600); with `--password-stdin` it is in cosign's encrypted format.
//! Keys from `cosign generate-key-pair` work too (the password comes from COSIGN_PASSWORD, as
//! for cosign).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use palisade_compiler::bundle::Bundle;
use palisade_runtime::oci;

use crate::oci::{read_private_key, read_public_key};

#[derive(clap::Args)]
pub struct SignArgs {
    /// The bundle file to sign.
    bundle: PathBuf,
    /// The private key (PKCS#8 PEM, or a cosign key with its password in COSIGN_PASSWORD).
    #[arg(long)]
    key: PathBuf,
    /// Where to write the signature (default: BUNDLE.sig).
    #[arg(long)]
    output_signature: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The bundle file to verify.
    bundle: PathBuf,
    /// The public key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The signature file (default: BUNDLE.sig).
    #[arg(long)]
    signature: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub.
    #[arg(long, default_value = "palisade")]
    output_key_prefix: PathBuf,
    /// Encrypt the private key (cosign's format) with a password read from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The default signature path of a bundle: `BUNDLE.sig`.
pub fn signature_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

pub fn sign(args: SignArgs) -> ExitCode {
    report((|| {
        let bytes = std::fs::read(&args.bundle).map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
        // Only a bundle that loads is worth a signature.
        Bundle::decode(&bytes).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
        let signer = read_private_key(&args.key)?;
        let signature = oci::sign_blob(&signer, &bytes)?;
        let out = args.output_signature.clone().unwrap_or_else(|| signature_path(&args.bundle));
        std::fs::write(&out, format!("{signature}\n")).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(format!("signed {} ({}); signature in {}", args.bundle.display(), oci::sha256_digest(&bytes), out.display()))
    })())
}

/// Checks a bundle file against its detached signature; the error says which part failed.
pub fn verify_file(bundle: &Path, bytes: &[u8], signature: &Path, key: &oci::CosignVerificationKey) -> Result<(), String> {
    let sig = match std::fs::read_to_string(signature) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{} is not signed: {} does not exist (sign it with `palisade sign`)", bundle.display(), signature.display()));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", signature.display())),
    };
    oci::verify_blob(key, bytes, &sig).map_err(|e| format!("{}: {e}", bundle.display()))
}

pub fn verify(args: VerifyArgs) -> ExitCode {
    report((|| {
        let bytes = std::fs::read(&args.bundle).map_err(|e| format!("cannot read {}: {e}", args.bundle.display()))?;
        let key = read_public_key(&args.key)?;
        let sig_path = args.signature.clone().unwrap_or_else(|| signature_path(&args.bundle));
        verify_file(&args.bundle, &bytes, &sig_path, &key)?;
        Bundle::decode(&bytes).map_err(|e| format!("{}: the signature is valid but the bundle does not load: {e}", args.bundle.display()))?;
        Ok(format!("verified {} ({})", args.bundle.display(), oci::sha256_digest(&bytes)))
    })())
}

pub fn keygen(args: KeygenArgs) -> ExitCode {
    report((|| {
        let key_path = with_suffix(&args.output_key_prefix, ".key");
        let pub_path = with_suffix(&args.output_key_prefix, ".pub");
        if !args.force {
            for p in [&key_path, &pub_path] {
                if p.exists() {
                    return Err(format!("{} exists; pass --force to replace it", p.display()));
                }
            }
        }
        let password = if args.password_stdin {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read the password: {e}"))?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        } else {
            None
        };
        let (private, public) = oci::generate_key_pair(password.as_deref().map(str::as_bytes))?;
        write_private(&key_path, &private)?;
        std::fs::write(&pub_path, public).map_err(|e| format!("cannot write {}: {e}", pub_path.display()))?;
        Ok(format!("wrote {} (private, keep it secret) and {} (public)", key_path.display(), pub_path.display()))
    })())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
