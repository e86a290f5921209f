//! Hover: field documentation (type, required, allowed values, deprecation), kinds, anchors,
//! pattern and condition operators, JMESPath functions and variables, context entries, and the
//! CEL environment.

use tower_lsp_server::ls_types::{Hover, HoverContents, MarkupContent, MarkupKind};

use palisade_compiler::ast::docs::{self, CEL_FUNCTIONS, CEL_VARIABLES, VARIABLES};
use palisade_compiler::pattern::parse_key;
use palisade_stdlib::cel::library as cel_library;
use palisade_stdlib::functions;

use crate::cursor::{self, Role, Seg};
use crate::defs;
use crate::schema::{self, CEL_FIELDS, JMESPATH_FIELDS, PATTERN_FIELDS, Shape};
use crate::text::LineIndex;

/// The hover text at byte `offset`, in Markdown, and the byte range it is about.
pub fn hover_markdown(text: &str, offset: usize) -> Option<(String, std::ops::Range<usize>)> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let line_end = text.get(offset..).and_then(|t| t.find('\n')).map_or(text.len(), |i| offset + i);
    let line = text.get(line_start..line_end).unwrap_or("");
    let col = offset.saturating_sub(line_start);
    let cur = cursor::locate(text, offset);
    let doc_range = cursor::document_range(text, offset);
    let kind = schema::doc_kind(text.get(doc_range).unwrap_or(""));
    let shift = |r: std::ops::Range<usize>| line_start + r.start..line_start + r.end;

    // Expressions: inside `{{ }}`, a JMESPath field or a CEL field.
    let key = schema::last_key(&cur.path);
    let on_value = cur.role == Role::Value || !cur.line_key.as_ref().is_some_and(|(_, r)| r.contains(&offset));
    let jmes = defs::in_template(line, col) || (on_value && key.is_some_and(|k| JMESPATH_FIELDS.contains(&k)));
    let cel = !jmes && on_value && key.is_some_and(|k| CEL_FIELDS.contains(&k));
    if jmes || cel {
        let (chain, range) = defs::chain_at(line, col)?;
        let called = line.get(range.end..).is_some_and(|r| r.trim_start().starts_with('('));
        let md = if jmes { jmespath_hover(text, offset, &chain, called) } else { cel_hover(&chain, called) }?;
        return Some((md, shift(range)));
    }

    // A key: its field documentation, or the anchor it carries in a pattern.
    if let Some((name, range)) = &cur.line_key
        && range.contains(&offset)
    {
        let parent: Vec<Seg> = match cur.role {
            Role::Value => cur.path.get(..cur.path.len().saturating_sub(1)).unwrap_or(&[]).to_vec(),
            Role::Key => cur.path.clone(),
        };
        let parent_shape = schema::resolve(kind.kind, &parent).shape;
        if let Shape::Free(f) = parent_shape
            && PATTERN_FIELDS.contains(&f)
        {
            let anchor = parse_key(name).anchor?;
            let md = format!("**{}** `{}`\n\n{}", anchor.name(), name, docs::anchor_doc(anchor));
            return Some((md, range.clone()));
        }
        let mut path = parent;
        path.push(Seg::Key(name.clone()));
        return field_hover(kind.kind, &path).map(|md| (md, range.clone()));
    }

    // A value.
    if cur.role == Role::Value {
        let value = text.get(cur.value_range.clone()).unwrap_or("").trim();
        let value = value.trim_matches(['"', '\'']);
        if cur.path == [Seg::Key("kind".into())] {
            let k = docs::kind_doc(value)?;
            let md = format!("**{}** ({})\n\n{}", k.kind, k.api_versions.join(", "), k.doc);
            return Some((md, cur.value_range.clone()));
        }
        if key == Some("operator")
            && let Some((op, doc)) = docs::CONDITION_OPERATORS.iter().find(|(op, _)| *op == value)
        {
            return Some((format!("**{op}** (condition operator)\n\n{doc}"), cur.value_range.clone()));
        }
        let resolved = schema::resolve(kind.kind, &cur.path);
        if let Shape::Free(f) = resolved.shape
            && PATTERN_FIELDS.contains(&f)
        {
            return pattern_value_hover(value).map(|md| (md, cur.value_range.clone()));
        }
        return field_hover(kind.kind, &cur.path).map(|md| (md, cur.value_range.clone()));
    }
    None
}

pub fn hover(text: &str, index: &LineIndex, offset: usize) -> Option<Hover> {
    let (value, range) = hover_markdown(text, offset)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }),
        range: Some(index.byte_range(text, range)),
    })
}

fn field_hover(kind: Option<palisade_compiler::ast::Kind>, path: &[Seg]) -> Option<String> {
    let resolved = schema::resolve(kind, path);
    let keys = cursor::keys(path);
    let name = keys.last()?;
    let doc = docs::field_doc(&keys);
    let field = resolved.field.filter(|f| f.name == *name);
    if doc.is_none() && field.is_none() {
        return None;
    }
    let mut md = format!("**{name}**");
    if let Some(f) = field {
        md.push_str(&format!(": {}", schema::describe(&f.ty)));
        if f.required {
            md.push_str(" (required)");
        }
    }
    if let Some(doc) = doc {
        md.push_str("\n\n");
        md.push_str(doc);
    }
    if let Some(instead) = field.and_then(|f| f.deprecated) {
        md.push_str(&format!("\n\n**Deprecated**: {instead}."));
    }
    Some(md)
}

fn pattern_value_hover(value: &str) -> Option<String> {
    let mut lines = Vec::new();
    // Longer operators first, so `>=` is not also explained as `>`.
    let mut ops: Vec<&(&str, &str)> = docs::PATTERN_OPERATORS.iter().collect();
    ops.sort_by_key(|(op, _)| std::cmp::Reverse(op.len()));
    let mut rest = value.to_owned();
    for (op, doc) in ops {
        if rest.contains(op) {
            lines.push(format!("- `{op}`: {doc}"));
            rest = rest.replace(op, " ");
        }
    }
    if lines.is_empty() {
        return Some(format!("Pattern value: the resource's field must equal `{value}`."));
    }
    Some(format!("Pattern value `{value}`\n\n{}", lines.join("\n")))
}

fn jmespath_hover(text: &str, offset: usize, chain: &str, called: bool) -> Option<String> {
    if called && let Some(f) = functions::lookup(chain) {
        return Some(format!("```\n{}\n```\n{}\n\nExample: `{}`", f.signature(), f.doc, f.example));
    }
    if let Some(v) = VARIABLES.iter().find(|v| v.path == chain) {
        return Some(format!("**{}**: {}\n\n{}", v.path, v.ty, v.doc));
    }
    let root = chain.split('.').next().unwrap_or(chain);
    let docs = defs::parse(text);
    let doc = defs::document_at(&docs, offset)?;
    let def = defs::context_entries(doc).into_iter().find(|d| d.name == root)?;
    Some(format!(
        "**{}**: context variable\n\nDefined by a `{}` context entry of this rule.",
        def.name, def.source
    ))
}

fn cel_hover(chain: &str, called: bool) -> Option<String> {
    let last = chain.rsplit('.').next().unwrap_or(chain);
    // Library functions first: `json.unmarshal` is one name, `list.indexOf` a member.
    let library: Vec<String> = cel_library::FUNCTIONS
        .iter()
        .filter(|f| {
            f.name == chain
                || (f.receiver.is_some() && f.name == last)
                || (f.name.contains('.') && chain.ends_with(&format!(".{}", f.name)))
        })
        .map(|f| format!("```\n{}\n```\n{}", crate::completion::library_signature(f), f.doc))
        .collect();
    if called && !library.is_empty() && !CEL_FUNCTIONS.iter().any(|f| f.name == last) {
        return Some(library.join("\n\n"));
    }
    let entry = if called || chain.contains('.') {
        CEL_FUNCTIONS.iter().find(|f| f.name == last)
    } else {
        None
    }
    .or_else(|| CEL_VARIABLES.iter().find(|v| v.name == chain))?;
    Some(format!("```\n{}\n```\n{}\n\nExample: `{}`", entry.signature, entry.doc, entry.example))
}
