//! Map keys of a pattern, with their anchors: `(k)`, `=(k)`, `X(k)`, `^(k)`, `<(k)`, `+(k)`.

use std::fmt;

use pest::Parser;

use super::expr::TextRange;
use super::grammar::{PatternGrammar, Rule};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AnchorKind {
    /// `(k)`: if the field does not match, this map (or list element) is skipped.
    Condition,
    /// `=(k)`: if the field is present it must match.
    Equality,
    /// `X(k)`: the field must be absent; its pattern value is ignored.
    Negation,
    /// `^(k)`: the list must have an element matching each pattern element.
    Existence,
    /// `<(k)`: if the field does not match, the whole rule is skipped.
    Global,
    /// `+(k)`: mutate only; add the field if it is absent.
    AddIfNotPresent,
}

impl AnchorKind {
    fn from_modifier(modifier: Option<&str>) -> AnchorKind {
        match modifier {
            Some("=") => AnchorKind::Equality,
            Some("X") => AnchorKind::Negation,
            Some("^") => AnchorKind::Existence,
            Some("<") => AnchorKind::Global,
            Some("+") => AnchorKind::AddIfNotPresent,
            _ => AnchorKind::Condition,
        }
    }

    /// The anchor as written around a key `k`, for messages.
    pub fn spelling(self) -> &'static str {
        match self {
            AnchorKind::Condition => "(k)",
            AnchorKind::Equality => "=(k)",
            AnchorKind::Negation => "X(k)",
            AnchorKind::Existence => "^(k)",
            AnchorKind::Global => "<(k)",
            AnchorKind::AddIfNotPresent => "+(k)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AnchorKind::Condition => "conditional anchor",
            AnchorKind::Equality => "equality anchor",
            AnchorKind::Negation => "negation anchor",
            AnchorKind::Existence => "existence anchor",
            AnchorKind::Global => "global anchor",
            AnchorKind::AddIfNotPresent => "add-if-not-present anchor",
        }
    }
}

/// A parsed map key. Spans are relative to the key text as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub raw: String,
    /// The anchor, if the key is one.
    pub anchor: Option<AnchorKind>,
    /// The field name the key looks up: inside the parentheses for an anchor, else the raw key.
    pub name: String,
    pub name_span: TextRange,
    /// The key is not an anchor but looks like a broken one (`(name`, `name)`, `XX(name)`,
    /// `X()`); Kyverno looks such a key up literally, which is rarely what was meant.
    pub malformed_anchor: bool,
}

impl Key {
    /// Whether the name holds a wildcard (`*` or `?`), which Kyverno expands only for the keys
    /// of `metadata.labels` and `metadata.annotations`.
    pub fn has_wildcard(&self) -> bool {
        self.name.contains(['*', '?'])
    }
}

/// Parse a map key. Never fails: a key that is not an anchor is a plain key.
pub fn parse_key(key: &str) -> Key {
    // Kyverno trims surrounding whitespace before matching the anchor form.
    let trimmed = key.trim();
    let offset = key.len() - key.trim_start().len();
    let parsed = PatternGrammar::parse(Rule::key, trimmed)
        .ok()
        .and_then(|mut pairs| pairs.next());
    if let Some(pair) = parsed {
        let mut modifier = None;
        let mut name = None;
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::modifier => modifier = Some(inner.as_str()),
                Rule::anchor_name => name = Some(inner.as_span()),
                _ => {}
            }
        }
        if let Some(name) = name {
            return Key {
                raw: key.to_owned(),
                anchor: Some(AnchorKind::from_modifier(modifier)),
                name: name.as_str().to_owned(),
                name_span: TextRange::new(offset + name.start(), offset + name.end()),
                malformed_anchor: false,
            };
        }
    }
    Key {
        raw: key.to_owned(),
        anchor: None,
        name: key.to_owned(),
        name_span: TextRange::new(0, key.len()),
        malformed_anchor: looks_like_anchor(trimmed),
    }
}

/// A key that is not an anchor but has an anchor's opening or closing parenthesis.
fn looks_like_anchor(key: &str) -> bool {
    let mut chars = key.chars();
    let first = chars.next();
    let second = chars.next();
    let opens = first == Some('(')
        || (matches!(first, Some(c) if is_modifier_like(c)) && second == Some('('));
    opens || key.ends_with(')')
}

/// Characters that could be a mistyped anchor modifier before `(`.
fn is_modifier_like(c: char) -> bool {
    matches!(c, '+' | '<' | '=' | 'X' | 'x' | '^' | '!' | '>')
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.anchor {
            Some(kind) => write!(f, "{} {:?}", kind.name(), self.name),
            None if self.malformed_anchor => {
                write!(f, "plain key {:?} (malformed anchor)", self.name)
            }
            None => write!(f, "plain key {:?}", self.name),
        }
    }
}
