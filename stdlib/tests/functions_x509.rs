//! `x509_decode` against a real certificate, as table data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "data/functions/runner.rs"]
mod runner;

#[test]
fn x509() {
    assert!(runner::run("x509") > 0);
}
