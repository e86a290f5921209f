//! Spanned YAML: every node of a policy file knows its file and byte range.
//!
//! Scalars keep their source text and style, so later stages can tell `"true"` from `true` and
//! point inside a string (at a JMESPath column, say). Scalar resolution follows the YAML 1.1
//! flavour Kubernetes uses (sigs.k8s.io/yaml); see [`resolve_plain`].

use crate::source::Span;

/// One YAML node with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string scalar. `style` says how it was written; the span covers the quotes, if any,
    /// while `content_offset` is where the string's first character starts in the file (for a
    /// plain or single-line quoted scalar this makes columns inside the string exact).
    Str(StrScalar),
    Seq(Vec<Node>),
    /// Keys in document order. Duplicate keys are kept here and reported by the checker.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StrScalar {
    pub text: String,
    pub style: ScalarStyle,
    /// Byte offset in the file of the first character of the string's content, when the string
    /// maps one-to-one onto the source (plain, or quoted without escapes or line folding).
    pub content_offset: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// How a plain (unquoted) scalar resolves. YAML 1.1 as in Kubernetes.
pub fn resolve_plain(_text: &str) -> Value {
    todo!("owner: syntax")
}
