//! Table-driven tests of the `patterns` function family; the cases are in `data/functions/patterns.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn patterns() {
    assert!(runner::run("patterns") > 0);
}
