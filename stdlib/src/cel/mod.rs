//! CEL, as Kubernetes and Kyverno policies use it, on top of the `cel` crate (pinned, see
//! `cel-notes.md`).
//!
//! - [`compile`] parses an expression once (macros expanded, `cel.bind` included) and checks
//!   what the crate does not: every called function exists. [`Program::estimate`] gives the
//!   static cost for lists of a given size; the checker warns when it exceeds [`COST_LIMIT`]
//!   for lists of [`ASSUMED_LIST_SIZE`] items (Kyverno's kinds have no schema bounds, so this
//!   cannot reject a policy Kyverno accepts).
//! - [`Program::eval`] runs it against [`Bindings`] built once per request, so the object is
//!   converted to CEL values once and shared by every rule. Before running, the cost is
//!   estimated again with the real sizes of the request's lists; an expression whose bound
//!   exceeds the budget fails cleanly instead of running for minutes.
//! - [`library`] holds the Kubernetes and Kyverno function libraries, declared in one table.

pub mod fields;
pub mod library;
pub mod value;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::ast::Expr;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, IdedExpr};
use serde_json::Value as Json;

pub use cel::Value;
pub use library::{CelFunction, FUNCTIONS, Host, with_host};

/// The most cost units one evaluation may spend, as Kubernetes bounds one expression
/// (`PerCallLimit`, 1,000,000). A unit is roughly one node visited.
pub const COST_LIMIT: f64 = 1_000_000.0;

/// The list size the compile-time estimate assumes for lists whose size it cannot know.
/// Kubernetes takes it from the schema's `maxItems`; Kyverno's kinds have no schema here.
pub const ASSUMED_LIST_SIZE: f64 = 100.0;

/// A compile error: a syntax error or a call to an unknown function, with where it is in the
/// expression (0-based character offset, and 1-based line and column within the expression).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// A compiled expression: the checked syntax tree, with Kyverno's struct literals
/// (`Object{...}`, `JSONPatch{...}`) turned into map literals.
pub struct Program {
    source: String,
    expr: IdedExpr,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Program").field(&self.source).finish()
    }
}

/// The environment every program runs in: the standard library, the crate's extensions and
/// ours. Built once; a declaration error would be a bug in the table, reported by `compile`.
pub fn env() -> Result<&'static Arc<Env>, String> {
    static ENV: OnceLock<Result<Arc<Env>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Kubernetes (cel-go) keeps the last of repeated map keys instead of failing.
        env.set_error_on_duplicate_map_keys(false);
        for ext in [cel::extensions::strings, cel::extensions::lists, cel::extensions::math, cel::extensions::encoders] {
            env.add_extension(ext).map_err(|e| e.to_string())?;
        }
        library::register(&mut env).map_err(|e| e.to_string())?;
        Ok(Arc::new(env))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Line and column (1-based) of a character offset in `source`.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + column;
        }
        offset += l.chars().count();
    }
    offset
}

/// The deepest nesting of parentheses, brackets and braces an expression may have. The
/// parser and the evaluator recurse once per level; the bound keeps both within their stack.
pub const MAX_NESTING: usize = 48;

/// The stack the parser runs on: its generated recursive descent uses large frames, more
/// than a test or webhook worker thread has for policies with long conditions.
const PARSER_STACK: usize = 64 << 20;

/// Parses and checks `source`.
pub fn compile(source: &str) -> Result<Program, CompileError> {
    let mut depth = 0usize;
    for (i, c) in source.chars().enumerate() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            let (line, column) = line_col(source, i);
            return Err(CompileError { message: format!("the expression nests deeper than {MAX_NESTING} levels"), offset: i, line, column });
        }
    }
    let owned = source.to_owned();
    let parsed = std::thread::Builder::new().stack_size(PARSER_STACK).spawn(move || compile_here(&owned));
    match parsed.map(|h| h.join()) {
        Ok(Ok(result)) => result,
        _ => Err(CompileError { message: "the parser failed on this expression".into(), offset: 0, line: 1, column: 1 }),
    }
}

fn compile_here(source: &str) -> Result<Program, CompileError> {
    let env = env().map_err(|message| CompileError { message, offset: 0, line: 1, column: 1 })?;
    let (mut expr, info) = env.parser().parse_with_source_info(source).map_err(|errs| {
        let first = errs.errors.first();
        let (line, col) = first.map_or((1, 0), |e| (usize::try_from(e.pos.0).unwrap_or(1).max(1), usize::try_from(e.pos.1).unwrap_or(0)));
        let message = first.map_or_else(|| "syntax error".to_owned(), |e| e.msg.clone());
        CompileError { message, offset: offset_of(source, line, col), line, column: col + 1 }
    })?;
    rewrite_structs(&mut expr);
    let mut unknown = None;
    walk(&expr, &mut |e| {
        if unknown.is_some() {
            return;
        }
        if let Expr::Call(call) = &e.expr {
            let name = qualified_call_name(call);
            if call.func_name.starts_with(|c: char| c.is_ascii_alphabetic()) && !library::is_known(&name) && !library::is_known(&call.func_name) {
                let mut offset = info.offset_for(e.id).map_or(0, |(start, _)| start as usize);
                // The crate places a call at its '('; point at the function name instead.
                if source.chars().nth(offset) == Some('(') {
                    offset = offset.saturating_sub(call.func_name.chars().count());
                }
                unknown = Some((name, offset));
            }
        }
    });
    if let Some((name, offset)) = unknown {
        let (line, column) = line_col(source, offset);
        return Err(CompileError { message: format!("undeclared reference to '{name}'"), offset, line, column });
    }
    Ok(Program { source: source.to_owned(), expr })
}

/// Whether a struct literal's type is one of the object types Kyverno's mutating policies
/// build (`Object`, `Object.spec.template`, ..., `JSONPatch`): schemaless, so they evaluate
/// as maps of their fields.
fn is_object_type(name: &str) -> bool {
    let name = name.trim_start_matches('.');
    name == "Object" || name.starts_with("Object.") || name == "JSONPatch"
}

/// Rewrites `Object{f: v}` and `JSONPatch{op: ..}` into `{'f': v}` map literals.
fn rewrite_structs(e: &mut IdedExpr) {
    use cel::common::ast::{EntryExpr, IdedEntryExpr, LiteralValue, MapEntryExpr, MapExpr};
    match &mut e.expr {
        Expr::Struct(st) if is_object_type(&st.type_name) => {
            let mut entries = Vec::new();
            for entry in std::mem::take(&mut st.entries) {
                match entry.expr {
                    EntryExpr::StructField(mut f) => {
                        rewrite_structs(&mut f.value);
                        let key = IdedExpr { id: entry.id, expr: Expr::Literal(LiteralValue::String(f.field.into())) };
                        entries.push(IdedEntryExpr {
                            id: entry.id,
                            expr: EntryExpr::MapEntry(MapEntryExpr { key, value: f.value, optional: f.optional }),
                        });
                    }
                    other => entries.push(IdedEntryExpr { id: entry.id, expr: other }),
                }
            }
            e.expr = Expr::Map(MapExpr { entries });
        }
        Expr::Struct(st) => st.entries.iter_mut().for_each(rewrite_entry),
        Expr::Map(m) => m.entries.iter_mut().for_each(rewrite_entry),
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                rewrite_structs(t);
            }
            c.args.iter_mut().for_each(rewrite_structs);
        }
        Expr::Comprehension(c) => {
            for x in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                rewrite_structs(x);
            }
        }
        Expr::List(l) => l.elements.iter_mut().for_each(rewrite_structs),
        Expr::Select(s) => rewrite_structs(&mut s.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn rewrite_entry(e: &mut cel::common::ast::IdedEntryExpr) {
    use cel::common::ast::EntryExpr;
    match &mut e.expr {
        EntryExpr::StructField(f) => rewrite_structs(&mut f.value),
        EntryExpr::MapEntry(m) => {
            rewrite_structs(&mut m.key);
            rewrite_structs(&mut m.value);
        }
    }
}

/// `ns.f` for a call written `ns.f(..)` on a plain identifier, else the function name.
fn qualified_call_name(call: &cel::common::ast::CallExpr) -> String {
    match call.target.as_deref().map(|t| &t.expr) {
        Some(Expr::Ident(ns)) if library::is_known(&format!("{ns}.{}", call.func_name)) => format!("{ns}.{}", call.func_name),
        _ => call.func_name.clone(),
    }
}

/// Visits every node, parents first.
pub fn walk(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, f);
            }
            c.args.iter().for_each(|a| walk(a, f));
        }
        Expr::Comprehension(c) => {
            for x in [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                walk(x, f);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|x| walk(x, f)),
        Expr::Map(m) => m.entries.iter().for_each(|x| walk_entry(x, f)),
        Expr::Struct(s) => s.entries.iter().for_each(|x| walk_entry(x, f)),
        Expr::Select(s) => walk(&s.operand, f),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn walk_entry(e: &cel::common::ast::IdedEntryExpr, f: &mut dyn FnMut(&IdedExpr)) {
    use cel::common::ast::EntryExpr;
    match &e.expr {
        EntryExpr::StructField(s) => walk(&s.value, f),
        EntryExpr::MapEntry(m) => {
            walk(&m.key, f);
            walk(&m.value, f);
        }
    }
}

/// A cost estimate: the work of evaluating a node, and the largest list or map it can yield.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub cost: f64,
    pub size: f64,
}

/// Estimates the cost of evaluating `e` when every list coming from outside the expression
/// holds at most `list_size` items. Comprehensions multiply their body's cost by the size of
/// the list they iterate, so nesting shows up as powers of `list_size`, as in Kubernetes'
/// estimator.
pub fn estimate(e: &IdedExpr, list_size: f64) -> Estimate {
    let leaf = Estimate { cost: 1.0, size: list_size };
    match &e.expr {
        Expr::Ident(_) | Expr::Select(_) => {
            let inner = if let Expr::Select(s) = &e.expr { estimate(&s.operand, list_size).cost } else { 0.0 };
            Estimate { cost: inner + 1.0, size: list_size }
        }
        Expr::Literal(_) | Expr::Unspecified => Estimate { cost: 1.0, size: 0.0 },
        Expr::List(l) => {
            let cost: f64 = l.elements.iter().map(|x| estimate(x, list_size).cost).sum();
            Estimate { cost: cost + 1.0, size: l.elements.len() as f64 }
        }
        Expr::Map(_) | Expr::Struct(_) => {
            let mut cost = 1.0;
            walk(e, &mut |_| cost += 1.0);
            Estimate { cost, size: cost }
        }
        Expr::Call(c) => {
            let parts: Vec<Estimate> = c.target.iter().map(|t| estimate(t, list_size)).chain(c.args.iter().map(|a| estimate(a, list_size))).collect();
            let cost: f64 = parts.iter().map(|p| p.cost).sum();
            let widest = parts.iter().map(|p| p.size).fold(0.0, f64::max);
            let size = match c.func_name.as_str() {
                "_+_" => parts.iter().map(|p| p.size).sum(),
                "flatten" => widest * widest,
                "lists.range" => match c.args.first().map(|a| &a.expr) {
                    Some(Expr::Literal(cel::common::ast::LiteralValue::Int(n))) => (**n) as f64,
                    _ => list_size,
                },
                _ => widest.max(leaf.size.min(widest)),
            };
            // Functions over a list or string walk it once.
            Estimate { cost: cost + 1.0 + widest, size }
        }
        Expr::Comprehension(c) => {
            let range = estimate(&c.iter_range, list_size);
            let init = estimate(&c.accu_init, list_size);
            let step = estimate(&c.loop_step, list_size);
            let cond = estimate(&c.loop_cond, list_size);
            let result = estimate(&c.result, list_size);
            let iterations = range.size;
            // A comprehension yields at most one element per iteration (map, filter) or a
            // scalar (all, exists); `cel.bind` yields its init.
            let size = iterations.max(init.size);
            Estimate { cost: range.cost + init.cost + iterations * (step.cost + cond.cost) + result.cost, size: size.max(result.size) }
        }
    }
}

/// A CEL map with string keys, such as the `variables` object a policy's expressions read.
pub fn map_value(entries: &[(String, Value)]) -> Value {
    let map: HashMap<cel::objects::Key, Value> =
        entries.iter().map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), v.clone())).collect();
    Value::Map(cel::objects::Map { map: Arc::new(map) })
}

/// Request-level variables, converted once and shared by every expression of every rule.
#[derive(Default)]
pub struct Bindings {
    vars: HashMap<String, Box<dyn Val>>,
    /// The longest list or largest map among the bound documents, for the runtime estimate.
    widest: usize,
}

impl Bindings {
    pub fn new() -> Bindings {
        Bindings::default()
    }

    /// Binds a JSON document (converted with signed integers).
    pub fn bind_json(&mut self, name: &str, v: &Json) {
        self.widest = self.widest.max(value::widest(v));
        self.bind(name, value::from_json(v));
    }

    /// Binds a CEL value.
    pub fn bind(&mut self, name: &str, v: Value) {
        if let Ok(val) = Box::<dyn Val>::try_from(v) {
            self.vars.insert(name.to_owned(), val);
        }
    }

    pub fn widest(&self) -> usize {
        self.widest
    }
}

impl VariableResolver for Bindings {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.vars.get(variable).map(|v| CowVal::Borrowed(v.as_ref()))
    }
}

/// Why an evaluation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A program is stored (in compiled bundles) as its source and compiled again on load: the
/// cel crate's programs cannot be serialized, and compiling is a pure function of the text.
impl serde::Serialize for Program {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Program {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Program, D::Error> {
        let source = String::deserialize(deserializer)?;
        compile(&source).map_err(|e| serde::de::Error::custom(format!("CEL expression {source:?}: {e}")))
    }
}

impl Program {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The static estimate for lists of `list_size` items.
    pub fn estimate(&self, list_size: f64) -> Estimate {
        estimate(&self.expr, list_size)
    }

    /// Evaluates against the request bindings and `extra` variables (the rule's `variables`
    /// map, comprehension-free bindings such as `params`).
    pub fn eval(&self, bindings: &Bindings, extra: &[(&str, &Value)]) -> Result<Value, EvalError> {
        let bound = self.estimate(bindings.widest().max(1) as f64);
        if bound.cost > COST_LIMIT {
            return Err(EvalError(format!(
                "operation cancelled: actual cost limit exceeded (estimated {:.0} for lists of {} items, limit {COST_LIMIT:.0})",
                bound.cost,
                bindings.widest()
            )));
        }
        let env = env().map_err(EvalError)?;
        let mut ctx = Context::with_env(Arc::clone(env));
        ctx.set_variable_resolver(bindings);
        for (name, v) in extra {
            if let Ok(val) = Box::<dyn Val>::try_from((*v).clone()) {
                ctx.add_variable_as_val(*name, val);
            }
        }
        Value::resolve(&self.expr, &ctx).map_err(|e| EvalError(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
