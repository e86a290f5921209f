//! `palisade apply` as CI runs it: inputs from files, folders and stdin, Kyverno's text and
//! exit codes, the machine formats, and bad input that is reported without stopping the scan.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn palisade(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .current_dir(ROOT)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The scan reads standard input while it writes errors, so input is fed from its own thread.
    let feeder = stdin.map(|text| {
        let mut pipe = child.stdin.take().unwrap();
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap().unwrap();
    }
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const AUDIT: &str = "tests/data/apply/audit-policy.yaml";
const MIXED: &str = "tests/data/apply/mixed.yaml";

#[test]
fn the_examples_show_the_team_label_denial_and_the_registry_denial() {
    // The README's first command: the whole examples folder, with no rule that needs a
    // registry (the image example has its own script), so no result is an error.
    let r = palisade(&["apply", "examples/policies", "--resource", "examples/resources"], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("Applying 6 policy rule(s) to 4 resource(s)..."), "{}", r.stdout);
    assert!(r.stdout.contains("policy require-team-label -> resource Deployment/nginx (examples/resources/nginx-deployment.yaml:1) failed:\n1 - autogen-check-team validation error: The label `team` is required."), "{}", r.stdout);
    assert!(r.stdout.contains("policy restrict-image-registries -> resource shop/Pod/checkout"), "{}", r.stdout);
    assert!(r.stdout.ends_with("pass: 5, fail: 3, warn: 0, error: 0, skip: 0\n"), "{}", r.stdout);
}

#[test]
fn stdin_gives_the_same_verdicts_as_files() {
    let text = std::fs::read_to_string(format!("{ROOT}/{MIXED}")).unwrap();
    let from_file = palisade(&["apply", AUDIT, "-r", MIXED, "--output-format", "json", "--detailed-results"], None);
    let from_stdin = palisade(&["apply", AUDIT, "-r", "-", "--output-format", "json", "--detailed-results"], Some(&text));
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        for r in v["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("file");
        }
        v
    };
    assert_eq!(strip(&from_file.stdout), strip(&from_stdin.stdout));
    let v: serde_json::Value = serde_json::from_str(&from_stdin.stdout).unwrap();
    assert_eq!(v["results"][0]["file"], "stdin");
    assert_eq!(v["summary"], serde_json::json!({"pass": 2, "fail": 1, "warn": 0, "error": 0, "skip": 0}));
}

#[test]
fn malformed_documents_and_missing_files_are_reported_and_the_scan_goes_on() {
    let r = palisade(&["apply", AUDIT, "-r", "does-not-exist.yaml", MIXED], None);
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        errors,
        [
            "error: does-not-exist.yaml: no such file or directory",
            "error: tests/data/apply/mixed.yaml:14:25: YAML syntax error: while parsing a flow sequence, expected ',' or ']' (the document is skipped)",
            "error: tests/data/apply/mixed.yaml:22:1: a resource must be a mapping with apiVersion, kind and metadata (the document is skipped)",
        ]
    );
    // The three good ConfigMaps were still scanned; bad input makes the run fail.
    assert!(r.stdout.contains("Applying 1 policy rule(s) to 3 resource(s)..."), "{}", r.stdout);
    assert!(r.stdout.contains("policy require-owner-label -> resource team-b/ConfigMap/without-owner (tests/data/apply/mixed.yaml:16) failed:"), "{}", r.stdout);
    assert!(r.stdout.ends_with("pass: 2, fail: 1, warn: 0, error: 0, skip: 0\n"));
    assert_eq!(r.code, 1);
}

/// A stream of several batches (the scan reads and evaluates it a batch at a time): broken
/// documents in the first, a middle and the last batch are reported at their lines, in input
/// order, and every other document is still scanned.
#[test]
fn malformed_documents_in_a_long_stream_keep_their_lines_across_batches() {
    let (mut text, mut line) = (String::new(), 1usize);
    let (mut expected_errors, mut resources, mut unlabelled) = (Vec::new(), 0, 0);
    for n in 0..1500 {
        let doc = if n == 3 || n == 700 || n == 1499 {
            // The flow sequence is never closed: the error is at its `}`, on the fifth line.
            expected_errors.push(format!("error: stdin:{}:21: YAML syntax error: while parsing a flow sequence, expected ',' or ']' (the document is skipped)", line + 4));
            format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {{owner: [x}}\n  name: broken-{n}\n")
        } else if n == 1000 {
            expected_errors.push(format!("error: stdin:{}:1: a resource must be a mapping with apiVersion, kind and metadata (the document is skipped)", line + 1));
            "---\njust text\n".to_owned()
        } else {
            resources += 1;
            let labels = if n % 3 == 0 { "  labels: {owner: ops}\n" } else { "" };
            unlabelled += usize::from(n % 3 != 0);
            format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\n  namespace: ns-{}\n{labels}", n % 4)
        };
        line += doc.lines().count();
        text.push_str(&doc);
    }
    let r = palisade(&["apply", AUDIT, "-r", "-"], Some(&text));
    assert_eq!(r.stderr.lines().collect::<Vec<_>>(), expected_errors);
    assert!(r.stdout.contains(&format!("Applying 1 policy rule(s) to {resources} resource(s)...")), "{}", r.stdout);
    assert!(r.stdout.contains("policy require-owner-label -> resource ns-2/ConfigMap/cm-1498 (stdin:"), "{}", r.stdout);
    assert!(r.stdout.ends_with(&format!("pass: {}, fail: {unlabelled}, warn: 0, error: 0, skip: 0\n", resources - unlabelled)), "{}", r.stdout);
    assert_eq!(r.code, 1);
}

#[test]
fn a_malformed_values_file_is_named_and_the_scan_goes_on() {
    let r = palisade(&["apply", AUDIT, "-r", MIXED, "-f", "tests/data/apply/values.yaml"], None);
    assert!(r.stderr.lines().any(|l| l.starts_with("error: tests/data/apply/values.yaml:4:1: YAML syntax error")), "{}", r.stderr);
    assert!(r.stdout.contains("pass: 2, fail: 1"), "{}", r.stdout);
    assert_eq!(r.code, 1);
}

#[test]
fn exit_codes_follow_audit_warn_and_warn_exit_code() {
    let plain = palisade(&["apply", AUDIT, "-r", "tests/data/apply/mixed.yaml"], None);
    assert_eq!(plain.code, 1);
    // Only an Audit rule fails: with --audit-warn it is a warning and the run passes...
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n";
    let r = palisade(&["apply", AUDIT, "-r", "-", "--audit-warn"], Some(text));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("policy require-owner-label -> resource a/ConfigMap/x (stdin:1) failed as audit warning:"), "{}", r.stdout);
    assert!(r.stdout.contains("pass: 0, fail: 0, warn: 1, error: 0, skip: 0"));
    // ...unless --warn-exit-code asks for another code.
    let r = palisade(&["apply", AUDIT, "-r", "-", "--audit-warn", "--warn-exit-code", "3"], Some(text));
    assert_eq!(r.code, 3);
    assert!(r.stdout.ends_with("exit as warnExitCode is 3\n"), "{}", r.stdout);
    // --warn-no-pass: nothing passed.
    let r = palisade(&["apply", AUDIT, "-r", "-", "--audit-warn", "--warn-no-pass", "--warn-exit-code", "4"], Some(text));
    assert_eq!(r.code, 4);
    // Values from --set and a values file together are refused, as Kyverno does.
    let r = palisade(&["apply", AUDIT, "-r", MIXED, "--set", "a=b", "-f", "tests/data/apply/values.yaml"], None);
    assert_eq!(r.code, 2);
}

#[test]
fn sarif_points_at_the_offending_manifest_line() {
    let r = palisade(&["apply", AUDIT, "-r", MIXED, "--output-format", "sarif"], None);
    let log: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/runtime/tests/schemas/sarif-2.1.0-subset.json")).unwrap()).unwrap();
    let v = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    assert!(v.is_valid(&log), "{log:#}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let loc = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "tests/data/apply/mixed.yaml");
    assert_eq!(loc["region"]["startLine"], 16);
    assert_eq!(results[0]["level"], "error");
    // The summary goes to stderr so stdout stays one JSON document.
    assert!(r.stderr.ends_with("pass: 2, fail: 1, warn: 0, error: 0, skip: 0\n"), "{}", r.stderr);
}

#[test]
fn policy_reports_and_junit_from_the_command_line() {
    let r = palisade(&["apply", AUDIT, "-r", MIXED, "--policy-report", "--report-format", "openreports", "--output-format", "json"], None);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = list["items"].as_array().unwrap().iter().map(|d| (d["kind"].as_str().unwrap(), d["metadata"]["namespace"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("Report", "team-a"), ("Report", "team-b")]);
    let yaml = palisade(&["apply", AUDIT, "-r", MIXED, "-p"], None);
    assert!(yaml.stdout.starts_with("apiVersion: wgpolicyk8s.io/v1alpha2\nkind: PolicyReport\n"), "{}", yaml.stdout);
    assert_eq!(yaml.stdout.matches("\n---\n").count(), 1);

    let j = palisade(&["apply", AUDIT, "-r", MIXED, "--output-format", "junit"], None);
    assert!(j.stdout.contains("<testsuites name=\"palisade apply\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"0\">"), "{}", j.stdout);
    assert!(j.stdout.contains("<testcase classname=\"require-owner-label\" name=\"check-owner team-b/ConfigMap/without-owner\" file=\"tests/data/apply/mixed.yaml\" line=\"16\">"), "{}", j.stdout);
    assert!(j.stdout.contains("<failure message=\"validation error: The label `owner` is required. rule check-owner failed at path /metadata/labels/\" type=\"fail\">"), "{}", j.stdout);
}

#[test]
fn test_writes_junit() {
    let r = palisade(&["test", "examples", "--output", "junit"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"palisade test\" tests=\"8\" failures=\"0\" errors=\"0\" skipped=\"0\">"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("<testcase ").count(), 8);
}

#[test]
fn validating_policies_are_applied_too() {
    let dir = "../shared/corpus/kyverno-policies/best-practices-vpol/disallow-latest-tag";
    let res = format!("{dir}/.kyverno-test/resource.yaml");
    let r = palisade(&["apply", dir, "-r", &res], None);
    assert!(r.stdout.contains("Applying 1 policy rule(s) to 8 resource(s)..."), "{}", r.stdout);
    assert!(r.stdout.contains("policy disallow-latest-tag -> resource Deployment/baddeployment01"), "{}", r.stdout);
    assert!(r.stdout.ends_with("pass: 2, fail: 6, warn: 0, error: 0, skip: 0\n"), "{}", r.stdout);
    assert_eq!(r.code, 1);
}
