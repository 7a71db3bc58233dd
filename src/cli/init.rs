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
    let written = init::init(&opts).await.map_err(|f| said(f, "init"))?;
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
    let checked = init::check(path, args.write_probe, args.login_url.as_deref())
        .await
        .map_err(|f| said(f, &format!("init --check {}", path.display())))?;
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
