//! Comparing a patched or generated resource with the one a test expects, as `kyverno test`
//! does, and a readable diff when they differ.
//!
//! Kyverno compares after tidying both sides: empty maps, empty lists and nulls are dropped,
//! a missing namespace is `default` (its resource loader sets it), the `generate.kyverno.io/*`
//! labels are ignored and `app.kubernetes.io/managed-by: kyverno` is assumed. Numbers compare
//! by value (`1` equals `1.0`), because Kyverno compares decoded JSON.

use serde_json::{Map, Value};

/// The resource as Kyverno's comparison sees it.
pub fn normalize(resource: &Value) -> Value {
    let mut r = resource.clone();
    if let Value::Object(map) = &mut r {
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            if meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
                meta.insert("namespace".into(), Value::String("default".into()));
            }
            let mut labels: Map<String, Value> = meta
                .get("labels")
                .and_then(Value::as_object)
                .map(|l| l.iter().filter(|(k, _)| !k.starts_with("generate.kyverno.io/")).map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            labels.insert("app.kubernetes.io/managed-by".into(), Value::String("kyverno".into()));
            meta.insert("labels".into(), Value::Object(labels));
        }
    }
    tidy(&r).unwrap_or(Value::Null)
}

fn tidy(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m.iter().filter_map(|(k, v)| tidy(v).map(|v| (k.clone(), v))).collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(tidy).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Value::Number(n) => Some(match n.as_f64() {
            // Integral values compare as integers whatever their spelling.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => v.clone(),
        }),
        other => Some(other.clone()),
    }
}

/// Whether `actual` matches `expected` after both are normalized.
pub fn same_resource(actual: &Value, expected: &Value) -> bool {
    normalize(actual) == normalize(expected)
}

/// The identity Kyverno uses to pick the expected document: apiVersion, kind, namespace, name.
pub fn identity(resource: &Value) -> (String, String, String, String) {
    let s = |p: &str| resource.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let ns = s("/metadata/namespace");
    (s("/apiVersion"), s("/kind"), if ns.is_empty() { "default".into() } else { ns }, s("/metadata/name"))
}

/// A unified line diff of the normalized resources as YAML: `-` lines only in expected, `+`
/// lines only in actual, with two lines of context around each change.
pub fn render(expected: &Value, actual: &Value) -> String {
    let to_yaml = |v: &Value| serde_yaml_ng::to_string(&sorted(&normalize(v))).unwrap_or_else(|_| v.to_string());
    let e = to_yaml(expected);
    let a = to_yaml(actual);
    let el: Vec<&str> = e.lines().collect();
    let al: Vec<&str> = a.lines().collect();
    let edits = line_diff(&el, &al);
    let mut out = String::from("--- expected\n+++ actual\n");
    let changed: Vec<bool> = edits.iter().map(|(tag, _)| *tag != ' ').collect();
    let mut last_printed: Option<usize> = None;
    for (i, (tag, line)) in edits.iter().enumerate() {
        let near = (i.saturating_sub(2)..=(i + 2).min(edits.len().saturating_sub(1))).any(|j| changed.get(j).copied().unwrap_or(false));
        if near {
            if last_printed.is_some_and(|l| l + 1 < i) {
                out.push_str("  ...\n");
            }
            out.push_str(&format!("{tag} {line}\n"));
            last_printed = Some(i);
        }
    }
    out
}

/// The value with map keys in sorted order, so both sides of a diff line up.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().filter_map(|k| m.get(k).map(|x| (k.clone(), sorted(x)))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Longest-common-subsequence line diff; large inputs fall back to whole replacement so the
/// cost stays bounded.
fn line_diff<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(char, &'a str)> {
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        return a.iter().map(|l| ('-', *l)).chain(b.iter().map(|l| ('+', *l))).collect();
    }
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let v = if a.get(i) == b.get(j) {
                lcs.get(i + 1).and_then(|r| r.get(j + 1)).copied().unwrap_or(0) + 1
            } else {
                let down = lcs.get(i + 1).and_then(|r| r.get(j)).copied().unwrap_or(0);
                let right = lcs.get(i).and_then(|r| r.get(j + 1)).copied().unwrap_or(0);
                down.max(right)
            };
            if let Some(cell) = lcs.get_mut(i).and_then(|r| r.get_mut(j)) {
                *cell = v;
            }
        }
    }
    let at = |i: usize, j: usize| lcs.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push((' ', *x));
                i += 1;
                j += 1;
            }
            (Some(x), Some(_)) if at(i + 1, j) >= at(i, j + 1) => {
                out.push(('-', *x));
                i += 1;
            }
            (_, Some(y)) => {
                out.push(('+', *y));
                j += 1;
            }
            (Some(x), None) => {
                out.push(('-', *x));
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn kyverno_equality() {
        let a = json!({"kind": "Pod", "metadata": {"name": "p", "labels": {"generate.kyverno.io/rule-name": "r"}}, "spec": {"x": 1, "y": {}}});
        let e = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"x": 1.0, "z": []}});
        assert!(same_resource(&a, &e));
        assert!(!same_resource(&a, &json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 2}})));
    }

    #[test]
    fn diff_marks_both_sides() {
        let e = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": 1, "b": 2}});
        let a = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": 1, "b": 3}});
        let d = render(&e, &a);
        assert!(d.contains("-   b: 2") && d.contains("+   b: 3"), "{d}");
    }
}
