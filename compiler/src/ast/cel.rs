//! The CEL kinds: `policies.kyverno.io` ValidatingPolicy, ImageValidatingPolicy, MutatingPolicy,
//! GeneratingPolicy, DeletingPolicy (and their `Namespaced*` variants) and the CEL
//! PolicyException; `admissionregistration.k8s.io` ValidatingAdmissionPolicy and
//! MutatingAdmissionPolicy and their bindings.
//!
//! These kinds share one shape: match constraints, named CEL expressions and a kind-specific
//! list of actions. [`CelPolicy`] holds that shape; fields a kind does not have stay empty.

use super::kyverno::{
    AuditAnnotation, CelValidation, NamedExpression, audit_annotation, cel_validation,
    named_expression,
};
use super::{Header, Str, list_at, node_at, str_at, strs_at};
use crate::syntax::Node;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CelPolicyKind {
    Validating { namespaced: bool },
    ImageValidating { namespaced: bool },
    Mutating { namespaced: bool },
    Generating { namespaced: bool },
    Deleting { namespaced: bool },
    Exception,
}

impl CelPolicyKind {
    pub fn from_kind(kind: &str) -> Option<CelPolicyKind> {
        let (namespaced, base) = match kind.strip_prefix("Namespaced") {
            Some(base) => (true, base),
            None => (false, kind),
        };
        Some(match base {
            "ValidatingPolicy" => CelPolicyKind::Validating { namespaced },
            "ImageValidatingPolicy" => CelPolicyKind::ImageValidating { namespaced },
            "MutatingPolicy" => CelPolicyKind::Mutating { namespaced },
            "GeneratingPolicy" => CelPolicyKind::Generating { namespaced },
            "DeletingPolicy" => CelPolicyKind::Deleting { namespaced },
            "PolicyException" if !namespaced => CelPolicyKind::Exception,
            _ => return None,
        })
    }

    pub fn spec_schema(self) -> &'static super::schema::Obj {
        use super::schema;
        match self {
            CelPolicyKind::Validating { .. } => &schema::VPOL_SPEC,
            CelPolicyKind::ImageValidating { .. } => &schema::IVPOL_SPEC,
            CelPolicyKind::Mutating { .. } => &schema::MPOL_SPEC,
            CelPolicyKind::Generating { .. } => &schema::GPOL_SPEC,
            CelPolicyKind::Deleting { .. } => &schema::DPOL_SPEC,
            CelPolicyKind::Exception => &schema::CEL_EXCEPTION_SPEC,
        }
    }
}

/// Any CEL policy kind (see `header.kind`).
#[derive(Clone, Debug, PartialEq)]
pub struct CelPolicy {
    pub header: Header,
    pub match_constraints: Option<Node>,
    pub match_conditions: Vec<NamedExpression>,
    pub variables: Vec<NamedExpression>,
    /// ValidatingPolicy, ImageValidatingPolicy, ValidatingAdmissionPolicy.
    pub validations: Vec<CelValidation>,
    pub audit_annotations: Vec<AuditAnnotation>,
    pub validation_actions: Vec<Str>,
    pub failure_policy: Option<Str>,
    pub evaluation: Option<Node>,
    /// MutatingPolicy, MutatingAdmissionPolicy: `patchType` and the patch expression.
    pub mutations: Vec<CelMutation>,
    /// GeneratingPolicy: generator expressions or templates.
    pub generate: Vec<Node>,
    /// DeletingPolicy: `conditions`.
    pub conditions: Vec<NamedExpression>,
    pub schedule: Option<Str>,
    /// ImageValidatingPolicy.
    pub match_image_references: Vec<Node>,
    pub images: Vec<NamedExpression>,
    pub attestors: Vec<Node>,
    pub attestations: Vec<Node>,
    /// CEL PolicyException.
    pub policy_refs: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CelMutation {
    pub span: crate::source::Span,
    pub patch_type: Option<Str>,
    pub expression: Option<Str>,
}

/// A ValidatingAdmissionPolicyBinding or MutatingAdmissionPolicyBinding.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub header: Header,
    pub policy_name: Option<Str>,
    pub param_ref: Option<Node>,
    pub match_resources: Option<Node>,
    pub validation_actions: Vec<Str>,
}

pub(super) fn build_policy(header: Header, spec: Option<&Node>) -> CelPolicy {
    let named = |key| {
        list_at(spec, key)
            .iter()
            .map(named_expression)
            .collect::<Vec<_>>()
    };
    CelPolicy {
        header,
        match_constraints: node_at(spec, "matchConstraints"),
        match_conditions: named("matchConditions"),
        variables: named("variables"),
        validations: list_at(spec, "validations")
            .iter()
            .map(cel_validation)
            .collect(),
        audit_annotations: list_at(spec, "auditAnnotations")
            .iter()
            .map(audit_annotation)
            .collect(),
        validation_actions: strs_at(spec, "validationActions"),
        failure_policy: str_at(spec, "failurePolicy"),
        evaluation: node_at(spec, "evaluation"),
        mutations: list_at(spec, "mutations")
            .iter()
            .map(|m| {
                let m1 = Some(m);
                let expression = str_at(m.get("applyConfiguration"), "expression")
                    .or_else(|| str_at(m.get("jsonPatch"), "expression"));
                CelMutation {
                    span: m.span,
                    patch_type: str_at(m1, "patchType"),
                    expression,
                }
            })
            .collect(),
        generate: list_at(spec, "generate").to_vec(),
        conditions: named("conditions"),
        schedule: str_at(spec, "schedule"),
        match_image_references: list_at(spec, "matchImageReferences").to_vec(),
        images: named("images"),
        attestors: list_at(spec, "attestors").to_vec(),
        attestations: list_at(spec, "attestations").to_vec(),
        policy_refs: list_at(spec, "policyRefs").to_vec(),
    }
}

pub(super) fn build_binding(header: Header, spec: Option<&Node>) -> Binding {
    Binding {
        header,
        policy_name: str_at(spec, "policyName"),
        param_ref: node_at(spec, "paramRef"),
        match_resources: node_at(spec, "matchResources"),
        validation_actions: strs_at(spec, "validationActions"),
    }
}
