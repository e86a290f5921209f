//! The CEL kinds at admission: ValidatingPolicy, ValidatingAdmissionPolicy (with bindings) and
//! ImageValidatingPolicy on the validating CEL endpoints, MutatingPolicy and
//! MutatingAdmissionPolicy on the mutating ones.
//!
//! Responses follow Kyverno's CEL handlers: a denial lists `Policy <name> failed: <message>`
//! for each failing policy, joined with `; `; a failure of a policy whose validation actions
//! are only `Warn` becomes a warning; `Audit` failures only reach reports. An evaluation error
//! denies under the policy's `failurePolicy: Fail`. The webhook has no cluster access, so
//! `namespaceObject` is null and image signature checks are errors (see [`crate::cel::images`]).

use std::time::Instant;

use palisade_compiler::bundle::{CelIr, FailurePolicy};

use super::admission::{Admission, Verdict};
use super::engine::{Endpoint, Engine};
use crate::cel::CelInputs;
use crate::engine::{Request, RuleResult, Status};

/// Reviews one admission on a CEL endpoint.
pub fn review(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant) -> Verdict {
    let inputs = CelInputs { host: Default::default(), bindings: engine.bindings().to_vec(), exceptions: Vec::new() };
    if matches!(endpoint, Endpoint::CelMutate(_)) {
        return mutate(engine, endpoint, adm, deadline, &inputs);
    }
    let req = Request {
        operation: &adm.operation,
        object: &adm.object,
        old_object: adm.old_object.as_ref(),
        user: &adm.user,
        namespace_labels: None,
        variables: &[],
        rule_variables: None,
    };
    let b = crate::cel::bindings(&req, None);
    let mut results: Vec<RuleResult> = Vec::new();
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for policy in engine.cel_policies(endpoint) {
        if Instant::now() >= deadline {
            return timed_out(endpoint, results, warnings);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &policy.ir {
            CelIr::Validating(p) => crate::cel::evaluate_policy(p, &req, &b, &inputs, None),
            CelIr::ImageValidating(p) => crate::cel::images::evaluate(p, &req, &inputs, None, None).into_iter().collect(),
            _ => Vec::new(),
        }));
        let Ok(policy_results) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while evaluating policy {}", policy.meta.name));
        };
        for r in &policy_results {
            match r.status {
                Status::Fail if r.enforce => denials.push(r.message.clone()),
                Status::Warn => warnings.push(r.message.clone()),
                Status::Error if policy.meta.failure_policy == FailurePolicy::Fail => denials.push(r.message.clone()),
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
        Verdict { allowed: false, message: Some(denials.join("; ")), warnings, patch: None, results, error: None }
    }
}

/// MutatingPolicy and MutatingAdmissionPolicy in turn, each seeing the object the ones before
/// it left, and the whole change as one JSON Patch.
fn mutate(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant, _inputs: &CelInputs) -> Verdict {
    let mut current = adm.object.clone();
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    let mut denials = Vec::new();
    for policy in engine.cel_policies(endpoint) {
        if Instant::now() >= deadline {
            return timed_out(endpoint, results, warnings);
        }
        let CelIr::Mutating(p) = &policy.ir else { continue };
        let req = Request {
            operation: &adm.operation,
            object: &current,
            old_object: adm.old_object.as_ref(),
            user: &adm.user,
            namespace_labels: None,
            variables: &[],
            rule_variables: None,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::cel::mutate_policy(p, &req, None)));
        let Ok(outcome) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while mutating with policy {}", policy.meta.name));
        };
        let Some(m) = outcome else { continue };
        if m.result.status == Status::Error {
            let message = format!("Policy {} failed: {}", p.name, m.result.message);
            if policy.meta.failure_policy == FailurePolicy::Fail {
                denials.push(message);
            } else {
                warnings.push(message);
            }
        }
        current = m.patched;
        results.push(m.result);
    }
    if !denials.is_empty() {
        return Verdict { allowed: false, message: Some(denials.join("; ")), warnings, patch: None, results, error: None };
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
        FailurePolicy::Fail => Verdict { allowed: false, message: Some(error.clone()), warnings, patch: None, results, error: Some(error) },
        FailurePolicy::Ignore => {
            warnings.push(format!("palisade: {error}; allowed because the failure policy is Ignore"));
            Verdict { allowed: true, message: None, warnings, patch: None, results, error: Some(error) }
        }
    }
}
