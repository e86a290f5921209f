//! `palisade compile POLICY_PATH... -o FILE`: policies in, a versioned bundle out.
//!
//! Folders are walked for `.yaml`/`.yml` files (hidden folders such as `.chainsaw-test` are
//! skipped); only policy documents are compiled, so test resources beside policies are ignored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use palisade_compiler::bundle::{self, Input};
use palisade_compiler::ir::policy::{Check, RuleBody};
use palisade_compiler::Severity;
use palisade_runtime::cli::runner;

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders.
    #[arg(required = true)]
    policies: Vec<PathBuf>,
    /// The bundle file to write.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Print every rule and how it will be evaluated.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let inputs = match read_inputs(&args.policies) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let compiled = bundle::compile(&inputs);
    for d in &compiled.diagnostics {
        let level = if d.severity == Severity::Error { "error" } else { "warning" };
        if d.severity == Severity::Error || d.severity == Severity::Warning {
            eprintln!("{level}: {}", runner::render(&compiled.sources, d));
        }
    }
    let Some(bundle) = compiled.bundle else {
        let errors = compiled.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        eprintln!("error: no bundle written: {errors} error(s)");
        return ExitCode::FAILURE;
    };
    for s in &bundle.skipped {
        eprintln!("warning: {}:{}: {} {} is not compiled yet and is left out of the bundle", s.file, s.line, s.kind, s.name);
    }
    if args.explain {
        // The plans `palisade serve` makes for these policies: which rules run as native code
        // and why the others do not.
        let set = palisade_runtime::set::CompiledSet::new(bundle.policies.iter().map(|p| p.ir.clone()).collect());
        let plans = match &set {
            Ok(set) => set.explain(),
            Err(e) => {
                eprintln!("error: the policies do not compile to native code: {e}");
                Vec::new()
            }
        };
        let mut plans = plans.iter();
        for p in &bundle.policies {
            println!("{} ({}, failurePolicy {})", p.meta.name, p.meta.kind, p.meta.failure_policy.as_str());
            for r in &p.ir.rules {
                let plan = plans.next().filter(|e| e.rule == r.name);
                let how = match plan {
                    Some(e) => match &e.interpreter {
                        None => e.engine.to_owned(),
                        Some(why) => format!("{}: {why}", e.engine),
                    },
                    None => "interpreter".to_owned(),
                };
                println!("  {} at {}: {}, {how}", r.name, p.source.locate(&r.name), describe(&r.body));
            }
        }
        for p in &bundle.cel {
            println!("{} ({}, failurePolicy {})", p.meta.name, p.meta.kind, p.meta.failure_policy.as_str());
            println!("  at {}:{}: CEL, interpreter", p.source.file, p.source.line);
        }
    }
    let bytes = match bundle.encode() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&args.output, &bytes) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return ExitCode::FAILURE;
    }
    let rules: usize = bundle.policies.iter().map(|p| p.ir.rules.len()).sum();
    println!(
        "compiled {} policies ({rules} rules) and {} CEL policies from {} files into {} ({} bytes) in {:.1} ms",
        bundle.policies.len(),
        bundle.cel.len(),
        inputs.len(),
        args.output.display(),
        bytes.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    ExitCode::SUCCESS
}

fn describe(body: &RuleBody) -> String {
    match body {
        RuleBody::Validate(v) => match &v.check {
            Check::Pattern(_) => "validate.pattern (precompiled)".into(),
            Check::DynamicPattern(_) => "validate.pattern with variables (lowered per request)".into(),
            Check::AnyPattern(_) => "validate.anyPattern".into(),
            Check::Deny(_) => "validate.deny".into(),
            Check::Foreach(_) => "validate.foreach".into(),
            Check::PodSecurity(_) => "validate.podSecurity".into(),
            Check::Cel(_) => "validate.cel".into(),
            Check::Unsupported(what) => format!("{what} (not evaluated yet: reports an error)"),
            #[allow(unreachable_patterns)]
            _ => "validate".into(),
        },
        RuleBody::Unsupported(what) => format!("{what} (not evaluated yet: reports an error)"),
        #[allow(unreachable_patterns)]
        _ => "other rule kind".into(),
    }
}

/// Reads every policy file under the given paths, in a stable order.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            for f in files {
                inputs.push(read(&f, false)?);
            }
        } else {
            inputs.push(read(path, true)?);
        }
    }
    Ok(inputs)
}

fn read(path: &Path, explicit: bool) -> Result<Input, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Input { name: path.display().to_string(), text, explicit })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let p = entry.path();
        let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}
