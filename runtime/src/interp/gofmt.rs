//! Go's formatting of JSON values, where Kyverno's behaviour depends on it: messages (`%v`),
//! and the stringification that its pattern comparisons apply to numbers (`%f`, `%E`).

use serde_json::{Number, Value};

/// Go's `%v` of an untyped JSON value (`map[a:1 b:x]`, `[1 2]`, `<nil>`).
pub fn v(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value);
    out
}

fn write_v(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints map keys in sorted order.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_v(out, v);
                }
            }
            out.push(']');
        }
    }
}

/// `%v` of a number: integers in decimal, floats like Go's `strconv.FormatFloat(f, 'g', -1, 64)`
/// with `%v`'s exponent threshold of 21 digits.
pub fn number_v(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    float_g(n.as_f64().unwrap_or(0.0))
}

/// Go's `%v` for a float64: shortest representation, exponent form when the exponent is < -4 or
/// >= 21.
pub fn float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        // Rust's `Display` is the shortest round-trip decimal without an exponent.
        format!("{f}")
    } else {
        float_exp(f, 'e')
    }
}

/// Go's `strconv.FormatFloat(f, 'E', -1, 64)`: shortest digits, `d.dddE±dd`.
pub fn float_e(f: f64) -> String {
    float_exp(f, 'E')
}

fn float_exp(f: f64, letter: char) -> String {
    if !f.is_finite() {
        return float_g(f);
    }
    // Rust's `{:e}` gives the shortest round-trip mantissa, e.g. `1.5e0`; Go writes the
    // exponent with a sign and at least two digits.
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}{letter}{sign}{:02}", exp.abs())
}

/// Go's `fmt.Sprintf("%f", f)`: six decimals.
pub fn float_f(f: f64) -> String {
    format!("{f:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_like_go() {
        assert_eq!(float_e(1.5), "1.5E+00");
        assert_eq!(float_e(100.0), "1E+02");
        assert_eq!(float_e(0.00025), "2.5E-04");
        assert_eq!(float_f(1.5), "1.500000");
        assert_eq!(float_g(1.5), "1.5");
        assert_eq!(float_g(1e21), "1e+21");
        assert_eq!(float_g(0.0001), "0.0001");
        assert_eq!(float_g(0.00001), "1e-05");
        assert_eq!(v(&json!({"b": [1, "x"], "a": null})), "map[a:<nil> b:[1 x]]");
    }
}
