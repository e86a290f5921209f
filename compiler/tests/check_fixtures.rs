//! Broken policies with their expected diagnostics written under the offending lines.
//!
//! Each file in `tests/fixtures/check/` holds one problem. An annotation is a comment line
//!
//! ```text
//!         ^^^^^^^^ error[P0101]: unknown field `exlude` in `spec.rules[0]`
//! ```
//!
//! right under the line the diagnostic starts on: the first `^` sits in the diagnostic's
//! column and the carets cover its span on that line. The `#` that makes the line a comment sits
//! just before the first caret; a diagnostic in column 1 is written `#^...`, like one in column 2.
//!
//! The runner removes the annotations, checks the remaining text, writes the annotations it
//! expects from the diagnostics and compares the result with the file. `UPDATE_EXPECT=1`
//! rewrites the files instead (review the diff before committing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use palisade_compiler::check::check_source;
use palisade_compiler::source::SourceMap;

fn is_annotation(line: &str) -> bool {
    let t = line.trim_start();
    t.strip_prefix('#').is_some_and(|rest| {
        let rest = rest.trim_start_matches('^');
        rest.len() < t.len() - 1
            && ["error[", "warning[", "note["]
                .iter()
                .any(|s| rest.trim_start().starts_with(s))
    })
}

/// The file's text with the annotations the checker's diagnostics call for.
fn annotate(text: &str) -> String {
    let stripped: String = text
        .split_inclusive('\n')
        .filter(|l| !is_annotation(l))
        .collect();
    let mut sources = SourceMap::new();
    let file = sources.add("fixture.yaml", stripped.as_str());
    let (_, diags) = check_source(file, &stripped);
    let mut out = String::new();
    for (i, line) in stripped.split_inclusive('\n').enumerate() {
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push('\n');
        }
        let number = u32::try_from(i + 1).unwrap();
        for d in &diags {
            let (start, end) = sources.resolve(d.span).unwrap();
            if start.line != number {
                continue;
            }
            let line_len =
                u32::try_from(line.trim_end_matches(['\n', '\r']).chars().count()).unwrap();
            let stop = if end.line == start.line {
                end.column
            } else {
                line_len + 1
            };
            let width = stop.saturating_sub(start.column).max(1) as usize;
            let pad = start.column.saturating_sub(2) as usize;
            out.push_str(&format!(
                "{}#{} {}[{}]: {}\n",
                " ".repeat(pad),
                "^".repeat(width),
                d.severity.as_str(),
                d.code,
                d.message
            ));
        }
    }
    out
}

#[test]
fn broken_policies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 40,
        "expected at least 40 fixtures, found {}",
        paths.len()
    );
    let mut failed = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let expected = annotate(&text);
        if expected == text {
            continue;
        }
        if update {
            std::fs::write(path, &expected).unwrap();
        } else {
            failed.push(format!(
                "--- {}\n{}",
                path.display(),
                diff(&text, &expected)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "fixtures differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        failed.join("\n")
    );
}

/// Every fixture must show at least one diagnostic: a fixture without one tests nothing.
#[test]
fn every_fixture_has_a_diagnostic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().any(is_annotation),
            "{} has no expected diagnostic",
            path.display()
        );
    }
}

/// A line diff that is enough to see what changed.
fn diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    for line in &old {
        if !new.contains(line) {
            out.push_str(&format!("- {line}\n"));
        }
    }
    for line in &new {
        if !old.contains(line) {
            out.push_str(&format!("+ {line}\n"));
        }
    }
    out
}
