//! What each subcommand does, once its arguments are parsed.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::Outcome;
use crate::engine::{self, RunOptions};
use crate::logging;
use crate::reference;
use crate::report;
use crate::results::Summary;
use crate::workload::{Overrides, Workload};

/// `--quiet`: the console report shrinks to its verdict and results lines.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The console report of a run, or with `--quiet` its brief form (the verdict, what failed,
/// where the results are).
fn console(s: &Summary, dir: &str) -> String {
    match QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        true => report::console::brief(s, dir),
        false => report::console::render(s, dir),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    logging::init(cli.log_format, cli.verbose, cli.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Init(args) => runtime.block_on(super::init::run(*args)),
        // On a worker, where the connections' tasks run: polled by `block_on` on this thread,
        // the run's own requests (preflight, cleanup's read-back) cost a wake-up of each thread
        // by the other (a futex each way) per request.
        Command::Run(args) => runtime.block_on(on_worker(run_workload(args))),
        Command::Validate(args) => runtime.block_on(validate(args)),
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Cleanup(args) => runtime.block_on(cleanup(args)),
        Command::Report(args) => report_dir(args),
        Command::Compare(args) => compare(args),
        Command::Sweep(args) => runtime.block_on(sweep(args)),
        Command::Merge(args) => merge(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // clap_complete panics when a write fails (`provbench completions zsh | head`):
            // the script is written whole into memory, then to stdout, ignoring a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "provbench", &mut script);
            crate::redact::print(&String::from_utf8_lossy(&script));
            Ok(Outcome::Passed)
        }
        Command::Man { dir } => man_pages(&dir),
    }
}

/// `fut` run as a task of the runtime, its panic resumed here as `block_on` would have.
async fn on_worker<T: Send + 'static>(fut: impl std::future::Future<Output = T> + Send + 'static) -> T {
    match tokio::spawn(fut).await {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels its tasks, and this one outlives it.
            Err(e) => panic!("the run's task was cancelled: {e}"),
        },
    }
}

/// `provbench.1` and `provbench-SUBCOMMAND.1` for every subcommand, into `dir`.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut pages = vec![("provbench".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("provbench-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        crate::redact::print(&format!("{}\n", path.display()));
    }
    Ok(Outcome::Passed)
}

/// A token cancelled on Ctrl-C, SIGTERM or SIGHUP (see `engine::shutdown::install_signal_handlers`).
fn interrupt_token() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    engine::shutdown::install_signal_handlers(token.clone())?;
    Ok(token)
}

/// The exit a command that judged a run earns from its summary: the outcome's exit code, with
/// the reason on stderr when it is 2.
fn outcome_of(s: &Summary) -> anyhow::Result<Outcome> {
    match s.outcome.exit_code() {
        0 => Ok(Outcome::Passed),
        2 => bail!(
            "{}",
            s.error_reason().unwrap_or_else(|| "the run could not be judged".into())
        ),
        crate::results::outcome::INTERRUPTED_EXIT => Ok(Outcome::Interrupted),
        _ => Ok(Outcome::Failed),
    }
}

async fn sweep(args: SweepArgs) -> anyhow::Result<Outcome> {
    use crate::capacity::search::{Plan, Stepping};
    use crate::workload::schedule::parse_rate;
    let mut overrides = args.set.iter().fold(Overrides::default(), |o, s| o.set(s));
    overrides.thresholds = args.thresholds.clone();
    let workload = Workload::load(&args.workload, &overrides)?;
    anyhow::ensure!(
        matches!(workload.load, crate::workload::Load::Open { .. }),
        "{}: sweep steps an arrival rate, so the workload needs model = \"open\"",
        args.workload.display()
    );
    let rate = |s: &str, flag: &str| {
        parse_rate(s)
            .and_then(|r| crate::workload::limits::rate(flag, r))
            .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let stepping = match (&args.factor, &args.step) {
        (_, Some(s)) => Stepping::Linear(rate(s, "step")?),
        (Some(f), None) if *f > 1.0 => Stepping::Geometric(*f),
        (Some(f), None) => bail!("--factor must be above 1, got {f}"),
        (None, None) => Stepping::Geometric(1.5),
    };
    let plan = Plan {
        from: rate(&args.from, "from")?,
        to: rate(&args.to, "to")?,
        stepping,
        bisect: args.bisect,
    };
    anyhow::ensure!(
        plan.from > 0.0 && plan.to >= plan.from,
        "--from must be positive and not above --to"
    );
    let max_error_rate = args
        .max_error_rate
        .trim_end_matches('%')
        .parse::<f64>()
        .map_err(|_| anyhow::anyhow!("--max-error-rate: `{}` is not a percentage", args.max_error_rate))?
        / 100.0;
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "");
        PathBuf::from("results").join(format!("{stamp}-{}-sweep", workload.name))
    });
    let shutdown = interrupt_token()?;
    let interrupted = shutdown.clone();
    // As in `run`: goose's own stdout line stays off the report (printed after the sweep).
    let quiet_goose = gag::Gag::stdout().ok();
    let c = crate::capacity::sweep(
        crate::capacity::SweepOptions {
            workload,
            plan,
            warmup: args.warmup,
            hold: args.hold,
            out: out.clone(),
            max_error_rate,
            min_achieved: 0.95,
        },
        shutdown,
    )
    .await;
    drop(quiet_goose);
    let c = match c {
        // Stopped by a signal: its own exit code, whatever step it cut short.
        Err(e) if interrupted.is_cancelled() => {
            crate::redact::eprint(&format!("interrupted: {}\n", crate::redact::error(&e)));
            return Ok(Outcome::Interrupted);
        }
        other => other?,
    };
    for s in &c.steps {
        crate::redact::print(&format!(
            "{:>9.1}/s  {}  achieved {:.1}/s  API p99 {}  queue p99 {}{}\n",
            s.rate,
            if s.passed { "pass" } else { "FAIL" },
            s.achieved_rate,
            crate::results::format_micros(s.api_p99_us),
            crate::results::format_micros(s.queue_delay_p99_us),
            if s.passed {
                String::new()
            } else {
                format!("  ({})", s.reasons.join("; "))
            }
        ));
    }
    crate::redact::print(&format!("{}\n", c.verdict()));
    let left: Vec<String> = c.steps.iter().filter_map(|s| s.left_behind.clone()).collect();
    crate::redact::print(&format!("capacity report: {}\n", out.join("capacity.html").display()));
    if !left.is_empty() {
        bail!("cleanup after the sweep left users behind: {}", left.join("; "));
    }
    Ok(if c.sustainable_rate.is_some() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn merge(args: MergeArgs) -> anyhow::Result<Outcome> {
    let s = report::merge::merge(&args.dirs, &args.out, &args.formats)?;
    crate::redact::print(&console(&s, &args.out.display().to_string()));
    outcome_of(&s)
}

fn report_dir(args: ReportArgs) -> anyhow::Result<Outcome> {
    let s = report::rebuild(&args.dir)?;
    report::write_all(&s, &args.dir, &args.formats)?;
    crate::redact::print(&console(&s, &args.dir.display().to_string()));
    outcome_of(&s)
}

fn compare(args: CompareArgs) -> anyhow::Result<Outcome> {
    let c = report::compare::compare(
        &args.baseline,
        &args.current,
        &args.max_regression,
        args.metric.as_deref(),
    )?;
    if c.rows.is_empty() {
        bail!("the two runs share no series to compare");
    }
    match args.format.as_str() {
        "json" => crate::redact::print_shown(&format!(
            "{}\n",
            crate::redact::json(&serde_json::to_string_pretty(&c)?)
        )),
        _ => crate::redact::print(&report::compare::markdown(&c, &args.max_regression)),
    }
    // A gate that judged nothing is no pass: exit 2, saying why.
    if let Some(why) = c.unjudged(&args.max_regression) {
        bail!("compare: {why}");
    }
    Ok(if c.regressions > 0 {
        Outcome::Failed
    } else {
        Outcome::Passed
    })
}

async fn validate(args: ValidateArgs) -> anyhow::Result<Outcome> {
    let mut failed = 0;
    for path in &args.workloads {
        let loaded = Workload::load(path, &args.set.iter().fold(Overrides::default(), |o, s| o.set(s)))
            .map_err(anyhow::Error::from);
        let checked = match loaded {
            Ok(w) if args.online => validate_online(&w).await.map(|()| w),
            other => other,
        };
        match checked {
            Ok(w) => crate::redact::print(&format!(
                "{}: ok ({}; {} journeys, operations: {}{})\n",
                path.display(),
                w.load_summary(),
                w.journeys.len(),
                w.operation_names().join(", "),
                match (args.online, &w.target) {
                    (false, _) => "",
                    (true, crate::workload::Target::Ldap(_)) => "; the directory answered the pre-flight",
                    (true, _) => "; the target's /Schemas agrees",
                }
            )),
            Err(e) => {
                crate::redact::eprint(&format!("error: {}\n", crate::redact::error(&e)));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} workload files are invalid", args.workloads.len());
    }
    Ok(Outcome::Passed)
}

/// Signs in to (or binds to) the workload's target and asks it what can be asked without
/// writing: a SCIM target's `/Schemas` against the user template, then the run's pre-flight
/// (each probe service read once, base DNs, login directories, the sweep's search).
async fn validate_online(w: &Workload) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let target = engine::targets::resolve(w, stop.clone(), None, None).await?;
    let checked = async {
        target.preflight(w).await?;
        if let Some(probes) = w.probes.clone() {
            let registry = std::sync::Arc::new(crate::metrics::Registry::new());
            let ops = w.builtin_operations();
            let hub =
                crate::probes::ProbeHub::new(probes, target.http_client(), registry, &ops, None, stop.clone()).await?;
            hub.preflight().await.map_err(|e| e.context("pre-flight"))?;
        }
        let run_id = crate::ledger::RunId::generate();
        if let Some(note) = engine::preflight::check_target(w, &target, &run_id).await? {
            crate::redact::eprint(&format!("warning: {note}\n"));
        }
        anyhow::Ok(())
    }
    .await;
    stop.cancel();
    target.stop().await;
    checked
}

async fn run_workload(args: RunArgs) -> anyhow::Result<Outcome> {
    check_start_at(args.start_at)?;
    let workload = Workload::load(&args.workload, &args.overrides()?)?;
    // goose prints "N users launched." to stdout, which is the summary's: stdout says nothing
    // until the run is over (what provbench says during a run goes to stderr).
    let quiet_goose = gag::Gag::stdout().ok();
    let result = engine::run(
        RunOptions {
            workload,
            out: args.out.clone(),
            progress: !args.no_progress && !QUIET.load(std::sync::atomic::Ordering::Relaxed),
            cleanup_timeout: args.cleanup_timeout,
            keep_users: args.keep_users,
            metrics_listen: args.metrics_listen.clone(),
            metrics_linger: args.metrics_linger.unwrap_or_default(),
            dashboard: args.dashboard.clone(),
            notify: args.notify.clone(),
            warmup: std::time::Duration::ZERO,
            run_id: args.run_id.clone(),
            start_at: args.start_at,
            strict: args.strict,
            target: None,
            formats: args.formats.clone(),
        },
        interrupt_token()?,
    )
    .await?;
    drop(quiet_goose);
    let s = &result.summary;
    crate::redact::print(&console(s, &result.dir.display().to_string()));
    github_actions(s);
    match outcome_of(s)? {
        // A shard's verdict is the merge's to give: its own thresholds are only part of the load.
        Outcome::Failed if args.defer_verdict && s.outcome == crate::results::RunOutcome::Failed => {
            crate::redact::eprint(
                "verdict deferred (--defer-verdict): this run alone lost a threshold or check; `provbench merge` judges the whole\n",
            );
            Ok(Outcome::Passed)
        }
        other => Ok(other),
    }
}

/// A `--start-at` that has passed cannot line shards up: an error, saying what to give instead.
fn check_start_at(start_at: Option<std::time::SystemTime>) -> anyhow::Result<()> {
    let Some(at) = start_at else { return Ok(()) };
    if let Ok(ago) = std::time::SystemTime::now().duration_since(at)
        && ago > std::time::Duration::from_secs(1)
    {
        bail!(
            "--start-at {} passed {:.0} s ago: shards start together only at a future instant (e.g. `date -u -d '+2 min' +%FT%TZ`)",
            humantime::format_rfc3339_seconds(at),
            ago.as_secs_f64()
        );
    }
    Ok(())
}

/// In GitHub Actions: an `::error::` annotation per lost threshold, and the Markdown summary
/// appended to `$GITHUB_STEP_SUMMARY`.
fn github_actions(s: &Summary) {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return;
    }
    for v in s.thresholds.iter().filter(|v| !v.passed) {
        // Workflow commands end at a newline; keep the message on one line.
        let msg = format!("threshold `{}` failed: observed {}", v.expression, v.observed_text);
        crate::redact::print(&format!(
            "::error title=provbench {}::{}\n",
            crate::redact::line(&s.workload),
            crate::redact::line(&msg)
        ));
    }
    if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(report::markdown::render(s).as_bytes()));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write $GITHUB_STEP_SUMMARY");
        }
    }
}

async fn cleanup(args: CleanupArgs) -> anyhow::Result<Outcome> {
    let run_id = match args.force {
        false => crate::ledger::RunId::parse(&args.run_id),
        true => crate::ledger::RunId::forced(&args.run_id),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "--run-id {e}{}",
            if args.force {
                ""
            } else {
                " (--force accepts another marker)"
            }
        )
    })?;
    let workload = match &args.workload {
        Some(path) => Some(Workload::load(path, &Overrides::default())?),
        None => None,
    };
    let stop = CancellationToken::new();
    let target = engine::targets::for_cleanup(
        workload.as_ref(),
        args.target_url.as_deref(),
        args.token_env.as_deref(),
        stop.clone(),
    )
    .await?;
    if args.force && !args.yes {
        // A marker that is not a run id may be anybody's word: show what it matches first.
        let found = target.marked(&run_id, args.timeout).await;
        stop.cancel();
        let found = found?;
        let mut listing = String::new();
        for c in found.iter().take(50) {
            // Names and ids are the target's words: one line each, escaped.
            let line = crate::redact::line(&format!(
                "{} {} {}",
                crate::engine::targets::readback::kind(c),
                c.id(),
                c.name()
            ));
            listing.push_str(&format!("would delete: {line}\n"));
        }
        if found.len() > 50 {
            listing.push_str(&format!("… and {} more\n", found.len() - 50));
        }
        crate::redact::print(&listing);
        bail!(
            "--force lists and deletes nothing: {} resource(s) carry `{run_id}`; add --yes to delete them",
            found.len()
        );
    }
    let report = target.sweep(&run_id, args.timeout).await;
    stop.cancel();
    let what = if target.kind() == "ldap" {
        "the directory"
    } else {
        "the target"
    };
    cleanup_outcome(&run_id, &report?, what)
}

/// Prints what `provbench cleanup` did; an unsearchable target is an error, anything left a failure.
fn cleanup_outcome(
    run_id: &crate::ledger::RunId,
    report: &crate::results::CleanupReport,
    what: &str,
) -> anyhow::Result<Outcome> {
    crate::redact::print(&report::console::cleanup_lines(&run_id.to_string(), report));
    if !report.unsearchable.is_empty() {
        bail!(
            "cannot search {what} for {run_id}: {} (nothing can be said about what is left)",
            report.unsearchable.join("; ")
        );
    }
    Ok(if report.failed == 0 && report.unverified == 0 && !report.timed_out {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<Outcome> {
    let config = args.reference_config()?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (token, generated) = match &args.admin_token {
        Some(t) => (t.clone(), false),
        None => (reference::generate_token(), true),
    };
    let shutdown = interrupt_token()?;
    let summary = format!(
        "profile {}, {} workers, services: {}",
        args.config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or(args.profile.clone()),
        config.workers,
        config
            .services
            .iter()
            .map(|s| format!("{} ({})", s.name, s.sync_delay))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let running = reference::start(listener, config, token.clone(), shutdown.clone()).await?;
    crate::redact::print(&format!(
        "provbench reference service listening on {}\n",
        running.root_url()
    ));
    crate::redact::print(&format!("  SCIM base URL: {}\n", running.scim_url()));
    if generated {
        crate::redact::print(&format!(
            "  admin token:   {token}   (generated; pass --admin-token to choose one)\n"
        ));
    }
    crate::redact::print(&format!("  {summary}\n"));
    crate::redact::print("  stop with Ctrl-C\n");
    tracing::info!(addr = %running.addr, "serving");
    shutdown.cancelled().await;
    running.stop().await;
    tracing::info!("stopped");
    Ok(Outcome::Passed)
}
