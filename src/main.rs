//! The `provbench` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use provbench::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Returns a closed pipe as an error (ignored), never a panic.
            let _ = e.print();
            // --help and --version are successes; every other parse failure is a usage error.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match provbench::cli::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            provbench::redact::eprint(&format!("error: {}\n", provbench::redact::error(&e)));
            ExitCode::from(2)
        }
    }
}
