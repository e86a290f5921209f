//! Kyverno's time functions (`time_*`, `pkg/engine/jmespath/time.go`).
//!
//! Times are RFC 3339 strings; `time_parse` and `time_since` also read Go layouts such as
//! `2006-01-02 15:04:05 MST`, so this module carries its own reader of Go's reference-time
//! layouts (`Go's time.Parse`) and its own calendar arithmetic. Results are printed with Go's
//! `time.RFC3339` (whole seconds, `Z` for a zero offset). Kyverno runs in UTC containers; the
//! local time zone is taken as UTC here.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::duration::{Duration, SECOND, go_quote};
use crate::jmespath::{Dialect, ErrorKind, EvalError};

const STRING: &[Type] = &[Type::String];

macro_rules! kyverno {
    ($name:literal, $purity:expr, [$($param:expr),*], $returns:expr, $doc:literal, $example:literal, $imp:expr) => {
        FunctionDecl {
            name: $name,
            params: &[$($param),*],
            returns: $returns,
            purity: $purity,
            dialect: Dialect::Kyverno,
            doc: $doc,
            example: $example,
            implementation: $imp,
        }
    };
}

const PURE: Purity = Purity::Pure;

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!(
        "time_since",
        Purity::Impure,
        [
            Param::required("layout", STRING),
            Param::required("start", STRING),
            Param::required("end", STRING)
        ],
        Type::String,
        "The duration from start to end (now when end is ''), both read with the Go layout ('' means RFC 3339).",
        "time_since('', '2021-01-01T00:00:00Z', '2021-01-01T01:00:00Z') == '1h0m0s'",
        time_since
    ),
    kyverno!(
        "time_now",
        Purity::Impure,
        [],
        Type::String,
        "The current time in RFC 3339.",
        "time_after(time_now(), '2024-01-01T00:00:00Z') == `true`",
        time_now
    ),
    kyverno!(
        "time_now_utc",
        Purity::Impure,
        [],
        Type::String,
        "The current time in UTC, in RFC 3339.",
        "time_after(time_now_utc(), '2024-01-01T00:00:00Z') == `true`",
        time_now
    ),
    kyverno!(
        "time_add",
        PURE,
        [
            Param::required("time", STRING),
            Param::required("duration", STRING)
        ],
        Type::String,
        "Adds a Go duration to an RFC 3339 time.",
        "time_add('2021-01-01T00:00:00Z', '90m') == '2021-01-01T01:30:00Z'",
        time_add
    ),
    kyverno!(
        "time_parse",
        PURE,
        [
            Param::required("layout", STRING),
            Param::required("time", STRING)
        ],
        Type::String,
        "Reads a time with a Go layout (a number as layout means Unix seconds) and gives it in RFC 3339.",
        "time_parse('2006-01-02', '2021-03-04') == '2021-03-04T00:00:00Z'",
        time_parse
    ),
    kyverno!(
        "time_utc",
        PURE,
        [Param::required("time", STRING)],
        Type::String,
        "Converts an RFC 3339 time to UTC.",
        "time_utc('2021-01-01T02:00:00+02:00') == '2021-01-01T00:00:00Z'",
        time_utc
    ),
    kyverno!(
        "time_diff",
        PURE,
        [
            Param::required("start", STRING),
            Param::required("end", STRING)
        ],
        Type::String,
        "The duration from start to end, two RFC 3339 times.",
        "time_diff('2021-01-01T00:00:00Z', '2021-01-02T00:00:00Z') == '24h0m0s'",
        time_diff
    ),
    kyverno!(
        "time_before",
        PURE,
        [Param::required("a", STRING), Param::required("b", STRING)],
        Type::Boolean,
        "Whether time a is strictly before time b.",
        "time_before('2021-01-01T00:00:00Z', '2021-01-02T00:00:00Z') == `true`",
        time_before
    ),
    kyverno!(
        "time_after",
        PURE,
        [Param::required("a", STRING), Param::required("b", STRING)],
        Type::Boolean,
        "Whether time a is strictly after time b.",
        "time_after('2021-01-02T00:00:00Z', '2021-01-01T00:00:00Z') == `true`",
        time_after
    ),
    kyverno!(
        "time_between",
        PURE,
        [
            Param::required("time", STRING),
            Param::required("start", STRING),
            Param::required("end", STRING)
        ],
        Type::Boolean,
        "Whether a time is strictly between start and end.",
        "time_between('2021-01-02T00:00:00Z', '2021-01-01T00:00:00Z', '2021-01-03T00:00:00Z') == `true`",
        time_between
    ),
    kyverno!(
        "time_truncate",
        PURE,
        [
            Param::required("time", STRING),
            Param::required("duration", STRING)
        ],
        Type::String,
        "Rounds a time down to a multiple of the duration since year 1 (Go's Time.Truncate).",
        "time_truncate('2021-01-01T10:35:00Z', '1h') == '2021-01-01T10:00:00Z'",
        time_truncate
    ),
    kyverno!(
        "time_to_cron",
        PURE,
        [Param::required("time", STRING)],
        Type::String,
        "A cron schedule for the time: 'minute hour day month weekday'.",
        "time_to_cron('2021-03-04T05:06:00Z') == '6 5 4 3 4'",
        time_to_cron
    ),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

/// Go's error texts (from `time.Parse`, `time.ParseDuration`) are passed on without the
/// `JMESPath function` prefix, as Kyverno does.
fn raw(message: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::Function, message)
}

const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// An instant with the UTC offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    pub nanos: u32,
    /// Seconds east of UTC.
    pub offset: i32,
}

impl Time {
    fn total_nanos(&self) -> i128 {
        i128::from(self.unix) * i128::from(SECOND) + i128::from(self.nanos)
    }

    fn from_total_nanos(total: i128, offset: i32) -> Option<Time> {
        let second = i128::from(SECOND);
        let unix = i64::try_from(total.div_euclid(second)).ok()?;
        let nanos = u32::try_from(total.rem_euclid(second)).ok()?;
        Some(Time {
            unix,
            nanos,
            offset,
        })
    }

    fn now() -> Time {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            unix: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: since.subsec_nanos(),
            offset: 0,
        }
    }

    fn utc(self) -> Time {
        Time { offset: 0, ..self }
    }

    /// `Time.Sub`: the duration from `earlier` to `self`, saturating like Go.
    fn since(self, earlier: Time) -> Duration {
        let diff = self.total_nanos() - earlier.total_nanos();
        Duration(i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The civil date and time on the wall clock of the time's own offset.
    fn civil(&self) -> Civil {
        let local = i128::from(self.unix) + i128::from(self.offset);
        let days = local.div_euclid(86_400);
        let seconds = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (seconds / 3600) as u32,
            minute: (seconds % 3600 / 60) as u32,
            second: (seconds % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Go's `Format(time.RFC3339)`.
    pub fn rfc3339(&self) -> String {
        let c = self.civil();
        let year = if c.year < 0 {
            format!("-{:04}", -c.year)
        } else {
            format!("{:04}", c.year)
        };
        let zone = if self.offset == 0 {
            "Z".to_owned()
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
        };
        format!(
            "{year}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
            c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

struct Civil {
    year: i128,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 is Sunday.
    weekday: u32,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i128, month: u32, day: u32) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i128::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i128::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i128) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(month: u32, year: i128) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One element of a Go layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// A numeric zone: `iso` accepts `Z`; the shape is `-07`, `-0700`, `-07:00`, `-070000`, `-07:00:00`.
    NumTz {
        iso: bool,
        shape: TzShape,
    },
    /// `.000` (exact digits) or `.999` (optional, any digits).
    Frac {
        exact: bool,
        digits: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TzShape {
    Short,
    Plain,
    Colon,
    Seconds,
    ColonSeconds,
}

/// Go's `nextStdChunk`: the literal text before the first layout element, the element, and the
/// rest of the layout.
fn next_chunk(layout: &str) -> (&str, Option<(Std, &str)>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|rest| rest.starts_with(s));
    let lower_after = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b.get(i) {
            Some(b'J') if at(i, "January") => Some((Std::LongMonth, 7)),
            Some(b'J') if at(i, "Jan") && !lower_after(i + 3) => Some((Std::Month, 3)),
            Some(b'M') if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            Some(b'M') if at(i, "Mon") && !lower_after(i + 3) => Some((Std::WeekDay, 3)),
            Some(b'M') if at(i, "MST") => Some((Std::Tz, 3)),
            Some(b'0') => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            Some(b'1') if b.get(i + 1) == Some(&b'5') => Some((Std::Hour, 2)),
            Some(b'1') => Some((Std::NumMonth, 1)),
            Some(b'2') if at(i, "2006") => Some((Std::LongYear, 4)),
            Some(b'2') => Some((Std::Day, 1)),
            Some(b'_') if b.get(i + 1) == Some(&b'2') => {
                if at(i + 1, "2006") {
                    // `_2006` is a literal underscore followed by the year.
                    let prefix = layout.get(..i + 1).unwrap_or_default();
                    let rest = layout.get(i + 5..).unwrap_or_default();
                    return (prefix, Some((Std::LongYear, "2006")), rest);
                }
                Some((Std::UnderDay, 2))
            }
            Some(b'_') if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            Some(b'3') => Some((Std::Hour12, 1)),
            Some(b'4') => Some((Std::Minute, 1)),
            Some(b'5') => Some((Std::Second, 1)),
            Some(b'P') if b.get(i + 1) == Some(&b'M') => Some((Std::PM, 2)),
            Some(b'p') if b.get(i + 1) == Some(&b'm') => Some((Std::Pm, 2)),
            Some(&c @ (b'-' | b'Z')) => {
                let iso = c == b'Z';
                let shapes = [
                    ("070000", TzShape::Seconds),
                    ("07:00:00", TzShape::ColonSeconds),
                    ("0700", TzShape::Plain),
                    ("07:00", TzShape::Colon),
                    ("07", TzShape::Short),
                ];
                shapes
                    .iter()
                    .find(|(s, _)| at(i + 1, s))
                    .map(|(s, shape)| (Std::NumTz { iso, shape: *shape }, s.len() + 1))
            }
            Some(b'.' | b',') => match b.get(i + 1) {
                Some(&d @ (b'0' | b'9')) => {
                    let run = b
                        .get(i + 1..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|&&x| x == d)
                        .count();
                    let end = i + 1 + run;
                    if b.get(end).is_some_and(u8::is_ascii_digit) {
                        None
                    } else {
                        Some((
                            Std::Frac {
                                exact: d == b'0',
                                digits: run,
                            },
                            run + 1,
                        ))
                    }
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((std, len)) = found {
            let prefix = layout.get(..i).unwrap_or_default();
            let rest = layout.get(i + len..).unwrap_or_default();
            return (
                prefix,
                Some((std, layout.get(i..i + len).unwrap_or_default())),
                rest,
            );
        }
    }
    (layout, None, "")
}

/// A Go `time.ParseError`.
struct ParseError {
    layout: String,
    value: String,
    layout_elem: String,
    value_elem: String,
    message: String,
}

impl ParseError {
    fn text(&self) -> String {
        if self.message.is_empty() {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                go_quote(&self.value),
                go_quote(&self.layout),
                go_quote(&self.value_elem),
                go_quote(&self.layout_elem)
            )
        } else {
            format!("parsing time {}{}", go_quote(&self.value), self.message)
        }
    }
}

/// Consumes `prefix` from the start of `value`, a run of spaces matching any run of spaces.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while let Some(p) = prefix.chars().next() {
        if p == ' ' {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        let v = value.chars().next()?;
        if v != p {
            return None;
        }
        prefix = prefix.get(p.len_utf8()..).unwrap_or_default();
        value = value.get(v.len_utf8()..).unwrap_or_default();
    }
    Some(value)
}

fn digit(s: &str, i: usize) -> Option<u32> {
    s.as_bytes()
        .get(i)
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &str, fixed: bool) -> Option<(u32, &str)> {
    let first = digit(s, 0)?;
    match digit(s, 1) {
        Some(second) => Some((first * 10 + second, s.get(2..).unwrap_or_default())),
        None if fixed => None,
        None => Some((first, s.get(1..).unwrap_or_default())),
    }
}

/// Go's `getnum3`: one to three digits (exactly three when `fixed`).
fn getnum3(s: &str, fixed: bool) -> Option<(u32, &str)> {
    let mut n = 0;
    let mut len = 0;
    while len < 3 {
        let Some(d) = digit(s, len) else { break };
        n = n * 10 + d;
        len += 1;
    }
    if len == 0 || (fixed && len != 3) {
        return None;
    }
    Some((n, s.get(len..).unwrap_or_default()))
}

/// Case-insensitive (ASCII) lookup of a name at the start of `value`.
fn lookup<'v>(names: &[&str], value: &'v str) -> Option<(usize, &'v str)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let head = value.get(..name.len())?;
        head.eq_ignore_ascii_case(name)
            .then(|| (i, value.get(name.len()..).unwrap_or_default()))
    })
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `parseNanoseconds`: `value` starts with the separator; `len` counts it too.
fn parse_nanos(value: &str, len: usize) -> Option<u32> {
    let len = len.min(10);
    let digits = value.get(1..len)?;
    let mut ns: u32 = digits.parse().ok()?;
    for _ in 0..10 - len {
        ns *= 10;
    }
    Some(ns)
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn zone_name_len(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    if value.starts_with("GMT") {
        return Some(3 + signed_offset_len(value.get(3..).unwrap_or_default()));
    }
    if value.starts_with(['+', '-']) {
        return Some(signed_offset_len(value)).filter(|&n| n > 0);
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if b.get(3) == Some(&b'T') || value.starts_with("WITA") => Some(4),
        5 if b.get(4) == Some(&b'T') => Some(5),
        _ => None,
    }
}

/// Go's `parseSignedOffset`: `+h`/`-hh` within ±23, or 0 when there is none.
fn signed_offset_len(value: &str) -> usize {
    if !value.starts_with(['+', '-']) {
        return 0;
    }
    let digits = value.get(1..).unwrap_or_default();
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    match digits.get(..n).and_then(|d| d.parse::<u32>().ok()) {
        Some(hours) if n > 0 && hours <= 23 => 1 + n,
        _ => 0,
    }
}

/// Go's `time.Parse(layout, value)`, with the local zone taken as UTC.
pub fn parse_time(layout: &str, value: &str) -> Result<Time, String> {
    let fail = |layout_elem: &str, value_elem: &str, message: &str| {
        ParseError {
            layout: layout.to_owned(),
            value: value.to_owned(),
            layout_elem: layout_elem.to_owned(),
            value_elem: value_elem.to_owned(),
            message: message.to_owned(),
        }
        .text()
    };
    let (mut year, mut month, mut day, mut yday): (i128, i64, i64, i64) = (0, -1, -1, -1);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let (mut pm, mut am) = (false, false);
    let mut offset: Option<i32> = None;
    let mut zone_name = String::new();
    let mut rest_layout = layout;
    let mut v = value;
    loop {
        let (prefix, found, suffix) = next_chunk(rest_layout);
        v = skip(v, prefix).ok_or_else(|| fail(prefix, v, ""))?;
        let Some((std, std_text)) = found else {
            if !v.is_empty() {
                return Err(fail("", v, &format!(": extra text: {}", go_quote(v))));
            }
            break;
        };
        rest_layout = suffix;
        let hold = v;
        let mut range_error = "";
        let parsed: Option<&str> = match std {
            Std::Year => getnum(v, true).map(|(y, r)| {
                year = i128::from(if y >= 69 { y + 1900 } else { y + 2000 });
                r
            }),
            Std::LongYear => v
                .get(..4)
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .map(|d| {
                    year = d.parse().unwrap_or_default();
                    v.get(4..).unwrap_or_default()
                }),
            Std::Month | Std::LongMonth => {
                let short: Vec<&str> = LONG_MONTHS
                    .iter()
                    .map(|m| m.get(..3).unwrap_or_default())
                    .collect();
                let names: &[&str] = if std == Std::Month {
                    &short
                } else {
                    &LONG_MONTHS
                };
                lookup(names, v).map(|(i, r)| {
                    month = i as i64 + 1;
                    r
                })
            }
            Std::NumMonth | Std::ZeroMonth => getnum(v, std == Std::ZeroMonth).map(|(m, r)| {
                if m == 0 || m > 12 {
                    range_error = "month";
                }
                month = i64::from(m);
                r
            }),
            Std::WeekDay | Std::LongWeekDay => {
                let short: Vec<&str> = LONG_DAYS
                    .iter()
                    .map(|d| d.get(..3).unwrap_or_default())
                    .collect();
                let names: &[&str] = if std == Std::WeekDay {
                    &short
                } else {
                    &LONG_DAYS
                };
                lookup(names, v).map(|(_, r)| r)
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                let input = if std == Std::UnderDay {
                    v.strip_prefix(' ').unwrap_or(v)
                } else {
                    v
                };
                getnum(input, std == Std::ZeroDay).map(|(d, r)| {
                    day = i64::from(d);
                    r
                })
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                let mut input = v;
                if std == Std::UnderYearDay {
                    for _ in 0..2 {
                        input = input.strip_prefix(' ').unwrap_or(input);
                    }
                }
                getnum3(input, std == Std::ZeroYearDay).map(|(d, r)| {
                    yday = i64::from(d);
                    r
                })
            }
            Std::Hour => getnum(v, false).map(|(h, r)| {
                if h >= 24 {
                    range_error = "hour";
                }
                hour = h;
                r
            }),
            Std::Hour12 | Std::ZeroHour12 => getnum(v, std == Std::ZeroHour12).map(|(h, r)| {
                if h > 12 {
                    range_error = "hour";
                }
                hour = h;
                r
            }),
            Std::Minute | Std::ZeroMinute => getnum(v, std == Std::ZeroMinute).map(|(m, r)| {
                if m >= 60 {
                    range_error = "minute";
                }
                minute = m;
                r
            }),
            Std::Second | Std::ZeroSecond => match getnum(v, std == Std::ZeroSecond) {
                Some((s, r)) if s >= 60 => {
                    range_error = "second";
                    Some(r)
                }
                Some((s, mut r)) => {
                    second = s;
                    // Go accepts a fraction after the seconds even when the layout has none.
                    let has_fraction = r.starts_with(['.', ',']) && digit(r, 1).is_some();
                    let layout_has_fraction =
                        matches!(next_chunk(rest_layout).1, Some((Std::Frac { .. }, _)));
                    if has_fraction && !layout_has_fraction {
                        let n = 1 + r.bytes().skip(1).take_while(u8::is_ascii_digit).count();
                        match parse_nanos(r, n) {
                            Some(ns) => nanos = ns,
                            None => range_error = "fractional second",
                        }
                        r = r.get(n..).unwrap_or_default();
                    }
                    Some(r)
                }
                None => None,
            },
            Std::PM | Std::Pm => v.get(..2).and_then(|p| {
                let (upper_pm, upper_am) = if std == Std::PM {
                    ("PM", "AM")
                } else {
                    ("pm", "am")
                };
                if p == upper_pm {
                    pm = true;
                } else if p == upper_am {
                    am = true;
                } else {
                    return None;
                }
                v.get(2..)
            }),
            Std::NumTz { iso, shape } => {
                if iso && v.starts_with('Z') {
                    offset = Some(0);
                    v.get(1..)
                } else {
                    parse_numeric_zone(v, shape, &mut range_error).map(|(o, r)| {
                        offset = Some(o);
                        r
                    })
                }
            }
            Std::Tz => {
                if v.starts_with("UTC") {
                    offset = Some(0);
                    v.get(3..)
                } else {
                    zone_name_len(v).map(|n| {
                        zone_name = v.get(..n).unwrap_or_default().to_owned();
                        v.get(n..).unwrap_or_default()
                    })
                }
            }
            Std::Frac {
                exact: true,
                digits,
            } => {
                let n = digits + 1;
                (v.len() >= n)
                    .then(|| parse_nanos(v, n))
                    .flatten()
                    .map(|ns| {
                        nanos = ns;
                        v.get(n..).unwrap_or_default()
                    })
            }
            Std::Frac { exact: false, .. } => {
                if v.starts_with(['.', ',']) && digit(v, 1).is_some() {
                    let n = 1 + v.bytes().skip(1).take_while(u8::is_ascii_digit).count();
                    parse_nanos(v, n).map(|ns| {
                        nanos = ns;
                        v.get(n..).unwrap_or_default()
                    })
                } else {
                    Some(v)
                }
            }
        };
        if !range_error.is_empty() {
            let rest = parsed.unwrap_or(v);
            return Err(fail(
                std_text,
                rest,
                &format!(": {range_error} out of range"),
            ));
        }
        v = parsed.ok_or_else(|| fail(std_text, hold, ""))?;
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let leap = is_leap(year);
        let max = if leap { 366 } else { 365 };
        if yday < 1 || yday > max {
            return Err(fail("", v, ": day-of-year out of range"));
        }
        let jan1 = days_from_civil(year, 1, 1);
        let (_, m, d) = civil_from_days(jan1 + i128::from(yday) - 1);
        if month >= 0 && month != i64::from(m) {
            return Err(fail("", v, ": day-of-year does not match month"));
        }
        if day >= 0 && day != i64::from(d) {
            return Err(fail("", v, ": day-of-year does not match day"));
        }
        month = i64::from(m);
        day = i64::from(d);
    }
    let month = if month < 0 { 1 } else { month as u32 };
    let day = if day < 0 { 1 } else { day };
    if day < 1 || day > i64::from(days_in_month(month, year)) {
        return Err(fail("", v, ": day out of range"));
    }
    let offset = offset.unwrap_or_else(|| gmt_offset(&zone_name));
    let days = days_from_civil(year, month, day as u32);
    let local = days * 86_400 + i128::from(hour * 3600 + minute * 60 + second);
    let unix = i64::try_from(local - i128::from(offset))
        .map_err(|_| fail("", v, ": year out of range"))?;
    Ok(Time {
        unix,
        nanos,
        offset,
    })
}

/// The offset of a zone abbreviation: unknown names are UTC in Go (without a local zone that
/// knows them), except `GMT+h` and `GMT-h`.
fn gmt_offset(zone: &str) -> i32 {
    zone.strip_prefix("GMT")
        .and_then(|h| h.parse::<i32>().ok())
        .map_or(0, |h| h * 3600)
}

fn parse_numeric_zone<'v>(
    v: &'v str,
    shape: TzShape,
    range_error: &mut &'static str,
) -> Option<(i32, &'v str)> {
    let b = v.as_bytes();
    let (sign, hh, mm, ss, rest) = match shape {
        TzShape::Colon => {
            (b.len() >= 6 && b.get(3) == Some(&b':')).then_some(())?;
            (v.get(..1)?, v.get(1..3)?, v.get(4..6)?, "00", v.get(6..)?)
        }
        TzShape::Short => (v.get(..1)?, v.get(1..3)?, "00", "00", v.get(3..)?),
        TzShape::ColonSeconds => {
            (b.len() >= 9 && b.get(3) == Some(&b':') && b.get(6) == Some(&b':')).then_some(())?;
            (
                v.get(..1)?,
                v.get(1..3)?,
                v.get(4..6)?,
                v.get(7..9)?,
                v.get(9..)?,
            )
        }
        TzShape::Seconds => (
            v.get(..1)?,
            v.get(1..3)?,
            v.get(3..5)?,
            v.get(5..7)?,
            v.get(7..)?,
        ),
        TzShape::Plain => (v.get(..1)?, v.get(1..3)?, v.get(3..5)?, "00", v.get(5..)?),
    };
    let (h, _) = getnum(hh, true)?;
    let (m, _) = getnum(mm, true)?;
    let (s, _) = getnum(ss, true)?;
    if h > 24 {
        *range_error = "time zone offset hour";
    }
    if m > 60 {
        *range_error = "time zone offset minute";
    }
    if s > 60 {
        *range_error = "time zone offset second";
    }
    let magnitude = i32::try_from((h * 60 + m) * 60 + s).ok()?;
    match sign {
        "+" => Some((magnitude, rest)),
        "-" => Some((-magnitude, rest)),
        _ => None,
    }
}

fn rfc3339_arg(call: &Call, index: usize) -> Result<Time, EvalError> {
    parse_time(RFC3339, call.string(index)?).map_err(raw)
}

fn duration_arg(call: &Call, index: usize) -> Result<Duration, EvalError> {
    Duration::parse(call.string(index)?).map_err(|e| raw(e.to_string()))
}

fn text(s: String) -> Result<Value, EvalError> {
    Ok(Value::String(s))
}

fn time_since(call: &mut Call) -> Result<Value, EvalError> {
    let layout = match call.string(0)? {
        "" => RFC3339,
        layout => layout,
    };
    let start = parse_time(layout, call.string(1)?).map_err(raw)?;
    let end = match call.string(2)? {
        "" => Time::now(),
        end => parse_time(layout, end).map_err(raw)?,
    };
    text(end.since(start).to_string())
}

fn time_now(_: &mut Call) -> Result<Value, EvalError> {
    text(Time::now().rfc3339())
}

fn time_add(call: &mut Call) -> Result<Value, EvalError> {
    let time = rfc3339_arg(call, 0)?;
    let duration = duration_arg(call, 1)?;
    let moved = Time::from_total_nanos(
        time.total_nanos() + i128::from(duration.nanos()),
        time.offset,
    )
    .ok_or_else(|| raw("time out of range"))?;
    text(moved.rfc3339())
}

fn time_parse(call: &mut Call) -> Result<Value, EvalError> {
    let (layout, value) = (call.string(0)?, call.string(1)?);
    if go_parse_int(layout).is_ok() {
        // A numeric layout means the value is Unix seconds.
        let seconds = go_parse_int(value).map_err(raw)?;
        return text(
            Time {
                unix: seconds,
                nanos: 0,
                offset: 0,
            }
            .rfc3339(),
        );
    }
    text(parse_time(layout, value).map_err(raw)?.rfc3339())
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with its error texts.
fn go_parse_int(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

fn time_utc(call: &mut Call) -> Result<Value, EvalError> {
    text(rfc3339_arg(call, 0)?.utc().rfc3339())
}

fn time_diff(call: &mut Call) -> Result<Value, EvalError> {
    let start = rfc3339_arg(call, 0)?;
    let end = rfc3339_arg(call, 1)?;
    text(end.since(start).to_string())
}

fn time_before(call: &mut Call) -> Result<Value, EvalError> {
    let (a, b) = (rfc3339_arg(call, 0)?, rfc3339_arg(call, 1)?);
    Ok(Value::Bool(a.total_nanos() < b.total_nanos()))
}

fn time_after(call: &mut Call) -> Result<Value, EvalError> {
    let (a, b) = (rfc3339_arg(call, 0)?, rfc3339_arg(call, 1)?);
    Ok(Value::Bool(a.total_nanos() > b.total_nanos()))
}

fn time_between(call: &mut Call) -> Result<Value, EvalError> {
    let t = rfc3339_arg(call, 0)?.total_nanos();
    let start = rfc3339_arg(call, 1)?.total_nanos();
    let end = rfc3339_arg(call, 2)?.total_nanos();
    Ok(Value::Bool(t > start && t < end))
}

/// Seconds from 0001-01-01T00:00:00Z, Go's zero time, to the Unix epoch.
const ZERO_TO_UNIX: i128 = 62_135_596_800;

fn time_truncate(call: &mut Call) -> Result<Value, EvalError> {
    let time = rfc3339_arg(call, 0)?;
    let step = i128::from(duration_arg(call, 1)?.nanos());
    if step <= 0 {
        return text(time.rfc3339());
    }
    // Go truncates the absolute time since its zero time, not the wall clock.
    let since_zero = time.total_nanos() + ZERO_TO_UNIX * i128::from(SECOND);
    let truncated = time.total_nanos() - since_zero.rem_euclid(step);
    let result =
        Time::from_total_nanos(truncated, time.offset).ok_or_else(|| raw("time out of range"))?;
    text(result.rfc3339())
}

fn time_to_cron(call: &mut Call) -> Result<Value, EvalError> {
    let c = rfc3339_arg(call, 0)?.civil();
    text(format!(
        "{} {} {} {} {}",
        c.minute, c.hour, c.day, c.month, c.weekday
    ))
}
