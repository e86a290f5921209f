//! `palisade schema`: the JSON schema printed for yaml-language-server users agrees with the
//! checker. Every policy document of the corpus that `palisade check` accepts without errors
//! must validate against the schema, and a document with an unknown field or a bad enum value
//! must not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_compiler::{FileId, check, syntax};
use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade")).arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::new(&schema).unwrap()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() && depth < 8 {
            collect(&p, out, depth + 1);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn corpus_policies_the_checker_accepts_validate_against_the_schema() {
    let validator = schema();
    let mut files = Vec::new();
    collect(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/kyverno-policies"), &mut files, 0);
    collect(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"), &mut files, 0);
    files.sort();
    let mut validated = 0;
    let mut mismatches = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let (docs, _) = syntax::parse(FileId(0), &text);
        for doc in &docs {
            if doc.truncated || !check::is_policy(doc) {
                continue;
            }
            let (_, diags) = check::check(std::slice::from_ref(doc));
            if diags.iter().any(|d| d.is_error()) {
                continue;
            }
            validated += 1;
            let json = syntax::to_json(&doc.root);
            if let Some(e) = validator.iter_errors(&json).next() {
                mismatches.push(format!("{}: {} at {}", path.display(), e, e.instance_path()));
            }
        }
    }
    assert!(validated > 500, "only {validated} policy documents were checked");
    assert!(mismatches.is_empty(), "{} of {validated} accepted policies fail the schema:\n{}", mismatches.len(), mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_schema_rejects_what_the_checker_rejects() {
    let validator = schema();
    let doc = |text: &str| {
        let (docs, _) = syntax::parse(FileId(0), text);
        syntax::to_json(&docs[0].root)
    };
    let base = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      failureAction: Enforce\n      pattern:\n        metadata:\n          labels:\n            team: \"?*\"\n";
    assert!(validator.is_valid(&doc(base)));
    for (from, to) in [
        ("pattern:", "patern:"),
        ("failureAction: Enforce", "failureAction: Enforced"),
        ("  - name: r\n", "  - nam: r\n"),
        ("kinds: [Pod]", "kinds: Pod"),
    ] {
        let broken = base.replace(from, to);
        assert!(!validator.is_valid(&doc(&broken)), "`{to}` passed the schema");
        let (_, diags) = check::check_source(FileId(0), &broken);
        assert!(diags.iter().any(|d| d.is_error()), "`{to}` passed the checker");
    }
}
