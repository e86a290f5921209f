//! `palisade bench --policies PATH... --request FILE... [--iterations N] [--pad-rules N] [--json]
//! [--explain]`: measures the stages of answering AdmissionReviews with a policy set.
//!
//! Medians, in nanoseconds per review, of: a bare `serde_json` parse of the request bytes (the
//! floor), the interpreter evaluating the parsed request (every policy, as `palisade apply`
//! does), the set engine with native matchers evaluating its parsed request, and end to end
//! (request bytes in, AdmissionReview response bytes out, with the set engine). Before timing,
//! the interpreter's and the set engine's results are compared; a difference is an error. The
//! time to build the set once (`compile_ms` of wall time, `compile_cpu_ms` of CPU: lowered
//! policies in, native code out) is reported too, since a server pays it at start and on every
//! reload.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{Value, json};

use palisade_runtime::engine::{self, Request, RuleResult, UserInfo};
use palisade_runtime::set::{self, CompiledSet, Review, Route};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders (non-policy YAML is ignored).
    #[arg(long, num_args = 1.., required = true)]
    policies: Vec<PathBuf>,
    /// AdmissionReview files (JSON, or YAML converted to JSON before timing).
    #[arg(long, num_args = 1.., required = true)]
    request: Vec<PathBuf>,
    /// Timed rounds per stage.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Generated rules that match other kinds, added to the set.
    #[arg(long, default_value_t = 0)]
    pad_rules: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// List which rules run natively and why the others run in the interpreter.
    #[arg(long)]
    explain: bool,
    /// Also time each policy alone (interpreter and set engine), slowest first.
    #[arg(long)]
    per_policy: bool,
}

struct Input {
    bytes: Vec<u8>,
    value: Value,
}

pub fn run(args: Args) -> ExitCode {
    let (mut policies, problems) = set::load_policies(&args.policies);
    for p in &problems {
        eprintln!("warning: {p}");
    }
    if policies.is_empty() {
        eprintln!("error: no kyverno.io policies found");
        return ExitCode::FAILURE;
    }
    policies.extend(set::padding(args.pad_rules));
    // Building the set is timed once: it is what a server pays at start and on every reload,
    // nearly all of it in Cranelift's code generation.
    let (build_start, build_cpu) = (Instant::now(), thread_cpu_ns());
    let built = CompiledSet::new(policies.clone());
    let compile_ms = build_start.elapsed().as_secs_f64() * 1000.0;
    // The CPU time of this thread says the same without the noise of other processes on a
    // shared machine (the build runs on the calling thread only).
    let compile_cpu_ms = thread_cpu_ns().zip(build_cpu).map(|(end, start)| end.saturating_sub(start) as f64 / 1e6);
    let compiled = match built {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.explain {
        print_explain(&compiled);
    }
    let mut inputs = Vec::new();
    for path in &args.request {
        match read_request(path) {
            Ok(i) => inputs.push(i),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let iterations = args.iterations.max(1);
    let n = inputs.len() as f64;

    // Agreement first: the numbers mean nothing if the engines disagree.
    let mut evaluated = 0;
    // With --explain: how often each rule was answered by each engine on these requests. A rule
    // planned natively can still give way to the interpreter at run time (for a message with
    // variables, say), and that is where the time goes.
    let mut routes: std::collections::BTreeMap<(String, String), [usize; 4]> = std::collections::BTreeMap::new();
    for (input, path) in inputs.iter().zip(&args.request) {
        let reference = interpret(&policies, &input.value);
        let review = match Review::parse(&input.bytes, &compiled) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let mut out = Vec::new();
        evaluated += compiled.evaluate(&review.request(), &mut out);
        let ours: Vec<RuleResult> = out.iter().map(|r| compiled.rule_result(r)).collect();
        if args.explain {
            for (r, full) in out.iter().zip(&ours) {
                let slot = match r.route {
                    Route::Native => 0,
                    Route::Tape => 1,
                    Route::Walk => 2,
                    Route::Interpreter => 3,
                };
                if let Some(n) = routes.entry((full.policy.clone(), full.rule.clone())).or_default().get_mut(slot) {
                    *n += 1;
                }
            }
        }
        if ours != reference {
            eprintln!("error: {}: the set engine and the interpreter disagree", path.display());
            for (a, b) in ours.iter().zip(&reference) {
                if a != b {
                    eprintln!("  set engine:  {a:?}\n  interpreter: {b:?}");
                }
            }
            return ExitCode::FAILURE;
        }
    }

    if args.explain {
        print_routes(&routes);
    }
    let parse_ns = median(iterations, || {
        for i in &inputs {
            std::hint::black_box(serde_json::from_slice::<Value>(&i.bytes).ok());
        }
    }) / n;
    let interpreter_ns = median(iterations, || {
        for i in &inputs {
            std::hint::black_box(interpret(&policies, &i.value));
        }
    }) / n;
    let reviews: Vec<Review> = inputs.iter().filter_map(|i| Review::parse(&i.bytes, &compiled).ok()).collect();
    let mut out = Vec::new();
    let jit_ns = median(iterations, || {
        for r in &reviews {
            out.clear();
            compiled.evaluate(&r.request(), &mut out);
            std::hint::black_box(&out);
        }
    }) / n;
    let end_to_end_ns = median(iterations, || {
        for i in &inputs {
            std::hint::black_box(set::admit(&compiled, &i.bytes, &mut out));
        }
    }) / n;
    if args.per_policy {
        per_policy(&policies, &inputs, iterations);
    }
    let rules_native = compiled.explain().iter().filter(|e| e.interpreter.is_none()).count();
    let report = json!({
        "requests": inputs.len(),
        "rules_loaded": compiled.rule_count(),
        "rules_evaluated": evaluated,
        "rules_native": rules_native,
        "rules_by_engine": by_engine(&compiled),
        "parse_ns": parse_ns.round(),
        "interpreter_ns": interpreter_ns.round(),
        "jit_ns": jit_ns.round(),
        "end_to_end_ns": end_to_end_ns.round(),
        "compile_ms": (compile_ms * 10.0).round() / 10.0,
        "compile_cpu_ms": compile_cpu_ms.map(|ms| (ms * 10.0).round() / 10.0),
        "resident_kib": resident_kib(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!("requests          {}", inputs.len());
        println!("rules loaded      {} ({} native; {})", compiled.rule_count(), rules_native, by_engine(&compiled).iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
        println!("rules evaluated   {evaluated}");
        println!("parse (serde)     {parse_ns:>10.0} ns");
        println!("interpreter       {interpreter_ns:>10.0} ns");
        println!("jit               {jit_ns:>10.0} ns   ({:.1}x faster than the interpreter)", interpreter_ns / jit_ns);
        println!("end to end        {end_to_end_ns:>10.0} ns   ({:.2}x the bare parse)", end_to_end_ns / parse_ns);
        match compile_cpu_ms {
            Some(cpu) => println!("compile (set)     {compile_ms:>10.1} ms   ({cpu:.1} ms of CPU; CompiledSet::new, native code included)"),
            None => println!("compile (set)     {compile_ms:>10.1} ms   (CompiledSet::new, native code included)"),
        }
        if let Some(kib) = resident_kib() {
            println!("resident memory   {:>10.1} MiB", kib as f64 / 1024.0);
        }
    }
    ExitCode::SUCCESS
}

/// The interpreter's answer: every policy through one [`engine::Evaluation`] of the request, as
/// `palisade apply` does.
fn interpret(policies: &[palisade_compiler::ir::policy::PolicyIr], review: &Value) -> Vec<RuleResult> {
    // A review without a request has no object, so nothing to evaluate.
    let Some(request) = review.get("request") else { return Vec::new() };
    let operation = request.get("operation").and_then(Value::as_str).unwrap_or_default();
    let user = UserInfo {
        username: request.pointer("/userInfo/username").and_then(Value::as_str).unwrap_or_default().to_owned(),
        groups: request
            .pointer("/userInfo/groups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        ..UserInfo::default()
    };
    let object = request.get("object").filter(|o| o.is_object());
    let old = request.get("oldObject").filter(|o| o.is_object());
    let Some(object) = object.or(old) else { return Vec::new() };
    let req = Request { operation, object, old_object: old, user: &user, namespace_labels: None, variables: &[], rule_variables: None };
    let mut evaluation = engine::Evaluation::new(&req);
    policies.iter().flat_map(|p| evaluation.policy(p)).collect()
}

/// Each policy alone: the interpreter (a fresh evaluation per review, so a policy that needs
/// the JMESPath context pays for building it) and a one-policy set engine, slowest first.
fn per_policy(policies: &[palisade_compiler::ir::policy::PolicyIr], inputs: &[Input], iterations: usize) {
    let iterations = (iterations / 4).max(1);
    let n = inputs.len() as f64;
    let mut rows = Vec::new();
    for policy in policies.iter().filter(|p| !p.name.starts_with("pad-")) {
        let one = std::slice::from_ref(policy);
        let Ok(compiled) = CompiledSet::new(one.to_vec()) else { continue };
        let reviews: Vec<Review> = inputs.iter().filter_map(|i| Review::parse(&i.bytes, &compiled).ok()).collect();
        let mut out = Vec::new();
        let mut evaluated = 0;
        for r in &reviews {
            evaluated += compiled.evaluate(&r.request(), &mut out);
        }
        if evaluated == 0 {
            continue;
        }
        let interp = median(iterations, || {
            for i in inputs {
                std::hint::black_box(interpret(one, &i.value));
            }
        }) / n;
        let jit = median(iterations, || {
            for r in &reviews {
                out.clear();
                compiled.evaluate(&r.request(), &mut out);
                std::hint::black_box(&out);
            }
        }) / n;
        let native = compiled.explain().iter().filter(|e| e.interpreter.is_none()).count();
        rows.push((policy.name.clone(), evaluated, native, compiled.rule_count(), interp, jit));
    }
    rows.sort_by(|a, b| b.5.total_cmp(&a.5));
    println!("{:<48} {:>9} {:>9} {:>12} {:>12}", "policy", "evaluated", "native", "interpreter", "set engine");
    for (name, evaluated, native, rules, interp, jit) in rows {
        println!("{name:<48} {evaluated:>9} {:>9} {interp:>9.0} ns {jit:>9.0} ns", format!("{native}/{rules}"));
    }
}

fn read_request(path: &PathBuf) -> Result<Input, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => serde_yaml_ng::from_slice(&bytes).map_err(|e| e.to_string())?,
    };
    let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    Ok(Input { bytes, value })
}

/// The median wall time of one call of `f`, over `iterations` calls after a warm-up.
fn median(iterations: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations.min(200) {
        f();
    }
    let mut times: Vec<u128> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos()
        })
        .collect();
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0) as f64
}

/// How many rules each engine of the set answers.
fn by_engine(set: &CompiledSet) -> std::collections::BTreeMap<&'static str, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for e in set.explain() {
        *counts.entry(e.engine).or_insert(0) += 1;
    }
    counts
}

fn print_explain(set: &CompiledSet) {
    let rows = set.explain();
    let native = rows.iter().filter(|r| r.interpreter.is_none()).count();
    println!("{native} of {} rules run natively", rows.len());
    for r in rows.iter().filter(|r| !r.rule.starts_with("pad-")) {
        match &r.interpreter {
            None => println!("  {:<13}{}/{}", r.engine, r.policy, r.rule),
            Some(why) => println!("  {:<13}{}/{}: {why}", r.engine, r.policy, r.rule),
        }
    }
}

/// The results of each rule by the engine that answered them, the rules the interpreter answered
/// most first.
fn print_routes(routes: &std::collections::BTreeMap<(String, String), [usize; 4]>) {
    let mut rows: Vec<_> = routes.iter().collect();
    rows.sort_by_key(|(_, [native, tape, walk, interpreter])| std::cmp::Reverse((interpreter, native + tape + walk)));
    let total: usize = routes.values().map(|n| n.iter().sum::<usize>()).sum();
    let interpreted: usize = routes.values().map(|&[.., interpreter]| interpreter).sum();
    println!("{total} results on these requests, {interpreted} answered by the interpreter; by rule (native, tape, walk, interpreter):");
    for ((policy, rule), [native, tape, walk, interpreter]) in rows {
        println!("  {native:>6} {tape:>6} {walk:>6} {interpreter:>6}  {policy}/{rule}");
    }
}

/// The CPU time this thread has run, in nanoseconds, from `/proc/thread-self/schedstat`
/// (Linux only).
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// This process's resident set size, from `/proc/self/status` (Linux only).
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
