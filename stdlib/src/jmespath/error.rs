//! Errors of parsing and evaluating JMESPath expressions.

use std::fmt;

/// A syntax error: where in the expression it is (a byte offset) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the expression text.
    pub offset: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        ParseError { offset, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error at column {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The class of an evaluation error. The names follow the JMESPath compliance suite
/// (`invalid-type`, `invalid-arity`, ...), plus the classes only Palisade and Kyverno have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Kyverno's dialect only: a field path named a key the object does not have.
    UnknownKey,
    UnknownFunction,
    InvalidArity,
    InvalidType,
    InvalidValue,
    /// A failure inside a function with its own message (Kyverno's custom functions).
    Function,
    /// The expression or the data nests deeper than the configured limit.
    TooDeep,
    /// The evaluation used up its step budget.
    BudgetExceeded,
}

impl ErrorKind {
    /// The compliance suite's name of this class.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::UnknownKey => "unknown-key",
            ErrorKind::UnknownFunction => "unknown-function",
            ErrorKind::InvalidArity => "invalid-arity",
            ErrorKind::InvalidType => "invalid-type",
            ErrorKind::InvalidValue => "invalid-value",
            ErrorKind::Function => "function-error",
            ErrorKind::TooDeep => "too-deep",
            ErrorKind::BudgetExceeded => "budget-exceeded",
        }
    }
}

/// An evaluation error. `Display` gives the message Kyverno would print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EvalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EvalError { kind, message: message.into() }
    }

    pub(crate) fn unknown_key(key: &str) -> Self {
        EvalError::new(ErrorKind::UnknownKey, format!("Unknown key \"{key}\" in path"))
    }

    pub(crate) fn invalid_type(message: impl Into<String>) -> Self {
        EvalError::new(ErrorKind::InvalidType, message)
    }

    pub(crate) fn invalid_value(message: impl Into<String>) -> Self {
        EvalError::new(ErrorKind::InvalidValue, message)
    }

    /// A Kyverno function's own failure, in Kyverno's `JMESPath function 'f': ...` form.
    pub fn function(name: &str, message: impl fmt::Display) -> Self {
        EvalError::new(ErrorKind::Function, format!("JMESPath function '{name}': {message}"))
    }

    /// True for Kyverno's `Unknown key "x" in path`, which rule evaluation treats specially.
    pub fn is_unknown_key(&self) -> bool {
        self.kind == ErrorKind::UnknownKey
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}
