//! Property test of the webhook's patch: for random objects, the JSON Patch computed from the
//! original to the mutated object turns the original into the mutated object.
//!
//! Mutated objects come from two sources: unrelated random documents, and strategic merges of
//! random patches into the original (which keep most of its structure, as real mutations do,
//! so list alignment and nested edits are exercised rather than whole replacements).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use palisade_runtime::mutate::{admission_patch, apply_strategic, jsonpatch, strategic};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-c~/]{0,3}".prop_map(Value::String),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            // Maps with named list elements, so merges by `name` happen.
            prop::collection::btree_map("[a-d~/]{1,2}|name", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn pod_like() -> impl Strategy<Value = Value> {
    (prop::collection::vec(("[a-d]", document()), 0..4), document()).prop_map(|(containers, extra)| {
        let containers: Vec<Value> = containers.into_iter().map(|(name, v)| json!({"name": name, "x": v})).collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers, "extra": extra}})
    })
}

/// Anchored keys as well as plain ones, so the preprocessing meets every anchor kind.
fn patch_document() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("(\\+|<|=|X|\\^)?\\(?[a-c]\\)?|name|\\$patch", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    let path = prop::collection::vec("[a-c]|name|-1|-|0|1|7", 0..4).prop_map(|t| t.iter().map(|t| format!("/{t}")).collect::<String>());
    (prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "bogus"]), path.clone(), path, document())
        .prop_map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}))
}

fn check(from: &Value, to: &Value) -> Result<(), TestCaseError> {
    let patch = admission_patch(from, to);
    let ops = jsonpatch::decode_value(&patch).map_err(TestCaseError::fail)?;
    let applied = jsonpatch::apply(from, &ops).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&applied, to, "patch {}", patch);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patch_between_unrelated_documents(from in document(), to in document()) {
        check(&from, &to)?;
    }

    /// Bad input is an error, never a panic: random resources, anchored patches and RFC 6902
    /// operations (including invalid ones) go through the whole mutation path.
    #[test]
    fn mutation_never_panics(resource in pod_like(), patch in patch_document(), ops in prop::collection::vec(operation(), 0..5)) {
        let merged = apply_strategic(&resource, patch).unwrap_or(resource.clone());
        let out = match jsonpatch::decode_value(&Value::Array(ops)) {
            Ok(ops) => jsonpatch::apply(&merged, &ops).unwrap_or(merged),
            Err(_) => merged,
        };
        check(&resource, &out)?;
    }

    #[test]
    fn patch_after_a_strategic_merge(from in pod_like(), patch in pod_like()) {
        let mut patch = patch;
        patch.as_object_mut().unwrap().remove("metadata");
        let to = strategic::merge(&from, &patch).unwrap();
        check(&from, &to)?;
    }
}
