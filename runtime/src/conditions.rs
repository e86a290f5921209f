//! Conditions of `preconditions` and `deny`: `{any: [...], all: [...]}` or a legacy list, each
//! condition `{key, operator, value, message}` with `{{ }}` variables in key and value.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use palisade_stdlib::duration::Duration;
use palisade_stdlib::quantity::Quantity;
use palisade_stdlib::template;
use palisade_stdlib::wildcard;

use crate::interp::gofmt;

/// Evaluates conditions; returns whether they hold and the messages of the conditions that
/// decided it (the failed ones when false, the holding ones when true).
pub fn evaluate(conds: &Value, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, String), String> {
    let (any, all): (Vec<&Value>, Vec<&Value>) = match conds {
        Value::Array(items) => (Vec::new(), items.iter().collect()),
        Value::Object(m) => (
            m.get("any").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default(),
            m.get("all").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default(),
        ),
        Value::Null => return Ok((true, String::new())),
        _ => return Err("conditions must be a list or a map of any/all".into()),
    };
    let mut held = Vec::new();
    let mut failed = Vec::new();
    let mut any_ok = any.is_empty();
    for c in &any {
        let (ok, msg) = condition(c, query)?;
        if ok {
            any_ok = true;
            held.extend(msg);
            break;
        }
        failed.extend(msg);
    }
    let mut all_ok = true;
    if any_ok {
        for c in &all {
            let (ok, msg) = condition(c, query)?;
            if ok {
                held.extend(msg);
            } else {
                all_ok = false;
                failed.extend(msg);
                break;
            }
        }
    }
    let result = any_ok && all_ok;
    let msgs = if result { held } else { failed };
    Ok((result, msgs.join("; ")))
}

fn condition<'c>(c: &'c Value, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, Option<String>), String> {
    // Most condition values are constant lists; they are used as they are, not rebuilt.
    let subst = |v: &'c Value| -> Result<Cow<'c, Value>, String> {
        if !has_template(v) {
            return Ok(Cow::Borrowed(v));
        }
        template::substitute_document(v, |_, expr| query(expr)).map(Cow::Owned).map_err(|e| format!("{e:?}"))
    };
    let key = subst(c.get("key").unwrap_or(&Value::Null))?;
    let value = subst(c.get("value").unwrap_or(&Value::Null))?;
    let (key, value) = (key.as_ref(), value.as_ref());
    let op = c.get("operator").and_then(Value::as_str).unwrap_or_default();
    let message = c.get("message").and_then(Value::as_str).map(str::to_owned);
    let ok = match op.to_ascii_lowercase().as_str() {
        "equals" | "equal" => equals(key, value),
        "notequals" | "notequal" => !equals(key, value),
        "anyin" => set_op(key, value, true, true).unwrap_or(false),
        "allin" => set_op(key, value, false, true).unwrap_or(false),
        "anynotin" => set_op(key, value, true, false).unwrap_or(false),
        "allnotin" => set_op(key, value, false, false).unwrap_or(false),
        "in" => set_op(key, value, false, true).unwrap_or(false),
        "notin" => set_op(key, value, false, true).is_some_and(|inside| !inside),
        "greaterthan" | "durationgreaterthan" => order(key, value) == Some(Ordering::Greater),
        "greaterthanorequals" | "durationgreaterthanorequals" => {
            matches!(order(key, value), Some(Ordering::Greater | Ordering::Equal))
        }
        "lessthan" | "durationlessthan" => order(key, value) == Some(Ordering::Less),
        "lessthanorequals" | "durationlessthanorequals" => {
            matches!(order(key, value), Some(Ordering::Less | Ordering::Equal))
        }
        other => return Err(format!("unknown operator `{other}`")),
    };
    Ok((ok, message))
}

/// Whether any string (or map key) of `v` holds a `{{ }}` template, or an escaped one that
/// substitution would unescape.
fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains("{{") || has_template(v)),
        _ => false,
    }
}

fn duration(v: &Value) -> Option<Duration> {
    match v {
        Value::String(s) if s != "0" => Duration::parse(s).ok(),
        _ => None,
    }
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

fn equals(key: &Value, value: &Value) -> bool {
    match (key, value) {
        (Value::String(k), Value::String(v)) => {
            if let (Some(a), Some(b)) = (duration(key), duration(value)) {
                return a.nanos() == b.nanos();
            }
            if let (Some(a), Some(b)) = (quantity(key), quantity(value)) {
                return a.cmp(&b) == Ordering::Equal;
            }
            wildcard::matches(v, k)
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            match (quantity(key), quantity(value)) {
                (Some(a), Some(b)) => a.cmp(&b) == Ordering::Equal,
                _ => false,
            }
        }
        (a, b) => a == b,
    }
}

/// The text Kyverno compares set members by (`fmt.Sprint`).
fn sprint(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => gofmt::v(other),
    }
}

/// The members of a condition value: a list, a JSON-array string, or a scalar.
fn members(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(sprint).collect(),
        Value::String(s) => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => items.iter().map(sprint).collect(),
            Err(_) => vec![s.clone()],
        },
        other => vec![sprint(other)],
    }
}

fn in_range(key: &str, range: &str) -> Option<bool> {
    let (lo, hi) = range.split_once('-').filter(|(lo, _)| !lo.is_empty())?;
    let (lo, hi, k) = (lo.trim().parse::<f64>().ok()?, hi.trim().parse::<f64>().ok()?, key.parse::<f64>().ok()?);
    Some(k >= lo && k <= hi)
}

fn member_of(key: &str, set: &[String]) -> bool {
    set.iter().any(|s| {
        in_range(key, s).unwrap_or(false) || wildcard::matches(s, key) || wildcard::matches(key, s)
    })
}

/// AnyIn / AllIn / AnyNotIn / AllNotIn. `None` when Kyverno rejects the operand types (a key
/// that is a map, a boolean or null; a value that is neither a list nor a string): every set
/// operator is then false, whatever its polarity.
fn set_op(key: &Value, value: &Value, any: bool, inside: bool) -> Option<bool> {
    if matches!(key, Value::Object(_) | Value::Bool(_) | Value::Null) || !matches!(value, Value::Array(_) | Value::String(_)) {
        return None;
    }
    let keys = members(key);
    let set = members(value);
    let test = |k: &String| member_of(k, &set) == inside;
    Some(if any { keys.iter().any(test) } else { keys.iter().all(test) })
}

fn order(key: &Value, value: &Value) -> Option<Ordering> {
    if let (Value::Number(a), Value::Number(b)) = (key, value) {
        return a.as_f64()?.partial_cmp(&b.as_f64()?);
    }
    // Durations (a plain number counts as seconds when the other side is a duration).
    let as_duration = |v: &Value, other: &Value| -> Option<Duration> {
        match v {
            Value::Number(n) if duration(other).is_some() => Some(Duration::from_nanos_f64(n.as_f64()? * 1e9)),
            _ => duration(v),
        }
    };
    if let (Some(a), Some(b)) = (as_duration(key, value), as_duration(value, key)) {
        return Some(a.nanos().cmp(&b.nanos()));
    }
    if let (Some(a), Some(b)) = (quantity(key), quantity(value)) {
        return Some(a.cmp(&b));
    }
    if let (Value::String(a), Value::String(b)) = (key, value) {
        let (a, b) = (palisade_stdlib::semver::Version::parse(a).ok()?, palisade_stdlib::semver::Version::parse(b).ok()?);
        return Some(a.compare(&b));
    }
    None
}
