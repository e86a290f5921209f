//! CEL evaluation: `validate.cel` rules of `kyverno.io` policies, `ValidatingPolicy` (cluster
//! and namespaced) and `ValidatingAdmissionPolicy` with its bindings, and the CEL
//! `PolicyException`.
//!
//! The request is converted to CEL values once ([`bindings`]) and shared by every expression
//! of every rule. Results and messages follow Kyverno: a false validation fails with its
//! message (or message expression), an evaluation error is an `error` result (a `skip` under
//! `failurePolicy: Ignore`), unmet match conditions skip.

pub mod apply;
pub mod delete;
pub mod images;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use palisade_compiler::ir::cel::{
    BindingIr, CelExceptionIr, CelPolicyIr, CelRules, GeneratingPolicyIr, MatchConstraints, MutatingPolicyIr, NamedExpr, ParamRef,
    ResourceRule,
};
use palisade_compiler::ir::policy::LabelSelector;
use palisade_stdlib::cel::{self as stdcel, Bindings, Value as CelValue, library, value};

use crate::engine::{self, Request, RuleResult, Status};

/// Builds the request-level CEL variables: `object`, `oldObject`, `request`, and
/// `namespaceObject` when known.
pub fn bindings(req: &Request, namespace_object: Option<&Value>) -> Bindings {
    let mut b = Bindings::new();
    let deleting = req.operation == "DELETE";
    let object = if deleting { &Value::Null } else { req.object };
    let old = req.old_object.unwrap_or(&Value::Null);
    let subject = if deleting { req.old_object.unwrap_or(req.object) } else { req.object };
    let (group, version, kind) = engine::gvk(subject);
    let name = subject.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let request = json!({
        "operation": req.operation,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": library::plural(kind)},
        "name": name,
        "namespace": engine::namespace_of(subject).unwrap_or_default(),
        "userInfo": {"username": req.user.username, "groups": req.user.groups},
        "dryRun": false,
    });
    b.bind_json("object", object);
    b.bind_json("oldObject", old);
    b.bind_json("request", &request);
    b.bind_json("namespaceObject", namespace_object.unwrap_or(&Value::Null));
    b
}

/// Evaluates one expression to a boolean; anything else is an error, as in Kubernetes.
fn eval_bool(p: &NamedExpr, b: &Bindings, extra: &[(&str, &CelValue)]) -> Result<bool, String> {
    match p.program.eval(b, extra) {
        Ok(CelValue::Bool(v)) => Ok(v),
        Ok(other) => Err(format!("expression '{}' returned {:?}, not a bool", p.program.source(), other.type_of().to_string())),
        Err(e) => Err(format!("expression '{}' failed: {e}", p.program.source())),
    }
}

/// The outcome of running a block of CEL validations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub message: String,
}

/// Evaluates `variables` in order (each sees the ones before it): the `variables` map, and
/// the errors of those that failed. Kubernetes evaluates variables lazily, so an error only
/// matters if an expression reads the variable, which then fails with an unknown key.
fn eval_variables(list: &[NamedExpr], b: &Bindings, params: &CelValue) -> (CelValue, Vec<String>) {
    let mut vars: Vec<(String, CelValue)> = Vec::new();
    let mut errors = Vec::new();
    for var in list {
        let current = stdcel::map_value(&vars);
        match var.program.eval(b, &[("params", params), ("variables", &current)]) {
            Ok(v) => vars.push((var.name.clone(), v)),
            Err(e) => errors.push(format!("variable {} failed: {e}", var.name)),
        }
    }
    (stdcel::map_value(&vars), errors)
}

/// Runs variables and validations with `params` bound (or null).
pub fn run_rules(rules: &CelRules, b: &Bindings, params: &Value) -> Verdict {
    let params = value::from_json(params);
    let (variables, var_errors) = eval_variables(&rules.variables, b, &params);
    let extra: [(&str, &CelValue); 2] = [("params", &params), ("variables", &variables)];
    for v in &rules.validations {
        match v.program.eval(b, &extra) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => {
                let message = match &v.message_expression {
                    Some(m) => match m.eval(b, &extra) {
                        Ok(CelValue::String(s)) if !s.trim().is_empty() => s.as_str().to_owned(),
                        _ => v.message.clone().unwrap_or_else(|| format!("failed expression: {}", v.program.source())),
                    },
                    None => v.message.clone().unwrap_or_else(|| format!("failed expression: {}", v.program.source())),
                };
                return Verdict { status: Status::Fail, message };
            }
            Ok(other) => {
                return Verdict {
                    status: Status::Error,
                    message: format!("expression '{}' resulted in {} instead of bool", v.program.source(), other.type_of()),
                };
            }
            Err(e) => {
                let mut message = format!("expression '{}' resulted in error: {e}", v.program.source());
                for ve in var_errors.iter().filter(|ve| e.0.contains(ve.split_whitespace().nth(1).unwrap_or("\u{0}"))) {
                    message.push_str(&format!(" ({ve})"));
                }
                return Verdict { status: Status::Error, message };
            }
        }
    }
    Verdict { status: Status::Pass, message: String::new() }
}

/// Everything outside the request a CEL policy may read in a test: parameter and cluster
/// resources, namespaces, bindings and exceptions.
#[derive(Default)]
pub struct CelInputs {
    pub host: Arc<stdcel::Host>,
    pub bindings: Vec<BindingIr>,
    pub exceptions: Vec<CelExceptionIr>,
}

/// The parameter resources a `paramKind`/`paramRef` pair selects.
fn find_params(host: &stdcel::Host, kind: &(String, String), r: &ParamRef, request_ns: &str) -> Vec<Value> {
    host.resources
        .iter()
        .filter(|p| {
            let api = p.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            let k = p.get("kind").and_then(Value::as_str).unwrap_or_default();
            let meta = p.get("metadata");
            let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default();
            let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or_default();
            let labels = meta.and_then(|m| m.get("labels")).and_then(Value::as_object);
            let want_ns = r.namespace.as_deref().unwrap_or(if ns.is_empty() { "" } else { request_ns });
            (kind.0.is_empty() || api == kind.0)
                && k == kind.1
                && (ns.is_empty() || want_ns.is_empty() || ns == want_ns)
                && r.name.as_deref().is_none_or(|n| n == "*" || n == name)
                && r.selector.as_ref().is_none_or(|s| selector_matches(s, labels))
        })
        .cloned()
        .collect()
}

/// Runs a block with its parameters: once per parameter resource (all must pass), or once
/// with null params when the block has no `paramKind`.
pub fn run_with_params(rules: &CelRules, param_ref: Option<&ParamRef>, b: &Bindings, host: &stdcel::Host, request_ns: &str) -> Verdict {
    let (Some(kind), Some(r)) = (&rules.param_kind, param_ref.or(rules.param_ref.as_ref())) else {
        return run_rules(rules, b, &Value::Null);
    };
    let params = find_params(host, kind, r, request_ns);
    if params.is_empty() {
        return if r.deny_when_missing {
            Verdict { status: Status::Fail, message: format!("failed to configure binding: no params found for {} {}", kind.0, kind.1) }
        } else {
            Verdict { status: Status::Skip, message: "no params found".into() }
        };
    }
    for p in &params {
        let v = run_rules(rules, b, p);
        if v.status != Status::Pass {
            return v;
        }
    }
    Verdict { status: Status::Pass, message: String::new() }
}

/// `validate.cel` of a `kyverno.io` rule.
pub fn validate_rule(rule_name: &str, rules: &CelRules, b: &Bindings, request_ns: &str) -> (Status, String) {
    let host = library::current_host();
    let v = run_with_params(rules, None, b, &host, request_ns);
    match v.status {
        Status::Pass => (Status::Pass, format!("validation rule '{rule_name}' passed.")),
        // Kyverno runs `validate.cel` through the Kubernetes admission validator, whose
        // failure policy is Fail: an evaluation error denies, which Kyverno reports as fail.
        Status::Error => (Status::Fail, v.message),
        _ => (v.status, v.message),
    }
}

/// Whether every CEL precondition holds: `Ok(false)` skips the rule.
pub fn preconditions_hold(pre: &[NamedExpr], b: &Bindings) -> Result<bool, String> {
    for p in pre {
        if !eval_bool(p, b, &[])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a built-in kind is cluster-scoped (it has no namespace, and no `namespaceObject`).
pub fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace" | "Node" | "PersistentVolume" | "ClusterRole" | "ClusterRoleBinding" | "StorageClass"
            | "CustomResourceDefinition" | "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" | "PriorityClass" | "RuntimeClass"
            | "IngressClass" | "CSIDriver" | "CSINode" | "VolumeAttachment" | "APIService" | "PodSecurityPolicy"
            | "CertificateSigningRequest" | "ClusterPolicy" | "ClusterIssuer" | "VolumeSnapshotClass"
            | "ClusterPolicyReport" | "ValidatingPolicy" | "MutatingPolicy" | "GeneratingPolicy"
    )
}

/// The plural resource name of a kind, with the irregular ones Kubernetes uses.
fn resource_of(kind: &str) -> String {
    match kind {
        "Endpoints" => "endpoints".into(),
        "PodSecurityPolicy" => "podsecuritypolicies".into(),
        _ => library::plural(kind),
    }
}

fn rule_matches(r: &ResourceRule, group: &str, version: &str, resource: &str, name: &str, operation: &str) -> bool {
    let any = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
    let op_ok = r.operations.is_empty() || any(&r.operations, operation) || (operation == "CONNECT" && any(&r.operations, "CONNECT"));
    let resource_ok = r.resources.iter().any(|v| v == "*" || v == resource || v == "*/*" || v.strip_suffix("/*").is_some_and(|p| p == resource));
    any(&r.api_groups, group)
        && any(&r.api_versions, version)
        && op_ok
        && resource_ok
        && (r.resource_names.is_empty() || r.resource_names.iter().any(|n| n == name))
}

fn selector_matches(sel: &LabelSelector, labels: Option<&Map<String, Value>>) -> bool {
    let empty = Map::new();
    let labels = labels.unwrap_or(&empty);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    sel.match_labels.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| k.matches(lk) && v.matches(lv.as_str().unwrap_or_default())))
        && sel.match_expressions.iter().all(|e| match e.operator.as_str() {
            "In" => label(&e.key).is_some_and(|v| e.values.iter().any(|x| x == v)),
            "NotIn" => label(&e.key).is_none_or(|v| !e.values.iter().any(|x| x == v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        })
}

/// Whether `matchConstraints` select the request.
pub fn constraints_match(c: &MatchConstraints, req: &Request, namespace_object: Option<&Value>) -> bool {
    let subject = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    let (group, version, kind) = engine::gvk(subject);
    let resource = resource_of(kind);
    let name = subject.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let hit = |rules: &[ResourceRule]| rules.iter().any(|r| rule_matches(r, group, version, &resource, name, req.operation));
    if !c.resource_rules.is_empty() && !hit(&c.resource_rules) {
        return false;
    }
    if hit(&c.exclude_resource_rules) {
        return false;
    }
    if let Some(sel) = &c.object_selector {
        let labels = subject.pointer("/metadata/labels").and_then(Value::as_object);
        if !selector_matches(sel, labels) {
            return false;
        }
    }
    if let Some(sel) = &c.namespace_selector {
        let labels = if kind == "Namespace" {
            subject.pointer("/metadata/labels").and_then(Value::as_object)
        } else {
            namespace_object.and_then(|n| n.pointer("/metadata/labels")).and_then(Value::as_object).or(req.namespace_labels)
        };
        // Cluster-scoped resources other than namespaces always match a namespace selector.
        let cluster_scoped = kind != "Namespace" && engine::namespace_of(subject).is_none_or(str::is_empty);
        if !cluster_scoped && !selector_matches(sel, labels) {
            return false;
        }
    }
    true
}

fn kind_name(p: &CelPolicyIr) -> &'static str {
    use palisade_compiler::ir::cel::CelKind;
    match p.kind {
        CelKind::ValidatingPolicy => "ValidatingPolicy",
        CelKind::NamespacedValidatingPolicy => "NamespacedValidatingPolicy",
        CelKind::ValidatingAdmissionPolicy => "ValidatingAdmissionPolicy",
    }
}

/// An exception that applies to this policy and request, if any.
fn exception_for<'a>(p: &CelPolicyIr, inputs: &'a CelInputs, b: &Bindings, request_ns: &str) -> Option<&'a CelExceptionIr> {
    inputs.exceptions.iter().find(|e| {
        e.namespace.as_deref().is_none_or(|ns| ns.is_empty() || ns == request_ns || p.namespace.is_none())
            && e.policy_refs.iter().any(|(k, n)| n == &p.name && (k.is_empty() || k == kind_name(p)))
            && e.match_conditions.iter().all(|c| eval_bool(c, b, &[]).unwrap_or(false))
    })
}

/// Evaluates a validating CEL policy on one request.
pub fn evaluate_policy(p: &CelPolicyIr, req: &Request, b: &Bindings, inputs: &CelInputs, namespace_object: Option<&Value>) -> Vec<RuleResult> {
    let subject = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    let request_ns = engine::namespace_of(subject).unwrap_or_default();
    if let Some(ns) = &p.namespace && request_ns != ns {
        return Vec::new();
    }
    let enforce = p.actions.iter().any(|a| a == "Deny");
    let result = |rule: &str, status: Status, message: String| RuleResult { policy: p.name.clone(), rule: rule.to_owned(), status, message, enforce };
    // A VAP runs once per binding that selects the request; a Kyverno policy once.
    let bindings: Vec<Option<&BindingIr>> = if p.kind == palisade_compiler::ir::cel::CelKind::ValidatingAdmissionPolicy {
        let found: Vec<Option<&BindingIr>> = inputs.bindings.iter().filter(|x| x.policy == p.name).map(Some).collect();
        if found.is_empty() { vec![None] } else { found }
    } else {
        vec![None]
    };
    let mut out = Vec::new();
    for variant in &p.variants {
        if !constraints_match(&variant.constraints, req, namespace_object) {
            continue;
        }
        for binding in &bindings {
            if binding.and_then(|x| x.constraints.as_ref()).is_some_and(|c| !constraints_match(c, req, namespace_object)) {
                continue;
            }
            let mut matched = true;
            let mut failure = None;
            // Kyverno lets match conditions read the policy's variables; evaluate them only
            // when one does, since validations evaluate them again with their parameters.
            let needs_vars = variant.match_conditions.iter().any(|c| c.program.source().contains("variables"));
            let variables = if needs_vars { eval_variables(&variant.rules.variables, b, &CelValue::Null).0 } else { CelValue::Null };
            for c in &variant.match_conditions {
                match eval_bool(c, b, &[("variables", &variables)]) {
                    Ok(true) => {}
                    Ok(false) => {
                        matched = false;
                        break;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                let status = if p.ignore_failures { Status::Skip } else { Status::Fail };
                out.push(result(&variant.rule, status, e));
                continue;
            }
            if !matched {
                // Kyverno reports a request its match conditions leave out as skipped.
                out.push(result(&variant.rule, Status::Skip, "match conditions not met".into()));
                continue;
            }
            if let Some(ex) = exception_for(p, inputs, b, request_ns) {
                let status = if ex.report_result == "pass" { Status::Pass } else { Status::Skip };
                out.push(result(&variant.rule, status, format!("rule is skipped due to policy exception {}", ex.name)));
                continue;
            }
            let v = run_with_params(&variant.rules, binding.and_then(|x| x.param_ref.as_ref()), b, &inputs.host, request_ns);
            let status = match v.status {
                Status::Error if p.ignore_failures => Status::Skip,
                // Under the default failure policy (Fail) an evaluation error denies the
                // request; Kyverno's CLI reports it as a failure.
                Status::Error => Status::Fail,
                Status::Fail if !p.actions.iter().any(|a| a == "Deny" || a == "Audit") && p.actions.iter().any(|a| a == "Warn") => Status::Warn,
                s => s,
            };
            let message = if status == Status::Pass { String::new() } else { format!("Policy {} failed: {}", p.name, v.message) };
            out.push(result(&variant.rule, status, message));
        }
    }
    out
}

/// What a mutating policy did to one request.
pub struct MutationOutcome {
    pub result: RuleResult,
    /// The resource after the mutations (the input when none applied).
    pub patched: Value,
}

/// Applies a MutatingPolicy: each mutation sees the object the previous one left. `None` when
/// the policy does not select the request.
pub fn mutate_policy(p: &MutatingPolicyIr, req: &Request, namespace_object: Option<&Value>) -> Option<MutationOutcome> {
    let subject = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    let request_ns = engine::namespace_of(subject).unwrap_or_default();
    if p.namespace.as_deref().is_some_and(|ns| ns != request_ns) || !constraints_match(&p.constraints, req, namespace_object) {
        return None;
    }
    let result = |status: Status, message: String| RuleResult { policy: p.name.clone(), rule: String::new(), status, message, enforce: false };
    let unchanged = |status, message| Some(MutationOutcome { result: result(status, message), patched: req.object.clone() });
    let b = bindings(req, namespace_object);
    // Match conditions may read the policy's variables.
    let (variables, _) = eval_variables(&p.variables, &b, &CelValue::Null);
    for c in &p.match_conditions {
        match eval_bool(c, &b, &[("variables", &variables)]) {
            Ok(true) => {}
            Ok(false) => return unchanged(Status::Skip, "match conditions not met".into()),
            Err(e) if p.ignore_failures => return unchanged(Status::Skip, e),
            Err(e) => return unchanged(Status::Error, e),
        }
    }
    let mut current = req.object.clone();
    for m in &p.mutations {
        let step = Request { object: &current, ..req.clone() };
        let b = bindings(&step, namespace_object);
        let (variables, _) = eval_variables(&p.variables, &b, &CelValue::Null);
        let out = m.program.eval(&b, &[("variables", &variables), ("params", &CelValue::Null)]).map_err(|e| e.0).and_then(|v| value::to_json(&v));
        let applied = out.and_then(|patch| {
            if m.json_patch {
                let ops = crate::mutate::jsonpatch::decode_value(&patch)?;
                crate::mutate::jsonpatch::apply(&current, &ops)
            } else {
                apply::apply(&current, &patch)
            }
        });
        match applied {
            Ok(next) => current = next,
            Err(e) if p.ignore_failures => return unchanged(Status::Skip, e),
            Err(e) => return unchanged(Status::Error, format!("mutation '{}' failed: {e}", m.program.source())),
        }
    }
    Some(MutationOutcome { result: result(Status::Pass, String::new()), patched: current })
}

/// What a generating policy produced for one trigger.
pub struct GenerationOutcome {
    pub result: RuleResult,
    pub resources: Vec<Value>,
}

/// Runs a GeneratingPolicy's `generate` expressions; `None` when it does not select the request.
pub fn generate_policy(p: &GeneratingPolicyIr, req: &Request, namespace_object: Option<&Value>) -> Option<GenerationOutcome> {
    let subject = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    let request_ns = engine::namespace_of(subject).unwrap_or_default();
    if p.namespace.as_deref().is_some_and(|ns| ns != request_ns) || !constraints_match(&p.constraints, req, namespace_object) {
        return None;
    }
    let result = |status: Status, message: String| RuleResult { policy: p.name.clone(), rule: String::new(), status, message, enforce: false };
    let b = bindings(req, namespace_object);
    let (variables, _) = eval_variables(&p.variables, &b, &CelValue::Null);
    for c in &p.match_conditions {
        match eval_bool(c, &b, &[("variables", &variables)]) {
            Ok(true) => {}
            Ok(false) => return Some(GenerationOutcome { result: result(Status::Skip, "match conditions not met".into()), resources: Vec::new() }),
            Err(e) => return Some(GenerationOutcome { result: result(Status::Error, e), resources: Vec::new() }),
        }
    }
    let (outcome, resources) = library::collect_generated(|| {
        for g in &p.generate {
            if let Err(e) = g.eval(&b, &[("variables", &variables)]) {
                return Err(format!("expression '{}' failed: {e}", g.source()));
            }
        }
        Ok(())
    });
    Some(match outcome {
        Ok(()) => GenerationOutcome { result: result(Status::Pass, String::new()), resources },
        Err(e) => GenerationOutcome { result: result(Status::Error, e), resources: Vec::new() },
    })
}

#[cfg(test)]
mod tests;
