//! `$(./../path)` references to other parts of a pattern, and the `{{ }}` template check.
//!
//! Kyverno finds references with the regex `^\$\(.[^ ]*\)|[^\\]\$\(.[^ ]*\)` and substitutes
//! them before anything else, so the scanner below reproduces that regex exactly, including its
//! greed: a reference runs to the last `)` before the next space, which makes
//! `$(./../a)-$(./../b)` a single reference to the path `./../a)-$(./../b`.

use super::expr::{CompareOp, TextRange};

/// One reference found in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// From `$` to the closing `)`.
    pub span: TextRange,
    /// The operator prefix inside the parentheses (`$(<./../port)`), applied by prepending it to
    /// the referenced value; `Equal` when there is none.
    pub op: CompareOp,
    /// The path after the operator, relative to the referring field unless it starts with `/`.
    pub path: String,
}

/// Find the references of a string, in order, as Kyverno's `FindAllString` does.
pub fn scan_references(s: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    // Kyverno's second alternative consumes the character before `$(`, so a reference cannot
    // start right where the previous one ended, and never after a backslash.
    let mut search_from = 0;
    let mut next = 0;
    while let Some(rel) = s.get(next..).and_then(|rest| rest.find("$(")) {
        let at = next + rel;
        next = at + 1;
        let before = s.get(..at).and_then(|head| head.chars().next_back());
        let context_ok = at == 0 || (at > search_from && before != Some('\\'));
        if !context_ok {
            continue;
        }
        let Some(end) = reference_end(s, at) else {
            continue;
        };
        found.push(reference(s, at, end));
        search_from = end;
        next = end;
    }
    found
}

/// Whether `s` holds an escaped reference `\$(...)`, which Kyverno turns into the literal text
/// `$(...)` after substituting the real ones.
pub fn has_escaped_reference(s: &str) -> bool {
    let mut next = 0;
    while let Some(rel) = s.get(next..).and_then(|rest| rest.find("\\$(")) {
        let at = next + rel;
        next = at + 1;
        if reference_end(s, at + 1).is_some() {
            return true;
        }
    }
    false
}

/// Where `.[^ ]*\)` ends for a `$(` at `at`: one character that is not a line feed, then the
/// last `)` before the next space.
fn reference_end(s: &str, at: usize) -> Option<usize> {
    let body = s.get(at + 2..)?;
    let first = body.chars().next()?;
    if first == '\n' {
        return None;
    }
    let run_start = at + 2 + first.len_utf8();
    let run = s.get(run_start..)?;
    let run = run.split(' ').next().unwrap_or(run);
    run.rfind(')').map(|close| run_start + close + 1)
}

fn reference(s: &str, start: usize, end: usize) -> Reference {
    let text = s.get(start..end).unwrap_or("");
    // Kyverno strips every leading and trailing `$`, `(` and `)` rather than exactly one pair.
    let inner = text.trim_matches(['$', '(', ')']);
    let (op, path) = split_operator(inner);
    Reference {
        span: TextRange::new(start, end),
        op,
        path: path.to_owned(),
    }
}

/// The operator prefix rule of pattern strings, applied to a reference's path.
fn split_operator(inner: &str) -> (CompareOp, &str) {
    if inner.len() < 2 {
        return (CompareOp::Equal, inner);
    }
    for (prefix, op) in [
        (">=", CompareOp::GreaterEqual),
        ("<=", CompareOp::LessEqual),
        (">", CompareOp::Greater),
        ("<", CompareOp::Less),
        ("!", CompareOp::NotEqual),
    ] {
        if let Some(rest) = inner.strip_prefix(prefix) {
            return (op, rest);
        }
    }
    (CompareOp::Equal, inner)
}

/// Byte offsets of each `$(` that does not start a reference: no closing `)` before the next
/// space, so Kyverno keeps it as literal text.
pub fn unclosed_references(s: &str, found: &[Reference]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = s.get(from..).and_then(|rest| rest.find("$(")) {
        let at = from + rel;
        from = at + 2;
        let inside = found
            .iter()
            .any(|r| (r.span.start as usize) <= at && at < r.span.end as usize);
        if !inside && reference_end(s, at).is_none() {
            out.push(at);
        }
    }
    out
}

/// Whether `s` holds a `{{ }}` template, escaped or not, by Kyverno's rule
/// `\{\{(?:\{[^{}]*\}|[^{}])*\}\}`. Such a string is substituted at run time before its operators
/// are parsed.
pub fn has_template(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = s.get(from..).and_then(|rest| rest.find("{{")) {
        let open = from + rel;
        from = open + 1;
        let mut i = open + 2;
        loop {
            match bytes.get(i) {
                None => break,
                Some(b'}') => {
                    if bytes.get(i + 1) == Some(&b'}') {
                        return true;
                    }
                    break;
                }
                Some(b'{') => {
                    // A nested `{...}` without further braces inside.
                    let close = bytes
                        .get(i + 1..)
                        .and_then(|rest| rest.iter().position(|&b| b == b'{' || b == b'}'));
                    match close.map(|c| (i + 1 + c, bytes.get(i + 1 + c))) {
                        Some((at, Some(b'}'))) => i = at + 1,
                        _ => break,
                    }
                }
                Some(_) => i += 1,
            }
        }
    }
    false
}
