//! SARIF 2.1.0 output, for code-scanning UIs (GitHub, GitLab): one result per failing, warning
//! or erroring rule, located at the manifest file and the line where the offending resource
//! starts, so the UI annotates that line of the pull request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::cli::resources::STDIN_NAME;
use crate::cli::runner::PolicySet;
use crate::cli::scan::{Finding, ResourceRef};
use crate::engine::Status;

pub const SARIF_VERSION: &str = "2.1.0";
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The SARIF log of a scan. Passing and skipped rules are not findings and are left out.
pub fn sarif(resources: &[ResourceRef], findings: &[Finding], set: &PolicySet, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: HashMap<(String, String), usize> = HashMap::new();
    let mut results = Vec::new();
    for f in findings {
        let level = match f.status {
            Status::Fail => "error",
            Status::Warn => "warning",
            // A rule that could not be evaluated says nothing about the manifest's quality,
            // but the user still has to look at it.
            Status::Error => "note",
            Status::Pass | Status::Skip => continue,
        };
        let Some(res) = resources.get(f.resource) else { continue };
        let key = (f.policy.to_string(), f.rule.clone());
        let index = *rule_index.entry(key).or_insert_with(|| {
            rules.push(rule_descriptor(f, set));
            rules.len() - 1
        });
        let text = match f.status {
            Status::Error => format!("{}: policy error: {}", res.path(), f.message),
            _ => format!("{}: {}", res.path(), f.message),
        };
        let mut r = Map::new();
        r.insert("ruleId".into(), json!(format!("{}/{}", f.policy, f.rule)));
        r.insert("ruleIndex".into(), json!(index));
        r.insert("level".into(), json!(level));
        r.insert("message".into(), json!({ "text": text }));
        let mut location = Map::new();
        if &*res.file != STDIN_NAME {
            location.insert(
                "physicalLocation".into(),
                json!({
                    "artifactLocation": { "uri": file_uri(&res.file) },
                    "region": { "startLine": res.line.max(1) }
                }),
            );
        }
        location.insert(
            "logicalLocations".into(),
            json!([{ "fullyQualifiedName": res.path(), "kind": "resource" }]),
        );
        r.insert("locations".into(), json!([Value::Object(location)]));
        results.push(Value::Object(r));
    }
    json!({
        "version": SARIF_VERSION,
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": { "driver": {
                "name": "palisade",
                "version": tool_version,
                "informationUri": "https://kyverno.io/policies/",
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

fn rule_descriptor(f: &Finding, set: &PolicySet) -> Value {
    let meta = set.meta.get(&*f.policy);
    let short = meta.and_then(|m| m.title.clone()).unwrap_or_else(|| format!("{} / {}", f.policy, f.rule));
    let mut d = Map::new();
    d.insert("id".into(), json!(format!("{}/{}", f.policy, f.rule)));
    d.insert("name".into(), json!(f.rule));
    d.insert("shortDescription".into(), json!({ "text": short }));
    if let Some(desc) = meta.and_then(|m| m.description.as_deref()) {
        d.insert("fullDescription".into(), json!({ "text": desc }));
    }
    let mut props = Map::new();
    if let Some(cat) = meta.and_then(|m| m.category.as_deref()) {
        props.insert("tags".into(), json!(cat.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()));
    }
    // GitHub ranks alerts by this CVSS-like score; the policy's severity annotation sets it.
    if let Some(score) = meta.and_then(|m| m.severity.as_deref()).and_then(severity_score) {
        props.insert("security-severity".into(), json!(score));
    }
    if !props.is_empty() {
        d.insert("properties".into(), Value::Object(props));
    }
    Value::Object(d)
}

fn severity_score(severity: &str) -> Option<&'static str> {
    match severity {
        "critical" => Some("9.5"),
        "high" => Some("8.0"),
        "medium" => Some("5.5"),
        "low" => Some("3.0"),
        "info" => Some("0.0"),
        _ => None,
    }
}

/// A relative reference for a path as the user gave it (forward slashes, no `./`, reserved
/// characters percent-encoded), or a `file://` URI for an absolute path.
pub fn file_uri(path: &str) -> String {
    let unified = path.replace('\\', "/");
    let mut trimmed = unified.as_str();
    while let Some(rest) = trimmed.strip_prefix("./") {
        trimmed = rest;
    }
    let mut out = String::with_capacity(trimmed.len());
    for b in trimmed.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if trimmed.starts_with('/') { format!("file://{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::file_uri;

    #[test]
    fn uris_are_relative_references_or_file_uris() {
        assert_eq!(file_uri("./manifests/app deploy.yaml"), "manifests/app%20deploy.yaml");
        assert_eq!(file_uri("/srv/repo/k8s/a.yaml"), "file:///srv/repo/k8s/a.yaml");
        assert_eq!(file_uri("k8s\\win.yaml"), "k8s/win.yaml");
        assert_eq!(file_uri("naïve.yaml"), "na%C3%AFve.yaml");
    }
}
