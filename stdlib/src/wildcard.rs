//! Kyverno's wildcard matching (the `IGLOU-EU/go-wildcard` v1.0.3 rules).
//!
//! `*` matches any run of characters, `/` included; `?` matches exactly one character (a Unicode
//! scalar value, as the Go library works on runes), so `?*` means "not empty". Every other
//! character, `.` `[` `\` included, is literal. The whole text must match.
//!
//! The Go library backtracks recursively, which is exponential on patterns like `*a*a*a*b`.
//! Here a pattern is split at its stars into segments; the first segment is anchored at the start,
//! the last at the end, and each middle segment is matched at its leftmost position. Taking the
//! leftmost position is always safe because a star before and after a segment can absorb whatever
//! a later position would have left, so the work is bounded by `text × pattern` and never blows up.

/// Whether `pattern` matches the whole of `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    // A pattern without `*` or `?` is a literal: compare without compiling it.
    if !has_wildcard(pattern) {
        return pattern == text;
    }
    Wildcard::new(pattern).matches(text)
}

/// Whether `s` contains a wildcard character, i.e. whether it must be matched rather than compared.
/// A byte scan: `*` and `?` are ASCII, so no character needs decoding (condition operators ask
/// this of every member of a set).
pub fn has_wildcard(s: &str) -> bool {
    s.bytes().any(|b| b == b'*' || b == b'?')
}

/// A pattern compiled once (at policy compile time) and matched many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    pattern: String,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcard at all: plain string equality.
    Literal,
    /// Only stars: matches everything.
    Any,
    /// `literal*`, the common `prefix-*` case.
    Prefix(String),
    /// `*literal`.
    Suffix(String),
    /// The general case: segments between stars.
    Segments(Segments),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segments {
    /// The text before the first star (the whole pattern if there is no star).
    head: Segment,
    /// The segments between stars, in order.
    middle: Vec<Segment>,
    /// The text after the last star; `None` when the pattern has no star at all.
    tail: Option<Segment>,
}

/// A star-free run of the pattern: `None` stands for `?`, `Some(c)` for a literal character.
type Segment = Vec<Option<char>>;

impl Wildcard {
    /// Compiles `pattern`; every string is a valid pattern.
    pub fn new(pattern: &str) -> Wildcard {
        Wildcard {
            pattern: pattern.to_owned(),
            shape: Shape::of(pattern),
        }
    }

    /// The pattern this was compiled from.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard, so matching is string equality.
    pub fn is_literal(&self) -> bool {
        matches!(self.shape, Shape::Literal)
    }

    /// Whether `text` matches the pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Literal => self.pattern == text,
            Shape::Any => true,
            Shape::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Shape::Suffix(suffix) => text.ends_with(suffix.as_str()),
            Shape::Segments(segments) => {
                let chars: Vec<char> = text.chars().collect();
                segments.matches(&chars)
            }
        }
    }
}

impl Shape {
    fn of(pattern: &str) -> Shape {
        if !has_wildcard(pattern) {
            return Shape::Literal;
        }
        if pattern.chars().all(|c| c == '*') {
            return Shape::Any;
        }
        if !pattern.contains('?') {
            let stars = pattern.matches('*').count();
            if stars == 1 {
                if let Some(prefix) = pattern.strip_suffix('*') {
                    return Shape::Prefix(prefix.to_owned());
                }
                if let Some(suffix) = pattern.strip_prefix('*') {
                    return Shape::Suffix(suffix.to_owned());
                }
            }
        }
        let mut parts = pattern.split('*').map(segment);
        let head = parts.next().unwrap_or_default();
        let mut rest: Vec<Segment> = parts.collect();
        let tail = rest.pop();
        // Empty middle segments come from runs of stars (`a**b`) and match trivially.
        rest.retain(|s| !s.is_empty());
        Shape::Segments(Segments {
            head,
            middle: rest,
            tail,
        })
    }
}

fn segment(part: &str) -> Segment {
    part.chars().map(|c| (c != '?').then_some(c)).collect()
}

impl Segments {
    fn matches(&self, text: &[char]) -> bool {
        let Some(tail) = &self.tail else {
            // No star: the pattern is one segment that must cover the text exactly.
            return self.head.len() == text.len() && fits(&self.head, text);
        };
        if self.head.len() + tail.len() > text.len() {
            return false;
        }
        let (start, rest) = text.split_at(self.head.len());
        let (middle, end) = rest.split_at(rest.len() - tail.len());
        if !fits(&self.head, start) || !fits(tail, end) {
            return false;
        }
        let mut remaining = middle;
        for seg in &self.middle {
            match find(seg, remaining) {
                Some(at) => remaining = remaining.get(at + seg.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

/// Whether `seg` matches `text` exactly, position by position (equal lengths are the caller's job).
fn fits(seg: &[Option<char>], text: &[char]) -> bool {
    seg.iter().zip(text).all(|(p, c)| p.is_none_or(|p| p == *c))
}

/// The leftmost position where `seg` matches inside `text`.
fn find(seg: &[Option<char>], text: &[char]) -> Option<usize> {
    if seg.len() > text.len() {
        return None;
    }
    (0..=text.len() - seg.len()).find(|&at| {
        text.get(at..at + seg.len())
            .is_some_and(|window| fits(seg, window))
    })
}

/// A wildcard is stored (in compiled bundles) as its pattern text and recompiled on load: the
/// compiled shape is a pure function of the text, so the text is the whole contract.
impl serde::Serialize for Wildcard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

impl<'de> serde::Deserialize<'de> for Wildcard {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Wildcard, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        Ok(Wildcard::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_pick_the_fast_paths() {
        assert!(matches!(Shape::of("abc"), Shape::Literal));
        assert!(matches!(Shape::of("**"), Shape::Any));
        assert!(matches!(Shape::of("ab*"), Shape::Prefix(_)));
        assert!(matches!(Shape::of("*ab"), Shape::Suffix(_)));
        assert!(matches!(Shape::of("a*b"), Shape::Segments(_)));
        assert!(matches!(Shape::of("a?"), Shape::Segments(_)));
    }
}
