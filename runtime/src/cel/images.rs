//! ImageValidatingPolicy (cluster and namespaced): the images of a resource, selected by
//! `matchImageReferences`, checked by CEL validations that call `verifyImageSignatures`,
//! `verifyAttestationSignatures` and `extractPayload`.
//!
//! Everything up to the signature checks runs offline: match constraints and conditions, the
//! `images` variable (containers, initContainers and ephemeralContainers of a Pod or of a pod
//! controller's template, plus the policy's own `images` extractors), the `attestors` and
//! `attestations` variables and the validations. The signature functions are answered by
//! [`PolicyVerifier`]: cosign attestors go to the registry through [`crate::images::Verifier`]
//! when one is given; without one (offline `palisade test`), and for notary attestors, which
//! Palisade does not verify, they fail with an error that says why.
//!
//! As in Kyverno, `verifyImageSignatures` and `verifyAttestationSignatures` count the attestors
//! that verify: an attestor whose signature does not verify is not counted (the validation then
//! fails with the policy's message), while a registry that cannot be reached is an error.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use palisade_compiler::ir::cel::{AttestationIr, AttestorIr, ImageMatch, ImageValidatingPolicyIr};
use palisade_compiler::ir::policy::PolicyIr;
use palisade_stdlib::cel::library::{ImageVerifier, with_image_verifier};
use palisade_stdlib::cel::{Bindings, Value as CelValue};
use palisade_stdlib::wildcard;

use super::{CelInputs, constraints_match, eval_bool, run_rules};
use crate::engine::{self, Request, RuleResult, Status, UserInfo};

/// The pod spec of a Pod, a pod controller or a CronJob, where the default extractors look.
fn pod_spec(object: &Value) -> Option<&Value> {
    match object.get("kind").and_then(Value::as_str).unwrap_or_default() {
        "Pod" => object.get("spec"),
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => object.pointer("/spec/template/spec"),
    }
}

/// `images`: extractor name -> image references, before `matchImageReferences` filters them.
/// A list the object does not have is empty.
fn extract(p: &ImageValidatingPolicyIr, b: &Bindings, object: &Value) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::new();
    if let Some(spec) = pod_spec(object) {
        for key in ["containers", "initContainers", "ephemeralContainers"] {
            let images = spec
                .get(key)
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c.get("image").and_then(Value::as_str)).map(str::to_owned).collect())
                .unwrap_or_default();
            out.push((key.to_owned(), images));
        }
    }
    for e in &p.extractors {
        let v = e.program.eval(b, &[]).map_err(|err| format!("images[{}]: {err}", e.name))?;
        let json = palisade_stdlib::cel::value::to_json(&v).map_err(|err| format!("images[{}]: {err}", e.name))?;
        let Some(list) = json.as_array() else { return Err(format!("images[{}] must be a list of strings", e.name)) };
        let images = list.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(|| format!("images[{}] must be a list of strings", e.name)));
        let images = images.collect::<Result<Vec<_>, _>>()?;
        match out.iter_mut().find(|(k, _)| *k == e.name) {
            Some(slot) => slot.1 = images,
            None => out.push((e.name.clone(), images)),
        }
    }
    Ok(out)
}

/// Whether `matchImageReferences` select the image (all images when the list is empty).
fn selected(p: &ImageValidatingPolicyIr, image: &str) -> Result<bool, String> {
    if p.match_images.is_empty() {
        return Ok(true);
    }
    for m in &p.match_images {
        let hit = match m {
            ImageMatch::Glob(g) => wildcard::matches(g, image),
            ImageMatch::Expression(e) => {
                let mut b = Bindings::new();
                b.bind_json("ref", &Value::String(image.to_owned()));
                match e.eval(&b, &[]) {
                    Ok(CelValue::Bool(v)) => v,
                    Ok(other) => return Err(format!("matchImageReferences expression '{}' returned {}, not a bool", e.source(), other.type_of())),
                    Err(err) => return Err(format!("matchImageReferences expression '{}' failed: {err}", e.source())),
                }
            }
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `attestors.<name>`: the attestor as written, with its name.
fn attestor_value(a: &AttestorIr) -> Value {
    match a {
        AttestorIr::Cosign { name, spec, .. } => json!({"name": name, "cosign": spec}),
        AttestorIr::Notary { name, spec } => json!({"name": name, "notary": spec}),
    }
}

/// Evaluates an image validating policy on one request; `None` when it does not apply.
pub fn evaluate(
    p: &ImageValidatingPolicyIr,
    req: &Request,
    inputs: &CelInputs,
    namespace_object: Option<&Value>,
    verifier: Option<Arc<crate::images::Verifier>>,
) -> Option<RuleResult> {
    evaluate_until(p, req, inputs, namespace_object, verifier, None)
}

/// [`evaluate`] with registry work bounded by `deadline` (the webhook's per-request deadline).
pub fn evaluate_until(
    p: &ImageValidatingPolicyIr,
    req: &Request,
    inputs: &CelInputs,
    namespace_object: Option<&Value>,
    verifier: Option<Arc<crate::images::Verifier>>,
    deadline: Option<Instant>,
) -> Option<RuleResult> {
    let subject = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    let request_ns = engine::namespace_of(subject).unwrap_or_default();
    if p.namespace.as_deref().is_some_and(|ns| ns != request_ns) || !constraints_match(&p.constraints, req, namespace_object) {
        return None;
    }
    let enforce = p.actions.iter().any(|a| a == "Deny");
    let result = |status: Status, message: String| RuleResult { policy: p.name.clone(), rule: String::new(), status, message, enforce };
    let mut b = super::bindings(req, namespace_object);
    for c in &p.match_conditions {
        match eval_bool(c, &b, &[]) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(_) if p.ignore_failures => return None,
            Err(e) => return Some(result(Status::Error, e)),
        }
    }
    let exempt = inputs.exceptions.iter().find(|e| {
        e.namespace.as_deref().is_none_or(|ns| ns.is_empty() || ns == request_ns || p.namespace.is_none())
            && e.policy_refs.iter().any(|(k, n)| n == &p.name && (k.is_empty() || k.ends_with("ImageValidatingPolicy")))
            && e.match_conditions.iter().all(|c| eval_bool(c, &b, &[]).unwrap_or(false))
    });
    if let Some(ex) = exempt {
        let status = if ex.report_result == "pass" { Status::Pass } else { Status::Skip };
        return Some(result(status, format!("rule is skipped due to policy exception {}", ex.name)));
    }
    let failed = |e: String| Some(result(if p.ignore_failures { Status::Skip } else { Status::Error }, e));
    // Custom extractors read `request.object` as well as `object`.
    let mut extraction = super::bindings(req, namespace_object);
    let mut request = Map::new();
    request.insert("object".into(), subject.clone());
    request.insert("operation".into(), req.operation.into());
    if let Some(o) = req.old_object {
        request.insert("oldObject".into(), o.clone());
    }
    extraction.bind_json("request", &Value::Object(request));
    let extracted = match extract(p, &extraction, subject) {
        Ok(x) => x,
        Err(e) => return failed(format!("failed to extract images: {e}")),
    };
    let mut images = Map::new();
    let mut any = false;
    for (key, list) in extracted {
        let mut kept = Vec::new();
        for image in list {
            match selected(p, &image) {
                Ok(true) => kept.push(Value::String(image)),
                Ok(false) => {}
                Err(e) => return failed(e),
            }
        }
        any |= !kept.is_empty();
        images.insert(key, Value::Array(kept));
    }
    if !any {
        return Some(result(Status::Skip, "no images matched matchImageReferences".into()));
    }
    b.bind_json("images", &Value::Object(images));
    b.bind_json("attestors", &Value::Object(p.attestors.iter().map(|a| (a.name().to_owned(), attestor_value(a))).collect()));
    b.bind_json("attestations", &Value::Object(p.attestations.iter().map(|a| (a.name.clone(), Value::String(a.name.clone()))).collect()));
    let policy_verifier: Arc<dyn ImageVerifier> =
        Arc::new(PolicyVerifier {
            policy: p.name.clone(),
            attestors: p.attestors.clone(),
            attestations: p.attestations.clone(),
            insecure: p.allow_insecure_registry,
            verifier,
            deadline,
        });
    let v = with_image_verifier(policy_verifier, || run_rules(&p.rules, &b, &Value::Null));
    let status = match v.status {
        Status::Error if p.ignore_failures => Status::Skip,
        Status::Fail if !p.actions.iter().any(|a| a == "Deny" || a == "Audit") && p.actions.iter().any(|a| a == "Warn") => Status::Warn,
        s => s,
    };
    // Kyverno's image policy handler words errors apart from failures.
    let message = match status {
        Status::Pass => String::new(),
        Status::Error => format!("Policy {} error: {}", p.name, v.message),
        _ => format!("Policy {} failed: {}", p.name, v.message),
    };
    Some(result(status, message))
}

/// Answers the image verification functions for one policy.
pub struct PolicyVerifier {
    policy: String,
    attestors: Vec<AttestorIr>,
    attestations: Vec<AttestationIr>,
    insecure: bool,
    verifier: Option<Arc<crate::images::Verifier>>,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for PolicyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyVerifier").field("policy", &self.policy).field("registry", &self.verifier.is_some()).finish()
    }
}

impl PolicyVerifier {
    fn attestor(&self, name: &str) -> Result<&AttestorIr, String> {
        self.attestors.iter().find(|a| a.name() == name).ok_or_else(|| format!("attestor not found in policy: {name}"))
    }

    fn attestation(&self, name: &str) -> Result<&AttestationIr, String> {
        self.attestations.iter().find(|a| a.name == name).ok_or_else(|| format!("attestation not found in policy: {name}"))
    }

    /// The `verifyImages` attestor entry of a cosign attestor, in the `kyverno.io/v1` shape the
    /// verifier takes.
    fn entry(&self, a: &AttestorIr) -> Result<Value, String> {
        let spec = match a {
            AttestorIr::Notary { name, .. } => {
                return Err(format!("attestor {name}: notary signatures are not supported by Palisade; use a cosign attestor"));
            }
            AttestorIr::Cosign { name, key_expression: Some(_), .. } => {
                return Err(format!("attestor {name}: key expressions are not supported by Palisade yet; give the key as data"));
            }
            AttestorIr::Cosign { spec, .. } => spec,
        };
        let s = |p: &str| spec.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let mut rekor = Map::new();
        if let Some(u) = s("/ctlog/url") {
            rekor.insert("url".into(), u.into());
        }
        if let Some(k) = s("/ctlog/rekorPubKey") {
            rekor.insert("pubkey".into(), k.into());
        }
        rekor.insert("ignoreTlog".into(), spec.pointer("/ctlog/insecureIgnoreTlog").and_then(Value::as_bool).unwrap_or(false).into());
        let mut ctlog = Map::new();
        if let Some(k) = s("/ctlog/ctLogPubKey") {
            ctlog.insert("pubkey".into(), k.into());
        }
        ctlog.insert("ignoreSCT".into(), spec.pointer("/ctlog/insecureIgnoreSCT").and_then(Value::as_bool).unwrap_or(false).into());
        if let Some(data) = s("/key/data") {
            let mut keys = Map::new();
            keys.insert("publicKeys".into(), data.into());
            keys.insert("rekor".into(), rekor.into());
            keys.insert("ctlog".into(), ctlog.into());
            if let Some(h) = s("/key/hashAlgorithm") {
                keys.insert("signatureAlgorithm".into(), h.into());
            }
            return Ok(json!({"keys": keys}));
        }
        if spec.get("key").is_some() {
            return Err(format!("attestor {}: only `key.data` keys are supported by Palisade (no KMS or secrets)", a.name()));
        }
        if let Some(k) = spec.get("keyless") {
            let identity = k.pointer("/identities/0").cloned().unwrap_or(Value::Null);
            let mut keyless = Map::new();
            keyless.insert("rekor".into(), rekor.into());
            keyless.insert("ctlog".into(), ctlog.into());
            for (from, to) in [("issuer", "issuer"), ("subject", "subject"), ("issuerRegExp", "issuerRegExp"), ("subjectRegExp", "subjectRegExp")] {
                if let Some(v) = identity.get(from).and_then(Value::as_str) {
                    keyless.insert(to.into(), v.into());
                }
            }
            if let Some(r) = k.get("roots").and_then(Value::as_str) {
                keyless.insert("roots".into(), r.into());
            }
            return Ok(json!({"keyless": keyless}));
        }
        if let Some(c) = spec.get("certificate") {
            let mut certs = Map::new();
            certs.insert("rekor".into(), rekor.into());
            certs.insert("ctlog".into(), ctlog.into());
            if let Some(v) = c.pointer("/cert/value").and_then(Value::as_str) {
                certs.insert("cert".into(), v.into());
            }
            if let Some(v) = c.pointer("/certChain/value").and_then(Value::as_str) {
                certs.insert("certChain".into(), v.into());
            }
            return Ok(json!({"certificates": certs}));
        }
        Err(format!("attestor {}: a cosign attestor needs a key, keyless identities or a certificate", a.name()))
    }

    /// Runs one `verifyImages` entry for one image through the verifier: whether it verified,
    /// or an error when verification could not be done (no registry access, a registry that
    /// does not answer in time, an attestor Palisade cannot use).
    fn run(&self, image: &str, verification: Value) -> Result<bool, String> {
        let Some(verifier) = &self.verifier else {
            return Err(format!("verifying {image} needs registry access, which this evaluation does not have"));
        };
        let mut entry = json!({"imageReferences": ["*"], "mutateDigest": false, "verifyDigest": false, "required": false,
            "imageRegistryCredentials": {"allowInsecureRegistry": self.insecure}});
        if let (Some(e), Some(v)) = (entry.as_object_mut(), verification.as_object()) {
            e.extend(v.clone());
        }
        let doc = json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": self.policy},
            "spec": {"rules": [{"name": "verify", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "verifyImages": [entry]}]}});
        let policy = PolicyIr::lower(&doc).map_err(|e| format!("attestor: {e}"))?;
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "image", "namespace": "default"},
            "spec": {"containers": [{"name": "image", "image": image}]}});
        let user = UserInfo::default();
        let req = Request { operation: "CREATE", object: &pod, old_object: None, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
        let out = verifier.verify_until(&policy, &req, self.deadline);
        if let Some(r) = out.results.iter().find(|r| r.status == Status::Error) {
            return Err(r.message.clone());
        }
        match out.results.iter().find(|r| r.status != Status::Pass) {
            Some(_) => Ok(false),
            None if out.results.is_empty() => Err(format!("{image} was not verified")),
            None => Ok(true),
        }
    }
}

impl ImageVerifier for PolicyVerifier {
    fn verify_signatures(&self, image: &str, attestors: &[String]) -> Result<i64, String> {
        let mut count = 0;
        for name in attestors {
            let entry = self.entry(self.attestor(name)?)?;
            if self.run(image, json!({"attestors": [{"entries": [entry]}]}))? {
                count += 1;
            }
        }
        Ok(count)
    }

    fn verify_attestations(&self, image: &str, attestation: &str, attestors: &[String]) -> Result<i64, String> {
        let attestation = self.attestation(attestation)?;
        if attestation.source != "intoto" {
            return Err(format!("attestation {}: referrer attestations are not supported by Palisade; use intoto", attestation.name));
        }
        let mut count = 0;
        for name in attestors {
            let entry = self.entry(self.attestor(name)?)?;
            if self.run(image, json!({"attestations": [{"type": attestation.kind, "attestors": [{"entries": [entry]}]}]}))? {
                count += 1;
            }
        }
        Ok(count)
    }

    fn payload(&self, image: &str, attestation: &str) -> Result<Value, String> {
        let attestation = self.attestation(attestation)?;
        Err(format!("extractPayload({image}, {}): reading attestation payloads is not supported by Palisade yet", attestation.name))
    }
}
