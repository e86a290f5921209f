//! Every policy of the shared Kyverno corpus (`../shared/corpus/kyverno-policies`) checks
//! without errors, except the one the Kubernetes API server itself refuses (it breaks the
//! ClusterPolicy CRD's schema), listed below with the reason. Warnings are allowed; the test
//! prints them by code so that each kind can be justified, and asserts the justified ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use palisade_compiler::check;
use palisade_compiler::source::SourceMap;
use palisade_compiler::{FileId, Severity, syntax};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/kyverno-policies"
);

/// Corpus policies that cannot be installed at all, with the codes we report.
const KNOWN_INVALID: &[(&str, &[&str], &str)] = &[
    (
        "cost-optimization/schedule-based-quotas/schedule-based-quotas.yaml",
        &["P0101", "P0102", "P0103", "P0601", "P0602"],
        "context entries with a `configMap.key` field the CRD lacks and `variable` given as a string \
         (the CRD wants a map), holding Go method calls (`time.Now()`) that are not JMESPath",
    ),
];

/// Every warning code the corpus gives, and why it is a warning and not an error. A new code
/// fails the test until it is justified here.
const JUSTIFIED_WARNINGS: &[(&str, &str)] = &[
    ("P0106", "deprecated fields (`validationFailureAction`, `match.resources`, ...): Kyverno still reads them and converts them"),
    ("P0209", "Audit with the default `mutateDigest: true`: Kyverno's CLI and Palisade run the policy, only Kyverno's policy webhook refuses it"),
    ("P0302", "the `NotIn` operator is deprecated for `AnyNotIn`/`AllNotIn` but still evaluated"),
    ("P0504", "a value under a negation anchor is ignored by Kyverno too; the policy works, the value misleads"),
    ("P0613", "a CEL cost estimate over Kubernetes' static limit for worst-case list sizes; Kyverno does not apply that limit to its own kinds, and the runtime budget still bounds each evaluation"),
];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type().unwrap().is_dir() {
            if !hidden {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn corpus_policies_check_clean() {
    let root = Path::new(CORPUS);
    assert!(root.is_dir(), "the shared corpus is missing at {CORPUS}");
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort();

    let mut sources = SourceMap::new();
    let mut policies = 0;
    let mut unexpected = Vec::new();
    let mut errors_by_file: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut warnings: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let id = FileId(u32::try_from(sources.files().count()).unwrap());
        let (docs, syntax_diags) = syntax::parse(id, &text);
        if !docs.iter().any(check::is_policy) {
            continue;
        }
        sources.add(rel.clone(), text.as_str());
        policies += 1;
        let (_, diags) = check::check(&docs);
        for d in syntax_diags.iter().chain(&diags) {
            match d.severity {
                Severity::Error => {
                    errors_by_file.entry(rel.clone()).or_default().push(d.code);
                    let known = KNOWN_INVALID
                        .iter()
                        .any(|(f, codes, _)| *f == rel && codes.contains(&d.code));
                    if !known {
                        let (at, _) = sources.resolve(d.span).unwrap();
                        unexpected.push(format!(
                            "{rel}:{}:{}: {}[{}] {}",
                            at.line,
                            at.column,
                            d.severity.as_str(),
                            d.code,
                            d.message
                        ));
                    }
                }
                Severity::Warning => {
                    // Group by the message with list indices removed (`rules[3]` -> `rules[]`).
                    let shape = strip_indices(&d.message);
                    *warnings.entry((d.code, shape)).or_default() += 1;
                }
                Severity::Note => {}
            }
        }
    }
    println!("checked {policies} policy files");
    println!("warnings by code:");
    for ((code, shape), count) in &warnings {
        println!("  {count:5} {code} {shape}");
    }
    assert!(policies > 600, "only {policies} policy files found");
    let unjustified: Vec<&str> = warnings
        .keys()
        .map(|(code, _)| *code)
        .filter(|code| !JUSTIFIED_WARNINGS.iter().any(|(c, _)| c == code))
        .collect();
    assert!(unjustified.is_empty(), "warning codes without a justification: {unjustified:?}");
    assert!(
        unexpected.is_empty(),
        "unexpected errors:\n{}",
        unexpected.join("\n")
    );
    for (file, codes, why) in KNOWN_INVALID {
        let found = errors_by_file.get(*file).cloned().unwrap_or_default();
        for code in *codes {
            assert!(
                found.contains(code),
                "{file} was expected to give {code} ({why}); it gave {found:?}"
            );
        }
    }
}

fn strip_indices(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_index = false;
    for c in message.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push(c);
            }
            ']' => {
                in_index = false;
                out.push(c);
            }
            c if in_index && c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out
}
