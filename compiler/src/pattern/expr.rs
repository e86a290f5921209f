//! Operator expressions in string values: `>=1Gi`, `!*`, `1-10`, `a | b & c`.
//!
//! [`parse_value_expr`] is what the runtime calls too, after `{{ }}` templates and `$()`
//! references have been substituted, so it never fails and costs one pest parse.

use std::fmt;

use pest::Parser;
use pest::iterators::Pair;

use super::grammar::{PatternGrammar, Rule};

/// A byte range relative to the start of the string it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: usize, end: usize) -> TextRange {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        TextRange {
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl fmt::Display for TextRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A parsed string pattern. It matches a value when the value is a string equal to `raw`, or
/// when any alternative matches; an alternative matches when all its conditions do.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueExpr {
    /// The pattern as written. Kyverno compares a string value with it before anything else, so
    /// `a|b` as a value matches the pattern `a|b` even though neither alternative does.
    pub raw: String,
    /// `|`-separated alternatives, in order; never empty.
    pub alternatives: Vec<Alternative>,
}

/// `&`-separated conditions; never empty.
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    pub conditions: Vec<Condition>,
    pub span: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub kind: ConditionKind,
    /// The condition after trimming spaces (the operator, if any, included).
    pub span: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConditionKind {
    /// A comparison with one operand. `Equal` and `NotEqual` are wildcard matches when the
    /// operand is neither a duration nor a quantity; the ordering operators never match strings.
    Compare { op: CompareOp, operand: Operand },
    /// `low-high`: `>= low` and `<= high`.
    InRange { low: Operand, high: Operand },
    /// `low!-high`: `< low` or `> high`.
    NotInRange { low: Operand, high: Operand },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
}

impl CompareOp {
    /// The operator as Kyverno spells it (`Equal` has no spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Equal => "",
            CompareOp::NotEqual => "!",
            CompareOp::Greater => ">",
            CompareOp::GreaterEqual => ">=",
            CompareOp::Less => "<",
            CompareOp::LessEqual => "<=",
        }
    }

    /// Whether the operator orders its operands, which only durations and quantities allow.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Equal | CompareOp::NotEqual)
    }

    fn from_text(text: &str) -> CompareOp {
        match text {
            ">=" => CompareOp::GreaterEqual,
            "<=" => CompareOp::LessEqual,
            ">" => CompareOp::Greater,
            "<" => CompareOp::Less,
            _ => CompareOp::NotEqual,
        }
    }
}

/// An operand: a span of the expression's `raw` text, trimmed of whitespace as Kyverno does.
/// Whether it is a duration, a quantity or a wildcard string is decided at run time, since
/// Kyverno tries each in turn against the value being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    pub span: TextRange,
}

impl ValueExpr {
    /// The text of an operand (or of any span) of this expression.
    pub fn text(&self, span: TextRange) -> &str {
        self.raw.get(span.range()).unwrap_or("")
    }

    /// All conditions, in order.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.alternatives.iter().flat_map(|a| a.conditions.iter())
    }
}

/// Parse a string pattern. Never fails: text that is not an operator expression is an equality.
pub fn parse_value_expr(s: &str) -> ValueExpr {
    let alternatives = if is_plain_equality(s) {
        vec![whole_string_equality(s)]
    } else {
        parse_with_grammar(s)
    };
    ValueExpr {
        raw: s.to_owned(),
        alternatives,
    }
}

/// Most patterns (names, images, wildcards) are one equality. Without `|`, `&` or `-` there is
/// one condition and no range, and without a leading operator or surrounding space the whole
/// string is that condition, so the grammar can be skipped; this cuts the cost of re-parsing
/// templated strings at run time.
fn is_plain_equality(s: &str) -> bool {
    !s.contains(['|', '&', '-']) && !s.starts_with(['>', '<', '!', ' ']) && !s.ends_with(' ')
}

fn parse_with_grammar(s: &str) -> Vec<Alternative> {
    PatternGrammar::parse(Rule::value, s)
        .ok()
        .and_then(|mut pairs| pairs.next())
        .map(|value| {
            value
                .into_inner()
                .filter(|p| p.as_rule() == Rule::alternative)
                .map(alternative)
                .collect::<Vec<_>>()
        })
        .filter(|alternatives| !alternatives.is_empty())
        // The grammar accepts every string; this fallback only keeps the function total.
        .unwrap_or_else(|| vec![whole_string_equality(s)])
}

fn whole_string_equality(s: &str) -> Alternative {
    let span = TextRange::new(0, s.len());
    let operand = Operand {
        span: trim_whitespace(s, span),
    };
    Alternative {
        conditions: vec![Condition {
            kind: ConditionKind::Compare {
                op: CompareOp::Equal,
                operand,
            },
            span,
        }],
        span,
    }
}

fn range_of(pair: &Pair<'_, Rule>) -> TextRange {
    let span = pair.as_span();
    TextRange::new(span.start(), span.end())
}

fn alternative(pair: Pair<'_, Rule>) -> Alternative {
    let span = range_of(&pair);
    let conditions = pair.into_inner().filter_map(condition).collect();
    Alternative { conditions, span }
}

fn condition(pair: Pair<'_, Rule>) -> Option<Condition> {
    let input = pair.get_input();
    let body = pair.into_inner().next()?;
    let span = range_of(&body);
    let kind = match body.as_rule() {
        Rule::comparison => {
            let mut inner = body.into_inner();
            let op = CompareOp::from_text(inner.next()?.as_str());
            let operand = inner
                .next()
                .map_or(TextRange::new(span.end as usize, span.end as usize), |p| {
                    range_of(&p)
                });
            ConditionKind::Compare {
                op,
                operand: Operand {
                    span: trim_whitespace(input, operand),
                },
            }
        }
        Rule::in_range | Rule::not_in_range => {
            let is_in = body.as_rule() == Rule::in_range;
            let mut bounds = body.into_inner();
            let low = Operand {
                span: range_of(&bounds.next()?),
            };
            let high = Operand {
                span: range_of(&bounds.next()?),
            };
            if is_in {
                ConditionKind::InRange { low, high }
            } else {
                ConditionKind::NotInRange { low, high }
            }
        }
        _ => ConditionKind::Compare {
            op: CompareOp::Equal,
            operand: Operand {
                span: trim_whitespace(input, span),
            },
        },
    };
    Some(Condition { kind, span })
}

/// Narrow `span` to exclude leading and trailing whitespace, as Go's `strings.TrimSpace` does
/// (both use the Unicode `White_Space` property).
fn trim_whitespace(input: &str, span: TextRange) -> TextRange {
    let Some(text) = input.get(span.range()) else {
        return span;
    };
    let start = span.start as usize + (text.len() - text.trim_start().len());
    let end = span.start as usize + text.trim_end().len();
    TextRange::new(start, end.max(start))
}

impl fmt::Display for ValueExpr {
    /// A compact rendering: alternatives joined by ` | `, conditions by ` & `, operands quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternative) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            for (j, condition) in alternative.conditions.iter().enumerate() {
                if j > 0 {
                    f.write_str(" & ")?;
                }
                match &condition.kind {
                    ConditionKind::Compare { op, operand } => {
                        let op = if *op == CompareOp::Equal {
                            "=="
                        } else {
                            op.as_str()
                        };
                        write!(f, "{op} {:?}", self.text(operand.span))?;
                    }
                    ConditionKind::InRange { low, high } => {
                        write!(
                            f,
                            "in {:?}..{:?}",
                            self.text(low.span),
                            self.text(high.span)
                        )?;
                    }
                    ConditionKind::NotInRange { low, high } => {
                        write!(
                            f,
                            "not in {:?}..{:?}",
                            self.text(low.span),
                            self.text(high.span)
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut for plain equalities must agree with the grammar.
    #[test]
    fn plain_equality_shortcut_agrees_with_the_grammar() {
        let cases = [
            "nginx",
            "*",
            "?*",
            "",
            "\t>5",
            "a b",
            "é",
            "*:latest",
            "$(./../x)",
            "1.5h",
            "=x",
            "\tx\t",
        ];
        for case in cases {
            assert!(is_plain_equality(case), "{case:?}");
            assert_eq!(
                parse_with_grammar(case),
                vec![whole_string_equality(case)],
                "{case:?}"
            );
        }
    }
}
