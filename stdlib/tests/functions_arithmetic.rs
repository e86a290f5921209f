//! Table-driven tests of the `arithmetic` function family; the cases are in
//! `data/functions/arithmetic/cases.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn arithmetic() {
    assert!(runner::run("arithmetic/cases") > 0);
}
