//! Checks of the expressions inside strings: `{{ }}` templates and the JMESPath they hold.

use palisade_stdlib::{functions, jmespath, template};

use super::codes;
use super::suggest::did_you_mean;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::{Node, Value};

/// A template's expression text and its span in the file.
pub struct Variable {
    pub text: String,
    pub span: Span,
}

/// The templates of a string node (keys included by the callers), with their spans.
pub fn templates(node: &Node) -> Vec<Variable> {
    let Value::Str(s) = &node.value else {
        return Vec::new();
    };
    template::find_templates(&s.text)
        .into_iter()
        .map(|t| Variable {
            text: t.expression_in(&s.text).to_owned(),
            span: node.str_span(t.span.clone()),
        })
        .collect()
}

/// Checks every template of a string: closed braces, JMESPath syntax, functions and arity.
pub fn check_templates(node: &Node, out: &mut Vec<Diagnostic>) {
    let Value::Str(s) = &node.value else { return };
    if !s.text.contains("{{") {
        return;
    }
    let found = template::find_templates(&s.text);
    for t in &found {
        let expr = t.expression_in(&s.text);
        check_jmespath_at(node, expr, t.expression.start, out);
    }
    // A `{{` that no template covers and that no `}}` follows can never be substituted.
    let mut at = 0;
    while let Some(i) = s.text.get(at..).and_then(|rest| rest.find("{{")) {
        let start = at + i;
        let covered = found.iter().any(|t| t.span.contains(&start));
        let escaped = start > 0 && s.text.as_bytes().get(start - 1) == Some(&b'\\');
        let closed = s.text.get(start..).is_some_and(|rest| rest.contains("}}"));
        if !covered && !escaped && !closed {
            out.push(
                Diagnostic::error(codes::UNCLOSED_TEMPLATE, node.str_span(start..start + 2), "`{{` is never closed")
                    .with_note("a variable is written `{{ expression }}`; add the closing `}}`, or write `\\{{` for literal braces"),
            );
            break;
        }
        at = start + 2;
    }
}

/// Checks a string that is JMESPath as a whole (`foreach.list`, `jmesPath` fields). A string
/// holding templates is checked as templates instead, as Kyverno substitutes them first.
pub fn check_jmespath(node: &Node, out: &mut Vec<Diagnostic>) {
    let Some(text) = node.as_str() else { return };
    if text.contains("{{") {
        check_templates(node, out);
        return;
    }
    check_jmespath_at(node, text, 0, out);
}

/// Parses `expr`, which starts at byte `offset` of the string `node`, and checks its calls.
fn check_jmespath_at(node: &Node, expr: &str, offset: usize, out: &mut Vec<Diagnostic>) {
    let parsed = match jmespath::parse(expr) {
        Ok(parsed) => parsed,
        Err(e) => {
            let at = offset + e.offset.min(expr.len());
            let end = expr
                .get(e.offset..)
                .and_then(|r| r.chars().next())
                .map_or(at, |c| at + c.len_utf8());
            out.push(
                Diagnostic::error(
                    codes::JMESPATH_SYNTAX,
                    node.str_span(at..end),
                    format!("JMESPath syntax error: {}", e.message),
                )
                .with_note(format!("in the expression `{expr}`")),
            );
            return;
        }
    };
    for call in parsed.calls() {
        let span = node.str_span(offset + call.name_span.start..offset + call.name_span.end);
        match functions::lookup(call.name) {
            None => {
                let mut d = Diagnostic::error(
                    codes::UNKNOWN_FUNCTION,
                    span,
                    format!("unknown JMESPath function `{}`", call.name),
                );
                match did_you_mean(call.name, functions::all().map(|f| f.name)) {
                    Some(best) => {
                        d = d.with_fix(
                            format!("did you mean `{best}`?"),
                            span,
                            Some(best.to_owned()),
                        )
                    }
                    None => {
                        d = d.with_note("`palisade jp function` lists the functions Kyverno knows")
                    }
                }
                out.push(d);
            }
            Some(decl) => {
                if let Err(e) = decl.check_arity(call.args_len) {
                    out.push(
                        Diagnostic::error(codes::WRONG_ARITY, span, e.message)
                            .with_note(format!("the signature is `{}`", decl.signature())),
                    );
                }
            }
        }
    }
}

/// Calls `visit` on every string scalar under `node`, keys included, skipping the values of
/// map keys for which `skip` is true. Recursion follows the YAML nesting, which the parser
/// bounds.
pub fn walk_strings(node: &Node, skip: &dyn Fn(&str) -> bool, visit: &mut dyn FnMut(&Node)) {
    match &node.value {
        Value::Str(_) => visit(node),
        Value::Seq(items) => {
            for item in items {
                walk_strings(item, skip, visit);
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                if k.as_str().is_some_and(skip) {
                    continue;
                }
                visit(k);
                walk_strings(v, skip, visit);
            }
        }
        _ => {}
    }
}
