//! Policy IR: a `kyverno.io` ClusterPolicy or Policy, autogen applied, ready to evaluate.
//!
//! Lowering reads the policy's JSON form (the same data Kyverno unmarshals), precompiles every
//! selector (kinds, wildcards) and pattern, and keeps what evaluation needs and nothing else.
//! Rule kinds the runtime does not evaluate yet are kept as [`RuleBody::Unsupported`] so results
//! say so instead of silently passing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use palisade_stdlib::wildcard::Wildcard;

use super::pattern::{LowerError, Pattern};
use crate::autogen;

/// A name the compiler writes as a string literal. Spelled through this alias so that serde's
/// derive does not treat it as borrowed from the input; bundles decode it with
/// [`crate::bundle::static_str`].
pub type StaticName = &'static str;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyIr {
    pub name: String,
    /// Set for a namespaced `Policy`: it only applies to resources in this namespace.
    pub namespace: Option<String>,
    pub background: bool,
    /// The spec-level default failure action (`validationFailureAction`), `Audit` if unset.
    pub enforce: bool,
    pub apply_one: bool,
    /// Effective failurePolicy is `Ignore` (`webhookConfiguration.failurePolicy`, else
    /// `spec.failurePolicy`; the default is `Fail`).
    pub failure_policy_ignore: bool,
    pub rules: Vec<RuleIr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleIr {
    pub name: String,
    pub matcher: Match,
    pub exclude: Option<Match>,
    /// Raw preconditions (`{any, all}` or a legacy list); evaluated with JMESPath at run time.
    pub preconditions: Option<Value>,
    pub context: Vec<Value>,
    pub body: RuleBody,
    /// The rule's own failure action, when it sets one (`validate.failureAction`).
    pub enforce: Option<bool>,
    /// `celPreconditions`, compiled; all must hold for the rule to apply.
    pub cel_preconditions: Vec<super::cel::NamedExpr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RuleBody {
    Validate(Validate),
    /// A `mutate` rule: applied before any validation, in declaration order.
    Mutate(Mutate),
    /// A `generate` rule: produces a new resource from `data`, `clone` or `cloneList`.
    Generate(Generate),
    /// `verifyImages`: evaluated by the runtime's image verifier, which talks to registries.
    VerifyImages(super::images::VerifyImages),
    /// A rule kind that Palisade does not evaluate yet, with its name for messages.
    Unsupported(#[serde(deserialize_with = "crate::bundle::static_str")] StaticName),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Validate {
    pub message: Option<String>,
    pub check: Check,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Check {
    /// A pattern without variables, lowered once.
    Pattern(Pattern),
    /// A pattern with `{{ }}` variables: substituted per request, then lowered.
    DynamicPattern(Value),
    /// `anyPattern`: the first item that matches passes the rule.
    AnyPattern(Vec<PatternItem>),
    Deny(Value),
    /// `validate.cel`: compiled CEL expressions, evaluated by the runtime's CEL module.
    Cel(Box<super::cel::CelRules>),
    /// `foreach`: each entry evaluates its check once per element of its list.
    Foreach(Vec<Foreach>),
    /// `podSecurity`: the Pod Security Standards checks of a level and version, less exclusions.
    PodSecurity(Box<super::podsecurity::PodSecurity>),
    Unsupported(#[serde(deserialize_with = "crate::bundle::static_str")] StaticName),
}

/// One `anyPattern` item: lowered once when it has no variables (or does not lower, which is
/// reported per request as Kyverno does), else substituted per request and then lowered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PatternItem {
    Static(Pattern),
    Dynamic(Value),
}

/// One `validate.foreach` entry (or a nested one).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Foreach {
    /// A JMESPath expression without braces, evaluated in the rule's context.
    pub list: String,
    /// `elementScope`: whether the check's pattern applies to the element (the default when the
    /// element is a map) or to the whole resource.
    pub element_scope: Option<bool>,
    pub context: Vec<Value>,
    pub preconditions: Option<Value>,
    pub check: Check,
}

/// A `mutate` rule. Patches keep their raw JSON form because variables are substituted per
/// request (and per element in `foreach`) before they are applied.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Mutate {
    pub patch_strategic_merge: Option<Value>,
    /// The `patchesJson6902` text: a YAML or JSON list of RFC 6902 operations.
    pub patches_json6902: Option<String>,
    /// `foreach` entries, each `{list, order, context, preconditions, patch.. | foreach}`.
    pub foreach: Vec<Value>,
    /// `targets` of a mutate-existing rule; empty for admission mutation.
    pub targets: Vec<Value>,
}

/// A `generate` rule, kept as written: its fields are substituted per trigger.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Generate {
    pub raw: Value,
}

/// `match` or `exclude`: any/all of resource filters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Match {
    pub any: Vec<Filter>,
    pub all: Vec<Filter>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Filter {
    pub kinds: Vec<KindSelector>,
    pub names: Vec<Wildcard>,
    pub namespaces: Vec<Wildcard>,
    pub operations: Vec<String>,
    pub annotations: Vec<(Wildcard, Wildcard)>,
    pub selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub subjects: Vec<Subject>,
    pub roles: Vec<String>,
    pub cluster_roles: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub name: Wildcard,
    pub namespace: Option<String>,
}

/// A Kubernetes label selector; `matchLabels` keys and values may hold wildcards in Kyverno.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LabelSelector {
    pub match_labels: Vec<(Wildcard, Wildcard)>,
    pub match_expressions: Vec<LabelExpr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelExpr {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// A kind selector: `Kind`, `v1/Kind`, `group/v1/Kind`, each segment a wildcard, with an
/// optional subresource (`Pod/exec`, `Deployment.scale`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KindSelector {
    pub group: Option<Wildcard>,
    pub version: Option<Wildcard>,
    pub kind: Wildcard,
    pub subresource: Option<Wildcard>,
}

impl KindSelector {
    pub fn parse(text: &str) -> KindSelector {
        let w = Wildcard::new;
        let parts: Vec<&str> = text.split('/').collect();
        // A dotted subresource (`Pod.status`) applies to the kind part.
        let split_dot = |k: &str| -> (Wildcard, Option<Wildcard>) {
            match k.split_once('.') {
                Some((kind, sub)) => (w(kind), Some(w(sub))),
                None => (w(k), None),
            }
        };
        match parts.as_slice() {
            [kind] => {
                let (kind, subresource) = split_dot(kind);
                KindSelector { group: None, version: None, kind, subresource }
            }
            // `Kind/sub` when the second part is all lowercase (Kyverno's rule), else `v1/Kind`.
            [a, b] if b.chars().all(|c| c.is_ascii_lowercase()) && *b != "*" => {
                KindSelector { group: None, version: None, kind: w(a), subresource: Some(w(b)) }
            }
            [version, kind] => {
                let (kind, subresource) = split_dot(kind);
                KindSelector { group: None, version: Some(w(version)), kind, subresource }
            }
            [group, version, kind] => {
                let (kind, subresource) = split_dot(kind);
                KindSelector { group: Some(w(group)), version: Some(w(version)), kind, subresource }
            }
            [group, version, kind, sub, ..] => {
                KindSelector { group: Some(w(group)), version: Some(w(version)), kind: w(kind), subresource: Some(w(sub)) }
            }
            [] => KindSelector { group: None, version: None, kind: w(""), subresource: None },
        }
    }

    /// Whether a resource of this group/version/kind (and subresource, `""` for none) matches.
    pub fn matches(&self, group: &str, version: &str, kind: &str, subresource: &str) -> bool {
        if !self.kind.matches(kind) {
            return false;
        }
        if self.group.as_ref().is_some_and(|g| !g.matches(group)) {
            return false;
        }
        if self.version.as_ref().is_some_and(|v| !v.matches(version)) {
            return false;
        }
        match &self.subresource {
            Some(s) => s.matches(subresource),
            // A plain kind also matches the `ephemeralcontainers` subresource (Kyverno keeps
            // this for compatibility); every other subresource needs to be named.
            None => subresource.is_empty() || subresource == "ephemeralcontainers",
        }
    }
}

impl PolicyIr {
    /// Lowers a ClusterPolicy or Policy document, its autogen rules included.
    pub fn lower(doc: &Value) -> Result<PolicyIr, LowerError> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = if kind == "Policy" {
            Some(doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned())
        } else {
            None
        };
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let enforce = spec
            .get("validationFailureAction")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("enforce"));
        let background = spec.get("background").and_then(Value::as_bool).unwrap_or(true);
        let apply_one = spec.get("applyRules").and_then(Value::as_str) == Some("One");
        let failure_policy = spec
            .pointer("/webhookConfiguration/failurePolicy")
            .or_else(|| spec.get("failurePolicy"))
            .and_then(Value::as_str);
        let failure_policy_ignore = failure_policy == Some("Ignore");
        let mut rules = Vec::new();
        let declared = spec.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
        for rule in declared.iter().chain(autogen::autogen_rules(doc).iter()) {
            rules.push(lower_rule(rule)?);
        }
        Ok(PolicyIr { name, namespace, background, enforce, apply_one, failure_policy_ignore, rules })
    }
}

fn lower_rule(rule: &Value) -> Result<RuleIr, LowerError> {
    let name = rule.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let matcher = rule.get("match").map(lower_match).unwrap_or_default();
    let exclude = rule.get("exclude").map(lower_match);
    let preconditions = rule.get("preconditions").filter(|p| !p.is_null()).cloned();
    let context = rule.get("context").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut enforce = None;
    let body = if let Some(v) = rule.get("validate") {
        if let Some(action) = v.get("failureAction").and_then(Value::as_str) {
            enforce = Some(action.eq_ignore_ascii_case("enforce"));
        }
        RuleBody::Validate(lower_validate(v)?)
    } else if let Some(m) = rule.get("mutate") {
        RuleBody::Mutate(lower_mutate(m))
    } else if let Some(g) = rule.get("generate") {
        RuleBody::Generate(Generate { raw: g.clone() })
    } else if let Some(list) = rule.get("verifyImages").and_then(Value::as_array) {
        // Enforce on any entry wins over Audit on others (Kyverno's precedence).
        let actions: Vec<bool> = list
            .iter()
            .filter_map(|e| e.get("failureAction").and_then(Value::as_str))
            .map(|a| a.eq_ignore_ascii_case("enforce"))
            .collect();
        if !actions.is_empty() {
            enforce = Some(actions.iter().any(|e| *e));
        }
        RuleBody::VerifyImages(super::images::lower(rule)?)
    } else {
        RuleBody::Unsupported("rule without validate, mutate, generate or verifyImages")
    };
    let cel_preconditions = super::cel::lower_preconditions(rule.get("celPreconditions"))?;
    Ok(RuleIr { name, matcher, exclude, preconditions, context, body, enforce, cel_preconditions })
}

fn lower_mutate(m: &Value) -> Mutate {
    let list = |field: &str| m.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
    Mutate {
        patch_strategic_merge: m.get("patchStrategicMerge").filter(|p| !p.is_null()).cloned(),
        patches_json6902: m.get("patchesJson6902").and_then(Value::as_str).map(str::to_owned),
        foreach: list("foreach"),
        targets: list("targets"),
    }
}

fn lower_validate(v: &Value) -> Result<Validate, LowerError> {
    let message = v.get("message").and_then(Value::as_str).map(str::to_owned);
    Ok(Validate { message, check: lower_check(v)? })
}

/// The check of a `validate` block or of a `foreach` entry. Kyverno looks at `deny` first, then
/// `pattern`/`anyPattern`, then a nested `foreach`; the checker rejects blocks with several.
fn lower_check(v: &Value) -> Result<Check, LowerError> {
    let check = if let Some(d) = v.get("deny") {
        Check::Deny(d.get("conditions").cloned().unwrap_or(Value::Null))
    } else if let Some(p) = v.get("pattern") {
        if has_variables(p) {
            Check::DynamicPattern(p.clone())
        } else {
            Check::Pattern(Pattern::lower(p)?)
        }
    } else if let Some(Value::Array(items)) = v.get("anyPattern") {
        let item = |p: &Value| match Pattern::lower(p) {
            Ok(lowered) if !has_variables(p) => PatternItem::Static(lowered),
            _ => PatternItem::Dynamic(p.clone()),
        };
        Check::AnyPattern(items.iter().map(item).collect())
    } else if let Some(items) = v.get("foreach") {
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        Check::Foreach(items.iter().map(lower_foreach).collect::<Result<_, _>>()?)
    } else if let Some(p) = v.get("podSecurity") {
        Check::PodSecurity(Box::new(super::podsecurity::lower(p)?))
    } else if let Some(c) = v.get("cel") {
        Check::Cel(Box::new(super::cel::lower_rules(c, "validate.cel", "expressions")?))
    } else if v.get("manifests").is_some() {
        Check::Unsupported("validate.manifests")
    } else {
        Check::Unsupported("validate without a check")
    };
    Ok(check)
}

fn lower_foreach(f: &Value) -> Result<Foreach, LowerError> {
    Ok(Foreach {
        list: f.get("list").and_then(Value::as_str).unwrap_or_default().to_owned(),
        element_scope: f.get("elementScope").and_then(Value::as_bool),
        context: f.get("context").and_then(Value::as_array).cloned().unwrap_or_default(),
        preconditions: f.get("preconditions").filter(|p| !p.is_null()).cloned(),
        check: lower_check(f)?,
    })
}

/// Whether any string in the value holds a `{{ }}` variable or a `$()` reference.
pub fn has_variables(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("$("),
        Value::Array(items) => items.iter().any(has_variables),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains("{{") || has_variables(v)),
        _ => false,
    }
}

fn lower_match(m: &Value) -> Match {
    let mut out = Match::default();
    let group = |name: &str| -> Vec<Filter> {
        m.get(name).and_then(Value::as_array).map(|items| items.iter().map(lower_filter).collect()).unwrap_or_default()
    };
    out.any = group("any");
    out.all = group("all");
    // The legacy form puts one filter directly under `match`.
    if out.any.is_empty() && out.all.is_empty() && (m.get("resources").is_some() || m.get("subjects").is_some()) {
        out.all.push(lower_filter(m));
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

fn lower_filter(f: &Value) -> Filter {
    let r = f.get("resources").cloned().unwrap_or(Value::Null);
    let mut names: Vec<Wildcard> = strings(r.get("names")).iter().map(|s| Wildcard::new(s)).collect();
    if let Some(n) = r.get("name").and_then(Value::as_str) {
        names.push(Wildcard::new(n));
    }
    Filter {
        kinds: strings(r.get("kinds")).iter().map(|k| KindSelector::parse(k)).collect(),
        names,
        namespaces: strings(r.get("namespaces")).iter().map(|s| Wildcard::new(s)).collect(),
        operations: strings(r.get("operations")),
        annotations: r
            .get("annotations")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (Wildcard::new(k), Wildcard::new(v.as_str().unwrap_or_default()))).collect())
            .unwrap_or_default(),
        selector: r.get("selector").map(lower_selector),
        namespace_selector: r.get("namespaceSelector").map(lower_selector),
        subjects: f
            .get("subjects")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .map(|s| Subject {
                        kind: s.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        name: Wildcard::new(s.get("name").and_then(Value::as_str).unwrap_or_default()),
                        namespace: s.get("namespace").and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        roles: strings(f.get("roles")),
        cluster_roles: strings(f.get("clusterRoles")),
    }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`).
pub fn lower_label_selector(s: &Value) -> LabelSelector {
    lower_selector(s)
}

fn lower_selector(s: &Value) -> LabelSelector {
    LabelSelector {
        match_labels: s
            .get("matchLabels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (Wildcard::new(k), Wildcard::new(v.as_str().unwrap_or_default()))).collect())
            .unwrap_or_default(),
        match_expressions: s
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .map(|e| LabelExpr {
                        key: e.get("key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        operator: e.get("operator").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        values: strings(e.get("values")),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
