//! Host helpers that native matchers call. Each is `extern "C"`, catches any panic so that
//! nothing unwinds into generated code, and answers with a result code.

use palisade_compiler::ir::pattern::{NodeId, Pattern};

use super::{ERR, Env, OK, SKIP};
use crate::doc::{Doc, TAG_ARRAY, TAG_OBJECT, TAG_STR, TAG_STR_OWNED};
use crate::interp::gofmt;
use crate::interp::scalar;

pub(super) fn node_index(id: NodeId) -> u32 {
    id.index()
}

/// The scalar branch of the interpreter's `element`: `node` matches the scalar pattern node
/// `pattern_node` (every element must, when `node` is an array). A mismatch is classified the
/// way the interpreter classifies its message, which quotes the resource value: a value whose
/// text holds a skip marker makes the mismatch a skip.
///
/// # Safety
/// `env` must point to a live [`Env`] whose `doc` and `pattern` fields point to a live `Doc`
/// and `Pattern`, as `CompiledPattern::run` sets up.
pub(super) unsafe extern "C" fn scalar(env: *const Env, pattern_node: u32, node: u32) -> u32 {
    // SAFETY: guaranteed by the caller (see `# Safety`); the generated code passes the `env`
    // pointer it received from `CompiledPattern::run`, unchanged.
    let (doc, pattern) = unsafe { (&*(*env).doc.cast::<Doc>(), &*(*env).pattern) };
    std::panic::catch_unwind(|| scalar_code(doc, pattern, pattern_node, node)).unwrap_or(ERR)
}

fn scalar_code(doc: &Doc, pattern: &Pattern, pattern_node: u32, node: u32) -> u32 {
    let p = pattern.node(NodeId::from_index(pattern_node));
    let ok = if doc.node(node).tag == TAG_ARRAY {
        doc.elems(node).iter().all(|&e| scalar::matches_scalar(doc.scalar(e), p))
    } else {
        scalar::matches_scalar(doc.scalar(node), p)
    };
    if ok {
        return OK;
    }
    if mismatch_text_marks_skip(doc, node) { SKIP } else { ERR }
}

/// Whether Go's `%v` of the value holds one of the texts that make Kyverno treat an error as a
/// skip (only strings, arrays and maps can).
fn mismatch_text_marks_skip(doc: &Doc, node: u32) -> bool {
    const MARKS: [&str; 2] = ["conditional anchor mismatch", "global anchor mismatch"];
    match doc.node(node).tag {
        TAG_STR | TAG_STR_OWNED => doc.str(node).is_some_and(|s| MARKS.iter().any(|m| s.contains(m))),
        TAG_ARRAY | TAG_OBJECT => {
            let text = gofmt::v(&doc.to_value(node));
            MARKS.iter().any(|m| text.contains(m))
        }
        _ => false,
    }
}
