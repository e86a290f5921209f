//! `palisade jp ...` (owner: stdlib)
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_args: Args) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
