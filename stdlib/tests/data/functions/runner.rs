//! Runs a function test file. A file is a list of cases separated by blank lines:
//!
//! ```text
//! # A comment.
//! expr: to_upper(name)
//! input: {"name": "abc"}
//! result: "ABC"
//!
//! expr: to_boolean('maybe')
//! error: JMESPath function 'to_boolean': lowercase argument must be 'true' or 'false' (provided: 'maybe')
//! ```
//!
//! `input` defaults to `null`; `dialect: standard` switches from Kyverno's dialect. `result` is
//! JSON compared numerically (`1` equals `1.0`); `error` is the exact message.

use palisade_stdlib::jmespath::{Dialect, EvalConfig, equal, eval, parse};
use serde_json::Value;

pub fn run(name: &str) -> usize {
    let path = format!(
        "{}/tests/data/functions/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut failures = Vec::new();
    let mut count = 0;
    for block in text.split("\n\n") {
        let mut expr = None;
        let mut input = Value::Null;
        let mut expected = None;
        let mut dialect = Dialect::Kyverno;
        for line in block
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{path}: bad line {line:?}"));
            match key {
                "expr" => expr = Some(value.to_string()),
                "input" => {
                    input = serde_json::from_str(value)
                        .unwrap_or_else(|e| panic!("{path}: {line}: {e}"))
                }
                "result" => {
                    let value = serde_json::from_str(value)
                        .unwrap_or_else(|e| panic!("{path}: {line}: {e}"));
                    expected = Some(Ok(value));
                }
                "error" => expected = Some(Err(value.to_string())),
                "dialect" => {
                    dialect = if value == "standard" {
                        Dialect::Standard
                    } else {
                        Dialect::Kyverno
                    }
                }
                other => panic!("{path}: unknown key {other:?}"),
            }
        }
        let Some(expr) = expr else { continue };
        let expected = expected.unwrap_or_else(|| panic!("{path}: {expr}: no result or error"));
        count += 1;
        let cfg = EvalConfig {
            dialect,
            ..EvalConfig::default()
        };
        let actual = parse(&expr)
            .map_err(|e| e.to_string())
            .and_then(|e| eval(&e, &input, &cfg).map_err(|e| e.to_string()));
        let ok = match (&expected, &actual) {
            (Ok(want), Ok(got)) => equal(want, got),
            (Err(want), Err(got)) => want == got,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{expr}\n    expected {expected:?}\n    got      {actual:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}
