//! Patterns as typed trees: the YAML of a `validate.pattern` or a strategic-merge patch, with
//! parsed keys and string expressions, and the diagnostics Kyverno's rules call for.

use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::{Node, Value};

use super::codes;
use super::expr::{CompareOp, ConditionKind, TextRange, ValueExpr, parse_value_expr};
use super::key::{AnchorKind, Key, parse_key};
use super::reference::{
    Reference, has_escaped_reference, has_template, scan_references, unclosed_references,
};

/// Which rule type the pattern belongs to; it decides the anchors allowed and whether plain
/// string values are expressions (validate) or values to write (mutate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternMode {
    Validate,
    Mutate,
}

/// Deeper patterns are cut off with a diagnostic, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PatternKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(StrPattern),
    Seq(Vec<Pattern>),
    /// Entries in document order.
    Map(Vec<MapEntry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    pub key: Key,
    /// The key node's span in the file.
    pub key_span: Span,
    /// Where the key's text starts in the file, when it maps one-to-one onto the source.
    pub key_offset: Option<u32>,
    pub value: Pattern,
}

impl MapEntry {
    /// The file span of a range of the key text (the whole key node if positions are unknown).
    pub fn key_sub_span(&self, range: TextRange) -> Span {
        sub_span(self.key_span, self.key_offset, range)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StrPattern {
    pub value: StrValue,
    /// Where the string's text starts in the file, when it maps one-to-one onto the source.
    pub content_offset: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StrValue {
    /// A pattern expression, parsed once here.
    Expr(ValueExpr),
    /// A string substituted at run time (templates, references, escapes), then parsed with
    /// [`parse_value_expr`] when it is a pattern.
    Dynamic(DynamicStr),
    /// A value a mutation writes as is.
    Literal(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DynamicStr {
    pub raw: String,
    pub has_template: bool,
    pub references: Vec<Reference>,
    /// `\$(` or `\{{` escapes, which lose their backslash after substitution.
    pub has_escape: bool,
    /// Whether the substituted string is a pattern expression (else a value to write).
    pub is_pattern: bool,
}

/// Parse a pattern tree. Never fails; the diagnostics use the codes in [`codes`].
pub fn parse_pattern(node: &Node, mode: PatternMode) -> (Pattern, Vec<Diagnostic>) {
    let mut walker = Walker {
        mode,
        diagnostics: Vec::new(),
        names: Vec::new(),
    };
    let pattern = walker.node(
        node,
        Context {
            depth: 0,
            condition: mode == PatternMode::Validate,
        },
    );
    (pattern, walker.diagnostics)
}

#[derive(Clone, Copy)]
struct Context {
    depth: usize,
    /// Strings here are matched against the resource (everywhere in validate; in mutate, under
    /// conditional and global anchors).
    condition: bool,
}

struct Walker {
    mode: PatternMode,
    diagnostics: Vec<Diagnostic>,
    /// Field names from the root to the current map, anchors stripped.
    names: Vec<String>,
}

impl Walker {
    fn node(&mut self, node: &Node, cx: Context) -> Pattern {
        let kind = if cx.depth >= MAX_DEPTH {
            self.diagnostics.push(Diagnostic::error(
                codes::TOO_DEEP,
                node.span,
                format!("pattern nested deeper than {MAX_DEPTH} levels; the rest is ignored"),
            ));
            PatternKind::Null
        } else {
            match &node.value {
                Value::Null => PatternKind::Null,
                Value::Bool(b) => PatternKind::Bool(*b),
                Value::Int(i) => PatternKind::Int(*i),
                Value::Float(f) => PatternKind::Float(*f),
                Value::Str(s) => {
                    PatternKind::Str(self.string(&s.text, s.content_offset, node.span, cx))
                }
                Value::Seq(items) => PatternKind::Seq(self.seq(items, node.span, cx)),
                Value::Map(entries) => PatternKind::Map(self.map(entries, cx)),
            }
        };
        Pattern {
            kind,
            span: node.span,
        }
    }

    fn seq(&mut self, items: &[Node], span: Span, cx: Context) -> Vec<Pattern> {
        let child = Context {
            depth: cx.depth + 1,
            ..cx
        };
        if cx.condition {
            if items.is_empty() {
                self.diagnostics.push(
                    Diagnostic::error(codes::EMPTY_LIST, span, "empty pattern list")
                        .with_note("Kyverno fails every resource against an empty list (\"pattern Array empty\"); remove the field or give one element"),
                );
            }
            // Kyverno compares nested lists element by element, but for a map or a scalar it
            // uses only the first element and ignores the rest.
            let first_is_list = items
                .first()
                .is_some_and(|n| matches!(n.value, Value::Seq(_)));
            if self.mode == PatternMode::Validate && items.len() > 1 && !first_is_list {
                for extra in items.iter().skip(1) {
                    self.diagnostics.push(
                        Diagnostic::warning(codes::IGNORED_ELEMENT, extra.span, "this list element is ignored")
                            .with_note("Kyverno checks every resource element against the first pattern element only; use `anyPattern` or combine the conditions with `|` to allow alternatives"),
                    );
                }
            }
        }
        items.iter().map(|item| self.node(item, child)).collect()
    }

    fn map(&mut self, entries: &[(Node, Node)], cx: Context) -> Vec<MapEntry> {
        let mut out = Vec::with_capacity(entries.len());
        for (key_node, value_node) in entries {
            let (text, key_offset) = key_text(key_node);
            let key = parse_key(&text);
            let entry_key_span = key_node.span;
            let whole_key = sub_span(entry_key_span, key_offset, TextRange::new(0, text.len()));
            self.check_key(&key, whole_key, value_node);
            let condition = cx.condition
                || matches!(key.anchor, Some(AnchorKind::Condition | AnchorKind::Global));
            let child = Context {
                depth: cx.depth + 1,
                condition,
            };
            self.names.push(key.name.clone());
            let value = self.node(value_node, child);
            self.names.pop();
            out.push(MapEntry {
                key,
                key_span: entry_key_span,
                key_offset,
                value,
            });
        }
        out
    }

    fn check_key(&mut self, key: &Key, span: Span, value: &Node) {
        if key.malformed_anchor {
            self.diagnostics.push(
                Diagnostic::warning(codes::MALFORMED_ANCHOR, span, format!("`{}` is not a valid anchor", key.raw))
                    .with_note("an anchor is one of `(k)`, `=(k)`, `X(k)`, `^(k)`, `<(k)`, `+(k)` around a non-empty key; Kyverno looks this key up literally, parentheses included"),
            );
        }
        if let Some(kind) = key.anchor {
            self.check_anchor(kind, key, span, value);
        }
        if key.has_wildcard() && !self.under_metadata_labels() {
            self.diagnostics.push(
                Diagnostic::warning(codes::LITERAL_WILDCARD_KEY, span, format!("the wildcard in `{}` is matched literally here", key.name))
                    .with_note("Kyverno expands wildcards in keys only under `metadata.labels` and `metadata.annotations`"),
            );
        }
    }

    fn check_anchor(&mut self, kind: AnchorKind, key: &Key, span: Span, value: &Node) {
        let allowed = match self.mode {
            PatternMode::Validate => kind != AnchorKind::AddIfNotPresent,
            PatternMode::Mutate => {
                matches!(
                    kind,
                    AnchorKind::Condition | AnchorKind::Global | AnchorKind::AddIfNotPresent
                )
            }
        };
        if !allowed {
            let (rule, hint) = match self.mode {
                PatternMode::Validate => (
                    "validate",
                    "`+(k)` adds a field, which only a mutate rule can do",
                ),
                PatternMode::Mutate => {
                    ("mutate", "a mutate pattern allows `(k)`, `<(k)` and `+(k)`")
                }
            };
            self.diagnostics.push(
                Diagnostic::error(
                    codes::ANCHOR_NOT_ALLOWED,
                    span,
                    format!(
                        "{} `{}` is not allowed in a {rule} pattern",
                        kind.name(),
                        key.raw
                    ),
                )
                .with_note(hint),
            );
            return;
        }
        match kind {
            AnchorKind::Existence => self.check_existence(key, value),
            AnchorKind::Negation if !is_null_like(value) => {
                self.diagnostics.push(
                    Diagnostic::warning(codes::NEGATION_VALUE_IGNORED, value.span, "the value of a negation anchor is ignored")
                        .with_note(format!("`X({})` only requires the field to be absent; write `\"null\"` as its value", key.name))
                        .with_fix("replace the value with \"null\"", value.span, Some("\"null\"".to_owned())),
                );
            }
            _ => {}
        }
    }

    fn check_existence(&mut self, key: &Key, value: &Node) {
        let problem = match &value.value {
            // An empty list is reported as such by `seq`.
            Value::Seq(items) if items.is_empty() => None,
            Value::Seq(items) if items.iter().any(|i| !matches!(i.value, Value::Map(_))) => {
                Some("each element under an existence anchor must be a map")
            }
            Value::Seq(_) => None,
            _ => Some("an existence anchor's value must be a list of maps"),
        };
        if let Some(message) = problem {
            self.diagnostics.push(
                Diagnostic::error(codes::EXISTENCE_VALUE, value.span, message)
                    .with_note(format!("`^({})` requires at least one element of the resource list to match each pattern map", key.name)),
            );
        }
    }

    fn under_metadata_labels(&self) -> bool {
        let n = self.names.len();
        let parent = n.checked_sub(1).and_then(|i| self.names.get(i));
        let grandparent = n.checked_sub(2).and_then(|i| self.names.get(i));
        matches!(parent.map(String::as_str), Some("labels" | "annotations"))
            && grandparent.map(String::as_str) == Some("metadata")
    }

    fn string(&mut self, text: &str, offset: Option<u32>, span: Span, cx: Context) -> StrPattern {
        let references = scan_references(text);
        for at in unclosed_references(text, &references) {
            self.diagnostics.push(
                Diagnostic::warning(codes::UNCLOSED_REFERENCE, sub_span(span, offset, TextRange::new(at, at + 2)), "`$(` without a closing `)` is plain text")
                    .with_note("a reference is `$(path)` with no space inside; Kyverno keeps anything else literally"),
            );
        }
        let template = has_template(text);
        let escape = has_escaped_reference(text) || text.contains("\\{{");
        let value = if template || escape || !references.is_empty() {
            StrValue::Dynamic(DynamicStr {
                raw: text.to_owned(),
                has_template: template,
                references,
                has_escape: escape,
                is_pattern: cx.condition,
            })
        } else if cx.condition {
            let expr = parse_value_expr(text);
            self.lint_expr(&expr, span, offset);
            StrValue::Expr(expr)
        } else {
            StrValue::Literal(text.to_owned())
        };
        StrPattern {
            value,
            content_offset: offset,
        }
    }

    fn lint_expr(&mut self, expr: &ValueExpr, span: Span, offset: Option<u32>) {
        for condition in expr.conditions() {
            let at = sub_span(span, offset, condition.span);
            let cond_text = expr.text(condition.span);
            match &condition.kind {
                ConditionKind::Compare {
                    op: CompareOp::Equal,
                    ..
                } if matches!(cond_text, ">" | "<" | "!") => {
                    self.diagnostics.push(
                        Diagnostic::warning(codes::MISSING_OPERAND, at, format!("`{cond_text}` alone is compared as the literal string \"{cond_text}\""))
                            .with_note("Kyverno reads an operator only when the condition has at least two characters"),
                    );
                }
                ConditionKind::Compare { op, operand } if op.is_ordering() => {
                    let operand_text = expr.text(operand.span);
                    if operand_text.is_empty() {
                        self.diagnostics.push(
                            Diagnostic::warning(codes::MISSING_OPERAND, at, format!("`{}` has no operand, so it never matches", op.as_str()))
                                .with_note("write a number, quantity or duration after the operator, e.g. `>=1Gi`"),
                        );
                    } else if !could_be_number(operand_text) {
                        self.diagnostics.push(
                            Diagnostic::warning(codes::ORDERING_ON_STRING, at, format!("`{}` compares only numbers, quantities and durations, so `{cond_text}` never matches", op.as_str()))
                                .with_note(format!("\"{operand_text}\" is neither a quantity nor a duration; strings support only equality and `!`")),
                        );
                    }
                }
                ConditionKind::Compare {
                    op: CompareOp::NotEqual,
                    operand,
                } => {
                    let operand_text = expr.text(operand.span);
                    if let Some((low, high)) = as_range(operand_text) {
                        let replacement = format!("{low}!-{high}");
                        self.diagnostics.push(
                            Diagnostic::warning(codes::NEGATED_RANGE, at, format!("`{cond_text}` means \"not the string {operand_text}\", not \"outside the range\""))
                                .with_note("Kyverno reads `!` before the range check; a not-in-range condition is written `low!-high`")
                                .with_fix(format!("write `{replacement}`"), at, Some(replacement.clone())),
                        );
                    }
                }
                ConditionKind::InRange { low, high } | ConditionKind::NotInRange { low, high } => {
                    let (low, high) = (expr.text(low.span), expr.text(high.span));
                    if is_reversed(low, high) {
                        let message = match condition.kind {
                            ConditionKind::InRange { .. } => {
                                format!("the range `{cond_text}` is empty, so it never matches")
                            }
                            _ => format!(
                                "the range `{cond_text}` is empty, so this condition always matches"
                            ),
                        };
                        self.diagnostics.push(
                            Diagnostic::warning(codes::EMPTY_RANGE, at, message).with_note(
                                format!(
                                    "the lower bound {low} is greater than the upper bound {high}"
                                ),
                            ),
                        );
                    }
                }
                ConditionKind::Compare { .. } => {}
            }
        }
    }
}

/// The text of a key node (other scalars formatted as sigs.k8s.io/yaml does) and where it
/// starts in the file.
fn key_text(node: &Node) -> (String, Option<u32>) {
    let offset = match &node.value {
        Value::Str(s) => s.content_offset,
        _ => None,
    };
    (
        node.as_key().map(|k| k.into_owned()).unwrap_or_default(),
        offset,
    )
}

fn sub_span(node_span: Span, offset: Option<u32>, range: TextRange) -> Span {
    match offset {
        Some(start) => {
            let start = start as usize;
            Span::new(
                node_span.file,
                start + range.start as usize,
                start + range.end as usize,
            )
        }
        None => node_span,
    }
}

/// Null, or a string Kyverno documents for "no value" under a negation anchor.
fn is_null_like(node: &Node) -> bool {
    match &node.value {
        Value::Null => true,
        Value::Str(s) => matches!(s.text.as_str(), "null" | ""),
        _ => false,
    }
}

/// Durations and quantities both start with a sign, a digit or a decimal point.
fn could_be_number(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// The bounds of `text` if it is an in-range condition on its own.
fn as_range(text: &str) -> Option<(String, String)> {
    let expr = parse_value_expr(text);
    let mut conditions = expr.conditions();
    match (conditions.next().map(|c| &c.kind), conditions.next()) {
        (Some(ConditionKind::InRange { low, high }), None) => Some((
            expr.text(low.span).to_owned(),
            expr.text(high.span).to_owned(),
        )),
        _ => None,
    }
}

/// Whether `low > high` for bounds with the same unit suffix (`10-1`, `2Gi-1Gi`). Bounds with
/// different units would need quantity or duration arithmetic and are left alone.
fn is_reversed(low: &str, high: &str) -> bool {
    match (split_unit(low), split_unit(high)) {
        ((Some(a), unit_a), (Some(b), unit_b)) => unit_a == unit_b && a > b,
        _ => false,
    }
}

/// A bound's number and unit suffix: `2Gi` is `(2.0, "Gi")`.
fn split_unit(bound: &str) -> (Option<f64>, &str) {
    let digits_end = bound
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(bound.len());
    let number = bound.get(..digits_end).and_then(|n| n.parse::<f64>().ok());
    (number, bound.get(digits_end..).unwrap_or(""))
}
