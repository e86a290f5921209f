//! Code lens: on a policy file that a nearby `kyverno-test.yaml` tests (in the same folder or
//! its `.kyverno-test/`), and on the test file itself, a lens runs those tests and shows how
//! many passed and failed.
//!
//! Running tests needs the evaluation engine, which this crate does not depend on: the binary
//! passes a [`TestRunner`] in, so the dependency stays `lsp -> compiler`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tower_lsp_server::ls_types::{CodeLens, Command, Position, Range};

use crate::defs;

/// The name of the command a lens runs; its one argument is the test file's path.
pub const RUN_TESTS: &str = "palisade.runTests";

const TEST_FILE: &str = "kyverno-test.yaml";

/// What running one test file gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
    /// Why the file could not be run, if it could not.
    pub error: Option<String>,
    /// One line per failed result.
    pub failures: Vec<String>,
}

impl TestSummary {
    pub fn title(&self) -> String {
        match &self.error {
            Some(e) => format!("kyverno tests: error: {e}"),
            None if self.failed == 0 => format!("✔ kyverno tests: {} passed", self.passed),
            None => format!("✘ kyverno tests: {} passed, {} failed", self.passed, self.failed),
        }
    }
}

/// Runs one kyverno-test.yaml file.
pub type TestRunner = Arc<dyn Fn(&Path) -> TestSummary + Send + Sync>;

/// Test files near `file` (in its folder, its `.kyverno-test/` or the folder above) that name
/// it under `policies`, or `file` itself if it is a test file.
pub fn test_files_for(file: &Path) -> Vec<PathBuf> {
    if file.file_name().is_some_and(|n| n == TEST_FILE) {
        return vec![file.to_owned()];
    }
    let Some(dir) = file.parent() else { return Vec::new() };
    let own = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let mut out = Vec::new();
    let mut candidates = vec![dir.join(TEST_FILE), dir.join(".kyverno-test").join(TEST_FILE)];
    if let Some(up) = dir.parent() {
        candidates.push(up.join(TEST_FILE));
    }
    for candidate in candidates {
        let Ok(text) = std::fs::read_to_string(&candidate) else { continue };
        let base = candidate.parent().unwrap_or(dir);
        let names = defs::parse(&text).iter().any(|doc| {
            doc.root.get("policies").and_then(|p| p.as_seq()).unwrap_or(&[]).iter().any(|p| {
                p.as_str().is_some_and(|p| {
                    let path = base.join(p);
                    std::fs::canonicalize(&path).unwrap_or(path) == own
                })
            })
        });
        if names {
            out.push(candidate);
        }
    }
    out
}

/// Lenses at the top of the file, one per test file, titled with the last result if there is one.
pub fn lenses(tests: &[PathBuf], last: &dyn Fn(&Path) -> Option<TestSummary>) -> Vec<CodeLens> {
    tests
        .iter()
        .map(|t| {
            let title = match last(t) {
                Some(summary) => format!("{} (run again)", summary.title()),
                None => format!("▶ run kyverno tests ({})", display(t)),
            };
            CodeLens {
                range: Range::new(Position::new(0, 0), Position::new(0, 0)),
                command: Some(Command {
                    title,
                    command: RUN_TESTS.to_owned(),
                    arguments: Some(vec![serde_json::Value::String(t.display().to_string())]),
                }),
                data: None,
            }
        })
        .collect()
}

fn display(p: &Path) -> String {
    let parent = p.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    if parent == ".kyverno-test" { format!(".kyverno-test/{TEST_FILE}") } else { TEST_FILE.to_owned() }
}
