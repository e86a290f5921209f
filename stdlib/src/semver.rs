//! Semantic versions and ranges with the rules of `blang/semver/v4`, which Kyverno's
//! `semver_compare` and the numeric pattern operators use.
//!
//! Versions are parsed strictly (`Parse`, not `ParseTolerant`): exactly `major.minor.patch`, no
//! `v` prefix, no leading zeros. Ranges are blang's: comparators `= == != ! > >= < <=` (none
//! means equality), space-separated terms are ANDed, `||` ORs groups, and a trailing `x`
//! wildcard (`1.x`, `1.2.x`, `>=1.x`) is expanded the way blang expands it, including its
//! surprising `!=1.x` (which can never match, because the two halves are ANDed).

use std::cmp::Ordering;
use std::fmt;

/// A parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<PreRelease>,
    pub build: Vec<String>,
}

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreRelease {
    Numeric(u64),
    Alpha(String),
}

/// Why a version or range did not parse; the texts follow blang's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverError(pub String);

impl fmt::Display for SemverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SemverError {}

fn error(message: impl Into<String>) -> SemverError {
    SemverError(message.into())
}

fn only_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn only_alphanumeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn leading_zero(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

/// Go's `strconv.ParseUint(s, 10, 64)`, with its messages.
fn parse_u64(s: &str) -> Result<u64, SemverError> {
    if s.is_empty() || !only_digits(s) {
        return Err(error(format!(
            "strconv.ParseUint: parsing {s:?}: invalid syntax"
        )));
    }
    s.parse().map_err(|_| {
        error(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        ))
    })
}

fn number(s: &str, name: &str) -> Result<u64, SemverError> {
    if !only_digits(s) {
        return Err(error(format!(
            "Invalid character(s) found in {name} number {s:?}"
        )));
    }
    if leading_zero(s) {
        let capitalised = match name {
            "major" => "Major",
            "minor" => "Minor",
            _ => "Patch",
        };
        return Err(error(format!(
            "{capitalised} number must not contain leading zeroes {s:?}"
        )));
    }
    parse_u64(s)
}

impl Version {
    /// Parses `1.2.3`, `1.2.3-rc.1`, `1.2.3+build.5` strictly.
    pub fn parse(text: &str) -> Result<Version, SemverError> {
        if text.is_empty() {
            return Err(error("Version string empty"));
        }
        let mut parts = text.splitn(3, '.');
        let (Some(major), Some(minor), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(error("No Major.Minor.Patch elements found"));
        };
        let major = number(major, "major")?;
        let minor = number(minor, "minor")?;
        let (rest, build) = match rest.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (rest, None),
        };
        let (patch, pre) = match rest.split_once('-') {
            Some((patch, pre)) => (patch, Some(pre)),
            None => (rest, None),
        };
        let patch = number(patch, "patch")?;
        let pre = match pre {
            Some(pre) => pre
                .split('.')
                .map(PreRelease::parse)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let build = match build {
            Some(build) => build
                .split('.')
                .map(|id| {
                    if id.is_empty() {
                        Err(error("Build meta data is empty"))
                    } else if !only_alphanumeric(id) {
                        Err(error(format!(
                            "Invalid character(s) found in build meta data {id:?}"
                        )))
                    } else {
                        Ok(id.to_owned())
                    }
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// `0.0.0`, what Kyverno compares when the version text does not parse.
    pub fn zero() -> Version {
        Version {
            major: 0,
            minor: 0,
            patch: 0,
            pre: Vec::new(),
            build: Vec::new(),
        }
    }
}

impl PreRelease {
    fn parse(id: &str) -> Result<PreRelease, SemverError> {
        if id.is_empty() {
            return Err(error("Prerelease is empty"));
        }
        if only_digits(id) {
            if leading_zero(id) {
                return Err(error(format!(
                    "Numeric PreRelease version must not contain leading zeroes {id:?}"
                )));
            }
            return parse_u64(id).map(PreRelease::Numeric);
        }
        if only_alphanumeric(id) {
            return Ok(PreRelease::Alpha(id.to_owned()));
        }
        Err(error(format!(
            "Invalid character(s) found in prerelease {id:?}"
        )))
    }
}

impl Ord for PreRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PreRelease::Numeric(a), PreRelease::Numeric(b)) => a.cmp(b),
            (PreRelease::Alpha(a), PreRelease::Alpha(b)) => a.cmp(b),
            (PreRelease::Numeric(_), PreRelease::Alpha(_)) => Ordering::Less,
            (PreRelease::Alpha(_), PreRelease::Numeric(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for PreRelease {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Version {
    /// Precedence as semver defines it; build metadata is ignored.
    pub fn compare(&self, other: &Version) -> Ordering {
        let core =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, pre) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match pre {
                PreRelease::Numeric(n) => write!(f, "{n}")?,
                PreRelease::Alpha(s) => f.write_str(s)?,
            }
        }
        for (i, build) in self.build.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "." })?;
            f.write_str(build)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Comparator {
    fn parse(op: &str) -> Option<Comparator> {
        Some(match op {
            "" | "=" | "==" => Comparator::Eq,
            "!" | "!=" => Comparator::Ne,
            ">" => Comparator::Gt,
            ">=" => Comparator::Ge,
            "<" => Comparator::Lt,
            "<=" => Comparator::Le,
            _ => return None,
        })
    }

    fn holds(self, order: Ordering) -> bool {
        match self {
            Comparator::Eq => order == Ordering::Equal,
            Comparator::Ne => order != Ordering::Equal,
            Comparator::Gt => order == Ordering::Greater,
            Comparator::Ge => order != Ordering::Less,
            Comparator::Lt => order == Ordering::Less,
            Comparator::Le => order != Ordering::Greater,
        }
    }
}

/// A version range: an OR of ANDs of comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    any_of: Vec<Vec<(Comparator, Version)>>,
}

impl Range {
    /// Parses a range such as `>=1.0.0 <2.0.0 || 3.x`.
    pub fn parse(text: &str) -> Result<Range, SemverError> {
        let terms = split_and_trim(text);
        let groups = split_or(&terms)?;
        let mut any_of = Vec::with_capacity(groups.len());
        for group in groups {
            let mut all_of = Vec::new();
            for term in expand_wildcards(group)? {
                let (op, version) = split_comparator(&term)?;
                let comparator = Comparator::parse(op).ok_or_else(|| {
                    error(format!(
                        "Could not parse Range {term:?}: Could not parse comparator {op:?} in {term:?}"
                    ))
                })?;
                let version = Version::parse(version).map_err(|e| {
                    error(format!(
                        "Could not parse Range {term:?}: Could not parse version {version:?} in {term:?}: {e}"
                    ))
                })?;
                all_of.push((comparator, version));
            }
            any_of.push(all_of);
        }
        Ok(Range { any_of })
    }

    /// Whether `version` is in the range.
    pub fn matches(&self, version: &Version) -> bool {
        self.any_of.iter().any(|all_of| {
            all_of
                .iter()
                .all(|(comparator, bound)| comparator.holds(version.compare(bound)))
        })
    }
}

/// Splits at spaces, except spaces that follow an operator character (so `>= 1.0.0` is one term),
/// then removes the spaces inside each term.
fn split_and_trim(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut result = Vec::new();
    let mut last = 0usize;
    let mut last_char = 0u8;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' && !matches!(last_char, b'>' | b'<' | b'=') {
            if last + 1 < i {
                result.push(text.get(last..i).unwrap_or_default().to_owned());
            }
            last = i + 1;
        } else if b != b' ' {
            last_char = b;
        }
    }
    if last + 1 < text.len() {
        result.push(text.get(last..).unwrap_or_default().to_owned());
    }
    result.into_iter().map(|t| t.replace(' ', "")).collect()
}

fn split_or(terms: &[String]) -> Result<Vec<&[String]>, SemverError> {
    let mut groups = Vec::new();
    let mut last = 0usize;
    for (i, term) in terms.iter().enumerate() {
        if term == "||" {
            if i == 0 {
                return Err(error("First element in range is '||'"));
            }
            groups.push(terms.get(last..i).unwrap_or_default());
            last = i + 1;
        }
    }
    if last == terms.len() {
        return Err(error("Last element in range is '||'"));
    }
    groups.push(terms.get(last..).unwrap_or_default());
    Ok(groups)
}

/// Splits `>=1.2.3` into the operator and the version: the version starts at the first digit.
fn split_comparator(term: &str) -> Result<(&str, &str), SemverError> {
    let at = term
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| error(format!("Could not get version from string: {term:?}")))?;
    let (op, version) = term.split_at(at);
    Ok((op.trim(), version))
}

/// blang's expansion of `x` wildcards into plain comparisons.
fn expand_wildcards(group: &[String]) -> Result<Vec<String>, SemverError> {
    let mut terms = Vec::new();
    for term in group {
        if !term.contains('x') {
            terms.push(term.clone());
            continue;
        }
        let (op, version) = split_comparator(term)?;
        let parts: Vec<&str> = version.split('.').collect();
        // Only a final `x` counts: `1.x` is a minor wildcard, `1.2.x` a patch wildcard.
        let wildcard = match (parts.len(), parts.last()) {
            (2, Some(&"x")) => Wildcard::Minor,
            (3, Some(&"x")) => Wildcard::Patch,
            _ => Wildcard::None,
        };
        let flat = flatten_wildcard(version);
        let (result_op, increment) = match op {
            ">" => (">=", true),
            ">=" => (">=", false),
            "<" => ("<", false),
            "<=" => ("<", true),
            "" | "=" | "==" => {
                terms.push(format!(">={flat}"));
                ("<", true)
            }
            "!=" | "!" => {
                terms.push(format!("<{flat}"));
                (">=", true)
            }
            // blang leaves an unknown operator without a result operator.
            _ => ("", false),
        };
        let result_version = if increment {
            match wildcard {
                Wildcard::Patch => increment_part(&flat, 1),
                Wildcard::Minor => increment_part(&flat, 0),
                Wildcard::None => String::new(),
            }
        } else {
            flat
        };
        terms.push(format!("{result_op}{result_version}"));
    }
    Ok(terms)
}

enum Wildcard {
    None,
    Minor,
    Patch,
}

/// `1.x` and `1.x.x` become `1.0.0`, `1.2.x` becomes `1.2.0`.
fn flatten_wildcard(version: &str) -> String {
    let flat = version.replacen(".x.x", ".x", 1).replacen(".x", ".0", 1);
    if flat.split('.').count() == 2 {
        format!("{flat}.0")
    } else {
        flat
    }
}

/// Adds one to the dot-separated part at `index`; blang ignores the failure (yielding an empty
/// version, which then fails to parse), and so does this.
fn increment_part(version: &str, index: usize) -> String {
    let mut parts: Vec<String> = version.split('.').map(str::to_owned).collect();
    let Some(part) = parts.get_mut(index) else {
        return String::new();
    };
    let Ok(n) = part.parse::<i64>() else {
        return String::new();
    };
    let Some(next) = n.checked_add(1) else {
        return String::new();
    };
    *part = next.to_string();
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_after_operators_stay_in_the_term() {
        assert_eq!(
            split_and_trim(">= 1.0.0  < 2.0.0"),
            vec![">=1.0.0", "<2.0.0"]
        );
    }
}
