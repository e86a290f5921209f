//! Kyverno's collections functions.

use super::FunctionDecl;

pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
