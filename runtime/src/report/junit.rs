//! JUnit XML, the format CI systems (GitLab's test reports, Jenkins, GitHub test-reporter
//! actions) show as a test tab. `palisade apply` writes one test case per rule result and
//! `palisade test` one per expected result; both go through this small model.

use std::fmt::Write as _;

use crate::cli::scan::{Finding, ResourceRef};
use crate::engine::Status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseOutcome {
    Passed,
    /// A failure, with a one-line message and details.
    Failed { message: String, details: String },
    /// The case could not be run (a policy error, a test file that does not load).
    Errored { message: String },
    Skipped { message: String },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub outcome: CaseOutcome,
    /// Text for `<system-out>` (warnings, which JUnit has no status for).
    pub output: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

/// Renders the suites as one `<testsuites>` document.
pub fn render(name: &str, suites: &[Suite]) -> String {
    let count = |f: &dyn Fn(&CaseOutcome) -> bool, s: &Suite| s.cases.iter().filter(|c| f(&c.outcome)).count();
    let failed = |o: &CaseOutcome| matches!(o, CaseOutcome::Failed { .. });
    let errored = |o: &CaseOutcome| matches!(o, CaseOutcome::Errored { .. });
    let skipped = |o: &CaseOutcome| matches!(o, CaseOutcome::Skipped { .. });
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    let total_failed: usize = suites.iter().map(|s| count(&failed, s)).sum();
    let total_errored: usize = suites.iter().map(|s| count(&errored, s)).sum();
    let total_skipped: usize = suites.iter().map(|s| count(&skipped, s)).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{total_failed}\" errors=\"{total_errored}\" skipped=\"{total_skipped}\">",
        esc(name)
    );
    for s in suites {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            esc(&s.name),
            s.cases.len(),
            count(&failed, s),
            count(&errored, s),
            count(&skipped, s)
        );
        for c in &s.cases {
            let _ = write!(out, "    <testcase classname=\"{}\" name=\"{}\"", esc(&c.classname), esc(&c.name));
            if let Some(f) = &c.file {
                let _ = write!(out, " file=\"{}\"", esc(f));
            }
            if let Some(l) = c.line {
                let _ = write!(out, " line=\"{l}\"");
            }
            if c.outcome == CaseOutcome::Passed && c.output.is_none() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            match &c.outcome {
                CaseOutcome::Passed => {}
                CaseOutcome::Failed { message, details } => {
                    let _ = writeln!(out, "      <failure message=\"{}\" type=\"fail\">{}</failure>", esc(message), esc(details));
                }
                CaseOutcome::Errored { message } => {
                    let _ = writeln!(out, "      <error message=\"{}\" type=\"error\"/>", esc(message));
                }
                CaseOutcome::Skipped { message } => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", esc(message));
                }
            }
            if let Some(o) = &c.output {
                let _ = writeln!(out, "      <system-out>{}</system-out>", esc(o));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content. Characters XML 1.0 cannot hold at all
/// (control characters other than tab and newlines) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `palisade apply`'s suites: one per policy, one case per rule result on a resource.
pub fn apply_suites(resources: &[ResourceRef], findings: &[Finding]) -> Vec<Suite> {
    let mut suites: Vec<Suite> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in findings {
        let Some(res) = resources.get(f.resource) else { continue };
        let at = *index.entry(&*f.policy).or_insert_with(|| {
            suites.push(Suite { name: f.policy.to_string(), cases: Vec::new() });
            suites.len() - 1
        });
        let path = res.path();
        let (outcome, output) = match f.status {
            Status::Pass => (CaseOutcome::Passed, None),
            Status::Fail => (CaseOutcome::Failed { message: f.message.clone(), details: format!("{path}: {}", f.message) }, None),
            Status::Warn => (CaseOutcome::Passed, Some(format!("warning: {}", f.message))),
            Status::Error => (CaseOutcome::Errored { message: f.message.clone() }, None),
            Status::Skip => (CaseOutcome::Skipped { message: f.message.clone() }, None),
        };
        if let Some(suite) = suites.get_mut(at) {
            suite.cases.push(Case {
                classname: f.policy.to_string(),
                name: format!("{} {path}", f.rule),
                file: Some(res.file.to_string()),
                line: Some(res.line),
                outcome,
                output,
            });
        }
    }
    suites
}
