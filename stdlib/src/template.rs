//! `{{ }}` templates in policy strings: finding them, and substituting their values the way
//! Kyverno's `pkg/engine/variables` does.
//!
//! A template is what Kyverno's regular expression `(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})`
//! finds: `{{`, then any text without braces except one-level `{...}` groups (so JMESPath
//! multi-select hashes and literals fit), then `}}`, not preceded by a backslash. Because the
//! content cannot hold `{{`, the innermost template of a nest is found first, and substitution
//! repeats until none is left, so `{{a.{{b}}}}` resolves inside out.
//!
//! This module knows nothing of JMESPath: the caller passes a resolver that evaluates one
//! template's expression. That keeps the rules here testable alone.

use std::ops::Range;

use serde_json::{Map, Value};

/// One template found in a string. Offsets are byte offsets into that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The `{{ ... }}` text, braces included.
    pub span: Range<usize>,
    /// The expression inside: spaces trimmed and, for a shallow template, the `-` removed.
    pub expression: Range<usize>,
    /// `{{- x}}`: the value is inserted as it is, and templates inside it are not substituted.
    pub shallow: bool,
}

impl Template {
    /// The expression text of this template inside `text`, the string it was found in.
    pub fn expression_in<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.expression.clone()).unwrap_or_default()
    }
}

/// The templates of `text`, left to right, exactly as one pass of Kyverno's regular expression
/// finds them: matches do not overlap, and the character before a template is part of its match,
/// so in `{{a}}{{b}}` only `{{a}}` is found until it has been substituted.
pub fn find_templates(text: &str) -> Vec<Template> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let at_start = (pos == 0).then(|| template_end(bytes, 0)).flatten();
        if let Some(end) = at_start {
            found.push(template(text, 0..end));
            pos = end;
            continue;
        }
        let prefix_len = char_len(text, pos);
        let prefixed = bytes
            .get(pos)
            .filter(|&&b| b != b'\\')
            .and_then(|_| template_end(bytes, pos + prefix_len));
        if let Some(end) = prefixed {
            found.push(template(text, pos + prefix_len..end));
            pos = end;
        } else {
            pos += prefix_len;
        }
    }
    found
}

/// Whether `text` holds at least one template.
pub fn has_template(text: &str) -> bool {
    !find_templates(text).is_empty()
}

fn char_len(text: &str, pos: usize) -> usize {
    text.get(pos..)
        .and_then(|rest| rest.chars().next())
        .map_or(1, char::len_utf8)
}

/// Where a template starting at `start` ends, if one does.
fn template_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start..start + 2) != Some(b"{{") {
        return None;
    }
    let mut pos = start + 2;
    loop {
        match bytes.get(pos) {
            Some(b'{') => {
                // A one-level group `{...}` is allowed; anything else with a brace ends the content.
                let close = bytes
                    .get(pos + 1..)?
                    .iter()
                    .position(|&b| b == b'{' || b == b'}')?;
                if bytes.get(pos + 1 + close) != Some(&b'}') {
                    break;
                }
                pos += close + 2;
            }
            Some(b'}') | None => break,
            Some(_) => pos += 1,
        }
    }
    (bytes.get(pos..pos + 2) == Some(b"}}")).then_some(pos + 2)
}

fn template(text: &str, span: Range<usize>) -> Template {
    let inner = span.start + 2..span.end - 2;
    let content = text.get(inner.clone()).unwrap_or_default();
    let (mut expression, mut shallow) = (trimmed(content, inner.start), false);
    if text
        .get(expression.clone())
        .is_some_and(|e| e.starts_with('-'))
    {
        shallow = true;
        let after_dash = text
            .get(expression.start + 1..expression.end)
            .unwrap_or_default();
        expression = trimmed(after_dash, expression.start + 1);
    }
    Template {
        span,
        expression,
        shallow,
    }
}

/// The range of `s` (found at `offset`) without surrounding white space.
fn trimmed(s: &str, offset: usize) -> Range<usize> {
    let start = s.len() - s.trim_start().len();
    let end = s.trim_end().len().max(start);
    offset + start..offset + end
}

/// How many substitution rounds a string may take. Each round resolves at least one template, and
/// a template's value may contain templates again; this bound stops a value that reproduces
/// itself (Kyverno would loop forever).
pub const MAX_ROUNDS: usize = 64;

/// A substitution failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SubstitutionError<E> {
    /// The resolver failed on an expression.
    Resolver { expression: String, error: E },
    /// Templates kept appearing after [`MAX_ROUNDS`] rounds.
    TooManyRounds { text: String },
}

/// Substitutes every template in `text`.
///
/// A string that is exactly one template becomes that template's value with its JSON type
/// (`"{{ request.object.spec.replicas }}"` gives the number 3). Elsewhere a value is inserted as
/// text: strings as they are, everything else JSON-encoded like Go's `json.Marshal`. Inserted text
/// is substituted again if it contains templates, except that of shallow `{{- }}` templates; a
/// whole-string template's value is returned at once, unexamined, as Kyverno does.
/// Finally, escaped templates `\{{...}}` lose their backslash.
pub fn substitute<E>(
    text: &str,
    mut resolve: impl FnMut(&str) -> Result<Value, E>,
) -> Result<Value, SubstitutionError<E>> {
    let mut current = text.to_owned();
    for _ in 0..MAX_ROUNDS {
        let templates = find_templates(&current);
        if templates.is_empty() {
            return Ok(Value::String(unescape(&current)));
        }
        let mut next = String::with_capacity(current.len());
        let mut copied = 0;
        for t in &templates {
            let expression = t.expression_in(&current);
            let value = resolve(expression).map_err(|error| SubstitutionError::Resolver {
                expression: expression.to_owned(),
                error,
            })?;
            if t.span.start == 0 && t.span.end == current.len() {
                return Ok(value);
            }
            next.push_str(current.get(copied..t.span.start).unwrap_or_default());
            let inserted = embedded_text(&value);
            if t.shallow {
                // Escaped, the inserted text is not seen as templates by the next rounds; the
                // final unescaping gives it back as it was.
                next.push_str(&inserted.replace("{{", "\\{{"));
            } else {
                next.push_str(&inserted);
            }
            copied = t.span.end;
        }
        next.push_str(current.get(copied..).unwrap_or_default());
        current = next;
    }
    Err(SubstitutionError::TooManyRounds { text: current })
}

/// The text a value takes inside a larger string.
pub fn embedded_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => go_json(other),
    }
}

/// Removes the backslash of every escaped template `\{{...}}`.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut pos = 0;
    while let Some(offset) = text.get(pos..).and_then(|rest| rest.find("\\{{")) {
        let backslash = pos + offset;
        match template_end(bytes, backslash + 1) {
            Some(end) => {
                out.push_str(text.get(copied..backslash).unwrap_or_default());
                out.push_str(text.get(backslash + 1..end).unwrap_or_default());
                copied = end;
                pos = end;
            }
            None => pos = backslash + 1,
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// Substitutes templates in every string of a JSON document, map keys included, as Kyverno's
/// `SubstituteAll` does. The resolver also receives the JSON pointer of the string being
/// substituted (`/spec/containers/0/image`), which Kyverno uses for `{{@}}` and in messages.
///
/// A key whose value is not a string takes the key's embedded text form. Nesting deeper than
/// [`MAX_DEPTH`] is left as it is, so a hostile document cannot exhaust the stack.
pub fn substitute_document<E>(
    document: &Value,
    mut resolve: impl FnMut(&str, &str) -> Result<Value, E>,
) -> Result<Value, DocumentError<E>> {
    let mut path = String::new();
    walk(document, &mut path, 0, &mut resolve)
}

/// How deep [`substitute_document`] descends.
pub const MAX_DEPTH: usize = 256;

/// A substitution in a document failed at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentError<E> {
    pub path: String,
    pub error: SubstitutionError<E>,
}

fn walk<E>(
    value: &Value,
    path: &mut String,
    depth: usize,
    resolve: &mut impl FnMut(&str, &str) -> Result<Value, E>,
) -> Result<Value, DocumentError<E>> {
    if depth > MAX_DEPTH {
        return Ok(value.clone());
    }
    match value {
        Value::String(s) => substitute_at(s, path, resolve),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                let result = walk(item, path, depth + 1, resolve);
                path.truncate(len);
                out.push(result?);
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let len = path.len();
                path.push('/');
                path.push_str(key);
                let result = walk(item, path, depth + 1, resolve);
                path.truncate(len);
                let item = result?;
                let key = if has_template(key) {
                    embedded_text(&substitute_at(key, path, resolve)?)
                } else {
                    key.clone()
                };
                out.insert(key, item);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn substitute_at<E>(
    text: &str,
    path: &str,
    resolve: &mut impl FnMut(&str, &str) -> Result<Value, E>,
) -> Result<Value, DocumentError<E>> {
    substitute(text, |expression| resolve(path, expression)).map_err(|error| DocumentError {
        path: path.to_owned(),
        error,
    })
}

/// JSON text as Go's `json.Marshal` writes it for decoded JSON: object keys sorted, `<`, `>` and
/// `&` escaped, and numbers that are floats printed in Go's shortest form (`1` rather than `1.0`,
/// `1e+21`, `1e-7`).
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out, 0);
    out
}

fn write_go_json(value: &Value, out: &mut String, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&go_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) if depth < MAX_DEPTH => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) if depth < MAX_DEPTH => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(item, out, depth + 1);
            }
            out.push('}');
        }
        Value::Array(_) | Value::Object(_) => out.push_str("null"),
    }
}

/// A float as Go's `encoding/json` prints it.
pub fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1e21` and `1.5e-7`; Go writes `1e+21` and `1.5e-7`.
        let text = format!("{f:e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        };
    }
    format!("{f}")
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(0.5), "0.5");
    }
}
