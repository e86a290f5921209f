//! `palisade test PATH...`: runs `kyverno-test.yaml` files like `kyverno test`.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_runtime::cli::runner::{self, TestReport};
use palisade_runtime::report::junit::{self, Case, CaseOutcome, Suite};
use palisade_stdlib::wildcard;

#[derive(clap::Args)]
pub struct Args {
    /// Files or folders to search for kyverno-test.yaml.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only run results matching `policy=..,rule=..,resource=..` (wildcards allowed).
    #[arg(short = 't', long = "test-case-selector")]
    selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
    /// Print only failing results.
    #[arg(long)]
    fail_only: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
    Junit,
}

pub fn run(args: Args) -> ExitCode {
    let files = runner::discover(&args.paths);
    let mut reports = runner::run_all(&files);
    if let Some(sel) = &args.selector {
        let sel = Selector::parse(sel);
        for r in &mut reports {
            r.outcomes.retain(|o| sel.matches(&o.policy, &o.rule, &o.resource));
        }
    }
    let passed: usize = reports.iter().map(|r| r.outcomes.iter().filter(|o| o.ok && !o.unchecked).count()).sum();
    let skipped: usize = reports.iter().map(|r| r.outcomes.iter().filter(|o| o.unchecked).count()).sum();
    let failed: usize = reports.iter().map(|r| r.outcomes.iter().filter(|o| !o.ok).count() + usize::from(r.error.is_some())).sum();
    match args.output {
        Output::Text => print_text(&reports, args.fail_only),
        Output::Json => print_json(&reports, passed, failed, skipped),
        Output::Junit => print!("{}", junit::render("palisade test", &junit_suites(&reports, args.fail_only))),
    }
    if matches!(args.output, Output::Text) {
        if skipped > 0 {
            println!("{passed} passed, {failed} failed, {skipped} skipped");
        } else {
            println!("{passed} passed, {failed} failed");
        }
    }
    if failed > 0 || files.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn print_text(reports: &[TestReport], fail_only: bool) {
    for r in reports {
        if let Some(e) = &r.error {
            println!("{}: error: {e}", r.file.display());
            continue;
        }
        let bad = r.outcomes.iter().filter(|o| !o.ok).count();
        if fail_only && bad == 0 {
            continue;
        }
        println!("{}: {} passed, {} failed", r.file.display(), r.outcomes.len() - bad, bad);
        for o in &r.outcomes {
            if fail_only && o.ok {
                continue;
            }
            let mark = if o.unchecked { "skip" } else if o.ok { "ok  " } else { "FAIL" };
            println!("  {mark} {}/{} {} {}: expected {}, got {}", o.policy, o.rule, o.kind, o.resource, o.expected, o.actual);
            if (!o.ok || o.unchecked) && !o.reason.is_empty() {
                println!("       {}", o.reason);
            }
        }
    }
}

fn print_json(reports: &[TestReport], passed: usize, failed: usize, skipped: usize) {
    let tests: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "file": r.file.display().to_string(),
                "error": r.error,
                "results": r.outcomes.iter().map(|o| serde_json::json!({
                    "policy": o.policy, "rule": o.rule, "resource": o.resource, "kind": o.kind,
                    "expected": o.expected, "actual": o.actual, "ok": o.ok, "skipped": o.unchecked, "reason": o.reason,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let out = serde_json::json!({"summary": {"passed": passed, "failed": failed, "skipped": skipped}, "tests": tests});
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

/// One suite per test file, one case per expected result; a file that cannot be loaded is one
/// errored case, so CI shows it instead of silently running fewer tests.
fn junit_suites(reports: &[TestReport], fail_only: bool) -> Vec<Suite> {
    reports
        .iter()
        .map(|r| {
            let file = r.file.display().to_string();
            let mut cases = Vec::new();
            if let Some(e) = &r.error {
                cases.push(Case {
                    classname: file.clone(),
                    name: "load test file".into(),
                    file: Some(file.clone()),
                    line: None,
                    outcome: CaseOutcome::Errored { message: e.clone() },
                    output: None,
                });
            }
            for o in &r.outcomes {
                if fail_only && o.ok {
                    continue;
                }
                let outcome = if o.unchecked {
                    CaseOutcome::Skipped { message: o.reason.clone() }
                } else if o.ok {
                    CaseOutcome::Passed
                } else {
                    CaseOutcome::Failed {
                        message: format!("expected {}, got {}", o.expected, o.actual),
                        details: o.reason.clone(),
                    }
                };
                cases.push(Case {
                    classname: file.clone(),
                    name: format!("{}/{} {} {}", o.policy, o.rule, o.kind, o.resource),
                    file: Some(file.clone()),
                    line: None,
                    outcome,
                    output: None,
                });
            }
            Suite { name: file, cases }
        })
        .collect()
}

/// `--test-case-selector policy=..,rule=..,resource=..`.
struct Selector {
    policy: String,
    rule: String,
    resource: String,
}

impl Selector {
    fn parse(s: &str) -> Selector {
        let mut sel = Selector { policy: "*".into(), rule: "*".into(), resource: "*".into() };
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("policy", v)) => sel.policy = v.trim().into(),
                Some(("rule", v)) => sel.rule = v.trim().into(),
                Some(("resource", v)) => sel.resource = v.trim().into(),
                _ => {}
            }
        }
        sel
    }

    fn matches(&self, policy: &str, rule: &str, resource: &str) -> bool {
        wildcard::matches(&self.policy, policy) && wildcard::matches(&self.rule, rule) && wildcard::matches(&self.resource, resource)
    }
}
