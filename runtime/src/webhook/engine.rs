//! The webhook's engine: one loaded bundle, split by endpoint, immutable and shared by `Arc`.
//!
//! Kyverno registers one webhook per (rule type, failure policy) and sends each request only to
//! the webhooks whose rules match; a policy's rules run under the webhook of its failure policy.
//! The engine therefore keeps, per endpoint, the policies of that failure policy reduced to the
//! rules of that type, so a validate endpoint never runs mutate rules and the other way round.
//! A reload builds a new engine and swaps it in; requests in flight keep the one they started with.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use palisade_compiler::bundle::{Bundle, BundledCelPolicy, CelIr, FailurePolicy, PolicyMeta, PolicySource};
use palisade_compiler::ir::cel::BindingIr;
use palisade_compiler::ir::policy::{PolicyIr, RuleBody};

use super::metrics::{Metrics, RuleCounts};
use crate::engine::Status;
use crate::images::Verifier;
use crate::set::CompiledSet;

/// The admission paths Palisade answers, as Kyverno names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ValidateFail,
    ValidateIgnore,
    MutateFail,
    MutateIgnore,
    /// The validating CEL kinds' endpoints (`/vpol/...`, `/nvpol/...`, `/ivpol/validate/...`):
    /// ValidatingPolicy, ValidatingAdmissionPolicy and ImageValidatingPolicy validations.
    Cel(FailurePolicy),
    /// The mutating CEL kinds' endpoints (`/mpol/...`, `/ivpol/mutate/...`, `/gpol/...`):
    /// MutatingPolicy and MutatingAdmissionPolicy patches; generation does not happen at
    /// admission in Palisade, so `/gpol` answers allowed.
    CelMutate(FailurePolicy),
}

impl Endpoint {
    pub const ALL: [Endpoint; 8] = [
        Endpoint::ValidateFail,
        Endpoint::ValidateIgnore,
        Endpoint::MutateFail,
        Endpoint::MutateIgnore,
        Endpoint::Cel(FailurePolicy::Fail),
        Endpoint::Cel(FailurePolicy::Ignore),
        Endpoint::CelMutate(FailurePolicy::Fail),
        Endpoint::CelMutate(FailurePolicy::Ignore),
    ];

    /// The endpoint behind a request path, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let path = path.trim_end_matches('/');
        match path {
            "/validate/fail" | "/validate" => Some(Endpoint::ValidateFail),
            "/validate/ignore" => Some(Endpoint::ValidateIgnore),
            "/mutate/fail" | "/mutate" => Some(Endpoint::MutateFail),
            "/mutate/ignore" => Some(Endpoint::MutateIgnore),
            _ => {
                // Kyverno serves the CEL kinds under `/policies/<kind>/...`; the short form is
                // accepted too. A fine-grained path (`.../fail/finegrained/<policy>`) ends in the
                // policy name after the failure policy.
                let path = path.strip_prefix("/policies").unwrap_or(path);
                let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                let failure = segments.iter().find_map(|s| match *s {
                    "fail" => Some(FailurePolicy::Fail),
                    "ignore" => Some(FailurePolicy::Ignore),
                    _ => None,
                })?;
                match segments.as_slice() {
                    ["vpol" | "nvpol", ..] | ["ivpol" | "nivpol", "validate", ..] => Some(Endpoint::Cel(failure)),
                    ["mpol" | "nmpol" | "gpol" | "ngpol", ..] | ["ivpol" | "nivpol", "mutate", ..] => Some(Endpoint::CelMutate(failure)),
                    _ => None,
                }
            }
        }
    }

    /// The policies a CEL path names after its failure policy (`/vpol/fail/a/b` names `a`
    /// and `b`), as the configurations of `palisade webhook-config` route requests; `None` when
    /// it names none, and every policy of the endpoint runs. A `finegrained` segment right
    /// after the failure policy (Kyverno's form for a policy with its own webhook) is skipped.
    pub fn policies_in_path(path: &str) -> Option<Vec<String>> {
        let path = path.strip_prefix("/policies").unwrap_or(path);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let at = segments.iter().position(|s| *s == "fail" || *s == "ignore")?;
        let mut names = segments.get(at + 1..).unwrap_or_default();
        if names.first() == Some(&"finegrained") {
            names = names.get(1..).unwrap_or_default();
        }
        (!names.is_empty()).then(|| names.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn failure_policy(self) -> FailurePolicy {
        match self {
            Endpoint::ValidateFail
            | Endpoint::MutateFail
            | Endpoint::Cel(FailurePolicy::Fail)
            | Endpoint::CelMutate(FailurePolicy::Fail) => FailurePolicy::Fail,
            _ => FailurePolicy::Ignore,
        }
    }

    /// A stable label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::ValidateFail => "/validate/fail",
            Endpoint::ValidateIgnore => "/validate/ignore",
            Endpoint::MutateFail => "/mutate/fail",
            Endpoint::MutateIgnore => "/mutate/ignore",
            Endpoint::Cel(FailurePolicy::Fail) => "cel/fail",
            Endpoint::Cel(FailurePolicy::Ignore) => "cel/ignore",
            Endpoint::CelMutate(FailurePolicy::Fail) => "cel-mutate/fail",
            Endpoint::CelMutate(FailurePolicy::Ignore) => "cel-mutate/ignore",
        }
    }

    pub fn index(self) -> usize {
        Endpoint::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }

    pub fn is_mutate(self) -> bool {
        matches!(self, Endpoint::MutateFail | Endpoint::MutateIgnore)
    }

    /// Whether the endpoint serves the CEL kinds.
    pub fn is_cel(self) -> bool {
        matches!(self, Endpoint::Cel(_) | Endpoint::CelMutate(_))
    }
}

/// A policy as one endpoint runs it.
pub struct EndpointPolicy {
    pub meta: PolicyMeta,
    pub source: PolicySource,
    pub ir: PolicyIr,
}

pub struct Engine {
    pub digest: String,
    pub loaded_at: SystemTime,
    pub load_time: Duration,
    pub policy_count: usize,
    pub rule_count: usize,
    /// Rules the runtime does not evaluate yet (they report errors), as `policy/rule`.
    pub unsupported: Vec<String>,
    by_endpoint: Vec<Vec<EndpointPolicy>>,
    /// The CEL policies that run at admission, in bundle order.
    cel: Vec<BundledCelPolicy>,
    /// For each of `cel`, the policy without its namespace selector when it has one: the form
    /// that runs on a path naming the policy. The generated webhook configuration gives such a
    /// policy a webhook of its own that carries the selector, so the API server has applied it
    /// with the namespace's real labels, which the webhook cannot read.
    cel_selector_applied: Vec<Option<CelIr>>,
    /// ValidatingAdmissionPolicyBindings, for the VAPs among them.
    bindings: Vec<BindingIr>,
    /// The validate endpoints' policies compiled as a set (kind index, native matchers), in the
    /// same order as `by_endpoint`; `None` where the set could not be built, and the
    /// interpreter answers alone.
    compiled: Vec<Option<CompiledSet>>,
    /// Per endpoint, the policies reduced to their `verifyImages` rules: verified (and pinned)
    /// on the mutate endpoints, checked for `verifyDigest` and `required` on the validate ones.
    images_by_endpoint: Vec<Vec<EndpointPolicy>>,
    /// The image verifier the server shares across reloads (its cache survives them); `None`
    /// leaves image rules out of admission.
    images: Option<Arc<Verifier>>,
    /// Per endpoint, policy (as in `by_endpoint`) and rule: the server's result counts, so the
    /// compiled path counts without looking names up; empty until [`Engine::with_metrics`].
    counts: Vec<Vec<Vec<Arc<RuleCounts>>>>,
}

impl Engine {
    pub fn new(bundle: Bundle, digest: String, load_time: Duration) -> Engine {
        let mut by_endpoint: Vec<Vec<EndpointPolicy>> = Endpoint::ALL.iter().map(|_| Vec::new()).collect();
        let mut images_by_endpoint: Vec<Vec<EndpointPolicy>> = Endpoint::ALL.iter().map(|_| Vec::new()).collect();
        let mut unsupported = Vec::new();
        let policy_count = bundle.policies.len() + bundle.cel.iter().filter(|p| !matches!(p.ir, CelIr::Binding(_))).count();
        let mut rule_count = 0;
        let bindings = bundle.cel.iter().filter_map(|p| if let CelIr::Binding(b) = &p.ir { Some(b.clone()) } else { None }).collect();
        let cel: Vec<BundledCelPolicy> = bundle.cel.into_iter().filter(|p| p.meta.admission).collect();
        let cel_selector_applied = cel.iter().map(|p| without_namespace_selector(&p.ir)).collect();
        for p in bundle.policies {
            rule_count += p.ir.rules.len();
            for r in &p.ir.rules {
                if matches!(r.body, RuleBody::Unsupported(_)) || is_unsupported_validate(&r.body) {
                    unsupported.push(format!("{}/{}", p.meta.name, r.name));
                }
            }
            if !p.meta.admission {
                continue;
            }
            for endpoint in [Endpoint::ValidateFail, Endpoint::ValidateIgnore, Endpoint::MutateFail, Endpoint::MutateIgnore] {
                if endpoint.failure_policy() != p.meta.failure_policy {
                    continue;
                }
                let mut image_ir = p.ir.clone();
                image_ir.rules.retain(|r| matches!(r.body, RuleBody::VerifyImages(_)));
                if let (false, Some(list)) = (image_ir.rules.is_empty(), images_by_endpoint.get_mut(endpoint.index())) {
                    list.push(EndpointPolicy { meta: p.meta.clone(), source: p.source.clone(), ir: image_ir });
                }
                let mut ir = p.ir.clone();
                ir.rules.retain(|r| {
                    let validate = matches!(r.body, RuleBody::Validate(_));
                    if endpoint.is_mutate() { !validate && is_mutate_time(&r.body) } else { validate }
                });
                if ir.rules.is_empty() {
                    continue;
                }
                if let Some(list) = by_endpoint.get_mut(endpoint.index()) {
                    list.push(EndpointPolicy { meta: p.meta.clone(), source: p.source.clone(), ir });
                }
            }
        }
        let compiled = Endpoint::ALL
            .iter()
            .zip(&by_endpoint)
            .map(|(endpoint, policies)| {
                if !matches!(endpoint, Endpoint::ValidateFail | Endpoint::ValidateIgnore) || policies.is_empty() {
                    return None;
                }
                CompiledSet::new(policies.iter().map(|p| p.ir.clone()).collect())
                    .inspect_err(|e| super::log("warn", "policies run in the interpreter", serde_json::json!({"endpoint": endpoint.label(), "error": e})))
                    .ok()
            })
            .collect();
        Engine {
            compiled,
            digest,
            loaded_at: SystemTime::now(),
            load_time,
            policy_count,
            rule_count,
            unsupported,
            by_endpoint,
            cel,
            cel_selector_applied,
            bindings,
            images_by_endpoint,
            images: None,
            counts: Vec::new(),
        }
    }

    /// Resolves the result counts of every rule in `metrics`, for [`Engine::count`].
    pub fn with_metrics(mut self, metrics: &Metrics) -> Engine {
        self.counts = self
            .by_endpoint
            .iter()
            .map(|policies| policies.iter().map(|p| p.ir.rules.iter().map(|r| metrics.rule_counts(&p.ir.name, &r.name)).collect()).collect())
            .collect();
        self
    }

    /// Counts one result of rule `rule` of policy `policy` (indices into [`Engine::policies`]).
    pub fn count(&self, endpoint: Endpoint, policy: usize, rule: usize, status: Status) -> bool {
        let counts = self.counts.get(endpoint.index()).and_then(|p| p.get(policy)).and_then(|r| r.get(rule));
        counts.inspect(|c| c.add(status)).is_some()
    }

    /// The CEL policies an endpoint runs: its failure policy, and validating or mutating kinds.
    pub fn cel_policies(&self, endpoint: Endpoint) -> impl Iterator<Item = &BundledCelPolicy> {
        self.cel.iter().filter(move |p| cel_fits(endpoint, p))
    }

    /// The CEL policies a request on `endpoint` runs: all of [`Engine::cel_policies`], or only
    /// those the path names (see [`Endpoint::policies_in_path`]), each in the form to evaluate.
    pub fn cel_selected<'a>(&'a self, endpoint: Endpoint, named: Option<&'a [String]>) -> impl Iterator<Item = (&'a PolicyMeta, &'a CelIr)> {
        self.cel.iter().zip(&self.cel_selector_applied).filter_map(move |(p, applied)| {
            if !cel_fits(endpoint, p) {
                return None;
            }
            match named {
                None => Some((&p.meta, &p.ir)),
                Some(names) if names.contains(&p.meta.name) => Some((&p.meta, applied.as_ref().unwrap_or(&p.ir))),
                Some(_) => None,
            }
        })
    }

    pub fn bindings(&self) -> &[BindingIr] {
        &self.bindings
    }

    /// Gives the engine the server's image verifier, so `verifyImages` rules take part in
    /// admission.
    pub fn with_images(mut self, verifier: Option<Arc<Verifier>>) -> Engine {
        self.images = verifier;
        self
    }

    /// The server's image verifier, for ImageValidatingPolicy signature checks.
    pub fn image_verifier(&self) -> Option<&Arc<Verifier>> {
        self.images.as_ref()
    }

    pub fn policies(&self, endpoint: Endpoint) -> &[EndpointPolicy] {
        self.by_endpoint.get(endpoint.index()).map(Vec::as_slice).unwrap_or_default()
    }

    /// The compiled set of an endpoint; its policy indices are those of [`Engine::policies`].
    pub fn compiled(&self, endpoint: Endpoint) -> Option<&CompiledSet> {
        self.compiled.get(endpoint.index())?.as_ref()
    }

    /// The policies with `verifyImages` rules on this endpoint, and the verifier that runs them;
    /// `None` when there are none or no verifier is configured.
    pub fn image_policies(&self, endpoint: Endpoint) -> Option<(&Verifier, &[EndpointPolicy])> {
        let list = self.images_by_endpoint.get(endpoint.index()).filter(|l| !l.is_empty())?;
        Some((self.images.as_deref()?, list.as_slice()))
    }
}

fn cel_fits(endpoint: Endpoint, p: &BundledCelPolicy) -> bool {
    let kind_fits = match endpoint {
        Endpoint::Cel(_) => matches!(p.ir, CelIr::Validating(_) | CelIr::ImageValidating(_)),
        Endpoint::CelMutate(_) => matches!(p.ir, CelIr::Mutating(_)),
        _ => false,
    };
    kind_fits && p.meta.failure_policy == endpoint.failure_policy()
}

/// The policy with the namespace selector of its match constraints removed, or `None` when it
/// has none.
fn without_namespace_selector(ir: &CelIr) -> Option<CelIr> {
    let mut ir = ir.clone();
    let constraints: Vec<&mut palisade_compiler::ir::cel::MatchConstraints> = match &mut ir {
        CelIr::Validating(p) => p.variants.iter_mut().map(|v| &mut v.constraints).collect(),
        CelIr::Mutating(p) => vec![&mut p.constraints],
        CelIr::ImageValidating(p) => vec![&mut p.constraints],
        _ => Vec::new(),
    };
    let mut had = false;
    for c in constraints {
        had |= c.namespace_selector.take().is_some();
    }
    had.then_some(ir)
}

/// Rules that run in Kyverno's mutating webhook: admission `mutate` rules (mutate-existing
/// rules with `targets` run in the background, not at admission). verifyImages runs there too,
/// from [`Engine::image_policies`] (see `webhook::images`).
fn is_mutate_time(body: &RuleBody) -> bool {
    matches!(body, RuleBody::Mutate(m) if m.targets.is_empty())
}

fn is_unsupported_validate(body: &RuleBody) -> bool {
    use palisade_compiler::ir::policy::Check;
    matches!(body, RuleBody::Validate(v) if matches!(v.check, Check::Unsupported(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_paths_name_policies() {
        let named = |p: &str| Endpoint::policies_in_path(p);
        assert_eq!(named("/vpol/fail"), None);
        assert_eq!(named("/vpol/fail/a/b"), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(named("/policies/ivpol/validate/ignore/finegrained/x"), Some(vec!["x".to_owned()]));
        assert_eq!(named("/mpol/ignore/"), None);
        assert_eq!(Endpoint::from_path("/nivpol/validate/fail/a"), Some(Endpoint::Cel(FailurePolicy::Fail)));
        assert_eq!(Endpoint::from_path("/nmpol/ignore/a"), Some(Endpoint::CelMutate(FailurePolicy::Ignore)));
    }
}
