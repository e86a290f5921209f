//! Table-driven tests of the `strings` function family; the cases are in `data/functions/strings.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn strings() {
    assert!(runner::run("strings") > 0);
}
