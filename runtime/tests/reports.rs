//! Policy reports and SARIF as the CRDs and the SARIF specification define them: every report
//! a scan writes is checked against the JSON schemas kept in `tests/schemas/` (written for
//! Palisade from the CRDs' structure and the SARIF 2.1.0 specification), and one report of each
//! format is kept as a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use palisade_runtime::cli::resources::LoadError;
use palisade_runtime::cli::runner::{self, PolicySet, Values};
use palisade_runtime::cli::scan::{self, Finding, ResourceRef, ScanConfig, ScanEvents};
use palisade_runtime::engine::UserInfo;
use palisade_runtime::report::policy_report::{ReportFormat, reports};
use palisade_runtime::report::{Timestamp, sarif};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reports").join(name)
}

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Load errors are not expected in the test data.
struct NoErrors;

impl ScanEvents for NoErrors {
    fn load_error(&mut self, error: &LoadError) {
        panic!("{error}");
    }
}

/// Scans the test data (streamed, as `palisade apply` reads it) with `--audit-warn` as asked.
fn scan(audit_warn: bool) -> (Vec<ResourceRef>, Vec<Finding>, PolicySet) {
    let mut set = PolicySet::default();
    for doc in runner::load_documents(&data("policies.yaml")).unwrap() {
        set.add_document(&doc).unwrap();
    }
    let values = Values::default();
    let user = UserInfo::default();
    let cfg = ScanConfig { values: &values, user: &user, audit_warn, keep_passing: true, images: None, keep_mutated: false };
    let scan = scan::scan_paths(&set, vec![data("resources.yaml")], Box::new(std::io::empty()), &cfg, &mut NoErrors);
    (scan.resources, scan.findings, set)
}

const NOW: Timestamp = Timestamp { seconds: 1_700_000_000, nanos: 5 };

#[test]
fn policy_reports_follow_the_wgpolicyk8s_schema() {
    let (resources, findings, set) = scan(false);
    let docs = reports(ReportFormat::PolicyReport, &resources, &findings, &set, NOW);
    let v = validator("wgpolicyk8s.io-v1alpha2.json");
    for d in &docs {
        assert_eq!(errors(&v, d), Vec::<String>::new(), "{d:#}");
    }
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), d["metadata"]["namespace"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(kinds, [("ClusterPolicyReport", "-"), ("PolicyReport", "default"), ("PolicyReport", "payments")]);
    // The Pod without a namespace: team label fails (scored, Enforce), the tag rule is a warning
    // because its policy says `scored: "false"`, and the invalid severity `urgent` is left out.
    expect_test::expect![[r#"
        {
          "apiVersion": "wgpolicyk8s.io/v1alpha2",
          "kind": "PolicyReport",
          "metadata": {
            "name": "merged",
            "namespace": "default",
            "labels": {
              "app.kubernetes.io/managed-by": "palisade"
            }
          },
          "summary": {
            "pass": 0,
            "fail": 1,
            "warn": 1,
            "error": 0,
            "skip": 0
          },
          "results": [
            {
              "source": "kyverno",
              "policy": "require-team-label",
              "rule": "check-team",
              "result": "fail",
              "scored": true,
              "severity": "medium",
              "category": "Best Practices",
              "message": "validation error: The label `team` is required. rule check-team failed at path /metadata/labels/",
              "resources": [
                {
                  "apiVersion": "v1",
                  "kind": "Pod",
                  "name": "bad",
                  "namespace": "default"
                }
              ],
              "timestamp": {
                "seconds": 1700000000,
                "nanos": 5
              },
              "properties": {
                "process": "background scan"
              }
            },
            {
              "source": "kyverno",
              "policy": "disallow-latest-tag",
              "rule": "require-image-tag",
              "result": "warn",
              "scored": false,
              "category": "Best Practices",
              "message": "validation error: An image tag is required. rule require-image-tag failed at path /spec/containers/0/image/",
              "resources": [
                {
                  "apiVersion": "v1",
                  "kind": "Pod",
                  "name": "bad",
                  "namespace": "default"
                }
              ],
              "timestamp": {
                "seconds": 1700000000,
                "nanos": 5
              },
              "properties": {
                "process": "background scan"
              }
            }
          ]
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&docs[1]).unwrap());
}

#[test]
fn openreports_follow_their_schema_and_audit_warn_turns_audit_failures_into_warnings() {
    let (resources, findings, set) = scan(true);
    let docs = reports(ReportFormat::OpenReports, &resources, &findings, &set, NOW);
    let v = validator("openreports.io-v1alpha1.json");
    for d in &docs {
        assert_eq!(errors(&v, d), Vec::<String>::new(), "{d:#}");
    }
    let cluster = &docs[0];
    assert_eq!((cluster["kind"].as_str(), cluster["metadata"]["name"].as_str()), (Some("ClusterReport"), Some("merged")));
    // namespace-owner is Audit: with --audit-warn its failure is a warning.
    assert_eq!(cluster["summary"], json!({"pass": 0, "fail": 0, "warn": 1, "error": 0, "skip": 0}));
    assert_eq!(cluster["results"][0]["severity"], "low");
    assert_eq!(cluster["results"][0]["resources"][0]["uid"], "6f1c0f7e-0000-4000-8000-000000000001");
    // The Enforce failure stays a failure.
    assert_eq!(docs[1]["summary"]["fail"], 1);
    assert_eq!(docs[2]["summary"], json!({"pass": 2, "fail": 0, "warn": 0, "error": 0, "skip": 0}));
}

#[test]
fn the_schemas_reject_what_the_crds_reject() {
    let (resources, findings, set) = scan(false);
    let mut doc = reports(ReportFormat::PolicyReport, &resources, &findings, &set, NOW).remove(1);
    doc["results"][0]["result"] = json!("failed");
    doc["results"][0]["severity"] = json!("urgent");
    doc["results"][1]["timestamp"] = json!("2024-01-01T00:00:00Z");
    doc["summary"]["fail"] = json!(-1);
    doc["kind"] = json!("ClusterPolicyReport");
    let found = errors(&validator("wgpolicyk8s.io-v1alpha2.json"), &doc);
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn sarif_points_at_the_manifest_lines_and_follows_the_schema() {
    let (resources, findings, set) = scan(false);
    let log = sarif::sarif(&resources, &findings, &set, "0.1.0");
    let v = validator("sarif-2.1.0-subset.json");
    assert_eq!(errors(&v, &log), Vec::<String>::new(), "{log:#}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    let located: Vec<String> = results
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            format!(
                "{} {} {}:{}",
                r["level"].as_str().unwrap(),
                r["ruleId"].as_str().unwrap(),
                Path::new(loc["artifactLocation"]["uri"].as_str().unwrap()).file_name().unwrap().to_str().unwrap(),
                loc["region"]["startLine"]
            )
        })
        .collect();
    // Line 15 is where the Pod without a namespace starts, line 27 the Namespace inside the List.
    assert_eq!(
        located,
        [
            "error require-team-label/check-team resources.yaml:15",
            "warning disallow-latest-tag/require-image-tag resources.yaml:15",
            "error namespace-owner/owner-annotation resources.yaml:27",
        ]
    );
    let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules[0]["shortDescription"]["text"], "Require Team Label");
    assert_eq!(rules[0]["properties"]["security-severity"], "5.5");
    // A broken log is rejected: no message, a level SARIF does not know, line 0.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = json!("fatal");
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(0);
    broken["runs"][0]["results"][1].as_object_mut().unwrap().remove("message");
    assert_eq!(errors(&v, &broken).len(), 3);
}
