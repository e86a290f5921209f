//! Table-driven tests of the `collections` function family; the cases are in `data/functions/collections.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn collections() {
    assert!(runner::run("collections") > 0);
}
