//! Data-driven tests of the pattern interpreter: `tests/data/pattern_cases.yaml`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use palisade_compiler::ir::pattern::Pattern;
use palisade_runtime::interp::pattern::{Mismatch, match_pattern};
use serde_json::Value;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    pattern: Value,
    resource: Value,
    expect: String,
}

#[test]
fn pattern_cases() {
    let text = include_str!("data/pattern_cases.yaml");
    let cases: Vec<Case> = serde_yaml_ng::from_str(text).unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let pattern = Pattern::lower(&case.pattern).unwrap();
        let got = match match_pattern(&case.resource, &pattern) {
            Ok(()) => "pass".to_string(),
            Err(Mismatch::Skip { .. }) => "skip".to_string(),
            Err(Mismatch::Error { .. }) => "error".to_string(),
            Err(Mismatch::Fail { path, .. }) => path,
        };
        if got != case.expect {
            failures.push(format!("{}: expected {}, got {}", case.name, case.expect, got));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
