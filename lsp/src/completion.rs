//! Completion: fields by position, enum values, kinds and API versions, anchors and operators in
//! patterns, condition operators, and inside `{{ }}` (or a JMESPath field) variables, context
//! entry names and JMESPath functions; in CEL fields the CEL environment.

use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionItemTag, CompletionTextEdit, Documentation, InsertTextFormat,
    MarkupContent, MarkupKind, Range, TextEdit,
};

use palisade_compiler::ast::docs::{self, CEL_FUNCTIONS, CEL_VARIABLES, KINDS, VARIABLES};
use palisade_compiler::ast::schema::{Obj, Ty};
use palisade_stdlib::cel::library as cel_library;
use palisade_stdlib::functions;

use crate::cursor::{self, Role, Seg};
use crate::defs;
use crate::schema::{self, CEL_FIELDS, JMESPATH_FIELDS, PATTERN_FIELDS, Shape};
use crate::text::LineIndex;

/// Completion items at byte `offset` of `text`, as snippets or, for a client without snippet
/// support, as plain text.
pub fn complete_for(text: &str, index: &LineIndex, offset: usize, snippets: bool) -> Vec<CompletionItem> {
    let mut items = complete(text, index, offset);
    if !snippets {
        for item in &mut items {
            if item.insert_text_format == Some(InsertTextFormat::SNIPPET) {
                item.insert_text_format = Some(InsertTextFormat::PLAIN_TEXT);
                if let Some(CompletionTextEdit::Edit(edit)) = &mut item.text_edit {
                    edit.new_text = plain(&edit.new_text);
                }
            }
        }
    }
    items
}

/// A snippet as plain text: placeholders become their default text, the final cursor mark goes
/// and a multi-line snippet keeps only its first line (without snippets the client would not
/// indent the following lines).
fn plain(snippet: &str) -> String {
    let first = snippet.split('\n').next().unwrap_or_default();
    // `name($0)` leaves the cursor inside the parentheses; as plain text, `name(` does the same.
    first.replace("${1:key}", "key").replace("($0)", "(").replace("$0", "")
}

/// Completion items at byte `offset` of `text` (snippet syntax in insert texts).
pub fn complete(text: &str, index: &LineIndex, offset: usize) -> Vec<CompletionItem> {
    let offset = offset.min(text.len());
    let cur = cursor::locate(text, offset);
    let doc_range = cursor::document_range(text, offset);
    let kind = schema::doc_kind(text.get(doc_range.clone()).unwrap_or(""));
    let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let before = text.get(line_start..offset).unwrap_or("");
    let edit = |start: usize| Edit { range: index.byte_range(text, start..offset) };

    // Expressions first: they can sit in any string.
    if let Some(expr) = defs::open_template(before) {
        return jmespath(text, offset, &cur.path, expr, &edit);
    }
    let key = schema::last_key(&cur.path);
    let value_line = cur.role == Role::Value;
    if value_line && key.is_some_and(|k| JMESPATH_FIELDS.contains(&k)) {
        return jmespath(text, offset, &cur.path, &cur.value_before, &edit);
    }
    let resolved = schema::resolve(kind.kind, &cur.path);
    let in_cel_text = key.is_some_and(|k| CEL_FIELDS.contains(&k))
        && (value_line || matches!(resolved.shape, Shape::Ty(Ty::Str)));
    if in_cel_text {
        return cel(text, offset, before, &edit);
    }

    let mut items = Vec::new();
    let start = cur.word_start.min(offset);
    match (cur.role, resolved.shape) {
        (Role::Value, _) if cur.path == [Seg::Key("kind".into())] => {
            for k in KINDS {
                items.push(item(k.kind, CompletionItemKind::CLASS, "policy kind", k.doc, edit(start)));
            }
        }
        (Role::Value, _) if cur.path == [Seg::Key("apiVersion".into())] => {
            for k in KINDS.iter().filter(|k| kind.kind_name.as_deref().is_none_or(|n| n == k.kind)) {
                for api in k.api_versions {
                    items.push(item(api, CompletionItemKind::MODULE, k.kind, k.doc, edit(start)));
                }
            }
        }
        (Role::Value, _) if key == Some("operator") && !schema::inside(&cur.path, "matchExpressions") => {
            for (op, doc) in docs::CONDITION_OPERATORS {
                items.push(item(op, CompletionItemKind::OPERATOR, "condition operator", doc, edit(start)));
            }
        }
        (Role::Value, Shape::Ty(ty)) => values(ty, &mut items, &edit(start)),
        (Role::Value, Shape::Free(f)) if PATTERN_FIELDS.contains(&f) => pattern_values(&mut items, &edit(start)),
        (Role::Key, Shape::Obj(obj)) => fields(obj, &cur.path, &mut items, &edit(start)),
        // A scalar list element (`- ` under `operations:`): the element type's values.
        (Role::Key, Shape::Ty(ty)) if cur.list_item => values(ty, &mut items, &edit(start)),
        (Role::Key, Shape::Free(f)) if PATTERN_FIELDS.contains(&f) => {
            if cur.list_item && cur.value_before.is_empty() {
                pattern_values(&mut items, &edit(start));
            }
            anchors(&mut items, &edit(start));
        }
        _ => {}
    }
    items
}

struct Edit {
    range: Range,
}

fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value })
}

fn item(label: &str, kind: CompletionItemKind, detail: &str, doc: &str, edit: Edit) -> CompletionItem {
    CompletionItem {
        label: label.to_owned(),
        kind: Some(kind),
        detail: Some(detail.to_owned()),
        documentation: (!doc.is_empty()).then(|| markdown(doc.to_owned())),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(edit.range, label.to_owned()))),
        ..CompletionItem::default()
    }
}

fn fields(obj: &Obj, path: &[Seg], items: &mut Vec<CompletionItem>, edit: &Edit) {
    let mut keys = cursor::keys(path);
    for f in obj.fields {
        keys.push(f.name);
        let doc = docs::field_doc(&keys).unwrap_or_default();
        keys.pop();
        let mut detail = schema::describe(&f.ty);
        if f.required {
            detail.push_str(", required");
        }
        let mut documentation = doc.to_owned();
        if let Some(instead) = f.deprecated {
            documentation.push_str(&format!("\n\n**Deprecated**: {instead}."));
        }
        let insert = match &f.ty {
            Ty::Obj(_) | Ty::Dict(_) => format!("{}:\n  $0", f.name),
            Ty::List(_) => format!("{}:\n- $0", f.name),
            _ => format!("{}: $0", f.name),
        };
        items.push(CompletionItem {
            label: f.name.to_owned(),
            kind: Some(CompletionItemKind::FIELD),
            detail: Some(detail),
            documentation: (!documentation.is_empty()).then(|| markdown(documentation)),
            tags: f.deprecated.map(|_| vec![CompletionItemTag::DEPRECATED]),
            insert_text_format: Some(InsertTextFormat::SNIPPET),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(edit.range, insert))),
            filter_text: Some(f.name.to_owned()),
            // Required fields first, deprecated ones last.
            sort_text: Some(format!(
                "{}{}",
                if f.deprecated.is_some() { 2 } else if f.required { 0 } else { 1 },
                f.name
            )),
            ..CompletionItem::default()
        });
    }
}

fn values(ty: &Ty, items: &mut Vec<CompletionItem>, edit: &Edit) {
    let e = || Edit { range: edit.range };
    match ty {
        Ty::Enum(values) => {
            for v in *values {
                items.push(item(v, CompletionItemKind::ENUM_MEMBER, "value", "", e()));
            }
        }
        Ty::Bool => {
            for v in ["true", "false"] {
                items.push(item(v, CompletionItemKind::VALUE, "boolean", "", e()));
            }
        }
        _ => {}
    }
}

fn anchors(items: &mut Vec<CompletionItem>, edit: &Edit) {
    for kind in docs::ANCHORS {
        let spelling = kind.spelling();
        let snippet = spelling.replace('k', "${1:key}");
        items.push(CompletionItem {
            label: spelling.replace('k', "key"),
            kind: Some(CompletionItemKind::OPERATOR),
            detail: Some(kind.name().to_owned()),
            documentation: Some(markdown(docs::anchor_doc(*kind).to_owned())),
            insert_text_format: Some(InsertTextFormat::SNIPPET),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(edit.range, format!("{snippet}: $0")))),
            ..CompletionItem::default()
        });
    }
}

fn pattern_values(items: &mut Vec<CompletionItem>, edit: &Edit) {
    for (op, doc) in docs::PATTERN_OPERATORS {
        items.push(item(op, CompletionItemKind::OPERATOR, "pattern operator", doc, Edit { range: edit.range }));
    }
}

/// Completion inside a JMESPath expression; `expr` is its text up to the cursor.
fn jmespath(text: &str, offset: usize, path: &[Seg], expr: &str, edit: &dyn Fn(usize) -> Edit) -> Vec<CompletionItem> {
    let chain_at = defs::chain_start(expr);
    let chain = expr.get(chain_at..).unwrap_or("");
    let mut items = Vec::new();
    match chain.rfind('.') {
        Some(dot) => {
            let base = chain.get(..dot).unwrap_or("");
            let start = offset.saturating_sub(chain.len().saturating_sub(dot + 1));
            for v in VARIABLES {
                if let Some(rest) = v.path.strip_prefix(base).and_then(|r| r.strip_prefix('.'))
                    && !rest.contains('.')
                {
                    items.push(item(rest, CompletionItemKind::FIELD, v.ty, v.doc, edit(start)));
                }
            }
        }
        None => {
            let start = offset.saturating_sub(chain.len());
            let in_foreach = schema::inside(path, "foreach");
            for v in VARIABLES.iter().filter(|v| !v.path.contains('.')) {
                if matches!(v.path, "element" | "elementIndex") && !in_foreach {
                    continue;
                }
                items.push(item(v.path, CompletionItemKind::VARIABLE, v.ty, v.doc, edit(start)));
            }
            let docs = defs::parse(text);
            if let Some(doc) = defs::document_at(&docs, offset) {
                for def in defs::context_entries(doc) {
                    let doc = format!("Context entry `{}` ({}).", def.name, def.source);
                    items.push(item(&def.name, CompletionItemKind::VARIABLE, "context variable", &doc, edit(start)));
                }
            }
            for f in functions::all() {
                let documentation = format!("`{}`\n\n{}\n\nExample: `{}`", f.signature(), f.doc, f.example);
                items.push(CompletionItem {
                    label: f.name.to_owned(),
                    kind: Some(CompletionItemKind::FUNCTION),
                    detail: Some(f.signature()),
                    documentation: Some(markdown(documentation)),
                    insert_text_format: Some(InsertTextFormat::SNIPPET),
                    text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                        edit(start).range,
                        format!("{}($0)", f.name),
                    ))),
                    filter_text: Some(f.name.to_owned()),
                    ..CompletionItem::default()
                });
            }
        }
    }
    items
}

/// Completion in a CEL expression; `before` is the line up to the cursor. Names come from the
/// documentation table of the standard environment and from the stdlib's CEL library table.
fn cel(text: &str, offset: usize, before: &str, edit: &dyn Fn(usize) -> Edit) -> Vec<CompletionItem> {
    let chain = before.get(defs::chain_start(before)..).unwrap_or("");
    let mut items: Vec<CompletionItem> = Vec::new();
    let push = |items: &mut Vec<CompletionItem>, it: CompletionItem| {
        if !items.iter().any(|i| i.label == it.label) {
            items.push(it);
        }
    };
    match chain.rfind('.') {
        Some(dot) => {
            let start = offset.saturating_sub(chain.len().saturating_sub(dot + 1));
            let base = chain.get(..dot).unwrap_or("");
            if base == "variables" {
                let docs = defs::parse(text);
                if let Some(doc) = defs::document_at(&docs, offset) {
                    for def in defs::cel_variables(doc) {
                        push(&mut items, item(&def.name, CompletionItemKind::VARIABLE, "CEL variable", "", edit(start)));
                    }
                }
                return items;
            }
            // Namespaced library functions (`json.unmarshal`) after their namespace.
            for f in cel_library::FUNCTIONS.iter().filter(|f| f.receiver.is_none()) {
                if let Some(rest) = f.name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) {
                    push(&mut items, item(rest, CompletionItemKind::FUNCTION, &library_signature(f), f.doc, edit(start)));
                }
            }
            // Member functions: the ones written `receiver.name(...)`.
            for f in CEL_FUNCTIONS.iter().filter(|f| is_member(f)) {
                let doc = format!("`{}`\n\n{}\n\nExample: `{}`", f.signature, f.doc, f.example);
                push(&mut items, item(f.name, CompletionItemKind::METHOD, f.signature, &doc, edit(start)));
            }
            for f in cel_library::FUNCTIONS.iter().filter(|f| f.receiver.is_some()) {
                push(&mut items, item(f.name, CompletionItemKind::METHOD, &library_signature(f), f.doc, edit(start)));
            }
        }
        None => {
            let start = offset.saturating_sub(chain.len());
            for v in CEL_VARIABLES {
                let doc = format!("{}\n\nExample: `{}`", v.doc, v.example);
                push(&mut items, item(v.name, CompletionItemKind::VARIABLE, v.signature, &doc, edit(start)));
            }
            for f in CEL_FUNCTIONS.iter().filter(|f| !is_member(f)) {
                let doc = format!("`{}`\n\n{}\n\nExample: `{}`", f.signature, f.doc, f.example);
                push(&mut items, item(f.name, CompletionItemKind::FUNCTION, f.signature, &doc, edit(start)));
            }
            for f in cel_library::FUNCTIONS.iter().filter(|f| f.receiver.is_none()) {
                push(&mut items, item(f.name, CompletionItemKind::FUNCTION, &library_signature(f), f.doc, edit(start)));
            }
        }
    }
    items
}

/// The signature of a stdlib CEL library function, e.g. `list.indexOf(dyn) -> int`.
pub(crate) fn library_signature(f: &cel_library::CelFunction) -> String {
    let receiver = f.receiver.map(|r| format!("{r}.")).unwrap_or_default();
    format!("{receiver}{}({}) -> {} [{}]", f.name, f.params.join(", "), f.returns, f.library)
}

/// Whether a CEL function is called on a receiver (`list.all(...)`) rather than globally.
fn is_member(f: &docs::CelDoc) -> bool {
    !f.signature.starts_with(&format!("{}(", f.name))
}
