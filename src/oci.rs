//! `palisade oci push|pull|sign|verify`: policies and compiled bundles in an OCI registry.
//!
//! `push` takes a bundle file (`palisade compile` output) or policy files and folders. Policies
//! are checked like `palisade compile` checks them (Kyverno validates before pushing too) and
//! pushed as Kyverno's policy image, one layer per policy; a bundle is pushed as one layer of
//! Palisade's bundle media type. `pull` writes policies back as `<name>.yaml` files, or the
//! bundle file. `sign` and `verify` handle cosign signatures of what was pushed.
//!
//! Credentials: `--username` with `--password-stdin`, else the Docker config
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), else anonymous. Plain HTTP only
//! with `--insecure`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use palisade_compiler::Severity;
use palisade_compiler::bundle::{self, Bundle, MAGIC};
use palisade_compiler::source::SourceMap;
use palisade_compiler::syntax;
use palisade_runtime::cli::runner;
use palisade_runtime::oci::{self, Artifact, Auth, Blocking, Options, PolicyLayer};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Push a compiled bundle, or policy files and folders, to an OCI reference.
    Push(PushArgs),
    /// Pull policies (written as YAML files) or a bundle (written as a file) from a reference.
    Pull(PullArgs),
    /// Sign the manifest a reference points at with a cosign key; pushes `sha256-<hex>.sig`.
    Sign(SignArgs),
    /// Check that a reference carries a cosign signature made with a key.
    Verify(VerifyArgs),
}

/// How to reach the registry; shared by every `oci` subcommand and by `palisade serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct RegistryArgs {
    /// Registry user name (the password is read from standard input with --password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Talk plain HTTP to the registry and accept any certificate. Only for local registries.
    #[arg(long)]
    pub insecure: bool,
    /// Deadline for one registry operation, in seconds.
    #[arg(long, default_value_t = 60)]
    pub registry_timeout_secs: u64,
}

impl RegistryArgs {
    pub fn options(&self, registry: &str) -> Result<Options, String> {
        let auth = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin().read_to_string(&mut password).map_err(|e| format!("cannot read the password from standard input: {e}"))?;
                let password = password.trim_end_matches(['\r', '\n']).to_owned();
                if password.is_empty() {
                    return Err("--password-stdin: standard input held no password".to_owned());
                }
                Auth::Basic { username: user.clone(), password }
            }
            None => docker_config_auth(registry)?,
        };
        Ok(Options { auth, insecure: self.insecure, timeout: Duration::from_secs(self.registry_timeout_secs.max(1)) })
    }
}

/// Credentials for `registry` from the Docker config, if there is one.
pub fn docker_config_auth(registry: &str) -> Result<Auth, String> {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker").join("config.json"),
            None => return Ok(Auth::Anonymous),
        },
    };
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Auth::Anonymous) };
    let auth = oci::docker_config_auth(&text, registry).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(auth.unwrap_or_default())
}

#[derive(clap::Args)]
struct PushArgs {
    /// A bundle file, or a policy file or folder.
    path: PathBuf,
    /// The reference to push to, e.g. registry.example/team/policies:v1 (an `oci://` prefix is allowed).
    #[arg(value_name = "REF")]
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
struct PullArgs {
    /// The reference to pull.
    #[arg(value_name = "REF")]
    image: String,
    /// Where to write: a folder for policies (default: the current folder); a file or folder for a bundle (default: bundle.plb).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Refuse the artifact unless it carries a cosign signature made with this public key.
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
struct SignArgs {
    /// The reference to sign (a tag is resolved to its digest first).
    #[arg(value_name = "REF")]
    image: String,
    /// The private key (PKCS#8 PEM, or a cosign key with its password in COSIGN_PASSWORD).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The reference to verify.
    #[arg(value_name = "REF")]
    image: String,
    /// The public key (PEM).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::Push(a) => push(a),
        Command::Pull(a) => pull(a),
        Command::Sign(a) => sign(a),
        Command::Verify(a) => verify(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn push(args: PushArgs) -> Result<(), String> {
    let reference = oci::parse_reference(&args.image)?;
    let artifact = artifact_from(std::slice::from_ref(&args.path))?;
    let opts = args.registry.options(reference.resolve_registry())?;
    let digest = Blocking::new()?.push(&reference, &artifact, &opts)?;
    match &artifact {
        Artifact::Bundle(bytes) => eprintln!("pushed bundle ({} bytes) to {}", bytes.len(), reference.whole()),
        Artifact::Policies(p) => {
            for layer in p {
                eprintln!("added {} {}", layer.kind, layer.name);
            }
            eprintln!("pushed {} policies to {}", p.len(), reference.whole());
        }
    }
    // The digest alone on standard output, for scripts (`palisade oci sign REPO@$(palisade oci push ...)`).
    println!("{digest}");
    Ok(())
}

/// A bundle file (recognised by its magic bytes, and checked to load), or the policies of the
/// given files and folders, checked like `palisade compile` checks them.
fn artifact_from(paths: &[PathBuf]) -> Result<Artifact, String> {
    if let [single] = paths
        && single.is_file()
    {
        let bytes = std::fs::read(single).map_err(|e| format!("cannot read {}: {e}", single.display()))?;
        if bytes.starts_with(&MAGIC) {
            Bundle::decode(&bytes).map_err(|e| format!("{}: {e}", single.display()))?;
            return Ok(Artifact::Bundle(bytes));
        }
    }
    let inputs = crate::compile::read_inputs(paths)?;
    let compiled = bundle::compile(&inputs);
    if let Some(d) = compiled.diagnostics.iter().find(|d| d.severity == Severity::Error) {
        return Err(format!("the policies do not check, nothing pushed: {}", runner::render(&compiled.sources, d)));
    }
    let mut sources = SourceMap::new();
    let mut layers = Vec::new();
    for input in &inputs {
        let file = sources.add(input.name.clone(), input.text.as_str());
        let (docs, _) = syntax::parse(file, &input.text);
        for doc in docs.iter().filter(|d| bundle::is_policy_document(d)) {
            let json = syntax::to_json(&doc.root);
            let text = input.text.get(doc.span.start as usize..doc.span.end as usize).unwrap_or_default();
            let field = |p: &str| json.pointer(p).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            layers.push(PolicyLayer {
                kind: field("/kind"),
                name: field("/metadata/name"),
                api_version: field("/apiVersion"),
                yaml: strip_marker(text).as_bytes().to_vec(),
            });
        }
    }
    if layers.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!("no policies found in {} (a bundle file or Kyverno policy YAML is expected)", names.join(" ")));
    }
    Ok(Artifact::Policies(layers))
}

/// A document's text without its leading `---` line, ending in one newline.
fn strip_marker(text: &str) -> String {
    let body = match text.strip_prefix("---") {
        Some(rest) => rest.split_once('\n').map(|(_, b)| b).unwrap_or_default(),
        None => text,
    };
    format!("{}\n", body.trim_end())
}

fn pull(args: PullArgs) -> Result<(), String> {
    let reference = oci::parse_reference(&args.image)?;
    let opts = args.registry.options(reference.resolve_registry())?;
    let client = Blocking::new()?;
    let digest = client.resolve(&reference, &opts)?;
    if let Some(key_path) = &args.key {
        let key = read_public_key(key_path)?;
        client.verify(&reference, &digest, &key, &opts)?;
        eprintln!("verified the signature of {}@{digest}", reference.whole());
    }
    let pulled = client.pull(&reference, Some(&digest), &opts)?;
    match pulled.artifact {
        Artifact::Bundle(bytes) => {
            let (b, content) = Bundle::decode(&bytes).map_err(|e| format!("the pulled bundle does not load: {e}"))?;
            let target = match &args.output {
                Some(p) if p.is_dir() => p.join("bundle.plb"),
                Some(p) => p.clone(),
                None => PathBuf::from("bundle.plb"),
            };
            std::fs::write(&target, &bytes).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            eprintln!("wrote bundle {} ({} policies, content digest {content}) to {}", pulled.digest, b.policies.len(), target.display());
        }
        Artifact::Policies(policies) => {
            let dir = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let mut used = std::collections::BTreeSet::new();
            for p in &policies {
                let path = dir.join(file_name(&p.name, &mut used));
                std::fs::write(&path, &p.yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                eprintln!("saved {} {} to {}", if p.kind.is_empty() { "policy" } else { &p.kind }, p.name, path.display());
            }
        }
    }
    println!("{}", pulled.digest);
    Ok(())
}

/// A safe, unique file name for a pulled policy: the name comes from the registry, so anything
/// that could leave the folder or hide the file is replaced.
fn file_name(name: &str, used: &mut std::collections::BTreeSet<String>) -> String {
    let mut base: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect();
    base = base.trim_start_matches('.').to_owned();
    if base.is_empty() {
        base = "policy".to_owned();
    }
    base.truncate(200);
    let mut candidate = format!("{base}.yaml");
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{base}-{n}.yaml");
        n += 1;
    }
    candidate
}

fn sign(args: SignArgs) -> Result<(), String> {
    let reference = oci::parse_reference(&args.image)?;
    let signer = read_private_key(&args.key)?;
    let opts = args.registry.options(reference.resolve_registry())?;
    let digest = Blocking::new()?.sign(&reference, &signer, &opts)?;
    eprintln!("pushed the signature of {}@{digest} to {}", reference.whole(), oci::signature_tag(&digest));
    println!("{digest}");
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), String> {
    let reference = oci::parse_reference(&args.image)?;
    let key = read_public_key(&args.key)?;
    let opts = args.registry.options(reference.resolve_registry())?;
    let client = Blocking::new()?;
    let digest = client.resolve(&reference, &opts)?;
    client.verify(&reference, &digest, &key, &opts)?;
    println!("verified the signature of {}@{digest}", reference.whole());
    Ok(())
}

/// Reads a private key; an encrypted (cosign) key takes its password from COSIGN_PASSWORD.
pub fn read_private_key(path: &Path) -> Result<oci::SigStoreSigner, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
    oci::load_signer(&pem, password.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn read_public_key(path: &Path) -> Result<oci::CosignVerificationKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    oci::load_public_key(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulled_names_stay_in_the_folder() {
        let mut used = std::collections::BTreeSet::new();
        assert_eq!(file_name("require-labels", &mut used), "require-labels.yaml");
        assert_eq!(file_name("require-labels", &mut used), "require-labels-2.yaml");
        assert_eq!(file_name("../../etc/passwd", &mut used), "_.._etc_passwd.yaml");
        assert_eq!(file_name("", &mut used), "policy.yaml");
        assert_eq!(file_name("..", &mut used), "policy-2.yaml");
    }

    #[test]
    fn document_markers_are_dropped() {
        assert_eq!(strip_marker("---\nkind: X\n\n"), "kind: X\n");
        assert_eq!(strip_marker("kind: X"), "kind: X\n");
    }
}
