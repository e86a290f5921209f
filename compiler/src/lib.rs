//! The Palisade compiler: policy YAML in, checked policies and matcher IR out.
//!
//! Stages (each a pure function that never fails on user input; it returns its best result and
//! the diagnostics it found):
//! `syntax` (spanned YAML) -> `ast` (typed policies) -> `check` (diagnostics).
//! The compiler never evaluates a policy; that is the runtime's job.

pub mod ast;
pub mod autogen;
pub mod bundle;
pub mod check;
pub mod diagnostic;
pub mod ir;
pub mod pattern;
pub mod source;
pub mod syntax;

pub use diagnostic::{Diagnostic, Severity};
pub use source::{FileId, SourceMap, Span};
