//! JMESPath: a hand-written lexer and Pratt parser to a spanned syntax tree, and an evaluator
//! over `serde_json::Value` in two dialects: standard JMESPath, and Kyverno's, where a missing
//! key in a field path is an error (`Unknown key "x" in path`) and Kyverno's functions exist.
//!
//! Parse once, evaluate many times: [`Expr`] is immutable and `Send + Sync`.
//!
//! ```
//! use palisade_stdlib::jmespath::{eval, parse, EvalConfig};
//! let expr = parse("spec.containers[].name").unwrap();
//! let data = serde_json::json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
//! assert_eq!(eval(&expr, &data, &EvalConfig::default()).unwrap(), serde_json::json!(["a", "b"]));
//! ```

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod value;

pub use ast::{CallSite, Comparator, Expr, ExprKind, Span};
pub use error::{ErrorKind, EvalError, ParseError};
pub use value::{compare, equal, is_truthy, number, to_json, type_name};

use serde_json::Value;

/// Which JMESPath is spoken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The JMESPath specification: a missing key is `null`; only the standard functions.
    Standard,
    /// Kyverno's: a missing key in a field path is an error, and Kyverno's functions are added
    /// (and override standard ones of the same name, like `sum`).
    Kyverno,
}

/// How an evaluation runs and how much it may cost.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub dialect: Dialect,
    /// Steps one evaluation may take: one per node visited, per element projected, and per
    /// JSON node copied. Exceeding it gives `evaluation budget exceeded`.
    pub fuel: u64,
    /// How deeply evaluation may nest (expressions inside expressions, expression references).
    pub max_depth: usize,
}

/// The deepest expression [`parse`] accepts. Real policies nest a handful of levels; the bound
/// keeps parsing and evaluation well inside a 2 MiB thread stack even in debug builds.
pub const MAX_PARSE_DEPTH: usize = 100;

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { dialect: Dialect::Kyverno, fuel: 10_000_000, max_depth: 128 }
    }
}

impl EvalConfig {
    /// Standard JMESPath with the default limits.
    pub fn standard() -> Self {
        EvalConfig { dialect: Dialect::Standard, ..EvalConfig::default() }
    }

    /// Kyverno's dialect with the default limits.
    pub fn kyverno() -> Self {
        EvalConfig::default()
    }
}

/// Parses an expression. The error carries the byte offset of the offending token.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let expr = parser::parse(src, MAX_PARSE_DEPTH)?;
    check_depth(&expr)?;
    Ok(expr)
}

/// Rejects trees deeper than [`MAX_PARSE_DEPTH`]. Chains like `a.b.c...` nest in the tree without
/// nesting in the parser, and everything that walks the tree recursively relies on this bound.
fn check_depth(expr: &Expr) -> Result<(), ParseError> {
    let mut stack = vec![(expr, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_PARSE_DEPTH {
            return Err(ParseError::new(node.span.start, "expression too deeply nested"));
        }
        stack.extend(node.children().into_iter().map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// Evaluates a parsed expression against `data`.
pub fn eval(expr: &Expr, data: &Value, cfg: &EvalConfig) -> Result<Value, EvalError> {
    eval::Interpreter::new(cfg).run(expr, data)
}

/// Calls a function on argument values, exactly as a call expression whose arguments evaluate
/// to those values: for evaluators that work the arguments out themselves (the set engine
/// evaluates on its parsed request rather than on a `Value`).
pub fn call(name: &str, args: &[Value], cfg: &EvalConfig) -> Result<Value, EvalError> {
    eval::Interpreter::new(cfg).call_values(name, args)
}

/// [`call`] with the function already looked up (by [`crate::functions::lookup_in`] in the
/// configuration's dialect), for evaluators that resolve names once when they load an
/// expression rather than on every call. The argument checks and the result are [`call`]'s.
pub fn call_resolved(decl: &'static crate::functions::FunctionDecl, args: &[Value], cfg: &EvalConfig) -> Result<Value, EvalError> {
    eval::Interpreter::new(cfg).call_decl(decl, args)
}

/// Parses and evaluates in one step. For tools and tests; policies should parse once.
pub fn search(src: &str, data: &Value, cfg: &EvalConfig) -> Result<Value, SearchError> {
    match &*parse_cached(src) {
        Ok(expr) => eval(expr, data, cfg).map_err(SearchError::Eval),
        Err(e) => Err(SearchError::Parse(e.clone())),
    }
}

thread_local! {
    /// Parsed expressions by source text. A policy set asks the same few expressions of every
    /// resource in a scan; parsing each once per thread took a tenth off `palisade apply`.
    static PARSED: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<Result<Expr, ParseError>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Bounds on the parse cache: entries before it is emptied, and the longest source cached.
const PARSE_CACHE_ENTRIES: usize = 4096;
const PARSE_CACHE_SOURCE_LEN: usize = 2048;

fn parse_cached(src: &str) -> std::rc::Rc<Result<Expr, ParseError>> {
    if src.len() > PARSE_CACHE_SOURCE_LEN {
        return std::rc::Rc::new(parse(src));
    }
    if let Some(hit) = PARSED.with(|c| c.borrow().get(src).cloned()) {
        return hit;
    }
    let parsed = std::rc::Rc::new(parse(src));
    PARSED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= PARSE_CACHE_ENTRIES {
            c.clear();
        }
        c.insert(src.to_owned(), std::rc::Rc::clone(&parsed));
    });
    parsed
}

/// Either failure of [`search`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchError {
    Parse(ParseError),
    Eval(EvalError),
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchError::Parse(e) => e.fmt(f),
            SearchError::Eval(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SearchError {}
