//! What `palisade apply` writes about a scan: policy reports (`wgpolicyk8s.io` and
//! `openreports.io`), SARIF for code-scanning UIs, JUnit XML for CI test tabs, and a plain
//! JSON/YAML listing. Every writer is a pure function of the resources, the findings and the
//! policy metadata, returning data (a JSON value or a string); printing is the CLI's job.

pub mod junit;
pub mod policy_report;
pub mod sarif;

use serde_json::{Map, Value, json};

use crate::cli::runner::PolicySet;
use crate::cli::scan::{Counts, Finding, ResourceRef};

/// A point in time as Kubernetes' `metav1.Timestamp` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0) }
    }
}

/// The severities the report CRDs accept; anything else in the annotation is left out.
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Kinds that live outside namespaces. A namespaced kind written without a namespace lands in
/// `default`, as `kubectl apply` would put it.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterCleanupPolicy",
    "ClusterPolicy",
    "ClusterPolicyReport",
    "ClusterReport",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeletingPolicy",
    "FlowSchema",
    "GeneratingPolicy",
    "ImageValidatingPolicy",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingPolicy",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingPolicy",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// The namespace a resource belongs to, or `None` for a cluster-scoped one.
pub fn report_namespace(resource: &ResourceRef) -> Option<String> {
    match &resource.namespace {
        Some(ns) => Some(ns.clone()),
        None if CLUSTER_SCOPED.contains(&resource.kind.as_str()) => None,
        None => Some("default".to_owned()),
    }
}

/// An `ObjectReference` to the resource, as report results and scopes carry it.
pub fn object_reference(resource: &ResourceRef) -> Value {
    let mut r = Map::new();
    r.insert("apiVersion".into(), json!(resource.api_version));
    r.insert("kind".into(), json!(resource.kind));
    r.insert("name".into(), json!(resource.name));
    if let Some(ns) = report_namespace(resource) {
        r.insert("namespace".into(), json!(ns));
    }
    if let Some(uid) = &resource.uid {
        r.insert("uid".into(), json!(uid));
    }
    Value::Object(r)
}

/// `--output-format json|yaml`: the summary and every result, with the manifest location of
/// each resource, in one document that scripts can query.
/// `counts` covers every result, including the passes a scan may not have kept.
pub fn results_document(resources: &[ResourceRef], findings: &[Finding], counts: &Counts, set: &PolicySet, detailed: bool) -> Value {
    let results: Vec<Value> = findings
        .iter()
        .filter(|f| detailed || !matches!(f.status, crate::engine::Status::Pass | crate::engine::Status::Skip))
        .filter_map(|f| {
            let res = resources.get(f.resource)?;
            let meta = set.meta.get(&*f.policy);
            let mut o = Map::new();
            o.insert("policy".into(), json!(&*f.policy));
            o.insert("rule".into(), json!(f.rule));
            o.insert("result".into(), json!(f.status.as_str()));
            o.insert("message".into(), json!(f.message));
            o.insert("resource".into(), object_reference(res));
            o.insert("file".into(), json!(&*res.file));
            o.insert("line".into(), json!(res.line));
            o.insert("enforce".into(), json!(f.enforce));
            o.insert("scored".into(), json!(f.scored));
            if let Some(sev) = meta.and_then(|m| m.severity.as_deref()) {
                o.insert("severity".into(), json!(sev));
            }
            if let Some(cat) = meta.and_then(|m| m.category.as_deref()) {
                o.insert("category".into(), json!(cat));
            }
            Some(Value::Object(o))
        })
        .collect();
    json!({ "summary": counts_json(counts), "results": results })
}

pub fn counts_json(c: &Counts) -> Value {
    json!({ "pass": c.pass, "fail": c.fail, "warn": c.warn, "error": c.error, "skip": c.skip })
}
