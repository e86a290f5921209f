//! Strategic merge patch on JSON values, as Kyverno applies it (kustomize's merge, lists of new
//! elements prepended).
//!
//! - Maps merge key by key; a `null` in the patch deletes the key.
//! - Lists of built-in types merge by the key the Kubernetes OpenAPI data gives (`containers` by
//!   `name`, `volumeMounts` by `mountPath`, ...; see [`super::keys`]). Lists the table does not
//!   know merge by the first of `mountPath`, `devicePath`, `ip`, `type`, `topologyKey`, `name`,
//!   `containerPort` that their first element has, as kustomize infers; other lists are replaced.
//! - In a merged list, the patch's elements come first, in patch order, then the resource's other
//!   elements in their order; a matched element is merged in place of the patch element.
//! - Directives: `$patch: delete` removes a map or a list element, `$patch: replace` replaces a
//!   map with the patch, `$patch: merge` is the default. `$setElementOrder/...`,
//!   `$retainKeys` and `$deleteFromPrimitiveList/...` are ignored, as in kustomize.

use serde_json::{Map, Value};

use super::keys::{ListStrategy, table};

/// The keys kustomize looks for to merge a list it has no schema for, in its order.
const ASSOCIATIVE_KEYS: [&str; 7] = ["mountPath", "devicePath", "ip", "type", "topologyKey", "name", "containerPort"];

/// Applies `patch` to `resource`.
pub fn merge(resource: &Value, patch: &Value) -> Result<Value, String> {
    let api = resource.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    let root = table().root(api, kind);
    match merge_value(Some(resource), patch, root, "")? {
        Some(v) => Ok(v),
        None => Ok(Value::Object(Map::new())),
    }
}

fn merge_value(dest: Option<&Value>, patch: &Value, ty: Option<&str>, path: &str) -> Result<Option<Value>, String> {
    match patch {
        Value::Null => Ok(None),
        Value::Object(p) => merge_map(dest.and_then(Value::as_object), p, ty, path),
        Value::Array(p) => merge_list(dest.and_then(Value::as_array), p, None, path).map(Some),
        scalar => Ok(Some(scalar.clone())),
    }
}

fn is_directive(key: &str) -> bool {
    key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") || key.starts_with("$deleteFromPrimitiveList/")
}

fn merge_map(dest: Option<&Map<String, Value>>, patch: &Map<String, Value>, ty: Option<&str>, path: &str) -> Result<Option<Value>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(clean(&Value::Object(patch.clone())))),
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch directive `$patch: {other}` at {}", display(path))),
    }
    let mut out = dest.cloned().unwrap_or_default();
    for (key, pv) in patch {
        if is_directive(key) {
            continue;
        }
        let field = ty.and_then(|t| table().field(t, key));
        let child_path = format!("{path}/{key}");
        let merged = match pv {
            Value::Array(items) => {
                let strategy = field.map(|f| &f.strategy);
                let elem_ty = field.map(|f| f.ty.as_str()).filter(|t| *t != "-");
                Some(merge_list_typed(out.get(key).and_then(Value::as_array), items, strategy, elem_ty, &child_path)?)
            }
            _ => merge_value(out.get(key), pv, field.map(|f| f.ty.as_str()), &child_path)?,
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
    Ok(Some(Value::Object(out)))
}

/// A patch value without nulls and directives, for where there is nothing to merge into.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, v)| !is_directive(k) && !v.is_null()).map(|(k, v)| (k.clone(), clean(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

fn merge_list(dest: Option<&Vec<Value>>, patch: &[Value], strategy: Option<&ListStrategy>, path: &str) -> Result<Value, String> {
    merge_list_typed(dest, patch, strategy, None, path)
}

/// The key kustomize infers for a list without a schema: the first associative key its first
/// element has.
fn inferred_key(items: &[Value]) -> Option<&'static str> {
    let first = items.first()?.as_object()?;
    ASSOCIATIVE_KEYS.iter().copied().find(|k| first.contains_key(*k))
}

fn merge_list_typed(
    dest: Option<&Vec<Value>>,
    patch: &[Value],
    strategy: Option<&ListStrategy>,
    elem_ty: Option<&str>,
    path: &str,
) -> Result<Value, String> {
    let key = match strategy {
        Some(ListStrategy::Key(k)) => Some(k.clone()),
        Some(ListStrategy::Set) => return Ok(merge_set(dest, patch)),
        Some(ListStrategy::Object) | None => {
            let from_patch = inferred_key(patch);
            let from_dest = dest.and_then(|d| inferred_key(d));
            match (from_patch, from_dest) {
                (Some(a), Some(b)) if a != b => {
                    return Err(format!("conflicting merge keys [{b},{a}] for field {}", display(path)));
                }
                (Some(a), _) | (None, Some(a)) => Some(a.to_owned()),
                (None, None) => None,
            }
        }
    };
    let Some(key) = key else {
        return Ok(clean(&Value::Array(patch.to_vec())));
    };
    let key_of = |v: &Value| v.get(&key).filter(|k| !k.is_null()).cloned();
    // Patch keys first, in patch order, then the resource's other keys.
    let mut order: Vec<Value> = Vec::new();
    for v in patch.iter().chain(dest.map(|d| d.as_slice()).unwrap_or_default()) {
        if let Some(k) = key_of(v)
            && !order.contains(&k)
        {
            order.push(k);
        }
    }
    let mut out = Vec::new();
    for k in &order {
        let d = dest.and_then(|d| d.iter().find(|e| key_of(e).as_ref() == Some(k)));
        let p = patch.iter().find(|e| key_of(e).as_ref() == Some(k));
        let merged = match (d, p) {
            (d, Some(Value::Object(pm))) => merge_map(d.and_then(Value::as_object), pm, elem_ty, &format!("{path}/{k}"))?,
            (d, Some(other)) => merge_value(d, other, elem_ty, path)?,
            (Some(d), None) => Some(d.clone()),
            (None, None) => None,
        };
        let Some(mut merged) = merged else { continue };
        if merged.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        if let Value::Object(m) = &mut merged {
            m.entry(key.clone()).or_insert_with(|| k.clone());
        }
        out.push(merged);
    }
    // Resource elements without the key cannot be matched; kustomize keeps them at the end.
    if let Some(d) = dest {
        out.extend(d.iter().filter(|e| key_of(e).is_none()).cloned());
    }
    Ok(Value::Array(out))
}

fn merge_set(dest: Option<&Vec<Value>>, patch: &[Value]) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for v in patch.iter().chain(dest.map(|d| d.as_slice()).unwrap_or_default()) {
        if !v.is_null() && !out.contains(v) {
            out.push(v.clone());
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
    fn containers_merge_by_name_and_new_ones_come_first() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "imagePullPolicy": "Always"}, {"name": "c", "image": "z"}]}});
        let out = merge(&pod, &patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([
            {"name": "b", "image": "y", "imagePullPolicy": "Always"}, {"name": "c", "image": "z"}, {"name": "a", "image": "x"}]));
    }

    #[test]
    fn directives_and_nulls() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"volumes": [{"name": "v", "hostPath": {"path": "/"}}, {"name": "w", "emptyDir": {}}]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"volumes": [{"name": "v", "$patch": "delete"}]}});
        let out = merge(&pod, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["volumes"], json!([{"name": "w", "emptyDir": {}}]));
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}});
        assert_eq!(merge(&pod, &patch).unwrap()["metadata"]["labels"], json!({"c": "3"}));
    }

    #[test]
    fn unknown_lists_of_scalars_are_replaced() {
        let obj = json!({"apiVersion": "x/v1", "kind": "Thing", "spec": {"args": ["a", "b"]}});
        let out = merge(&obj, &json!({"spec": {"args": ["c"]}})).unwrap();
        assert_eq!(out["spec"]["args"], json!(["c"]));
    }

    #[test]
    fn tolerations_are_replaced_as_the_schema_says() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}});
        let out = merge(&pod, &json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}})).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    }
}
