//! `palisade apply POLICY_PATH... --resource PATH...`: like `kyverno apply`.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use palisade_runtime::cli::runner::{self, PolicySet, Values};
use palisade_runtime::engine::{self, Request, Status, UserInfo};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders.
    #[arg(required = true)]
    policies: Vec<PathBuf>,
    /// Resource files or folders; `-` reads YAML from standard input.
    #[arg(short = 'r', long = "resource", num_args = 1..)]
    resources: Vec<PathBuf>,
    /// A values file (`kind: Values`).
    #[arg(short = 'f', long = "values-file")]
    values: Option<PathBuf>,
    /// A user info file (`kind: UserInfo`).
    #[arg(short = 'u', long = "userinfo")]
    userinfo: Option<PathBuf>,
    /// Exit 0 when only Audit rules fail.
    #[arg(long)]
    audit_warn: bool,
}

pub fn run(args: Args) -> ExitCode {
    let mut set = PolicySet::default();
    let mut load_errors = 0;
    for p in &args.policies {
        match load_tree(p) {
            Ok(docs) => {
                for d in docs {
                    if let Err(e) = set.add_document(&d) {
                        eprintln!("error: {e}");
                        load_errors += 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                load_errors += 1;
            }
        }
    }
    let mut resources = Vec::new();
    for r in &args.resources {
        let docs = if r.as_os_str() == "-" { read_stdin() } else { load_tree(r) };
        match docs {
            Ok(docs) => docs.into_iter().for_each(|d| runner::expand_list(d, &mut resources)),
            Err(e) => {
                eprintln!("error: {e}");
                load_errors += 1;
            }
        }
    }
    let values = match &args.values {
        Some(v) => match Values::load(v) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Values::default(),
    };
    let user = match &args.userinfo {
        Some(u) => match runner::load_userinfo(u) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => UserInfo::default(),
    };
    let rule_count: usize = set.policies.iter().map(|p| p.rules.len()).sum();
    println!("Applying {rule_count} policy rule(s) to {} resource(s)...", resources.len());
    let mut counts = [0usize; 5];
    let mut blocked = false;
    for resource in &resources {
        let name = resource.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let ns = engine::namespace_of(resource).unwrap_or("default");
        let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
        for policy in &set.policies {
            let vars = values.for_resource(&policy.name, name);
            let req = Request {
                operation: "CREATE",
                object: resource,
                old_object: None,
                user: &user,
                namespace_labels: values.namespace_labels.get(ns),
                variables: &vars,
            };
            for r in engine::evaluate(policy, &req) {
                let status = if r.status == Status::Fail && !r.enforce && args.audit_warn { Status::Warn } else { r.status };
                counts[status as usize] += 1;
                if matches!(status, Status::Fail | Status::Error) {
                    blocked = true;
                    let action = if r.enforce { "Enforce" } else { "Audit" };
                    println!("\npolicy {} -> resource {kind}/{ns}/{name} failed ({action}):", r.policy);
                    println!("  {}: {}", r.rule, r.message);
                }
            }
        }
    }
    println!(
        "\npass: {}, fail: {}, warn: {}, error: {}, skip: {}",
        counts[Status::Pass as usize],
        counts[Status::Fail as usize],
        counts[Status::Warn as usize],
        counts[Status::Error as usize],
        counts[Status::Skip as usize]
    );
    if blocked || load_errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn load_tree(path: &std::path::Path) -> Result<Vec<Value>, String> {
    if !path.exists() {
        return Err(format!("{}: no such file or directory", path.display()));
    }
    if path.is_dir() {
        let mut out = Vec::new();
        let mut stack = vec![path.to_owned()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
                if p.is_dir() && !hidden {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    out.extend(runner::load_documents(&p)?);
                }
            }
        }
        return Ok(out);
    }
    runner::load_documents(path)
}

fn read_stdin() -> Result<Vec<Value>, String> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| format!("stdin: {e}"))?;
    let dir = std::env::temp_dir().join(format!("palisade-stdin-{}.yaml", std::process::id()));
    std::fs::write(&dir, &text).map_err(|e| format!("stdin: {e}"))?;
    let docs = runner::load_documents(&dir);
    let _ = std::fs::remove_file(&dir);
    docs
}
