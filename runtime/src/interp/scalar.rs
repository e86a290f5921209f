//! Scalar pattern matching: Kyverno's `pattern.Validate` for one resource value.
//!
//! Numbers in patterns are float64 (Kyverno decodes patterns as untyped JSON); resource numbers
//! keep their integer-ness. Strings are operator expressions, compared as a Go duration if both
//! sides parse as one, else as a Kubernetes quantity if both parse, else as a wildcard string.

use serde_json::Value;

use std::borrow::Cow;
use std::cmp::Ordering;

use palisade_compiler::ir::pattern::{Cond, Const, Node, StrPattern};
use palisade_compiler::pattern::CompareOp;
use palisade_stdlib::duration::Duration;
use palisade_stdlib::quantity::Quantity;

use super::gofmt;

/// A scalar-level view of a resource value: what pattern comparisons look at. Both the
/// interpreter (over `serde_json::Value`) and the JIT helpers (over the matching document) go
/// through this one view, so the comparison code is shared and cannot drift.
#[derive(Clone, Copy, Debug)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    /// An integer that `serde_json` keeps as `i64`.
    Int(i64),
    /// A positive integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(&'a str),
    Array,
    Object,
}

impl<'a> Scalar<'a> {
    pub fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) if n.is_f64() => Scalar::Float(n.as_f64().unwrap_or(0.0)),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Scalar::Int(i),
                (None, Some(u)) => Scalar::UInt(u),
                (None, None) => Scalar::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Scalar::Str(s),
            Value::Array(_) => Scalar::Array,
            Value::Object(_) => Scalar::Object,
        }
    }
}

pub fn matches(value: &Value, pattern: &Node) -> bool {
    matches_scalar(Scalar::of(value), pattern)
}

pub fn matches_scalar(value: Scalar, pattern: &Node) -> bool {
    match pattern {
        Node::Bool(b) => matches!(value, Scalar::Bool(v) if v == *b),
        Node::Number(p) => number(value, *p),
        Node::Null => null(value),
        // A map pattern in scalar position only asks for a map.
        Node::Map { .. } => matches!(value, Scalar::Object),
        Node::Seq { .. } => false,
        Node::Str(s) => string(value, s),
    }
}

fn number(value: Scalar, pattern: f64) -> bool {
    match value {
        // Kyverno compares an integer resource value with an integral float pattern only.
        Scalar::Int(i) => pattern.fract() == 0.0 && pattern as i64 == i,
        Scalar::UInt(u) => u as f64 == pattern,
        Scalar::Float(f) => f == pattern,
        Scalar::Str(s) => go_parse_float(s) == Some(pattern),
        _ => false,
    }
}

/// A null pattern matches the zero value of every scalar type.
fn null(value: Scalar) -> bool {
    match value {
        Scalar::Null => true,
        Scalar::Bool(b) => !b,
        Scalar::Int(i) => i == 0,
        Scalar::UInt(_) => false,
        Scalar::Float(f) => f == 0.0,
        Scalar::Str(s) => s.is_empty(),
        Scalar::Array | Scalar::Object => false,
    }
}

fn string(value: Scalar, pattern: &StrPattern) -> bool {
    if matches!(value, Scalar::Str(s) if s == &*pattern.raw) {
        return true;
    }
    pattern.alternatives.iter().any(|all| all.iter().all(|c| condition(value, c)))
}

fn condition(value: Scalar, c: &Cond) -> bool {
    match c {
        Cond::Compare { op, operand } => compare_scalar(value, *op, operand),
        Cond::InRange { low, high } => {
            compare_scalar(value, CompareOp::GreaterEqual, low) && compare_scalar(value, CompareOp::LessEqual, high)
        }
        Cond::NotInRange { low, high } => {
            compare_scalar(value, CompareOp::Less, low) || compare_scalar(value, CompareOp::Greater, high)
        }
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
    compare_scalar(Scalar::of(value), op, operand)
}

fn compare_scalar(value: Scalar, op: CompareOp, operand: &Const) -> bool {
    let as_text = number_text(value);
    if let Some(p) = operand.duration && let Some(v) = as_text.as_deref().and_then(|t| Duration::parse(t).ok()) {
        return holds(op, v.nanos().cmp(&p.nanos()));
    }
    if let Some(p) = &operand.quantity && let Some(v) = as_text.as_deref().and_then(|t| Quantity::parse(t).ok()) {
        return holds(op, v.cmp(p));
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
fn number_text(value: Scalar<'_>) -> Option<Cow<'_, str>> {
    match value {
        Scalar::Null => Some(Cow::Borrowed("0")),
        Scalar::Str(s) => Some(Cow::Borrowed(s)),
        Scalar::Float(f) => Some(Cow::Owned(gofmt::float_f(f))),
        Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
        Scalar::UInt(u) => Some(Cow::Owned(u.to_string())),
        Scalar::Bool(_) | Scalar::Array | Scalar::Object => None,
    }
}

/// The text a value is wildcard-matched as: floats in Go's `%E` form, as Kyverno does.
fn string_text(value: Scalar<'_>) -> Option<Cow<'_, str>> {
    match value {
        Scalar::Str(s) => Some(Cow::Borrowed(s)),
        Scalar::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        Scalar::Float(f) => Some(Cow::Owned(gofmt::float_e(f))),
        Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
        Scalar::UInt(u) => Some(Cow::Owned(u.to_string())),
        Scalar::Null | Scalar::Array | Scalar::Object => None,
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
