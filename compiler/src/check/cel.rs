//! Checks of the CEL expressions in a policy: syntax errors and calls to unknown functions,
//! pointed at the line and column inside the expression, and a warning when the static cost
//! estimate is far beyond what Kubernetes allows one expression.
//!
//! CEL lives in the CEL policy kinds (every `expression`, `messageExpression` and
//! `valueExpression` under `spec`) and, in `kyverno.io` rules, under `validate.cel` and
//! `celPreconditions`.
//!
//! Where the policy matches only kinds whose shape is known (Pods and the pod controllers, see
//! [`super::shapes`]), the fields an expression reads from `object` and `oldObject` are checked
//! against those shapes: a field none of the kinds has is a warning with a did-you-mean.

use palisade_stdlib::cel;

use super::codes;
use super::shapes::{self, Lookup};
use super::suggest::did_you_mean;
use palisade_stdlib::cel::fields::{self, Step};
use crate::diagnostic::Diagnostic;
use crate::syntax::{Node, Value};

const EXPRESSION_KEYS: [&str; 3] = ["expression", "messageExpression", "valueExpression"];

/// Checks every CEL expression of a policy document.
pub fn check(root: &Node, out: &mut Vec<Diagnostic>) {
    let api = root.get("apiVersion").and_then(Node::as_str).unwrap_or_default();
    let Some(spec) = root.get("spec") else { return };
    if api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/") {
        let resources = spec
            .get("matchConstraints")
            .and_then(|m| m.get("resourceRules"))
            .and_then(Node::as_seq)
            .map(|rules| rules.iter().flat_map(|r| strings(r.get("resources"))).collect::<Vec<_>>())
            .unwrap_or_default();
        expressions(spec, &known_roots(&resources), out);
    } else if let Some(Value::Seq(rules)) = spec.get("rules").map(|r| &r.value) {
        for rule in rules {
            let roots = known_roots(&rule_kinds(rule));
            if let Some(pre) = rule.get("celPreconditions") {
                expressions(pre, &roots, out);
            }
            if let Some(c) = rule.get("validate").and_then(|v| v.get("cel")) {
                expressions(c, &roots, out);
            }
        }
    }
}

fn strings(node: Option<&Node>) -> Vec<String> {
    node.and_then(Node::as_seq).map(|s| s.iter().filter_map(Node::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

/// The kinds a `kyverno.io` rule matches (`match.any/all[].resources.kinds`, or
/// `match.resources.kinds`), without group and version.
fn rule_kinds(rule: &Node) -> Vec<String> {
    let Some(m) = rule.get("match") else { return Vec::new() };
    let mut filters: Vec<&Node> = Vec::new();
    for key in ["any", "all"] {
        if let Some(list) = m.get(key).and_then(Node::as_seq) {
            filters.extend(list.iter());
        }
    }
    filters.push(m);
    filters
        .iter()
        .flat_map(|f| strings(f.get("resources").and_then(|r| r.get("kinds"))))
        .map(|k| k.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

/// The shapes of the matched kinds, when every one of them is known; empty otherwise (an
/// unknown kind, a wildcard or no kinds at all: nothing can be said).
fn known_roots(kinds: &[String]) -> Vec<&'static str> {
    let roots: Option<Vec<&'static str>> = kinds.iter().map(|k| shapes::root_type(k)).collect();
    let mut roots = roots.filter(|r| !r.is_empty()).unwrap_or_default();
    roots.sort_unstable();
    roots.dedup();
    roots
}

/// Visits the expression strings under `node`. Recursion follows the YAML nesting, which the
/// parser bounds.
fn expressions(node: &Node, roots: &[&'static str], out: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = k.as_key();
                if key.as_deref().is_some_and(|k| EXPRESSION_KEYS.contains(&k)) && v.as_str().is_some() {
                    check_expression(v, out);
                    if !roots.is_empty() {
                        check_fields(v, roots, out);
                    }
                } else {
                    expressions(v, roots, out);
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| expressions(i, roots, out)),
        _ => {}
    }
}

/// Warns about fields of `object` / `oldObject` that none of the matched kinds has.
fn check_fields(node: &Node, roots: &[&'static str], out: &mut Vec<Diagnostic>) {
    let Some(text) = node.as_str() else { return };
    let mut reported = Vec::new();
    for u in fields::field_uses(text) {
        // Each use walks from the roots; a chain reports its first unknown field once.
        let mut types: Vec<&'static str> = roots.to_vec();
        for (i, step) in u.steps.iter().enumerate() {
            let last = i + 1 == u.steps.len();
            match step {
                Step::Field(name) => {
                    let mut next = Vec::new();
                    let mut missing: Vec<&'static str> = Vec::new();
                    let mut unknown = false;
                    for t in &types {
                        match shapes::field(t, name) {
                            Lookup::Found(f) => next.push(f),
                            Lookup::Missing(names) => missing.extend(names),
                            Lookup::Unknown => unknown = true,
                        }
                    }
                    if next.is_empty() && !unknown && !missing.is_empty() {
                        if last && !reported.contains(&u.offset) {
                            reported.push(u.offset);
                            report(node, text, &u, name, &types, &missing, out);
                        }
                        break;
                    }
                    if unknown && next.is_empty() {
                        break;
                    }
                    types = next;
                }
                Step::Elem => types = types.iter().filter_map(|t| shapes::element(t)).collect(),
                Step::Iter => types = types.iter().filter_map(|t| shapes::iterated(t)).collect(),
            }
            if types.is_empty() {
                break;
            }
        }
    }
}

fn report(node: &Node, text: &str, u: &fields::FieldUse, name: &str, types: &[&str], known: &[&'static str], out: &mut Vec<Diagnostic>) {
    let start = byte_offset(text, u.offset);
    let end = byte_offset(text, u.offset + u.len);
    let span = node.str_span(start..end);
    let owner: Vec<&str> = types.iter().map(|t| t.rsplit("::").next().unwrap_or(t)).collect();
    let mut d = Diagnostic::warning(
        codes::CEL_UNKNOWN_FIELD,
        span,
        format!("`{name}` is not a field of {}", owner.join(" or ")),
    )
    .with_note("the policy matches only kinds whose shape is known; reading a missing field fails at evaluation (use `has()` or `.?` for optional fields)");
    let mut candidates: Vec<&'static str> = known.to_vec();
    candidates.sort_unstable();
    candidates.dedup();
    if let Some(best) = did_you_mean(name, candidates.iter().copied()) {
        d = d.with_fix(format!("did you mean `{best}`?"), span, Some(best.to_owned()));
    }
    out.push(d);
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
