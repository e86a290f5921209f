//! `palisade lsp`: the language server over standard input and output.
//!
//! The server lives in the `palisade-lsp` crate, which knows only the compiler; this module
//! hands it the test runner of `palisade test`, so code lenses can run a nearby
//! kyverno-test.yaml with exactly the engine the CLI uses.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use palisade_lsp::{Config, TestSummary};
use palisade_runtime::cli::runner;

#[derive(clap::Args)]
pub struct Args {
    /// Accepted for editors that pass it; standard input and output are the only transport.
    #[arg(long)]
    stdio: bool,
}

pub fn run(_args: Args) -> ExitCode {
    let config = Config { test_runner: Some(Arc::new(run_tests)) };
    match palisade_lsp::run_stdio(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the language server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_tests(path: &Path) -> TestSummary {
    let report = runner::run_file(path);
    let passed = report.outcomes.iter().filter(|o| o.ok).count();
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| {
            format!(
                "{}/{} on {}: expected {}, got {} ({})",
                o.policy, o.rule, o.resource, o.expected, o.actual, o.reason
            )
        })
        .collect();
    let failed = failures.len() + usize::from(report.error.is_some());
    TestSummary { passed, failed, error: report.error, failures }
}
