//! `palisade apply`'s evaluation: every policy of a compiled set against every resource, in
//! parallel on all cores. Policies are lowered once and shared read-only by the workers; each
//! resource is independent, so the results are the same whatever the schedule, and they are
//! returned in input order.

use rayon::prelude::*;
use serde_json::Value;

use super::resources::Resource;
use super::runner::{self, PolicySet, Values, policy_key};
use palisade_compiler::ir::policy::RuleBody;

use crate::engine::{self, Request, Status, UserInfo};
use crate::mutate;

/// What the scan needs besides policies and resources.
pub struct ScanConfig<'a> {
    pub values: &'a Values,
    pub user: &'a UserInfo,
    /// `--audit-warn`: failures of Audit rules count as warnings.
    pub audit_warn: bool,
}

/// One rule's verdict on one resource, as reports and outputs show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Index of the resource in the scanned slice.
    pub resource: usize,
    /// The policy as reports name it (`ns/name` for a namespaced Policy).
    pub policy: String,
    pub rule: String,
    /// The status after `--audit-warn` and `policies.kyverno.io/scored: "false"`.
    pub status: Status,
    pub message: String,
    pub enforce: bool,
    pub scored: bool,
}

/// Result counts, in Kyverno's summary order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

impl Counts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Warn => self.warn += 1,
            Status::Error => self.error += 1,
            Status::Skip => self.skip += 1,
        }
    }

    pub fn of(findings: &[Finding]) -> Counts {
        let mut c = Counts::default();
        for f in findings {
            c.add(f.status);
        }
        c
    }

    /// `pass: a, fail: b, warn: c, error: d, skip: e`.
    pub fn summary_line(&self) -> String {
        format!("pass: {}, fail: {}, warn: {}, error: {}, skip: {}", self.pass, self.fail, self.warn, self.error, self.skip)
    }
}

/// Evaluates every policy on every resource; `progress` is called once per resource done (from
/// any worker thread).
pub fn scan(set: &PolicySet, resources: &[Resource], cfg: &ScanConfig, progress: &(dyn Fn() + Sync)) -> Vec<Finding> {
    let policies: Vec<Compiled> = set
        .policies
        .iter()
        .map(|p| Compiled {
            key: policy_key(p),
            mutates: p.rules.iter().any(|r| matches!(r.body, RuleBody::Mutate(_))),
            generates: p.rules.iter().any(|r| matches!(r.body, RuleBody::Generate(_))),
        })
        .collect();
    // Generate rules may clone from the other resources of the scan, as Kyverno's CLI serves
    // them from the resources it was given; the copy is only made when a policy needs it.
    let sources: Vec<Value> = if policies.iter().any(|p| p.generates) { resources.iter().map(|r| r.value.clone()).collect() } else { Vec::new() };
    let per_resource: Vec<Vec<Finding>> = resources
        .par_iter()
        .enumerate()
        .map(|(index, resource)| {
            let found = scan_one(set, &policies, &sources, index, resource, cfg);
            progress();
            found
        })
        .collect();
    per_resource.into_iter().flatten().collect()
}

/// What the scan precomputes once per policy.
struct Compiled {
    key: String,
    mutates: bool,
    generates: bool,
}

/// Mutation and generation first (each policy sees the object the policies before it left),
/// then validation of the final object, as Kyverno orders an admission request.
fn scan_one(set: &PolicySet, policies: &[Compiled], sources: &[Value], index: usize, resource: &Resource, cfg: &ScanConfig) -> Vec<Finding> {
    let name = resource.name();
    let ns = engine::namespace_of(&resource.value).unwrap_or_default();
    let ns_labels = cfg.values.namespace_labels.get(ns);
    let mut out = Vec::new();
    let push = |out: &mut Vec<Finding>, key: &str, r: crate::engine::RuleResult| {
        let scored = set.meta.get(key).is_none_or(|m| m.scored);
        let status = match r.status {
            Status::Fail if !scored || (cfg.audit_warn && !r.enforce) => Status::Warn,
            s => s,
        };
        out.push(Finding { resource: index, policy: key.to_owned(), rule: r.rule, status, message: r.message, enforce: r.enforce, scored });
    };
    let mut patched: Option<Value> = None;
    for (policy, c) in set.policies.iter().zip(policies) {
        if !c.mutates && !c.generates {
            continue;
        }
        let vars = cfg.values.for_resource(&policy.name, name);
        let operation = runner::operation_of(&vars);
        let object = patched.as_ref().unwrap_or(&resource.value);
        let req = Request {
            operation,
            object,
            old_object: runner::old_object_for(operation, object),
            user: cfg.user,
            namespace_labels: ns_labels,
            variables: &vars,
            rule_variables: cfg.values.for_rules(&policy.name),
        };
        let mut results = Vec::new();
        let mut next = None;
        if c.mutates {
            let m = mutate::mutate(policy, &req);
            results.extend(m.results);
            next = Some(m.patched);
        }
        if c.generates {
            results.extend(mutate::generate::generate(policy, &req, sources).results);
        }
        for r in results {
            push(&mut out, &c.key, r);
        }
        if next.is_some() {
            patched = next;
        }
    }
    let object = patched.as_ref().unwrap_or(&resource.value);
    for (policy, c) in set.policies.iter().zip(policies) {
        let vars = cfg.values.for_resource(&policy.name, name);
        let operation = runner::operation_of(&vars);
        let req = Request {
            operation,
            object,
            old_object: runner::old_object_for(operation, object),
            user: cfg.user,
            namespace_labels: ns_labels,
            variables: &vars,
            rule_variables: cfg.values.for_rules(&policy.name),
        };
        for r in engine::evaluate(policy, &req) {
            push(&mut out, &c.key, r);
        }
    }
    out
}

/// `kind/namespace/name` (the namespace part is left out for cluster-scoped resources), the
/// way Kyverno's CLI names a resource in its messages.
pub fn resource_path(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    match value.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(ns) => format!("{ns}/{kind}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
