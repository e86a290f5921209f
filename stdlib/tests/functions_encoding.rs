//! Table-driven tests of the `encoding` function family; the cases are in `data/functions/encoding.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn encoding() {
    assert!(runner::run("encoding") > 0);
}
