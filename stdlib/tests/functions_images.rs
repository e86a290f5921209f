//! Table-driven tests of the `images` function family; the cases are in `data/functions/images.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn images() {
    assert!(runner::run("images") > 0);
}
