//! RFC 6902 JSON Patch: applying `patchesJson6902` the way Kyverno does, and computing the
//! patch from an original object to a mutated one for the webhook's response.
//!
//! Kyverno applies patches with three tolerances, kept here: negative array indices count from
//! the end (`-1` is the last element; for `add`, `-1` appends), `remove` of a missing path is a
//! no-op, and `add` creates missing parent maps (or a list when the next token is an index).

use serde_json::{Map, Value, json};

/// One operation, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub op: String,
    pub path: String,
    pub from: Option<String>,
    pub value: Option<Value>,
}

/// Decodes a `patchesJson6902` text (YAML or JSON) into operations.
pub fn decode(text: &str) -> Result<Vec<Operation>, String> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("invalid patchesJson6902: {e}"))?;
    decode_value(&value)
}

pub fn decode_value(value: &Value) -> Result<Vec<Operation>, String> {
    let Value::Array(items) = value else {
        return Err("invalid patchesJson6902: expected a list of operations".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
            let op = field("op").ok_or_else(|| format!("invalid patchesJson6902: operation {i} has no `op`"))?;
            let path = field("path").ok_or_else(|| format!("invalid patchesJson6902: operation {i} has no `path`"))?;
            Ok(Operation { op, path, from: field("from"), value: item.get("value").cloned() })
        })
        .collect()
}

/// Splits a JSON pointer into unescaped tokens.
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer `{path}`: it must start with `/`"));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Applies operations in order. On an error the document is left as it was.
pub fn apply(doc: &Value, ops: &[Operation]) -> Result<Value, String> {
    let mut out = doc.clone();
    for op in ops {
        apply_one(&mut out, op)?;
    }
    Ok(out)
}

fn missing(what: &str, path: &str) -> String {
    format!("{what}: path `{path}` does not exist in the resource")
}

fn apply_one(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let value = || op.value.clone().ok_or_else(|| format!("{} at `{}` has no value", op.op, op.path));
    match op.op.as_str() {
        "add" => add(doc, &op.path, value()?),
        "remove" => {
            remove(doc, &op.path, true)?;
            Ok(())
        }
        "replace" => {
            let v = value()?;
            let slot = get_mut(doc, &op.path)?.ok_or_else(|| missing("replace", &op.path))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let from = op.from.clone().ok_or_else(|| format!("move to `{}` has no `from`", op.path))?;
            if op.path.starts_with(&format!("{from}/")) {
                return Err(format!("move from `{from}` into its own child `{}`", op.path));
            }
            let v = remove(doc, &from, false)?.ok_or_else(|| missing("move", &from))?;
            add(doc, &op.path, v)
        }
        "copy" => {
            let from = op.from.clone().ok_or_else(|| format!("copy to `{}` has no `from`", op.path))?;
            let v = get_mut(doc, &from)?.map(|v| v.clone()).ok_or_else(|| missing("copy", &from))?;
            add(doc, &op.path, v)
        }
        "test" => {
            let want = value()?;
            match get_mut(doc, &op.path)? {
                Some(have) if *have == want => Ok(()),
                Some(have) => Err(format!("test failed at `{}`: expected {want}, found {have}", op.path)),
                None => Err(missing("test", &op.path)),
            }
        }
        other => Err(format!("unknown JSON patch operation `{other}`")),
    }
}

/// An index into an array of `len` elements; negative counts from the end. `extra` is 1 for
/// `add`, where the end itself is a valid position.
fn index(token: &str, len: usize, extra: usize, path: &str) -> Result<usize, String> {
    let size = len + extra;
    if token == "-" && extra == 1 {
        return Ok(len);
    }
    let i: i64 = token.parse().map_err(|_| format!("invalid array index `{token}` in `{path}`"))?;
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let resolved = if i < 0 { i + size_i } else { i };
    if resolved < 0 || resolved >= size_i {
        return Err(format!("array index {i} out of bounds in `{path}` (length {len})"));
    }
    usize::try_from(resolved).map_err(|_| format!("array index {i} out of bounds in `{path}`"))
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Result<Option<&'a mut Value>, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => match m.get_mut(&t) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(a) => {
                let len = a.len();
                let Ok(i) = index(&t, len, 0, path) else { return Ok(None) };
                match a.get_mut(i) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
    }
    Ok(Some(cur))
}

/// The parent of `path` and its last token; missing parents are created when `create` is set.
fn parent<'a>(doc: &'a mut Value, path: &str, create: bool) -> Result<Option<(&'a mut Value, String)>, String> {
    let mut toks = tokens(path)?;
    let Some(last) = toks.pop() else { return Ok(None) };
    let mut cur = doc;
    for (n, t) in toks.iter().enumerate() {
        let next_is_index = toks.get(n + 1).unwrap_or(&last).parse::<i64>().is_ok() || toks.get(n + 1).unwrap_or(&last) == "-";
        cur = match cur {
            Value::Object(m) => {
                if !m.contains_key(t) {
                    if !create {
                        return Ok(None);
                    }
                    m.insert(t.clone(), if next_is_index { json!([]) } else { Value::Object(Map::new()) });
                }
                match m.get_mut(t) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            Value::Array(a) => {
                let len = a.len();
                let i = match index(t, len, 0, path) {
                    Ok(i) => i,
                    // Creating a path: an index past the end (`-1` of an empty list, `-`)
                    // appends the missing container, as Kyverno's patcher does.
                    Err(_) if create && (t == "-" || t.parse::<i64>().is_ok_and(|i| i == -1 || i == i64::try_from(len).unwrap_or(-2))) => {
                        a.push(if next_is_index { json!([]) } else { Value::Object(Map::new()) });
                        len
                    }
                    Err(e) if create => return Err(e),
                    Err(_) => return Ok(None),
                };
                match a.get_mut(i) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            Value::Null if create => {
                *cur = Value::Object(Map::new());
                let Value::Object(m) = cur else { return Ok(None) };
                m.insert(t.clone(), if next_is_index { json!([]) } else { Value::Object(Map::new()) });
                match m.get_mut(t) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            _ => return Err(format!("cannot walk into a scalar at `{path}`")),
        };
    }
    Ok(Some((cur, last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (p, last) = parent(doc, path, true)?.ok_or_else(|| missing("add", path))?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(&last, a.len(), 1, path)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("add: the parent of `{path}` is not a map or a list")),
    }
}

/// Removes the value at `path`. With `tolerate_missing`, a missing path is not an error.
fn remove(doc: &mut Value, path: &str, tolerate_missing: bool) -> Result<Option<Value>, String> {
    let found = parent(doc, path, false)?;
    let removed = match found {
        Some((Value::Object(m), last)) => m.shift_remove(&last),
        Some((Value::Array(a), last)) => match index(&last, a.len(), 0, path) {
            Ok(i) => Some(a.remove(i)),
            Err(_) => None,
        },
        _ => None,
    };
    if removed.is_none() && !tolerate_missing {
        return Err(missing("remove", path));
    }
    Ok(removed)
}

/// The JSON Patch that turns `from` into `to`: maps key by key, lists element by element with
/// removals from the end, whole values where the types differ.
pub fn diff(from: &Value, to: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    diff_at(from, to, &mut String::new(), &mut ops);
    ops
}

fn diff_at(from: &Value, to: &Value, path: &mut String, ops: &mut Vec<Value>) {
    if from == to {
        return;
    }
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(k));
                match b.get(k) {
                    Some(vb) => diff_at(va, vb, path, ops),
                    None => ops.push(json!({"op": "remove", "path": path.as_str()})),
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    ops.push(json!({"op": "add", "path": format!("{path}/{}", escape(k)), "value": vb}));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => diff_list(a, b, path, ops),
        _ => ops.push(json!({"op": "replace", "path": path.as_str(), "value": to})),
    }
}

/// Lists: elements equal on both sides are kept (longest common subsequence), elements between
/// them are diffed pairwise, then the surplus is removed or added. Indices in the operations
/// refer to the list as the operations before them left it.
fn diff_list(a: &[Value], b: &[Value], path: &mut String, ops: &mut Vec<Value>) {
    let matches = common_elements(a, b);
    let (mut i, mut j, mut cur) = (0usize, 0usize, 0usize);
    for (mi, mj) in matches.into_iter().chain(std::iter::once((a.len(), b.len()))) {
        let (gap_a, gap_b) = (a.get(i..mi).unwrap_or_default(), b.get(j..mj).unwrap_or_default());
        for (x, y) in gap_a.iter().zip(gap_b) {
            let len = path.len();
            path.push_str(&format!("/{cur}"));
            diff_at(x, y, path, ops);
            path.truncate(len);
            cur += 1;
        }
        for _ in gap_b.len()..gap_a.len() {
            ops.push(json!({"op": "remove", "path": format!("{path}/{cur}")}));
        }
        for y in gap_b.iter().skip(gap_a.len()) {
            ops.push(json!({"op": "add", "path": format!("{path}/{cur}"), "value": y}));
            cur += 1;
        }
        // The matched element itself, unchanged (absent for the final sentinel).
        cur += 1;
        i = mi + 1;
        j = mj + 1;
    }
}

/// Index pairs of equal elements in order (a longest common subsequence). Long lists fall back
/// to no pairs, which diffs them position by position, so the cost stays bounded.
fn common_elements(a: &[Value], b: &[Value]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n.saturating_mul(m) > 1_000_000 {
        return Vec::new();
    }
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |lcs: &[u32], i: usize, j: usize| lcs.get(i * (m + 1) + j).copied().unwrap_or(0);
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let v = if a.get(i) == b.get(j) { at(&lcs, i + 1, j + 1) + 1 } else { at(&lcs, i + 1, j).max(at(&lcs, i, j + 1)) };
            if let Some(cell) = lcs.get_mut(i * (m + 1) + j) {
                *cell = v;
            }
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a.get(i) == b.get(j) {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if at(&lcs, i + 1, j) >= at(&lcs, i, j + 1) {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn kyverno_tolerances() {
        let doc = json!({"a": [1, 2, 3]});
        let ops = decode("- op: add\n  path: /a/-1\n  value: 4\n- op: remove\n  path: /missing/x\n- op: add\n  path: /b/c\n  value: 1\n- op: replace\n  path: /a/-1\n  value: 5").unwrap();
        assert_eq!(apply(&doc, &ops).unwrap(), json!({"a": [1, 2, 3, 5], "b": {"c": 1}}));
    }

    #[test]
    fn add_creates_missing_lists_and_maps() {
        let doc = json!({"spec": {}});
        let ops = decode(r#"[{"op": "add", "path": "/spec/affinity/terms/-1/exprs/-1", "value": {"key": "k"}}]"#).unwrap();
        assert_eq!(apply(&doc, &ops).unwrap(), json!({"spec": {"affinity": {"terms": [{"exprs": [{"key": "k"}]}]}}}));
    }

    #[test]
    fn diff_of_a_prepended_container_is_one_add() {
        let from = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let to = json!({"spec": {"containers": [{"name": "new"}, {"name": "a"}, {"name": "b", "image": "x"}]}});
        let ops = diff(&from, &to);
        assert_eq!(ops, vec![
            json!({"op": "add", "path": "/spec/containers/0", "value": {"name": "new"}}),
            json!({"op": "add", "path": "/spec/containers/2/image", "value": "x"}),
        ]);
        assert_eq!(apply(&from, &decode_value(&Value::Array(ops)).unwrap()).unwrap(), to);
    }

    #[test]
    fn errors_name_the_path() {
        let doc = json!({"a": 1});
        let ops = decode(r#"[{"op": "replace", "path": "/b", "value": 1}]"#).unwrap();
        assert_eq!(apply(&doc, &ops).unwrap_err(), "replace: path `/b` does not exist in the resource");
        let ops = decode(r#"[{"op": "test", "path": "/a", "value": 2}]"#).unwrap();
        assert!(apply(&doc, &ops).unwrap_err().contains("test failed"));
    }
}
