//! The tree-walking evaluator.
//!
//! Values flow as `Cow<Value>`: a path into the document borrows it, and only values that must be
//! built (projections, multi-selects, function results) are owned. Copying a borrowed value costs
//! fuel in proportion to its size, so no expression can multiply data for free.
//!
//! In Kyverno's dialect a missing key raises `Unknown key "x" in path` from a field lookup. Where
//! Kyverno's interpreter absorbs that error into `null` is listed in [`Interpreter::absorb`]'s
//! callers: comparison operands, function arguments, expression references, filters, projections,
//! multi-selects, `||`, the left of `&&`, `!` and both sides of a pipe. A sub-expression (`a.b`)
//! passes it on, so a top-level path reports it.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::ast::{Comparator, Expr, ExprKind};
use super::error::{ErrorKind, EvalError};
use super::value::{compare, equal, is_truthy, size_at_most};
use super::{Dialect, EvalConfig};
use crate::functions::{self, Arg, Call, Evaluator};

type Res<'v> = Result<Cow<'v, Value>, EvalError>;

pub(crate) struct Interpreter<'c> {
    cfg: &'c EvalConfig,
    fuel: u64,
    depth: usize,
}

fn null<'v>() -> Res<'v> {
    Ok(Cow::Owned(Value::Null))
}

impl<'c> Interpreter<'c> {
    pub(crate) fn new(cfg: &'c EvalConfig) -> Self {
        Interpreter { cfg, fuel: cfg.fuel, depth: 0 }
    }

    pub(crate) fn run(&mut self, expr: &Expr, data: &Value) -> Result<Value, EvalError> {
        let result = self.eval(expr, data)?;
        self.own(result)
    }

    fn kyverno(&self) -> bool {
        self.cfg.dialect == Dialect::Kyverno
    }

    fn charge_fuel(&mut self, steps: u64) -> Result<(), EvalError> {
        match self.fuel.checked_sub(steps) {
            Some(left) => {
                self.fuel = left;
                Ok(())
            }
            None => {
                self.fuel = 0;
                Err(EvalError::new(ErrorKind::BudgetExceeded, "evaluation budget exceeded"))
            }
        }
    }

    /// Turns a result into an owned value, paying for the copy when it is borrowed.
    fn own(&mut self, value: Cow<'_, Value>) -> Result<Value, EvalError> {
        match value {
            Cow::Owned(value) => Ok(value),
            Cow::Borrowed(value) => {
                self.charge_fuel(size_at_most(value, self.fuel.saturating_add(1)))?;
                Ok(value.clone())
            }
        }
    }

    /// Kyverno treats a missing key as `null` in most places that consume a value; see the module
    /// documentation. Standard JMESPath never raises it, so this is a no-op there.
    fn absorb<'v>(&self, result: Res<'v>) -> Res<'v> {
        match result {
            Err(e) if e.is_unknown_key() => null(),
            other => other,
        }
    }

    fn eval<'v>(&mut self, expr: &Expr, value: &'v Value) -> Res<'v> {
        self.charge_fuel(1)?;
        if self.depth >= self.cfg.max_depth {
            return Err(EvalError::new(ErrorKind::TooDeep, "expression too deeply nested"));
        }
        self.depth += 1;
        let result = self.eval_node(expr, value);
        self.depth -= 1;
        result
    }

    fn eval_node<'v>(&mut self, expr: &Expr, value: &'v Value) -> Res<'v> {
        match &expr.kind {
            ExprKind::Current => Ok(Cow::Borrowed(value)),
            ExprKind::Literal(literal) => Ok(Cow::Owned(literal.clone())),
            ExprKind::Field(name) => self.field(value, name),
            ExprKind::Subexpr(lhs, rhs) => {
                let left = self.eval(lhs, value)?;
                if self.kyverno() && left.is_null() {
                    return null();
                }
                self.then(left, rhs, false)
            }
            ExprKind::Pipe(lhs, rhs) => {
                let left = self.eval(lhs, value);
                let left = self.absorb(left)?;
                self.then(left, rhs, true)
            }
            ExprKind::Index(index) => Ok(match value {
                Value::Array(items) => resolve_index(*index, items.len())
                    .and_then(|i| items.get(i))
                    .map_or(Cow::Owned(Value::Null), Cow::Borrowed),
                _ => Cow::Owned(Value::Null),
            }),
            ExprKind::Slice { start, stop, step } => self.slice(value, *start, *stop, *step),
            // `a[].b` flattens and projects in one pass over borrowed elements, so the
            // flattened array is never copied.
            ExprKind::Projection(lhs, rhs) if matches!(lhs.kind, ExprKind::Flatten(_)) => {
                let ExprKind::Flatten(inner) = &lhs.kind else { return null() };
                let Some(base) = self.base(inner, value)? else { return null() };
                let Value::Array(items) = &*base else { return null() };
                let flat = items.iter().flat_map(|item| match item {
                    Value::Array(nested) => nested.iter().collect::<Vec<_>>(),
                    other => vec![other],
                });
                self.project(flat, rhs)
            }
            ExprKind::Projection(lhs, rhs) => {
                let base = self.eval(lhs, value);
                let base = self.absorb(base)?;
                match &*base {
                    Value::Array(items) => self.project(items.iter(), rhs),
                    // Kyverno keeps the string a slice of a string produced.
                    Value::String(_) if self.kyverno() && is_slice_of(lhs) => Ok(base),
                    _ => null(),
                }
            }
            ExprKind::ValueProjection(lhs, rhs) => {
                let Some(base) = self.base(lhs, value)? else { return null() };
                match &*base {
                    Value::Object(map) => self.project(map.values(), rhs),
                    _ => null(),
                }
            }
            ExprKind::FilterProjection { lhs, rhs, cond } => {
                let Some(base) = self.base(lhs, value)? else { return null() };
                let Value::Array(items) = &*base else { return null() };
                let mut out = Vec::new();
                for item in items {
                    let keep = self.eval(cond, item);
                    if !is_truthy(self.absorb(keep)?.as_ref()) {
                        continue;
                    }
                    let projected = self.eval(rhs, item);
                    let projected = self.absorb(projected)?;
                    if !projected.is_null() {
                        out.push(self.own(projected)?);
                    }
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            ExprKind::Flatten(inner) => {
                let Some(base) = self.base(inner, value)? else { return null() };
                let Value::Array(items) = &*base else { return null() };
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Array(nested) => {
                            for element in nested {
                                out.push(self.own(Cow::Borrowed(element))?);
                            }
                        }
                        other => out.push(self.own(Cow::Borrowed(other))?),
                    }
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            ExprKind::MultiList(items) => {
                // Standard JMESPath selects nothing from null; Kyverno's interpreter builds the
                // list (or object) anyway.
                if value.is_null() && !self.kyverno() {
                    return null();
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let result = self.eval(item, value);
                    let result = self.absorb(result)?;
                    out.push(self.own(result)?);
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            ExprKind::MultiHash(pairs) => {
                // Standard JMESPath selects nothing from null; Kyverno's interpreter builds the
                // list (or object) anyway.
                if value.is_null() && !self.kyverno() {
                    return null();
                }
                let mut out = Map::new();
                for (key, item) in pairs {
                    let result = self.eval(item, value);
                    let result = self.absorb(result)?;
                    out.insert(key.clone(), self.own(result)?);
                }
                Ok(Cow::Owned(Value::Object(out)))
            }
            ExprKind::Or(lhs, rhs) => {
                let left = self.eval(lhs, value);
                let left = self.absorb(left)?;
                if is_truthy(&left) {
                    return Ok(left);
                }
                let right = self.eval(rhs, value);
                self.absorb(right)
            }
            ExprKind::And(lhs, rhs) => {
                let left = self.eval(lhs, value);
                let left = self.absorb(left)?;
                if !is_truthy(&left) {
                    return Ok(left);
                }
                self.eval(rhs, value)
            }
            ExprKind::Not(inner) => {
                let result = self.eval(inner, value);
                let result = self.absorb(result)?;
                Ok(Cow::Owned(Value::Bool(!is_truthy(&result))))
            }
            ExprKind::Compare(op, lhs, rhs) => {
                let left = self.eval(lhs, value);
                let left = self.absorb(left)?;
                let right = self.eval(rhs, value);
                let right = self.absorb(right)?;
                Ok(Cow::Owned(comparison(*op, &left, &right)))
            }
            ExprKind::Call { name, args, .. } => self.call(name, args, value),
            ExprKind::ExprRef(_) => Err(EvalError::invalid_type(
                "an expression reference (`&expr`) can only be passed to a function",
            )),
        }
    }

    /// Evaluates the base of a filter, flatten or object projection. Kyverno's interpreter turns
    /// any failure there into `null`; only running out of budget or depth still stops it.
    fn base<'v>(&mut self, expr: &Expr, value: &'v Value) -> Result<Option<Cow<'v, Value>>, EvalError> {
        match self.eval(expr, value) {
            Ok(base) => Ok(Some(base)),
            Err(e) if self.kyverno() && !matches!(e.kind, ErrorKind::BudgetExceeded | ErrorKind::TooDeep) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn field<'v>(&self, value: &'v Value, name: &str) -> Res<'v> {
        match value {
            Value::Object(map) => match map.get(name) {
                Some(found) => Ok(Cow::Borrowed(found)),
                None if self.kyverno() => Err(EvalError::unknown_key(name)),
                None => null(),
            },
            _ => null(),
        }
    }

    /// Evaluates `rhs` against the result of the left side of a sub-expression or pipe.
    fn then<'v>(&mut self, left: Cow<'v, Value>, rhs: &Expr, absorb: bool) -> Res<'v> {
        match left {
            Cow::Borrowed(left) => {
                let result = self.eval(rhs, left);
                if absorb { self.absorb(result) } else { result }
            }
            Cow::Owned(left) => {
                let result = self.eval(rhs, &left);
                let result = if absorb { self.absorb(result)? } else { result? };
                Ok(Cow::Owned(self.own(result)?))
            }
        }
    }

    fn project<'i>(&mut self, items: impl Iterator<Item = &'i Value>, rhs: &Expr) -> Res<'static> {
        let mut out = Vec::new();
        for item in items {
            let result = self.eval(rhs, item);
            let result = self.absorb(result)?;
            if !result.is_null() {
                out.push(self.own(result)?);
            }
        }
        Ok(Cow::Owned(Value::Array(out)))
    }

    fn slice<'v>(&mut self, value: &'v Value, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Res<'v> {
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(EvalError::invalid_value("invalid slice: the step cannot be 0"));
        }
        match value {
            Value::Array(items) => {
                let indices = slice_indices(items.len(), start, stop, step);
                self.charge_fuel(indices.len() as u64)?;
                let mut out = Vec::with_capacity(indices.len());
                for i in indices {
                    if let Some(item) = items.get(i) {
                        out.push(self.own(Cow::Borrowed(item))?);
                    }
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            Value::String(text) if self.kyverno() => {
                let chars: Vec<char> = text.chars().collect();
                let indices = slice_indices(chars.len(), start, stop, step);
                self.charge_fuel(indices.len() as u64)?;
                let sliced: String = indices.into_iter().filter_map(|i| chars.get(i)).collect();
                Ok(Cow::Owned(Value::String(sliced)))
            }
            _ => null(),
        }
    }

    /// Calls a function on values already worked out, as a call whose arguments are those
    /// values would be called: the same lookup, argument checks and result.
    pub(crate) fn call_values(&mut self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let decl = self.function(name)?;
        self.call_decl(decl, args)
    }

    /// [`Interpreter::call_values`] for a function already looked up.
    pub(crate) fn call_decl(&mut self, decl: &'static functions::FunctionDecl, args: &[Value]) -> Result<Value, EvalError> {
        let values = args.iter().map(|v| Arg::Value(Cow::Borrowed(v))).collect::<Vec<_>>();
        decl.check_args(&values)?;
        let mut call = Call::new(decl, values, self);
        (decl.implementation)(&mut call)
    }

    fn function(&self, name: &str) -> Result<&'static functions::FunctionDecl, EvalError> {
        functions::lookup_in(self.cfg.dialect, name).ok_or_else(|| EvalError::new(ErrorKind::UnknownFunction, format!("unknown function: {name}")))
    }

    fn call<'v>(&mut self, name: &str, args: &[Expr], value: &'v Value) -> Res<'v> {
        let decl = self.function(name)?;
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            match &arg.kind {
                ExprKind::ExprRef(inner) => values.push(Arg::Expref(inner)),
                _ => {
                    let result = self.eval(arg, value);
                    values.push(Arg::Value(self.absorb(result)?));
                }
            }
        }
        decl.check_args(&values)?;
        let mut call = Call::new(decl, values, self);
        let result = (decl.implementation)(&mut call)?;
        Ok(Cow::Owned(result))
    }
}

impl Evaluator for Interpreter<'_> {
    fn eval_ref(&mut self, expr: &Expr, value: &Value) -> Result<Value, EvalError> {
        let result = self.eval(expr, value);
        let result = self.absorb(result)?;
        self.own(result)
    }

    fn charge(&mut self, steps: u64) -> Result<(), EvalError> {
        self.charge_fuel(steps)
    }

    fn dialect(&self) -> Dialect {
        self.cfg.dialect
    }
}

/// Whether a projection's left side is an index expression ending in a slice (`s[1:3]`).
fn is_slice_of(lhs: &Expr) -> bool {
    matches!(&lhs.kind, ExprKind::Subexpr(_, rhs) if matches!(rhs.kind, ExprKind::Slice { .. }))
}

fn comparison(op: Comparator, left: &Value, right: &Value) -> Value {
    match op {
        Comparator::Eq => Value::Bool(equal(left, right)),
        Comparator::Ne => Value::Bool(!equal(left, right)),
        _ => {
            // Ordering is defined for numbers only; anything else compares to `null`.
            if !(left.is_number() && right.is_number()) {
                return Value::Null;
            }
            let Some(ordering) = compare(left, right) else { return Value::Null };
            let result = match op {
                Comparator::Lt => ordering.is_lt(),
                Comparator::Le => ordering.is_le(),
                Comparator::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            };
            Value::Bool(result)
        }
    }
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let resolved = if index < 0 { index.checked_add(len)? } else { index };
    if (0..len).contains(&resolved) { usize::try_from(resolved).ok() } else { None }
}

/// The element indices a slice selects, by Python's rules (which JMESPath adopts).
fn slice_indices(len: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let clamp = |endpoint: i64| -> i64 {
        if endpoint < 0 {
            let shifted = endpoint.saturating_add(len);
            if shifted < 0 { if step < 0 { -1 } else { 0 } } else { shifted }
        } else if endpoint >= len {
            if step < 0 { len - 1 } else { len }
        } else {
            endpoint
        }
    };
    let start = start.map_or(if step < 0 { len - 1 } else { 0 }, clamp);
    let stop = stop.map_or(if step < 0 { -1 } else { len }, clamp);
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        if let Ok(index) = usize::try_from(i) {
            out.push(index);
        }
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    out
}
