//! `verifyImages` rules in admission, as Kyverno's webhooks run them.
//!
//! On the mutate endpoints, after the mutate rules, every policy's image rules verify the
//! images of the (already mutated) object: `mutateDigest` pins tags to digests and the
//! `kyverno.io/verify-images` annotation records which images passed, and both become part of
//! the endpoint's JSON Patch. On the validate endpoints, the image rules check the object the
//! API server sends after mutation: `verifyDigest` (pinned by digest) and `required` (the
//! annotation says the image passed). A failed rule blocks when its failure action is Enforce;
//! a rule that errors (a registry that is down or too slow) blocks when the policy's
//! failurePolicy is Fail, and is a warning otherwise.
//!
//! Registry work is bounded by the request's deadline. It blocks its thread, so on the
//! server's multi-threaded runtime it runs in `block_in_place`, which lets the other requests
//! on that worker move to another one.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use palisade_compiler::bundle::FailurePolicy;

use super::admission::Admission;
use super::engine::EndpointPolicy;
use crate::engine::{Request, RuleResult, Status};
use crate::images::{self, Verifier};

/// What the image rules of one endpoint decided.
#[derive(Default)]
pub struct ImagePhase {
    pub results: Vec<RuleResult>,
    /// Policy -> rule -> message, for the block message.
    pub blocked: BTreeMap<String, BTreeMap<String, String>>,
    pub warnings: Vec<String>,
}

impl ImagePhase {
    /// Records a policy's results: Enforce failures and errors under failurePolicy Fail block,
    /// other failures and errors become warnings in Kyverno's `policy <p>.<r>: <message>` form.
    fn record(&mut self, policy: &EndpointPolicy, results: Vec<RuleResult>) {
        for r in &results {
            let blocks = match r.status {
                Status::Fail => r.enforce,
                Status::Error => policy.meta.failure_policy == FailurePolicy::Fail,
                _ => false,
            };
            if blocks {
                self.blocked.entry(policy.meta.name.clone()).or_default().insert(r.rule.clone(), r.message.clone());
            }
            if matches!(r.status, Status::Fail | Status::Error) && (!blocks || policy.meta.emit_warning) {
                self.warnings.push(format!("policy {}.{}: {}", r.policy, r.rule, r.message));
            }
        }
        self.results.extend(results);
    }
}

/// The mutate phase: verifies images for every policy in turn and applies the digest and
/// annotation patches to `current`, so the endpoint's patch (a diff of the request's object and
/// `current`) carries them at Kyverno's paths.
pub fn verify(verifier: &Verifier, policies: &[EndpointPolicy], adm: &Admission, current: &mut Value, deadline: Instant) -> ImagePhase {
    let mut phase = ImagePhase::default();
    let run = |phase: &mut ImagePhase, current: &mut Value| {
        for policy in policies {
            let req = request(adm, current);
            let outcome = verifier.verify_until(&policy.ir, &req, Some(deadline));
            let mut results = outcome.results;
            if !outcome.patches.is_empty() {
                let mut next = current.clone();
                match images::apply_patches(&mut next, &outcome.patches) {
                    Ok(()) => *current = next,
                    Err(e) => {
                        let rule = results.first().map(|r| r.rule.clone()).unwrap_or_default();
                        let message = format!("failed to apply the image patches: {e}");
                        results.push(RuleResult { policy: policy.ir.name.clone(), rule, status: Status::Error, message, enforce: true });
                    }
                }
            }
            phase.record(policy, results);
        }
    };
    let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| run(&mut phase, current));
    } else {
        run(&mut phase, current);
    }
    phase
}

/// The validate phase: `verifyDigest` and `required` on the object as admitted. No registry
/// access.
pub fn validate(verifier: &Verifier, policies: &[EndpointPolicy], adm: &Admission) -> ImagePhase {
    let mut phase = ImagePhase::default();
    let req = request(adm, &adm.object);
    for policy in policies {
        let results = verifier.validate(&policy.ir, &req);
        phase.record(policy, results);
    }
    phase
}

fn request<'a>(adm: &'a Admission, object: &'a Value) -> Request<'a> {
    Request {
        operation: &adm.operation,
        object,
        old_object: adm.old_object.as_ref(),
        user: &adm.user,
        namespace_labels: None,
        variables: &[],
        rule_variables: None,
    }
}
