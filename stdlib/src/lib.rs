//! The expression languages of Kyverno policies and the primitives beneath them.
//!
//! Everything here is a pure library over `serde_json::Value`: the compiler uses it to parse and
//! check expressions, the runtime to evaluate them, the language server for docs and completion.

pub mod cel;
pub mod duration;
pub mod functions;
pub mod jmespath;
pub mod quantity;
pub mod semver;
pub mod template;
pub mod wildcard;
