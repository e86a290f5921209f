//! The one table of JMESPath functions.
//!
//! Every function is declared once, as a [`FunctionDecl`]: its name, parameters, result type,
//! purity, dialect, documentation, an example and its implementation. The evaluator dispatches
//! on this table, the checker reads it for unknown names and arity, the language server for hover
//! and completion, and `palisade jp function` prints it.
//!
//! # Writing a family
//!
//! A family is one module holding related functions (`strings`, `time`, ...). It exposes
//! `pub(crate) fn functions() -> &'static [FunctionDecl]`, usually a `static` slice, and is listed
//! once in [`FAMILIES`]. Each declaration looks like this:
//!
//! ```ignore
//! FunctionDecl {
//!     name: "to_upper",
//!     params: &[Param::required("s", &[Type::String])],
//!     returns: Type::String,
//!     purity: Purity::Pure,
//!     dialect: Dialect::Kyverno,
//!     doc: "Returns the string with all letters upper case.",
//!     example: "to_upper('abc') == 'ABC'",
//!     implementation: to_upper,
//! }
//! ```
//!
//! The implementation is `fn(&mut Call) -> Result<Value, EvalError>`. Arity and parameter types
//! are checked against `params` before it runs, so it reads its arguments with the typed accessors
//! of [`Call`] (`call.string(0)?`, `call.number(1)?`, ...), which cannot panic and report a type
//! error should a declaration and its implementation ever disagree. It reports its own failures
//! with [`EvalError::function`], which gives Kyverno's `JMESPath function 'name': ...` message.
//! A function that applies an expression reference (`sort_by`) runs it with [`Call::eval`], and
//! a function that does work out of proportion to its arguments charges it with [`Call::charge`],
//! so the evaluation budget bounds it.
//!
//! Where Kyverno overrides a standard function (`sum`), both are declared, one with
//! `Dialect::Standard` and one with `Dialect::Kyverno`; in Kyverno's dialect the Kyverno one wins.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::jmespath::{Dialect, ErrorKind, EvalError, Expr, type_name};

pub mod arithmetic;
pub mod collections;
pub mod encoding;
pub mod images;
pub mod patterns;
pub mod standard;
pub mod strings;
pub mod time;
pub mod x509;

/// Every family, in the order `palisade jp function` lists them.
const FAMILIES: &[fn() -> &'static [FunctionDecl]] = &[
    standard::functions,
    strings::functions,
    patterns::functions,
    encoding::functions,
    x509::functions,
    collections::functions,
    images::functions,
    arithmetic::functions,
    time::functions,
];

/// A JMESPath type a parameter accepts or a function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Any,
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
    /// An expression reference, `&expr`.
    Expref,
    /// An array whose elements are all numbers.
    ArrayNumber,
    /// An array whose elements are all strings.
    ArrayString,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Any => "any",
            Type::Null => "null",
            Type::Boolean => "boolean",
            Type::Number => "number",
            Type::String => "string",
            Type::Array => "array",
            Type::Object => "object",
            Type::Expref => "expref",
            Type::ArrayNumber => "array[number]",
            Type::ArrayString => "array[string]",
        }
    }

    /// Whether a (non-expref) value has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Type::Any => true,
            Type::Null => value.is_null(),
            Type::Boolean => value.is_boolean(),
            Type::Number => value.is_number(),
            Type::String => value.is_string(),
            Type::Array => value.is_array(),
            Type::Object => value.is_object(),
            Type::Expref => false,
            Type::ArrayNumber => value.as_array().is_some_and(|a| a.iter().all(Value::is_number)),
            Type::ArrayString => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a parameter must be given, may be left out, or repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Required,
    /// May be left out; only trailing parameters are optional.
    Optional,
    /// The last parameter, given one or more times.
    Variadic,
}

#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    /// The types accepted; any one of them will do.
    pub types: &'static [Type],
    pub arity: Arity,
}

impl Param {
    pub const fn required(name: &'static str, types: &'static [Type]) -> Self {
        Param { name, types, arity: Arity::Required }
    }

    pub const fn optional(name: &'static str, types: &'static [Type]) -> Self {
        Param { name, types, arity: Arity::Optional }
    }

    pub const fn variadic(name: &'static str, types: &'static [Type]) -> Self {
        Param { name, types, arity: Arity::Variadic }
    }
}

/// Whether a function always gives the same result for the same arguments. Impure functions
/// (`time_now`, `random`) cannot be folded at compile time or cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purity {
    Pure,
    Impure,
}

/// A function implementation. Arguments are type-checked before it is called.
pub type Implementation = fn(&mut Call<'_, '_>) -> Result<Value, EvalError>;

/// One function: everything any part of Palisade needs to know about it.
pub struct FunctionDecl {
    pub name: &'static str,
    pub params: &'static [Param],
    pub returns: Type,
    pub purity: Purity,
    /// `Standard` for JMESPath's own functions, `Kyverno` for Kyverno's additions and overrides.
    pub dialect: Dialect,
    /// One or two sentences for hover and `palisade jp function`.
    pub doc: &'static str,
    /// An expression using the function, with its result, e.g. `to_upper('a') == 'A'`.
    pub example: &'static str,
    pub implementation: Implementation,
}

impl fmt::Debug for FunctionDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionDecl({})", self.signature())
    }
}

impl FunctionDecl {
    /// The fewest arguments a call may pass.
    pub fn min_args(&self) -> usize {
        self.params.iter().filter(|p| p.arity != Arity::Optional).count()
    }

    /// The most arguments a call may pass; `None` when the last parameter is variadic.
    pub fn max_args(&self) -> Option<usize> {
        if self.params.iter().any(|p| p.arity == Arity::Variadic) { None } else { Some(self.params.len()) }
    }

    /// The signature as documentation shows it, e.g. `replace(str: string, old: string, ...) -> string`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let types: Vec<&str> = p.types.iter().map(|t| t.name()).collect();
                let suffix = match p.arity {
                    Arity::Required => "",
                    Arity::Optional => "?",
                    Arity::Variadic => "...",
                };
                format!("{}{suffix}: {}", p.name, types.join("|"))
            })
            .collect();
        format!("{}({}) -> {}", self.name, params.join(", "), self.returns)
    }

    /// Checks the number of arguments, with the message Kyverno's JMESPath library gives.
    pub fn check_arity(&self, count: usize) -> Result<(), EvalError> {
        let min = self.min_args();
        let variadic = self.max_args().is_none();
        if count < min {
            let report = if count == 0 {
                "none ".to_string()
            } else if variadic {
                format!("only {count} ")
            } else {
                format!("{count} ")
            };
            let plural = if min > 1 { "s" } else { "" };
            let more = if variadic { "or more " } else { "" };
            return Err(EvalError::new(
                ErrorKind::InvalidArity,
                format!(
                    "invalid arity, the function '{}' expects {min} argument{plural} {more}but {report}were supplied",
                    self.name
                ),
            ));
        }
        if let Some(max) = self.max_args()
            && count > max
        {
            return Err(EvalError::new(
                ErrorKind::InvalidArity,
                format!(
                    "invalid arity, the function '{}' expects at most {max} arguments but {count} were supplied",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// The parameter that argument number `index` (from 0) binds to.
    pub fn param_for(&self, index: usize) -> Option<&Param> {
        self.params.get(index).or_else(|| self.params.last().filter(|p| p.arity == Arity::Variadic))
    }

    /// Checks arity and every argument's type.
    pub(crate) fn check_args(&self, args: &[Arg<'_, '_>]) -> Result<(), EvalError> {
        self.check_arity(args.len())?;
        for (index, arg) in args.iter().enumerate() {
            let Some(param) = self.param_for(index) else { continue };
            let ok = match arg {
                Arg::Expref(_) => param.types.contains(&Type::Expref),
                Arg::Value(value) => param.types.iter().any(|t| t.accepts(value)),
            };
            if !ok {
                let shown = match arg {
                    Arg::Expref(_) => "an expression reference".to_string(),
                    Arg::Value(value) => format!("{} {}", type_name(value), short_json(value)),
                };
                let expected: Vec<&str> = param.types.iter().map(|t| t.name()).collect();
                return Err(EvalError::invalid_type(format!(
                    "invalid type for argument {} ({}) of '{}': got {shown}, expected {}",
                    index + 1,
                    param.name,
                    self.name,
                    expected.join(" or ")
                )));
            }
        }
        Ok(())
    }
}

/// A value for an error message, cut short when long.
fn short_json(value: &Value) -> String {
    const MAX: usize = 60;
    let text = crate::jmespath::to_json(value);
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}...")
}

/// One argument of a call: a value, borrowed from the document where possible, or an expression
/// reference.
#[derive(Debug)]
pub enum Arg<'v, 'e> {
    Value(std::borrow::Cow<'v, Value>),
    Expref(&'e Expr),
}

/// What a function may ask of the evaluator that called it.
pub trait Evaluator {
    /// Evaluates an expression reference against a value.
    fn eval_ref(&mut self, expr: &Expr, value: &Value) -> Result<Value, EvalError>;
    /// Takes `steps` from the evaluation budget.
    fn charge(&mut self, steps: u64) -> Result<(), EvalError>;
    /// The dialect the expression is evaluated in.
    fn dialect(&self) -> Dialect;
}

/// A function call in progress: its declaration, its arguments and the evaluator.
pub struct Call<'a, 'v> {
    pub decl: &'static FunctionDecl,
    args: Vec<Arg<'v, 'a>>,
    evaluator: &'a mut dyn Evaluator,
}

static NULL: Value = Value::Null;

impl<'a, 'v> Call<'a, 'v> {
    pub fn new(decl: &'static FunctionDecl, args: Vec<Arg<'v, 'a>>, evaluator: &'a mut dyn Evaluator) -> Self {
        Call { decl, args, evaluator }
    }

    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The argument at `index`; `null` for an expression reference or a missing optional argument.
    pub fn value(&self, index: usize) -> &Value {
        match self.args.get(index) {
            Some(Arg::Value(value)) => value,
            _ => &NULL,
        }
    }

    /// Takes the argument at `index` out of the call, cloning only if it is borrowed.
    pub fn take(&mut self, index: usize) -> Value {
        match self.args.get_mut(index) {
            Some(Arg::Value(value)) => std::mem::take(value).into_owned(),
            _ => Value::Null,
        }
    }

    fn mismatch(&self, index: usize, expected: &str) -> EvalError {
        EvalError::invalid_type(format!(
            "invalid type for argument {} of '{}': expected {expected}, got {}",
            index + 1,
            self.decl.name,
            type_name(self.value(index))
        ))
    }

    pub fn string(&self, index: usize) -> Result<&str, EvalError> {
        self.value(index).as_str().ok_or_else(|| self.mismatch(index, "string"))
    }

    pub fn number(&self, index: usize) -> Result<f64, EvalError> {
        self.value(index).as_f64().ok_or_else(|| self.mismatch(index, "number"))
    }

    pub fn array(&self, index: usize) -> Result<&Vec<Value>, EvalError> {
        self.value(index).as_array().ok_or_else(|| self.mismatch(index, "array"))
    }

    pub fn object(&self, index: usize) -> Result<&Map<String, Value>, EvalError> {
        self.value(index).as_object().ok_or_else(|| self.mismatch(index, "object"))
    }

    pub fn expref(&self, index: usize) -> Result<&'a Expr, EvalError> {
        match self.args.get(index) {
            Some(Arg::Expref(expr)) => Ok(expr),
            _ => Err(self.mismatch(index, "expref")),
        }
    }

    /// Evaluates an expression reference against `value`.
    pub fn eval(&mut self, expr: &Expr, value: &Value) -> Result<Value, EvalError> {
        self.evaluator.eval_ref(expr, value)
    }

    /// Takes `steps` from the evaluation budget, for work out of proportion to the arguments.
    pub fn charge(&mut self, steps: u64) -> Result<(), EvalError> {
        self.evaluator.charge(steps)
    }

    pub fn dialect(&self) -> Dialect {
        self.evaluator.dialect()
    }
}

struct Index {
    standard: HashMap<&'static str, &'static FunctionDecl>,
    kyverno: HashMap<&'static str, &'static FunctionDecl>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut standard = HashMap::new();
    let mut kyverno = HashMap::new();
    for decl in all() {
        match decl.dialect {
            Dialect::Standard => {
                standard.insert(decl.name, decl);
                kyverno.entry(decl.name).or_insert(decl);
            }
            // Kyverno's declarations replace standard ones of the same name in its dialect.
            Dialect::Kyverno => {
                kyverno.insert(decl.name, decl);
            }
        }
    }
    Index { standard, kyverno }
});

/// Every declaration, standard and Kyverno, including both sides of an override.
pub fn all() -> impl Iterator<Item = &'static FunctionDecl> {
    FAMILIES.iter().flat_map(|family| family().iter())
}

/// The function `name` as Kyverno's dialect sees it (Kyverno's overrides win).
pub fn lookup(name: &str) -> Option<&'static FunctionDecl> {
    lookup_in(Dialect::Kyverno, name)
}

/// The function `name` as seen in `dialect`.
pub fn lookup_in(dialect: Dialect, name: &str) -> Option<&'static FunctionDecl> {
    let index = &*INDEX;
    match dialect {
        Dialect::Standard => index.standard.get(name).copied(),
        Dialect::Kyverno => index.kyverno.get(name).copied(),
    }
}

/// The functions visible in `dialect`, sorted by name: what completion offers.
pub fn visible(dialect: Dialect) -> Vec<&'static FunctionDecl> {
    let index = &*INDEX;
    let map = match dialect {
        Dialect::Standard => &index.standard,
        Dialect::Kyverno => &index.kyverno,
    };
    let mut decls: Vec<_> = map.values().copied().collect();
    decls.sort_by_key(|d| d.name);
    decls
}
