//! CEL policy IR: `ValidatingPolicy` (cluster and namespaced), `ValidatingAdmissionPolicy`
//! (with its bindings) and the `validate.cel` block of a `kyverno.io` rule.
//!
//! Every expression is parsed and checked once here (`palisade_stdlib::cel::compile`); the
//! runtime only evaluates the compiled programs. A policy that targets Pods gets autogen
//! variants for the Pod controllers, with `object.spec`/`object.metadata` rewritten to the Pod
//! template, as Kyverno generates them.

use std::sync::Arc;

use serde_json::Value;

use palisade_stdlib::cel::{self, Program};

use super::pattern::LowerError;
use super::policy::LabelSelector;
use crate::autogen;

/// A named, compiled expression (a variable, a match condition, a precondition).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NamedExpr {
    pub name: String,
    pub program: Arc<Program>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Validation {
    pub program: Arc<Program>,
    pub message: Option<String>,
    pub message_expression: Option<Arc<Program>>,
    pub reason: Option<String>,
}

/// Where a policy finds its parameters.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ParamRef {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub selector: Option<LabelSelector>,
    /// `Deny` (the default) fails requests when no parameter is found; `Allow` skips.
    pub deny_when_missing: bool,
}

/// The expressions a CEL rule runs, shared by every CEL form.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CelRules {
    pub variables: Vec<NamedExpr>,
    pub validations: Vec<Validation>,
    pub audit_annotations: Vec<NamedExpr>,
    /// `(apiVersion, kind)` of the parameter resource.
    pub param_kind: Option<(String, String)>,
    pub param_ref: Option<ParamRef>,
}

/// One `resourceRules` entry.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ResourceRule {
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub operations: Vec<String>,
    /// Plural resource names, `*`, or `resource/subresource`.
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    /// `Cluster`, `Namespaced` or `*` as written; `None` when the rule does not say (all scopes).
    pub scope: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct MatchConstraints {
    pub resource_rules: Vec<ResourceRule>,
    pub exclude_resource_rules: Vec<ResourceRule>,
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
    /// `Exact` or `Equivalent` as written; `None` means Kubernetes' default, `Equivalent`.
    pub match_policy: Option<String>,
}

/// What a policy (or one autogen variant of it) matches and runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Variant {
    /// `""` for the policy as written; `autogen-defaults` / `autogen-cronjobs` for the
    /// generated controller variants.
    pub rule: String,
    pub constraints: MatchConstraints,
    pub match_conditions: Vec<NamedExpr>,
    pub rules: CelRules,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CelKind {
    ValidatingPolicy,
    NamespacedValidatingPolicy,
    ValidatingAdmissionPolicy,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CelPolicyIr {
    pub name: String,
    pub kind: CelKind,
    /// Set for a namespaced policy: it only applies in this namespace.
    pub namespace: Option<String>,
    pub variants: Vec<Variant>,
    /// `Deny`, `Audit`, `Warn`.
    pub actions: Vec<String>,
    /// `failurePolicy: Ignore` turns evaluation errors into skips.
    pub ignore_failures: bool,
    pub background: bool,
}

/// The controllers a Pod policy's `autogen-defaults` variant covers, as (kind, plural).
const TEMPLATE_CONTROLLERS: [(&str, &str, &str); 6] = [
    ("apps", "DaemonSet", "daemonsets"),
    ("apps", "Deployment", "deployments"),
    ("batch", "Job", "jobs"),
    ("apps", "StatefulSet", "statefulsets"),
    ("apps", "ReplicaSet", "replicasets"),
    ("", "ReplicationController", "replicationcontrollers"),
];

fn compile(text: &str, field: &str) -> Result<Arc<Program>, LowerError> {
    cel::compile(text).map(Arc::new).map_err(|e| LowerError(format!("{field}: {e}")))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn named(list: Option<&Value>, field: &str, expr_key: &str) -> Result<Vec<NamedExpr>, LowerError> {
    let mut out = Vec::new();
    for (i, item) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let name = str_of(item, "name").or_else(|| str_of(item, "key")).unwrap_or_default().to_owned();
        let text = str_of(item, expr_key).unwrap_or_default();
        out.push(NamedExpr { name, program: compile(text, &format!("{field}[{i}].{expr_key}"))? });
    }
    Ok(out)
}

/// Lowers the expressions of a CEL block: `spec` of a ValidatingPolicy, or `validate.cel`.
pub fn lower_rules(block: &Value, field: &str, validations_key: &str) -> Result<CelRules, LowerError> {
    let mut validations = Vec::new();
    for (i, v) in block.get(validations_key).and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("{field}.{validations_key}[{i}]");
        validations.push(Validation {
            program: compile(str_of(v, "expression").unwrap_or_default(), &format!("{at}.expression"))?,
            message: str_of(v, "message").map(str::to_owned),
            message_expression: match str_of(v, "messageExpression") {
                Some(m) => Some(compile(m, &format!("{at}.messageExpression"))?),
                None => None,
            },
            reason: str_of(v, "reason").map(str::to_owned),
        });
    }
    let param_kind = block.get("paramKind").map(|p| {
        (str_of(p, "apiVersion").unwrap_or_default().to_owned(), str_of(p, "kind").unwrap_or_default().to_owned())
    });
    Ok(CelRules {
        variables: named(block.get("variables"), &format!("{field}.variables"), "expression")?,
        validations,
        audit_annotations: named(block.get("auditAnnotations"), &format!("{field}.auditAnnotations"), "valueExpression")?,
        param_kind,
        param_ref: block.get("paramRef").map(lower_param_ref),
    })
}

/// `celPreconditions` of a `kyverno.io` rule.
pub fn lower_preconditions(v: Option<&Value>) -> Result<Vec<NamedExpr>, LowerError> {
    named(v, "celPreconditions", "expression")
}

pub fn lower_param_ref(p: &Value) -> ParamRef {
    ParamRef {
        name: str_of(p, "name").map(str::to_owned),
        namespace: str_of(p, "namespace").map(str::to_owned),
        selector: p.get("selector").map(super::policy::lower_label_selector),
        deny_when_missing: str_of(p, "parameterNotFoundAction") != Some("Allow"),
    }
}

fn lower_resource_rules(v: Option<&Value>) -> Vec<ResourceRule> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| ResourceRule {
            api_groups: strings(r.get("apiGroups")),
            api_versions: strings(r.get("apiVersions")),
            operations: strings(r.get("operations")),
            resources: strings(r.get("resources")),
            resource_names: strings(r.get("resourceNames")),
            scope: r.get("scope").and_then(Value::as_str).map(str::to_owned),
        })
        .collect()
}

pub fn lower_constraints(m: Option<&Value>) -> MatchConstraints {
    let Some(m) = m else { return MatchConstraints::default() };
    MatchConstraints {
        resource_rules: lower_resource_rules(m.get("resourceRules")),
        exclude_resource_rules: lower_resource_rules(m.get("excludeResourceRules")),
        namespace_selector: m.get("namespaceSelector").filter(|s| !s.is_null()).map(super::policy::lower_label_selector),
        object_selector: m.get("objectSelector").filter(|s| !s.is_null()).map(super::policy::lower_label_selector),
        match_policy: m.get("matchPolicy").and_then(Value::as_str).map(str::to_owned),
    }
}

fn lower_variant(spec: &Value, rule: &str) -> Result<Variant, LowerError> {
    Ok(Variant {
        rule: rule.to_owned(),
        constraints: lower_constraints(spec.get("matchConstraints")),
        match_conditions: named(spec.get("matchConditions"), "spec.matchConditions", "expression")?,
        rules: lower_rules(spec, "spec", "validations")?,
    })
}

/// Whether the policy's resource rules name only Pods (the condition for autogen).
fn pods_only(spec: &Value) -> bool {
    let rules = spec.pointer("/matchConstraints/resourceRules").and_then(Value::as_array);
    let Some(rules) = rules.filter(|r| !r.is_empty()) else { return false };
    rules.iter().all(|r| {
        let resources = strings(r.get("resources"));
        !resources.is_empty()
            && resources.iter().all(|x| x == "pods")
            && strings(r.get("resourceNames")).is_empty()
            && strings(r.get("apiGroups")).iter().all(|g| g.is_empty())
    })
}

/// The spec of an autogen variant: the resource rules retargeted at `controllers` and every
/// expression rewritten for the Pod template.
fn autogen_spec(spec: &Value, controllers: &[(&str, &str, &str)], cronjob: bool) -> Value {
    fn rewrite(v: &Value, cronjob: bool, in_constraints: bool) -> Value {
        match v {
            Value::String(s) if !in_constraints => Value::String(autogen::rewrite_cel(s, cronjob)),
            Value::Array(items) => Value::Array(items.iter().map(|x| rewrite(x, cronjob, in_constraints)).collect()),
            Value::Object(m) => Value::Object(
                m.iter().map(|(k, x)| (k.clone(), rewrite(x, cronjob, in_constraints || k == "matchConstraints"))).collect(),
            ),
            other => other.clone(),
        }
    }
    let mut out = rewrite(spec, cronjob, false);
    if let Some(rules) = out.pointer_mut("/matchConstraints/resourceRules").and_then(Value::as_array_mut) {
        for r in rules.iter_mut() {
            if let Some(obj) = r.as_object_mut() {
                let mut groups: Vec<&str> = controllers.iter().map(|c| c.0).collect();
                groups.dedup();
                groups.sort_unstable();
                groups.dedup();
                obj.insert("apiGroups".into(), groups.into());
                obj.insert("apiVersions".into(), vec!["v1"].into());
                obj.insert("resources".into(), controllers.iter().map(|c| c.2).collect::<Vec<_>>().into());
            }
        }
    }
    out
}

impl CelPolicyIr {
    /// Lowers a `policies.kyverno.io` ValidatingPolicy / NamespacedValidatingPolicy or an
    /// `admissionregistration.k8s.io` ValidatingAdmissionPolicy document.
    pub fn lower(doc: &Value) -> Result<CelPolicyIr, LowerError> {
        let kind = match str_of(doc, "kind").unwrap_or_default() {
            "ValidatingPolicy" => CelKind::ValidatingPolicy,
            "NamespacedValidatingPolicy" => CelKind::NamespacedValidatingPolicy,
            "ValidatingAdmissionPolicy" => CelKind::ValidatingAdmissionPolicy,
            other => return Err(LowerError(format!("{other} is not a validating CEL policy kind"))),
        };
        let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = match kind {
            CelKind::NamespacedValidatingPolicy => {
                Some(doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned())
            }
            _ => None,
        };
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let mut variants = vec![lower_variant(&spec, "")?];
        let autogen_enabled = kind != CelKind::ValidatingAdmissionPolicy && pods_only(&spec);
        if autogen_enabled {
            let wanted = spec.pointer("/autogen/podControllers/controllers").and_then(Value::as_array).map(|c| {
                c.iter().filter_map(Value::as_str).map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>()
            });
            let allowed = |plural: &str, kind: &str| {
                wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == plural || x == &kind.to_ascii_lowercase()))
            };
            let template: Vec<(&str, &str, &str)> = TEMPLATE_CONTROLLERS.iter().copied().filter(|c| allowed(c.2, c.1)).collect();
            if !template.is_empty() {
                variants.push(lower_variant(&autogen_spec(&spec, &template, false), "autogen-defaults")?);
            }
            if allowed("cronjobs", "CronJob") {
                variants.push(lower_variant(&autogen_spec(&spec, &[("batch", "CronJob", "cronjobs")], true), "autogen-cronjobs")?);
            }
        }
        let actions = strings(spec.get("validationActions"));
        let actions = if actions.is_empty() { vec!["Deny".to_owned()] } else { actions };
        Ok(CelPolicyIr {
            name,
            kind,
            namespace,
            variants,
            actions,
            ignore_failures: str_of(&spec, "failurePolicy") == Some("Ignore"),
            background: spec.pointer("/evaluation/background/enabled").and_then(Value::as_bool).unwrap_or(true),
        })
    }
}

/// One mutation of a MutatingPolicy.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MutationIr {
    /// `JSONPatch` (a list of `JSONPatch{op, path, value}`), else `ApplyConfiguration` (an
    /// `Object{...}` merged into the resource).
    pub json_patch: bool,
    pub program: Arc<Program>,
}

/// A `policies.kyverno.io` MutatingPolicy (or NamespacedMutatingPolicy) or an
/// `admissionregistration.k8s.io` MutatingAdmissionPolicy.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MutatingPolicyIr {
    pub name: String,
    pub namespace: Option<String>,
    pub constraints: MatchConstraints,
    pub match_conditions: Vec<NamedExpr>,
    pub variables: Vec<NamedExpr>,
    pub mutations: Vec<MutationIr>,
    pub ignore_failures: bool,
}

impl MutatingPolicyIr {
    pub fn lower(doc: &Value) -> Result<MutatingPolicyIr, LowerError> {
        let kind = str_of(doc, "kind").unwrap_or_default();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let mut mutations = Vec::new();
        for (i, m) in spec.get("mutations").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let json_patch = str_of(m, "patchType") == Some("JSONPatch");
            let (block, field) = if json_patch { ("jsonPatch", "jsonPatch") } else { ("applyConfiguration", "applyConfiguration") };
            let text = m.get(block).and_then(|b| str_of(b, "expression")).unwrap_or_default();
            mutations.push(MutationIr { json_patch, program: compile(text, &format!("spec.mutations[{i}].{field}.expression"))? });
        }
        Ok(MutatingPolicyIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: kind
                .starts_with("Namespaced")
                .then(|| doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned()),
            constraints: lower_constraints(spec.get("matchConstraints")),
            match_conditions: named(spec.get("matchConditions"), "spec.matchConditions", "expression")?,
            variables: named(spec.get("variables"), "spec.variables", "expression")?,
            mutations,
            ignore_failures: str_of(&spec, "failurePolicy") == Some("Ignore"),
        })
    }
}

/// A `policies.kyverno.io` GeneratingPolicy (or NamespacedGeneratingPolicy): its `generate`
/// expressions call `generator.Apply(namespace, [resources])`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GeneratingPolicyIr {
    pub name: String,
    pub namespace: Option<String>,
    pub constraints: MatchConstraints,
    pub match_conditions: Vec<NamedExpr>,
    pub variables: Vec<NamedExpr>,
    pub generate: Vec<Arc<Program>>,
}

impl GeneratingPolicyIr {
    pub fn lower(doc: &Value) -> Result<GeneratingPolicyIr, LowerError> {
        let kind = str_of(doc, "kind").unwrap_or_default();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let mut generate = Vec::new();
        for (i, g) in spec.get("generate").and_then(Value::as_array).into_iter().flatten().enumerate() {
            match str_of(g, "expression") {
                Some(text) => generate.push(compile(text, &format!("spec.generate[{i}].expression"))?),
                None => return Err(LowerError(format!("spec.generate[{i}]: only `expression` generators are evaluated by Palisade yet"))),
            }
        }
        Ok(GeneratingPolicyIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: kind
                .starts_with("Namespaced")
                .then(|| doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned()),
            constraints: lower_constraints(spec.get("matchConstraints")),
            match_conditions: named(spec.get("matchConditions"), "spec.matchConditions", "expression")?,
            variables: named(spec.get("variables"), "spec.variables", "expression")?,
            generate,
        })
    }
}

/// A `policies.kyverno.io` DeletingPolicy (or NamespacedDeletingPolicy): on its schedule,
/// Kyverno deletes every resource its `matchConstraints` select (whatever the operations say)
/// and its `conditions` all hold for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeletingPolicyIr {
    pub name: String,
    pub namespace: Option<String>,
    pub constraints: MatchConstraints,
    pub conditions: Vec<NamedExpr>,
    pub variables: Vec<NamedExpr>,
    /// The cron schedule, checked at lowering.
    pub schedule: String,
    /// `Foreground`, `Background` or `Orphan`, when set.
    pub propagation: Option<String>,
}

impl DeletingPolicyIr {
    pub fn lower(doc: &Value) -> Result<DeletingPolicyIr, LowerError> {
        let kind = str_of(doc, "kind").unwrap_or_default();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let constraints = lower_constraints(spec.get("matchConstraints"));
        // Kyverno refuses a deleting policy without resource rules: it would select nothing.
        if constraints.resource_rules.is_empty() {
            return Err(LowerError("spec.matchConstraints: a matchConstraints with at least one resource rule is required".into()));
        }
        let schedule = str_of(&spec, "schedule").unwrap_or_default().to_owned();
        check_cron(&schedule).map_err(|e| LowerError(format!("spec.schedule: {e}")))?;
        let propagation = str_of(&spec, "deletionPropagationPolicy").map(str::to_owned);
        if let Some(p) = &propagation && !matches!(p.as_str(), "Foreground" | "Background" | "Orphan") {
            return Err(LowerError(format!("spec.deletionPropagationPolicy: `{p}` is not one of Foreground, Background, Orphan")));
        }
        Ok(DeletingPolicyIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: kind
                .starts_with("Namespaced")
                .then(|| doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned()),
            constraints,
            conditions: named(spec.get("conditions"), "spec.conditions", "expression")?,
            variables: named(spec.get("variables"), "spec.variables", "expression")?,
            schedule,
            propagation,
        })
    }
}

/// Checks a standard five-field cron schedule (minute, hour, day of month, month, day of
/// week; `*`, numbers, ranges, steps, lists and month/day names) or a `@` descriptor, as the
/// cron library Kyverno uses accepts them.
pub fn check_cron(text: &str) -> Result<(), String> {
    const DESCRIPTORS: [&str; 8] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every"];
    let text = text.trim();
    if text.is_empty() {
        return Err("a schedule is required".into());
    }
    if text.starts_with('@') {
        let word = text.split_whitespace().next().unwrap_or_default();
        return if DESCRIPTORS.contains(&word) { Ok(()) } else { Err(format!("`{word}` is not a cron descriptor")) };
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("`{text}` is not a cron schedule: it has {} fields, not 5", fields.len()));
    }
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let limits: [(&str, u32, u32, &[&str], u32); 5] =
        [("minute", 0, 59, &[], 0), ("hour", 0, 23, &[], 0), ("day of month", 1, 31, &[], 0), ("month", 1, 12, &MONTHS, 1), ("day of week", 0, 6, &DAYS, 0)];
    for (field, (what, lo, hi, names, base)) in fields.iter().zip(limits) {
        let number = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32 + base);
            }
            let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a valid {what} in `{text}`"))?;
            if n < lo || n > hi {
                return Err(format!("{what} {n} is out of range {lo}-{hi} in `{text}`"));
            }
            Ok(n)
        };
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(s) = step && s.parse::<u32>().map_or(true, |n| n == 0) {
                return Err(format!("`{s}` is not a valid step for the {what} in `{text}`"));
            }
            if range == "*" || range == "?" {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("the {what} range {a}-{b} is backwards in `{text}`"));
                    }
                }
                None => {
                    number(range)?;
                }
            }
        }
    }
    Ok(())
}

/// One `matchImageReferences` entry: a Kyverno wildcard or a CEL expression over `ref`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum ImageMatch {
    Glob(String),
    Expression(Arc<Program>),
}

/// How an attestor verifies: cosign (key, keyless or certificate; the block as written, with
/// `key.expression` and friends compiled) or notary, which Palisade does not verify.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum AttestorIr {
    Cosign { name: String, spec: Value, key_expression: Option<Arc<Program>> },
    Notary { name: String, spec: Value },
}

impl AttestorIr {
    pub fn name(&self) -> &str {
        match self {
            AttestorIr::Cosign { name, .. } | AttestorIr::Notary { name, .. } => name,
        }
    }
}

/// One `attestations` entry: an in-toto predicate type or an OCI referrer artifact type.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AttestationIr {
    pub name: String,
    /// `intoto` or `referrer`.
    pub source: String,
    pub kind: String,
}

/// A `policies.kyverno.io` ImageValidatingPolicy (or its namespaced variant).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ImageValidatingPolicyIr {
    pub name: String,
    pub namespace: Option<String>,
    pub constraints: MatchConstraints,
    pub match_conditions: Vec<NamedExpr>,
    /// Only images these select are verified; none selected passes the policy untouched.
    pub match_images: Vec<ImageMatch>,
    /// Custom `images` extractors: name -> expression returning a list of image strings.
    pub extractors: Vec<NamedExpr>,
    pub attestors: Vec<AttestorIr>,
    pub attestations: Vec<AttestationIr>,
    /// Variables and validations.
    pub rules: CelRules,
    pub actions: Vec<String>,
    pub ignore_failures: bool,
    pub mutate_digest: bool,
    pub verify_digest: bool,
    pub required: bool,
    /// `credentials.allowInsecureRegistry`: plain HTTP registries are allowed.
    pub allow_insecure_registry: bool,
}

impl ImageValidatingPolicyIr {
    pub fn lower(doc: &Value) -> Result<ImageValidatingPolicyIr, LowerError> {
        let kind = str_of(doc, "kind").unwrap_or_default();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let mut match_images = Vec::new();
        for (i, m) in spec.get("matchImageReferences").and_then(Value::as_array).into_iter().flatten().enumerate() {
            match (str_of(m, "glob"), str_of(m, "expression")) {
                (Some(g), _) if !g.is_empty() => match_images.push(ImageMatch::Glob(g.to_owned())),
                (_, Some(e)) if !e.is_empty() => {
                    match_images.push(ImageMatch::Expression(compile(e, &format!("spec.matchImageReferences[{i}].expression"))?))
                }
                _ => return Err(LowerError(format!("spec.matchImageReferences[{i}]: one of `glob` or `expression` is required"))),
            }
        }
        let mut attestors = Vec::new();
        for (i, a) in spec.get("attestors").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let name = str_of(a, "name").unwrap_or_default().to_owned();
            if let Some(c) = a.get("cosign") {
                let key_expression = match c.pointer("/key/expression").and_then(Value::as_str) {
                    Some(e) => Some(compile(e, &format!("spec.attestors[{i}].cosign.key.expression"))?),
                    None => None,
                };
                attestors.push(AttestorIr::Cosign { name, spec: c.clone(), key_expression });
            } else if let Some(n) = a.get("notary") {
                attestors.push(AttestorIr::Notary { name, spec: n.clone() });
            } else {
                return Err(LowerError(format!("spec.attestors[{i}]: one of `cosign` or `notary` is required")));
            }
        }
        let mut attestations = Vec::new();
        for (i, a) in spec.get("attestations").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let name = str_of(a, "name").unwrap_or_default().to_owned();
            let (source, kind) = if let Some(t) = a.pointer("/intoto/type").and_then(Value::as_str) {
                ("intoto", t)
            } else if let Some(t) = a.pointer("/referrer/type").and_then(Value::as_str) {
                ("referrer", t)
            } else {
                return Err(LowerError(format!("spec.attestations[{i}]: one of `intoto.type` or `referrer.type` is required")));
            };
            attestations.push(AttestationIr { name, source: source.into(), kind: kind.into() });
        }
        let config = |k: &str| spec.pointer(&format!("/validationConfigurations/{k}")).and_then(Value::as_bool).unwrap_or(true);
        let actions = strings(spec.get("validationActions"));
        Ok(ImageValidatingPolicyIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: kind
                .starts_with("Namespaced")
                .then(|| doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned()),
            constraints: lower_constraints(spec.get("matchConstraints")),
            match_conditions: named(spec.get("matchConditions"), "spec.matchConditions", "expression")?,
            match_images,
            extractors: named(spec.get("images"), "spec.images", "expression")?,
            attestors,
            attestations,
            rules: lower_rules(&spec, "spec", "validations")?,
            actions: if actions.is_empty() { vec!["Deny".to_owned()] } else { actions },
            ignore_failures: str_of(&spec, "failurePolicy") == Some("Ignore"),
            mutate_digest: config("mutateDigest"),
            verify_digest: config("verifyDigest"),
            required: config("required"),
            allow_insecure_registry: spec.pointer("/credentials/allowInsecureRegistry").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// A `ValidatingAdmissionPolicyBinding`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BindingIr {
    pub name: String,
    pub policy: String,
    pub actions: Vec<String>,
    pub param_ref: Option<ParamRef>,
    pub constraints: Option<MatchConstraints>,
}

impl BindingIr {
    pub fn lower(doc: &Value) -> BindingIr {
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        BindingIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            policy: str_of(&spec, "policyName").unwrap_or_default().to_owned(),
            actions: strings(spec.get("validationActions")),
            param_ref: spec.get("paramRef").map(lower_param_ref),
            constraints: spec.get("matchResources").map(|m| lower_constraints(Some(m))),
        }
    }
}

/// A `policies.kyverno.io` PolicyException: which CEL policies it exempts, and when.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CelExceptionIr {
    pub name: String,
    pub namespace: Option<String>,
    /// `(kind, name)` of the exempted policies.
    pub policy_refs: Vec<(String, String)>,
    pub match_conditions: Vec<NamedExpr>,
    pub allowed_images: Vec<String>,
    pub allowed_values: Vec<String>,
    /// `pass` or `skip` (the default): the result an exempted request reports.
    pub report_result: String,
}

impl CelExceptionIr {
    pub fn lower(doc: &Value) -> Result<CelExceptionIr, LowerError> {
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        Ok(CelExceptionIr {
            name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            namespace: doc.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned),
            policy_refs: spec
                .get("policyRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| (str_of(r, "kind").unwrap_or_default().to_owned(), str_of(r, "name").unwrap_or_default().to_owned()))
                .collect(),
            match_conditions: named(spec.get("matchConditions"), "spec.matchConditions", "expression")?,
            allowed_images: strings(spec.get("images")),
            allowed_values: strings(spec.get("allowedValues")),
            report_result: str_of(&spec, "reportResult").unwrap_or("skip").to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_policies_get_controller_variants() {
        let doc = json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "p"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
                     "validations": [{"expression": "object.spec.containers.all(c, has(c.image))"}]}});
        let ir = CelPolicyIr::lower(&doc).unwrap();
        let names: Vec<&str> = ir.variants.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(names, ["", "autogen-defaults", "autogen-cronjobs"]);
        assert_eq!(ir.variants[2].rules.validations[0].program.source(), "object.spec.jobTemplate.spec.template.spec.containers.all(c, has(c.image))");
        assert_eq!(ir.variants[1].constraints.resource_rules[0].resources[1], "deployments");
    }

    #[test]
    fn cron_schedules() {
        for ok in ["* * * * *", "*/5 * * * *", "0 0 1 jan,jul mon-fri", "15,45 8-18/2 * * 0", "@hourly", "@every 5m"] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        let errors: Vec<String> = ["* * * *", "61 * * * *", "*/0 * * * *", "5-1 * * * *", "* * * foo *", "@sometimes", ""]
            .iter()
            .map(|s| check_cron(s).unwrap_err())
            .collect();
        assert_eq!(
            errors,
            [
                "`* * * *` is not a cron schedule: it has 4 fields, not 5",
                "minute 61 is out of range 0-59 in `61 * * * *`",
                "`0` is not a valid step for the minute in `*/0 * * * *`",
                "the minute range 5-1 is backwards in `5-1 * * * *`",
                "`foo` is not a valid month in `* * * foo *`",
                "`@sometimes` is not a cron descriptor",
                "a schedule is required",
            ]
        );
    }

    #[test]
    fn compile_errors_name_the_field() {
        let doc = json!({"kind": "ValidatingPolicy", "metadata": {"name": "p"}, "spec": {"validations": [{"expression": "true"}, {"expression": "nosuch(1)"}]}});
        let e = CelPolicyIr::lower(&doc).unwrap_err();
        assert_eq!(e.0, "spec.validations[1].expression: 1:1: undeclared reference to 'nosuch'");
    }
}
