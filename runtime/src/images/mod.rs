//! Image verification: Kyverno's `verifyImages` rules, evaluated against real OCI registries.
//!
//! Kyverno runs image verification in two phases, and so does this module:
//! - [`Verifier::verify`] is the mutate phase: it finds the images of the resource, verifies the
//!   matching ones (signatures with the attestor sets, then attestations and their conditions),
//!   produces the digest patches of `mutateDigest` and the `kyverno.io/verify-images` annotation.
//! - [`Verifier::validate`] is the validate phase, on the mutated resource: `verifyDigest` (the
//!   image must be pinned by digest) and `required` (the annotation must say the image passed).
//!
//! Verification talks to registries with async clients; a [`Verifier`] owns a small runtime and
//! blocks on it, so callers stay synchronous (the webhook calls it from a blocking task). Every
//! registry round trip runs under a deadline. Successful verifications are cached (see
//! [`cache`]), and attestation conditions are evaluated on every request, cached or not.

pub mod cache;
pub mod cosign;
pub mod extract;
pub mod reference;
pub mod sign;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use palisade_compiler::ir::images::{AttestorKind, AttestorSet, ImageVerification, VerifierType, VerifyImages};
use palisade_compiler::ir::policy::{PolicyIr, RuleBody, RuleIr};

use crate::conditions;
use crate::engine::{self, Context, Request, RuleResult, Status};
use cache::{Cache, Verified};
use cosign::{Access, VerifyError};
use reference::ImageInfo;

/// The annotation that records which images passed verification.
pub const VERIFY_IMAGES_ANNOTATION: &str = "kyverno.io/verify-images";

#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// How long a successful verification stays cached (Kyverno's default is one hour).
    pub cache_ttl: Duration,
    /// How many verifications the cache holds at most (Kyverno's default is 1000).
    pub cache_capacity: usize,
    /// The deadline for all registry work of one image.
    pub timeout: Duration,
    /// Public keys of `keys.secret` / `k8s://ns/name` references: `(namespace, name) -> PEM`.
    pub secrets: BTreeMap<(String, String), String>,
    /// Treat every registry as if its entry set `imageRegistryCredentials.allowInsecureRegistry`:
    /// plain HTTP where the registry does not speak TLS, and certificates not checked.
    pub allow_insecure: bool,
    /// Basic credentials per registry host (`host[:port]` -> `(username, password)`), as a
    /// Docker config file gives them (see [`docker_credentials`]).
    pub credentials: BTreeMap<String, (String, String)>,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            cache_ttl: Duration::from_secs(3600),
            cache_capacity: 1000,
            timeout: Duration::from_secs(10),
            secrets: BTreeMap::new(),
            allow_insecure: false,
            credentials: BTreeMap::new(),
        }
    }
}

/// Reads the `auths` of a Docker config file (`~/.docker/config.json`): each entry's `auth`
/// (base64 of `user:password`) or `username` and `password`, keyed by the registry host with
/// any scheme and path removed (`https://index.docker.io/v1/` becomes `index.docker.io`).
pub fn docker_credentials(text: &str) -> Result<BTreeMap<String, (String, String)>, String> {
    use base64::Engine as _;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    let mut out = BTreeMap::new();
    let Some(auths) = doc.get("auths").and_then(Value::as_object) else { return Ok(out) };
    for (server, entry) in auths {
        let host = server.trim_start_matches("https://").trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host).to_owned();
        let field = |k: &str| entry.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let pair = if let Some(encoded) = field("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("auths.{server}.auth is not base64 of user:password"))?;
            let (user, password) = decoded.split_once(':').ok_or_else(|| format!("auths.{server}.auth is not base64 of user:password"))?;
            (user.to_owned(), password.to_owned())
        } else if let (Some(user), Some(password)) = (field("username"), field("password")) {
            (user.to_owned(), password.to_owned())
        } else {
            // Credential helpers and identity tokens are not read; the registry is used anonymously.
            continue;
        };
        out.insert(host, pair);
    }
    Ok(out)
}

/// The mutate-phase outcome for one policy.
#[derive(Clone, Debug, Default)]
pub struct ImageOutcome {
    pub results: Vec<RuleResult>,
    /// JSON patch operations (`mutateDigest`, then the verify-images annotation).
    pub patches: Vec<Value>,
    /// Image -> `pass` | `fail`, for the `kyverno.io/verify-images` annotation.
    pub verified: BTreeMap<String, String>,
}

pub struct Verifier {
    runtime: tokio::runtime::Runtime,
    cache: Mutex<Cache>,
    config: VerifierConfig,
    /// Registry clients for digest resolution, by registry and access settings. They are only
    /// used on `runtime`, whose connection tasks they rely on, and their number is bounded
    /// since requests name registries.
    clients: Mutex<HashMap<ClientKey, oci_client::Client>>,
}

/// What a registry client is kept for: the registry, whether plain HTTP is allowed, and the
/// basic-auth credentials (user, password), if any.
type ClientKey = (String, bool, Option<(String, String)>);

/// How many registry clients a verifier keeps before it starts over.
const MAX_CLIENTS: usize = 64;

impl Verifier {
    pub fn new(config: VerifierConfig) -> Result<Verifier, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the image verification runtime: {e}"))?;
        let cache = Mutex::new(Cache::new(config.cache_ttl, config.cache_capacity));
        Ok(Verifier { runtime, cache, config, clients: Mutex::new(HashMap::new()) })
    }

    /// The kept client for a registry and access settings (a new one the first time).
    fn client(&self, access: &Access, registry: &str) -> oci_client::Client {
        let key = (registry.to_owned(), access.insecure, access.basic.clone());
        let Ok(mut clients) = self.clients.lock() else { return access.oci_client(registry) };
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let c = access.oci_client(registry);
        clients.insert(key, c.clone());
        c
    }

    /// How many verifications are cached now.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Empties the cache (for cold measurements and tests).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            *c = Cache::new(self.config.cache_ttl, self.config.cache_capacity);
        }
    }

    /// The mutate phase: verifies the images of the resource for every `verifyImages` rule of
    /// the policy that applies to the request.
    pub fn verify(&self, policy: &PolicyIr, req: &Request) -> ImageOutcome {
        self.verify_until(policy, req, None)
    }

    /// [`Verifier::verify`] under a deadline (the webhook's per-request deadline): registry work
    /// for an image gets the smaller of the configured timeout and the time left, and an image
    /// reached after the deadline is an error result, not a wait.
    pub fn verify_until(&self, policy: &PolicyIr, req: &Request, deadline: Option<Instant>) -> ImageOutcome {
        let mut out = ImageOutcome::default();
        if req.operation == "DELETE" {
            return out;
        }
        let resource = req.object;
        if let Some(ns) = &policy.namespace && engine::namespace_of(resource) != Some(ns.as_str()) {
            return out;
        }
        let mut ctx = Context::new(req, resource);
        for rule in &policy.rules {
            let RuleBody::VerifyImages(vi) = &rule.body else { continue };
            if !engine::selected(rule, resource, req) {
                continue;
            }
            let enforce = rule.enforce.unwrap_or(policy.enforce);
            let mut push = |status: Status, message: String| {
                out.results.push(RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce });
            };
            if let Err(skip_or_error) = prepare(rule, &mut ctx) {
                push(skip_or_error.0, skip_or_error.1);
                continue;
            }
            if annotation_changed(req) {
                push(Status::Fail, format!("{VERIFY_IMAGES_ANNOTATION} annotation cannot be changed"));
                continue;
            }
            let (images, errors) = extract::extract(resource, &vi.extractors);
            if !errors.is_empty() {
                push(Status::Error, format!("failed to extract images: {}", errors.join("; ")));
                continue;
            }
            for entry in &vi.entries {
                for image in images.iter().filter(|i| applies(entry, i)) {
                    let (status, message, patch) = self.verify_one(entry, image, &ctx, deadline);
                    if let Some(p) = patch {
                        out.patches.push(p);
                    }
                    if let Some((status, message)) = status.zip(message) {
                        if !entry.attestors.is_empty() || !entry.attestations.is_empty() {
                            let key = match &out.patches.last() {
                                Some(p) if p.get("path").and_then(Value::as_str) == Some(image.pointer.as_str()) => {
                                    p.get("value").and_then(Value::as_str).and_then(|v| ImageInfo::parse(v, "", "", "")).map(|i| i.reference()).unwrap_or_else(|| image.reference())
                                }
                                _ => image.reference(),
                            };
                            out.verified.insert(key, if status == Status::Pass { "pass" } else { "fail" }.to_owned());
                        }
                        push(status, message);
                    }
                }
            }
        }
        if let Some(p) = annotation_patch(resource, &out.verified) {
            out.patches.push(p);
        }
        out
    }

    /// Verifies one image for one entry: `(status, message, digest patch)`. No status means the
    /// entry has nothing to verify (a digest patch may still come, as in Kyverno).
    fn verify_one(&self, entry: &ImageVerification, image: &ImageInfo, ctx: &Context, until: Option<Instant>) -> (Option<Status>, Option<String>, Option<Value>) {
        if entry.verifier == VerifierType::Notary {
            return (Some(Status::Error), Some(format!("failed to verify image {image}: Notary signatures are not supported by Palisade; use type: Cosign")), None);
        }
        let access = Access {
            insecure: entry.allow_insecure_registry || self.config.allow_insecure,
            basic: self.config.credentials.get(&image.registry).cloned(),
        };
        let deadline = match until {
            Some(d) => self.config.timeout.min(d.saturating_duration_since(Instant::now())),
            None => self.config.timeout,
        };
        let client = self.client(&access, &image.registry);
        let work = async {
            let digest = cosign::resolve_digest_with(&client, &access, image).await?;
            let verified = self.verified(entry, image, &digest, &access).await?;
            Ok::<_, VerifyError>((digest, verified))
        };
        let outcome = self.runtime.block_on(async {
            match tokio::time::timeout(deadline, work).await {
                Ok(r) => r,
                Err(_) => Err(VerifyError::Unreachable(format!("failed to verify image {image}: registry did not answer within {deadline:?}"))),
            }
        });
        let mut patch = None;
        let (status, message) = match outcome {
            Err(VerifyError::Unreachable(m)) => (Status::Error, m),
            Err(VerifyError::Failed(m)) => (Status::Fail, m),
            Ok((digest, (verified, from_cache))) => {
                if entry.mutate_digest && image.digest.is_empty() {
                    patch = Some(json!({"op": "replace", "path": image.pointer, "value": format!("{}@{digest}", image.tagged())}));
                }
                match check_conditions(entry, image, &digest, &verified, ctx) {
                    Err(m) => (Status::Fail, m),
                    Ok(()) if from_cache => (Status::Pass, "verified from cache".to_owned()),
                    Ok(()) if entry.attestations.is_empty() => (Status::Pass, format!("verified image signatures for {image}")),
                    Ok(()) => {
                        let pinned = ImageInfo { digest: digest.clone(), ..image.clone() };
                        (Status::Pass, format!("verified image attestations for {pinned}"))
                    }
                }
            }
        };
        if entry.attestors.is_empty() && entry.attestations.is_empty() {
            // Nothing to verify: only the digest patch, reported as Kyverno reports it.
            let status = patch.as_ref().map(|_| Status::Pass);
            return (status, status.map(|_| "mutated image digest".to_owned()), patch);
        }
        (Some(status), Some(message), patch)
    }

    /// What verification proves for this entry and digest, from the cache or the registry.
    async fn verified(&self, entry: &ImageVerification, image: &ImageInfo, digest: &str, access: &Access) -> Result<(Verified, bool), VerifyError> {
        let key = Cache::key(&entry.fingerprint, &format!("{}@{digest}", image.repository()));
        if entry.use_cache && let Some(v) = self.cache.lock().ok().and_then(|c| c.get(&key, Instant::now()).cloned()) {
            return Ok((v, true));
        }
        let secrets = |ns: &str, name: &str| self.config.secrets.get(&(ns.to_owned(), name.to_owned())).cloned();
        for (i, set) in entry.attestors.iter().enumerate() {
            let target = EntryImage { entry, image, digest, access, secrets: &secrets };
            if let Err(e) = verify_set(&target, set, &format!(".attestors[{i}]")).await {
                return Err(match e {
                    VerifyError::Failed(m) => VerifyError::Failed(format!("failed to verify image {image}: {m}")),
                    unreachable => unreachable,
                });
            }
        }
        let mut statements = Vec::new();
        for (i, att) in entry.attestations.iter().enumerate() {
            let path = format!(".attestations[{i}]");
            if att.predicate_type.is_empty() {
                return Err(VerifyError::Failed(format!("{path}: missing type")));
            }
            let default_sets = [AttestorSet { count: None, entries: vec![palisade_compiler::ir::images::Attestor { kind: AttestorKind::Empty, annotations: BTreeMap::new(), repository: None }] }];
            let sets: &[AttestorSet] = if att.attestors.is_empty() { &default_sets } else { &att.attestors };
            let mut found = Vec::new();
            for (j, set) in sets.iter().enumerate() {
                let required = set.required_count();
                let mut count = 0;
                for entry_ir in &set.entries {
                    // Kyverno builds this path with the attestation's index; kept for identical messages.
                    let entry_path = format!("{path}.attestors[{j}].entries[{i}]{}", entry_ir.kind.path_segment());
                    let all = cosign::fetch_attestations(access, image, digest, entry_ir, &secrets).await?;
                    let of_type: Vec<Value> = all.into_iter().filter(|s| s.get("predicateType").and_then(Value::as_str) == Some(att.predicate_type.as_str())).collect();
                    if of_type.is_empty() {
                        return Err(VerifyError::Failed(format!("{entry_path}: attestions not found for predicate type {}", att.predicate_type)));
                    }
                    found.push((entry_path, of_type));
                    count += 1;
                    if count >= required {
                        break;
                    }
                }
                if count < required {
                    return Err(VerifyError::Failed(format!("image attestations verification failed, verifiedCount: {count}, requiredCount: {required}")));
                }
            }
            statements.push(found);
        }
        let v = Verified { digest: digest.to_owned(), statements };
        if entry.use_cache && let Ok(mut c) = self.cache.lock() {
            c.insert(key, v.clone(), Instant::now());
        }
        Ok((v, false))
    }

    /// The validate phase on the (mutated) resource: `verifyDigest` and `required`.
    pub fn validate(&self, policy: &PolicyIr, req: &Request) -> Vec<RuleResult> {
        let mut out = Vec::new();
        if req.operation == "DELETE" {
            return out;
        }
        let resource = req.object;
        if let Some(ns) = &policy.namespace && engine::namespace_of(resource) != Some(ns.as_str()) {
            return out;
        }
        let mut ctx = Context::new(req, resource);
        let recorded: BTreeMap<String, String> = resource
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(VERIFY_IMAGES_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        for rule in &policy.rules {
            let RuleBody::VerifyImages(vi) = &rule.body else { continue };
            if !engine::selected(rule, resource, req) || prepare(rule, &mut ctx).is_err() {
                continue;
            }
            let (images, _) = extract::extract(resource, &vi.extractors);
            let mut failed: Vec<String> = Vec::new();
            let mut passed = 0;
            let mut skipped = Vec::new();
            let mut matched = false;
            for entry in &vi.entries {
                for image in images.iter().filter(|i| applies(entry, i)) {
                    matched = true;
                    let name = image.reference();
                    if entry.verify_digest && image.digest.is_empty() {
                        failed.push(format!("missing digest for {name}"));
                    } else if entry.required && (!entry.attestors.is_empty() || !entry.attestations.is_empty()) {
                        match recorded.get(&name).map(String::as_str) {
                            Some("pass") => passed += 1,
                            Some("skip") => skipped.push(name),
                            _ => failed.push(format!("unverified image {name}")),
                        }
                    } else {
                        passed += 1;
                    }
                }
            }
            if !matched {
                continue;
            }
            let enforce = rule.enforce.unwrap_or(policy.enforce);
            let (status, message) = if !failed.is_empty() {
                failed.dedup();
                (Status::Fail, failed.join("; "))
            } else if passed > 0 || skipped.is_empty() {
                if skipped.is_empty() { (Status::Pass, "image verified".to_owned()) } else { (Status::Pass, format!("image verified, skipped images: {}", skipped.join(" "))) }
            } else {
                (Status::Skip, format!("image skipped, skipped images: {}", skipped.join(" ")))
            };
            out.push(RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce });
        }
        out
    }
}

/// One image under one `verifyImages` entry: what every attestor of the entry checks, the same
/// through nested attestor sets.
struct EntryImage<'a> {
    entry: &'a ImageVerification,
    image: &'a ImageInfo,
    digest: &'a str,
    access: &'a Access,
    /// Secret lookup by (namespace, name), for attestors that name secrets.
    secrets: &'a (dyn Fn(&str, &str) -> Option<String> + Sync),
}

/// Verifies an attestor set: `count` entries (all by default) must verify. The error lists
/// every failed entry with its path, joined the way Go's multierr joins them.
fn verify_set<'a>(
    target: &'a EntryImage<'a>,
    set: &'a AttestorSet,
    path: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), VerifyError>> + 'a>> {
    Box::pin(async move {
        let required = set.required_count();
        let mut verified = 0;
        let mut errors = Vec::new();
        for (i, a) in set.entries.iter().enumerate() {
            let entry_path = format!("{path}.entries[{i}]");
            let result = match &a.kind {
                AttestorKind::Nested(nested) => {
                    let nested_path = format!("{entry_path}.attestor");
                    verify_set(target, nested, &nested_path).await
                }
                _ => cosign::verify_signature(target.access, target.image, target.digest, a, &target.entry.annotations, target.secrets)
                    .await
                    .map_err(|e| match e {
                        VerifyError::Failed(m) => VerifyError::Failed(format!("{entry_path}{}: {m}", a.kind.path_segment())),
                        other => other,
                    }),
            };
            match result {
                Ok(()) => {
                    verified += 1;
                    if verified >= required {
                        return Ok(());
                    }
                }
                Err(VerifyError::Unreachable(m)) => return Err(VerifyError::Unreachable(m)),
                Err(VerifyError::Failed(m)) => errors.push(m),
            }
        }
        if errors.is_empty() {
            errors.push(format!("image attestors verification failed, verifiedCount: {verified}, requiredCount: {required}"));
        }
        Err(VerifyError::Failed(errors.join("; ")))
    })
}

/// Loads the rule's context and checks its preconditions; `Err` carries a skip or error result.
fn prepare(rule: &RuleIr, ctx: &mut Context) -> Result<(), (Status, String)> {
    ctx.load(&rule.context).map_err(|e| (Status::Error, format!("failed to load context: {e}")))?;
    if let Some(pre) = &rule.preconditions {
        match conditions::evaluate(pre, &|expr| ctx.query(expr)) {
            Err(e) => return Err((Status::Error, format!("failed to evaluate preconditions: {e}"))),
            Ok((false, msg)) => {
                let m = if msg.is_empty() { "preconditions not met".to_owned() } else { format!("preconditions not met; {msg}") };
                return Err((Status::Skip, m));
            }
            Ok((true, _)) => {}
        }
    }
    Ok(())
}

/// Whether an entry's `imageReferences` select the image and `skipImageReferences` do not.
fn applies(entry: &ImageVerification, image: &ImageInfo) -> bool {
    let name = image.reference();
    let matches = |refs: &[palisade_stdlib::wildcard::Wildcard]| refs.iter().any(|w| w.matches(&name) || w.matches(&image.tagged()));
    matches(&entry.image_references) && !matches(&entry.skip_image_references)
}

/// On update, the verify-images annotation may not be changed by the request itself.
fn annotation_changed(req: &Request) -> bool {
    let Some(old) = req.old_object else { return false };
    let get = |v: &Value| v.pointer("/metadata/annotations").and_then(|a| a.get(VERIFY_IMAGES_ANNOTATION)).cloned();
    req.operation == "UPDATE" && get(old) != get(req.object)
}

/// Attestation conditions, evaluated on every request with each statement's predicate added to
/// the context. Cached verification results carry the statements, never a verdict.
fn check_conditions(entry: &ImageVerification, image: &ImageInfo, digest: &str, verified: &Verified, ctx: &Context) -> Result<(), String> {
    let pinned = ImageInfo { digest: digest.to_owned(), ..image.clone() };
    for (att, found) in entry.attestations.iter().zip(&verified.statements) {
        if att.conditions.is_empty() {
            continue;
        }
        for (entry_path, statements) in found {
            for s in statements {
                let Some(predicate) = s.get("predicate").filter(|p| p.is_object()) else {
                    return Err(format!("{entry_path}: failed to check attestations: failed to extract predicate from statement: {s}"));
                };
                let scoped = ctx.with_fields(predicate);
                for block in &att.conditions {
                    match conditions::evaluate(block, &|expr| scoped.query(expr)) {
                        Ok((true, _)) => {}
                        Ok((false, _)) => {
                            return Err(format!("{entry_path}: attestation checks failed for {pinned} and predicate {}", att.predicate_type));
                        }
                        Err(e) => return Err(format!("{entry_path}: failed to check attestations: {e}")),
                    }
                }
            }
        }
    }
    Ok(())
}

/// The JSON patch that records verification results in the resource's annotation.
pub fn annotation_patch(resource: &Value, verified: &BTreeMap<String, String>) -> Option<Value> {
    if verified.is_empty() {
        return None;
    }
    let mut merged: BTreeMap<String, String> = resource
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(VERIFY_IMAGES_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    merged.extend(verified.iter().map(|(k, v)| (k.clone(), v.clone())));
    let text = serde_json::to_string(&merged).ok()?;
    match resource.pointer("/metadata/annotations") {
        Some(Value::Object(_)) => Some(json!({"op": "add", "path": "/metadata/annotations/kyverno.io~1verify-images", "value": text})),
        _ => Some(json!({"op": "add", "path": "/metadata/annotations", "value": {VERIFY_IMAGES_ANNOTATION: text}})),
    }
}

/// Applies `add` and `replace` JSON patch operations (the only ones image verification emits).
pub fn apply_patches(doc: &mut Value, patches: &[Value]) -> Result<(), String> {
    for p in patches {
        let op = p.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = p.get("path").and_then(Value::as_str).ok_or("patch without a path")?;
        let value = p.get("value").cloned().unwrap_or(Value::Null);
        let (parent, last) = path.rsplit_once('/').ok_or_else(|| format!("invalid patch path {path}"))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = doc.pointer_mut(parent).ok_or_else(|| format!("patch path {path} does not exist"))?;
        match (op, target) {
            ("add" | "replace", Value::Object(map)) => {
                if op == "replace" && !map.contains_key(&last) {
                    return Err(format!("patch path {path} does not exist"));
                }
                map.insert(last, value);
            }
            ("replace", Value::Array(items)) => {
                let slot = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)).ok_or_else(|| format!("patch path {path} does not exist"))?;
                *slot = value;
            }
            (other, _) => return Err(format!("unsupported patch operation {other} at {path}")),
        }
    }
    Ok(())
}

/// An admission decision over rule results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub allowed: bool,
    pub message: String,
    pub warnings: Vec<String>,
}

/// Decides admission as Kyverno does: a failed Enforce rule blocks; an errored rule blocks when
/// its policy's failurePolicy is Fail; failed Audit rules and ignored errors become warnings.
pub fn decide(resource: &Value, results: &[(RuleResult, bool)]) -> Admission {
    let mut blocking: BTreeMap<&str, Vec<&RuleResult>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (r, failure_policy_ignore) in results {
        let blocks = match r.status {
            Status::Fail => r.enforce,
            Status::Error => !failure_policy_ignore,
            _ => false,
        };
        if blocks {
            blocking.entry(r.policy.as_str()).or_default().push(r);
        } else if matches!(r.status, Status::Fail | Status::Error | Status::Warn) {
            warnings.push(format!("policy {}.{}: {}", r.policy, r.rule, r.message));
        }
    }
    if blocking.is_empty() {
        return Admission { allowed: true, message: String::new(), warnings };
    }
    let (_, _, kind) = engine::gvk(resource);
    let ns = engine::namespace_of(resource).unwrap_or_default();
    let name = resource.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut message = format!("\n\nresource {kind}/{ns}/{name} was blocked due to the following policies\n\n");
    for (policy, rules) in blocking {
        message.push_str(&format!("{policy}:\n"));
        for r in rules {
            message.push_str(&format!("  {}: {}\n", r.rule, r.message));
        }
    }
    Admission { allowed: false, message, warnings }
}

/// Whether a policy has any `verifyImages` rule.
pub fn has_image_rules(policy: &PolicyIr) -> bool {
    policy.rules.iter().any(|r| matches!(r.body, RuleBody::VerifyImages(_)))
}

/// The `verifyImages` bodies of a policy, for tools that list them.
pub fn image_rules(policy: &PolicyIr) -> impl Iterator<Item = (&RuleIr, &VerifyImages)> {
    policy.rules.iter().filter_map(|r| match &r.body {
        RuleBody::VerifyImages(v) => Some((r, v)),
        _ => None,
    })
}
