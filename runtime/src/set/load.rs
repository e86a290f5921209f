//! Loading policy sets for the set engine: folders walked, non-policy YAML ignored, and
//! generated padding rules for scaling measurements.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use palisade_compiler::ir::policy::PolicyIr;

use crate::cli::runner;

/// Every `kyverno.io` ClusterPolicy or Policy in the given files and folders (recursively,
/// hidden folders such as `.kyverno-test` skipped). Files that do not parse, and policies that
/// do not lower, are reported in the second list and left out.
pub fn load_policies(paths: &[PathBuf]) -> (Vec<PolicyIr>, Vec<String>) {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files);
    }
    let mut policies = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let docs = match runner::load_documents(&f) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        for d in docs {
            let api = d.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or_default();
            if !(api.starts_with("kyverno.io/") && (kind == "ClusterPolicy" || kind == "Policy")) {
                continue;
            }
            match PolicyIr::lower(&d) {
                Ok(ir) => policies.push(ir),
                Err(e) => problems.push(format!("{}: {e}", f.display())),
            }
        }
    }
    (policies, problems)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_owned());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if p.is_dir() && !hidden {
            collect(&p, out);
        } else if p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            // Test files and resources are YAML too; they are recognised by kind and ignored.
            out.push(p);
        }
    }
}

/// `count` generated rules in policies of 100 rules each, every rule matching a kind no real
/// request has (`PaddingKind<n>`), with a realistic pattern.
pub fn padding(count: usize) -> Vec<PolicyIr> {
    let mut out = Vec::new();
    let mut made = 0;
    while made < count {
        let n = (count - made).min(100);
        let rules: Vec<Value> = (made..made + n)
            .map(|i| {
                json!({
                    "name": format!("pad-{i}"),
                    "match": {"any": [{"resources": {"kinds": [format!("PaddingKind{i}")]}}]},
                    "validate": {
                        "message": "padding",
                        "pattern": {"metadata": {"labels": {"app.kubernetes.io/name": "?*"}}}
                    }
                })
            })
            .collect();
        let policy = json!({
            "apiVersion": "kyverno.io/v1",
            "kind": "ClusterPolicy",
            "metadata": {"name": format!("padding-{}", made / 100)},
            "spec": {"validationFailureAction": "Audit", "background": true, "rules": rules}
        });
        if let Ok(ir) = PolicyIr::lower(&policy) {
            out.push(ir);
        }
        made += n;
    }
    out
}
