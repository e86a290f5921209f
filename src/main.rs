//! The `palisade` command line. One module per subcommand; each returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod jp;

#[derive(Parser)]
#[command(name = "palisade", version, about = "Compile, check and run Kyverno admission policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check policies; print diagnostics.
    Check(check::Args),
    /// Query, parse and list functions of Kyverno's JMESPath dialect.
    Jp(jp::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Jp(args) => jp::run(args),
    }
}
