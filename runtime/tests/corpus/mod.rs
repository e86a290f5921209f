//! The shared Kyverno corpus as the agreement tests walk it: its test folders, and the folder a
//! hidden `.kyverno-test` folder tests. Each test binary uses the parts it needs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/corpus/kyverno-policies`, read in place.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies")
}

/// Every folder under `dir` that holds a `kyverno-test.yaml`, in path order.
pub fn test_folders(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            test_folders(&p, out);
        } else if p.file_name().is_some_and(|n| n == "kyverno-test.yaml") && let Some(dir) = p.parent() {
            out.push(dir.to_owned());
        }
    }
}

/// Most tests sit in a hidden `.kyverno-test` folder beside the policy they test: for such a
/// folder, the folder of the policy.
pub fn tested_folder(test_dir: &Path) -> Option<&Path> {
    test_dir.parent().filter(|_| test_dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
}

/// Every YAML or JSON document under `dir`, `List`s expanded, in path order.
pub fn documents(dir: &Path, out: &mut Vec<serde_json::Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            documents(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            && let Ok(docs) = palisade_runtime::cli::runner::load_documents(&p)
        {
            for d in docs {
                palisade_runtime::cli::runner::expand_list(d, out);
            }
        }
    }
}
