//! Kyverno's pattern language: anchored keys, operator expressions in string values, `$()`
//! references, and pattern trees (`validate.pattern`, strategic-merge patches).
//!
//! The grammar is in `grammar.pest`; it follows Kyverno's order of checks, which decides what a
//! string means: a value equal to the whole pattern matches first; then the pattern is split on
//! every `|`, then every `&`; each condition is trimmed of spaces and read as `>=`, `<=`, `>`, `<`
//! or `!` followed by an operand (only if it has at least two characters), else as a range
//! `a!-b` or `a-b`, else as an equality. Operands are typed at run time (duration, then quantity,
//! then wildcard string), because Kyverno decides by trying each against the resource value.
//!
//! Spans inside strings are [`TextRange`]s relative to the string; [`MapEntry::key_sub_span`]
//! and the `content_offset` of a [`StrPattern`] map them to file positions.
//!
//! # Diagnostic codes
//! | code | severity | meaning |
//! | --- | --- | --- |
//! | P0501 | error | anchor not allowed in this rule type (`+()` in validate; `=()`, `X()`, `^()` in mutate) |
//! | P0502 | warning | key looks like an anchor but is not one (`(k`, `k)`, `XX(k)`, `X()`) |
//! | P0503 | error | existence anchor `^()` whose value is not a non-empty list of maps |
//! | P0504 | warning | value of a negation anchor `X()` is not null; Kyverno ignores it |
//! | P0505 | error | empty pattern list |
//! | P0506 | warning | list element after the first, which validate ignores |
//! | P0507 | warning | range whose lower bound is above its upper bound |
//! | P0508 | warning | operator without operand (`>=`), or a lone `>`, `<`, `!` compared literally |
//! | P0509 | warning | `$(` without a closing `)`, kept as plain text |
//! | P0510 | warning | ordering operator on an operand that is no number, quantity or duration |
//! | P0511 | warning | `!a-b`, which is "not the string a-b"; the not-in-range form is `a!-b` |
//! | P0512 | warning | wildcard key outside `metadata.labels`/`metadata.annotations`, matched literally |
//! | P0513 | error | pattern nested too deeply |

mod expr;
mod grammar;
mod key;
mod reference;
mod tree;

pub use expr::{
    Alternative, CompareOp, Condition, ConditionKind, Operand, TextRange, ValueExpr,
    parse_value_expr,
};
pub use key::{AnchorKind, Key, parse_key};
pub use reference::{
    Reference, has_escaped_reference, has_template, scan_references, unclosed_references,
};
pub use tree::{
    DynamicStr, MAX_DEPTH, MapEntry, Pattern, PatternKind, PatternMode, StrPattern, StrValue,
    parse_pattern,
};

/// The stable diagnostic codes of this module (see the table above).
pub mod codes {
    pub const ANCHOR_NOT_ALLOWED: &str = "P0501";
    pub const MALFORMED_ANCHOR: &str = "P0502";
    pub const EXISTENCE_VALUE: &str = "P0503";
    pub const NEGATION_VALUE_IGNORED: &str = "P0504";
    pub const EMPTY_LIST: &str = "P0505";
    pub const IGNORED_ELEMENT: &str = "P0506";
    pub const EMPTY_RANGE: &str = "P0507";
    pub const MISSING_OPERAND: &str = "P0508";
    pub const UNCLOSED_REFERENCE: &str = "P0509";
    pub const ORDERING_ON_STRING: &str = "P0510";
    pub const NEGATED_RANGE: &str = "P0511";
    pub const LITERAL_WILDCARD_KEY: &str = "P0512";
    pub const TOO_DEEP: &str = "P0513";
}
