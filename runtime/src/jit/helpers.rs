//! Host helpers that native matchers call. Each is `extern "C"`, catches any panic so that
//! nothing unwinds into generated code, and answers with a result code.

use palisade_compiler::ir::pattern::Node;

use super::{ERR, Env, OK, SKIP};
use crate::doc::{Doc, TAG_ARRAY, TAG_OBJECT, TAG_STR, TAG_STR_OWNED};
use crate::interp::gofmt;
use crate::interp::scalar;

/// The scalar branch of the interpreter's `element`: `node` matches the scalar pattern constant
/// `konst` of the batch (every element must, when `node` is an array). A mismatch is classified
/// the way the interpreter classifies its message, which quotes the resource value: a value
/// whose text holds a skip marker makes the mismatch a skip.
///
/// # Safety
/// `env` must point to a live [`Env`] whose `doc` field points to a live `Doc` and whose
/// `consts`/`consts_len` describe a live slice, as `CompiledPattern::run` sets up.
pub(super) unsafe extern "C" fn scalar(env: *const Env, konst: u32, node: u32) -> u32 {
    // SAFETY: guaranteed by the caller (see `# Safety`); the generated code passes the `env`
    // pointer it received from `CompiledPattern::run`, unchanged.
    let (doc, consts) = unsafe { (&*(*env).doc.cast::<Doc>(), std::slice::from_raw_parts((*env).consts, (*env).consts_len)) };
    std::panic::catch_unwind(|| match consts.get(konst as usize) {
        Some(p) => scalar_code(doc, p, node),
        None => ERR,
    })
    .unwrap_or(ERR)
}

/// The entry of a pattern whose code could not be generated: it never passes, so the engine
/// asks the interpreter, which gives the rule's real answer.
pub(super) extern "C" fn defer(_env: *const Env, _node: u32) -> u32 {
    ERR
}

fn scalar_code(doc: &Doc, p: &Node, node: u32) -> u32 {
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
