//! Wildcard matching cases from `data/primitives/wildcard.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "data/primitives/lines.rs"]
mod lines;

use palisade_stdlib::wildcard::{Wildcard, has_wildcard, matches};

#[test]
fn wildcard_table() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("primitives/wildcard.txt") {
        let (pattern, text) = (lines::text(&case, 0), lines::text(&case, 1));
        let expected = case[2].as_bool().unwrap();
        let compiled = Wildcard::new(pattern);
        if matches(pattern, text) != expected || compiled.matches(text) != expected {
            failures.push(format!(
                "line {line}: {pattern:?} on {text:?} should be {expected}"
            ));
        }
        assert_eq!(compiled.is_literal(), !has_wildcard(pattern), "line {line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_patterns_take_bounded_time() {
    let pattern = "*a".repeat(2000) + "b";
    let text = "a".repeat(20_000);
    let started = std::time::Instant::now();
    assert!(!matches(&pattern, &text));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
