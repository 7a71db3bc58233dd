//! `provbench init`: the workload written to a file or stdout, what was learnt on stderr;
//! `init --check`: the disagreements, after `validate --online`'s checks.

use super::InitArgs;
use crate::Outcome;
use crate::init;

pub async fn run(args: InitArgs) -> anyhow::Result<Outcome> {
    if let Some(path) = &args.check {
        return check(&args, path).await;
    }
    let opts = args.options()?;
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        anyhow::bail!(
            "{} exists; choose another --out, or add --force to overwrite it",
            out.display()
        );
    }
    let interrupt = interrupt()?;
    let written = match init::init(&opts, interrupt.clone()).await {
        Ok(w) => w,
        Err(f) if interrupt.is_cancelled() => return interrupted(f),
        Err(f) => return Err(said(f, "init")),
    };
    for line in &written.heard {
        crate::redact::eprint(&format!("  {line}\n"));
    }
    match &args.out {
        Some(out) => {
            init::write_out(out, &written.text, args.force)?;
            crate::redact::eprint(&format!(
                "wrote {}: check it with `provbench validate --online {0}`, then `provbench run {0}`\n",
                out.display()
            ));
        }
        None => crate::redact::print(&written.text),
    }
    Ok(Outcome::Passed)
}

async fn check(args: &InitArgs, path: &std::path::Path) -> anyhow::Result<Outcome> {
    let interrupt = interrupt()?;
    let checked = match init::check(path, args.write_probe, args.login_url.as_deref(), interrupt.clone()).await {
        Ok(c) => c,
        Err(f) if interrupt.is_cancelled() => return interrupted(f),
        Err(f) => return Err(said(f, &format!("init --check {}", path.display()))),
    };
    for line in &checked.heard {
        crate::redact::eprint(&format!("  {line}\n"));
    }
    if checked.disagreements.is_empty() {
        crate::redact::print(&format!(
            "{}: the target agrees with every setting discovery could check\n",
            path.display()
        ));
        return Ok(Outcome::Passed);
    }
    crate::redact::print(&format!(
        "{}: the target disagrees with {} setting(s):\n",
        path.display(),
        checked.disagreements.len()
    ));
    for d in &checked.disagreements {
        crate::redact::print(&format!("  {d}\n"));
    }
    Ok(Outcome::Failed)
}

/// What discovery learnt before it failed, on stderr, then the error for `main` to print.
fn said(failure: init::Failure, what: &str) -> anyhow::Error {
    for line in &failure.heard {
        crate::redact::eprint(&format!("  {line}\n"));
    }
    failure.error.context(what.to_string())
}

/// A token cancelled by Ctrl-C, SIGTERM or SIGHUP: discovery stops, a write probe deletes what it
/// wrote first.
fn interrupt() -> anyhow::Result<tokio_util::sync::CancellationToken> {
    let token = tokio_util::sync::CancellationToken::new();
    crate::engine::shutdown::install_signal_handlers(token.clone())?;
    Ok(token)
}

/// Stopped by a signal: what was learnt and what became of the probe, then exit 130.
fn interrupted(failure: init::Failure) -> anyhow::Result<Outcome> {
    for line in &failure.heard {
        crate::redact::eprint(&format!("  {line}\n"));
    }
    crate::redact::eprint(&format!("interrupted: {:#}\n", failure.error));
    Ok(Outcome::Interrupted)
}
