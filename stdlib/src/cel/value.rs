//! Conversions between JSON documents and CEL values.
//!
//! The `cel` crate's own serde bridge turns every non-negative JSON integer into an unsigned
//! CEL int, so `object.spec.replicas + 1` would fail with "no such overload" (CEL does not mix
//! `int` and `uint`). Kubernetes hands CEL signed integers for every JSON integer, so this
//! converter keeps them signed; only integers beyond `i64` fall back to `uint`, then `double`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use cel::objects::{Key, Map};
use serde_json::Value as Json;

/// The CEL value of a JSON document. Integers stay signed, as Kubernetes passes them.
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        Json::Object(m) => {
            let map: HashMap<Key, Value> = m.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v))).collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// The JSON form of a CEL value, for messages, patches and generated resources. Map keys are
/// sorted so the output is stable (the `cel` crate keeps maps in hash order).
pub fn to_json(v: &Value) -> Result<Json, String> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.as_str().to_owned()),
        Value::Bytes(b) => Json::String(base64_encode(b)),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(m) => {
            let mut entries: Vec<(String, Json)> =
                m.map.iter().map(|(k, v)| Ok((key_string(k), to_json(v)?))).collect::<Result<_, String>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(entries.into_iter().collect())
        }
        Value::Duration(d) => Json::String(crate::cel::library::format_duration(*d)),
        Value::Timestamp(t) => Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        Value::Opaque(o) => {
            if let Some(opt) = o.downcast_ref::<cel::objects::OptionalValue>() {
                match opt.value() {
                    Some(v) => to_json(v)?,
                    None => Json::Null,
                }
            } else if let Some(obj) = o.downcast_ref::<crate::cel::library::Object>() {
                obj.to_json()
            } else {
                return Err(format!("a value of type {} has no JSON form", o.runtime_type_name()));
            }
        }
        other => return Err(format!("a value of type {} has no JSON form", other.type_of())),
    })
}

/// A map key as the text it stands for.
pub fn key_string(k: &Key) -> String {
    match k {
        Key::String(s) => s.as_str().to_owned(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The longest list or largest map in a document: the bound the runtime cost estimate uses
/// for every list an expression iterates.
pub fn widest(v: &Json) -> usize {
    match v {
        Json::Array(items) => items.iter().map(widest).max().unwrap_or(0).max(items.len()),
        Json::Object(m) => m.values().map(widest).max().unwrap_or(0).max(m.len()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_stay_signed_and_round_trip() {
        let doc = json!({"spec": {"replicas": 3, "ratio": 0.5, "big": 18446744073709551615u64, "tags": ["a", null, true]}});
        let v = from_json(&doc);
        let Value::Map(m) = &v else { panic!("not a map") };
        let Some(Value::Map(spec)) = m.map.get(&Key::String(Arc::new("spec".into()))) else { panic!("no spec") };
        assert_eq!(spec.map.get(&Key::String(Arc::new("replicas".into()))), Some(&Value::Int(3)));
        assert_eq!(spec.map.get(&Key::String(Arc::new("big".into()))), Some(&Value::UInt(u64::MAX)));
        assert_eq!(to_json(&v).unwrap(), doc);
        assert_eq!(widest(&doc), 4);
    }
}
