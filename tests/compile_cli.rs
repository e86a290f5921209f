//! `palisade compile --explain`: which engine of the set answers each rule, and why a rule is
//! left to the interpreter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn corpus(rel: &str) -> String {
    format!("{}/../shared/corpus/kyverno-policies/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn explain_names_the_engine_of_every_rule() {
    let dir = tempfile_dir();
    let bundle = dir.join("set.plb");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["compile", "--explain", "-o", bundle.to_str().unwrap()])
        .args([
            corpus("pod-security/baseline/disallow-privileged-containers"),
            corpus("pod-security/baseline/disallow-capabilities"),
            corpus("pod-security/subrule/podsecurity-subrule-baseline"),
            corpus("best-practices/disallow-latest-tag"),
            corpus("best-practices/add-safe-to-evict"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |rule: &str| text.lines().find(|l| l.trim_start().starts_with(&format!("{rule} at "))).unwrap_or_else(|| panic!("no line for {rule}:\n{text}")).to_owned();
    assert!(line("privileged-containers").ends_with(", native"), "{text}");
    // Preconditions and deny conditions run on the parsed document.
    assert!(line("adding-capabilities").ends_with(", tape"), "{text}");
    // foreach with patterns: the list on the document, the patterns as native code.
    assert!(line("validate-image-tag").ends_with(", tape"), "{text}");
    assert!(line("baseline").contains("pod-security: "), "{text}");
    // Mutate rules are not validation results; the interpreter runs them, and says why.
    assert!(line("annotate-empty-dir").contains("interpreter: not a validate rule"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-compile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
