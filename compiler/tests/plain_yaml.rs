//! The fast path for plain YAML (`syntax::plain`) against the spanned parser, which defines
//! Palisade's YAML: on every document of the shared corpus (policies, resources, tests) and on
//! hand-written edge cases, the fast path either gives the same values and positions or
//! declines, and it declines only for what it leaves to the full parser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use palisade_compiler::source::SourceMap;
use palisade_compiler::syntax::{self, Node, plain};

/// What the spanned parser makes of a chunk, in the fast path's terms: `None` when it reports
/// an error.
fn reference(chunk: &str) -> Option<Vec<plain::PlainDoc>> {
    let mut map = SourceMap::new();
    let id = map.add("chunk.yaml", chunk);
    let (docs, diags) = syntax::parse(id, chunk);
    if diags.iter().any(|d| d.is_error()) {
        return None;
    }
    let at = |node: &Node| {
        let lc = map.get(id).unwrap().line_col(node.span.start);
        (lc.line, lc.column)
    };
    Some(
        docs.iter()
            .filter(|d| !matches!(d.root.value, syntax::Value::Null))
            .map(|d| plain::PlainDoc {
                value: syntax::to_json(&d.root),
                at: at(&d.root),
                items: match d.root.get("items").map(|i| &i.value) {
                    Some(syntax::Value::Seq(items)) => items.iter().map(at).collect(),
                    _ => Vec::new(),
                },
            })
            .collect(),
    )
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn the_fast_path_agrees_with_the_spanned_parser_on_the_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    assert!(files.len() > 1000, "the corpus is missing: {}", root.display());
    let (mut fast, mut declined) = (0usize, 0usize);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (start, end) in syntax::split_documents(&text) {
            let chunk = &text[start..end];
            match plain::parse_plain(chunk) {
                Some(docs) => {
                    fast += 1;
                    assert_eq!(Some(docs), reference(chunk), "{}: {chunk}", file.display());
                }
                None => declined += 1,
            }
        }
    }
    // Nearly every document is plain YAML; the few that are not use anchors or break the syntax.
    assert!(fast > 20 * declined, "fast {fast}, declined {declined}");
}

#[test]
fn edge_cases_agree_or_are_declined() {
    let agree = [
        "a: 1\nb: 0x1F\nc: 017\nd: 1e3\ne: .inf\nf: ~\ng: yes\nh: 'yes'\ni: \"x\\ty\"\nj:\n",
        "- 1\n- [a, {b: c}]\n- {}\n- []\n",
        "key: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
        "\"quoted key\": 1\n1: int key\n1.5: float key\ntrue: bool key\nnull: null key\n",
        "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf\r\n",
        "métadonnées:\n  nom: \"é\"\n  items:\n  - a\n",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n-   apiVersion: v1\n    kind: Pod\n    metadata: {name: b}\n- just text\n",
        "--- # comment\n# only a comment\n",
        "---\nplain scalar root\n",
        "a: 1\n...\n---\nb: 2\n",
        "{a: [1, 2], b: {c: d}}\n",
        "a: 9223372036854775808\nb: -0\nc: 0o17\nd: 1_000\n",
        "\"<<\": quoted merge key is a plain key\n",
    ];
    for text in agree {
        let fast = plain::parse_plain(text);
        assert!(fast.is_some(), "declined: {text}");
        assert_eq!(fast, reference(text), "{text}");
    }
    let declined = [
        "a: &x 1\nb: *x\n",
        "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
        "a: !!str 1\n",
        "a: 1\na: 2\n",
        "? [a, b]\n: c\n",
        "a: [1, 2\n",
        "a:\n  - b\n c: d\n",
    ];
    for text in declined {
        assert_eq!(plain::parse_plain(text), None, "{text}");
    }
}
