//! Server-side apply of an `ApplyConfiguration` (the `Object{...}` a MutatingPolicy builds)
//! onto a resource, as Kubernetes' structured merge does it: maps merge field by field, lists
//! with a merge key merge element by element (the resource's order kept, new elements
//! appended), sets gain the new values, every other list is replaced whole.
//!
//! The merge keys come from the same Kubernetes OpenAPI table the strategic-merge engine uses.

use serde_json::{Map, Value};

use crate::mutate::keys::{ListStrategy, table};

/// Applies `patch` to `resource`.
pub fn apply(resource: &Value, patch: &Value) -> Result<Value, String> {
    let api = resource.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !patch.is_object() {
        return Err(format!("an apply configuration must be an object, not {patch}"));
    }
    Ok(merge(Some(resource), patch, table().root(api, kind)).unwrap_or(Value::Null))
}

fn merge(dest: Option<&Value>, patch: &Value, ty: Option<&str>) -> Option<Value> {
    match (dest, patch) {
        (_, Value::Null) => None,
        (Some(Value::Object(d)), Value::Object(p)) => Some(Value::Object(merge_map(d, p, ty))),
        (_, Value::Object(p)) => Some(Value::Object(merge_map(&Map::new(), p, ty))),
        (_, other) => Some(other.clone()),
    }
}

fn merge_map(dest: &Map<String, Value>, patch: &Map<String, Value>, ty: Option<&str>) -> Map<String, Value> {
    let mut out = dest.clone();
    for (key, pv) in patch {
        let field = ty.and_then(|t| table().field(t, key));
        let child_ty = field.map(|f| f.ty.as_str()).filter(|t| *t != "-");
        let merged = match (pv, field.map(|f| &f.strategy)) {
            (Value::Array(items), Some(ListStrategy::Key(k))) => {
                Some(merge_keyed(out.get(key).and_then(Value::as_array), items, k, child_ty))
            }
            (Value::Array(items), Some(ListStrategy::Set)) => Some(merge_set(out.get(key).and_then(Value::as_array), items)),
            _ => merge(out.get(key), pv, child_ty),
        };
        match merged {
            Some(v) => {
                out.insert(key.clone(), v);
            }
            None => {
                out.remove(key);
            }
        }
    }
    out
}

fn merge_keyed(dest: Option<&Vec<Value>>, patch: &[Value], key: &str, ty: Option<&str>) -> Value {
    let mut out: Vec<Value> = dest.cloned().unwrap_or_default();
    for item in patch {
        let k = item.get(key);
        match out.iter_mut().find(|d| k.is_some() && d.get(key) == k) {
            Some(existing) => {
                if let Some(m) = merge(Some(existing), item, ty) {
                    *existing = m;
                }
            }
            None => out.push(item.clone()),
        }
    }
    Value::Array(out)
}

fn merge_set(dest: Option<&Vec<Value>>, patch: &[Value]) -> Value {
    let mut out: Vec<Value> = dest.cloned().unwrap_or_default();
    for item in patch {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_new_ones_come_last() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x"}], "tolerations": [{"key": "k"}]}});
        let patch = json!({"metadata": {"labels": {"l": "v"}},
            "spec": {"containers": [{"name": "b", "image": "y"}, {"name": "a", "imagePullPolicy": "Always"}], "tolerations": [{"key": "t"}]}});
        let got = apply(&pod, &patch).unwrap();
        assert_eq!(got["spec"]["containers"], json!([{"name": "a", "image": "x", "imagePullPolicy": "Always"}, {"name": "b", "image": "y"}]));
        assert_eq!(got["metadata"]["labels"], json!({"l": "v"}));
        // Tolerations are an atomic list: replaced whole.
        assert_eq!(got["spec"]["tolerations"], json!([{"key": "t"}]));
    }
}
