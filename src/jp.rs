//! `palisade jp ...`: query, parse and list the functions of Kyverno's JMESPath, like `kyverno jp`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use palisade_stdlib::functions::{self, FunctionDecl};
use palisade_stdlib::jmespath::{self, Dialect, EvalConfig};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Evaluate an expression against a JSON or YAML document and print the result as JSON.
    Query {
        /// The document; read from stdin when left out.
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        /// Which JMESPath to speak.
        #[arg(long, value_enum, default_value_t = DialectArg::Kyverno)]
        dialect: DialectArg,
        /// The expression.
        expression: String,
    },
    /// Print the syntax tree of an expression.
    Parse {
        /// The expression.
        expression: String,
    },
    /// List the functions, or describe one.
    Function {
        /// The function to describe.
        name: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    Kyverno,
    Standard,
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::Query { input, dialect, expression } => query(input, dialect, &expression),
        Command::Parse { expression } => parse(&expression),
        Command::Function { name } => function(name.as_deref()),
    };
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn query(input: Option<PathBuf>, dialect: DialectArg, expression: &str) -> Result<String, String> {
    let expr = jmespath::parse(expression).map_err(|e| e.to_string())?;
    let text = match &input {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
            text
        }
    };
    let data = parse_document(&text)?;
    let dialect = match dialect {
        DialectArg::Kyverno => Dialect::Kyverno,
        DialectArg::Standard => Dialect::Standard,
    };
    let cfg = EvalConfig { dialect, ..EvalConfig::default() };
    let result = jmespath::eval(&expr, &data, &cfg).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&result).map_err(|e| e.to_string())
}

/// JSON first (it is also YAML, but JSON's parser keeps number forms exactly), then YAML.
fn parse_document(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .or_else(|_| serde_yaml_ng::from_str::<Value>(text))
        .map_err(|e| format!("the input is neither JSON nor YAML: {e}"))
}

fn parse(expression: &str) -> Result<String, String> {
    match jmespath::parse(expression) {
        Ok(expr) => Ok(expr.to_string()),
        Err(e) => {
            // Point at the offending column under the expression.
            let column = expression.get(..e.offset).map_or(e.offset, |s| s.chars().count());
            Err(format!("{e}\n  {expression}\n  {}^", " ".repeat(column)))
        }
    }
}

fn function(name: Option<&str>) -> Result<String, String> {
    match name {
        Some(name) => {
            let decls: Vec<&FunctionDecl> = functions::all().filter(|d| d.name == name).collect();
            if decls.is_empty() {
                return Err(format!("unknown function: {name}"));
            }
            Ok(decls.iter().map(|d| describe(d)).collect::<Vec<_>>().join("\n\n"))
        }
        None => Ok(functions::visible(Dialect::Kyverno).iter().map(|d| describe(d)).collect::<Vec<_>>().join("\n\n")),
    }
}

fn describe(decl: &FunctionDecl) -> String {
    let origin = match decl.dialect {
        Dialect::Standard => "standard",
        Dialect::Kyverno => "kyverno",
    };
    format!("Name: {}\nSignature: {}\nOrigin: {origin}\nNote: {}\nExample: {}", decl.name, decl.signature(), decl.doc, decl.example)
}
