//! The matcher IR: what the runtime executes.
//!
//! Policies are lowered into flat arenas indexed by typed ids. Every constant a matcher needs
//! (keys, anchors, operator expressions, quantities, durations, wildcards) is parsed here, once,
//! so evaluation never parses. The interpreter in `palisade-runtime` is the reference executor
//! of this IR.

pub mod cel;
pub mod images;
pub mod pattern;
pub mod podsecurity;
pub mod policy;
