//! Scalar pattern matching: Kyverno's `pattern.Validate` for one resource value.
//!
//! Numbers in patterns are float64 (Kyverno decodes patterns as untyped JSON); resource numbers
//! keep their integer-ness. Strings are operator expressions, compared as a Go duration if both
//! sides parse as one, else as a Kubernetes quantity if both parse, else as a wildcard string.

use serde_json::Value;

use std::cmp::Ordering;

use palisade_compiler::ir::pattern::{Cond, Const, Node, StrPattern};
use palisade_compiler::pattern::CompareOp;
use palisade_stdlib::duration::Duration;
use palisade_stdlib::quantity::Quantity;

use super::gofmt;

pub fn matches(value: &Value, pattern: &Node) -> bool {
    match pattern {
        Node::Bool(b) => value.as_bool() == Some(*b),
        Node::Number(p) => number(value, *p),
        Node::Null => null(value),
        // A map pattern in scalar position only asks for a map.
        Node::Map { .. } => value.is_object(),
        Node::Seq { .. } => false,
        Node::Str(s) => string(value, s),
    }
}

fn number(value: &Value, pattern: f64) -> bool {
    match value {
        Value::Number(n) => match n.as_i64() {
            // Kyverno compares an integer resource value with an integral float pattern only.
            Some(i) if !n.is_f64() => pattern.fract() == 0.0 && pattern as i64 == i,
            _ => n.as_f64() == Some(pattern),
        },
        Value::String(s) => go_parse_float(s) == Some(pattern),
        _ => false,
    }
}

/// A null pattern matches the zero value of every scalar type.
fn null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

fn string(value: &Value, pattern: &StrPattern) -> bool {
    if value.as_str() == Some(&*pattern.raw) {
        return true;
    }
    pattern.alternatives.iter().any(|all| all.iter().all(|c| condition(value, c)))
}

fn condition(value: &Value, c: &Cond) -> bool {
    match c {
        Cond::Compare { op, operand } => compare(value, *op, operand),
        Cond::InRange { low, high } => {
            compare(value, CompareOp::GreaterEqual, low) && compare(value, CompareOp::LessEqual, high)
        }
        Cond::NotInRange { low, high } => compare(value, CompareOp::Less, low) || compare(value, CompareOp::Greater, high),
    }
}

fn holds(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Equal => ord == Ordering::Equal,
        CompareOp::NotEqual => ord != Ordering::Equal,
        CompareOp::Greater => ord == Ordering::Greater,
        CompareOp::GreaterEqual => ord != Ordering::Less,
        CompareOp::Less => ord == Ordering::Less,
        CompareOp::LessEqual => ord != Ordering::Greater,
    }
}

/// Kyverno's `validateString`: the first comparison whose parse succeeds on both sides decides.
pub fn compare(value: &Value, op: CompareOp, operand: &Const) -> bool {
    let as_text = number_text(value);
    if let Some(p) = operand.duration {
        if let Some(v) = as_text.as_deref().and_then(|t| Duration::parse(t).ok()) {
            return holds(op, v.nanos().cmp(&p.nanos()));
        }
    }
    if let Some(p) = &operand.quantity {
        if let Some(v) = as_text.as_deref().and_then(|t| Quantity::parse(t).ok()) {
            return holds(op, v.cmp(p));
        }
    }
    let matched = match string_text(value) {
        Some(text) => operand.wildcard.matches(&text),
        None => return false,
    };
    match op {
        CompareOp::Equal => matched,
        CompareOp::NotEqual => !matched,
        // Ordering operators do not apply to strings.
        _ => false,
    }
}

/// Kyverno's `convertNumberToString`: the text a value is parsed from as a duration or
/// quantity. A missing value counts as zero.
fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("0".into()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_f64() => Some(gofmt::float_f(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text a value is wildcard-matched as: floats in Go's `%E` form, as Kyverno does.
fn string_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_f64() => Some(gofmt::float_e(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Go's `strconv.ParseFloat(s, 64)` on the forms resources contain: decimal and exponent
/// notation, `inf`/`nan` spellings, underscores not allowed.
pub fn go_parse_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || t.contains('_') {
        return None;
    }
    match t.to_ascii_lowercase().trim_start_matches('-') {
        "inf" | "infinity" | "nan" => {}
        body if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') => {}
        _ => return None,
    }
    s.parse::<f64>().ok()
}
