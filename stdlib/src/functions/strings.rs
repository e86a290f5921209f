//! Kyverno's strings functions.

use super::FunctionDecl;

pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
