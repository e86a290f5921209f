//! Kyverno's functions over objects and arrays: lookup, items, object_from_lists, label_match.

use serde_json::{Map, Value};

use super::strings::kyverno;
use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, EvalError, equal, number};

const STRING: &[Type] = &[Type::String];
const OBJECT: &[Type] = &[Type::Object];
const ARRAY: &[Type] = &[Type::Array];
const OBJECT_OR_ARRAY: &[Type] = &[Type::Object, Type::Array];

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!("lookup", [Param::required("collection", OBJECT_OR_ARRAY), Param::required("key", &[Type::String, Type::Number])], Type::Any,
        "Returns the value at a key of an object or an index of an array, or null if there is none.", "lookup(`{\"a\": 1}`, 'a') == `1`", lookup),
    kyverno!("items", [Param::required("collection", OBJECT_OR_ARRAY), Param::required("keyName", STRING), Param::required("valName", STRING)], Type::Array,
        "Turns an object (sorted by key) or array into an array of {keyName: key, valName: value} objects.", "items(`{\"a\": 1}`, 'k', 'v') == `[{\"k\": \"a\", \"v\": 1}]`", items),
    kyverno!("object_from_lists", [Param::required("keys", ARRAY), Param::required("values", ARRAY)], Type::Object,
        "Builds an object from a list of keys and a list of values; missing values are null.", "object_from_lists(['a'], `[1]`) == `{\"a\": 1}`", object_from_lists),
    kyverno!("label_match", [Param::required("selector", OBJECT), Param::required("labels", OBJECT)], Type::Boolean,
        "Returns whether every key and value of selector is also in labels.", "label_match(`{\"app\": \"a\"}`, `{\"app\": \"a\", \"x\": \"y\"}`) == `true`", label_match),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn type_error(name: &str, position: usize, expected: &str) -> EvalError {
    EvalError::function(name, format!("{position} argument is expected of {expected} type"))
}

fn lookup(call: &mut Call) -> Result<Value, EvalError> {
    match call.value(0) {
        Value::Object(map) => {
            let key = call.value(1).as_str().ok_or_else(|| type_error("lookup", 2, "String"))?;
            Ok(map.get(key).cloned().unwrap_or(Value::Null))
        }
        Value::Array(items) => {
            let key = call.value(1).as_f64().ok_or_else(|| type_error("lookup", 2, "Number"))?;
            if key.fract() != 0.0 {
                return Err(EvalError::function(
                    "lookup",
                    format!("argument #2: expected an integer number but got: {key}"),
                ));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let found = if key < 0.0 { None } else { items.get(key as usize) };
            Ok(found.cloned().unwrap_or(Value::Null))
        }
        _ => Err(type_error("lookup", 1, "Object or Array")),
    }
}

fn items(call: &mut Call) -> Result<Value, EvalError> {
    let key_name = call.string(1)?.to_string();
    let val_name = call.string(2)?.to_string();
    let pair = |key: Value, value: Value| {
        let mut item = Map::new();
        item.insert(key_name.clone(), key);
        item.insert(val_name.clone(), value);
        Value::Object(item)
    };
    match call.take(0) {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            // Kyverno sorts by key so the result does not depend on map order.
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Ok(Value::Array(entries.into_iter().map(|(k, v)| pair(Value::String(k), v)).collect()))
        }
        Value::Array(values) => {
            #[allow(clippy::cast_precision_loss)]
            let out = values.into_iter().enumerate().map(|(i, v)| pair(number(i as f64), v)).collect();
            Ok(Value::Array(out))
        }
        _ => Err(type_error("items", 1, "Object or Array")),
    }
}

/// Go's conversion of a scalar to a string in Kyverno's functions: numbers with single
/// precision and no exponent, booleans as `true`/`false`.
pub(crate) fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        #[allow(clippy::cast_possible_truncation)]
        Value::Number(n) => n.as_f64().map(|f| format!("{}", f as f32)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn object_from_lists(call: &mut Call) -> Result<Value, EvalError> {
    let keys = call.array(0)?;
    let values = call.array(1)?;
    let mut out = Map::new();
    for (i, key) in keys.iter().enumerate() {
        let key = scalar_to_string(key).ok_or_else(|| type_error("object_from_lists", 1, "StringArray"))?;
        out.insert(key, values.get(i).cloned().unwrap_or(Value::Null));
    }
    Ok(Value::Object(out))
}

fn label_match(call: &mut Call) -> Result<Value, EvalError> {
    let selector = call.object(0)?;
    let labels = call.object(1)?;
    let matched = selector.iter().all(|(key, value)| labels.get(key).is_some_and(|found| equal(found, value)));
    Ok(Value::Bool(matched))
}
