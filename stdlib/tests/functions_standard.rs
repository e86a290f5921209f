//! Table-driven tests of the `standard` function family; the cases are in `data/functions/standard.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn standard() {
    assert!(runner::run("standard") > 0);
}
