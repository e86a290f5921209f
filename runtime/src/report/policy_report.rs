//! Policy reports: `wgpolicyk8s.io/v1alpha2` `PolicyReport` (one per namespace) and
//! `ClusterPolicyReport` (cluster-scoped resources), or with the openreports format the
//! `openreports.io/v1alpha1` `Report` and `ClusterReport` that Kyverno 1.15+ writes.
//!
//! Like Kyverno's CLI, the scan's results are merged into one report per scope (named
//! `merged`) rather than one per resource; each result names its resource. Results carry the
//! policy's category and severity from its `policies.kyverno.io/*` annotations, and a policy
//! annotated `scored: "false"` reports warnings, not failures.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{SEVERITIES, Timestamp, counts_json, object_reference, report_namespace};
use crate::cli::runner::PolicySet;
use crate::cli::scan::{Counts, Finding, ResourceRef};

/// Which report API to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport / ClusterPolicyReport.
    PolicyReport,
    /// `openreports.io/v1alpha1` Report / ClusterReport.
    OpenReports,
}

impl ReportFormat {
    fn api_version(self) -> &'static str {
        match self {
            ReportFormat::PolicyReport => "wgpolicyk8s.io/v1alpha2",
            ReportFormat::OpenReports => "openreports.io/v1alpha1",
        }
    }

    fn kind(self, cluster: bool) -> &'static str {
        match (self, cluster) {
            (ReportFormat::PolicyReport, true) => "ClusterPolicyReport",
            (ReportFormat::PolicyReport, false) => "PolicyReport",
            (ReportFormat::OpenReports, true) => "ClusterReport",
            (ReportFormat::OpenReports, false) => "Report",
        }
    }
}

/// The source every result names: the policies are Kyverno policies.
pub const SOURCE: &str = "kyverno";
/// The name of each merged report, as Kyverno's CLI names its own.
pub const REPORT_NAME: &str = "merged";

/// The reports for a scan: the cluster report first (if any cluster-scoped resource has a
/// result), then one report per namespace in name order.
pub fn reports(format: ReportFormat, resources: &[ResourceRef], findings: &[Finding], set: &PolicySet, now: Timestamp) -> Vec<Value> {
    let mut cluster: Vec<&Finding> = Vec::new();
    let mut namespaced: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        let Some(res) = resources.get(f.resource) else { continue };
        match report_namespace(res) {
            Some(ns) => namespaced.entry(ns).or_default().push(f),
            None => cluster.push(f),
        }
    }
    let mut out = Vec::new();
    if !cluster.is_empty() {
        out.push(report(format, None, &cluster, resources, set, now));
    }
    for (ns, fs) in &namespaced {
        out.push(report(format, Some(ns), fs, resources, set, now));
    }
    out
}

fn report(format: ReportFormat, namespace: Option<&str>, findings: &[&Finding], resources: &[ResourceRef], set: &PolicySet, now: Timestamp) -> Value {
    let mut counts = Counts::default();
    let results: Vec<Value> = findings
        .iter()
        .filter_map(|f| {
            counts.add(f.status);
            Some(result(f, resources.get(f.resource)?, set, now))
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(REPORT_NAME));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    metadata.insert("labels".into(), json!({ "app.kubernetes.io/managed-by": "palisade" }));
    let mut r = Map::new();
    r.insert("apiVersion".into(), json!(format.api_version()));
    r.insert("kind".into(), json!(format.kind(namespace.is_none())));
    r.insert("metadata".into(), Value::Object(metadata));
    if format == ReportFormat::OpenReports {
        r.insert("source".into(), json!(SOURCE));
    }
    r.insert("summary".into(), counts_json(&counts));
    r.insert("results".into(), Value::Array(results));
    Value::Object(r)
}

fn result(f: &Finding, resource: &ResourceRef, set: &PolicySet, now: Timestamp) -> Value {
    let meta = set.meta.get(&*f.policy);
    let mut r = Map::new();
    r.insert("source".into(), json!(SOURCE));
    r.insert("policy".into(), json!(&*f.policy));
    r.insert("rule".into(), json!(f.rule));
    r.insert("result".into(), json!(f.status.as_str()));
    r.insert("scored".into(), json!(f.scored));
    if let Some(sev) = meta.and_then(|m| m.severity.as_deref()).filter(|s| SEVERITIES.contains(s)) {
        r.insert("severity".into(), json!(sev));
    }
    if let Some(cat) = meta.and_then(|m| m.category.as_deref()) {
        r.insert("category".into(), json!(cat));
    }
    if !f.message.is_empty() {
        r.insert("message".into(), json!(f.message));
    }
    r.insert("resources".into(), json!([object_reference(resource)]));
    r.insert("timestamp".into(), json!({ "seconds": now.seconds, "nanos": now.nanos }));
    // Kyverno records how a result was produced; an offline scan is a background scan.
    r.insert("properties".into(), json!({ "process": "background scan" }));
    Value::Object(r)
}
