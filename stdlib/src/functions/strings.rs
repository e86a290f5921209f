//! Kyverno's string functions.

use serde_json::Value;

use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, EvalError, number};

const STRING: &[Type] = &[Type::String];
const NUMBER: &[Type] = &[Type::Number];

macro_rules! kyverno {
    ($name:literal, [$($param:expr),*], $returns:expr, $doc:literal, $example:literal, $imp:expr) => {
        FunctionDecl {
            name: $name,
            params: &[$($param),*],
            returns: $returns,
            purity: Purity::Pure,
            dialect: Dialect::Kyverno,
            doc: $doc,
            example: $example,
            implementation: $imp,
        }
    };
}
pub(crate) use kyverno;

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!("compare", [Param::required("a", STRING), Param::required("b", STRING)], Type::Number,
        "Compares two strings lexicographically: -1 if a < b, 0 if equal, 1 if a > b.", "compare('a', 'b') == `-1`", compare),
    kyverno!("equal_fold", [Param::required("a", STRING), Param::required("b", STRING)], Type::Boolean,
        "Returns whether two strings are equal ignoring letter case.", "equal_fold('Abc', 'aBC') == `true`", equal_fold),
    kyverno!("replace", [Param::required("str", STRING), Param::required("old", STRING), Param::required("new", STRING), Param::required("n", NUMBER)], Type::String,
        "Replaces the first n occurrences of old with new in str; a negative n replaces all.", "replace('aaa', 'a', 'b', `2`) == 'bba'", replace),
    kyverno!("replace_all", [Param::required("str", STRING), Param::required("old", STRING), Param::required("new", STRING)], Type::String,
        "Replaces every occurrence of old with new in str.", "replace_all('aaa', 'a', 'b') == 'bbb'", replace_all),
    kyverno!("to_upper", [Param::required("str", STRING)], Type::String,
        "Returns the string with all letters upper case.", "to_upper('abc') == 'ABC'", to_upper),
    kyverno!("to_lower", [Param::required("str", STRING)], Type::String,
        "Returns the string with all letters lower case.", "to_lower('ABC') == 'abc'", to_lower),
    kyverno!("trim", [Param::required("str", STRING), Param::required("cutset", STRING)], Type::String,
        "Removes every leading and trailing character that appears in cutset.", "trim('--a--', '-') == 'a'", trim),
    kyverno!("trim_prefix", [Param::required("str", STRING), Param::required("prefix", STRING)], Type::String,
        "Removes prefix from the start of str if str starts with it.", "trim_prefix('v1.2', 'v') == '1.2'", trim_prefix),
    kyverno!("split", [Param::required("str", STRING), Param::required("sep", STRING)], Type::ArrayString,
        "Splits str at every occurrence of sep; an empty sep splits into characters.", "split('a,b', ',') == ['a', 'b']", split),
    kyverno!("truncate", [Param::required("str", STRING), Param::required("length", NUMBER)], Type::String,
        "Cuts str to at most length characters.", "truncate('abcdef', `3`) == 'abc'", truncate),
    kyverno!("path_canonicalize", [Param::required("path", STRING)], Type::String,
        "Cleans a file path: removes repeated slashes and resolves `.` and `..`.", "path_canonicalize('/a//b/../c') == '/a/c'", path_canonicalize),
    kyverno!("to_boolean", [Param::required("str", STRING)], Type::Boolean,
        "Converts 'true' or 'false', in any letter case, to a boolean.", "to_boolean('TRUE') == `true`", to_boolean),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn string(text: impl Into<String>) -> Result<Value, EvalError> {
    Ok(Value::String(text.into()))
}

fn compare(call: &mut Call) -> Result<Value, EvalError> {
    let ordering = call.string(0)?.cmp(call.string(1)?);
    Ok(number(f64::from(ordering as i8)))
}

fn equal_fold(call: &mut Call) -> Result<Value, EvalError> {
    let (a, b) = (call.string(0)?, call.string(1)?);
    let folded = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
    Ok(Value::Bool(folded(a) == folded(b)))
}

fn replace(call: &mut Call) -> Result<Value, EvalError> {
    let (text, old, new) = (call.string(0)?, call.string(1)?, call.string(2)?);
    let n = call.number(3)?;
    if n < 0.0 {
        return string(text.replace(old, new));
    }
    // Go converts the count with int(); fractions are cut off.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    string(text.replacen(old, new, n as usize))
}

fn replace_all(call: &mut Call) -> Result<Value, EvalError> {
    string(call.string(0)?.replace(call.string(1)?, call.string(2)?))
}

fn to_upper(call: &mut Call) -> Result<Value, EvalError> {
    string(call.string(0)?.to_uppercase())
}

fn to_lower(call: &mut Call) -> Result<Value, EvalError> {
    string(call.string(0)?.to_lowercase())
}

fn trim(call: &mut Call) -> Result<Value, EvalError> {
    let cutset = call.string(1)?;
    string(call.string(0)?.trim_matches(|c| cutset.contains(c)))
}

fn trim_prefix(call: &mut Call) -> Result<Value, EvalError> {
    let (text, prefix) = (call.string(0)?, call.string(1)?);
    string(text.strip_prefix(prefix).unwrap_or(text))
}

fn split(call: &mut Call) -> Result<Value, EvalError> {
    let (text, sep) = (call.string(0)?, call.string(1)?);
    let parts: Vec<Value> = if sep.is_empty() {
        // Go splits around every character; Rust's split would add empty ends.
        text.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        text.split(sep).map(|part| Value::String(part.to_string())).collect()
    };
    Ok(Value::Array(parts))
}

fn truncate(call: &mut Call) -> Result<Value, EvalError> {
    let text = call.string(0)?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let length = call.number(1)?.max(0.0) as usize;
    string(text.chars().take(length).collect::<String>())
}

fn path_canonicalize(call: &mut Call) -> Result<Value, EvalError> {
    string(clean_path(call.string(0)?))
}

/// Go's `filepath.Clean` for slash-separated paths: the shortest path naming the same file.
fn clean_path(path: &str) -> String {
    if path.is_empty() {
        // `filepath.Join` of one empty element is empty, not ".".
        return String::new();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn to_boolean(call: &mut Call) -> Result<Value, EvalError> {
    let text = call.string(0)?;
    match text.to_lowercase().as_str() {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => Err(EvalError::function(
            "to_boolean",
            format!("lowercase argument must be 'true' or 'false' (provided: '{text}')"),
        )),
    }
}
