//! No crash and no hang on any document: random edits (seeded, bounded) of real policies, with
//! every language feature asked at random places after each edit.
//!
//! The in-process part drives the analysis functions directly, many edits per seed; the
//! protocol part sends the edits to the real binary as `didChange` notifications (with
//! positions past the end of lines and files too) and requires an answer to every request.
//! A hang fails the test through a deadline instead of blocking it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lsp_support;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lsp_support::{Client, file_uri, temp_dir};
use palisade_lsp::text::LineIndex;
use palisade_lsp::{actions, completion, diagnostics, hover, navigate};
use serde_json::json;

/// xorshift64*: small, seeded and the same everywhere, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Pieces that exercise the YAML, pattern, template and expression front ends.
const PIECES: &[&str] = &[
    ":", " ", "\n", "- ", "  ", "{{", "}}", "{{ request.", "{{ element.", "(", ")", "=(", "X(", "^(", "<(", "+(",
    "'", "\"", "|", ">-\n", "#", "\t", "é", "😀", "\n---\n", "&a ", "*a", "<<: *a", "[", "]", "{", "}", "\r\n",
    "pattern:", "anyPattern:", "foreach:\n- list: ", "context:\n- name: x\n", "to_upper(", "`", "\\", ">=1 | <2",
    "?*", "!", "kind: ", "apiVersion: ", "validationFailureAction: Audit\n", "expression: ", "variables.",
];

fn seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![
        root.join("tests/lsp/require-team.yaml"),
        root.join("tests/lsp/half-typed.yaml"),
        root.join("tests/lsp/exception.yaml"),
        root.join("examples/policies/require-team-label.yaml"),
        root.join("examples/policies/restrict-image-registries.yaml"),
    ];
    // A fixed sample of the corpus: every 400th policy file, in sorted order.
    let corpus = root.join("../shared/corpus/kyverno-policies");
    let mut all = Vec::new();
    collect(&corpus, &mut all, 0);
    all.sort();
    paths.extend(all.into_iter().step_by(400));
    paths
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() && depth < 6 {
            collect(&p, out, depth + 1);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn edit(rng: &mut Rng, text: &mut String) {
    let mut at = rng.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    match rng.below(4) {
        0 | 1 => text.insert_str(at, PIECES[rng.below(PIECES.len())]),
        2 => {
            let mut end = (at + rng.below(24)).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(at..end, "");
        }
        _ => {
            let c = char::from_u32(rng.below(0x3000) as u32).unwrap_or('x');
            text.insert(at, c);
        }
    }
}

/// Runs `f` on another thread and fails if it does not finish in time.
fn within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(_) if handle.is_finished() => {
            // The thread ended without sending: it panicked; re-raise its panic.
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(_) => panic!("no result within {limit:?}: a hang"),
    }
}

#[test]
fn random_edits_in_process() {
    within(Duration::from_secs(300), || {
        let uri: palisade_lsp::ls_types::Uri = "file:///fuzz.yaml".parse().unwrap();
        let seeds = seeds();
        assert!(seeds.len() >= 10, "too few seed documents: {}", seeds.len());
        for (i, (path, seed)) in seeds.iter().enumerate() {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            let mut text = seed.clone();
            for step in 0..25 {
                edit(&mut rng, &mut text);
                let index = LineIndex::new(&text);
                let at = rng.below(text.len() + 1);
                let context = format!("{} step {step} offset {at}", path.display());
                let run = std::panic::catch_unwind(|| {
                    diagnostics::compute(&uri, &text, &index);
                    completion::complete(&text, &index, at);
                    hover::hover(&text, &index, at);
                    navigate::symbols(&text);
                    navigate::definition(&uri, &text, at, &Vec::new);
                    navigate::references(&uri, &text, at, true, &Vec::new);
                    actions::actions(&uri, &text, at.saturating_sub(40)..at);
                });
                if run.is_err() {
                    panic!("panic at {context}; document:\n{text}");
                }
            }
        }
    });
}

#[test]
fn random_edits_over_the_protocol() {
    let dir = temp_dir("lsp-fuzz");
    let uri = file_uri(&dir.join("fuzz.yaml"));
    let seed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp/require-team.yaml")).unwrap();
    let mut c = Client::start();
    c.initialize(&dir);
    c.open(&uri, &seed);
    let mut rng = Rng(42);
    let mut lines = seed.lines().count() as u64;
    for version in 2..100 {
        // Positions may lie past the end of a line or of the file; the server must clamp them.
        let mut p = || json!({"line": rng.below(lines as usize + 3), "character": rng.below(90)});
        let (start, end) = (p(), p());
        let (start, end) = if (start["line"].as_u64(), start["character"].as_u64()) <= (end["line"].as_u64(), end["character"].as_u64()) {
            (start, end)
        } else {
            (end, start)
        };
        let piece = PIECES[rng.below(PIECES.len())];
        lines += piece.matches('\n').count() as u64;
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": start, "end": end}, "text": piece}]}),
        );
        c.diagnostics(&uri, version);
        let position = json!({"line": rng.below(lines as usize + 2), "character": rng.below(80)});
        let doc_pos = json!({"textDocument": {"uri": uri}, "position": position});
        for method in ["textDocument/hover", "textDocument/completion", "textDocument/definition"] {
            let answer = c.request_raw(method, doc_pos.clone());
            assert!(answer.get("error").is_none(), "{method} failed at version {version}: {answer}");
        }
        if version % 10 == 0 {
            c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
            c.request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": {"start": position, "end": position}, "context": {"diagnostics": []}}),
            );
        }
    }
    assert!(c.shutdown(), "the server did not exit cleanly after the random edits");
}
