//! Arbitrary bytes through the policy front end: the spanned YAML parser, each document as a
//! pattern tree in both modes, and the whole file through the AST and the checker. Nothing may
//! panic or hang, and every span must stay inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_compiler::check;
use palisade_compiler::pattern::{PatternMode, parse_pattern};
use palisade_compiler::syntax::{self, Node, Value};
use palisade_compiler::{FileId, Span};

fn assert_in(text: &str, span: Span) {
    assert!(
        span.start <= span.end && span.end as usize <= text.len(),
        "span {span:?} outside the file"
    );
}

/// Every span of the tree stays inside the file.
fn visit(text: &str, node: &Node) {
    assert_in(text, node.span);
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|n| visit(text, n)),
        Value::Map(entries) => entries.iter().for_each(|(k, v)| {
            visit(text, k);
            visit(text, v);
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (documents, diagnostics) = syntax::parse(FileId(0), text);
    for d in &diagnostics {
        assert_in(text, d.span);
    }
    for document in &documents {
        visit(text, &document.root);
        // Any document read as a pattern, as the checker does for pattern-bearing fields.
        for mode in [PatternMode::Validate, PatternMode::Mutate] {
            let (_, diagnostics) = parse_pattern(&document.root, mode);
            for d in &diagnostics {
                assert_in(text, d.span);
            }
        }
    }
    let (_, diagnostics) = check::check_source(FileId(0), text);
    for d in &diagnostics {
        assert_in(text, d.span);
    }
});
