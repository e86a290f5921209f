//! Mutation and generation: `mutate` rules (strategic merge, JSON 6902, `foreach`, mutate
//! existing `targets`) and `generate` rules, evaluated before any validation.
//!
//! Rules apply in declaration order and cascade: each rule sees the object as the earlier
//! rules left it, and its `request.object` is that object. A rule whose patch changes nothing
//! is `skip` with `no patches applied`; a patch that cannot apply is an `error` naming why, and
//! the object stays as it was for the rules after it.

pub mod anchors;
pub mod diff;
pub mod generate;
pub mod jsonpatch;
pub mod keys;
pub mod strategic;

use serde_json::{Value, json};

use palisade_compiler::ir::policy::{Mutate, PolicyIr, RuleBody, RuleIr};

use crate::conditions;
use crate::engine::{Context, Request, RuleResult, Status, namespace_of, selected};

/// The webhook's patch: the RFC 6902 JSON Patch (a JSON list of operations) that turns the
/// object of the request into the mutated one. An AdmissionReview response carries it base64
/// encoded, with `patchType: JSONPatch`; an empty list means the object was not changed.
pub fn admission_patch(original: &Value, mutated: &Value) -> Value {
    Value::Array(jsonpatch::diff(original, mutated))
}

/// What the mutate rules of one policy did to one object.
#[derive(Clone, Debug)]
pub struct Mutation {
    pub results: Vec<RuleResult>,
    /// The object after every rule of the policy.
    pub patched: Value,
}

/// Runs the admission `mutate` rules of `policy` (rules with `targets` are left to
/// [`mutate_targets`]) on `req.object`.
pub fn mutate(policy: &PolicyIr, req: &Request) -> Mutation {
    let mut current = req.object.clone();
    let mut results = Vec::new();
    if req.operation == "DELETE" || !in_policy_namespace(policy, &current) {
        return Mutation { results, patched: current };
    }
    for rule in &policy.rules {
        let RuleBody::Mutate(m) = &rule.body else { continue };
        if !m.targets.is_empty() {
            continue;
        }
        let r = Request { object: &current, ..req.clone() };
        if !selected(rule, &current, &r) {
            continue;
        }
        let ctx = Context::for_rule(&r, &current, &rule.name);
        let (status, message, patched) = run_rule(rule, m, ctx, &current);
        results.push(result(policy, rule, status, message));
        if let Some(p) = patched {
            current = p;
        }
        if policy.apply_one && status != Status::Skip {
            break;
        }
    }
    Mutation { results, patched: current }
}

/// What a mutate-existing rule did to one target.
#[derive(Clone, Debug)]
pub struct TargetMutation {
    pub result: RuleResult,
    /// The target after the rule, when the rule patched it.
    pub patched: Value,
}

/// Runs the mutate-existing rules (`targets`) of `policy` for the trigger `req.object`: every
/// target resource that a rule's `targets` names (by apiVersion, kind, namespace and name, with
/// wildcards in names) is patched, with `target` bound to it.
pub fn mutate_targets(policy: &PolicyIr, req: &Request, candidates: &[Value]) -> Vec<TargetMutation> {
    let mut out = Vec::new();
    if !in_policy_namespace(policy, req.object) {
        return out;
    }
    for rule in &policy.rules {
        let RuleBody::Mutate(m) = &rule.body else { continue };
        if m.targets.is_empty() || !selected(rule, req.object, req) {
            continue;
        }
        let mut base = Context::for_rule(req, req.object, &rule.name);
        if let Err(e) = base.load(&rule.context) {
            out.push(TargetMutation { result: result(policy, rule, Status::Error, format!("failed to load context: {e}")), patched: req.object.clone() });
            continue;
        }
        for spec in &m.targets {
            let spec = match base.substitute(spec) {
                Ok(s) => s,
                Err(e) => {
                    out.push(TargetMutation {
                        result: result(policy, rule, Status::Error, format!("variable substitution failed in targets: {e}")),
                        patched: req.object.clone(),
                    });
                    continue;
                }
            };
            for target in candidates.iter().filter(|c| target_matches(&spec, c)) {
                let mut ctx = base.clone();
                ctx.set("target", target.clone());
                let (status, message, patched) = run_rule(rule, m, ctx, target);
                let patched = patched.unwrap_or_else(|| target.clone());
                out.push(TargetMutation { result: result(policy, rule, status, message), patched });
            }
        }
    }
    out
}

fn target_matches(spec: &Value, candidate: &Value) -> bool {
    let field = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let want = |p: &str| spec.get(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let wild = |pattern: &str, value: &str| palisade_stdlib::wildcard::Wildcard::new(pattern).matches(value);
    want("apiVersion").is_none_or(|a| a == field(candidate, "/apiVersion"))
        && want("kind").is_none_or(|k| k == field(candidate, "/kind"))
        && want("namespace").is_none_or(|n| wild(&n, &field(candidate, "/metadata/namespace")))
        && want("name").is_none_or(|n| wild(&n, &field(candidate, "/metadata/name")))
}

fn in_policy_namespace(policy: &PolicyIr, resource: &Value) -> bool {
    policy.namespace.as_deref().is_none_or(|ns| namespace_of(resource) == Some(ns))
}

fn result(policy: &PolicyIr, rule: &RuleIr, status: Status, message: String) -> RuleResult {
    RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce: false }
}

/// Context, preconditions, then the patches; returns the status, message and, on a change,
/// the patched object.
fn run_rule(rule: &RuleIr, m: &Mutate, mut ctx: Context, resource: &Value) -> (Status, String, Option<Value>) {
    if let Err(e) = ctx.load(&rule.context) {
        return (Status::Error, format!("failed to load context: {e}"), None);
    }
    if let Some(pre) = &rule.preconditions {
        match conditions::evaluate(pre, &|expr| ctx.query(expr)) {
            Err(e) => return (Status::Error, format!("failed to evaluate preconditions: {e}"), None),
            Ok((false, msg)) => {
                let m = if msg.is_empty() { "preconditions not met".to_string() } else { format!("preconditions not met; {msg}") };
                return (Status::Skip, m, None);
            }
            Ok((true, _)) => {}
        }
    }
    let outcome = if m.foreach.is_empty() {
        apply_patches(&ctx, m.patch_strategic_merge.as_ref(), m.patches_json6902.as_deref(), resource)
    } else {
        foreach(&ctx, &m.foreach, resource, 0)
    };
    match outcome {
        Err(e) => (Status::Error, e, None),
        Ok(patched) if patched == *resource => (Status::Skip, "no patches applied".into(), None),
        Ok(patched) => {
            let kind = patched.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = patched.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let message = match namespace_of(&patched) {
                Some(ns) if !ns.is_empty() => format!("mutated {kind}/{name} in namespace {ns}"),
                _ => format!("mutated {kind}/{name}"),
            };
            (Status::Pass, message, Some(patched))
        }
    }
}

/// Applies a strategic-merge patch and then a JSON 6902 patch, each with its variables
/// substituted first.
fn apply_patches(ctx: &Context, smp: Option<&Value>, json6902: Option<&str>, resource: &Value) -> Result<Value, String> {
    let mut current = resource.clone();
    if let Some(patch) = smp {
        let patch = ctx.substitute(patch).map_err(|e| format!("variable substitution failed: {e}"))?;
        current = apply_strategic(&current, patch)?;
    }
    if let Some(text) = json6902 {
        let text = match ctx.substitute(&Value::String(text.to_owned())).map_err(|e| format!("variable substitution failed: {e}"))? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let ops = jsonpatch::decode(&text)?;
        current = jsonpatch::apply(&current, &ops).map_err(|e| format!("failed to apply JSON patch: {e}"))?;
    }
    Ok(current)
}

/// Kyverno's anchor preprocessing, then the merge. A failed condition means an empty patch.
pub fn apply_strategic(resource: &Value, mut patch: Value) -> Result<Value, String> {
    match anchors::preprocess(&mut patch, resource) {
        Ok(()) => {}
        Err(anchors::PreError::Condition(_) | anchors::PreError::Global(_)) => return Ok(resource.clone()),
        Err(anchors::PreError::Other(e)) => return Err(format!("failed to preprocess the strategic merge patch: {e}")),
    }
    strategic::merge(resource, &patch).map_err(|e| format!("failed to apply the strategic merge patch: {e}"))
}

/// Bound on list elements a `foreach` visits, so a hostile list cannot run without end.
const MAX_FOREACH_ELEMENTS: usize = 10_000;

fn foreach(ctx: &Context, entries: &[Value], resource: &Value, depth: usize) -> Result<Value, String> {
    if depth > 8 {
        return Err("foreach is nested more than 8 levels deep".into());
    }
    let mut current = resource.clone();
    for fe in entries {
        let mut list_ctx = ctx.clone();
        list_ctx.set("request.object", current.clone());
        let expr = fe.get("list").and_then(Value::as_str).unwrap_or_default();
        let expr = match list_ctx.substitute(&Value::String(expr.to_owned())) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => return Err(format!("variable substitution failed in foreach list: {e}")),
        };
        let items = match list_ctx.query(&expr) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => continue,
            Ok(other) => return Err(format!("foreach list `{expr}` is not a list: {other}")),
            Err(e) => return Err(format!("failed to evaluate foreach list `{expr}`: {e}")),
        };
        if items.len() > MAX_FOREACH_ELEMENTS {
            return Err(format!("foreach list `{expr}` has {} elements, more than {MAX_FOREACH_ELEMENTS}", items.len()));
        }
        let smp = fe.get("patchStrategicMerge").filter(|p| !p.is_null());
        let json6902 = fe.get("patchesJson6902").and_then(Value::as_str);
        let descending = match fe.get("order").and_then(Value::as_str) {
            Some(o) => o.eq_ignore_ascii_case("descending"),
            None => smp.is_some(),
        };
        let mut indices: Vec<usize> = (0..items.len()).collect();
        if descending {
            indices.reverse();
        }
        for i in indices {
            let Some(element) = items.get(i) else { continue };
            let mut ec = ctx.clone();
            ec.set("request.object", current.clone());
            ec.set("element", element.clone());
            ec.set("elementIndex", json!(i));
            ec.set(&format!("element{depth}"), element.clone());
            ec.set(&format!("elementIndex{depth}"), json!(i));
            let entries = fe.get("context").and_then(Value::as_array).cloned().unwrap_or_default();
            ec.load(&entries).map_err(|e| format!("failed to load foreach context: {e}"))?;
            if let Some(pre) = fe.get("preconditions").filter(|p| !p.is_null()) {
                match conditions::evaluate(pre, &|expr| ec.query(expr)) {
                    Err(e) => return Err(format!("failed to evaluate foreach preconditions: {e}")),
                    Ok((false, _)) => continue,
                    Ok((true, _)) => {}
                }
            }
            current = match fe.get("foreach").and_then(Value::as_array) {
                Some(nested) => foreach(&ec, nested, &current, depth + 1)?,
                None => apply_patches(&ec, smp, json6902, &current)?,
            };
        }
    }
    Ok(current)
}
