//! Names a document defines and where: context entries (`{{ name }}` variables), CEL
//! `variables`, policies, rules. Read from the compiler's spanned YAML tree, which keeps every
//! document (and the part before a syntax error) with exact spans.

use palisade_compiler::ast::schema::CONTEXT_SOURCES;
use palisade_compiler::syntax::{self, Document, Node, Value};
use palisade_compiler::{FileId, Span};

/// A named definition in a document.
#[derive(Clone, Debug)]
pub struct Def {
    pub name: String,
    /// The span of the name's value.
    pub span: Span,
    /// The whole entry (the list element).
    pub entry: Span,
    /// What defines it: the context source (`apiCall`, `variable`, ...) or `variables`.
    pub source: String,
}

pub fn parse(text: &str) -> Vec<Document> {
    syntax::parse(FileId(0), text).0
}

/// The document holding byte `offset`.
pub fn document_at(docs: &[Document], offset: usize) -> Option<&Document> {
    docs.iter().find(|d| (d.span.start as usize) <= offset && offset <= d.span.end as usize)
}

/// Context entries (under any `context:` list) of a document.
pub fn context_entries(doc: &Document) -> Vec<Def> {
    let mut out = Vec::new();
    walk(&doc.root, 0, &mut |key, value| {
        if key == "context" {
            named_items(value, &mut out, |item| {
                CONTEXT_SOURCES
                    .iter()
                    .find(|s| item.get(s).is_some())
                    .map_or_else(|| "context".to_owned(), |s| (*s).to_owned())
            });
        }
    });
    out
}

/// CEL `variables` of a document.
pub fn cel_variables(doc: &Document) -> Vec<Def> {
    let mut out = Vec::new();
    if let Some(spec) = doc.root.get("spec")
        && let Some(vars) = spec.get("variables")
    {
        named_items(vars, &mut out, |_| "variables".to_owned());
    }
    out
}

fn named_items(list: &Node, out: &mut Vec<Def>, source: impl Fn(&Node) -> String) {
    for item in list.as_seq().unwrap_or(&[]) {
        if let Some(name) = item.get("name")
            && let Some(text) = name.as_str()
        {
            out.push(Def { name: text.to_owned(), span: name.span, entry: item.span, source: source(item) });
        }
    }
}

/// Calls `f` with every map entry of the tree (key text and value), depth-first.
pub fn walk(node: &Node, depth: usize, f: &mut dyn FnMut(&str, &Node)) {
    if depth > 256 {
        return;
    }
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                if let Some(key) = k.as_key() {
                    f(&key, v);
                }
                walk(v, depth + 1, f);
            }
        }
        Value::Seq(items) => {
            for item in items {
                walk(item, depth + 1, f);
            }
        }
        _ => {}
    }
}

/// Like [`walk`], with the key node too.
pub fn walk_entries(node: &Node, depth: usize, f: &mut dyn FnMut(&Node, &Node)) {
    if depth > 256 {
        return;
    }
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                f(k, v);
                walk_entries(v, depth + 1, f);
            }
        }
        Value::Seq(items) => {
            for item in items {
                walk_entries(item, depth + 1, f);
            }
        }
        _ => {}
    }
}

/// The policy name (`metadata.name`) of a document, with its span.
pub fn policy_name(doc: &Document) -> Option<(&str, Span)> {
    let name = doc.root.get("metadata")?.get("name")?;
    Some((name.as_str()?, name.span))
}

/// The trailing identifier chain of `s` (`request.object.meta`): letters, digits, `_`, `@`, `$`
/// and dots. Returns the byte offset where it starts.
pub fn chain_start(s: &str) -> usize {
    s.char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '.')))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// The identifier chain around byte `col` of `line`, cut after the segment holding `col`
/// (hovering `object` in `request.object.spec` gives `request.object`), and its byte range.
pub fn chain_at(line: &str, col: usize) -> Option<(String, std::ops::Range<usize>)> {
    let is_ident = |c: char| c.is_alphanumeric() || matches!(c, '_' | '@' | '$');
    let mut end = col.min(line.len());
    while let Some(c) = line.get(end..).and_then(|s| s.chars().next()) {
        if !is_ident(c) {
            break;
        }
        end += c.len_utf8();
    }
    let start = chain_start(line.get(..end)?);
    let chain = line.get(start..end)?.trim_start_matches('.');
    if chain.is_empty() || chain.ends_with('.') {
        return None;
    }
    Some((chain.to_owned(), end - chain.len()..end))
}

/// If `before` (a line up to the cursor) is inside an unclosed `{{`, the expression text from
/// the `{{` to the cursor.
pub fn open_template(before: &str) -> Option<&str> {
    let open = before.rfind("{{")?;
    let inside = before.get(open + 2..)?;
    if inside.contains("}}") {
        return None;
    }
    Some(inside.trim_start_matches('-'))
}

/// Whether byte `col` of `line` lies inside a `{{ }}` template (closed or not).
pub fn in_template(line: &str, col: usize) -> bool {
    let before = line.get(..col.min(line.len())).unwrap_or("");
    if open_template(before).is_some() {
        return true;
    }
    palisade_stdlib::template::find_templates(line)
        .iter()
        .any(|t| t.span.start < col && col < t.span.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_and_templates() {
        let line = "  message: \"{{ request.object.spec }} x\"";
        let col = line.find("object").unwrap_or_default() + 2;
        assert_eq!(chain_at(line, col).map(|c| c.0), Some("request.object".into()));
        assert!(in_template(line, col));
        assert!(!in_template(line, 4));
        assert_eq!(open_template("a: '{{ to_up"), Some(" to_up"));
        assert_eq!(open_template("a: '{{ x }} b"), None);
    }

    #[test]
    fn context_entries_of_a_document() {
        let text = "spec:\n  rules:\n  - name: r\n    context:\n    - name: cm\n      configMap: {name: c}\n    - name: v\n      variable: {value: 1}\n";
        let docs = parse(text);
        let defs = docs.first().map(context_entries).unwrap_or_default();
        let names: Vec<(&str, &str)> = defs.iter().map(|d| (d.name.as_str(), d.source.as_str())).collect();
        assert_eq!(names, [("cm", "configMap"), ("v", "variable")]);
    }
}
