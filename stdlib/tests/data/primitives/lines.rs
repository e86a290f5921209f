//! Reads a table of cases: one case per line, each a sequence of JSON values separated by white
//! space; `#` starts a comment line. Shared by the primitive and template tests.

use serde_json::Value;

/// The cases of `tests/data/<name>`, each with its line number.
pub fn cases(name: &str) -> Vec<(usize, Vec<Value>)> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(line)
            .into_iter()
            .collect();
        let values = values.unwrap_or_else(|e| panic!("{path}:{}: {e}", index + 1));
        cases.push((index + 1, values));
    }
    assert!(!cases.is_empty(), "{path}: no cases");
    cases
}

/// A column that must be a string.
#[allow(dead_code)]
pub fn text(values: &[Value], column: usize) -> &str {
    values
        .get(column)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("column {column} of {values:?} is not a string"))
}

/// `{"error": "..."}` in a column: the expected error message.
#[allow(dead_code)]
pub fn error(value: &Value) -> Option<&str> {
    value.get("error").and_then(Value::as_str)
}
