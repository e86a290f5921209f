//! Kyverno's patterns functions.

use super::FunctionDecl;

pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
