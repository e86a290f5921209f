//! The webhook configurations for a bundle: one `ValidatingWebhookConfiguration` and one
//! `MutatingWebhookConfiguration`, with a webhook per failure policy, as Kyverno builds them.
//!
//! Kyverno resolves kinds to resources through API discovery; Palisade has no cluster at hand,
//! so it maps the kinds policies name to resources with a table of the built-in kinds and, for
//! any other kind, the lowercase plural Kubernetes would use. A wildcard kind becomes `*/*`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use palisade_compiler::bundle::{Bundle, FailurePolicy};

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
    let mut client = json!({"service": {"name": target.service, "namespace": target.namespace, "path": path, "port": target.port}});
    if let Some(ca) = &target.ca_pem {
        use base64::Engine as _;
        client["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let mut hook = json!({
        "name": name,
        "clientConfig": client,
        "rules": rules,
        "failurePolicy": fp.as_str(),
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout,
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", target.namespace]}]},
    });
    if mutating {
        hook["reinvocationPolicy"] = json!("IfNeeded");
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
}
