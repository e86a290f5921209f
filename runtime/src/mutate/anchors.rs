//! Kyverno's preprocessing of a strategic-merge patch against the resource, before the merge.
//!
//! A patch may hold anchors: `+(k)` adds `k` only when the resource lacks it, `(k)` makes the
//! enclosing map (or list element) conditional on the resource's value of `k`, and `<(k)` makes
//! the whole rule conditional. A conditional list element is applied to every resource element
//! it matches, by copying that element's `name` into a new patch element (the merge then finds
//! it by name). The anchors are removed afterwards, so the merge sees a plain patch.
//!
//! The walk follows Kyverno's order of steps closely, including its quirks, because the result
//! decides which fields a policy adds: the copy of a conditional list element is shared by all
//! resource elements, so an add-if-not-present key settled by the first element stays settled.

use serde_json::{Map, Value};

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::pattern::{AnchorKind, parse_key};

use crate::interp::pattern::match_pattern;

/// Why preprocessing stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreError {
    /// A conditional anchor did not hold: the map (or list element) is not patched.
    Condition(String),
    /// A global anchor did not hold: the rule applies no patch.
    Global(String),
    /// The patch cannot be applied to this resource at all.
    Other(String),
}

/// Preprocesses `patch` in place against `resource`. On a failed condition the caller applies
/// an empty patch (Kyverno's `no patches applied`).
pub fn preprocess(patch: &mut Value, resource: &Value) -> Result<(), PreError> {
    recurse(patch, Some(resource))?;
    if !patch.is_object() {
        return Err(PreError::Other("a strategic merge patch must be a map".into()));
    }
    delete_condition_elements(patch);
    Ok(())
}

fn anchor(key: &str) -> Option<AnchorKind> {
    parse_key(key).anchor
}

fn anchor_name(key: &str) -> String {
    parse_key(key).name
}

/// Kyverno's "contains condition": a conditional or a global anchor.
fn is_condition(a: Option<AnchorKind>) -> bool {
    matches!(a, Some(AnchorKind::Condition | AnchorKind::Global))
}

fn has_anchor(a: Option<AnchorKind>) -> bool {
    is_condition(a) || a == Some(AnchorKind::AddIfNotPresent)
}

fn recurse(pattern: &mut Value, resource: Option<&Value>) -> Result<(), PreError> {
    match pattern {
        Value::Object(_) => walk_map(pattern, resource),
        Value::Array(items) if items.first().is_some_and(Value::is_object) => list_of_maps(pattern, resource),
        _ => Ok(()),
    }
}

fn walk_map(pattern: &mut Value, resource: Option<&Value>) -> Result<(), PreError> {
    add_if_not_present(pattern, resource);
    validate_conditions(pattern, resource)?;
    let Value::Object(map) = pattern else { return Ok(()) };
    let keys: Vec<String> = map.keys().filter(|k| !has_anchor(anchor(k))).cloned().collect();
    for key in keys {
        let child_resource = resource.and_then(|r| r.get(&key));
        if let Some(child) = map.get_mut(&key) {
            recurse(child, child_resource)?;
        }
    }
    Ok(())
}

fn list_of_maps(pattern: &mut Value, resource: Option<&Value>) -> Result<(), PreError> {
    let resource_elements: &[Value] = match resource {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(PreError::Other(format!("the patch has a list where the resource has {}", type_name(other))));
        }
    };
    let originals = pattern.as_array().cloned().unwrap_or_default();
    for element in &originals {
        if !has_anchors(element, &has_anchor) {
            continue;
        }
        let has_global = has_anchors(element, &|a| a == Some(AnchorKind::Global));
        let mut any_global_passed = false;
        let mut last_global = None;
        let mut copy = element.clone();
        for resource_element in resource_elements {
            match recurse(&mut copy, Some(resource_element)) {
                Err(PreError::Condition(_)) => continue,
                Err(e @ PreError::Global(_)) => {
                    last_global = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            if has_global {
                any_global_passed = true;
            } else {
                add_named_copy(pattern, &copy, resource_element);
            }
        }
        if resource.is_none() {
            match recurse(&mut copy, None) {
                Err(PreError::Condition(_)) => continue,
                Err(e) => return Err(e),
                Ok(()) if has_global => any_global_passed = true,
                Ok(()) => {}
            }
        }
        if !any_global_passed && let Some(e) = last_global {
            return Err(e);
        }
    }
    Ok(())
}

/// Appends a copy of a matched conditional element, without its anchors, carrying the name of
/// the resource element it matched. Elements without a name cannot be merged and are skipped.
fn add_named_copy(pattern: &mut Value, element: &Value, resource_element: &Value) {
    let Some(name) = resource_element.get("name").filter(|n| !is_nil_or_empty(n)) else { return };
    let mut copy = element.clone();
    if delete_anchors(&mut copy, true, false) {
        return;
    }
    if let Value::Object(map) = &mut copy {
        map.insert("name".into(), name.clone());
    }
    if let Value::Array(items) = pattern {
        items.push(copy);
    }
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Global anchors first (their failure skips the rule), then conditional anchors.
fn validate_conditions(pattern: &mut Value, resource: Option<&Value>) -> Result<(), PreError> {
    check_anchors(pattern, resource, AnchorKind::Global).map_err(PreError::Global)?;
    check_anchors(pattern, resource, AnchorKind::Condition).map_err(PreError::Condition)
}

fn check_anchors(pattern: &mut Value, resource: Option<&Value>, kind: AnchorKind) -> Result<(), String> {
    let Value::Object(map) = pattern else { return Ok(()) };
    let keys: Vec<String> = map.keys().filter(|k| anchor(k) == Some(kind)).cloned().collect();
    for key in keys {
        let name = anchor_name(&key);
        let Some(resource_value) = resource.and_then(|r| r.get(&name)) else {
            return Err(format!("could not found \"{name}\" key in the resource"));
        };
        let Some(pattern_value) = map.get_mut(&key) else { continue };
        if add_if_not_present(pattern_value, Some(resource_value)) > 0 {
            continue;
        }
        let lowered = Pattern::lower(pattern_value).map_err(|e| e.0)?;
        if let Err(m) = match_pattern(resource_value, &lowered) {
            return Err(format!("{m:?}"));
        }
    }
    Ok(())
}

/// Settles `+(k)` keys of a map: dropped when the resource has `k`, else renamed to `k`.
/// Returns how many there were.
fn add_if_not_present(pattern: &mut Value, resource: Option<&Value>) -> usize {
    let Value::Object(map) = pattern else { return 0 };
    let anchored: Vec<String> = map.keys().filter(|k| anchor(k) == Some(AnchorKind::AddIfNotPresent)).cloned().collect();
    if anchored.is_empty() {
        return 0;
    }
    for key in &anchored {
        let name = anchor_name(key);
        if resource.and_then(Value::as_object).is_some_and(|r| r.contains_key(&name)) {
            map.remove(key);
        } else {
            rename(map, key, &name);
        }
    }
    anchored.len()
}

/// Renames a key in place, keeping the map's order.
fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    let old = std::mem::take(map);
    for (k, v) in old {
        if k == from {
            map.insert(to.to_owned(), v);
        } else {
            map.insert(k, v);
        }
    }
}

fn has_anchors(v: &Value, pred: &dyn Fn(Option<AnchorKind>) -> bool) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| pred(anchor(k)) || (!is_nil_or_empty(child) && has_anchors(child, pred))),
        Value::String(s) => is_condition(anchor(s)),
        Value::Array(items) => items.iter().any(|e| has_anchors(e, pred)),
        _ => false,
    }
}

fn delete_condition_elements(pattern: &mut Value) {
    let Value::Object(map) = pattern else { return };
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let delete_scalar = is_condition(anchor(&key));
        let remove = map.get_mut(&key).is_some_and(|v| delete_anchors(v, delete_scalar, false));
        if remove {
            map.remove(&key);
        }
    }
}

/// Removes anchors from a node; returns whether the node itself should be removed from the
/// patch (nothing but anchors was left in it).
fn delete_anchors(node: &mut Value, delete_scalar: bool, traverse_maps: bool) -> bool {
    match node {
        Value::Object(_) => delete_anchors_in_map(node, traverse_maps),
        Value::Array(_) => delete_anchors_in_list(node, traverse_maps),
        _ => delete_scalar,
    }
}

fn delete_anchors_in_map(node: &mut Value, traverse_maps: bool) -> bool {
    let Value::Object(map) = node else { return false };
    let anchored: Vec<String> = map.keys().filter(|k| is_condition(anchor(k))).cloned().collect();
    let mut anchors_left = false;
    for key in &anchored {
        let remove = map.get_mut(key).is_some_and(|v| delete_anchors(v, true, traverse_maps));
        if remove {
            map.remove(key);
        } else {
            anchors_left = true;
        }
    }
    if anchors_left {
        let keys: Vec<String> = map.keys().filter(|k| is_condition(anchor(k))).cloned().collect();
        for key in keys {
            rename(map, &key, &anchor_name(&key));
        }
    }
    let mut delete_me = true;
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let remove = map.get_mut(&key).is_some_and(|v| delete_anchors(v, false, traverse_maps));
        if remove {
            map.remove(&key);
        } else {
            delete_me = false;
        }
    }
    delete_me
}

fn delete_anchors_in_list(node: &mut Value, traverse_maps: bool) -> bool {
    let Value::Array(items) = node else { return false };
    let was_empty = items.is_empty();
    let originals = items.clone();
    // Kyverno removes by the index of the original list while it shrinks; keeping that makes
    // the same elements go.
    for (i, element) in originals.iter().enumerate() {
        let remove = if has_anchors(element, &has_anchor) {
            let mut e = element.clone();
            !(traverse_maps && e.is_object()) || delete_anchors(&mut e, true, traverse_maps)
        } else {
            match items.get_mut(i) {
                Some(current) => delete_anchors(current, false, traverse_maps),
                None => false,
            }
        };
        if remove && i < items.len() {
            items.remove(i);
        }
    }
    items.is_empty() && !was_empty
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn add_if_not_present_and_conditions() {
        let resource = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [
            {"name": "x", "image": "nginx:latest"}, {"name": "y", "image": "busybox"}]}});
        let mut patch = json!({"metadata": {"labels": {"+(a)": "2", "+(b)": "3"}}, "spec": {"containers": [
            {"(image)": "*:latest", "imagePullPolicy": "Always"}]}});
        preprocess(&mut patch, &resource).unwrap();
        assert_eq!(patch, json!({"metadata": {"labels": {"b": "3"}}, "spec": {"containers": [
            {"imagePullPolicy": "Always", "name": "x"}]}}));
    }

    #[test]
    fn failed_map_condition_is_reported() {
        let resource = json!({"metadata": {"labels": {"a": "1"}}});
        let mut patch = json!({"metadata": {"labels": {"(a)": "2", "b": "x"}}});
        assert!(matches!(preprocess(&mut patch, &resource), Err(PreError::Condition(_))));
        let mut patch = json!({"metadata": {"labels": {"<(a)": "2"}}, "x": 1});
        assert!(matches!(preprocess(&mut patch, &resource), Err(PreError::Global(_))));
    }
}
