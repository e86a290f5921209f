//! Kyverno's encoding functions.

use super::FunctionDecl;

pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
