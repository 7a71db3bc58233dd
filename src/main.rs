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
    no_huge_pages();
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

/// mimalloc advises the kernel to back its memory with transparent huge pages, so where they are
/// on (`madvise` or `always`) the first touch of a region zeroes 2 MiB: for a generator whose heap
/// is a few MiB, touched a little more each time a series or a connection is new, that was the
/// largest kernel cost probes added (page clearing, 20-27 % of `perf` samples with probes on) and
/// most of its resident memory. The flag holds for the whole process, mimalloc's regions mapped
/// before `main` included (the kernel decides at each fault). An older kernel refusing it changes
/// nothing else.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
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
