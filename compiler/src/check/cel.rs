//! Checks of the CEL expressions in a policy: syntax errors and calls to unknown functions,
//! pointed at the line and column inside the expression, and a warning when the static cost
//! estimate is far beyond what Kubernetes allows one expression.
//!
//! CEL lives in the CEL policy kinds (every `expression`, `messageExpression` and
//! `valueExpression` under `spec`) and, in `kyverno.io` rules, under `validate.cel` and
//! `celPreconditions`.

use palisade_stdlib::cel;

use super::codes;
use super::suggest::did_you_mean;
use crate::diagnostic::Diagnostic;
use crate::syntax::{Node, Value};

const EXPRESSION_KEYS: [&str; 3] = ["expression", "messageExpression", "valueExpression"];

/// Checks every CEL expression of a policy document.
pub fn check(root: &Node, out: &mut Vec<Diagnostic>) {
    let api = root.get("apiVersion").and_then(Node::as_str).unwrap_or_default();
    let Some(spec) = root.get("spec") else { return };
    if api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/") {
        expressions(spec, out);
    } else if let Some(Value::Seq(rules)) = spec.get("rules").map(|r| &r.value) {
        for rule in rules {
            if let Some(pre) = rule.get("celPreconditions") {
                expressions(pre, out);
            }
            if let Some(c) = rule.get("validate").and_then(|v| v.get("cel")) {
                expressions(c, out);
            }
        }
    }
}

/// Visits the expression strings under `node`. Recursion follows the YAML nesting, which the
/// parser bounds.
fn expressions(node: &Node, out: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = k.as_key();
                if key.as_deref().is_some_and(|k| EXPRESSION_KEYS.contains(&k)) && v.as_str().is_some() {
                    check_expression(v, out);
                } else {
                    expressions(v, out);
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| expressions(i, out)),
        _ => {}
    }
}

fn check_expression(node: &Node, out: &mut Vec<Diagnostic>) {
    let Some(text) = node.as_str() else { return };
    match cel::compile(text) {
        Ok(program) => {
            let e = program.estimate(cel::ASSUMED_LIST_SIZE);
            if e.cost > cel::COST_LIMIT * 100.0 {
                out.push(
                    Diagnostic::warning(
                        codes::CEL_COST,
                        node.span,
                        format!(
                            "the estimated cost of this expression is {:.0} for lists of {} items, {:.0} times Kubernetes' per-expression limit",
                            e.cost,
                            cel::ASSUMED_LIST_SIZE,
                            e.cost / cel::COST_LIMIT
                        ),
                    )
                    .with_note("nested loops multiply; Palisade refuses an evaluation whose bound for the actual request exceeds the limit"),
                );
            }
        }
        Err(e) => {
            let start = byte_offset(text, e.offset);
            let end = text.get(start..).and_then(|r| r.chars().next()).map_or(start, |c| start + c.len_utf8());
            let unknown = e.message.strip_prefix("undeclared reference to '").and_then(|m| m.strip_suffix('\''));
            let span = node.str_span(start..unknown.map_or(end, |name| start + name.rsplit('.').next().unwrap_or(name).len()));
            let mut d = match unknown {
                Some(name) => {
                    let mut d = Diagnostic::error(codes::CEL_UNKNOWN_FUNCTION, span, format!("unknown CEL function `{name}`"));
                    let known = cel::library::STANDARD.iter().copied().chain(cel::FUNCTIONS.iter().map(|f| f.name));
                    if let Some(best) = did_you_mean(name, known) {
                        d = d.with_fix(format!("did you mean `{best}`?"), span, Some(best.to_owned()));
                    }
                    d
                }
                None => Diagnostic::error(codes::CEL_SYNTAX, span, format!("CEL syntax error: {}", e.message)),
            };
            d = d.with_note(format!("at line {}, column {} of the expression", e.line, e.column));
            out.push(d);
        }
    }
}

/// The byte offset of the `chars`-th character.
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}
