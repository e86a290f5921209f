//! Kyverno's arithmetic functions: add, sum, subtract, multiply, divide, modulo, round.
//!
//! They work on numbers, Kubernetes quantities and durations, with Kyverno's rules
//! (`pkg/engine/jmespath/arithmetic.go`): a string argument is a quantity if it parses as one
//! (so `'5'` and `'30m'`, thirty milli, are quantities), otherwise a duration; write `'0h30m'`
//! or `'1800s'` for half an hour. Quantities and durations
//! come back as their canonical strings, numbers as numbers. Which operand kinds combine:
//!
//! | op | result |
//! | --- | --- |
//! | q ± q, d ± d, n ± n | same kind |
//! | q × n, n × q / d × n, n × d / n × n | quantity / duration / number |
//! | q ÷ q, d ÷ d | number |
//! | q ÷ n, d ÷ n, n ÷ n | quantity, duration, number |
//! | q % q, d % d, n % n | same kind, whole values only |
//!
//! Anything else is Kyverno's `Types mismatch` error.

use serde_json::Value;

use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::duration::{Duration, SECOND};
use crate::jmespath::{Dialect, EvalError, number};
use crate::quantity::Quantity;

const ANY: &[Type] = &[Type::Any];
const NUMBER: &[Type] = &[Type::Number];
const ARRAY: &[Type] = &[Type::Array];

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

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!(
        "add",
        [Param::required("a", ANY), Param::required("b", ANY)],
        Type::Any,
        "Adds two numbers, two quantities or two durations.",
        "add('1Gi', '512Mi') == '1536Mi'",
        add
    ),
    kyverno!(
        "sum",
        [Param::required("items", ARRAY)],
        Type::Any,
        "Adds up a non-empty array of numbers, quantities or durations.",
        "sum(['1h', '1800s']) == '1h30m0s'",
        sum
    ),
    kyverno!(
        "subtract",
        [Param::required("a", ANY), Param::required("b", ANY)],
        Type::Any,
        "Subtracts b from a: numbers, quantities or durations, both of the same kind.",
        "subtract('2h', '0h30m') == '1h30m0s'",
        subtract
    ),
    kyverno!(
        "multiply",
        [Param::required("a", ANY), Param::required("b", ANY)],
        Type::Any,
        "Multiplies two numbers, or a quantity or duration by a number.",
        "multiply('100m', `3`) == '300m'",
        multiply
    ),
    kyverno!(
        "divide",
        [Param::required("a", ANY), Param::required("b", ANY)],
        Type::Any,
        "Divides a by b: a quantity or duration by a number, or two of the same kind (giving a number).",
        "divide('1Gi', '256Mi') == `4`",
        divide
    ),
    kyverno!(
        "modulo",
        [Param::required("a", ANY), Param::required("b", ANY)],
        Type::Any,
        "The remainder of a divided by b, for whole numbers, quantities or durations of the same kind.",
        "modulo('7s', '2s') == '1s'",
        modulo
    ),
    kyverno!(
        "round",
        [
            Param::required("value", NUMBER),
            Param::required("digits", NUMBER)
        ],
        Type::Number,
        "Rounds a number to the given count of decimal places, halves away from zero.",
        "round(`1.2345`, `2`) == `1.23`",
        round
    ),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

/// One operand, classified the way Kyverno does.
#[derive(Clone, Copy)]
enum Operand {
    Number(f64),
    Quantity(Quantity),
    Duration(Duration),
}

fn operand(value: &Value) -> Option<Operand> {
    match value {
        Value::Number(n) => n.as_f64().map(Operand::Number),
        Value::String(s) => Quantity::parse(s)
            .map(Operand::Quantity)
            .or_else(|_| Duration::parse(s).map(Operand::Duration))
            .ok(),
        _ => None,
    }
}

fn operands(call: &Call, name: &str) -> Result<(Operand, Operand), EvalError> {
    match (operand(call.value(0)), operand(call.value(1))) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(EvalError::function(name, "invalid operands")),
    }
}

fn mismatch(name: &str) -> EvalError {
    EvalError::function(name, "Types mismatch")
}

fn zero_divisor(name: &str) -> EvalError {
    EvalError::function(name, "Zero divisor passed")
}

fn overflow(name: &str) -> EvalError {
    EvalError::function(name, "result out of range")
}

fn text(s: impl ToString) -> Value {
    Value::String(s.to_string())
}

fn add(call: &mut Call) -> Result<Value, EvalError> {
    let (a, b) = operands(call, "add")?;
    add_operands(a, b, "add")
}

fn add_operands(a: Operand, b: Operand, name: &str) -> Result<Value, EvalError> {
    match (a, b) {
        (Operand::Quantity(a), Operand::Quantity(b)) => {
            a.checked_add(&b).map(text).ok_or_else(|| overflow(name))
        }
        (Operand::Duration(a), Operand::Duration(b)) => {
            Ok(text(Duration(a.nanos().wrapping_add(b.nanos()))))
        }
        (Operand::Number(a), Operand::Number(b)) => Ok(number(a + b)),
        _ => Err(mismatch(name)),
    }
}

/// Kyverno folds the array with `add`, feeding each result (a string for quantities and
/// durations) back in as the next left operand; a one-element array is returned as it is.
fn sum(call: &mut Call) -> Result<Value, EvalError> {
    let items = call.array(0)?;
    let Some((first, rest)) = items.split_first() else {
        return Err(EvalError::function(
            "sum",
            "at least one element in the array is required",
        ));
    };
    let mut total = first.clone();
    for item in rest {
        let (Some(a), Some(b)) = (operand(&total), operand(item)) else {
            return Err(EvalError::function("sum", "invalid operands"));
        };
        total = add_operands(a, b, "sum")?;
    }
    Ok(total)
}

fn subtract(call: &mut Call) -> Result<Value, EvalError> {
    let name = "subtract";
    match operands(call, name)? {
        (Operand::Quantity(a), Operand::Quantity(b)) => {
            a.checked_sub(&b).map(text).ok_or_else(|| overflow(name))
        }
        (Operand::Duration(a), Operand::Duration(b)) => {
            Ok(text(Duration(a.nanos().wrapping_sub(b.nanos()))))
        }
        (Operand::Number(a), Operand::Number(b)) => Ok(number(a - b)),
        _ => Err(mismatch(name)),
    }
}

fn multiply(call: &mut Call) -> Result<Value, EvalError> {
    let name = "multiply";
    match operands(call, name)? {
        (Operand::Number(a), Operand::Number(b)) => Ok(number(a * b)),
        (Operand::Quantity(q), Operand::Number(n)) | (Operand::Number(n), Operand::Quantity(q)) => {
            q.checked_mul_f64(n).map(text).ok_or_else(|| overflow(name))
        }
        (Operand::Duration(d), Operand::Number(n)) | (Operand::Number(n), Operand::Duration(d)) => {
            // Kyverno goes through float seconds, and so does this, rounding included.
            Ok(text(Duration::from_nanos_f64(
                d.seconds_f64() * n * SECOND as f64,
            )))
        }
        _ => Err(mismatch(name)),
    }
}

fn divide(call: &mut Call) -> Result<Value, EvalError> {
    let name = "divide";
    match operands(call, name)? {
        (Operand::Quantity(a), Operand::Quantity(b)) => {
            let divisor = b.as_approximate_f64();
            if divisor == 0.0 {
                return Err(zero_divisor(name));
            }
            Ok(number(a.as_approximate_f64() / divisor))
        }
        (Operand::Quantity(q), Operand::Number(n)) => {
            if n == 0.0 {
                return Err(zero_divisor(name));
            }
            q.checked_div_f64(n).map(text).ok_or_else(|| overflow(name))
        }
        (Operand::Duration(a), Operand::Duration(b)) => {
            if b.seconds_f64() == 0.0 {
                return Err(zero_divisor(name));
            }
            Ok(number(a.seconds_f64() / b.seconds_f64()))
        }
        (Operand::Duration(d), Operand::Number(n)) => {
            if n == 0.0 {
                return Err(zero_divisor(name));
            }
            Ok(text(Duration::from_nanos_f64(
                d.seconds_f64() / n * SECOND as f64,
            )))
        }
        (Operand::Number(a), Operand::Number(b)) => {
            if b == 0.0 {
                return Err(zero_divisor(name));
            }
            Ok(number(a / b))
        }
        _ => Err(mismatch(name)),
    }
}

/// A float as a whole `i64`, or `None` when it has a fraction. Go converts with `int64(f)` and
/// compares back, which is what this does; out-of-range floats saturate here, where Go's result
/// is platform-defined.
fn whole(f: f64) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    let i = f as i64;
    (i as f64 == f).then_some(i)
}

fn whole_pair(a: f64, b: f64, name: &str) -> Result<(i64, i64), EvalError> {
    let non_integer = || EvalError::function(name, "Non-integer argument(s) passed for modulo");
    let a = whole(a).ok_or_else(non_integer)?;
    let b = whole(b).ok_or_else(non_integer)?;
    if b == 0 {
        return Err(zero_divisor(name));
    }
    Ok((a, b))
}

fn modulo(call: &mut Call) -> Result<Value, EvalError> {
    let name = "modulo";
    match operands(call, name)? {
        (Operand::Quantity(a), Operand::Quantity(b)) => {
            let (x, y) = whole_pair(a.as_approximate_f64(), b.as_approximate_f64(), name)?;
            Ok(text(Quantity::from_int(x.wrapping_rem(y), a.format())))
        }
        (Operand::Duration(a), Operand::Duration(b)) => {
            if b.nanos() == 0 {
                return Err(zero_divisor(name));
            }
            Ok(text(Duration(a.nanos().wrapping_rem(b.nanos()))))
        }
        (Operand::Number(a), Operand::Number(b)) => {
            let (x, y) = whole_pair(a, b, name)?;
            Ok(number(x.wrapping_rem(y) as f64))
        }
        _ => Err(mismatch(name)),
    }
}

fn round(call: &mut Call) -> Result<Value, EvalError> {
    let name = "round";
    let value = call.number(0)?;
    let digits = call.number(1)?;
    let Some(digits) = whole(digits).filter(|_| digits.is_finite()) else {
        return Err(EvalError::function(
            name,
            "Non-integer argument(s) passed for round off",
        ));
    };
    if digits < 0 {
        // Kyverno formats this message without its two numbers, and Go prints the gaps so.
        return Err(EvalError::function(
            name,
            "%!d(MISSING) argument is out of bounds (%!d(MISSING))",
        ));
    }
    let shift: f64 = format!("1e{digits}").parse().unwrap_or(f64::INFINITY);
    Ok(number((value * shift).round() / shift))
}
