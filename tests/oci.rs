//! Policies and bundles over OCI, end to end with the real binary against a real registry
//! (Debian's `docker-registry` on 127.0.0.1, see `support/registry.rs`): push and pull round
//! trips in Kyverno's and Palisade's formats, cosign signatures of bundles (files and registry
//! artifacts), and `palisade serve --bundle oci://...` refusing unsigned, tampered and
//! wrongly-signed bundles, with hot reload when the reference moves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support {
    pub mod registry;
    pub mod server;
}

use support::server::Server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::registry::{Registry, dead_addr};

const PALISADE: &str = env!("CARGO_BIN_EXE_palisade");
/// A throwaway credential for the registry that requires authentication; the bcrypt line was
/// made with `htpasswd -nbB -C 6 palisade-test not-a-secret-test-password`.
const HTPASSWD: &str = "palisade-test:$2y$06$n1yTd6QalsT25sV68gRvQ.PDLW5GH2c3Jawy9tsI/XyNmAcV.tODW\n";
const PASSWORD: &str = "not-a-secret-test-password";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    repo().join("examples/policies").join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-oci-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn palisade_in(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(PALISADE);
    cmd.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // No Docker config of the machine running the tests leaks in.
    cmd.env("DOCKER_CONFIG", dir.join("no-docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out: Output = child.wait_with_output().unwrap();
    Run { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn palisade(dir: &Path, args: &[&str]) -> Run {
    palisade_in(dir, args, None, &[])
}

fn ok(r: Run) -> Run {
    assert!(r.ok, "command failed:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    r
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn compile(dir: &Path, out: &str, policies: &[&str]) -> PathBuf {
    let mut args = vec!["compile".to_owned()];
    args.extend(policies.iter().map(|p| example(p)));
    args.extend(["-o".to_owned(), out.to_owned()]);
    ok(palisade(dir, &args.iter().map(String::as_str).collect::<Vec<_>>()));
    dir.join(out)
}

fn keygen(dir: &Path, prefix: &str) -> (String, String) {
    ok(palisade(dir, &["keygen", "--output-key-prefix", prefix]));
    (dir.join(format!("{prefix}.key")).display().to_string(), dir.join(format!("{prefix}.pub")).display().to_string())
}

/// The registry's manifest for a reference, as raw JSON (read with plain HTTP, not our client).
fn manifest(registry: &str, repository: &str, reference: &str) -> Value {
    let url = format!("http://{registry}/v2/{repository}/manifests/{reference}");
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let resp = reqwest::Client::new().get(&url).header("accept", "application/vnd.oci.image.manifest.v1+json").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    })
}

#[test]
fn policies_round_trip_in_kyvernos_format_and_apply() {
    let reg = Registry::start();
    let dir = scratch("policies");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for p in ["require-team-label.yaml", "restrict-image-registries.yaml"] {
        std::fs::copy(example(p), src.join(p)).unwrap();
    }
    let reference = format!("{}/team/policies:v1", reg.addr);
    let push = ok(palisade(&dir, &["oci", "push", "src", &reference, "--insecure"]));
    assert!(push.stderr.contains("added ClusterPolicy require-team-label"), "{}", push.stderr);
    let digest = push.stdout.trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The manifest is Kyverno's: its config media type, one annotated layer per policy.
    let m = manifest(&reg.addr, "team/policies", "v1");
    assert_eq!(m["config"]["mediaType"], "application/vnd.cncf.kyverno.config.v1+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (layer, name) in layers.iter().zip(["require-team-label", "restrict-image-registries"]) {
        assert_eq!(layer["mediaType"], "application/vnd.cncf.kyverno.policy.layer.v1+yaml");
        assert_eq!(layer["annotations"], json!({"io.kyverno.image.apiVersion": "kyverno.io/v1", "io.kyverno.image.kind": "ClusterPolicy", "io.kyverno.image.name": name}));
    }

    let pull = ok(palisade(&dir, &["oci", "pull", &reference, "-o", "pulled", "--insecure"]));
    assert_eq!(pull.stdout.trim(), digest, "the pulled digest is the pushed one");
    for p in ["require-team-label.yaml", "restrict-image-registries.yaml"] {
        let original = std::fs::read_to_string(src.join(p)).unwrap();
        let pulled = std::fs::read_to_string(dir.join("pulled").join(p)).unwrap();
        assert_eq!(pulled.trim_end(), original.trim_end(), "{p} comes back as written");
    }

    // The pulled folder is a policy folder like any other.
    let resources = repo().join("examples/resources").display().to_string();
    let applied = palisade(&dir, &["apply", "pulled", "--resource", &resources]);
    assert!(!applied.ok);
    assert!(applied.stdout.contains("1 - autogen-check-team validation error: The label `team` is required."), "{}", applied.stdout);
    assert!(applied.stdout.ends_with("pass: 5, fail: 3, warn: 0, error: 0, skip: 0\n"), "{}", applied.stdout);

    // Policies that do not check are not pushed.
    std::fs::write(src.join("broken.yaml"), "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: broken\nspec:\n  rules: 3\n").unwrap();
    let refused = palisade(&dir, &["oci", "push", "src", &reference, "--insecure"]);
    assert!(!refused.ok);
    assert!(refused.stderr.contains("the policies do not check, nothing pushed"), "{}", refused.stderr);
}

#[test]
fn bundles_round_trip_byte_for_byte() {
    let reg = Registry::start();
    let dir = scratch("bundle");
    let bundle = compile(&dir, "policies.plb", &["require-team-label.yaml", "restrict-image-registries.yaml"]);
    let bytes = std::fs::read(&bundle).unwrap();
    let reference = format!("oci://{}/team/bundle:v1", reg.addr);
    let digest = ok(palisade(&dir, &["oci", "push", "policies.plb", &reference, "--insecure"])).stdout.trim().to_owned();

    let m = manifest(&reg.addr, "team/bundle", "v1");
    assert_eq!(m["config"]["mediaType"], "application/vnd.palisade.bundle.config.v1+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.palisade.bundle.v1");
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{}", sha256_hex(&bytes)));

    let pulled = ok(palisade(&dir, &["oci", "pull", &reference, "-o", "pulled.plb", "--insecure"]));
    assert_eq!(pulled.stdout.trim(), digest);
    assert_eq!(std::fs::read(dir.join("pulled.plb")).unwrap(), bytes, "the bundle comes back byte for byte");
    // Pinned by digest, the same artifact.
    let pinned = format!("{}/team/bundle@{digest}", reg.addr);
    ok(palisade(&dir, &["oci", "pull", &pinned, "-o", "pinned.plb", "--insecure"]));
    assert_eq!(std::fs::read(dir.join("pinned.plb")).unwrap(), bytes);
}

#[test]
fn bundle_files_are_signed_like_cosign_sign_blob() {
    let dir = scratch("files");
    let bundle = compile(&dir, "policies.plb", &["require-team-label.yaml"]);
    let (key, public) = keygen(&dir, "team");
    let (_, other) = keygen(&dir, "other");
    let again = palisade(&dir, &["keygen", "--output-key-prefix", "team"]);
    assert!(!again.ok && again.stderr.contains("exists; pass --force"), "{}", again.stderr);

    let unsigned = palisade(&dir, &["verify", "policies.plb", "--key", &public]);
    assert!(!unsigned.ok);
    assert!(unsigned.stderr.contains("policies.plb is not signed:"), "{}", unsigned.stderr);

    ok(palisade(&dir, &["sign", "policies.plb", "--key", &key]));
    let sig = std::fs::read_to_string(dir.join("policies.plb.sig")).unwrap();
    assert!(base64_like(sig.trim()), "{sig}");
    assert!(ok(palisade(&dir, &["verify", "policies.plb", "--key", &public])).stdout.starts_with("verified policies.plb (sha256:"));

    let wrong = palisade(&dir, &["verify", "policies.plb", "--key", &other]);
    assert!(!wrong.ok);
    assert!(wrong.stderr.contains("the signature does not verify with the given key"), "{}", wrong.stderr);

    // One changed byte: the signature no longer holds.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bundle, &bytes).unwrap();
    let tampered = palisade(&dir, &["verify", "policies.plb", "--key", &public]);
    assert!(!tampered.ok);
    assert!(tampered.stderr.contains("the bundle was changed after signing"), "{}", tampered.stderr);

    // Encrypted keys (cosign's format) take their password from COSIGN_PASSWORD, as cosign does.
    compile(&dir, "policies.plb", &["require-team-label.yaml"]);
    ok(palisade_in(&dir, &["keygen", "--output-key-prefix", "enc", "--password-stdin"], Some("pw\n"), &[]));
    assert!(std::fs::read_to_string(dir.join("enc.key")).unwrap().contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
    let no_password = palisade(&dir, &["sign", "policies.plb", "--key", "enc.key"]);
    assert!(!no_password.ok && no_password.stderr.contains("cannot decrypt the private key"), "{}", no_password.stderr);
    ok(palisade_in(&dir, &["sign", "policies.plb", "--key", "enc.key"], None, &[("COSIGN_PASSWORD", "pw")]));
    ok(palisade(&dir, &["verify", "policies.plb", "--key", "enc.pub"]));
}

fn base64_like(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
}

impl Server {
    /// The message of the server's answer to an unlabelled nginx Deployment (both example
    /// policies deny it, each with its own name in the message).
    fn denial(&self) -> String {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
        let deployment: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("tests/data/webhook/nginx-deployment.json")).unwrap()).unwrap();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "nginx", "namespace": "default", "operation": "CREATE",
                "userInfo": {"username": "admin"}, "object": deployment, "dryRun": false,
            }
        });
        let url = format!("https://{}/validate/fail", self.addr);
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let resp = client.post(&url).header("content-type", "application/json").body(review.to_string()).send().await.unwrap();
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            assert_eq!(body["response"]["allowed"], false, "{body}");
            body["response"]["status"]["message"].as_str().unwrap().to_owned()
        })
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(Instant::now() < deadline, "{what} did not happen:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `palisade serve` that is expected to refuse its bundle at start: its error output.
fn serve_refuses(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["serve", "--addr", "127.0.0.1:0", "--self-managed-certs", "certs"];
    all.extend_from_slice(args);
    let r = palisade(dir, &all);
    assert!(!r.ok, "serve started with {args:?}:\n{}", r.stderr);
    r.stderr
}

#[test]
fn serve_loads_only_signed_bundles_from_a_registry() {
    let reg = Registry::start();
    let dir = scratch("serve");
    let (key, public) = keygen(&dir, "team");
    let (other_key, _) = keygen(&dir, "other");
    compile(&dir, "labels.plb", &["require-team-label.yaml"]);
    let reference = format!("oci://{}/team/bundle:prod", reg.addr);
    let digest = ok(palisade(&dir, &["oci", "push", "labels.plb", &reference, "--insecure"])).stdout.trim().to_owned();

    // Unsigned: refused with the reason, before anything is served.
    let flags = ["--bundle", reference.as_str(), "--registry-insecure"];
    let unsigned = serve_refuses(&dir, &[&flags[..], &["--bundle-key", &public]].concat());
    let config = palisade(&dir, &["webhook-config", "--bundle", &reference, "--bundle-key", &public, "--registry-insecure"]);
    assert!(!config.ok && config.stderr.contains("is not signed"), "{}", config.stderr);
    assert!(unsigned.contains(&format!("refusing the bundle: {}/team/bundle@{digest} is not signed: no signature at", reg.addr)), "{unsigned}");
    let no_key = serve_refuses(&dir, &flags);
    assert!(no_key.contains("needs --bundle-key PUB.pem to verify its signature"), "{no_key}");

    // Signed with another key: refused.
    ok(palisade(&dir, &["oci", "sign", &reference, "--key", &other_key, "--insecure"]));
    let wrong = serve_refuses(&dir, &[&flags[..], &["--bundle-key", &public]].concat());
    assert!(wrong.contains("has no valid signature for the given key: a signature does not verify with the given key"), "{wrong}");

    // Signed with the right key (the other signature stays beside it, as cosign keeps it).
    let signed = ok(palisade(&dir, &["oci", "sign", &reference, "--key", &key, "--insecure"]));
    assert_eq!(signed.stdout.trim(), digest);
    let sigs = manifest(&reg.addr, "team/bundle", &format!("{}.sig", digest.replace(':', "-")));
    assert_eq!(sigs["layers"].as_array().unwrap().len(), 2);
    assert_eq!(sigs["layers"][0]["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    ok(palisade(&dir, &["oci", "verify", &reference, "--key", &public, "--insecure"]));
    // `webhook-config` reads the same reference, with the same check.
    let config = ok(palisade(&dir, &["webhook-config", "--bundle", &reference, "--bundle-key", &public, "--registry-insecure"]));
    assert!(config.stdout.contains("kind: ValidatingWebhookConfiguration"), "{}", config.stdout);

    let server = Server::start(&dir, &[&flags[..], &["--bundle-key", &public, "--poll-interval-secs", "1"]].concat());
    assert!(server.logs().contains("signature verified with --bundle-key"), "{}", server.logs());
    let first = server.denial();
    assert!(first.contains("require-team-label") && !first.contains("restrict-image-registries"), "{first}");

    // The tag moves to a bundle nobody signed: the poll sees it, refuses it, keeps serving.
    compile(&dir, "registries.plb", &["restrict-image-registries.yaml"]);
    let moved = ok(palisade(&dir, &["oci", "push", "registries.plb", &reference, "--insecure"])).stdout.trim().to_owned();
    server.wait_for("the refusal of the unsigned bundle", |s| s.logs().contains(&format!("@{moved} is not signed")));
    assert_eq!(server.denial(), first, "the signed bundle keeps serving");

    // Once signed, the new digest is swapped in.
    ok(palisade(&dir, &["oci", "sign", &reference, "--key", &key, "--insecure"]));
    server.wait_for("the swap to the newly signed bundle", |s| s.denial().contains("restrict-image-registries"));
    assert!(!server.denial().contains("require-team-label"));
}

#[test]
fn a_layer_changed_in_the_registry_is_refused() {
    let reg = Registry::start();
    let dir = scratch("tamper");
    let (key, public) = keygen(&dir, "team");
    let bundle = compile(&dir, "labels.plb", &["require-team-label.yaml"]);
    let reference = format!("oci://{}/team/bundle:v1", reg.addr);
    ok(palisade(&dir, &["oci", "push", "labels.plb", &reference, "--insecure"]));
    ok(palisade(&dir, &["oci", "sign", &reference, "--key", &key, "--insecure"]));

    // Rewrite the bundle layer inside the registry's storage, same size, one byte changed.
    let hex = sha256_hex(&std::fs::read(&bundle).unwrap());
    let blob = reg.storage().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(&hex).join("data");
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let pulled = palisade(&dir, &["oci", "pull", &reference, "-o", "x.plb", "--insecure", "--key", &public]);
    assert!(!pulled.ok);
    assert!(pulled.stderr.contains("verified the signature"), "the manifest is still signed: {}", pulled.stderr);
    assert!(pulled.stderr.contains("Digest") || pulled.stderr.contains("digest"), "{}", pulled.stderr);
    assert!(!dir.join("x.plb").exists());
    let refused = serve_refuses(&dir, &["--bundle", &reference, "--registry-insecure", "--bundle-key", &public]);
    assert!(refused.contains(&hex), "the error names the changed layer: {refused}");

    // A layer that grew is cut off at the size the manifest gives, not read whole.
    bytes[mid] ^= 0xff;
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&blob, &bytes).unwrap();
    let grown = palisade(&dir, &["oci", "pull", &reference, "-o", "x.plb", "--insecure"]);
    assert!(!grown.ok);
    assert!(grown.stderr.contains("larger than the"), "{}", grown.stderr);
}

#[test]
fn a_registry_that_is_down_is_a_clear_error() {
    let dir = scratch("down");
    compile(&dir, "labels.plb", &["require-team-label.yaml"]);
    let reference = format!("{}/team/bundle:v1", dead_addr());
    let pull = palisade(&dir, &["oci", "pull", &reference, "--insecure", "--registry-timeout-secs", "10"]);
    assert!(!pull.ok);
    assert!(pull.stderr.starts_with(&format!("error: cannot reach the registry {}", dead_addr().split(':').next().unwrap())), "{}", pull.stderr);
    let push = palisade(&dir, &["oci", "push", "labels.plb", &reference, "--insecure"]);
    assert!(!push.ok && push.stderr.contains("cannot reach the registry"), "{}", push.stderr);
    let serve = serve_refuses(&dir, &["--bundle", &format!("oci://{reference}"), "--registry-insecure", "--allow-unsigned-bundle"]);
    assert!(serve.contains("cannot reach the registry"), "{serve}");
}

#[test]
fn registries_with_basic_authentication() {
    let reg = Registry::start_with_auth(HTPASSWD);
    let dir = scratch("auth");
    compile(&dir, "labels.plb", &["require-team-label.yaml"]);
    let reference = format!("{}/team/bundle:v1", reg.addr);

    let anonymous = palisade(&dir, &["oci", "push", "labels.plb", &reference, "--insecure"]);
    assert!(!anonymous.ok);
    assert!(anonymous.stderr.contains("error: "), "{}", anonymous.stderr);
    let wrong = palisade_in(&dir, &["oci", "push", "labels.plb", &reference, "--insecure", "--username", "palisade-test", "--password-stdin"], Some("nope\n"), &[]);
    assert!(!wrong.ok, "{}", wrong.stderr);

    let pushed = ok(palisade_in(&dir, &["oci", "push", "labels.plb", &reference, "--insecure", "--username", "palisade-test", "--password-stdin"], Some(&format!("{PASSWORD}\n")), &[]));
    // A Docker config (as `docker login` or a Kubernetes pull secret writes it) works for pulls.
    let config_dir = dir.join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("palisade-test:{PASSWORD}"));
    std::fs::write(config_dir.join("config.json"), json!({"auths": {reg.addr.clone(): {"auth": auth}}}).to_string()).unwrap();
    let pulled = ok(palisade_in(&dir, &["oci", "pull", &reference, "-o", "pulled.plb", "--insecure"], None, &[("DOCKER_CONFIG", config_dir.to_str().unwrap())]));
    assert_eq!(pulled.stdout.trim(), pushed.stdout.trim());
    assert_eq!(std::fs::read(dir.join("pulled.plb")).unwrap(), std::fs::read(dir.join("labels.plb")).unwrap());
}

#[test]
fn serve_checks_a_bundle_files_signature_with_a_key() {
    let dir = scratch("serve-file");
    let (key, public) = keygen(&dir, "team");
    let (other_key, _) = keygen(&dir, "other");
    compile(&dir, "labels.plb", &["require-team-label.yaml"]);
    let flags = ["--bundle", "labels.plb", "--bundle-key", public.as_str()];

    let unsigned = serve_refuses(&dir, &flags);
    assert!(unsigned.contains("labels.plb is not signed: labels.plb.sig does not exist (sign it with `palisade sign`)"), "{unsigned}");
    ok(palisade(&dir, &["sign", "labels.plb", "--key", &other_key]));
    let wrong = serve_refuses(&dir, &flags);
    assert!(wrong.contains("labels.plb: the signature does not verify with the given key"), "{wrong}");

    ok(palisade(&dir, &["sign", "labels.plb", "--key", &key]));
    let server = Server::start(&dir, &flags);
    assert!(server.denial().contains("require-team-label"));
}
