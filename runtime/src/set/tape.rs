//! JMESPath over the matching document: the expressions of preconditions, `deny` conditions and
//! `foreach` lists, answered from the parsed request without building the JSON context.
//!
//! The interpreter answers these expressions against a context `Value` that holds a deep copy of
//! the resource (and, inside `foreach`, of every element). Here the same expressions walk the
//! [`Doc`] tape: a path into the request is a node id, and only values an expression builds
//! (projections, literals, function results) are owned.
//!
//! The evaluator is [`palisade_stdlib::jmespath`]'s Kyverno dialect, case for case, for the
//! subset of expressions policies use in conditions. It never guesses: whatever it does not
//! model exactly (a context variable other than `request.operation`, `request.object`,
//! `request.oldObject` and the `foreach` element, slices, object projections over duplicate
//! keys, a function that takes an expression reference, a function that fails, a very large
//! evaluation) stops it with [`Stop::Bail`], and the caller hands the whole policy to the
//! interpreter. Kyverno's "unknown key" error is modelled, because where it is absorbed into
//! `null` decides results.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Number, Value};

use palisade_stdlib::functions::{self, FunctionDecl};
use palisade_stdlib::jmespath::{self, Comparator, EvalConfig, Expr, ExprKind};

use crate::conditions::{CondValue, Shape};
use crate::doc::{Doc, KeyTable, Member, NO_KEY, TAG_ARRAY, TAG_FALSE, TAG_NULL, TAG_OBJECT, TAG_STR, TAG_STR_OWNED, TAG_TRUE};

/// Steps (expression nodes evaluated, elements visited, nodes converted) after which the tape
/// evaluator gives the expression to the interpreter, well below the interpreter's own budget.
const MAX_STEPS: u64 = 1_000_000;

/// Expression nesting after which the tape evaluator gives up (the interpreter allows 128).
const MAX_DEPTH: usize = 64;

/// Functions whose arguments and result are plain values, evaluated by the standard library on
/// the arguments' values. Functions that take expression references (`sort_by`, `map`, ...) or
/// read the context are not here.
const VALUE_FUNCTIONS: &[&str] = &[
    "abs", "avg", "ceil", "contains", "ends_with", "floor", "join", "length", "max", "min", "not_null",
    "reverse", "sort", "starts_with", "sum", "to_array", "to_number", "to_string", "type", "values",
    "to_upper", "to_lower", "trim", "trim_prefix", "trim_suffix", "split", "replace", "replace_all",
    "truncate", "label_match", "equal_fold", "compare", "lookup", "pattern_match", "regex_match",
    "regex_replace_all", "regex_replace_all_literal", "add", "subtract", "multiply", "divide", "modulo",
    "round", "semver_compare", "base64_decode", "base64_encode", "path_canonicalize", "is_external_url",
];

/// A value during evaluation.
#[derive(Clone, Debug)]
pub(crate) enum V {
    /// The context's root object (`request`, the `foreach` element).
    Root,
    /// `request` (`operation`, `object`, `oldObject`).
    Request,
    /// A node of the document.
    Node(u32),
    /// The key of an object member, a string read in place (what `keys` gives).
    Key(Member),
    /// An array built during evaluation.
    List(Vec<V>),
    /// A value built during evaluation.
    Val(Value),
}

const NULL: V = V::Val(Value::Null);

/// Why evaluation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Kyverno's `Unknown key "x" in path`: a field missing from an object.
    UnknownKey,
    /// Something the tape evaluator does not model; the interpreter must answer.
    Bail,
}

/// What an expression is evaluated against.
pub(crate) struct Scope<'s, 'a> {
    pub doc: &'s Doc<'a>,
    pub operation: &'s str,
    /// `request.object`: `None` on DELETE, where Kyverno's context holds `null`.
    pub object: Option<u32>,
    pub old_object: Option<u32>,
    /// The `foreach` element and its index (top-level `foreach` only: `element`, `element0`).
    pub element: Option<(&'s V, usize)>,
    /// The request's results of expressions already queried, shared by every rule.
    pub memo: Option<&'s Memo>,
}

/// The values of expressions queried during one request, by expression and `foreach` element.
///
/// Policies repeat expressions: most Pod Security policies open with the same precondition on
/// `request.operation`, and a `deny` often tests one element expression under two conditions.
/// An expression's value depends only on the request and the element (the tape's functions are
/// pure), so within one request it is worked out once. An expression is known by its id in
/// [`Programs`], so a memo belongs to one set's programs.
#[derive(Debug)]
pub(crate) struct Memo {
    entries: std::cell::RefCell<Vec<MemoEntry>>,
}

impl Default for Memo {
    /// Room for the distinct expressions a Pod review of the usual sets queries (about
    /// twenty), so the memo allocates once per request rather than growing.
    fn default() -> Memo {
        Memo { entries: std::cell::RefCell::new(Vec::with_capacity(32)) }
    }
}

#[derive(Debug)]
struct MemoEntry {
    expr: u32,
    /// The element's node and index, or `u32::MAX` twice at the top level.
    element: (u32, u32),
    /// Shared, so a hit hands out the value without copying it. A stop is kept too: rules
    /// ask for lists that are mostly absent (`initContainers`, `ephemeralContainers`), and
    /// the unknown key is as much the answer as a value.
    value: Result<Rc<V>, Stop>,
}

/// Requests rarely query more distinct (expression, element) pairs than this; past it, values
/// are still answered, just not kept, so memory stays bounded on huge requests.
const MEMO_CAPACITY: usize = 256;

impl Memo {
    fn get(&self, expr: u32, element: (u32, u32)) -> Option<Result<Rc<V>, Stop>> {
        let entries = self.entries.borrow();
        entries.iter().find(|e| e.expr == expr && e.element == element).map(|e| e.value.clone())
    }

    fn put(&self, expr: u32, element: (u32, u32), value: &Result<Rc<V>, Stop>) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() < MEMO_CAPACITY {
            entries.push(MemoEntry { expr, element, value: value.clone() });
        }
    }
}

/// The expressions a policy set evaluates on the tape, parsed once at load and compiled to
/// [`Prog`]s. Each has an id (its index), which plans keep so that evaluation looks nothing up;
/// the text index serves loading and the rare template inside text.
#[derive(Debug, Default)]
pub(crate) struct Programs {
    exprs: Vec<Prog>,
    ids: HashMap<Box<str>, u32, std::hash::BuildHasherDefault<WordHasher>>,
}

/// An expression as the tape evaluates it: the parsed [`Expr`] with what can be decided at
/// load decided. A field name carries its id in the set's [`KeyTable`], so a lookup on the
/// document compares integers instead of text; a function call carries its entry of the
/// standard library's table, so no call looks a name up. Only the forms [`supported`] admits
/// exist here.
#[derive(Debug)]
enum Prog {
    Current,
    Literal(Value),
    Field(Field),
    Index(i64),
    /// `base.f1.f2...`: a chain of field lookups, walked in a loop (the nested `Subexpr`s it
    /// stands for each stop at a null left side, as the loop does).
    Path(Box<Prog>, Vec<Field>),
    Subexpr(Box<Prog>, Box<Prog>),
    Pipe(Box<Prog>, Box<Prog>),
    /// A projection whose left side is a flatten: the flatten's operand, and the right side.
    FlatProjection(Box<Prog>, Box<Prog>),
    Projection(Box<Prog>, Box<Prog>),
    ValueProjection(Box<Prog>, Box<Prog>),
    FilterProjection { lhs: Box<Prog>, rhs: Box<Prog>, cond: Box<Prog> },
    Flatten(Box<Prog>),
    MultiList(Vec<Prog>),
    Or(Box<Prog>, Box<Prog>),
    And(Box<Prog>, Box<Prog>),
    Not(Box<Prog>),
    Compare(Comparator, Box<Prog>, Box<Prog>),
    Call(Func, Vec<Prog>),
}

/// A field name and its key id ([`NO_KEY`] when the table could not give it one, and the
/// lookup goes by text).
#[derive(Debug)]
struct Field {
    name: Box<str>,
    key: u32,
}

/// A function resolved at load.
#[derive(Debug)]
enum Func {
    /// `keys`, answered from the object's members when it is a document node.
    Keys,
    /// `length`, answered from the node or list when the argument is one.
    Length(&'static FunctionDecl),
    /// `to_upper` / `to_lower`, answered on a string node without copying it first.
    Case { decl: &'static FunctionDecl, upper: bool },
    /// Any other function of [`VALUE_FUNCTIONS`], called on the arguments' values.
    Value(&'static FunctionDecl),
}

/// The hasher of [`Programs`]' text index: a template inside text looks its expression up by
/// source text per evaluation, so the lookup hashes eight bytes per multiply instead of
/// running SipHash.
/// The keys are the policies' own expressions, fixed at load; nothing a request sends is
/// hashed, so there is no flooding to defend against.
#[derive(Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut mix = |word: u64| self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            mix(chunk.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w)));
        }
        mix(chunks.remainder().iter().fold(bytes.len() as u64, |w, &b| w << 8 | u64::from(b)));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Programs {
    /// Parses, admits and compiles an expression; its id, or why the tape cannot answer it.
    /// Its field names are interned in `keys`, the table the set's documents are parsed with.
    pub(crate) fn add(&mut self, source: &str, in_foreach: bool, keys: &mut KeyTable) -> Result<u32, String> {
        let source = source.trim();
        if let Some(&id) = self.ids.get(source) {
            return Ok(id);
        }
        let expr = jmespath::parse(source).map_err(|e| format!("`{source}` does not parse: {e}"))?;
        supported(&expr, true, in_foreach).map_err(|why| format!("`{source}`: {why}"))?;
        let prog = compile(&expr, keys).map_err(|why| format!("`{source}`: {why}"))?;
        let id = u32::try_from(self.exprs.len()).map_err(|_| "too many expressions".to_owned())?;
        self.exprs.push(prog);
        self.ids.insert(source.into(), id);
        Ok(id)
    }

    /// The id of an admitted expression.
    pub(crate) fn id(&self, source: &str) -> Option<u32> {
        self.ids.get(source.trim()).copied()
    }

    /// Adds every `{{ }}` expression in the strings (and map keys) of a conditions document.
    pub(crate) fn add_templates(&mut self, doc: &Value, in_foreach: bool, keys: &mut KeyTable) -> Result<(), String> {
        match doc {
            Value::String(s) => self.add_text(s, in_foreach, keys),
            Value::Array(items) => items.iter().try_for_each(|i| self.add_templates(i, in_foreach, keys)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                self.add_text(k, in_foreach, keys)?;
                self.add_templates(v, in_foreach, keys)
            }),
            _ => Ok(()),
        }
    }

    fn add_text(&mut self, text: &str, in_foreach: bool, keys: &mut KeyTable) -> Result<(), String> {
        for t in palisade_stdlib::template::find_templates(text) {
            self.add(t.expression_in(text), in_foreach, keys)?;
        }
        Ok(())
    }

    /// Evaluates the expression with this source text, as `jmespath::search` on the
    /// interpreter's context would, converted to a `Value`.
    pub(crate) fn query(&self, source: &str, scope: &Scope) -> Result<Value, Stop> {
        let v = self.value(self.id(source).ok_or(Stop::Bail)?, scope)?;
        let mut steps = 0;
        to_value(&v, scope.doc, &mut steps)
    }

    /// Evaluates expression `id`, leaving document nodes as nodes. Results (and stops) are kept
    /// in the scope's [`Memo`] when it has one. A result that holds a context level (`request`, the
    /// root), which has no value on the tape, stops with [`Stop::Bail`].
    pub(crate) fn value(&self, id: u32, scope: &Scope) -> Result<Rc<V>, Stop> {
        // The memo knows the element by its node; an element built during evaluation is not kept.
        let key = match scope.element {
            None => Some((u32::MAX, u32::MAX)),
            Some((V::Node(node), index)) => u32::try_from(index).ok().map(|i| (*node, i)),
            Some(_) => None,
        };
        let memo = scope.memo.zip(key);
        if let Some((memo, element)) = memo
            && let Some(value) = memo.get(id, element)
        {
            return value;
        }
        let value = match self.eval_id(id, scope) {
            Ok(v) if has_value(&v) => Ok(Rc::new(v)),
            Ok(_) => Err(Stop::Bail),
            Err(stop) => Err(stop),
        };
        if let Some((memo, element)) = memo {
            memo.put(id, element, &value);
        }
        value
    }

    /// Evaluates expression `id`, leaving document nodes as nodes.
    fn eval_id(&self, id: u32, scope: &Scope) -> Result<V, Stop> {
        let prog = self.exprs.get(id as usize).ok_or(Stop::Bail)?;
        let mut eval = Eval { scope, steps: 0, depth: 0, cfg: EvalConfig::kyverno() };
        eval.eval(prog, &V::Root)
    }
}

/// Compiles an admitted expression: field names interned in `keys`, functions resolved in
/// Kyverno's dialect.
fn compile(expr: &Expr, keys: &mut KeyTable) -> Result<Prog, String> {
    let mut sub = |e: &Expr| compile(e, keys).map(Box::new);
    Ok(match &expr.kind {
        ExprKind::Current => Prog::Current,
        ExprKind::Literal(l) => Prog::Literal(l.clone()),
        ExprKind::Field(name) => Prog::Field(field(name, keys)),
        ExprKind::Index(i) => Prog::Index(*i),
        ExprKind::Subexpr(l, r) => match (compile(l, keys)?, &r.kind) {
            (Prog::Path(base, mut fields), ExprKind::Field(name)) => {
                fields.push(field(name, keys));
                Prog::Path(base, fields)
            }
            (left, ExprKind::Field(name)) => Prog::Path(Box::new(left), vec![field(name, keys)]),
            (left, _) => Prog::Subexpr(Box::new(left), Box::new(compile(r, keys)?)),
        },
        ExprKind::Pipe(l, r) => Prog::Pipe(sub(l)?, sub(r)?),
        ExprKind::Projection(l, r) => match &l.kind {
            ExprKind::Flatten(inner) => Prog::FlatProjection(sub(inner)?, sub(r)?),
            _ => Prog::Projection(sub(l)?, sub(r)?),
        },
        ExprKind::ValueProjection(l, r) => Prog::ValueProjection(sub(l)?, sub(r)?),
        ExprKind::FilterProjection { lhs, rhs, cond } => Prog::FilterProjection { lhs: sub(lhs)?, rhs: sub(rhs)?, cond: sub(cond)? },
        ExprKind::Flatten(inner) => Prog::Flatten(sub(inner)?),
        ExprKind::MultiList(items) => Prog::MultiList(items.iter().map(|i| compile(i, keys)).collect::<Result<_, _>>()?),
        ExprKind::Or(l, r) => Prog::Or(sub(l)?, sub(r)?),
        ExprKind::And(l, r) => Prog::And(sub(l)?, sub(r)?),
        ExprKind::Not(inner) => Prog::Not(sub(inner)?),
        ExprKind::Compare(op, l, r) => Prog::Compare(*op, sub(l)?, sub(r)?),
        ExprKind::Call { name, args, .. } => {
            let args = args.iter().map(|a| compile(a, keys)).collect::<Result<_, _>>()?;
            let decl = || functions::lookup_in(EvalConfig::kyverno().dialect, name).ok_or_else(|| format!("the function `{name}` is not in the table"));
            let func = match name.as_str() {
                "keys" => Func::Keys,
                "length" => Func::Length(decl()?),
                "to_upper" => Func::Case { decl: decl()?, upper: true },
                "to_lower" => Func::Case { decl: decl()?, upper: false },
                _ => Func::Value(decl()?),
            };
            Prog::Call(func, args)
        }
        ExprKind::Slice { .. } | ExprKind::MultiHash(_) | ExprKind::ExprRef(_) => return Err("not evaluated on the tape".into()),
    })
}

/// A field name with its id in `keys`.
fn field(name: &str, keys: &mut KeyTable) -> Field {
    let key = keys.intern(name);
    // A key the table could not take (it is full) is looked up by its text.
    let key = if keys.get(name) == key { key } else { NO_KEY };
    Field { name: name.into(), key }
}

/// Whether the tape evaluator models `expr`. `at_root` says whether `expr` is evaluated against
/// the context root, where only `request` and the `foreach` element are known.
fn supported(expr: &Expr, at_root: bool, in_foreach: bool) -> Result<(), String> {
    let both = |l: &Expr, r: &Expr| supported(l, at_root, in_foreach).and(supported(r, at_root, in_foreach));
    match &expr.kind {
        ExprKind::Current if at_root => Err("`@` at the top reads the whole context".into()),
        ExprKind::Current | ExprKind::Literal(_) | ExprKind::Index(_) => Ok(()),
        ExprKind::Field(name) if at_root => match name.as_str() {
            "request" => Ok(()),
            "element" | "element0" | "elementIndex" | "elementIndex0" if in_foreach => Ok(()),
            other => Err(format!("the context variable `{other}` is not on the tape")),
        },
        ExprKind::Field(_) => Ok(()),
        ExprKind::Subexpr(l, r) => {
            supported(l, at_root, in_foreach)?;
            if at_root {
                request_field(l, r)?;
            }
            supported(r, false, in_foreach)
        }
        ExprKind::Pipe(l, r) | ExprKind::Projection(l, r) | ExprKind::ValueProjection(l, r) => {
            supported(l, at_root, in_foreach).and(supported(r, false, in_foreach))
        }
        ExprKind::FilterProjection { lhs, rhs, cond } => {
            supported(lhs, at_root, in_foreach)?;
            supported(rhs, false, in_foreach)?;
            supported(cond, false, in_foreach)
        }
        ExprKind::Flatten(inner) | ExprKind::Not(inner) => supported(inner, at_root, in_foreach),
        ExprKind::MultiList(items) => items.iter().try_for_each(|i| supported(i, at_root, in_foreach)),
        ExprKind::Or(l, r) | ExprKind::And(l, r) | ExprKind::Compare(_, l, r) => both(l, r),
        ExprKind::Call { name, args, .. } => {
            if name != "keys" && !VALUE_FUNCTIONS.contains(&name.as_str()) {
                return Err(format!("the function `{name}` is not evaluated on the tape"));
            }
            args.iter().try_for_each(|a| supported(a, at_root, in_foreach))
        }
        ExprKind::Slice { .. } => Err("slices are not evaluated on the tape".into()),
        ExprKind::MultiHash(_) => Err("multi-select hashes are not evaluated on the tape".into()),
        ExprKind::ExprRef(_) => Err("expression references are not evaluated on the tape".into()),
    }
}

/// Under `request`, only the request's operation and objects are on the tape.
fn request_field(l: &Expr, r: &Expr) -> Result<(), String> {
    if let (ExprKind::Field(root), ExprKind::Field(field)) = (&l.kind, &r.kind)
        && root == "request"
        && !matches!(field.as_str(), "operation" | "object" | "oldObject")
    {
        return Err(format!("`request.{field}` is not on the tape"));
    }
    Ok(())
}

struct Eval<'x, 's, 'a> {
    scope: &'x Scope<'s, 'a>,
    steps: u64,
    depth: usize,
    cfg: EvalConfig,
}

type R = Result<V, Stop>;

/// The elements of an array value, read in place where they sit on the document and taken
/// (not copied) from a list the evaluation built.
enum Elems<'d> {
    Nodes(&'d [u32]),
    List(Vec<V>),
    Json(Vec<Value>),
}

impl Elems<'_> {
    fn len(&self) -> usize {
        match self {
            Elems::Nodes(n) => n.len(),
            Elems::List(l) => l.len(),
            Elems::Json(j) => j.len(),
        }
    }

    /// Element `i`, moved out of an owned list (each index is taken once).
    fn take(&mut self, i: usize) -> Option<V> {
        match self {
            Elems::Nodes(n) => n.get(i).map(|&id| V::Node(id)),
            Elems::List(l) => l.get_mut(i).map(|v| std::mem::replace(v, NULL)),
            Elems::Json(j) => j.get_mut(i).map(|v| V::Val(v.take())),
        }
    }
}

impl<'s> Eval<'_, 's, '_> {
    fn step(&mut self, n: u64) -> Result<(), Stop> {
        self.steps += n;
        if self.steps > MAX_STEPS { Err(Stop::Bail) } else { Ok(()) }
    }

    fn eval(&mut self, prog: &Prog, v: &V) -> R {
        self.step(1)?;
        if self.depth >= MAX_DEPTH {
            return Err(Stop::Bail);
        }
        self.depth += 1;
        let result = self.eval_node(prog, v);
        self.depth -= 1;
        result
    }

    /// The interpreter's `absorb`: an unknown key becomes `null` where Kyverno absorbs it.
    fn absorb(result: R) -> R {
        match result {
            Err(Stop::UnknownKey) => Ok(NULL),
            other => other,
        }
    }

    fn eval_node(&mut self, prog: &Prog, v: &V) -> R {
        let doc = self.scope.doc;
        match prog {
            Prog::Current => Ok(v.clone()),
            Prog::Literal(l) => Ok(V::Val(l.clone())),
            Prog::Field(field) => self.field(v, field),
            Prog::Path(base, fields) => {
                let mut at = self.eval(base, v)?;
                for field in fields {
                    self.step(1)?;
                    if is_null(&at, doc) {
                        return Ok(NULL);
                    }
                    at = self.field(&at, field)?;
                }
                Ok(at)
            }
            Prog::Subexpr(l, r) => {
                let left = self.eval(l, v)?;
                if is_null(&left, doc) {
                    return Ok(NULL);
                }
                self.eval(r, &left)
            }
            Prog::Pipe(l, r) => {
                let left = Self::absorb(self.eval(l, v))?;
                Self::absorb(self.eval(r, &left))
            }
            Prog::Index(i) => {
                let Some(mut items) = self.items(v.clone())? else { return Ok(NULL) };
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                Ok(if (0..len).contains(&at) { items.take(at as usize).unwrap_or(NULL) } else { NULL })
            }
            Prog::FlatProjection(inner, rhs) => {
                let Some(base) = self.base(inner, v)? else { return Ok(NULL) };
                let Some(items) = self.items(base)? else { return Ok(NULL) };
                let mut flat = self.flatten(items)?;
                // `x[]` ends most list expressions: projecting `@` keeps the non-null elements.
                if let Prog::Current = **rhs {
                    self.step(flat.len() as u64)?;
                    flat.retain(|item| !is_null(item, doc));
                    return Ok(V::List(flat));
                }
                self.project(Elems::List(flat), rhs)
            }
            Prog::Projection(lhs, rhs) => {
                let base = Self::absorb(self.eval(lhs, v))?;
                match self.items(base)? {
                    Some(items) => self.project(items, rhs),
                    // A string from a slice stays a string in Kyverno; slices are not admitted.
                    None => Ok(NULL),
                }
            }
            Prog::ValueProjection(lhs, rhs) => {
                let Some(base) = self.base(lhs, v)? else { return Ok(NULL) };
                match self.object_values(&base)? {
                    Some(values) => self.project(Elems::List(values), rhs),
                    None => Ok(NULL),
                }
            }
            Prog::FilterProjection { lhs, rhs, cond } => self.filter(lhs, rhs, cond, v),
            Prog::Flatten(inner) => {
                let Some(base) = self.base(inner, v)? else { return Ok(NULL) };
                let Some(items) = self.items(base)? else { return Ok(NULL) };
                Ok(V::List(self.flatten(items)?))
            }
            Prog::MultiList(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(Self::absorb(self.eval(item, v))?);
                }
                Ok(V::List(out))
            }
            Prog::Or(l, r) => {
                let left = Self::absorb(self.eval(l, v))?;
                if truthy(&left, doc) {
                    return Ok(left);
                }
                Self::absorb(self.eval(r, v))
            }
            Prog::And(l, r) => {
                let left = Self::absorb(self.eval(l, v))?;
                if !truthy(&left, doc) {
                    return Ok(left);
                }
                self.eval(r, v)
            }
            Prog::Not(inner) => {
                let result = Self::absorb(self.eval(inner, v))?;
                Ok(V::Val(Value::Bool(!truthy(&result, doc))))
            }
            Prog::Compare(op, l, r) => self.compare(*op, l, r, v),
            Prog::Call(func, args) => self.call(func, args, v),
        }
    }

    /// A filter projection, out of line like the other rarely used forms: every node of an
    /// expression runs through [`Eval::eval`], whose stack frame holds the locals of all the
    /// forms it inlines.
    #[inline(never)]
    fn filter(&mut self, lhs: &Prog, rhs: &Prog, cond: &Prog, v: &V) -> R {
        let doc = self.scope.doc;
        let Some(base) = self.base(lhs, v)? else { return Ok(NULL) };
        let Some(mut items) = self.items(base)? else { return Ok(NULL) };
        let mut out = Vec::new();
        for i in 0..items.len() {
            let Some(item) = items.take(i) else { break };
            let keep = Self::absorb(self.eval(cond, &item))?;
            if !truthy(&keep, doc) {
                continue;
            }
            let projected = Self::absorb(self.eval(rhs, &item))?;
            if !is_null(&projected, doc) {
                out.push(projected);
            }
        }
        Ok(V::List(out))
    }

    #[inline(never)]
    fn compare(&mut self, op: Comparator, l: &Prog, r: &Prog, v: &V) -> R {
        let left = Self::absorb(self.eval(l, v))?;
        let right = Self::absorb(self.eval(r, v))?;
        let (left, right) = (self.value(&left)?, self.value(&right)?);
        Ok(V::Val(comparison(op, &left, &right)))
    }

    /// The interpreter's `base`: any failure of a flatten, filter or object projection's base is
    /// `null` there; only what the tape cannot model still stops.
    fn base(&mut self, prog: &Prog, v: &V) -> Result<Option<V>, Stop> {
        match self.eval(prog, v) {
            Ok(base) => Ok(Some(base)),
            Err(Stop::UnknownKey) => Ok(None),
            Err(Stop::Bail) => Err(Stop::Bail),
        }
    }

    fn field(&mut self, v: &V, field: &Field) -> R {
        let scope = self.scope;
        let doc = scope.doc;
        match v {
            V::Node(id) if doc.node(*id).tag == TAG_OBJECT => {
                let found = if field.key == NO_KEY { doc.get(*id, &field.name) } else { doc.get_id(*id, field.key) };
                found.map(V::Node).ok_or(Stop::UnknownKey)
            }
            V::Root => match (&*field.name, scope.element) {
                ("request", _) => Ok(V::Request),
                ("element" | "element0", Some((element, _))) => Ok(element.clone()),
                ("elementIndex" | "elementIndex0", Some((_, index))) => Ok(V::Val(Value::from(index))),
                // Other top-level variables (`images`, `serviceAccountName`, values) are not here.
                _ => Err(Stop::Bail),
            },
            V::Request => match &*field.name {
                "operation" => Ok(V::Val(Value::String(scope.operation.to_owned()))),
                "object" => Ok(scope.object.map_or(NULL, V::Node)),
                "oldObject" => Ok(scope.old_object.map_or(NULL, V::Node)),
                _ => Err(Stop::Bail),
            },
            V::Val(Value::Object(map)) => map.get(&*field.name).cloned().map(V::Val).ok_or(Stop::UnknownKey),
            _ => Ok(NULL),
        }
    }

    /// The elements of an array value, `None` for anything else.
    fn items(&mut self, v: V) -> Result<Option<Elems<'s>>, Stop> {
        let items = elements(v, self.scope.doc)?.ok();
        if let Some(items) = &items {
            self.step(items.len() as u64)?;
        }
        Ok(items)
    }

    /// The values of an object, in the order a `serde_json` map keeps them; `None` for
    /// anything else. An object with a repeated key is left to the interpreter.
    #[inline(never)]
    fn object_values(&mut self, v: &V) -> Result<Option<Vec<V>>, Stop> {
        let doc = self.scope.doc;
        let values = match v {
            V::Node(id) if doc.node(*id).tag == TAG_OBJECT => {
                let members = doc.members(*id);
                if has_repeated_key(doc, *id) {
                    return Err(Stop::Bail);
                }
                members.iter().map(|m| V::Node(m.value)).collect()
            }
            V::Val(Value::Object(map)) => map.values().cloned().map(V::Val).collect(),
            V::Root | V::Request => return Err(Stop::Bail),
            _ => return Ok(None),
        };
        let values: Vec<V> = values;
        self.step(values.len() as u64)?;
        Ok(Some(values))
    }

    /// One level of nested arrays merged; other elements (nulls included) kept.
    #[inline(never)]
    fn flatten(&mut self, mut items: Elems) -> Result<Vec<V>, Stop> {
        let doc = self.scope.doc;
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            let Some(item) = items.take(i) else { break };
            match elements(item, doc)? {
                Ok(Elems::Nodes(nested)) => {
                    self.step(nested.len() as u64)?;
                    out.extend(nested.iter().map(|&n| V::Node(n)));
                }
                Ok(Elems::List(nested)) => {
                    self.step(nested.len() as u64)?;
                    out.extend(nested);
                }
                Ok(Elems::Json(nested)) => {
                    self.step(nested.len() as u64)?;
                    out.extend(nested.into_iter().map(V::Val));
                }
                Err(other) => out.push(other),
            }
        }
        Ok(out)
    }

    #[inline(never)]
    fn project(&mut self, mut items: Elems, rhs: &Prog) -> R {
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            let Some(item) = items.take(i) else { break };
            let result = Self::absorb(self.eval(rhs, &item))?;
            if !is_null(&result, self.scope.doc) {
                out.push(result);
            }
        }
        Ok(V::List(out))
    }

    fn value(&mut self, v: &V) -> Result<Value, Stop> {
        to_value(v, self.scope.doc, &mut self.steps)
    }

    #[inline(never)]
    fn call(&mut self, func: &Func, args: &[Prog], v: &V) -> R {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(Self::absorb(self.eval(arg, v))?);
        }
        let doc = self.scope.doc;
        let decl = match (func, values.as_slice()) {
            (Func::Keys, [V::Node(id)]) if doc.node(*id).tag == TAG_OBJECT && !has_repeated_key(doc, *id) => {
                let keys = doc.members(*id).iter().map(|m| V::Key(*m)).collect();
                return Ok(V::List(keys));
            }
            (Func::Keys, _) => functions::lookup_in(self.cfg.dialect, "keys").ok_or(Stop::Bail)?,
            // Kyverno's `length`: code points of a string, elements of an array, keys of an
            // object (a repeated key counted once, as the `Value` has it).
            (Func::Length(decl), [arg]) => match arg {
                V::Node(id) => {
                    let n = doc.node(*id);
                    let count = match n.tag {
                        TAG_STR | TAG_STR_OWNED => doc.str(*id).map(|s| s.chars().count()),
                        TAG_ARRAY => Some(n.len as usize),
                        TAG_OBJECT if !has_repeated_key(doc, *id) => Some(n.len as usize),
                        _ => None,
                    };
                    match count {
                        #[allow(clippy::cast_precision_loss)]
                        Some(count) => return Ok(V::Val(jmespath::number(count as f64))),
                        None => *decl,
                    }
                }
                #[allow(clippy::cast_precision_loss)]
                V::List(items) => return Ok(V::Val(jmespath::number(items.len() as f64))),
                _ => *decl,
            },
            (Func::Case { upper, .. }, [V::Node(id)]) if matches!(doc.node(*id).tag, TAG_STR | TAG_STR_OWNED) => {
                let s = doc.str(*id).unwrap_or_default();
                return Ok(V::Val(Value::String(if *upper { s.to_uppercase() } else { s.to_lowercase() })));
            }
            (Func::Length(decl) | Func::Case { decl, .. } | Func::Value(decl), _) => *decl,
        };
        // The standard library evaluates the call on the arguments' values, so its checks,
        // results and errors are the interpreter's own; an error goes to the interpreter.
        let mut owned = Vec::with_capacity(values.len());
        for value in &values {
            owned.push(self.value(value)?);
        }
        jmespath::call_resolved(decl, &owned, &self.cfg).map(V::Val).map_err(|_| Stop::Bail)
    }
}

/// The elements of an array value (taken, not copied, from a built list; read in place on the
/// document), or the value back when it is not an array. The context levels are not on the
/// tape.
fn elements<'d>(v: V, doc: &'d Doc) -> Result<Result<Elems<'d>, V>, Stop> {
    Ok(match v {
        V::Node(id) if doc.node(id).tag == TAG_ARRAY => Ok(Elems::Nodes(doc.elems(id))),
        V::List(items) => Ok(Elems::List(items)),
        V::Val(Value::Array(items)) => Ok(Elems::Json(items)),
        V::Root | V::Request => return Err(Stop::Bail),
        other => Err(other),
    })
}

/// The elements of a `foreach` list, read where they are: a document array, a list the
/// evaluation built, an array value, or one value that is not an array (the interpreter takes
/// it as the one element).
pub(crate) enum Items<'v> {
    Nodes(&'v [u32]),
    List(&'v [V]),
    Json(&'v [Value]),
    One(&'v V),
}

impl<'v> Items<'v> {
    pub(crate) fn of(v: &'v V, doc: &'v Doc) -> Items<'v> {
        match v {
            V::Node(id) if doc.node(*id).tag == TAG_ARRAY => Items::Nodes(doc.elems(*id)),
            V::List(items) => Items::List(items),
            V::Val(Value::Array(items)) => Items::Json(items),
            other => Items::One(other),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Items::Nodes(nodes) => nodes.len(),
            Items::List(items) => items.len(),
            Items::Json(items) => items.len(),
            Items::One(_) => 1,
        }
    }

    /// Element `i`; a document node or a built value is lent, not copied.
    pub(crate) fn get(&self, i: usize) -> Option<Cow<'v, V>> {
        match self {
            Items::Nodes(nodes) => nodes.get(i).map(|&n| Cow::Owned(V::Node(n))),
            Items::List(items) => items.get(i).map(Cow::Borrowed),
            Items::Json(items) => items.get(i).map(|v| Cow::Owned(V::Val(v.clone()))),
            Items::One(v) => (i == 0).then_some(Cow::Borrowed(*v)),
        }
    }
}

/// Whether an object node repeats a key (`serde_json` keeps one entry for it).
fn has_repeated_key(doc: &Doc, id: u32) -> bool {
    let members = doc.members(id);
    members.iter().enumerate().any(|(i, m)| members.iter().skip(i + 1).any(|n| doc.same_key(n, m)))
}

fn is_null(v: &V, doc: &Doc) -> bool {
    match v {
        V::Node(id) => doc.node(*id).tag == TAG_NULL,
        V::Val(Value::Null) => true,
        _ => false,
    }
}

/// JMESPath truthiness: false, null and empty strings, arrays and objects are false.
fn truthy(v: &V, doc: &Doc) -> bool {
    match v {
        V::Root | V::Request => true,
        V::Node(id) => {
            let n = doc.node(*id);
            match n.tag {
                TAG_NULL | TAG_FALSE => false,
                TAG_TRUE => true,
                TAG_STR | TAG_STR_OWNED | TAG_ARRAY | TAG_OBJECT => n.len > 0,
                _ => true,
            }
        }
        V::Key(member) => !doc.key_of(member).is_empty(),
        V::List(items) => !items.is_empty(),
        V::Val(value) => jmespath::is_truthy(value),
    }
}

/// The `Value` of an evaluation result; the context levels have none on the tape.
fn to_value(v: &V, doc: &Doc, steps: &mut u64) -> Result<Value, Stop> {
    *steps += 1;
    if *steps > MAX_STEPS {
        return Err(Stop::Bail);
    }
    match v {
        V::Node(id) => {
            *steps += u64::from(doc.node(*id).len);
            Ok(doc.to_value(*id))
        }
        V::Key(member) => Ok(Value::String(doc.key_of(member).to_owned())),
        V::List(items) => items.iter().map(|i| to_value(i, doc, steps)).collect::<Result<Vec<_>, _>>().map(Value::Array),
        V::Val(value) => Ok(value.clone()),
        V::Root | V::Request => Err(Stop::Bail),
    }
}

/// Whether a result has a value: context levels (`request`, the root) have none on the tape.
fn has_value(v: &V) -> bool {
    match v {
        V::Root | V::Request => false,
        V::List(items) => items.iter().all(has_value),
        V::Node(_) | V::Key(_) | V::Val(_) => true,
    }
}

/// A query's result as the condition operators read it: on the document where it points
/// there, so comparing it copies nothing.
pub(crate) struct Answer<'d> {
    pub doc: &'d Doc<'d>,
    pub value: Rc<V>,
}

/// A part of a result: a document node, an evaluated value, or a JSON value inside one.
#[derive(Clone, Copy)]
enum Part<'x> {
    Node(u32),
    V(&'x V),
    Json(&'x Value),
}

/// [`Part`] with its document.
#[derive(Clone, Copy)]
pub(crate) struct PartOf<'x> {
    doc: &'x Doc<'x>,
    part: Part<'x>,
}

impl<'x> PartOf<'x> {
    fn shape(self) -> Shape<'x> {
        use crate::interp::scalar::Scalar;
        match self.part {
            Part::Node(id) | Part::V(&V::Node(id)) => match self.doc.scalar(id) {
                Scalar::Null => Shape::Null,
                Scalar::Bool(b) => Shape::Bool(b),
                Scalar::Int(i) => Shape::Number(Number::from(i)),
                Scalar::UInt(u) => Shape::Number(Number::from(u)),
                // As `Doc::to_value`: a float JSON cannot hold is null.
                Scalar::Float(f) => Number::from_f64(f).map_or(Shape::Null, Shape::Number),
                Scalar::Str(s) => Shape::Str(s),
                Scalar::Array => Shape::Array,
                Scalar::Object => Shape::Object,
            },
            Part::V(V::Key(member)) => Shape::Str(self.doc.key_of(member)),
            Part::V(V::Val(v)) | Part::Json(v) => v.shape(),
            Part::V(V::List(_)) => Shape::Array,
            // The context levels never get here ([`has_value`]); they read as null.
            Part::V(V::Root | V::Request) => Shape::Null,
        }
    }

    fn elems(self) -> impl Iterator<Item = PartOf<'x>> {
        let doc = self.doc;
        let (nodes, items, json): (&[u32], &[V], &[Value]) = match self.part {
            Part::Node(id) | Part::V(&V::Node(id)) => (doc.elems(id), &[], &[]),
            Part::V(V::Val(Value::Array(values))) | Part::Json(Value::Array(values)) => (&[], &[], values.as_slice()),
            Part::V(V::List(list)) => (&[], list.as_slice(), &[]),
            _ => (&[], &[], &[]),
        };
        let nodes = nodes.iter().map(move |&n| PartOf { doc, part: Part::Node(n) });
        let items = items.iter().map(move |v| PartOf { doc, part: Part::V(v) });
        let json = json.iter().map(move |v| PartOf { doc, part: Part::Json(v) });
        nodes.chain(items).chain(json)
    }

    fn to_json(self) -> Cow<'x, Value> {
        match self.part {
            Part::Node(id) | Part::V(&V::Node(id)) => Cow::Owned(self.doc.to_value(id)),
            Part::V(V::Val(v)) | Part::Json(v) => Cow::Borrowed(v),
            Part::V(v) => {
                // Bounded by the document and by the evaluation that built the list.
                let mut steps = 0;
                Cow::Owned(to_value(v, self.doc, &mut steps).unwrap_or(Value::Null))
            }
        }
    }
}

impl CondValue for PartOf<'_> {
    type Elem<'e>
        = PartOf<'e>
    where
        Self: 'e;

    fn shape(&self) -> Shape<'_> {
        PartOf::shape(*self)
    }

    fn elems(&self) -> impl Iterator<Item = PartOf<'_>> {
        PartOf::elems(*self)
    }

    fn to_json(&self) -> Cow<'_, Value> {
        PartOf::to_json(*self)
    }
}

impl Answer<'_> {
    fn part(&self) -> PartOf<'_> {
        PartOf { doc: self.doc, part: Part::V(&self.value) }
    }
}

impl CondValue for Answer<'_> {
    type Elem<'e>
        = PartOf<'e>
    where
        Self: 'e;

    fn shape(&self) -> Shape<'_> {
        self.part().shape()
    }

    fn elems(&self) -> impl Iterator<Item = PartOf<'_>> {
        self.part().elems()
    }

    fn to_json(&self) -> Cow<'_, Value> {
        self.part().to_json()
    }
}

/// The interpreter's comparison: equality on any values, ordering on numbers only.
fn comparison(op: Comparator, left: &Value, right: &Value) -> Value {
    match op {
        Comparator::Eq => Value::Bool(jmespath::equal(left, right)),
        Comparator::Ne => Value::Bool(!jmespath::equal(left, right)),
        _ => {
            if !(left.is_number() && right.is_number()) {
                return Value::Null;
            }
            let Some(ordering) = jmespath::compare(left, right) else { return Value::Null };
            Value::Bool(match op {
                Comparator::Lt => ordering.is_lt(),
                Comparator::Le => ordering.is_le(),
                Comparator::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    //! The tape evaluator against the interpreter: random expressions of the admitted forms
    //! over random documents. Where the tape answers, the answer must be the interpreter's;
    //! an unknown key must be the interpreter's error too.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{Value, json};

    use super::*;
    use crate::doc::KeyTable;

    const KEYS: &[&str] = &["a", "b", "spec", "name", "add"];

    fn document() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..5).prop_map(Value::from),
            prop::sample::select(vec!["", "x", "ALL", "net_raw", "a:b"]).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    /// Expressions evaluated against a node (no context variables).
    fn relative() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
            Just("@".to_owned()),
            Just("'x'".to_owned()),
            Just("`[]`".to_owned()),
            Just("`1`".to_owned()),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (inner.clone(), prop::sample::select(KEYS.to_vec())).prop_map(|(a, k)| format!("{a}.{k}")),
                inner.clone().prop_map(|a| format!("{a}[]")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}[*].{b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}[].{b}")),
                (inner.clone(), -2i64..3).prop_map(|(a, i)| format!("{a}[{i}]")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
                inner.clone().prop_map(|a| format!("!({a})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} == {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} < {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | {b}")),
                (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, c, b)| format!("{a}[?{c}].{b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}.*.{b}")),
                inner.clone().prop_map(|a| format!("keys({a})")),
                inner.clone().prop_map(|a| format!("length({a})")),
                inner.clone().prop_map(|a| format!("to_upper({a})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("contains({a}, {b})")),
            ]
        })
    }

    fn expression() -> impl Strategy<Value = String> {
        (prop::sample::select(vec!["request.object", "element", "request.oldObject"]), relative()).prop_map(|(root, rest)| {
            if rest == "@" { root.to_owned() } else if rest.starts_with(['[', '(', '!', '\'', '`']) || rest.contains('(') { format!("{root} | {rest}") } else { format!("{root}.{rest}") }
        })
    }

    #[test]
    fn tape_agrees_with_interpreter() {
        let cases: u32 = std::env::var("PALISADE_TAPE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let answered = std::cell::Cell::new(0u32);
        let bailed = std::cell::Cell::new(0u32);
        let result = runner.run(&(document(), document(), expression(), prop::bool::ANY), |(object, element, source, delete)| {
            let operation = if delete { "DELETE" } else { "CREATE" };
            let mut programs = Programs::default();
            // The document is parsed with the keys the program interned, as a set's are.
            let mut keys = KeyTable::default();
            if programs.add(&source, true, &mut keys).is_err() {
                return Ok(());
            }
            let wrapper = json!({"object": object, "element": element});
            let bytes = serde_json::to_vec(&wrapper).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let doc = Doc::parse(&bytes, &keys).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let object_node = doc.get(doc.root(), "object");
            let element_node = V::Node(doc.get(doc.root(), "element").unwrap_or(0));
            let scope = Scope {
                doc: &doc,
                operation,
                object: if delete { None } else { object_node },
                old_object: None,
                element: Some((&element_node, 0)),
                memo: None,
            };
            let context = json!({
                "request": {"operation": operation, "object": if delete { Value::Null } else { object.clone() }, "oldObject": Value::Null},
                "element": element, "element0": element, "elementIndex": 0, "elementIndex0": 0,
            });
            let expected = jmespath::search(&source, &context, &EvalConfig::kyverno());
            match programs.query(&source, &scope) {
                Ok(v) => {
                    answered.set(answered.get() + 1);
                    prop_assert_eq!(Some(v), expected.ok(), "{}", source);
                }
                Err(Stop::UnknownKey) => {
                    answered.set(answered.get() + 1);
                    prop_assert!(expected.is_err(), "{source}: the tape saw an unknown key, the interpreter {expected:?}");
                }
                Err(Stop::Bail) => bailed.set(bailed.get() + 1),
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let (answered, bailed) = (answered.get(), bailed.get());
        println!("tape: {cases} cases, {answered} answered and equal, {bailed} left to the interpreter, the rest not admitted");
        assert!(answered + bailed > cases / 2, "most generated expressions should be admitted");
        assert!(answered > 3 * bailed / 2, "the tape should answer most admitted expressions: {answered} answered, {bailed} not");
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod memo_tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::doc::KeyTable;

    /// A memo shared by queries gives each (expression, element, index) its own value: the same
    /// expression on another element, or on the same element at another index, is not a hit.
    #[test]
    fn memo_keys_by_expression_element_and_index() {
        let mut programs = Programs::default();
        let mut keys = KeyTable::default();
        for source in ["element.x", "elementIndex", "request.object.items[1].x", "request.operation", "request.object.missing"] {
            programs.add(source, true, &mut keys).expect("admitted");
        }
        let bytes = serde_json::to_vec(&json!({"object": {"items": [{"x": 1}, {"x": 2}]}})).unwrap_or_default();
        let doc = Doc::parse(&bytes, &keys).expect("the document parses");
        let object = doc.get(doc.root(), "object");
        let items = object.and_then(|o| doc.get(o, "items")).map(|i| doc.elems(i).to_vec()).unwrap_or_default();
        let [first, second] = items.as_slice() else { panic!("two items") };
        let (first, second) = (V::Node(*first), V::Node(*second));
        let memo = Memo::default();
        // An expression, the element (with its index) it is evaluated on, and its value.
        type Case<'v> = (&'static str, Option<(&'v V, usize)>, Value);
        let cases: [Case<'_>; 8] = [
            ("element.x", Some((&first, 0)), json!(1)),
            ("element.x", Some((&second, 1)), json!(2)),
            ("element.x", Some((&first, 0)), json!(1)),
            ("elementIndex", Some((&first, 0)), json!(0)),
            ("elementIndex", Some((&first, 3)), json!(3)),
            ("request.object.items[1].x", None, json!(2)),
            ("request.object.items[1].x", Some((&first, 0)), json!(2)),
            ("request.operation", None, json!("CREATE")),
        ];
        for _ in 0..2 {
            for (source, element, expected) in &cases {
                let unmemoised = programs.query(source, &scope(&doc, object, *element, None));
                assert_eq!(unmemoised, Ok(expected.clone()), "{source} without the memo");
                assert_eq!(programs.query(source, &scope(&doc, object, *element, Some(&memo))), Ok(expected.clone()), "{source} with the memo");
            }
        }
        // One entry per distinct (expression, element, index): the repeats were hits.
        assert_eq!(memo.entries.borrow().len(), 7);
        // An unknown key is kept as the answer too, and given again as it was.
        for _ in 0..2 {
            assert_eq!(programs.query("request.object.missing", &scope(&doc, object, None, Some(&memo))), Err(Stop::UnknownKey));
        }
        assert_eq!(memo.entries.borrow().len(), 8);
    }

    fn scope<'s, 'a>(doc: &'s Doc<'a>, object: Option<u32>, element: Option<(&'s V, usize)>, memo: Option<&'s Memo>) -> Scope<'s, 'a> {
        Scope { doc, operation: "CREATE", object, old_object: None, element, memo }
    }
}
