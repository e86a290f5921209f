//! `palisade apply POLICY_PATH... --resource PATH...`: like `kyverno apply`.
//!
//! Policies are compiled once; resources come from files, folders, multi-document streams,
//! `List` dumps or standard input (`-`), and are read, evaluated in parallel and dropped in
//! bounded batches (see `palisade_runtime::cli::scan`), so a large dump does not have to fit in
//! memory; only what the output lists is kept. The output is Kyverno's
//! text (per-failure messages and the `pass: a, fail: b, ...` summary) or, with
//! `--output-format`, a table, JSON, YAML, JUnit or SARIF; `--policy-report` writes policy
//! reports instead. Bad input (a missing file, a malformed document) is reported with its file
//! and line and the rest of the run goes on; the exit code is then 1.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use palisade_runtime::cli::resources::{self, LoadError};
use palisade_runtime::cli::runner::{self, PolicySet, Values};
use palisade_runtime::cli::scan::{self, Counts, Finding, ResourceRef, ScanConfig, ScanEvents};
use palisade_runtime::engine::{Status, UserInfo};
use palisade_runtime::images::{self, Verifier, VerifierConfig};
use palisade_runtime::report::{self, Timestamp, junit, policy_report, sarif};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders.
    #[arg(required = true)]
    policies: Vec<PathBuf>,
    /// Resource files or folders; `-` reads a YAML stream from standard input.
    #[arg(short = 'r', long = "resource", visible_alias = "resources", num_args = 1.., value_delimiter = ',')]
    resources: Vec<PathBuf>,
    /// A values file (`kind: Values`).
    #[arg(short = 'f', long = "values-file")]
    values: Option<PathBuf>,
    /// Variables for every policy and resource, as `key=value` (repeatable or comma-separated).
    #[arg(short = 's', long = "set", value_delimiter = ',')]
    set: Vec<String>,
    /// A user info file (`kind: UserInfo`).
    #[arg(short = 'u', long = "userinfo")]
    userinfo: Option<PathBuf>,
    /// Write policy reports instead of the result listing.
    #[arg(short = 'p', long = "policy-report")]
    policy_report: bool,
    /// The report API for `--policy-report`.
    #[arg(long = "report-format", value_enum, default_value = "policy-report")]
    report_format: ReportFormat,
    /// How to print results (`--policy-report` takes `yaml` or `json`).
    #[arg(long = "output-format", value_enum)]
    output_format: Option<OutputFormat>,
    /// Show results as a table (the same as `--output-format table`).
    #[arg(short = 't', long = "table")]
    table: bool,
    /// List passing and skipped results too (table, json and yaml).
    #[arg(long = "detailed-results")]
    detailed_results: bool,
    /// Failures of Audit rules count as warnings.
    #[arg(long)]
    audit_warn: bool,
    /// The exit code when there are warnings but no failures or errors.
    #[arg(long = "warn-exit-code", default_value_t = 0)]
    warn_exit_code: u8,
    /// Exit with the warn exit code when no resource passed any rule.
    #[arg(long = "warn-no-pass")]
    warn_no_pass: bool,
    /// Never show a progress bar.
    #[arg(long = "no-progress")]
    no_progress: bool,
    /// Write the resources that mutate rules or verifyImages' `mutateDigest` changed to this
    /// file, as a YAML stream.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Reach image registries over plain HTTP where they do not speak TLS and accept any
    /// certificate, for every verifyImages entry (Kyverno's `allowInsecureRegistry`).
    #[arg(long = "allow-insecure-registry")]
    allow_insecure_registry: bool,
    /// A Docker config file (`config.json`) with registry credentials for image verification.
    #[arg(long = "registry-config")]
    registry_config: Option<PathBuf>,
    /// Deadline for the registry work of one image, in milliseconds.
    #[arg(long = "registry-timeout-ms", default_value_t = 10_000)]
    registry_timeout_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Table,
    Json,
    Yaml,
    Junit,
    Sarif,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport / ClusterPolicyReport.
    PolicyReport,
    /// `openreports.io/v1alpha1` Report / ClusterReport.
    Openreports,
}

/// After this many resources a terminal gets a progress bar.
const PROGRESS_THRESHOLD: usize = 2_000;

pub fn run(args: Args) -> ExitCode {
    let format = match (args.output_format, args.table) {
        (Some(f), _) => f,
        (None, true) => OutputFormat::Table,
        (None, false) if args.policy_report => OutputFormat::Yaml,
        (None, false) => OutputFormat::Text,
    };
    if args.policy_report && !matches!(format, OutputFormat::Yaml | OutputFormat::Json) {
        eprintln!("error: --policy-report writes yaml or json; drop --output-format or pick one of those");
        return ExitCode::from(2);
    }
    if args.values.is_some() && !args.set.is_empty() {
        eprintln!("error: pass the values either using --set or --values-file, not both");
        return ExitCode::from(2);
    }
    if args.resources.is_empty() {
        eprintln!("error: resource file(s) required (--resource PATH, or - for standard input)");
        return ExitCode::from(2);
    }
    if args.policies.iter().any(|p| p.as_os_str() == "-") && args.resources.iter().any(|p| p.as_os_str() == "-") {
        eprintln!("error: standard input can hold either policies or resources, not both");
        return ExitCode::from(2);
    }
    // Machine-readable formats keep stdout for the document alone.
    let text = matches!(format, OutputFormat::Text | OutputFormat::Table) && !args.policy_report;
    let mut load_errors = 0usize;
    let mut report_error = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        load_errors += 1;
    };

    let set = load_policies(&args.policies, &mut report_error);
    let mut values = match &args.values {
        Some(v) => match Values::load(v) {
            Ok(v) => v,
            Err(e) => {
                // The scan still runs: policies that do not need these values give their verdicts.
                report_error(&e);
                Values::default()
            }
        },
        None => Values::default(),
    };
    values.set_globals(args.set.iter().filter_map(|kv| match kv.split_once('=') {
        Some((k, v)) => Some((k.trim().to_owned(), Value::String(v.trim().to_owned()))),
        None => {
            report_error(&format!("--set {kv}: expected key=value"));
            None
        }
    }));
    let user = match &args.userinfo {
        Some(u) => runner::load_userinfo(u).unwrap_or_else(|e| {
            report_error(&e);
            UserInfo::default()
        }),
        None => UserInfo::default(),
    };

    // Passing results are only counted unless the output lists them.
    let keep_passing = args.policy_report || args.detailed_results || format == OutputFormat::Junit;
    // verifyImages rules need registry access; a verifier is only started when a policy has one.
    let verifier = if set.policies.iter().any(images::has_image_rules) { image_verifier(&args, &mut report_error) } else { None };
    let cfg = ScanConfig {
        values: &values,
        user: &user,
        audit_warn: args.audit_warn,
        keep_passing,
        images: verifier.as_ref(),
        keep_mutated: args.output.is_some(),
    };
    let mut events = Events::new(&args.resources, args.no_progress);
    let stdin = Box::new(std::io::BufReader::new(std::io::stdin()));
    let scan = scan::scan_paths(&set, args.resources.clone(), stdin, &cfg, &mut events);
    events.finish();
    if let Some(path) = &args.output {
        let docs: Vec<Value> = scan.mutated.into_iter().map(|(_, v)| v).collect();
        let written = std::fs::File::create(path).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            write_documents(&mut w, &docs, false)?;
            w.flush()
        });
        if let Err(e) = written {
            report_error(&format!("{}: {e}", path.display()));
        }
    }
    load_errors += events.errors;
    let (resources, findings, counts) = (scan.resources, scan.findings, scan.counts);

    if text {
        // Kyverno counts a CEL policy as one rule.
        let rules: usize = set.policies.iter().map(|p| p.rules.len()).sum::<usize>() + set.cel_policies.len() + set.deleting_policies.len();
        println!("\nApplying {rules} policy rule(s) to {} resource(s)...", scan.scanned);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if args.policy_report {
        let fmt = match args.report_format {
            ReportFormat::PolicyReport => policy_report::ReportFormat::PolicyReport,
            ReportFormat::Openreports => policy_report::ReportFormat::OpenReports,
        };
        let reports = policy_report::reports(fmt, &resources, &findings, &set, Timestamp::now());
        write_documents(&mut out, &reports, format == OutputFormat::Json)
    } else {
        match format {
            OutputFormat::Text => write_text(&mut out, &resources, &findings, &counts, args.audit_warn),
            OutputFormat::Table => write_table(&mut out, &resources, &findings, &counts, args.detailed_results),
            OutputFormat::Json | OutputFormat::Yaml => {
                let doc = report::results_document(&resources, &findings, &counts, &set, args.detailed_results);
                write_documents(&mut out, &[doc], format == OutputFormat::Json)
            }
            OutputFormat::Junit => out.write_all(junit::render("palisade apply", &junit::apply_suites(&resources, &findings)).as_bytes()),
            OutputFormat::Sarif => {
                let log = sarif::sarif(&resources, &findings, &set, env!("CARGO_PKG_VERSION"));
                write_documents(&mut out, &[log], true)
            }
        }
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("error: writing the output: {e}");
        return ExitCode::FAILURE;
    }
    drop(out);
    if !text {
        // Scripts reading JSON still see the counts on stderr.
        eprintln!("{}", counts.summary_line());
    }
    exit_code(&counts, load_errors, args.warn_exit_code, args.warn_no_pass, text)
}

/// Kyverno's exit rules: 1 on any failure or error; otherwise the warn exit code when there are
/// warnings (or no passes, with `--warn-no-pass`); else 0. Input that could not be loaded is an
/// error too.
fn exit_code(counts: &Counts, load_errors: usize, warn_exit_code: u8, warn_no_pass: bool, text: bool) -> ExitCode {
    let say = |m: &str| if text { println!("{m}") } else { eprintln!("{m}") };
    if counts.fail > 0 || counts.error > 0 || load_errors > 0 {
        return ExitCode::FAILURE;
    }
    if counts.warn > 0 && warn_exit_code != 0 {
        say(&format!("exit as warnExitCode is {warn_exit_code}"));
        return ExitCode::from(warn_exit_code);
    }
    if counts.pass == 0 && warn_no_pass {
        say("exit as no objects satisfied policy");
        return ExitCode::from(warn_exit_code);
    }
    ExitCode::SUCCESS
}

/// The image verifier for verifyImages rules, from the registry flags. A bad credentials file
/// is reported and verification goes on anonymously.
fn image_verifier(args: &Args, report_error: &mut dyn FnMut(&dyn std::fmt::Display)) -> Option<Verifier> {
    let mut config = VerifierConfig {
        allow_insecure: args.allow_insecure_registry,
        timeout: std::time::Duration::from_millis(args.registry_timeout_ms),
        ..VerifierConfig::default()
    };
    if let Some(path) = &args.registry_config {
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| images::docker_credentials(&t)) {
            Ok(c) => config.credentials = c,
            Err(e) => report_error(&format!("{}: {e}", path.display())),
        }
    }
    match Verifier::new(config) {
        Ok(v) => Some(v),
        Err(e) => {
            report_error(&e);
            None
        }
    }
}

fn load_policies(paths: &[PathBuf], report_error: &mut dyn FnMut(&dyn std::fmt::Display)) -> PolicySet {
    let mut set = PolicySet::default();
    for path in paths {
        let files = if path.as_os_str() == "-" {
            Ok(Vec::new())
        } else {
            resources::files_under(path)
        };
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                report_error(&e);
                continue;
            }
        };
        let mut docs: Vec<(String, Value)> = Vec::new();
        if path.as_os_str() == "-" {
            let mut s = String::new();
            match std::io::stdin().read_to_string(&mut s) {
                Ok(_) => match palisade_compiler::syntax::parse_json_documents(&s) {
                    Ok(d) => docs.extend(d.into_iter().map(|d| ("stdin".to_owned(), d))),
                    Err(e) => report_error(&format!("stdin: {e}")),
                },
                Err(e) => report_error(&format!("stdin: {e}")),
            }
        }
        for file in files {
            match runner::load_documents(&file) {
                Ok(d) => docs.extend(d.into_iter().map(|d| (file.display().to_string(), d))),
                Err(e) => report_error(&e),
            }
        }
        for (file, doc) in docs {
            if let Err(e) = set.add_document(&doc) {
                report_error(&format!("{file}: {e}"));
            }
        }
    }
    set
}

/// Load errors as they come, and a progress bar on a terminal for long runs: it measures the
/// bytes read against the input files' sizes, or counts resources when standard input has no
/// known length. It appears only once the scan has taken more than a few resources, so short
/// runs and pipes never see it.
struct Events {
    errors: usize,
    bar: Option<indicatif::ProgressBar>,
    shown: bool,
    scanned: usize,
}

impl Events {
    fn new(paths: &[PathBuf], disabled: bool) -> Events {
        let bar = (!disabled && std::io::stderr().is_terminal()).then(|| {
            let stdin = paths.iter().any(|p| p.as_os_str() == "-");
            let total: u64 = paths
                .iter()
                .filter(|p| p.as_os_str() != "-")
                .filter_map(|p| resources::files_under(p).ok())
                .flatten()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            let (bar, template) = if stdin {
                (indicatif::ProgressBar::new_spinner(), "{spinner} {msg} [{elapsed_precise}]")
            } else {
                (indicatif::ProgressBar::new(total), "{spinner} {msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {eta}")
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            bar
        });
        Events { errors: 0, bar, shown: false, scanned: 0 }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl ScanEvents for Events {
    fn load_error(&mut self, error: &LoadError) {
        self.errors += 1;
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("error: {error}")),
            None => eprintln!("error: {error}"),
        }
    }

    fn progress(&mut self, bytes: u64, resources: usize) {
        self.scanned += resources;
        let Some(bar) = &self.bar else { return };
        if !self.shown && self.scanned >= PROGRESS_THRESHOLD {
            self.shown = true;
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.inc(bytes);
        bar.set_message(format!("{} resources", self.scanned));
    }
}

/// Writes the documents straight into `out` (no copy of them and no intermediate string: a
/// policy report of a large scan holds a million results): one JSON document, or a `List` of
/// several, or a YAML stream.
fn write_documents(out: &mut dyn Write, docs: &[Value], json: bool) -> std::io::Result<()> {
    if json {
        match docs {
            [one] => serde_json::to_writer_pretty(&mut *out, one),
            many => serde_json::to_writer_pretty(&mut *out, &JsonList { api_version: "v1", kind: "List", items: many }),
        }
        .map_err(std::io::Error::other)?;
        return writeln!(out);
    }
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            writeln!(out, "---")?;
        }
        serde_yaml_ng::to_writer(&mut *out, d).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// A `v1` `List` of documents, serialized without copying them.
#[derive(serde::Serialize)]
struct JsonList<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Value],
}

/// Kyverno's listing: for every resource and policy with failures, the failed rules and their
/// messages; then the summary.
fn write_text(out: &mut dyn Write, resources: &[ResourceRef], findings: &[Finding], counts: &Counts, audit_warn: bool) -> std::io::Result<()> {
    let mut i = 0;
    while i < findings.len() {
        let Some(first) = findings.get(i) else { break };
        let group_end = findings.get(i..).unwrap_or_default().iter().position(|f| f.resource != first.resource || f.policy != first.policy).map_or(findings.len(), |n| i + n);
        let group = findings.get(i..group_end).unwrap_or_default();
        i = group_end;
        let failed: Vec<&Finding> = group.iter().filter(|f| matches!(f.status, Status::Fail | Status::Error) || (audit_warn && f.status == Status::Warn)).collect();
        if failed.is_empty() {
            continue;
        }
        let Some(res) = resources.get(first.resource) else { continue };
        let as_warning = audit_warn && failed.iter().all(|f| f.status == Status::Warn);
        let how = if as_warning { "failed as audit warning" } else { "failed" };
        writeln!(out, "\npolicy {} -> resource {} ({}:{}) {how}:", first.policy, res.path(), res.file, res.line)?;
        for (n, f) in failed.iter().enumerate() {
            writeln!(out, "{} - {} {}", n + 1, f.rule, f.message)?;
        }
    }
    writeln!(out, "\n{}", counts.summary_line())
}

/// One row per result that is not a pass or a skip (all rows with `--detailed-results`).
fn write_table(out: &mut dyn Write, resources: &[ResourceRef], findings: &[Finding], counts: &Counts, detailed: bool) -> std::io::Result<()> {
    let header = ["ID", "POLICY", "RULE", "RESOURCE", "RESULT", "LOCATION", "MESSAGE"];
    let mut rows: Vec<[String; 7]> = Vec::new();
    for f in findings {
        if !detailed && matches!(f.status, Status::Pass | Status::Skip) {
            continue;
        }
        let Some(res) = resources.get(f.resource) else { continue };
        let message = f.message.lines().next().unwrap_or_default().to_owned();
        rows.push([
            (rows.len() + 1).to_string(),
            f.policy.to_string(),
            f.rule.clone(),
            res.path(),
            f.status.as_str().to_owned(),
            format!("{}:{}", res.file, res.line),
            message,
        ]);
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (n, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if n + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(out, "\n{}", counts.summary_line())
}
