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
    Conditions::new(conds).evaluate(query)
}

/// Conditions read once: each operand classified (a constant, one whole `{{ }}` expression, or
/// text with templates) and each operator resolved, so evaluating them again only queries the
/// expressions. The interpreter reads them per evaluation (borrowing the policy); the set
/// engine keeps them with its compiled rules ([`Conditions::into_owned`]).
#[derive(Clone, Debug)]
pub struct Conditions<'c> {
    form: Form<'c>,
}

#[derive(Clone, Debug)]
enum Form<'c> {
    /// No conditions (`null`): they hold.
    Always,
    /// Neither a list nor a map.
    Invalid,
    Lists { any: Vec<Condition<'c>>, all: Vec<Condition<'c>> },
}

#[derive(Clone, Debug)]
struct Condition<'c> {
    key: Operand<'c>,
    value: Operand<'c>,
    /// The operator, lower-cased as Kyverno compares it.
    op: String,
    message: Option<Cow<'c, str>>,
}

#[derive(Clone, Debug)]
enum Operand<'c> {
    /// No template anywhere: used as it is.
    Const(Cow<'c, Value>),
    /// A string that is exactly one template: the expression's value, with its JSON type.
    Whole { expr: Cow<'c, str>, raw: Cow<'c, Value> },
    /// Templates inside text, lists or maps: substituted as a document.
    Template(Cow<'c, Value>),
}

impl<'c> Conditions<'c> {
    pub fn new(conds: &'c Value) -> Conditions<'c> {
        let list = |v: Option<&'c Value>| -> Vec<Condition<'c>> {
            v.and_then(Value::as_array).map(|a| a.iter().map(Condition::new).collect()).unwrap_or_default()
        };
        let form = match conds {
            Value::Array(items) => Form::Lists { any: Vec::new(), all: items.iter().map(Condition::new).collect() },
            Value::Object(m) => Form::Lists { any: list(m.get("any")), all: list(m.get("all")) },
            Value::Null => Form::Always,
            _ => Form::Invalid,
        };
        Conditions { form }
    }

    /// The same conditions, owning what they borrowed.
    pub fn into_owned(self) -> Conditions<'static> {
        let form = match self.form {
            Form::Always => Form::Always,
            Form::Invalid => Form::Invalid,
            Form::Lists { any, all } => Form::Lists {
                any: any.into_iter().map(Condition::into_owned).collect(),
                all: all.into_iter().map(Condition::into_owned).collect(),
            },
        };
        Conditions { form }
    }

    /// Whether the conditions hold, and the messages of the conditions that decided it.
    pub fn evaluate(&self, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, String), String> {
        let (any, all) = match &self.form {
            Form::Always => return Ok((true, String::new())),
            Form::Invalid => return Err("conditions must be a list or a map of any/all".into()),
            Form::Lists { any, all } => (any, all),
        };
        let mut held = Vec::new();
        let mut failed = Vec::new();
        let mut any_ok = any.is_empty();
        for c in any {
            let (ok, msg) = c.evaluate(query)?;
            if ok {
                any_ok = true;
                held.extend(msg);
                break;
            }
            failed.extend(msg);
        }
        let mut all_ok = true;
        if any_ok {
            for c in all {
                let (ok, msg) = c.evaluate(query)?;
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
}

impl<'c> Condition<'c> {
    fn new(c: &'c Value) -> Condition<'c> {
        Condition {
            key: Operand::new(c.get("key").unwrap_or(&Value::Null)),
            value: Operand::new(c.get("value").unwrap_or(&Value::Null)),
            op: c.get("operator").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase(),
            message: c.get("message").and_then(Value::as_str).map(Cow::Borrowed),
        }
    }

    fn into_owned(self) -> Condition<'static> {
        Condition {
            key: self.key.into_owned(),
            value: self.value.into_owned(),
            op: self.op,
            message: self.message.map(|m| Cow::Owned(m.into_owned())),
        }
    }

    fn evaluate(&self, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, Option<String>), String> {
        let key = self.key.resolve(query)?;
        let value = self.value.resolve(query)?;
        let (key, value) = (key.as_ref(), value.as_ref());
        let ok = match self.op.as_str() {
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
        Ok((ok, self.message.as_ref().map(|m| m.clone().into_owned())))
    }
}

impl<'c> Operand<'c> {
    fn new(v: &'c Value) -> Operand<'c> {
        if !has_template(v) {
            return Operand::Const(Cow::Borrowed(v));
        }
        if let Value::String(s) = v {
            let templates = template::find_templates(s);
            if let [t] = templates.as_slice() {
                if t.span.start == 0 && t.span.end == s.len() {
                    return Operand::Whole { expr: Cow::Borrowed(t.expression_in(s)), raw: Cow::Borrowed(v) };
                }
            }
        }
        Operand::Template(Cow::Borrowed(v))
    }

    fn into_owned(self) -> Operand<'static> {
        match self {
            Operand::Const(v) => Operand::Const(Cow::Owned(v.into_owned())),
            Operand::Whole { expr, raw } => Operand::Whole { expr: Cow::Owned(expr.into_owned()), raw: Cow::Owned(raw.into_owned()) },
            Operand::Template(v) => Operand::Template(Cow::Owned(v.into_owned())),
        }
    }

    /// The operand's value with its templates substituted. A whole-string template is the
    /// expression's value (what substitution gives); when the query fails, substitution runs
    /// as usual so the error reads the same.
    fn resolve(&self, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<Cow<'_, Value>, String> {
        let substitute = |raw: &Value| {
            template::substitute_document(raw, |_, expr| query(expr)).map(Cow::Owned).map_err(|e| format!("{e:?}"))
        };
        match self {
            Operand::Const(v) => Ok(Cow::Borrowed(v.as_ref())),
            Operand::Whole { expr, raw } => match query(expr) {
                Ok(v) => Ok(Cow::Owned(v)),
                Err(_) => substitute(raw),
            },
            Operand::Template(raw) => substitute(raw),
        }
    }
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
        // A duration starts with a digit or a point after an optional sign. Most strings
        // compared in conditions (names, capabilities, images) do not, and are answered here
        // without the parser building its error message.
        Value::String(s) if s != "0" && s.strip_prefix(['+', '-']).unwrap_or(s).starts_with(|c: char| c == '.' || c.is_ascii_digit()) => {
            Duration::parse(s).ok()
        }
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
        // Only a string that opens like an array can parse as one; most members are plain
        // words, which skip the parser (and the error it would build).
        Value::String(s) if s.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('[') => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => items.iter().map(sprint).collect(),
            Err(_) => vec![s.clone()],
        },
        Value::String(s) => vec![s.clone()],
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_of_a_string_parse_only_an_array() {
        let cases = [
            (json!(["a", 1, true]), vec!["a", "1", "true"]),
            (json!("[\"a\", \"b\"]"), vec!["a", "b"]),
            (json!(" \n[\"a\"]"), vec!["a"]),
            // Not JSON, or not an array: the string is the one member.
            (json!("[a, b]"), vec!["[a, b]"]),
            (json!("{\"a\": 1}"), vec!["{\"a\": 1}"]),
            (json!("CREATE"), vec!["CREATE"]),
            (json!(""), vec![""]),
            (json!(3), vec!["3"]),
        ];
        for (value, expected) in cases {
            assert_eq!(members(&value), expected, "{value}");
        }
    }
}
