//! The interpreter: the reference executor of the matcher IR.

pub mod gofmt;
pub mod pattern;
pub mod scalar;
