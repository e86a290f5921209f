//! Two engines, one answer: the Cranelift matchers against the reference interpreter.
//!
//! Every pattern of every `kyverno.io` policy in the shared corpus runs against every resource
//! of its test folder in both engines, and random patterns (anchors, operators, nested lists)
//! run against random documents. Patterns are also compiled in batches (the whole corpus as one,
//! and random patterns used several times), so that code shared between patterns is checked
//! too. Any divergence fails. `PALISADE_JIT_CASES` sets the number of
//! random cases (default 5,000; the closing note quotes a run with 100,000 and more).

mod corpus;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::ir::policy::{Check, PatternItem, PolicyIr, RuleBody};
use palisade_runtime::cli::runner;
use palisade_runtime::doc::{Doc, KeyTable};
use palisade_runtime::interp::pattern::{DocNode, Mismatch, match_pattern, match_tree, match_tree_worded};
use palisade_runtime::jit::{self, Verdict};

fn reference(resource: &Value, pattern: &Pattern) -> Verdict {
    match match_pattern(resource, pattern) {
        Ok(()) => Verdict::Pass,
        Err(Mismatch::Skip { .. }) => Verdict::Skip,
        Err(Mismatch::Fail { .. } | Mismatch::Error { .. }) => Verdict::NoMatch,
    }
}

/// Compiles a pattern; `Ok(None)` when the JIT leaves it to the interpreter.
fn compile(pattern: &Pattern) -> Result<Option<(jit::CompiledPattern, KeyTable)>, String> {
    let mut keys = KeyTable::default();
    match jit::compile_one(pattern, &mut keys) {
        Ok(c) => Ok(Some((c, keys))),
        Err(jit::Unsupported::Codegen(e)) => Err(format!("codegen failed: {e}")),
        Err(_) => Ok(None),
    }
}

/// The interpreter's pattern code walking the parsed document must give exactly what it gives
/// on the `Value`: status, path and message.
fn agree_walk(pattern: &Pattern, resource: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(resource).map_err(|e| e.to_string())?;
    let keys = KeyTable::default();
    let doc = Doc::parse(&bytes, &keys).map_err(|e| e.to_string())?;
    let walked = match_tree_worded(DocNode { doc: &doc, id: doc.root() }, pattern);
    let reference = match_pattern(resource, pattern);
    if walked != reference {
        return Err(format!("tape walk {walked:?}, interpreter {reference:?}"));
    }
    // The walk for a rule's outcome leaves a failure's words out and nothing else.
    let unworded = |m: Result<(), Mismatch>| match m {
        Err(Mismatch::Fail { path, .. }) => Err(Mismatch::Fail { path, message: String::new() }),
        other => other,
    };
    let outcome = match_tree(DocNode { doc: &doc, id: doc.root() }, pattern);
    if outcome != unworded(reference.clone()) || match_tree(resource, pattern) != outcome {
        return Err(format!("tape walk for the outcome {outcome:?}, interpreter {reference:?}"));
    }
    Ok(())
}

/// Compiles patterns as one batch, as a policy set does, so that they share the code of the
/// sub-patterns they have in common; `None` for a pattern the JIT leaves to the interpreter.
fn compile_batch(patterns: &[&Pattern]) -> Result<(Vec<Option<jit::CompiledPattern>>, KeyTable), String> {
    let mut keys = KeyTable::default();
    let mut jit = jit::Jit::new()?;
    let tickets: Vec<Option<usize>> = patterns.iter().map(|p| jit.add(p, &mut keys).ok()).collect();
    let finished = jit.finish_all()?;
    if let Some((ticket, e)) = finished.failed.first() {
        return Err(format!("codegen failed for pattern {ticket}: {e}"));
    }
    let mut compiled: Vec<Option<jit::CompiledPattern>> = finished.patterns.into_iter().map(Some).collect();
    Ok((tickets.into_iter().map(|t| t.and_then(|t| compiled.get_mut(t).and_then(Option::take))).collect(), keys))
}

fn agree_compiled(compiled: &jit::CompiledPattern, keys: &KeyTable, pattern: &Pattern, resource: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(resource).map_err(|e| e.to_string())?;
    let doc = Doc::parse(&bytes, keys).map_err(|e| e.to_string())?;
    let native = compiled.run(&doc, doc.root());
    let interp = reference(resource, pattern);
    if native != interp {
        return Err(format!("jit {native:?}, interpreter {interp:?}"));
    }
    Ok(())
}

#[test]
fn corpus_patterns_agree() {
    let mut dirs = Vec::new();
    corpus::test_folders(&corpus::root(), &mut dirs);
    // Test folders sit next to or under their policy; take the folder and its parent.
    let (mut cases, mut compiled, mut patterns) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for dir in &dirs {
        let mut docs = Vec::new();
        corpus::documents(dir, &mut docs);
        if dir.file_name().is_some_and(|n| n == ".kyverno-test") && let Some(parent) = dir.parent() {
            let Ok(entries) = std::fs::read_dir(parent) else { continue };
            for e in entries.filter_map(Result::ok) {
                if e.path().is_file() && let Ok(d) = runner::load_documents(&e.path()) {
                    docs.extend(d);
                }
            }
        }
        let is_policy = |d: &Value| {
            d.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("kyverno.io/"))
                && d.get("kind").and_then(Value::as_str).is_some_and(|k| k == "ClusterPolicy" || k == "Policy")
        };
        let mut pats = Vec::new();
        for d in docs.iter().filter(|d| is_policy(d)) {
            let Ok(ir) = PolicyIr::lower(d) else { continue };
            for rule in ir.rules {
                if let RuleBody::Validate(v) = rule.body {
                    match v.check {
                        Check::Pattern(p) => pats.push(p),
                        Check::AnyPattern(items) => pats.extend(items.iter().filter_map(|i| match i {
                            PatternItem::Static(p) => Some(p.clone()),
                            PatternItem::Dynamic(_) => None,
                        })),
                        _ => {}
                    }
                }
            }
        }
        let resources: Vec<&Value> = docs.iter().filter(|d| !is_policy(d) && d.get("kind").is_some()).collect();
        patterns += pats.len();
        for p in &pats {
            let native = match compile(p) {
                Ok(n) => n,
                Err(e) => {
                    failures.push(format!("{}: {e}", dir.display()));
                    continue;
                }
            };
            for r in &resources {
                cases += 1;
                let Some((c, keys)) = &native else { continue };
                compiled += 1;
                if let Err(e) = agree_compiled(c, keys, p, r) {
                    failures.push(format!("{}: {e}", dir.display()));
                }
            }
        }
    }
    println!("corpus: {patterns} patterns, {cases} cases, {compiled} run natively, {} divergences", failures.len());
    assert!(cases > 1000, "the corpus should give well over a thousand cases, got {cases}");
    assert!(compiled * 10 > cases * 9, "most corpus cases should compile: {compiled} of {cases}");
    assert!(failures.is_empty(), "divergences:\n{}", failures.join("\n"));
}

/// Every corpus pattern compiled into one batch (the shape of a large policy set, where autogen
/// and repeated container patterns share code), each run against the resources of its folder.
#[test]
fn corpus_patterns_agree_in_one_batch() {
    let mut dirs = Vec::new();
    corpus::test_folders(&corpus::root(), &mut dirs);
    let mut all: Vec<(Pattern, usize)> = Vec::new();
    let mut resources: Vec<Vec<Value>> = Vec::new();
    for dir in &dirs {
        let mut docs = Vec::new();
        corpus::documents(dir, &mut docs);
        // A hidden test folder tests the policy files beside it.
        if let Some(parent) = corpus::tested_folder(dir) {
            let Ok(entries) = std::fs::read_dir(parent) else { continue };
            for e in entries.filter_map(Result::ok).filter(|e| e.path().is_file()) {
                if let Ok(d) = runner::load_documents(&e.path()) {
                    docs.extend(d);
                }
            }
        }
        let is_policy = |d: &Value| {
            d.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("kyverno.io/"))
                && d.get("kind").and_then(Value::as_str).is_some_and(|k| k == "ClusterPolicy" || k == "Policy")
        };
        for d in docs.iter().filter(|d| is_policy(d)) {
            let Ok(ir) = PolicyIr::lower(d) else { continue };
            for rule in ir.rules {
                if let RuleBody::Validate(v) = rule.body {
                    match v.check {
                        Check::Pattern(p) => all.push((p, resources.len())),
                        Check::AnyPattern(items) => all.extend(items.iter().filter_map(|i| match i {
                            PatternItem::Static(p) => Some((p.clone(), resources.len())),
                            PatternItem::Dynamic(_) => None,
                        })),
                        _ => {}
                    }
                }
            }
        }
        resources.push(docs.into_iter().filter(|d| !is_policy(d) && d.get("kind").is_some()).collect());
    }
    let patterns: Vec<&Pattern> = all.iter().map(|(p, _)| p).collect();
    let (compiled, keys) = compile_batch(&patterns).unwrap_or_else(|e| panic!("{e}"));
    let (mut cases, mut failures) = (0usize, Vec::new());
    for ((pattern, folder), native) in all.iter().zip(&compiled) {
        let Some(native) = native else { continue };
        for r in resources.get(*folder).into_iter().flatten() {
            cases += 1;
            if let Err(e) = agree_compiled(native, &keys, pattern, r) {
                failures.push(e);
            }
        }
    }
    println!("corpus, one batch: {} patterns, {cases} native cases, {} divergences", patterns.len(), failures.len());
    assert!(cases > 1000, "the corpus should give well over a thousand native cases, got {cases}");
    assert!(failures.is_empty(), "divergences:\n{}", failures.join("\n"));
}

const KEYS: [&str; 4] = ["a", "b", "c", "metadata"];
const STRINGS: [&str; 22] = [
    "*", "?*", "a*", "x", "", "?", ">1", "<=2Gi", "!a", "1-5", "2!-4", "a | b", "10s", ">5m", "<1.5", "true", "0", "!*",
    "1Gi", "!= x", ">= 3", "<0",
];

fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..8).prop_map(|n| json!(n)),
        prop_oneof![Just(0.0f64), Just(1.5), Just(-2.0), Just(3.0)].prop_map(|f| json!(f)),
        prop::sample::select(&STRINGS[..]).prop_map(|s| json!(s)),
        prop::sample::select(&["x", "ab", "1Gi", "500Mi", "5m", "1h", "3", "", "conditional anchor mismatch"][..])
            .prop_map(|s| json!(s)),
    ]
}

fn pattern_key() -> impl Strategy<Value = String> {
    (prop::sample::select(&KEYS[..]), 0..9usize).prop_map(|(k, form)| match form {
        0 => format!("({k})"),
        1 => format!("^({k})"),
        2 => format!("=({k})"),
        3 => format!("X({k})"),
        4 => format!("<({k})"),
        5 => format!("+({k})"),
        _ => k.to_owned(),
    })
}

fn pattern_value() -> impl Strategy<Value = Value> {
    scalar_value().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(pattern_key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn doc_value() -> impl Strategy<Value = Value> {
    scalar_value().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(&KEYS[..]).prop_map(str::to_owned), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Each generated pattern is compiled once and run against a batch of generated documents, so
/// the count of cases is patterns times documents per pattern.
const DOCS_PER_PATTERN: usize = 10;

#[test]
fn random_patterns_agree() {
    let cases: u32 = std::env::var("PALISADE_JIT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let patterns = cases.div_ceil(DOCS_PER_PATTERN as u32);
    let mut runner = TestRunner::new(Config { cases: patterns, failure_persistence: None, ..Config::default() });
    let native = std::cell::Cell::new(0u32);
    let run = std::cell::Cell::new(0u32);
    let strategy = (pattern_value(), prop::collection::vec(doc_value(), DOCS_PER_PATTERN));
    let outcome = runner.run(&strategy, |(pattern, resources)| {
        let Ok(lowered) = Pattern::lower(&pattern) else { return Ok(()) };
        let compiled = compile(&lowered).map_err(TestCaseError::fail)?;
        for resource in &resources {
            run.set(run.get() + 1);
            agree_walk(&lowered, resource).map_err(|e| TestCaseError::fail(format!("{e}\npattern: {pattern}\nresource: {resource}")))?;
            let Some((c, keys)) = &compiled else { continue };
            native.set(native.get() + 1);
            agree_compiled(c, keys, &lowered, resource)
                .map_err(|e| TestCaseError::fail(format!("{e}\npattern: {pattern}\nresource: {resource}")))?;
        }
        Ok(())
    });
    println!("random: {} cases (each also walked on the tape), {} run natively, 0 divergences", run.get(), native.get());
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(native.get() * 2 > run.get(), "most random patterns should compile");
}

/// Random patterns used several times in one pattern and across a batch, so that their code is
/// shared (one function, called from each use), against documents that nest the generated
/// documents the same way.
#[test]
fn random_shared_patterns_agree() {
    let cases: u32 = std::env::var("PALISADE_JIT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let patterns = cases.div_ceil(3 * DOCS_PER_PATTERN as u32);
    let mut runner = TestRunner::new(Config { cases: patterns, failure_persistence: None, ..Config::default() });
    let (run, native) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let strategy = (pattern_value(), prop::collection::vec(doc_value(), DOCS_PER_PATTERN));
    let outcome = runner.run(&strategy, |(pattern, resources)| {
        let wrapped = json!({"a": pattern, "=(b)": [pattern], "c": {"d": pattern}});
        let (Ok(p), Ok(w)) = (Pattern::lower(&pattern), Pattern::lower(&wrapped)) else { return Ok(()) };
        let (compiled, keys) = compile_batch(&[&p, &w]).map_err(TestCaseError::fail)?;
        let [cp, cw] = compiled.as_slice() else { return Err(TestCaseError::fail("two patterns should give two results")) };
        for r in &resources {
            let nested = json!({"a": r, "b": [r, r], "c": {"d": r}});
            for (c, pat, text, doc) in [(cp, &p, &pattern, r), (cw, &w, &wrapped, r), (cw, &w, &wrapped, &nested)] {
                run.set(run.get() + 1);
                let Some(c) = c else { continue };
                native.set(native.get() + 1);
                agree_compiled(c, &keys, pat, doc).map_err(|e| TestCaseError::fail(format!("{e}\npattern: {text}\nresource: {doc}")))?;
            }
        }
        Ok(())
    });
    println!("random, shared: {} cases, {} run natively, 0 divergences", run.get(), native.get());
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(native.get() * 2 > run.get(), "most random patterns should compile");
}
