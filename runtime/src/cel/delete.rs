//! DeletingPolicy (cluster and namespaced): which resources a deleting policy would delete.
//!
//! Kyverno runs these policies on their schedule against existing resources, not on admission
//! requests: a resource is deleted when `matchConstraints` select it (for any operation) and
//! every `conditions` expression holds. Offline, the CLI reports each resource as `pass`
//! ("resource matched", it would be deleted) or `fail` ("resource did not match"), and an
//! evaluation error as `error`. A CEL PolicyException whose match conditions hold for the
//! resource keeps it (it does not match).

use serde_json::Value;

use palisade_compiler::ir::cel::{DeletingPolicyIr, MatchConstraints, NamedExpr};
use palisade_stdlib::cel::{Bindings, Value as CelValue};

use super::{CelInputs, constraints_match, eval_bool, eval_variables};
use crate::engine::{self, Request, RuleResult, Status};

pub const MATCHED: &str = "resource matched";
pub const NOT_MATCHED: &str = "resource did not match";

/// The bindings a deleting policy's expressions see: the object, its namespace and the
/// policy's variables; there is no admission request behind a scheduled deletion.
fn bindings(object: &Value, namespace_object: Option<&Value>) -> Bindings {
    let mut b = Bindings::new();
    b.bind_json("object", object);
    b.bind_json("namespaceObject", namespace_object.unwrap_or(&Value::Null));
    b
}

/// Whether every condition holds. A false condition decides at once; errors of the others
/// are reported only when no condition was false, as Kyverno combines them.
fn conditions_hold(conditions: &[NamedExpr], b: &Bindings, variables: &CelValue) -> Result<bool, String> {
    let mut errors = Vec::new();
    for c in conditions {
        match eval_bool(c, b, &[("variables", variables)]) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(true) } else { Err(errors.join("; ")) }
}

/// A scheduled deletion ignores the operations of the resource rules.
fn any_operation(c: &MatchConstraints) -> MatchConstraints {
    let mut c = c.clone();
    for r in c.resource_rules.iter_mut().chain(c.exclude_resource_rules.iter_mut()) {
        r.operations = vec!["*".into()];
    }
    c
}

/// Evaluates a deleting policy on one existing resource.
pub fn evaluate(p: &DeletingPolicyIr, resource: &Value, inputs: &CelInputs, namespace_object: Option<&Value>) -> RuleResult {
    let result = |status: Status, message: String| RuleResult { policy: p.name.clone(), rule: String::new(), status, message, enforce: false };
    let ns = engine::namespace_of(resource).unwrap_or_default();
    if p.namespace.as_deref().is_some_and(|want| want != ns) {
        return result(Status::Fail, NOT_MATCHED.into());
    }
    let user = engine::UserInfo::default();
    let req = Request { operation: "DELETE", object: resource, old_object: Some(resource), user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    if !constraints_match(&any_operation(&p.constraints), &req, namespace_object) {
        return result(Status::Fail, NOT_MATCHED.into());
    }
    let b = bindings(resource, namespace_object);
    let (variables, _) = eval_variables(&p.variables, &b, &CelValue::Null);
    let exempt = inputs.exceptions.iter().any(|e| {
        e.namespace.as_deref().is_none_or(|n| n.is_empty() || n == ns || p.namespace.is_none())
            && e.policy_refs.iter().any(|(k, n)| n == &p.name && (k.is_empty() || k.ends_with("DeletingPolicy")))
            && conditions_hold(&e.match_conditions, &b, &variables).unwrap_or(false)
    });
    if exempt {
        return result(Status::Fail, NOT_MATCHED.into());
    }
    match conditions_hold(&p.conditions, &b, &variables) {
        Ok(true) => result(Status::Pass, MATCHED.into()),
        Ok(false) => result(Status::Fail, NOT_MATCHED.into()),
        Err(e) => result(Status::Error, e),
    }
}
