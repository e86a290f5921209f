//! `palisade schema`: prints the JSON schema of the policy kinds, generated from the same
//! declarative schema and documentation the checker and the language server use, for editors
//! that validate YAML with yaml-language-server.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    let schema = palisade_compiler::ast::json_schema::json_schema();
    match serde_json::to_string_pretty(&schema) {
        Ok(text) => {
            use std::io::Write;
            // A closed pipe (`palisade schema | head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
