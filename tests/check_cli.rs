//! `palisade check` as a user runs it: JSON output, exit codes, directory walking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/compiler/tests/fixtures/check");

fn palisade(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn json_output_points_at_the_error() {
    let file = Path::new(FIXTURES).join("bad-failure-action.yaml");
    let (code, out) = palisade(&["check", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["files"], 1);
    assert_eq!(json["errors"], 1);
    assert_eq!(json["warnings"], 0);
    let d = &json["diagnostics"][0];
    assert_eq!(d["file"], file.to_str().unwrap());
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(14), Some(24))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(14), Some(32))
    );
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "P0104");
    assert!(d["message"].as_str().unwrap().contains("`Enforced`"));
    assert!(d.get("note").is_some());
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["files", "errors", "warnings", "diagnostics"]);
}

#[test]
fn warnings_alone_exit_zero() {
    let file = Path::new(FIXTURES).join("deprecated-operator-in.yaml");
    let (code, out) = palisade(&["check", "--format", "json", file.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, json["errors"].as_u64(), json["warnings"].as_u64()),
        (0, Some(0), Some(1))
    );
}

#[test]
fn text_output_shows_the_source_line() {
    let file = Path::new(FIXTURES).join("unknown-rule-field.yaml");
    let (code, out) = palisade(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("error[P0101]: unknown field `exlude`"),
        "{out}"
    );
    assert!(out.contains("      exlude:"), "{out}");
    assert!(out.contains("did you mean `exclude`?"), "{out}");
    assert!(
        out.ends_with("checked 1 file(s): 1 error(s), 0 warning(s)\n"),
        "{out}"
    );
}

#[test]
fn directories_are_walked_and_non_policies_skipped() {
    let dir = std::env::temp_dir().join(format!("palisade-check-cli-{}", std::process::id()));
    let hidden = dir.join(".kyverno-test");
    std::fs::create_dir_all(&hidden).unwrap();
    let policy =
        std::fs::read_to_string(Path::new(FIXTURES).join("unknown-spec-field.yaml")).unwrap();
    std::fs::write(dir.join("policy.yaml"), &policy).unwrap();
    std::fs::write(hidden.join("policy.yaml"), &policy).unwrap();
    std::fs::write(
        dir.join("kyverno-test.yaml"),
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("resource.yml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
    let (code, out) = palisade(&["check", "--format", "json", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, json["files"].as_u64(), json["errors"].as_u64()),
        (1, Some(1), Some(1))
    );
}

#[test]
fn clean_policies_exit_zero() {
    let dir = std::env::temp_dir().join(format!("palisade-check-clean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: ok\nspec:\n  rules:\n    - name: r\n      match:\n        any:\n          - resources:\n              kinds: [Pod]\n      validate:\n        failureAction: Enforce\n        pattern:\n          metadata:\n            name: \"?*\"\n";
    std::fs::write(dir.join("ok.yaml"), text).unwrap();
    let (code, out) = palisade(&["check", "--format", "json", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        r#"{"files":1,"errors":0,"warnings":0,"diagnostics":[]}"#
    );
}
