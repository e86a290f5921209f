//! Kyverno's arithmetic functions: add, sum, subtract, multiply, divide, modulo, round.
//! They work on numbers, Kubernetes quantities and durations.

use super::FunctionDecl;

/// This family's declarations.
pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
