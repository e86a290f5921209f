//! Go's `time.Duration`: parsing exactly like `time.ParseDuration` and printing like
//! `Duration.String()`, because Kyverno compares and prints durations through them.

use std::fmt;

/// A signed count of nanoseconds, as Go's `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

pub const NANOSECOND: i64 = 1;
pub const MICROSECOND: i64 = 1_000;
pub const MILLISECOND: i64 = 1_000_000;
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// Why a duration did not parse; the text is Go's error message, word for word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// The largest magnitude Go accepts before the sign is applied: 2^63 (so `-2562047h47m16.854775808s`
/// parses but the same without the sign does not).
const MAGNITUDE_LIMIT: u64 = 1 << 63;

impl Duration {
    /// Parses a duration like `1h30m`, `1.5s`, `-300ms` or `2µs`, with Go's rules: a sequence of
    /// decimal numbers with units `ns us µs ms s m h`; a bare `0` is allowed; overflow is an error.
    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let invalid = || DurationError(format!("time: invalid duration {}", go_quote(text)));
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or_default()),
            Some(b'+') => (false, text.get(1..).unwrap_or_default()),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
                return Err(invalid());
            }
            let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
            let has_whole = after_whole.len() != rest.len();
            rest = after_whole;
            let mut fraction = (0u64, 1f64);
            let mut has_fraction = false;
            if let Some(after_dot) = rest.strip_prefix('.') {
                let (digits, scale, after_fraction) = leading_fraction(after_dot);
                has_fraction = after_fraction.len() != after_dot.len();
                fraction = (digits, scale);
                rest = after_fraction;
            }
            if !has_whole && !has_fraction {
                return Err(invalid());
            }
            let unit_len = rest
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(rest.len());
            if unit_len == 0 {
                return Err(DurationError(format!(
                    "time: missing unit in duration {}",
                    go_quote(text)
                )));
            }
            let (unit_text, after_unit) = rest.split_at(unit_len);
            rest = after_unit;
            let Some(unit) = unit_nanos(unit_text) else {
                return Err(DurationError(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit_text),
                    go_quote(text)
                )));
            };
            if whole > MAGNITUDE_LIMIT / unit {
                return Err(invalid());
            }
            let mut value = whole * unit;
            let (digits, scale) = fraction;
            if digits > 0 {
                // Go computes the fractional part in float64, which is exact to the nanosecond
                // for every unit up to hours; the truncating cast is Go's too.
                value += (digits as f64 * (unit as f64 / scale)) as u64;
                if value > MAGNITUDE_LIMIT {
                    return Err(invalid());
                }
            }
            total = total
                .checked_add(value)
                .filter(|t| *t <= MAGNITUDE_LIMIT)
                .ok_or_else(invalid)?;
        }
        if negative {
            // 2^63 negated is exactly i64::MIN.
            return Ok(Duration(0i64.wrapping_sub_unsigned(total)));
        }
        i64::try_from(total).map(Duration).map_err(|_| invalid())
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// The duration in seconds as a float, as Go's `Duration.Seconds()`.
    pub fn seconds_f64(self) -> f64 {
        let whole = self.0 / SECOND;
        let fraction = self.0 % SECOND;
        whole as f64 + fraction as f64 / 1e9
    }

    /// Go's `time.Duration(f)` conversion of a float nanosecond count: truncation toward zero,
    /// saturating where Go's behaviour is platform-defined (out of range or NaN).
    pub fn from_nanos_f64(nanos: f64) -> Duration {
        if nanos.is_nan() {
            return Duration(i64::MIN);
        }
        Duration(nanos as i64)
    }
}

fn unit_nanos(unit: &str) -> Option<u64> {
    let nanos = match unit {
        "ns" => NANOSECOND,
        // U+00B5 (micro sign) and U+03BC (Greek small mu) are both accepted, as in Go.
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    };
    Some(nanos.unsigned_abs())
}

/// Consumes leading decimal digits; `None` when they overflow 2^63, as Go's `leadingInt`.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let mut value: u64 = 0;
    for d in digits.bytes() {
        if value > MAGNITUDE_LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(d - b'0');
        if value > MAGNITUDE_LIMIT {
            return None;
        }
    }
    Some((value, rest))
}

/// Consumes the digits after a decimal point, keeping as many as fit (Go's `leadingFraction`):
/// the value of the fraction is `digits / scale`.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let mut value: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    for d in digits.bytes() {
        if overflow {
            continue;
        }
        if value > (MAGNITUDE_LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(d - b'0');
        if next > MAGNITUDE_LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, rest)
}

/// Go's `time` package quoting: ASCII printable characters as they are (with `"` and `\`
/// escaped), every byte of anything else as `\xNN`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' && c != '\u{7f}' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else if c.is_ascii() && c != '\u{7f}' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else if c == '\u{7f}' {
            out.push('\u{7f}');
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Duration {
    /// Go's `Duration.String()`: `1h30m0s`, `1.5s`, `100ms`, `2µs`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.unsigned_abs();
        let mut out = String::new();
        if self.0 < 0 {
            out.push('-');
        }
        let second = SECOND.unsigned_abs();
        if magnitude < second {
            let (precision, unit) = if magnitude == 0 {
                return f.write_str("0s");
            } else if magnitude < MICROSECOND.unsigned_abs() {
                (0, "ns")
            } else if magnitude < MILLISECOND.unsigned_abs() {
                (3, "\u{b5}s")
            } else {
                (6, "ms")
            };
            out.push_str(&with_fraction(magnitude, precision));
            out.push_str(unit);
        } else {
            let seconds = magnitude / second;
            let fraction = with_fraction(magnitude % second, 9);
            let minutes = seconds / 60;
            let hours = minutes / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if minutes > 0 {
                out.push_str(&format!("{}m", minutes % 60));
            }
            out.push_str(&format!("{}", seconds % 60));
            // `with_fraction` of the sub-second part prints "0" or "0.xxx"; keep only the fraction.
            out.push_str(fraction.strip_prefix('0').unwrap_or_default());
            out.push('s');
        }
        f.write_str(&out)
    }
}

/// Prints `value / 10^precision` with the fraction's trailing zeros (and a bare point) removed.
fn with_fraction(value: u64, precision: u32) -> String {
    let scale = 10u64.pow(precision);
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_round_trip() {
        let min = Duration::parse("-2562047h47m16.854775808s");
        assert_eq!(min, Ok(Duration(i64::MIN)));
        assert_eq!(Duration(i64::MIN).to_string(), "-2562047h47m16.854775808s");
        assert!(Duration::parse("2562047h47m16.854775808s").is_err());
    }
}
