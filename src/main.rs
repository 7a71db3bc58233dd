//! The `provbench` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use provbench::cli::Cli;

/// mimalloc, not glibc's malloc: an LDAP add is about 45 allocations and frees inside ldap3 and
/// its BER encoder (a vector per nested element, grown as it is written), and glibc's malloc,
/// free and realloc were two fifths of the instructions of an add (docs/src/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; every other parse failure is a usage error.
            if !e.use_stderr() {
                // Returns a closed pipe as an error (ignored), never a panic.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            usage_error(&e);
            return ExitCode::from(2);
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

/// A command line clap refused: its own text, or with `--log-format json` anywhere on the line
/// one JSON error event (a log collector reading stderr gets nothing else).
fn usage_error(e: &clap::Error) {
    if !json_asked(std::env::args_os().skip(1)) {
        let _ = e.print();
        return;
    }
    provbench::redact::set_stderr_json(true);
    let text = e.render().to_string();
    let one_line: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let message = one_line.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    provbench::redact::eprint(&format!("error: {message}\n"));
}

/// Whether the words ask for JSON logs, read without clap (which just refused them).
fn json_asked(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let words: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    words.iter().enumerate().any(|(i, w)| {
        w == "--log-format=json" || (w == "--log-format" && words.get(i + 1).is_some_and(|n| n == "json"))
    })
}
