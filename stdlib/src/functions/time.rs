//! Kyverno's time functions (`time_*`).

use super::FunctionDecl;

/// This family's declarations.
pub(crate) fn functions() -> &'static [FunctionDecl] {
    &[]
}
