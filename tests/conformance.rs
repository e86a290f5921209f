//! Kyverno's own test corpus (`../shared/corpus/kyverno-policies`), run through the same code as
//! `palisade test`, with pass counts per rule category.
//!
//! Categories Palisade covers completely are held to 100%: every miss there must be one of the
//! [`KNOWN_MISSES`], each with the reason it is not a Palisade bug, and every known miss must
//! still miss (so the list cannot go stale). Categories still being built have a floor: the
//! number of expected results that pass today; raise it when a change passes more. Misses are
//! listed by category and reason when `PALISADE_CONFORMANCE_VERBOSE` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_runtime::cli::runner;

/// Passing expected results per category, as of the last raise. Categories not listed have a
/// floor of zero (the corpus has no expected results for DeletingPolicy or
/// ImageValidatingPolicy; `runtime/tests/cel_fixtures.rs` covers them).
const FLOORS: &[(&str, usize)] = &[
    ("validate.pattern", 914),
    ("validate.anyPattern", 206),
    ("validate.deny", 389),
    ("validate.foreach", 222),
    ("validate.cel", 1545),
    ("ValidatingPolicy", 1361),
    // MutatingPolicy and mutate hold every result. Four of them are left unchecked, as
    // Kyverno's CLI leaves them: other-mpol/prepend-image-registry (2), psa-mpol/add-psa-labels
    // and psa/add-psa-labels (1 each) name resources their patched-resource files do not hold,
    // and the CLI drops such rows instead of comparing them (see `unchecked` below).
    ("MutatingPolicy", 79),
    ("mutate", 92),
    ("generate", 7),
    ("validate.podSecurity", 8),
];

/// Categories where every expected result passes, except the known misses below.
const COMPLETE: &[&str] = &[
    "validate.pattern",
    "validate.anyPattern",
    "validate.deny",
    "validate.foreach",
    "validate.podSecurity",
    "validate.cel",
    "ValidatingPolicy",
    "MutatingPolicy",
    "GeneratingPolicy",
    "mutate",
    "generate",
    "unknown",
];

/// Results Kyverno's CLI leaves unchecked (a `patchedResources` file without the resource):
/// (test file, resource). They count as passing, as in Kyverno, but are held to this list so a
/// change cannot quietly turn checked results into unchecked ones.
const UNCHECKED: &[(&str, &str)] = &[
    ("other-mpol/prepend-image-registry/.kyverno-test/kyverno-test.yaml", "myfailedpod"),
    ("other-mpol/prepend-image-registry/.kyverno-test/kyverno-test.yaml", "withoutinitcontainer"),
    ("psa-mpol/add-psa-labels/.kyverno-test/kyverno-test.yaml", "test-fail"),
    ("psa/add-psa-labels/.kyverno-test/kyverno-test.yaml", "test-fail"),
];

/// Expected results Palisade does not reproduce, with the reason: (test file under the corpus,
/// rule, resource, reason). Kyverno's CLI fails these rows too.
const KNOWN_MISSES: &[(&str, &str, &str, &str)] = &[
    // The test names the rule `check-ambient-mode-enabled`; the policy calls it
    // `check-amblient-mode-enabled` (sic). Kyverno's CLI reports these rows as "Not found" too.
    ("istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "bad-istio-amb01", "rule name typo in the test"),
    ("istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "bad-istio-amb02", "rule name typo in the test"),
    ("istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "bad-istio-amb03", "rule name typo in the test"),
    ("istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "good-istio-amb01", "rule name typo in the test"),
    ("istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "good-istio-amb02", "rule name typo in the test"),
    // The same typo in the mutate policy's test (the policy's rule is `add-ambient-mode-enabled`).
    ("istio/add-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "istio-test-none-ns", "rule name not in the policy"),
    ("istio/add-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "istio-test-dis-ns", "rule name not in the policy"),
    ("istio/add-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "istio-test-en-ns", "rule name not in the policy"),
    ("istio/add-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml", "check-ambient-mode-enabled", "istio-test-alt-ns", "rule name not in the policy"),
];

#[test]
fn kyverno_policies_corpus() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/kyverno-policies"));
    assert!(root.is_dir(), "the corpus is missing at {}", root.display());
    let files = runner::discover(std::slice::from_ref(&root));
    assert_eq!(files.len(), 492, "the corpus has 492 test files");
    let reports = runner::run_all(&files);
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut reasons: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut file_errors = Vec::new();
    let mut unexplained = Vec::new();
    let mut explained = std::collections::BTreeSet::new();
    let mut unchecked = Vec::new();
    for r in &reports {
        let rel = r.file.strip_prefix(&root).unwrap_or(&r.file).to_string_lossy().replace('\\', "/");
        if let Some(e) = &r.error {
            file_errors.push(e.clone());
        }
        for o in &r.outcomes {
            if o.unchecked {
                unchecked.push((rel.clone(), o.resource.clone()));
            }
            let slot = per.entry(o.category.clone()).or_default();
            slot.1 += 1;
            if o.ok {
                slot.0 += 1;
            } else {
                let known = KNOWN_MISSES.iter().position(|(f, rule, res, _)| *f == rel && *rule == o.rule && *res == o.resource);
                match known {
                    Some(i) => {
                        explained.insert(i);
                    }
                    None if COMPLETE.contains(&o.category.as_str()) => {
                        unexplained.push(format!("{rel}: {} {} {} expected {}, got {}: {}", o.category, o.rule, o.resource, o.expected, o.actual, o.reason));
                    }
                    None => {}
                }
                let reason: String = o.reason.chars().take(90).collect();
                *reasons.entry((o.category.clone(), reason)).or_default() += 1;
            }
        }
    }
    let total: usize = per.values().map(|v| v.1).sum();
    let passed: usize = per.values().map(|v| v.0).sum();
    println!("conformance: kyverno-policies corpus, {} test files, {total} expected results", files.len());
    for (cat, (ok, all)) in &per {
        println!("  {cat:<24} {ok:>5} / {all:<5}");
    }
    if std::env::var_os("PALISADE_CONFORMANCE_VERBOSE").is_some() {
        for ((cat, reason), n) in &reasons {
            println!("  miss {cat}: {n} x {reason}");
        }
    }
    println!("conformance: {passed} passed, {} failed", total - passed);
    assert_eq!(total, 4843, "the corpus holds 4,843 expected results");
    assert!(file_errors.is_empty(), "test files failed to load:\n{}", file_errors.join("\n"));
    assert!(unexplained.is_empty(), "misses in categories Palisade covers completely:\n{}", unexplained.join("\n"));
    let stale: Vec<_> = KNOWN_MISSES.iter().enumerate().filter(|(i, _)| !explained.contains(i)).map(|(_, m)| format!("{m:?}")).collect();
    assert!(stale.is_empty(), "known misses that now pass; remove them from KNOWN_MISSES:\n{}", stale.join("\n"));
    unchecked.sort();
    let mut want: Vec<(String, String)> = UNCHECKED.iter().map(|(f, r)| ((*f).to_owned(), (*r).to_owned())).collect();
    want.sort();
    assert_eq!(unchecked, want, "results left unchecked (a patched-resource file without the resource)");
    for (cat, floor) in FLOORS {
        let ok = per.get(*cat).map_or(0, |v| v.0);
        assert!(ok >= *floor, "{cat}: {ok} results pass, below the recorded {floor}");
    }
}
