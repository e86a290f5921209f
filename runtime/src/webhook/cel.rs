//! The CEL kinds at admission: ValidatingPolicy, ValidatingAdmissionPolicy (with bindings) and
//! ImageValidatingPolicy on the validating CEL endpoints, MutatingPolicy and
//! MutatingAdmissionPolicy on the mutating ones.
//!
//! Responses follow Kyverno's CEL handlers: a denial lists `Policy <name> failed: <message>`
//! (`Policy <name> error: <message>` for an image policy that could not be evaluated) for each
//! failing policy, joined with `; `; a failure of a policy whose validation actions are only
//! `Warn` becomes a warning; `Audit` failures only reach reports. An evaluation error denies
//! under the policy's `failurePolicy: Fail`.
//!
//! A path that names policies (`/vpol/fail/a/b`, as `palisade webhook-config` routes requests)
//! runs only those; see [`Endpoint::policies_in_path`].
//!
//! ImageValidatingPolicy signature checks go to registries through the server's image verifier
//! (the one `verifyImages` rules use, with its cache), bounded by the request's deadline; without
//! a verifier they are errors that say so.
//!
//! `namespaceObject`: the webhook has no cluster access, so it cannot read the namespace's
//! labels. It binds the Namespace named by the request with the one label Kubernetes puts on
//! every namespace, `kubernetes.io/metadata.name`; any other label is unknown, as in the CLI
//! without a values file. Policies that select namespaces by other labels get a webhook of their
//! own whose namespaceSelector the API server evaluates with the real labels (see
//! [`super::config`]), and run here without it.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use palisade_compiler::bundle::{CelIr, FailurePolicy, PolicyMeta};

use super::admission::{Admission, Message, Verdict};
use super::engine::{Endpoint, Engine};
use crate::cel::CelInputs;
use crate::engine::{Request, RuleResult, Status};
use crate::images::Verifier;

/// Reviews one admission on a CEL endpoint; `named` limits it to the policies the path names.
pub fn review(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant, named: Option<&[String]>) -> Verdict {
    let inputs = CelInputs { host: Default::default(), bindings: engine.bindings().to_vec(), exceptions: Vec::new() };
    let namespace = namespace_object(&adm.namespace);
    if matches!(endpoint, Endpoint::CelMutate(_)) {
        return mutate(engine, endpoint, adm, deadline, named, namespace.as_ref());
    }
    let policies: Vec<(&PolicyMeta, &CelIr)> = engine.cel_selected(endpoint, named).collect();
    let verifier = engine.image_verifier().cloned();
    let images = policies.iter().any(|(_, ir)| matches!(ir, CelIr::ImageValidating(_)));
    let run = || validate(endpoint, adm, deadline, &policies, &inputs, namespace.as_ref(), verifier.as_ref());
    // Image policies wait on registries: on the server's multi-threaded runtime they run in
    // `block_in_place`, so the worker's other requests move to another worker meanwhile.
    let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if images && multi_thread { tokio::task::block_in_place(run) } else { run() }
}

/// The Namespace of a namespaced request, with the labels the webhook can know.
pub fn namespace_object(namespace: &str) -> Option<Value> {
    if namespace.is_empty() {
        return None;
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}},
    }))
}

fn validate(
    endpoint: Endpoint,
    adm: &Admission,
    deadline: Instant,
    policies: &[(&PolicyMeta, &CelIr)],
    inputs: &CelInputs,
    namespace: Option<&Value>,
    verifier: Option<&Arc<Verifier>>,
) -> Verdict {
    let req = Request {
        operation: &adm.operation,
        object: &adm.object,
        old_object: adm.old_object.as_ref(),
        user: &adm.user,
        namespace_labels: None,
        variables: &[],
        rule_variables: None,
    };
    let b = crate::cel::bindings(&req, namespace);
    let mut results: Vec<RuleResult> = Vec::new();
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for (meta, ir) in policies {
        if Instant::now() >= deadline {
            return timed_out(endpoint, results, warnings);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match ir {
            CelIr::Validating(p) => crate::cel::evaluate_policy(p, &req, &b, inputs, namespace),
            CelIr::ImageValidating(p) => {
                crate::cel::images::evaluate_until(p, &req, inputs, namespace, verifier.cloned(), Some(deadline)).into_iter().collect()
            }
            _ => Vec::new(),
        }));
        let Ok(policy_results) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while evaluating policy {}", meta.name));
        };
        for r in &policy_results {
            match r.status {
                Status::Fail if r.enforce => denials.push(r.message.clone()),
                Status::Warn => warnings.push(r.message.clone()),
                Status::Error if meta.failure_policy == FailurePolicy::Fail => denials.push(r.message.clone()),
                Status::Error => warnings.push(r.message.clone()),
                _ => {}
            }
        }
        results.extend(policy_results);
    }
    denials.dedup();
    if denials.is_empty() {
        Verdict { allowed: true, message: None, warnings, patch: None, results, error: None }
    } else {
        Verdict { allowed: false, message: Some(Message::Text(denials.join("; "))), warnings, patch: None, results, error: None }
    }
}

/// MutatingPolicy and MutatingAdmissionPolicy in turn, each seeing the object the ones before
/// it left, and the whole change as one JSON Patch.
fn mutate(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant, named: Option<&[String]>, namespace: Option<&Value>) -> Verdict {
    let mut current = adm.object.clone();
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    let mut denials = Vec::new();
    for (meta, ir) in engine.cel_selected(endpoint, named) {
        if Instant::now() >= deadline {
            return timed_out(endpoint, results, warnings);
        }
        let CelIr::Mutating(p) = ir else { continue };
        let req = Request {
            operation: &adm.operation,
            object: &current,
            old_object: adm.old_object.as_ref(),
            user: &adm.user,
            namespace_labels: None,
            variables: &[],
            rule_variables: None,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::cel::mutate_policy(p, &req, namespace)));
        let Ok(outcome) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while mutating with policy {}", meta.name));
        };
        let Some(m) = outcome else { continue };
        if m.result.status == Status::Error {
            let message = format!("Policy {} failed: {}", p.name, m.result.message);
            if meta.failure_policy == FailurePolicy::Fail {
                denials.push(message);
            } else {
                warnings.push(message);
            }
        }
        current = m.patched;
        results.push(m.result);
    }
    if !denials.is_empty() {
        return Verdict { allowed: false, message: Some(Message::Text(denials.join("; "))), warnings, patch: None, results, error: None };
    }
    let ops = crate::mutate::jsonpatch::diff(&adm.object, &current);
    let patch = if ops.is_empty() { None } else { serde_json::to_vec(&ops).ok() };
    Verdict { allowed: true, message: None, warnings, patch, results, error: None }
}

fn timed_out(endpoint: Endpoint, results: Vec<RuleResult>, warnings: Vec<String>) -> Verdict {
    failed(endpoint, results, warnings, "evaluation did not finish within the request deadline".into())
}

/// A verdict for an evaluation that could not finish: the endpoint's failure policy decides.
fn failed(endpoint: Endpoint, results: Vec<RuleResult>, mut warnings: Vec<String>, error: String) -> Verdict {
    match endpoint.failure_policy() {
        FailurePolicy::Fail => Verdict { allowed: false, message: Some(Message::Text(error.clone())), warnings, patch: None, results, error: Some(error) },
        FailurePolicy::Ignore => {
            warnings.push(format!("palisade: {error}; allowed because the failure policy is Ignore"));
            Verdict { allowed: true, message: None, warnings, patch: None, results, error: Some(error) }
        }
    }
}
