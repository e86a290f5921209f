//! Kubernetes `resource.Quantity`: parsing, exact comparison, arithmetic and canonical printing.
//!
//! A quantity is held exactly as a count of nano-units in an `i128`: Kubernetes rounds every
//! parsed value up to the nano, so nothing is lost, and no floating point is involved. The range
//! (about ±1.7e29 units) covers every realistic resource amount; a value beyond it, or one that
//! needs more than 38 significant digits, is rejected where Kubernetes would switch to arbitrary
//! precision.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity prints, taken from the suffix it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `1e3`, `5E-2`.
    DecimalExponent,
    /// `Ki Mi Gi Ti Pi Ei`.
    BinarySI,
    /// `n u m k M G T P E` or no suffix.
    DecimalSI,
}

/// Why a string is not a quantity; the texts are Kubernetes' error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// The text does not have the shape of a quantity.
    Format,
    /// The suffix is not one Kubernetes knows.
    Suffix,
    /// The number does not fit (see the module documentation).
    Numeric,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantityError::Format => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::Suffix => "unable to parse quantity's suffix",
            QuantityError::Numeric => "unable to parse numeric part of quantity",
        })
    }
}

impl std::error::Error for QuantityError {}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Kubernetes caps binary-suffixed quantities at the largest int64.
const MAX_BINARY_NANOS: i128 = (i64::MAX as i128) * NANOS_PER_UNIT;

/// An exact resource quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
    /// The decimal scale (digits after the point, negative for trailing zeros) of the number as
    /// Kubernetes stores it after parsing. Kyverno's `divide` rounds its result to this scale, so
    /// it has to be known; values computed here carry the nano scale.
    scale: i32,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

/// The pieces of a quantity's text, as Kubernetes' `parseQuantityString` splits it.
struct Parts<'a> {
    negative: bool,
    /// Whole-number digits without leading zeros (may be empty for zero).
    whole: &'a str,
    /// Digits after the point.
    fraction: &'a str,
    suffix: &'a str,
}

impl Quantity {
    /// Parses a quantity like `500m`, `1.5Gi`, `1e3`, `-2k` or `5`.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Format);
        }
        let parts = split(text)?;
        let (base, exponent, format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        let (magnitude, scale) = exact_nanos(&parts, base, exponent)?;
        let mut format = format;
        let mut magnitude = magnitude;
        if format == Format::BinarySI && magnitude > MAX_BINARY_NANOS {
            magnitude = MAX_BINARY_NANOS;
        }
        if format == Format::BinarySI && magnitude > 0 && magnitude < NANOS_PER_UNIT {
            // Kubernetes prints fractions of one as decimals rather than round them.
            format = Format::DecimalSI;
        }
        let nanos = if parts.negative {
            -magnitude
        } else {
            magnitude
        };
        Ok(Quantity {
            nanos,
            format,
            scale,
        })
    }

    /// A whole-number quantity, as Kubernetes' `NewQuantity`.
    pub fn from_int(value: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(value) * NANOS_PER_UNIT,
            format,
            scale: 0,
        }
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// `self + other`, keeping `self`'s format unless `self` is zero (Kubernetes' `Add`).
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        Some(self.combined(other, nanos))
    }

    /// `self - other`, with the same format rule as [`Quantity::checked_add`].
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_sub(other.nanos)?;
        Some(self.combined(other, nanos))
    }

    fn combined(&self, other: &Quantity, nanos: i128) -> Quantity {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Quantity {
            nanos,
            format,
            scale: 9,
        }
    }

    /// `self × factor`, the factor taken as the shortest decimal that prints as it (which is how
    /// Kyverno turns a JSON number into a quantity). Digits below the nano are dropped.
    pub fn checked_mul_f64(&self, factor: f64) -> Option<Quantity> {
        let factor = Decimal::from_f64(factor)?;
        let product = self.nanos.checked_mul(factor.digits)?;
        let nanos = scale_by_pow10(product, -factor.scale, Rounding::TowardZero)?;
        Some(Quantity {
            nanos,
            format: self.format,
            scale: 9,
        })
    }

    /// `self ÷ divisor` as Kyverno's `divide` computes it: the quotient is rounded toward zero at
    /// the larger of the two operands' decimal scales. `None` for a zero or non-finite divisor.
    pub fn checked_div_f64(&self, divisor: f64) -> Option<Quantity> {
        let divisor = Decimal::from_f64(divisor)?;
        if divisor.digits == 0 {
            return None;
        }
        let scale = self.scale.max(divisor.scale);
        // quotient = (nanos / 1e9) / (digits / 10^dscale), kept at `scale` digits:
        // quotient_at_scale = nanos * 10^(dscale + scale - 9) / digits.
        let shift = divisor.scale + scale - 9;
        let numerator = if shift >= 0 {
            self.nanos.checked_mul(pow10(shift)?)?
        } else {
            self.nanos / pow10(-shift)?
        };
        let at_scale = numerator / divisor.digits;
        let nanos = scale_by_pow10(at_scale, 9 - scale, Rounding::TowardZero)?;
        Some(Quantity {
            nanos,
            format: self.format,
            scale: 9,
        })
    }

    /// The value as a float, computed like Kubernetes' `AsApproximateFloat64`: the stored digits
    /// times a power of ten.
    pub fn as_approximate_f64(&self) -> f64 {
        let shift = 9 - self.scale;
        let unscaled = if shift >= 0 {
            pow10(shift).map_or(0, |p| self.nanos / p)
        } else {
            self.nanos
        };
        let base = unscaled as f64;
        match self.scale.cmp(&0) {
            Ordering::Equal => base,
            Ordering::Less => base * powi10(-self.scale),
            Ordering::Greater => base * (1.0 / powi10(self.scale)),
        }
    }

    /// The canonical text, as Kubernetes' `Quantity.String()` prints a computed quantity.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_owned();
        }
        let whole_units = self.nanos % NANOS_PER_UNIT == 0;
        let small = self.nanos.abs() < 1024 * NANOS_PER_UNIT;
        if self.format == Format::BinarySI && whole_units && !small {
            let (mantissa, power) = remove_factors(self.nanos / NANOS_PER_UNIT, 1024, 6);
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(power as usize)
                .copied()
                .unwrap_or_default();
            return format!("{mantissa}{suffix}");
        }
        let (mut mantissa, removed) = remove_factors(self.nanos, 10, 60);
        let mut exponent = removed as i32 - 9;
        // Kubernetes lowers the exponent to a multiple of three.
        while exponent.rem_euclid(3) != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        match self.format {
            Format::DecimalExponent if exponent == 0 => mantissa.to_string(),
            Format::DecimalExponent => format!("{mantissa}e{exponent}"),
            _ => {
                while exponent > 18 {
                    mantissa *= 1000;
                    exponent -= 3;
                }
                let suffix = match exponent {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                };
                format!("{mantissa}{suffix}")
            }
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Splits the text like Kubernetes' `parseQuantityString`, including its leniencies: `.5`, `5.`,
/// `+`, `-` and `.` are all accepted (the last three as zero).
fn split(text: &str) -> Result<Parts<'_>, QuantityError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let rest = rest.trim_start_matches('0');
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (whole, rest) = rest.split_at(digits_end);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            after.split_at(end)
        }
        None => ("", rest),
    };
    // The suffix is letters from a fixed set, then an optional sign and digits (an exponent).
    let letters_end = rest
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(rest.len());
    let (_, after_letters) = rest.split_at(letters_end);
    let after_sign = after_letters
        .strip_prefix(['+', '-'])
        .unwrap_or(after_letters);
    if !after_sign.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        negative,
        whole,
        fraction,
        suffix: rest,
    })
}

/// The base (10 or 2), exponent and format a suffix stands for.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |exponent| Some((10, exponent, Format::DecimalSI));
    let binary = |exponent| Some((2, exponent, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let digits = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let exponent: i32 = digits.parse().ok()?;
            Some((10, exponent, Format::DecimalExponent))
        }
    }
}

/// The magnitude in nano-units, rounded up to the nano like Kubernetes, and the decimal scale
/// Kubernetes would store the number at.
fn exact_nanos(parts: &Parts<'_>, base: u32, exponent: i32) -> Result<(i128, i32), QuantityError> {
    let digits = format!("{}{}", parts.whole, parts.fraction);
    let significant = digits.trim_start_matches('0');
    let fraction_len = i32::try_from(parts.fraction.len()).map_err(|_| QuantityError::Numeric)?;
    if significant.is_empty() {
        return Ok((0, 0));
    }
    // Trailing zeros carry no value; dropping them keeps long inputs like `1.000000000000` exact.
    let trimmed = significant.trim_end_matches('0');
    let dropped =
        i32::try_from(significant.len() - trimmed.len()).map_err(|_| QuantityError::Numeric)?;
    let mantissa: i128 = trimmed.parse().map_err(|_| QuantityError::Numeric)?;
    let (decimal_exponent, binary_exponent) = if base == 2 {
        (0, exponent)
    } else {
        (exponent, 0)
    };
    let multiplier = 1i128
        .checked_shl(binary_exponent.unsigned_abs())
        .ok_or(QuantityError::Numeric)?;
    let value = mantissa
        .checked_mul(multiplier)
        .ok_or(QuantityError::Numeric)?;
    let power = decimal_exponent + dropped - fraction_len + 9;
    let nanos =
        scale_by_pow10(value, power, Rounding::AwayFromZero).ok_or(QuantityError::Numeric)?;
    // Kubernetes keeps short numbers as an int64 with the written scale, and longer or finer ones
    // as a decimal rounded to the nano.
    let written_scale = if base == 2 {
        0
    } else {
        fraction_len - exponent
    };
    let num_len = parts.whole.len().max(1);
    let fast = if base == 2 {
        // Kubernetes' int64 fast path for binary suffixes: whole numbers with room to spare.
        parts.fraction.is_empty() && num_len as i32 + exponent * 3 / 10 < 15
    } else {
        num_len + parts.fraction.len() <= 18 && written_scale <= 9
    };
    Ok((nanos, if fast { written_scale } else { 9 }))
}

#[derive(Clone, Copy)]
enum Rounding {
    TowardZero,
    AwayFromZero,
}

/// `value × 10^power`, rounding when the power is negative; `None` on overflow.
fn scale_by_pow10(value: i128, power: i32, rounding: Rounding) -> Option<i128> {
    if power >= 0 {
        return value.checked_mul(pow10(power)?);
    }
    let Some(divisor) = pow10(-power) else {
        // The value is far below one nano.
        return Some(match rounding {
            Rounding::TowardZero => 0,
            Rounding::AwayFromZero => value.signum(),
        });
    };
    let quotient = value / divisor;
    let exact = value % divisor == 0;
    Some(match rounding {
        Rounding::AwayFromZero if !exact => quotient + value.signum(),
        _ => quotient,
    })
}

fn pow10(power: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(power).ok()?)
}

fn powi10(power: i32) -> f64 {
    // Parsing is correctly rounded, which matches Go's exact power-of-ten tables.
    format!("1e{power}").parse().unwrap_or(f64::INFINITY)
}

/// Divides out `factor` while it divides evenly, at most `limit` times.
fn remove_factors(mut value: i128, factor: i128, limit: u32) -> (i128, u32) {
    let mut count = 0;
    while count < limit && value != 0 && value % factor == 0 {
        value /= factor;
        count += 1;
    }
    (value, count)
}

/// A finite float as exact decimal digits: `digits × 10^-scale`, from the shortest text that
/// reads back as the same float (Rust's `Display`, which prints no exponent).
struct Decimal {
    digits: i128,
    scale: i32,
}

impl Decimal {
    fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        let text = value.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
        let mut scale = i32::try_from(fraction.len()).ok()?;
        let (digits, zeros) = remove_factors(digits, 10, 40);
        scale -= zeros as i32;
        // Go formats the float with `%v` and Kubernetes parses that text. `%v` switches to an
        // exponent only from 1e6 up, so below that a whole number keeps scale zero.
        let significant = i32::try_from(digits.unsigned_abs().to_string().len()).ok()?;
        let leading_exponent = significant - 1 - scale;
        if scale < 0 && leading_exponent < 6 {
            let back = pow10(-scale)?;
            return Some(Decimal {
                digits: digits.checked_mul(back)?,
                scale: 0,
            });
        }
        Some(Decimal { digits, scale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_scale_of_floats() {
        let d = |v: f64| {
            let d = Decimal::from_f64(v).map(|d| (d.digits, d.scale));
            d.unwrap_or((0, 99))
        };
        assert_eq!(d(3.0), (3, 0));
        assert_eq!(d(30.0), (30, 0));
        assert_eq!(d(0.25), (25, 2));
    }
}
