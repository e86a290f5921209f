//! Hover and completion cases as data: each file in `tests/cases/` is a policy with a `<|>`
//! cursor and a first line saying what to ask (`# hover` or `# complete`); the answer is kept
//! next to it in a `.expected` file. `UPDATE_EXPECT=1 cargo test -p palisade-lsp --test cases`
//! rewrites the expected files after a deliberate change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use palisade_lsp::text::LineIndex;
use palisade_lsp::{completion, hover};

fn answer(source: &str) -> String {
    let offset = source.find("<|>").expect("a <|> cursor marker");
    let text = source.replacen("<|>", "", 1);
    let index = LineIndex::new(&text);
    match source.lines().next().unwrap_or_default() {
        "# hover" => hover::hover_markdown(&text, offset)
            .map_or_else(|| "(no hover)\n".to_owned(), |(md, range)| {
                format!("[{}]\n{md}\n", text.get(range).unwrap_or_default())
            }),
        "# complete" => {
            let items = completion::complete(&text, &index, offset);
            let mut out = String::new();
            for item in items {
                out.push_str(&format!("{} ({})\n", item.label, item.detail.unwrap_or_default()));
            }
            if out.is_empty() { "(no completion)\n".to_owned() } else { out }
        }
        other => panic!("unknown case header {other:?}"),
    }
}

#[test]
fn cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let expected = path.with_extension("expected");
        expect_test::expect_file![expected].assert_eq(&answer(&source));
    }
}
