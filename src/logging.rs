//! Logging: `tracing` to stderr, human-readable by default or JSON lines (`--log-format json`),
//! filtered by `RUST_LOG` (default `info`). Every event is one line through [`crate::redact::line()`]:
//! a field holding a target's answer (an error body with CR, LF or ESC in it) cannot start a line
//! of its own. A closed stderr is not an error: logging never stops a run, and never panics.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// stderr, with secrets and control characters taken out of each write.
struct Redacting {
    json: bool,
}

/// `fmt` writes each event whole, in one call, ending in a newline: every other newline in it
/// came from a field.
struct RedactingWriter {
    json: bool,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (event, end) = match text.strip_suffix('\n') {
            Some(event) => (event, "\n"),
            None => (&*text, ""),
        };
        // JSON lines stay JSON (their strings hold newlines escaped already).
        let shown = match self.json {
            true => crate::redact::json(event),
            false => crate::redact::line(event),
        };
        // Errors ignored: tracing-subscriber reports a failed write with `eprintln!`, which
        // panics on a closed stderr (`provbench run … 2>&1 | head -1`).
        crate::redact::eprint_shown(&format!("{shown}{end}"));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> RedactingWriter {
        RedactingWriter { json: self.json }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The filter directives used where `RUST_LOG` is not set.
///
/// goose logs each user's start and exit at info: keep it to warnings unless asked. ldap3 warns
/// of every answer that arrives after its request timed out (a probe's read of a stalled
/// replica), which the probes already count as failed reads. rustls-platform-verifier logs
/// "failed to verify TLS certificate" at error level for every certificate it rejects, while
/// the request's own error carries the same cause into provbench's report (the failed run, the
/// failed check): a second, bare line would read as a fault even where the failure is the
/// expected answer; `--verbose` shows it.
pub fn default_directives(verbose: bool, quiet: bool) -> &'static str {
    match (verbose, quiet) {
        (true, _) => "provbench=debug,goose=info,info",
        (false, true) => "warn,ldap3=error,rustls_platform_verifier=off",
        (false, false) => "info,goose=warn,ldap3=error,rustls_platform_verifier=off",
    }
}

pub fn init(format: LogFormat, verbose: bool, quiet: bool) {
    // What provbench writes to stderr outside the log (`redact::eprint`) follows the format too.
    crate::redact::set_stderr_json(format == LogFormat::Json);
    let default = default_directives(verbose, quiet);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Plain text: the writer escapes every control character, colour codes included.
        .with_ansi(false)
        .with_writer(Redacting {
            json: format == LogFormat::Json,
        });
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
