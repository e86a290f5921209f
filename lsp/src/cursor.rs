//! Where the cursor is in a YAML document, even a half-typed one.
//!
//! Completion runs on text that is usually invalid (a key without its colon, a list item without
//! content), so the spanned YAML tree, which stops at the first syntax error of a document,
//! cannot say where the cursor is. This module reads only the block-structure clues of the lines
//! above the cursor (indentation, `- ` list markers and `key:` prefixes) to find the path of
//! keys from the document root to the cursor. It never interprets values: everything about
//! what a path means comes from the compiler's schema and documentation tables.

/// One step of a path: a map key or "an element of a list".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Item,
}

/// What the cursor is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Typing or pointing at a key of the map at `path` (or a scalar list element, when the
    /// line starts with `- ` and the list holds scalars).
    Key,
    /// On the value of `key`; `path` then ends with that key.
    Value,
}

#[derive(Clone, Debug)]
pub struct Cursor {
    /// From the document root to the map holding the cursor's key, or to the key whose value
    /// the cursor is on.
    pub path: Vec<Seg>,
    pub role: Role,
    /// The key on the cursor's line, if the line has one, and its byte range in the text.
    pub line_key: Option<(String, std::ops::Range<usize>)>,
    /// The text of the value on the cursor's line up to the cursor.
    pub value_before: String,
    /// The byte range of the whole value on the cursor's line.
    pub value_range: std::ops::Range<usize>,
    /// Whether the cursor's line starts a list element (`- `).
    pub list_item: bool,
    /// Where the word being typed starts (for completion edits).
    pub word_start: usize,
}

/// The block-structure facts of one line.
#[derive(Debug, Default)]
struct Line {
    /// Column of the first `- ` marker, if any.
    dash: Option<usize>,
    /// Column where the content starts, after indentation and markers.
    content: usize,
    /// `key:` at the start of the content: the key text, its start and end column.
    key: Option<(String, usize, usize)>,
    /// Blank or comment only.
    empty: bool,
}

fn scan_line(line: &str) -> Line {
    let bytes = line.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    let mut dash = None;
    while bytes.get(i) == Some(&b'-') && matches!(bytes.get(i + 1), Some(b' ') | None) {
        dash.get_or_insert(i);
        i += 1;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    let rest = line.get(i..).unwrap_or("");
    let empty = rest.trim().is_empty() || rest.starts_with('#');
    if empty && dash.is_some() {
        return Line { dash, content: i, key: None, empty: false };
    }
    Line { dash, content: i, key: key_of(rest).map(|(k, len)| (k, i, i + len)), empty }
}

/// The key at the start of `rest` (`key:` followed by a space or the end), and the length of
/// its text (quotes included).
fn key_of(rest: &str) -> Option<(String, usize)> {
    let first = rest.chars().next()?;
    if matches!(first, '{' | '[' | '|' | '>' | '#' | '&' | '*' | '!' | '%' | '@' | '`') {
        return None;
    }
    if first == '"' || first == '\'' {
        let close = rest.get(1..)?.find(first)? + 1;
        let after = rest.get(close + 1..)?;
        if after.starts_with(':') && after.get(1..).is_none_or(|a| a.is_empty() || a.starts_with([' ', '\t'])) {
            return Some((rest.get(1..close)?.to_owned(), close + 1));
        }
        return None;
    }
    let mut from = 0;
    while let Some(p) = rest.get(from..)?.find(':') {
        let at = from + p;
        let next = rest.get(at + 1..).unwrap_or("");
        if next.is_empty() || next.starts_with([' ', '\t']) {
            let key = rest.get(..at)?.trim_end();
            if key.contains(" #") {
                return None;
            }
            return Some((key.to_owned(), key.len()));
        }
        from = at + 1;
    }
    None
}

/// The byte range of the YAML document (between `---` lines) holding `offset`.
pub fn document_range(text: &str, offset: usize) -> std::ops::Range<usize> {
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let marker = line
            .strip_prefix("---")
            .is_some_and(|r| r.trim().is_empty() || r.starts_with([' ', '\t']));
        if marker && pos > 0 {
            if pos > offset {
                return start..pos;
            }
            start = pos;
        }
        pos += line.len();
    }
    start..text.len()
}

/// The cursor's place at byte `offset` of `text`.
pub fn locate(text: &str, offset: usize) -> Cursor {
    let offset = offset.min(text.len());
    let mut offset = offset;
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let doc = document_range(text, offset);
    let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1).max(doc.start);
    let line_end = text.get(offset..).and_then(|t| t.find('\n')).map_or(text.len(), |i| offset + i);
    let line = text.get(line_start..line_end).unwrap_or("").trim_end_matches('\r');
    let col = offset.saturating_sub(line_start);
    let info = scan_line(line);
    let mut path_tail = Vec::new();
    let target;
    let mut allow_equal = false;
    if let Some(d) = info.dash.filter(|&d| d < col) {
        path_tail.push(Seg::Item);
        target = d;
        allow_equal = true;
    } else if info.empty || info.content >= col {
        // A blank line, or the cursor in the indentation: the cursor's column decides.
        target = if info.empty { col } else { info.content.min(col) };
    } else {
        target = info.content;
    }
    let key_here = info.key.clone().filter(|(_, start, _)| *start <= col);
    let on_value = key_here.as_ref().is_some_and(|(_, _, end)| col > *end);
    let mut path = parents(text, doc.start, line_start, target, allow_equal);
    path.extend(path_tail);
    let (role, value_start) = match &key_here {
        Some((key, _, end)) if on_value => {
            path.push(Seg::Key(key.clone()));
            let after = line.get(end + 1..).unwrap_or("");
            let skip = after.len() - after.trim_start().len();
            (Role::Value, (end + 1 + skip).min(line.len()))
        }
        _ => (Role::Key, info.content.min(line.len())),
    };
    let value_before = line.get(value_start..col.max(value_start)).unwrap_or("").to_owned();
    let word_start = {
        let before = line.get(..col).unwrap_or("");
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '@')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        line_start + start.max(if role == Role::Key { info.content.min(col) } else { start })
    };
    Cursor {
        path,
        role,
        line_key: info
            .key
            .map(|(k, s, e)| (k, line_start + s..line_start + e)),
        value_before,
        value_range: line_start + value_start..line_start + line.len().max(value_start),
        list_item: info.dash.is_some_and(|d| d < col),
        word_start,
    }
}

/// The keys and list items enclosing a line whose item starts at column `target`, found by
/// walking up the lines above it.
fn parents(text: &str, doc_start: usize, line_start: usize, mut target: usize, mut allow_equal: bool) -> Vec<Seg> {
    let mut path = Vec::new();
    let above = text.get(doc_start..line_start).unwrap_or("");
    for line in above.lines().rev() {
        if target == 0 && !allow_equal {
            break;
        }
        let info = scan_line(line.trim_end_matches('\r'));
        if info.empty || line.starts_with("---") {
            continue;
        }
        match info.dash {
            Some(d) => {
                if d == target && allow_equal {
                    // A sibling element of the list we are in.
                    continue;
                }
                if d >= target {
                    continue;
                }
                match &info.key {
                    Some((key, kc, _)) if *kc < target => {
                        path.push(Seg::Key(key.clone()));
                        path.push(Seg::Item);
                    }
                    _ if info.content <= target => path.push(Seg::Item),
                    _ => continue,
                }
                target = d;
                allow_equal = true;
            }
            None => {
                let Some((key, kc, _)) = &info.key else { continue };
                if *kc < target || (*kc == target && allow_equal) {
                    path.push(Seg::Key(key.clone()));
                    target = *kc;
                    allow_equal = false;
                }
            }
        }
    }
    path.reverse();
    path
}

/// The keys of a path, list items left out (the form documentation is keyed by).
pub fn keys(path: &[Seg]) -> Vec<&str> {
    path.iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Item => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Cursor {
        let offset = text.find('|').unwrap_or(text.len());
        let text = text.replacen('|', "", 1);
        locate(&text, offset)
    }

    fn show(c: &Cursor) -> String {
        let p: Vec<String> = c
            .path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Item => "[]".into(),
            })
            .collect();
        format!("{:?} {} `{}`", c.role, p.join("."), c.value_before)
    }

    #[test]
    fn paths_in_half_typed_documents() {
        let doc = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nspec:\n  rules:\n  - name: a\n    match:\n      any:\n      - resources:\n          kinds:\n          - Po|";
        assert_eq!(show(&at(doc)), "Key spec.rules.[].match.any.[].resources.kinds.[] `Po`");
        let doc = "spec:\n  rules:\n  - name: a\n    validate:\n      failureAc|";
        assert_eq!(show(&at(doc)), "Key spec.rules.[].validate `failureAc`");
        let doc = "spec:\n  rules:\n  - name: a\n    validate:\n      failureAction: En|\n";
        assert_eq!(show(&at(doc)), "Value spec.rules.[].validate.failureAction `En`");
        let doc = "spec:\n  rules:\n    - name: a\n      match: {}\n      |";
        assert_eq!(show(&at(doc)), "Key spec.rules.[] ``");
        let doc = "spec:\n  rules:\n  - |";
        assert_eq!(show(&at(doc)), "Key spec.rules.[] ``");
        let doc = "kind: x\n---\nspec:\n  rul|";
        assert_eq!(show(&at(doc)), "Key spec `rul`");
        let doc = "spec:\n  rules:\n  - name: a\n    context:\n    - name: x\n      variable:\n        value: 1\n    validate:\n      message: \"{{ req|";
        assert_eq!(show(&at(doc)), "Value spec.rules.[].validate.message `\"{{ req`");
    }

    #[test]
    fn keys_and_document_ranges() {
        assert_eq!(key_of("a: b"), Some(("a".into(), 1)));
        assert_eq!(key_of("\"a b\": c"), Some(("a b".into(), 5)));
        assert_eq!(key_of("image: nginx:1.0"), Some(("image".into(), 5)));
        assert_eq!(key_of("nginx:1.0"), None);
        assert_eq!(document_range("a\n---\nb\n", 7), 2..8);
    }
}
