//! Conditions of `preconditions` and `deny`: `{any: [...], all: [...]}` or a legacy list, each
//! condition `{key, operator, value, message}` with `{{ }}` variables in key and value.
//!
//! The operators are written once, over [`CondValue`]: a read-only view of a value that gives
//! its scalar ([`Shape`]) and its array elements without copying. `serde_json::Value` is one
//! such view (the interpreter's context answers with values); the set engine's tape results are
//! another, so a condition on the tape compares the request's own text and numbers where they
//! sit. Only what the semantics need as a whole value (deep equality of maps and arrays, Go's
//! formatting of a container) is converted to a `Value`, through [`CondValue::to_json`].
//!
//! Where the operands come from is a [`Source`]: the interpreter's is a query by expression
//! text; the set engine also answers by a slot it gave each whole-template operand at load
//! ([`Conditions::assign_slots`]), so evaluating a condition looks nothing up by text.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use palisade_stdlib::duration::Duration;
use palisade_stdlib::quantity::Quantity;
use palisade_stdlib::template;
use palisade_stdlib::wildcard;

use crate::interp::gofmt;

/// The slot of a whole-template operand no source has resolved.
pub const NO_SLOT: u32 = u32::MAX;

/// Evaluates conditions; returns whether they hold and the messages of the conditions that
/// decided it (the failed ones when false, the holding ones when true).
pub fn evaluate(conds: &Value, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, String), String> {
    Conditions::new(conds).evaluate(query)
}

/// What an operator sees of a value: its scalar, or which kind of container it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(&'a str),
    Array,
    Object,
}

/// A value as the operators read it. Implementations must agree with the `Value` they stand
/// for: [`CondValue::shape`] is its scalar or container kind, [`CondValue::elems`] its array
/// elements (nothing for anything else), [`CondValue::to_json`] the value itself.
pub trait CondValue {
    type Elem<'e>: CondValue
    where
        Self: 'e;

    fn shape(&self) -> Shape<'_>;

    fn elems(&self) -> impl Iterator<Item = Self::Elem<'_>>;

    fn to_json(&self) -> Cow<'_, Value>;
}

impl CondValue for Value {
    type Elem<'e> = &'e Value;

    fn shape(&self) -> Shape<'_> {
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => Shape::Number(n.clone()),
            Value::String(s) => Shape::Str(s),
            Value::Array(_) => Shape::Array,
            Value::Object(_) => Shape::Object,
        }
    }

    fn elems(&self) -> impl Iterator<Item = &Value> {
        self.as_array().into_iter().flatten()
    }

    fn to_json(&self) -> Cow<'_, Value> {
        Cow::Borrowed(self)
    }
}

impl<T: CondValue + ?Sized> CondValue for &T {
    type Elem<'e>
        = T::Elem<'e>
    where
        Self: 'e;

    fn shape(&self) -> Shape<'_> {
        (**self).shape()
    }

    fn elems(&self) -> impl Iterator<Item = Self::Elem<'_>> {
        (**self).elems()
    }

    fn to_json(&self) -> Cow<'_, Value> {
        (**self).to_json()
    }
}

/// Where conditions get the values of their expressions.
pub trait Source {
    /// The value of a whole-template operand.
    type Out<'s>: CondValue
    where
        Self: 's;

    /// The value of the operand `{{ expr }}`; `slot` is what [`Conditions::assign_slots`] gave
    /// it ([`NO_SLOT`] when nothing did).
    fn operand(&self, expr: &str, slot: u32) -> Result<Self::Out<'_>, String>;

    /// The value of an expression by its text, for templates inside text, lists and maps.
    fn query(&self, expr: &str) -> Result<Value, String>;
}

/// The interpreter's source: every expression answered by text, as a `Value`.
struct Query<'q>(&'q dyn Fn(&str) -> Result<Value, String>);

impl Source for Query<'_> {
    type Out<'s>
        = Value
    where
        Self: 's;

    fn operand(&self, expr: &str, _slot: u32) -> Result<Value, String> {
        (self.0)(expr)
    }

    fn query(&self, expr: &str) -> Result<Value, String> {
        (self.0)(expr)
    }
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
    op: Op,
    message: Option<Cow<'c, str>>,
}

/// An operator, named case-insensitively as Kyverno reads it (with its deprecated aliases).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    AnyIn,
    AllIn,
    AnyNotIn,
    AllNotIn,
    In,
    NotIn,
    GreaterThan,
    GreaterThanOrEquals,
    LessThan,
    LessThanOrEquals,
    /// Not an operator: the lower-cased name, for the error.
    Unknown(String),
}

impl Op {
    fn new(name: &str) -> Op {
        match name.to_ascii_lowercase().as_str() {
            "equals" | "equal" => Op::Equals,
            "notequals" | "notequal" => Op::NotEquals,
            "anyin" => Op::AnyIn,
            "allin" => Op::AllIn,
            "anynotin" => Op::AnyNotIn,
            "allnotin" => Op::AllNotIn,
            "in" => Op::In,
            "notin" => Op::NotIn,
            "greaterthan" | "durationgreaterthan" => Op::GreaterThan,
            "greaterthanorequals" | "durationgreaterthanorequals" => Op::GreaterThanOrEquals,
            "lessthan" | "durationlessthan" => Op::LessThan,
            "lessthanorequals" | "durationlessthanorequals" => Op::LessThanOrEquals,
            other => Op::Unknown(other.to_owned()),
        }
    }

    /// Whether `key <op> value` holds.
    fn apply<K: CondValue, W: CondValue>(&self, key: &K, value: &W) -> Result<bool, String> {
        Ok(match self {
            Op::Equals => equals(key, value),
            Op::NotEquals => !equals(key, value),
            Op::AnyIn => set_op(key, value, true, true).unwrap_or(false),
            Op::AllIn | Op::In => set_op(key, value, false, true).unwrap_or(false),
            Op::AnyNotIn => set_op(key, value, true, false).unwrap_or(false),
            Op::AllNotIn => set_op(key, value, false, false).unwrap_or(false),
            Op::NotIn => set_op(key, value, false, true).is_some_and(|inside| !inside),
            Op::GreaterThan => order(key, value) == Some(Ordering::Greater),
            Op::GreaterThanOrEquals => matches!(order(key, value), Some(Ordering::Greater | Ordering::Equal)),
            Op::LessThan => order(key, value) == Some(Ordering::Less),
            Op::LessThanOrEquals => matches!(order(key, value), Some(Ordering::Less | Ordering::Equal)),
            Op::Unknown(other) => return Err(format!("unknown operator `{other}`")),
        })
    }
}

#[derive(Clone, Debug)]
enum Operand<'c> {
    /// No template anywhere: used as it is.
    Const(Cow<'c, Value>),
    /// A string that is exactly one template: the expression's value, with its JSON type.
    /// `slot` is the source's own name for the expression ([`Conditions::assign_slots`]).
    Whole { expr: Cow<'c, str>, raw: Cow<'c, Value>, slot: u32 },
    /// Templates inside text, lists or maps: substituted as a document.
    Template(Cow<'c, Value>),
}

/// A resolved operand: a `Value` (a constant or a substituted document) or the source's view.
enum Arg<'a, T> {
    Json(Cow<'a, Value>),
    Src(T),
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

    /// Gives each whole-template operand the slot `slot` names for its expression, so that a
    /// [`Source`] answers it without looking its text up.
    pub fn assign_slots(&mut self, slot: &mut dyn FnMut(&str) -> Option<u32>) {
        let Form::Lists { any, all } = &mut self.form else { return };
        for c in any.iter_mut().chain(all.iter_mut()) {
            for operand in [&mut c.key, &mut c.value] {
                if let Operand::Whole { expr, slot: s, .. } = operand {
                    *s = slot(expr).unwrap_or(NO_SLOT);
                }
            }
        }
    }

    /// Whether the conditions hold, and the messages of the conditions that decided it.
    pub fn evaluate(&self, query: &dyn Fn(&str) -> Result<Value, String>) -> Result<(bool, String), String> {
        self.evaluate_in(&Query(query))
    }

    /// [`Conditions::evaluate`] with the operands' values from `source`.
    pub fn evaluate_in<S: Source>(&self, source: &S) -> Result<(bool, String), String> {
        let (any, all) = match &self.form {
            Form::Always => return Ok((true, String::new())),
            Form::Invalid => return Err("conditions must be a list or a map of any/all".into()),
            Form::Lists { any, all } => (any, all),
        };
        // Messages are borrowed from the conditions and joined once, at the end.
        let mut held: Vec<&str> = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        let mut any_ok = any.is_empty();
        for c in any {
            let ok = c.evaluate(source)?;
            let msg = c.message.as_deref();
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
                let ok = c.evaluate(source)?;
                let msg = c.message.as_deref();
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
            op: Op::new(c.get("operator").and_then(Value::as_str).unwrap_or_default()),
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

    fn evaluate<S: Source>(&self, source: &S) -> Result<bool, String> {
        let key = self.key.resolve(source)?;
        let value = self.value.resolve(source)?;
        // Each pairing of a `Value` and the source's view is its own instance of the operators.
        match (&key, &value) {
            (Arg::Json(k), Arg::Json(v)) => self.op.apply(k.as_ref(), v.as_ref()),
            (Arg::Json(k), Arg::Src(v)) => self.op.apply(k.as_ref(), v),
            (Arg::Src(k), Arg::Json(v)) => self.op.apply(k, v.as_ref()),
            (Arg::Src(k), Arg::Src(v)) => self.op.apply(k, v),
        }
    }
}

impl<'c> Operand<'c> {
    fn new(v: &'c Value) -> Operand<'c> {
        if !has_template(v) {
            return Operand::Const(Cow::Borrowed(v));
        }
        if let Value::String(s) = v {
            let templates = template::find_templates(s);
            if let [t] = templates.as_slice()
                && t.span.start == 0
                && t.span.end == s.len()
            {
                return Operand::Whole { expr: Cow::Borrowed(t.expression_in(s)), raw: Cow::Borrowed(v), slot: NO_SLOT };
            }
        }
        Operand::Template(Cow::Borrowed(v))
    }

    fn into_owned(self) -> Operand<'static> {
        match self {
            Operand::Const(v) => Operand::Const(Cow::Owned(v.into_owned())),
            Operand::Whole { expr, raw, slot } => Operand::Whole { expr: Cow::Owned(expr.into_owned()), raw: Cow::Owned(raw.into_owned()), slot },
            Operand::Template(v) => Operand::Template(Cow::Owned(v.into_owned())),
        }
    }

    /// The operand's value with its templates substituted. A whole-string template is the
    /// expression's value (what substitution gives); when the query fails, substitution runs
    /// as usual so the error reads the same.
    fn resolve<'s, S: Source>(&'s self, source: &'s S) -> Result<Arg<'s, S::Out<'s>>, String> {
        let substitute = |raw: &Value| {
            template::substitute_document(raw, |_, expr| source.query(expr)).map(|v| Arg::Json(Cow::Owned(v))).map_err(|e| format!("{e:?}"))
        };
        match self {
            Operand::Const(v) => Ok(Arg::Json(Cow::Borrowed(v.as_ref()))),
            Operand::Whole { expr, raw, slot } => match source.operand(expr, *slot) {
                Ok(v) => Ok(Arg::Src(v)),
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

fn duration(s: &str) -> Option<Duration> {
    // A duration starts with a digit or a point after an optional sign. Most strings compared
    // in conditions (names, capabilities, images) do not, and are answered here without the
    // parser building its error message. `"0"` is not a duration for Kyverno.
    if s != "0" && s.strip_prefix(['+', '-']).unwrap_or(s).starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Duration::parse(s).ok();
    }
    None
}

fn duration_of(v: &Shape) -> Option<Duration> {
    match v {
        Shape::Str(s) => duration(s),
        _ => None,
    }
}

fn quantity(v: &Shape) -> Option<Quantity> {
    match v {
        // A quantity is written with signs, digits, a point and suffix letters only; most
        // strings compared (operations, names, capabilities) hold another byte and are
        // answered without the parser.
        Shape::Str(s) if !s.bytes().all(|b| b"+-.0123456789eEinumkKMGTP".contains(&b)) => None,
        Shape::Str(s) => Quantity::parse(s).ok(),
        Shape::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

fn equals<K: CondValue, W: CondValue>(key: &K, value: &W) -> bool {
    let (k, v) = (key.shape(), value.shape());
    match (&k, &v) {
        (Shape::Str(ks), Shape::Str(vs)) => {
            // Each side is parsed only when the other is not already ruled out: most strings
            // compared (operations, names, capabilities) are neither durations nor quantities.
            if let Some(a) = duration(ks)
                && let Some(b) = duration(vs)
            {
                return a.nanos() == b.nanos();
            }
            if let Some(a) = quantity(&k)
                && let Some(b) = quantity(&v)
            {
                return a.cmp(&b) == Ordering::Equal;
            }
            wildcard::matches(vs, ks)
        }
        (Shape::Number(a), Shape::Number(b)) => a.as_f64() == b.as_f64(),
        (Shape::Number(_), Shape::Str(_)) | (Shape::Str(_), Shape::Number(_)) => match (quantity(&k), quantity(&v)) {
            (Some(a), Some(b)) => a.cmp(&b) == Ordering::Equal,
            _ => false,
        },
        (Shape::Null, Shape::Null) => true,
        (Shape::Bool(a), Shape::Bool(b)) => a == b,
        // Lists and maps compare as JSON values (serde_json's equality, numbers by kind).
        (Shape::Array, Shape::Array) | (Shape::Object, Shape::Object) => key.to_json() == value.to_json(),
        _ => false,
    }
}

/// The text Kyverno compares set members by (`fmt.Sprint`).
fn sprint<T: CondValue>(v: &T) -> Cow<'_, str> {
    match v.shape() {
        Shape::Str(s) => Cow::Borrowed(s),
        Shape::Null => Cow::Borrowed("<nil>"),
        Shape::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Shape::Number(n) => Cow::Owned(gofmt::number_v(&n)),
        Shape::Array | Shape::Object => Cow::Owned(gofmt::v(&v.to_json())),
    }
}

/// Whether `f` holds for some member of a condition value: the elements of a list, of a
/// JSON-array string, or the value itself.
fn any_member<T: CondValue>(v: &T, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v.shape() {
        Shape::Array => v.elems().any(|e| f(&sprint(&e))),
        // Only a string that opens like an array can parse as one; most members are plain
        // words, which skip the parser (and the error it would build).
        Shape::Str(s) if s.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('[') => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => items.iter().any(|i| f(&sprint(i))),
            Err(_) => f(s),
        },
        Shape::Str(s) => f(s),
        _ => f(&sprint(v)),
    }
}

fn in_range(key: &str, range: &str) -> Option<bool> {
    let (lo, hi) = range.split_once('-').filter(|(lo, _)| !lo.is_empty())?;
    let (lo, hi, k) = (lo.trim().parse::<f64>().ok()?, hi.trim().parse::<f64>().ok()?, key.parse::<f64>().ok()?);
    Some(k >= lo && k <= hi)
}

fn member_of<W: CondValue>(key: &str, set: &W) -> bool {
    // `wildcard::matches(s, key) || wildcard::matches(key, s)`, with the key's wildcards
    // looked for once rather than per member: without wildcards on either side both are
    // `s == key`, and a key without wildcards matches a pattern member only through the first.
    let key_wild = wildcard::has_wildcard(key);
    any_member(set, &mut |s| {
        in_range(key, s).unwrap_or(false)
            || if wildcard::has_wildcard(s) { wildcard::matches(s, key) } else { crate::doc::same_bytes(s.as_bytes(), key.as_bytes()) }
            || (key_wild && wildcard::matches(key, s))
    })
}

/// AnyIn / AllIn / AnyNotIn / AllNotIn. `None` when Kyverno rejects the operand types (a key
/// that is a map, a boolean or null; a value that is neither a list nor a string): every set
/// operator is then false, whatever its polarity.
fn set_op<K: CondValue, W: CondValue>(key: &K, value: &W, any: bool, inside: bool) -> Option<bool> {
    if matches!(key.shape(), Shape::Object | Shape::Bool(_) | Shape::Null) || !matches!(value.shape(), Shape::Array | Shape::Str(_)) {
        return None;
    }
    let mut test = |k: &str| member_of(k, value) == inside;
    Some(if any { any_member(key, &mut test) } else { !any_member(key, &mut |k| !test(k)) })
}

fn order<K: CondValue, W: CondValue>(key: &K, value: &W) -> Option<Ordering> {
    let (k, v) = (key.shape(), value.shape());
    if let (Shape::Number(a), Shape::Number(b)) = (&k, &v) {
        return a.as_f64()?.partial_cmp(&b.as_f64()?);
    }
    // Durations (a plain number counts as seconds when the other side is a duration).
    let as_duration = |s: &Shape, other: &Shape| -> Option<Duration> {
        match s {
            Shape::Number(n) if duration_of(other).is_some() => Some(Duration::from_nanos_f64(n.as_f64()? * 1e9)),
            _ => duration_of(s),
        }
    };
    if let (Some(a), Some(b)) = (as_duration(&k, &v), as_duration(&v, &k)) {
        return Some(a.nanos().cmp(&b.nanos()));
    }
    if let (Some(a), Some(b)) = (quantity(&k), quantity(&v)) {
        return Some(a.cmp(&b));
    }
    if let (Shape::Str(a), Shape::Str(b)) = (&k, &v) {
        let (a, b) = (palisade_stdlib::semver::Version::parse(a).ok()?, palisade_stdlib::semver::Version::parse(b).ok()?);
        return Some(a.compare(&b));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn members(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        any_member(v, &mut |m| {
            out.push(m.to_owned());
            false
        });
        out
    }

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
            (json!([null, 1.5, [1, "x"], {"b": 1, "a": 2}]), vec!["<nil>", "1.5", "[1 x]", "map[a:2 b:1]"]),
        ];
        for (value, expected) in cases {
            assert_eq!(members(&value), expected, "{value}");
        }
    }

    /// The quick refusal of strings that cannot be quantities refuses only what the parser
    /// refuses (suffix-only strings like `M` do parse, as zero).
    #[test]
    fn quantity_guard_agrees_with_the_parser() {
        for s in ["", "1", "-1.5Gi", "+2e3", "M", "Ki", "m", "1e", "CREATE", "DELETE", "NET_RAW", "ALL", "1 Gi", "0x10", "1.2.3", "e", "nume", "Pi", "10Mi", "-", "."] {
            assert_eq!(quantity(&Shape::Str(s)).map(|q| q.cmp(&Quantity::from_int(0, palisade_stdlib::quantity::Format::DecimalSI))), Quantity::parse(s).ok().map(|q| q.cmp(&Quantity::from_int(0, palisade_stdlib::quantity::Format::DecimalSI))), "{s:?}");
        }
    }

    /// Operator names are case-insensitive, with Kyverno's deprecated aliases; anything else is
    /// an error that names the operator as read.
    #[test]
    fn operator_names() {
        let cases = [
            ("Equals", Ok(true)),
            ("equal", Ok(true)),
            ("NOTEQUALS", Ok(false)),
            ("DurationGreaterThanOrEquals", Ok(true)),
            ("durationlessthan", Ok(false)),
            ("Matches", Err("unknown operator `matches`".to_owned())),
        ];
        for (op, expected) in cases {
            let conds = json!([{"key": "1h", "operator": op, "value": "60m"}]);
            let got = evaluate(&conds, &|_| Err("no context".to_owned())).map(|(held, _)| held);
            assert_eq!(got, expected, "{op}");
        }
    }
}
