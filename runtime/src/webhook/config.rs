//! The webhook configurations for a bundle: one `ValidatingWebhookConfiguration` and one
//! `MutatingWebhookConfiguration`, with a webhook per failure policy, as Kyverno builds them.
//!
//! Kyverno resolves kinds to resources through API discovery; Palisade has no cluster at hand,
//! so it maps the kinds policies name to resources with a table of the built-in kinds and, for
//! any other kind, the lowercase plural Kubernetes would use. A wildcard kind becomes `*/*`.
//!
//! The CEL kinds (ValidatingPolicy, ImageValidatingPolicy, MutatingPolicy and their namespaced
//! forms) get webhooks of their own, grouped as Kyverno's webhook controller groups them: per
//! kind, one webhook per failure policy for the plain policies, whose rules are the
//! `matchConstraints.resourceRules` of each (autogen variants included), and one webhook per
//! policy ("fine-grained") for a policy that needs settings of its own: match conditions, a
//! timeout, or namespace and object selectors. The path names the policies a webhook serves
//! (`/vpol/fail/a/b`), and `palisade serve` runs only those on it. Kubernetes cannot express
//! everything a policy matches on (excluded resources, resource names, match conditions that
//! read `variables` or Kyverno's CEL libraries): those parts are left out of the webhook, which
//! then sends a few more requests than needed, and the server applies them.
//!
//! ValidatingAdmissionPolicy and MutatingAdmissionPolicy get no webhook: the API server runs
//! them itself, and a webhook would apply them twice. GeneratingPolicy gets none either, since
//! Palisade does not generate at admission; nor does ImageValidatingPolicy on the mutating side,
//! since Palisade does not rewrite image references for it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use palisade_compiler::bundle::{Bundle, BundledCelPolicy, CelIr, FailurePolicy};
use palisade_compiler::ir::cel::{MatchConstraints, NamedExpr, ResourceRule};
use palisade_compiler::ir::policy::LabelSelector;

/// Where the API server reaches the webhook.
pub struct Target {
    pub service: String,
    pub namespace: String,
    pub port: u16,
    /// PEM of the CA that signed the serving certificate (base64-encoded into `caBundle`).
    pub ca_pem: Option<String>,
}

const BUILTIN: [(&str, &str, &str, &str); 22] = [
    ("Pod", "", "v1", "pods"),
    ("Service", "", "v1", "services"),
    ("Namespace", "", "v1", "namespaces"),
    ("ConfigMap", "", "v1", "configmaps"),
    ("Secret", "", "v1", "secrets"),
    ("ServiceAccount", "", "v1", "serviceaccounts"),
    ("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
    ("PersistentVolume", "", "v1", "persistentvolumes"),
    ("ReplicationController", "", "v1", "replicationcontrollers"),
    ("Node", "", "v1", "nodes"),
    ("Deployment", "apps", "v1", "deployments"),
    ("DaemonSet", "apps", "v1", "daemonsets"),
    ("StatefulSet", "apps", "v1", "statefulsets"),
    ("ReplicaSet", "apps", "v1", "replicasets"),
    ("Job", "batch", "v1", "jobs"),
    ("CronJob", "batch", "v1", "cronjobs"),
    ("Ingress", "networking.k8s.io", "v1", "ingresses"),
    ("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
    ("Role", "rbac.authorization.k8s.io", "v1", "roles"),
    ("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
];

/// `(group, version, resource)` for a kind as policies write it (`Pod`, `apps/v1/Deployment`,
/// `Pod/exec`, `*`).
fn resource_of(kind: &str) -> (String, String, String) {
    let parts: Vec<&str> = kind.split('/').collect();
    let (group, version, name, sub) = match parts.as_slice() {
        [k] => (None, None, *k, None),
        [k, s] if s.chars().all(|c| c.is_ascii_lowercase()) => (None, None, *k, Some(*s)),
        [v, k] => (None, Some(*v), *k, None),
        [g, v, k] => (Some(*g), Some(*v), *k, None),
        [g, v, k, s, ..] => (Some(*g), Some(*v), *k, Some(*s)),
        [] => (None, None, "*", None),
    };
    if name.contains('*') {
        return ("*".into(), "*".into(), "*/*".into());
    }
    let known = BUILTIN.iter().find(|(k, ..)| *k == name);
    let group = group.map(str::to_owned).or_else(|| known.map(|k| k.1.to_owned())).unwrap_or_else(|| "*".into());
    let version = version.map(str::to_owned).or_else(|| known.map(|k| k.2.to_owned())).unwrap_or_else(|| "*".into());
    let mut resource = known.map(|k| k.3.to_owned()).unwrap_or_else(|| plural(name));
    if let Some(s) = sub {
        resource = format!("{resource}/{s}");
    }
    (group, version, resource)
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with('x') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Both configurations as a Kubernetes `List`.
pub fn configurations(bundle: &Bundle, target: &Target) -> Value {
    let mut validating = Vec::new();
    let mut mutating = Vec::new();
    for fp in [FailurePolicy::Fail, FailurePolicy::Ignore] {
        let suffix = if fp == FailurePolicy::Fail { "fail" } else { "ignore" };
        let group: Vec<_> = bundle.policies.iter().filter(|p| p.meta.admission && p.meta.failure_policy == fp).collect();
        // verifyImages rules run in both webhooks, as in Kyverno: verification and digest
        // patches on the mutating one, `verifyDigest` and `required` on the validating one.
        let images = |p: &&&palisade_compiler::bundle::BundledPolicy| crate::images::has_image_rules(&p.ir);
        let validate: Vec<_> = group.iter().filter(|p| p.meta.has_validate || images(p)).collect();
        let mutate: Vec<_> = group.iter().filter(|p| p.meta.has_mutate || images(p)).collect();
        if !validate.is_empty() {
            validating.push(webhook(&format!("validate.palisade.svc-{suffix}"), &format!("/validate/{suffix}"), fp, &validate, target, false));
        }
        if !mutate.is_empty() {
            mutating.push(webhook(&format!("mutate.palisade.svc-{suffix}"), &format!("/mutate/{suffix}"), fp, &mutate, target, true));
        }
    }
    let (cel_validating, cel_mutating) = cel_webhooks(bundle, target);
    validating.extend(cel_validating);
    mutating.extend(cel_mutating);
    let config = |kind: &str, name: &str, hooks: Vec<Value>| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "webhooks": hooks})
    };
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            config("ValidatingWebhookConfiguration", "palisade-resource-validating-webhook-cfg", validating),
            config("MutatingWebhookConfiguration", "palisade-resource-mutating-webhook-cfg", mutating),
        ]
    })
}

fn webhook(
    name: &str,
    path: &str,
    fp: FailurePolicy,
    policies: &[&&palisade_compiler::bundle::BundledPolicy],
    target: &Target,
    mutating: bool,
) -> Value {
    // Rules grouped by (group, version) with their resources and operations.
    let mut rules: BTreeMap<(String, String), (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let default_ops: &[&str] = if mutating { &["CREATE", "UPDATE"] } else { &["CREATE", "UPDATE", "DELETE", "CONNECT"] };
    for p in policies {
        let ops: Vec<String> =
            if p.meta.operations.is_empty() { default_ops.iter().map(|s| (*s).to_owned()).collect() } else { p.meta.operations.clone() };
        for kind in &p.meta.kinds {
            let (g, v, r) = resource_of(kind);
            let entry = rules.entry((g, v)).or_default();
            entry.0.insert(r);
            entry.1.extend(ops.iter().cloned());
        }
    }
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|((g, v), (resources, ops))| {
            json!({"apiGroups": [g], "apiVersions": [v], "resources": resources, "operations": ops, "scope": "*"})
        })
        .collect();
    // Kyverno: the largest timeout of the group, 10 s by default, at most 30 s.
    let timeout = policies.iter().filter_map(|p| p.meta.timeout_seconds).max().unwrap_or(10).clamp(1, 30);
    let mut hook = json!({
        "name": name,
        "clientConfig": client_config(target, path),
        "rules": rules,
        "failurePolicy": fp.as_str(),
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout,
        "namespaceSelector": {"matchExpressions": [system_namespaces(target)]},
    });
    if mutating && let Some(hook) = hook.as_object_mut() {
        hook.insert("reinvocationPolicy".into(), json!("IfNeeded"));
    }
    hook
}

fn client_config(target: &Target, path: &str) -> Value {
    let mut client = json!({"service": {"name": target.service, "namespace": target.namespace, "path": path, "port": target.port}});
    if let Some(ca) = &target.ca_pem {
        use base64::Engine as _;
        if let Some(client) = client.as_object_mut() {
            client.insert("caBundle".into(), json!(base64::engine::general_purpose::STANDARD.encode(ca)));
        }
    }
    client
}

/// Requests from `kube-system` and from Palisade's own namespace never reach the webhook, so
/// a broken policy cannot lock the cluster's control plane or Palisade itself out.
fn system_namespaces(target: &Target) -> Value {
    json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", target.namespace]})
}

/// The CEL kinds' webhooks, per kind: `(kinds, webhook name, path, mutating)`. The paths are
/// those [`super::Endpoint::from_path`] serves.
const CEL_FAMILIES: [(&str, &str, &str, bool); 6] = [
    ("ValidatingPolicy", "vpol.validate.palisade.svc", "/vpol", false),
    ("NamespacedValidatingPolicy", "nvpol.validate.palisade.svc", "/nvpol", false),
    ("ImageValidatingPolicy", "ivpol.validate.palisade.svc", "/ivpol/validate", false),
    ("NamespacedImageValidatingPolicy", "nivpol.validate.palisade.svc", "/nivpol/validate", false),
    ("MutatingPolicy", "mpol.mutate.palisade.svc", "/mpol", true),
    ("NamespacedMutatingPolicy", "nmpol.mutate.palisade.svc", "/nmpol", true),
];

/// Kubernetes' limit on match conditions per webhook.
const MAX_MATCH_CONDITIONS: usize = 64;

/// What one CEL policy asks of its webhook.
struct CelHook<'a> {
    policy: &'a BundledCelPolicy,
    rules: Vec<Value>,
    conditions: Vec<Value>,
    namespace_selector: Option<&'a LabelSelector>,
    object_selector: Option<&'a LabelSelector>,
    /// `matchPolicy: Exact`: only the resources and versions the rules name, not their
    /// equivalents under other groups or versions.
    exact: bool,
}

impl CelHook<'_> {
    /// Whether the policy needs a webhook of its own, as Kyverno decides it (match conditions,
    /// `matchPolicy: Exact` or a timeout), and also for selectors, which only a webhook of its
    /// own can carry.
    fn fine_grained(&self) -> bool {
        !self.conditions.is_empty()
            || self.exact
            || self.policy.meta.timeout_seconds.is_some()
            || self.namespace_selector.is_some()
            || self.object_selector.is_some()
    }
}

/// The validating and the mutating webhooks of the bundle's CEL policies.
fn cel_webhooks(bundle: &Bundle, target: &Target) -> (Vec<Value>, Vec<Value>) {
    let mut validating = Vec::new();
    let mut mutating = Vec::new();
    for (kind, name, path, is_mutating) in CEL_FAMILIES {
        let mut policies: Vec<&BundledCelPolicy> = bundle.cel.iter().filter(|p| p.meta.admission && p.meta.kind == kind).collect();
        policies.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        let hooks: Vec<CelHook> = policies.into_iter().filter_map(cel_hook).collect();
        let out = if is_mutating { &mut mutating } else { &mut validating };
        // Fine-grained webhooks first, Fail before Ignore; then the shared ones.
        for fp in [FailurePolicy::Fail, FailurePolicy::Ignore] {
            for h in hooks.iter().filter(|h| h.fine_grained() && h.policy.meta.failure_policy == fp) {
                // A namespaced policy's name is unique only in its namespace, so the webhook's
                // name carries both; the path names the policy, which is all the server needs.
                let id = match &h.policy.meta.namespace {
                    Some(ns) if kind.starts_with("Namespaced") => format!("{ns}.{}", h.policy.meta.name),
                    _ => h.policy.meta.name.clone(),
                };
                let suffix = format!("{}-finegrained-{id}", fp_suffix(fp));
                let hook_path = format!("{path}/{}/{}", fp_suffix(fp), h.policy.meta.name);
                out.push(cel_webhook(&format!("{name}-{suffix}"), &hook_path, fp, &[h], target, is_mutating));
            }
        }
        for fp in [FailurePolicy::Fail, FailurePolicy::Ignore] {
            let group: Vec<&CelHook> = hooks.iter().filter(|h| !h.fine_grained() && h.policy.meta.failure_policy == fp).collect();
            if group.is_empty() {
                continue;
            }
            let mut names: Vec<&str> = group.iter().map(|h| h.policy.meta.name.as_str()).collect();
            names.dedup();
            let hook_path = format!("{path}/{}/{}", fp_suffix(fp), names.join("/"));
            out.push(cel_webhook(&format!("{name}-{}", fp_suffix(fp)), &hook_path, fp, &group, target, is_mutating));
        }
    }
    (validating, mutating)
}

fn fp_suffix(fp: FailurePolicy) -> &'static str {
    if fp == FailurePolicy::Fail { "fail" } else { "ignore" }
}

/// The rules, conditions and selectors of one policy; `None` for kinds without a webhook.
fn cel_hook(policy: &BundledCelPolicy) -> Option<CelHook<'_>> {
    // `(variant name, constraints, conditions)` for each variant the policy matches with.
    let variants: Vec<(&str, &MatchConstraints, &[NamedExpr])> = match &policy.ir {
        CelIr::Validating(p) => p.variants.iter().map(|v| (v.rule.as_str(), &v.constraints, v.match_conditions.as_slice())).collect(),
        CelIr::ImageValidating(p) => vec![("", &p.constraints, p.match_conditions.as_slice())],
        CelIr::Mutating(p) => vec![("", &p.constraints, p.match_conditions.as_slice())],
        _ => return None,
    };
    let (_, first, _) = variants.first()?;
    let default_scope = if policy.meta.kind.starts_with("Namespaced") { "Namespaced" } else { "*" };
    let mut rules: Vec<Value> = Vec::new();
    for (_, constraints, _) in &variants {
        for r in &constraints.resource_rules {
            let rule = webhook_rule(r, default_scope);
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    let guarded = variants.len() > 1;
    let mut conditions = Vec::new();
    let mut names = BTreeSet::new();
    for (variant, constraints, exprs) in &variants {
        for c in exprs.iter().filter(|c| kubernetes_condition(c.program.source())) {
            let expression = if guarded {
                format!("!({}) || ({})", target_guard(&constraints.resource_rules), c.program.source())
            } else {
                c.program.source().to_owned()
            };
            let mut name = condition_name(variant, &c.name);
            let mut n = 1;
            while names.contains(&name) {
                n += 1;
                name = condition_name(variant, &format!("{}-{n}", c.name));
            }
            names.insert(name.clone());
            conditions.push(json!({"name": name, "expression": expression}));
        }
    }
    // Leaving conditions out only widens what the webhook receives; the server applies them all.
    if conditions.len() > MAX_MATCH_CONDITIONS {
        conditions.clear();
    }
    Some(CelHook {
        policy,
        rules,
        conditions,
        namespace_selector: first.namespace_selector.as_ref(),
        object_selector: first.object_selector.as_ref(),
        exact: first.match_policy.as_deref() == Some("Exact"),
    })
}

/// A `resourceRules` entry as a webhook rule. Kubernetes requires every list to be non-empty;
/// a list the policy leaves empty matches everything. `resourceNames` has no place in a
/// webhook rule and is checked by the server.
fn webhook_rule(r: &ResourceRule, default_scope: &str) -> Value {
    let or_all = |v: &[String]| if v.is_empty() { vec!["*".to_owned()] } else { v.to_vec() };
    json!({
        "apiGroups": or_all(&r.api_groups),
        "apiVersions": or_all(&r.api_versions),
        "resources": or_all(&r.resources),
        "operations": or_all(&r.operations),
        "scope": r.scope.as_deref().unwrap_or(default_scope),
    })
}

/// A CEL test that the request is for one of the resources of `rules`, so that an autogen
/// variant's conditions (written for its resources) apply to its requests only.
fn target_guard(rules: &[ResourceRule]) -> String {
    let quoted = |v: &[String]| v.iter().map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))).collect::<Vec<_>>().join(", ");
    let mut alternatives = Vec::new();
    for r in rules {
        let mut parts = Vec::new();
        if !r.api_groups.is_empty() && !r.api_groups.iter().any(|g| g == "*") {
            parts.push(format!("request.resource.group in [{}]", quoted(&r.api_groups)));
        }
        if !r.resources.is_empty() && !r.resources.iter().any(|x| x == "*" || x.contains('/')) {
            parts.push(format!("request.resource.resource in [{}]", quoted(&r.resources)));
        }
        if parts.is_empty() {
            return "true".into();
        }
        alternatives.push(parts.join(" && "));
    }
    if alternatives.is_empty() { "true".into() } else { alternatives.join(" || ") }
}

/// A match condition's name as Kubernetes requires it: a qualified name (at most 63 letters,
/// digits, `-`, `_` and `.`, alphanumeric at both ends). Kyverno's policies allow any text, so
/// other characters become `-`; an autogen variant's conditions get its prefix.
fn condition_name(variant: &str, name: &str) -> String {
    let prefix = match variant {
        "" => String::new(),
        "autogen-defaults" => "autogen-".to_owned(),
        other => format!("{other}-"),
    };
    let cleaned: String = format!("{prefix}{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    let mut out: String = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).chars().take(63).collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    if out.is_empty() { "condition".to_owned() } else { out }
}

/// Whether the API server can evaluate a match condition: it binds only `object`,
/// `oldObject`, `request` and `authorizer`, and knows Kubernetes' CEL libraries, not Kyverno's.
/// The check is lexical and errs on the side of leaving a condition out: an identifier not
/// behind a `.` that names a policy-only variable or a Kyverno function, unless a macro binds it
/// as its loop variable (`.all(image, ...)`).
fn kubernetes_condition(source: &str) -> bool {
    let kyverno: BTreeSet<&str> = palisade_stdlib::cel::library::FUNCTIONS
        .iter()
        .filter(|f| f.receiver.is_none() && f.library.starts_with("kyverno."))
        .filter_map(|f| f.name.split('.').next())
        .chain(["variables", "namespaceObject", "params", "images", "attestors", "attestations", "exceptions"])
        .collect();
    let tokens = cel_tokens(source);
    let mut bound = BTreeSet::new();
    for w in tokens.windows(4) {
        if let [(macro_name, true), (open, false), (var, false), (comma, false)] = w
            && ["all", "exists", "exists_one", "map", "filter"].contains(&macro_name.as_str())
            && open == "("
            && comma == ","
        {
            bound.insert(var.clone());
        }
    }
    !tokens.iter().any(|(t, after_dot)| !after_dot && kyverno.contains(t.as_str()) && !bound.contains(t))
}

/// The identifiers and punctuation of a CEL expression, string literals left out, each with
/// whether it follows a `.`.
fn cel_tokens(source: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_dot = false;
    while let Some(&c) = chars.get(i) {
        if c == '\'' || c == '"' {
            let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
            i += if triple { 3 } else { 1 };
            while let Some(&d) = chars.get(i) {
                if d == '\\' {
                    i += 2;
                    continue;
                }
                if d == c && (!triple || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c))) {
                    i += if triple { 3 } else { 1 };
                    break;
                }
                i += 1;
            }
            after_dot = false;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars.get(i).is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_') {
                i += 1;
            }
            out.push((chars.get(start..i).unwrap_or_default().iter().collect(), after_dot));
            after_dot = false;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            after_dot = c == '.';
            if c != '.' {
                out.push((c.to_string(), false));
            }
            i += 1;
        }
    }
    out
}

/// A label selector as Kubernetes writes it.
fn selector_json(s: &LabelSelector) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if !s.match_labels.is_empty() {
        let labels: serde_json::Map<String, Value> =
            s.match_labels.iter().map(|(k, v)| (k.pattern().to_owned(), Value::String(v.pattern().to_owned()))).collect();
        out.insert("matchLabels".into(), Value::Object(labels));
    }
    if !s.match_expressions.is_empty() {
        let exprs: Vec<Value> = s
            .match_expressions
            .iter()
            .map(|e| {
                let mut x = serde_json::Map::new();
                x.insert("key".into(), json!(e.key));
                x.insert("operator".into(), json!(e.operator));
                if !e.values.is_empty() {
                    x.insert("values".into(), json!(e.values));
                }
                Value::Object(x)
            })
            .collect();
        out.insert("matchExpressions".into(), Value::Array(exprs));
    }
    out
}

fn cel_webhook(name: &str, path: &str, fp: FailurePolicy, hooks: &[&CelHook], target: &Target, mutating: bool) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    for r in hooks.iter().flat_map(|h| &h.rules) {
        if !rules.contains(r) {
            rules.push(r.clone());
        }
    }
    // One policy's webhook carries its selectors (all of a label selector's terms must hold,
    // so the system namespaces stay excluded) and its conditions.
    let single = match hooks {
        [h] if h.fine_grained() => Some(*h),
        _ => None,
    };
    let mut namespace_selector = single.and_then(|h| h.namespace_selector).map(selector_json).unwrap_or_default();
    let mut expressions = vec![system_namespaces(target)];
    if let Some(Value::Array(own)) = namespace_selector.remove("matchExpressions") {
        expressions.extend(own);
    }
    namespace_selector.insert("matchExpressions".into(), Value::Array(expressions));
    // Kyverno: the policy's `webhookConfiguration.timeoutSeconds`, else 10 s; at most 30 s.
    let timeout = single.and_then(|h| h.policy.meta.timeout_seconds).unwrap_or(10).clamp(1, 30);
    let mut hook = json!({
        "name": name,
        "clientConfig": client_config(target, path),
        "rules": rules,
        "failurePolicy": fp.as_str(),
        "matchPolicy": if single.is_some_and(|h| h.exact) { "Exact" } else { "Equivalent" },
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout,
        "namespaceSelector": namespace_selector,
    });
    if let (Some(h), Some(fields)) = (single, hook.as_object_mut()) {
        if let Some(s) = h.object_selector {
            fields.insert("objectSelector".into(), Value::Object(selector_json(s)));
        }
        if !h.conditions.is_empty() {
            fields.insert("matchConditions".into(), Value::Array(h.conditions.clone()));
        }
    }
    if let (true, Some(fields)) = (mutating, hook.as_object_mut()) {
        fields.insert("reinvocationPolicy".into(), json!("IfNeeded"));
    }
    hook
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_resources() {
        assert_eq!(resource_of("Pod"), ("".into(), "v1".into(), "pods".into()));
        assert_eq!(resource_of("apps/v1/Deployment"), ("apps".into(), "v1".into(), "deployments".into()));
        assert_eq!(resource_of("Pod/exec"), ("".into(), "v1".into(), "pods/exec".into()));
        assert_eq!(resource_of("*"), ("*".into(), "*".into(), "*/*".into()));
        assert_eq!(resource_of("NetworkPolicy"), ("networking.k8s.io".into(), "v1".into(), "networkpolicies".into()));
        assert_eq!(resource_of("Gateway"), ("*".into(), "*".into(), "gateways".into()));
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("Policy"), "policies");
    }

    #[test]
    fn conditions_kubernetes_can_evaluate() {
        for (source, ok) in [
            ("!has(object.metadata.ownerReferences) || object.metadata.ownerReferences[0].kind != 'CronJob'", true),
            ("request.userInfo.username != 'system:serviceaccount:kube-system:x'", true),
            ("object.spec.containers.all(image, image.image.startsWith('ghcr.io/'))", true),
            ("object.metadata.?labels.image.orValue('') == 'x'", true),
            ("'variables' in object.metadata.labels", true),
            ("variables.isPod", false),
            ("namespaceObject.metadata.labels.env == 'prod'", false),
            ("image(object.spec.containers[0].image).registry() == 'docker.io'", false),
            ("resource.Get('v1', 'configmaps', 'default', 'x').data.a == 'b'", false),
            ("object.spec.containers.all(c, c.image.startsWith(\"time\")) && time.now() > timestamp('2020-01-01T00:00:00Z')", false),
        ] {
            assert_eq!(kubernetes_condition(source), ok, "{source}");
        }
    }

    #[test]
    fn autogen_guards_and_names() {
        let rule = |groups: &[&str], resources: &[&str]| ResourceRule {
            api_groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            resources: resources.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        assert_eq!(target_guard(&[rule(&[""], &["pods"])]), "request.resource.group in [''] && request.resource.resource in ['pods']");
        assert_eq!(
            target_guard(&[rule(&["apps", "batch"], &["deployments", "jobs"])]),
            "request.resource.group in ['apps', 'batch'] && request.resource.resource in ['deployments', 'jobs']"
        );
        assert_eq!(target_guard(&[rule(&["*"], &["*"])]), "true");
        assert_eq!(condition_name("", "a"), "a");
        assert_eq!(condition_name("autogen-defaults", "not-cronjob"), "autogen-not-cronjob");
        assert_eq!(condition_name("autogen-cronjobs", &"x".repeat(70)).len(), 63);
        assert_eq!(condition_name("", "Check if ttl is missing?"), "Check-if-ttl-is-missing");
        assert_eq!(condition_name("", "--"), "condition");
    }
}
