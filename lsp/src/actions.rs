//! Code actions: the checker's fixes (did-you-mean for unknown fields, values and JMESPath
//! functions, replacements of deprecated operators and API versions) and the move of the
//! deprecated `spec.validationFailureAction` into `failureAction` of each validate rule.

use std::collections::HashMap;

use tower_lsp_server::ls_types::{CodeAction, CodeActionKind, Range, TextEdit, Uri, WorkspaceEdit};

use palisade_compiler::FileId;
use palisade_compiler::check::{self, codes};
use palisade_compiler::syntax::{Node, Value};

use crate::defs;
use crate::diagnostics;
use crate::text::LineIndex;

/// The quick fixes for diagnostics overlapping `range` (byte offsets).
pub fn actions(uri: &Uri, text: &str, range: std::ops::Range<usize>) -> Vec<CodeAction> {
    let index = LineIndex::new(text);
    let (_, diags) = check::check_source(FileId(0), text);
    let mut out = Vec::new();
    for d in &diags {
        let (start, end) = (d.span.start as usize, d.span.end as usize);
        if end < range.start || start > range.end {
            continue;
        }
        let lsp_diag = diagnostics::convert(uri, text, &index, d);
        if let Some(fix) = &d.fix
            && let Some(replacement) = &fix.replacement
        {
            out.push(action(
                uri,
                fix.message.clone(),
                vec![TextEdit::new(index.range(text, fix.span), replacement.clone())],
                vec![lsp_diag.clone()],
                true,
            ));
        }
        if d.code == codes::DEPRECATED_FIELD
            && let Some(edits) = move_failure_action(text, &index, d.span.start as usize)
        {
            out.push(action(
                uri,
                "move `validationFailureAction` to `failureAction` in each validate rule".into(),
                edits,
                vec![lsp_diag],
                true,
            ));
        }
    }
    out
}

fn action(uri: &Uri, title: String, edits: Vec<TextEdit>, diags: Vec<tower_lsp_server::ls_types::Diagnostic>, preferred: bool) -> CodeAction {
    let mut changes = HashMap::new();
    changes.insert(uri.clone(), edits);
    CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(diags),
        edit: Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }),
        is_preferred: Some(preferred),
        ..CodeAction::default()
    }
}

/// The edits that delete `spec.validationFailureAction` (whose key starts at `key_offset`) and
/// add its value as `failureAction` to every validate rule of the policy that has none.
fn move_failure_action(text: &str, index: &LineIndex, key_offset: usize) -> Option<Vec<TextEdit>> {
    let docs = defs::parse(text);
    let doc = defs::document_at(&docs, key_offset)?;
    let spec = doc.root.get("spec")?;
    let (key, value) = spec.entry("validationFailureAction")?;
    if key.span.start as usize != key_offset {
        return None;
    }
    let action = value.as_str()?;
    // Kyverno's lower-case spellings are legacy; the rule field takes the capitalised ones.
    let action = match action {
        "audit" => "Audit",
        "enforce" => "Enforce",
        other => other,
    };
    let mut edits = Vec::new();
    for rule in spec.get("rules").and_then(Node::as_seq).unwrap_or(&[]) {
        let Some(validate) = rule.get("validate") else { continue };
        if validate.get("failureAction").is_some() {
            continue;
        }
        let Value::Map(entries) = &validate.value else { continue };
        let Some((first, _)) = entries.first() else { continue };
        let at = first.span.start as usize;
        let line_start = text.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
        let indent = text.get(line_start..at).unwrap_or("");
        if !indent.chars().all(|c| c == ' ') {
            // A flow map (`validate: {...}`) has no line to insert before.
            continue;
        }
        let pos = index.position(text, line_start);
        edits.push(TextEdit::new(Range::new(pos, pos), format!("{indent}failureAction: {action}\n")));
    }
    // Delete the whole line of the deprecated field.
    let start = text.get(..key.span.start as usize).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let end = text.get(value.span.end as usize..).and_then(|t| t.find('\n')).map_or(text.len(), |i| value.span.end as usize + i + 1);
    edits.push(TextEdit::new(index.byte_range(text, start..end), String::new()));
    Some(edits)
}
