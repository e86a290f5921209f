//! The syntax tree of a JMESPath expression. Every node keeps its byte span in the source text.

use std::fmt;

use serde_json::Value;

/// A byte range `start..end` in the expression text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Eq => "==",
            Comparator::Ne => "!=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }
}

/// A parsed expression. It is immutable, so one parse serves any number of evaluations and threads.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `@`, and the implicit current node on either side of a projection.
    Current,
    /// `foo` or `"foo"`.
    Field(String),
    /// A backtick JSON literal or a raw `'string'`.
    Literal(Value),
    /// `lhs.rhs` and `lhs[index]`: evaluate `rhs` against the result of `lhs`.
    Subexpr(Box<Expr>, Box<Expr>),
    /// `[n]`; negative counts from the end.
    Index(i64),
    /// `[start:stop:step]`.
    Slice { start: Option<i64>, stop: Option<i64>, step: Option<i64> },
    /// `lhs[*].rhs`, `lhs[].rhs` and slices: `rhs` applied to every element of the array `lhs`.
    Projection(Box<Expr>, Box<Expr>),
    /// `lhs.*.rhs`: `rhs` applied to every value of the object `lhs`.
    ValueProjection(Box<Expr>, Box<Expr>),
    /// `lhs[?cond].rhs`.
    FilterProjection { lhs: Box<Expr>, rhs: Box<Expr>, cond: Box<Expr> },
    /// `lhs[]`: one level of nested arrays merged.
    Flatten(Box<Expr>),
    /// `[a, b]`.
    MultiList(Vec<Expr>),
    /// `{k: a, l: b}`.
    MultiHash(Vec<(String, Expr)>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Comparator, Box<Expr>, Box<Expr>),
    Pipe(Box<Expr>, Box<Expr>),
    Call { name: String, name_span: Span, args: Vec<Expr> },
    /// `&expr`, only meaningful as a function argument.
    ExprRef(Box<Expr>),
}

/// One function call found in an expression, for the checker and the language server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite<'a> {
    pub name: &'a str,
    pub args_len: usize,
    /// The span of the function name.
    pub name_span: Span,
    /// The span of the whole call.
    pub span: Span,
}

impl Expr {
    pub fn span(&self) -> Span {
        self.span
    }

    /// The direct children, in source order.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Current
            | ExprKind::Field(_)
            | ExprKind::Literal(_)
            | ExprKind::Index(_)
            | ExprKind::Slice { .. } => Vec::new(),
            ExprKind::Subexpr(a, b)
            | ExprKind::Projection(a, b)
            | ExprKind::ValueProjection(a, b)
            | ExprKind::Or(a, b)
            | ExprKind::And(a, b)
            | ExprKind::Compare(_, a, b)
            | ExprKind::Pipe(a, b) => vec![a, b],
            ExprKind::FilterProjection { lhs, rhs, cond } => vec![lhs, cond, rhs],
            ExprKind::Flatten(a) | ExprKind::Not(a) | ExprKind::ExprRef(a) => vec![a],
            ExprKind::MultiList(items) | ExprKind::Call { args: items, .. } => items.iter().collect(),
            ExprKind::MultiHash(pairs) => pairs.iter().map(|(_, e)| e).collect(),
        }
    }

    /// Visits this node and every descendant, parents before children. Iterative, so a deep
    /// tree cannot overflow the stack.
    pub fn walk<'a>(&'a self, mut visit: impl FnMut(&'a Expr)) {
        let mut stack = vec![self];
        while let Some(expr) = stack.pop() {
            visit(expr);
            let mut children = expr.children();
            children.reverse();
            stack.extend(children);
        }
    }

    /// Every function call in the expression, in source order.
    pub fn calls(&self) -> impl Iterator<Item = CallSite<'_>> {
        let mut found = Vec::new();
        self.walk(|expr| {
            if let ExprKind::Call { name, name_span, args } = &expr.kind {
                found.push(CallSite { name, args_len: args.len(), name_span: *name_span, span: expr.span });
            }
        });
        found.into_iter()
    }
}

/// Prints the tree as an S-expression, e.g. `(subexpr (field "a") (index 0))`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Current => f.write_str("@"),
            ExprKind::Field(name) => write!(f, "(field {})", Value::String(name.clone())),
            ExprKind::Literal(value) => write!(f, "(literal {value})"),
            ExprKind::Subexpr(a, b) => write!(f, "(subexpr {a} {b})"),
            ExprKind::Index(i) => write!(f, "(index {i})"),
            ExprKind::Slice { start, stop, step } => {
                let part = |p: &Option<i64>| p.map_or_else(|| "_".to_string(), |n| n.to_string());
                write!(f, "(slice {} {} {})", part(start), part(stop), part(step))
            }
            ExprKind::Projection(a, b) => write!(f, "(project {a} {b})"),
            ExprKind::ValueProjection(a, b) => write!(f, "(project-values {a} {b})"),
            ExprKind::FilterProjection { lhs, rhs, cond } => write!(f, "(filter {lhs} {cond} {rhs})"),
            ExprKind::Flatten(a) => write!(f, "(flatten {a})"),
            ExprKind::MultiList(items) => {
                f.write_str("(list")?;
                for item in items {
                    write!(f, " {item}")?;
                }
                f.write_str(")")
            }
            ExprKind::MultiHash(pairs) => {
                f.write_str("(hash")?;
                for (key, value) in pairs {
                    write!(f, " ({} {value})", Value::String(key.clone()))?;
                }
                f.write_str(")")
            }
            ExprKind::Or(a, b) => write!(f, "(or {a} {b})"),
            ExprKind::And(a, b) => write!(f, "(and {a} {b})"),
            ExprKind::Not(a) => write!(f, "(not {a})"),
            ExprKind::Compare(op, a, b) => write!(f, "({} {a} {b})", op.symbol()),
            ExprKind::Pipe(a, b) => write!(f, "(pipe {a} {b})"),
            ExprKind::Call { name, args, .. } => {
                write!(f, "(call {name}")?;
                for arg in args {
                    write!(f, " {arg}")?;
                }
                f.write_str(")")
            }
            ExprKind::ExprRef(a) => write!(f, "(expref {a})"),
        }
    }
}
