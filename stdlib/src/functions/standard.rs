//! The functions of the JMESPath specification.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, EvalError, compare, equal, number, to_json, type_name};

const NUMBER: &[Type] = &[Type::Number];
const STRING: &[Type] = &[Type::String];
const ARRAY: &[Type] = &[Type::Array];
const OBJECT: &[Type] = &[Type::Object];
const ANY: &[Type] = &[Type::Any];
const EXPREF: &[Type] = &[Type::Expref];
const NUMBERS_OR_STRINGS: &[Type] = &[Type::ArrayNumber, Type::ArrayString];

macro_rules! standard {
    ($name:literal, [$($param:expr),*], $returns:expr, $doc:literal, $example:literal, $imp:expr) => {
        FunctionDecl {
            name: $name,
            params: &[$($param),*],
            returns: $returns,
            purity: Purity::Pure,
            dialect: Dialect::Standard,
            doc: $doc,
            example: $example,
            implementation: $imp,
        }
    };
}

static FUNCTIONS: &[FunctionDecl] = &[
    standard!("abs", [Param::required("n", NUMBER)], Type::Number,
        "Returns the absolute value of a number.", "abs(`-3`) == `3`", abs),
    standard!("avg", [Param::required("numbers", &[Type::ArrayNumber])], Type::Number,
        "Returns the average of an array of numbers, or null for an empty array.", "avg(`[1, 2, 3]`) == `2`", avg),
    standard!("ceil", [Param::required("n", NUMBER)], Type::Number,
        "Returns the smallest integer not less than the number.", "ceil(`1.2`) == `2`", ceil),
    standard!("contains", [Param::required("subject", &[Type::Array, Type::String]), Param::required("search", ANY)], Type::Boolean,
        "Returns whether an array contains a value, or a string contains a substring.", "contains('foobar', 'bar') == `true`", contains),
    standard!("ends_with", [Param::required("subject", STRING), Param::required("suffix", STRING)], Type::Boolean,
        "Returns whether the string ends with the suffix.", "ends_with('foobar', 'bar') == `true`", ends_with),
    standard!("floor", [Param::required("n", NUMBER)], Type::Number,
        "Returns the greatest integer not greater than the number.", "floor(`1.8`) == `1`", floor),
    standard!("join", [Param::required("glue", STRING), Param::required("strings", &[Type::ArrayString])], Type::String,
        "Joins an array of strings with the glue string between them.", "join(', ', ['a', 'b']) == 'a, b'", join),
    standard!("keys", [Param::required("object", OBJECT)], Type::Array,
        "Returns the keys of an object.", "keys(`{\"a\": 1}`) == ['a']", keys),
    standard!("length", [Param::required("subject", &[Type::String, Type::Array, Type::Object])], Type::Number,
        "Returns the number of characters of a string, elements of an array or keys of an object.", "length('abc') == `3`", length),
    standard!("map", [Param::required("expr", EXPREF), Param::required("elements", ARRAY)], Type::Array,
        "Applies an expression to every element of an array, keeping nulls.", "map(&a, `[{\"a\": 1}, {}]`) == `[1, null]`", map),
    standard!("max", [Param::required("collection", NUMBERS_OR_STRINGS)], Type::Any,
        "Returns the largest number or string of an array, or null for an empty array.", "max(`[1, 3, 2]`) == `3`", max),
    standard!("max_by", [Param::required("elements", ARRAY), Param::required("expr", EXPREF)], Type::Any,
        "Returns the element for which the expression (a number or string) is largest.", "max_by(`[{\"a\": 1}, {\"a\": 2}]`, &a) == `{\"a\": 2}`", max_by),
    standard!("merge", [Param::variadic("objects", OBJECT)], Type::Object,
        "Merges objects; later keys override earlier ones.", "merge(`{\"a\": 1}`, `{\"a\": 2}`) == `{\"a\": 2}`", merge),
    standard!("min", [Param::required("collection", NUMBERS_OR_STRINGS)], Type::Any,
        "Returns the smallest number or string of an array, or null for an empty array.", "min(`[1, 3, 2]`) == `1`", min),
    standard!("min_by", [Param::required("elements", ARRAY), Param::required("expr", EXPREF)], Type::Any,
        "Returns the element for which the expression (a number or string) is smallest.", "min_by(`[{\"a\": 1}, {\"a\": 2}]`, &a) == `{\"a\": 1}`", min_by),
    standard!("not_null", [Param::variadic("values", ANY)], Type::Any,
        "Returns the first argument that is not null, or null.", "not_null(`null`, 'a') == 'a'", not_null),
    standard!("reverse", [Param::required("subject", &[Type::Array, Type::String])], Type::Any,
        "Reverses an array or a string.", "reverse('abc') == 'cba'", reverse),
    standard!("sort", [Param::required("list", NUMBERS_OR_STRINGS)], Type::Array,
        "Sorts an array of numbers or of strings.", "sort(['b', 'a']) == ['a', 'b']", sort),
    standard!("sort_by", [Param::required("elements", ARRAY), Param::required("expr", EXPREF)], Type::Array,
        "Sorts an array by the value (all numbers or all strings) of an expression; stable.", "sort_by(`[{\"a\": 2}, {\"a\": 1}]`, &a)[0].a == `1`", sort_by),
    standard!("starts_with", [Param::required("subject", STRING), Param::required("prefix", STRING)], Type::Boolean,
        "Returns whether the string starts with the prefix.", "starts_with('foobar', 'foo') == `true`", starts_with),
    standard!("sum", [Param::required("numbers", &[Type::ArrayNumber])], Type::Number,
        "Returns the sum of an array of numbers; 0 for an empty array.", "sum(`[1, 2]`) == `3`", sum),
    standard!("to_array", [Param::required("value", ANY)], Type::Array,
        "Returns an array unchanged and wraps anything else in a one-element array.", "to_array('a') == ['a']", to_array),
    standard!("to_number", [Param::required("value", ANY)], Type::Number,
        "Returns a number unchanged, parses a string as a number, and gives null otherwise.", "to_number('1.5') == `1.5`", to_number),
    standard!("to_string", [Param::required("value", ANY)], Type::String,
        "Returns a string unchanged and anything else as its JSON text.", "to_string(`[1]`) == '[1]'", to_string),
    standard!("type", [Param::required("value", ANY)], Type::String,
        "Returns the type of a value: number, string, boolean, array, object or null.", "type(`1`) == 'number'", type_of),
    standard!("values", [Param::required("object", OBJECT)], Type::Array,
        "Returns the values of an object.", "values(`{\"a\": 1}`) == `[1]`", values),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn abs(call: &mut Call) -> Result<Value, EvalError> {
    Ok(number(call.number(0)?.abs()))
}

fn avg(call: &mut Call) -> Result<Value, EvalError> {
    let items = call.array(0)?;
    if items.is_empty() {
        return Ok(Value::Null);
    }
    let total: f64 = items.iter().filter_map(Value::as_f64).sum();
    #[allow(clippy::cast_precision_loss)]
    Ok(number(total / items.len() as f64))
}

fn ceil(call: &mut Call) -> Result<Value, EvalError> {
    Ok(number(call.number(0)?.ceil()))
}

fn floor(call: &mut Call) -> Result<Value, EvalError> {
    Ok(number(call.number(0)?.floor()))
}

fn contains(call: &mut Call) -> Result<Value, EvalError> {
    let scanned = call.value(0).as_array().map_or(0, Vec::len);
    call.charge(scanned as u64)?;
    let found = match call.value(0) {
        Value::String(subject) => call.value(1).as_str().is_some_and(|s| subject.contains(s)),
        Value::Array(items) => {
            let search = call.value(1);
            items.iter().any(|item| equal(item, search))
        }
        _ => false,
    };
    Ok(Value::Bool(found))
}

fn ends_with(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::Bool(call.string(0)?.ends_with(call.string(1)?)))
}

fn starts_with(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::Bool(call.string(0)?.starts_with(call.string(1)?)))
}

fn join(call: &mut Call) -> Result<Value, EvalError> {
    let glue = call.string(0)?;
    let parts: Vec<&str> = call.array(1)?.iter().filter_map(Value::as_str).collect();
    Ok(Value::String(parts.join(glue)))
}

fn keys(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::Array(call.object(0)?.keys().cloned().map(Value::String).collect()))
}

fn values(call: &mut Call) -> Result<Value, EvalError> {
    match call.take(0) {
        Value::Object(map) => Ok(Value::Array(map.into_iter().map(|(_, v)| v).collect())),
        _ => Err(EvalError::invalid_type("invalid type for argument 1 of 'values': expected object")),
    }
}

fn length(call: &mut Call) -> Result<Value, EvalError> {
    let n = match call.value(0) {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    };
    #[allow(clippy::cast_precision_loss)]
    Ok(number(n as f64))
}

fn map(call: &mut Call) -> Result<Value, EvalError> {
    let expr = call.expref(0)?;
    let items = call.take(1);
    let Value::Array(items) = items else { return Ok(Value::Array(Vec::new())) };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(call.eval(expr, item)?);
    }
    Ok(Value::Array(out))
}

/// The largest (`Ordering::Greater`) or smallest (`Ordering::Less`) element of a number or string array.
fn extreme(call: &mut Call, wanted: Ordering) -> Result<Value, EvalError> {
    let items = call.array(0)?;
    let mut best: Option<&Value> = None;
    for item in items {
        best = match best {
            Some(current) if compare(item, current) != Some(wanted) => Some(current),
            _ => Some(item),
        };
    }
    Ok(best.cloned().unwrap_or(Value::Null))
}

fn max(call: &mut Call) -> Result<Value, EvalError> {
    extreme(call, Ordering::Greater)
}

fn min(call: &mut Call) -> Result<Value, EvalError> {
    extreme(call, Ordering::Less)
}

/// Evaluates the key expression of `max_by`, `min_by` or `sort_by` on every element and checks
/// the keys are all numbers or all strings.
fn keyed(call: &mut Call, items: &[Value]) -> Result<Vec<Value>, EvalError> {
    let expr = call.expref(1)?;
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        keys.push(call.eval(expr, item)?);
    }
    let all_numbers = keys.iter().all(Value::is_number);
    let all_strings = keys.iter().all(Value::is_string);
    if !(all_numbers || all_strings) {
        let found: Vec<&str> = keys.iter().map(type_name).collect();
        return Err(EvalError::invalid_type(format!(
            "invalid type in '{}': the expression must give all numbers or all strings, got {}",
            call.decl.name,
            found.join(", ")
        )));
    }
    Ok(keys)
}

fn extreme_by(call: &mut Call, wanted: Ordering) -> Result<Value, EvalError> {
    let Value::Array(items) = call.take(0) else { return Ok(Value::Null) };
    let keys = keyed(call, &items)?;
    let mut best: Option<usize> = None;
    for (i, key) in keys.iter().enumerate() {
        let better = match best.and_then(|b| keys.get(b)) {
            None => true,
            Some(current) => compare(key, current) == Some(wanted),
        };
        if better {
            best = Some(i);
        }
    }
    Ok(best.and_then(|i| items.into_iter().nth(i)).unwrap_or(Value::Null))
}

fn max_by(call: &mut Call) -> Result<Value, EvalError> {
    extreme_by(call, Ordering::Greater)
}

fn min_by(call: &mut Call) -> Result<Value, EvalError> {
    extreme_by(call, Ordering::Less)
}

fn merge(call: &mut Call) -> Result<Value, EvalError> {
    let mut out = Map::new();
    for i in 0..call.len() {
        if let Value::Object(map) = call.take(i) {
            for (key, value) in map {
                out.insert(key, value);
            }
        }
    }
    Ok(Value::Object(out))
}

fn not_null(call: &mut Call) -> Result<Value, EvalError> {
    for i in 0..call.len() {
        if !call.value(i).is_null() {
            return Ok(call.take(i));
        }
    }
    Ok(Value::Null)
}

fn reverse(call: &mut Call) -> Result<Value, EvalError> {
    match call.take(0) {
        Value::String(s) => Ok(Value::String(s.chars().rev().collect())),
        Value::Array(mut items) => {
            items.reverse();
            Ok(Value::Array(items))
        }
        _ => Ok(Value::Null),
    }
}

fn charge_sort(call: &mut Call, n: usize) -> Result<(), EvalError> {
    let n = n as u64;
    call.charge(n.saturating_mul(u64::from(64 - n.leading_zeros())))
}

fn sort(call: &mut Call) -> Result<Value, EvalError> {
    let Value::Array(mut items) = call.take(0) else { return Ok(Value::Null) };
    charge_sort(call, items.len())?;
    items.sort_by(|a, b| compare(a, b).unwrap_or(Ordering::Equal));
    Ok(Value::Array(items))
}

fn sort_by(call: &mut Call) -> Result<Value, EvalError> {
    let Value::Array(items) = call.take(0) else { return Ok(Value::Null) };
    charge_sort(call, items.len())?;
    let keys = keyed(call, &items)?;
    let mut pairs: Vec<(Value, Value)> = keys.into_iter().zip(items).collect();
    pairs.sort_by(|(a, _), (b, _)| compare(a, b).unwrap_or(Ordering::Equal));
    Ok(Value::Array(pairs.into_iter().map(|(_, item)| item).collect()))
}

fn sum(call: &mut Call) -> Result<Value, EvalError> {
    Ok(number(call.array(0)?.iter().filter_map(Value::as_f64).sum()))
}

fn to_array(call: &mut Call) -> Result<Value, EvalError> {
    match call.take(0) {
        Value::Array(items) => Ok(Value::Array(items)),
        other => Ok(Value::Array(vec![other])),
    }
}

fn to_number(call: &mut Call) -> Result<Value, EvalError> {
    match call.value(0) {
        Value::Number(_) => Ok(call.take(0)),
        Value::String(s) => Ok(parse_number(s).map_or(Value::Null, number)),
        _ => Ok(Value::Null),
    }
}

/// Parses a decimal number as JSON writes it, also allowing a leading `+`; words such as `inf`
/// or `nan`, which Rust's float parser accepts, are not numbers here.
fn parse_number(text: &str) -> Option<f64> {
    let ok = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        && text.chars().any(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn to_string(call: &mut Call) -> Result<Value, EvalError> {
    match call.value(0) {
        Value::String(_) => Ok(call.take(0)),
        other => Ok(Value::String(to_json(other))),
    }
}

fn type_of(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::String(type_name(call.value(0)).to_string()))
}
