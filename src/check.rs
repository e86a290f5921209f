//! `palisade check PATH...`: parse and check policy files, print the diagnostics.
//!
//! Directories are walked recursively for `.yaml`/`.yml` files, skipping hidden directories
//! (`.chainsaw-test`, `.kyverno-test`, ...). A file found that way is checked only if it holds a
//! policy (or looks like a broken one), so test files, resources and package metadata next to
//! policies are passed over. A file named on the command line is always checked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label, Severity as ReportSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use palisade_compiler::check;
use palisade_compiler::source::SourceMap;
use palisade_compiler::{Diagnostic, FileId, Severity, syntax};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or directories to check.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let mut sources = SourceMap::new();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut unreadable = false;
    for path in &args.paths {
        let explicit = !path.is_dir();
        let mut files = Vec::new();
        if explicit {
            files.push(path.clone());
        } else {
            collect(path, &mut files);
        }
        files.sort();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    unreadable = true;
                    continue;
                }
            };
            // Parse with the id the file will get if it is kept, so it is parsed only once.
            let id = FileId(u32::try_from(sources.files().count()).unwrap_or(u32::MAX));
            let (docs, syntax_diags) = syntax::parse(id, &text);
            if !explicit && !looks_like_policy(&docs, &syntax_diags, &text) {
                continue;
            }
            sources.add(file.display().to_string(), text.as_str());
            let (_, diags) = check::check(&docs);
            diagnostics.extend(syntax_diags);
            diagnostics.extend(diags);
        }
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    let files = sources.files().count();
    match args.format {
        Format::Json => println!("{}", json(&sources, &diagnostics, files, errors, warnings)),
        Format::Text => text(&sources, &diagnostics, files, errors, warnings),
    }
    if errors > 0 || unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether a file found in a directory should be checked: it holds a policy, or it failed to
/// parse and mentions a policy API group (a broken policy is worth reporting; a broken resource
/// next to it is not our business).
fn looks_like_policy(docs: &[syntax::Document], diags: &[Diagnostic], text: &str) -> bool {
    docs.iter().any(check::is_policy)
        || (diags.iter().any(Diagnostic::is_error)
            && ["kyverno.io/", "admissionregistration.k8s.io/"]
                .iter()
                .any(|g| text.contains(g)))
}

/// YAML files under `dir`, skipping hidden directories. Unreadable directories are skipped.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("error: cannot read directory {}", dir.display());
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !hidden {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn json(
    sources: &SourceMap,
    diags: &[Diagnostic],
    files: usize,
    errors: usize,
    warnings: usize,
) -> String {
    let items: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let file = sources.get(d.span.file).map_or("", |f| f.name.as_str());
            let (start, end) = sources.resolve(d.span).unzip();
            serde_json::json!({
                "file": file,
                "line": start.map_or(0, |s| s.line),
                "column": start.map_or(0, |s| s.column),
                "end_line": end.map_or(0, |e| e.line),
                "end_column": end.map_or(0, |e| e.column),
                "severity": d.severity.as_str(),
                "code": d.code,
                "message": d.message,
                "note": d.note,
            })
        })
        .collect();
    serde_json::json!({
        "files": files,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": items,
    })
    .to_string()
}

fn text(sources: &SourceMap, diags: &[Diagnostic], files: usize, errors: usize, warnings: usize) {
    // codespan's file ids are indices in insertion order, the same as our `FileId`s.
    let mut files_db = SimpleFiles::new();
    for (_, f) in sources.files() {
        files_db.add(f.name.clone(), f.text.clone());
    }
    let config = term::Config::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for d in diags {
        let severity = match d.severity {
            Severity::Error => ReportSeverity::Error,
            Severity::Warning => ReportSeverity::Warning,
            Severity::Note => ReportSeverity::Note,
        };
        let mut notes = Vec::new();
        if let Some(note) = &d.note {
            notes.push(note.clone());
        }
        if let Some(fix) = &d.fix {
            notes.push(match &fix.replacement {
                Some(r) if !fix.message.contains(r.as_str()) => {
                    format!("help: {} (replace with `{r}`)", fix.message)
                }
                _ => format!("help: {}", fix.message),
            });
        }
        let report = Report::new(severity)
            .with_code(d.code)
            .with_message(&d.message)
            .with_labels(vec![Label::primary(d.span.file.0 as usize, d.span.range())])
            .with_notes(notes);
        if let Err(e) = term::emit_to_io_write(&mut out, &config, &files_db, &report) {
            eprintln!("error: cannot print a diagnostic: {e}");
        }
    }
    println!("checked {files} file(s): {errors} error(s), {warnings} warning(s)");
}
