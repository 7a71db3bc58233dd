//! The command line: subcommands, their flags and help. `commands` runs each one.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;
use crate::reference::{self, config::ReferenceConfig, distribution::Distribution};

#[derive(Debug, Parser)]
#[command(
    name = "provbench",
    version,
    about = "Load and performance benchmarking for user-provisioning systems (SCIM 2.0, IAM, connectors)",
    long_about = "Load and performance benchmarking for user-provisioning systems.\n\n\
provbench drives virtual admins against a SCIM 2.0 service and measures both halves of \
provisioning: the API latency, and the asynchronous part after the API answers (queue delay, \
sync lag per linked service). It ships an embedded reference provisioning service as a default target.",
    after_help = "Examples:\n  provbench run workloads/quickstart.toml\n  provbench validate workloads/*.toml\n  provbench serve --listen 127.0.0.1:8080 --profile realistic\n\n\
Exit codes: 0 passed, 1 thresholds or checks failed, 2 usage, input or runtime error (or nothing \
to judge), 130 interrupted (Ctrl-C, SIGTERM, SIGHUP)."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More detailed logs (RUST_LOG overrides).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only warnings and errors on stderr, no progress line, and of the console report only the
    /// verdict, what failed (with what was observed) and where the results and report.html are
    /// (every result file is still written).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a target (SCIM, HTTP API or LDAP directory) and write a workload that runs against it.
    Init(Box<InitArgs>),
    /// Run a workload: virtual admins against the embedded reference service or a SCIM target.
    Run(RunArgs),
    /// Check workload files without running them.
    Validate(ValidateArgs),
    /// Run the embedded reference provisioning service (SCIM 2.0 + async pipeline) standalone.
    Serve(Box<ServeArgs>),
    /// Delete what an interrupted run left on a SCIM target (users carrying its run id).
    Cleanup(CleanupArgs),
    /// Re-render a results folder's reports (summary.md, junit.xml, console), even for a killed run.
    Report(ReportArgs),
    /// Compare a run with a baseline, percentile by percentile, from the full histograms.
    Compare(CompareArgs),
    /// Find the highest arrival rate that still meets the workload's thresholds (capacity planning).
    Sweep(SweepArgs),
    /// Merge the results of a sharded run (several `run --shard I/N` processes) into one.
    Merge(MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  provbench completions bash > /etc/bash_completion.d/provbench\n  \
provbench completions zsh > \"${fpath[1]}/_provbench\"\n  provbench completions fish > ~/.config/fish/completions/provbench.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages: provbench.1 and one per subcommand (provbench-run.1, ...).
    #[command(after_help = "Example:\n  provbench man --dir /usr/local/share/man/man1 && man provbench-run")]
    Man {
        /// Folder to write the pages to (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(
    long_about = "Read a target and write a workload that runs against it the first time, each setting \
commented with what the target answered.\n\n\
Discovery reads first and writes nothing: the token endpoint's metadata (which client authentication it \
takes), a SCIM target's /ServiceProviderConfig, /ResourceTypes and /Schemas and how its lists, filters \
and paging behave, an LDAP directory's root DSE, schema and lock rule, and with --login-url the login \
page's shape. Only with --write-probe does it write: one test user carrying a fresh run id, created, \
read, modified, disabled, re-enabled and deleted through the same ownership gate as a run, then read \
back as gone before init ends.\n\n\
With --check WORKLOAD, the same discovery runs against that workload's target with its credentials, \
and each setting the target disagrees with is listed (exit 1), after the checks of `validate --online`.",
    after_help = "Examples:\n  SCIM_TOKEN=... provbench init https://idp.example.com/scim/v2 --token-env SCIM_TOKEN --out workloads/idp.toml\n  \
provbench init https://idp.example.com/scim/v2 --token-url https://idp.example.com/oauth/token \\\n    \
--client-id provbench --client-secret-env CLIENT_SECRET --write-probe --out workloads/idp.toml\n  \
provbench init ldap://127.0.0.1:389 --bind-dn cn=admin,dc=example,dc=test --password-env LDAP_PW\n  \
provbench init --check workloads/idp.toml\n\n\
Exit codes: 0 written (or, with --check, the target agrees), 1 the target disagrees with the workload \
(--check), 2 usage, input or runtime error."
)]
pub struct InitArgs {
    /// The target's URL: a SCIM base URL (`https://idp.example.com/scim/v2`), an HTTP API's base
    /// URL (with --kind http) or an LDAP URL (ldap:// or ldaps://).
    #[arg(required_unless_present = "check", conflicts_with = "check")]
    pub url: Option<String>,
    /// What the target is (default: ldap for ldap:// and ldaps:// URLs, scim otherwise).
    #[arg(long, value_enum)]
    pub kind: Option<crate::init::Kind>,
    /// Write the workload to this file (default: standard output). An existing file is kept
    /// unless --force is given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Read an existing workload's target and list each setting the target disagrees with.
    #[arg(long, value_name = "WORKLOAD")]
    pub check: Option<PathBuf>,
    /// Environment variable holding a bearer token for the target.
    #[arg(long, value_name = "NAME", conflicts_with = "token_url")]
    pub token_env: Option<String>,
    /// OAuth2 client credentials: the token endpoint.
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub token_url: Option<String>,
    /// OAuth2 client credentials: the client id.
    #[arg(long, value_name = "ID", requires = "token_url")]
    pub client_id: Option<String>,
    /// OAuth2 client credentials: environment variable holding the client secret.
    #[arg(long, value_name = "NAME", requires = "token_url")]
    pub client_secret_env: Option<String>,
    /// How the client authenticates at the token endpoint: basic or post (default: what the
    /// endpoint's metadata says it takes).
    #[arg(long, value_name = "METHOD", value_parser = ["basic", "post"], requires = "token_url")]
    pub client_auth: Option<String>,
    /// OAuth2 scope to ask for.
    #[arg(long, requires = "token_url")]
    pub scope: Option<String>,
    /// LDAP: the DN to bind as.
    #[arg(long, value_name = "DN")]
    pub bind_dn: Option<String>,
    /// LDAP: environment variable holding the bind password.
    #[arg(long, value_name = "NAME", requires = "bind_dn")]
    pub password_env: Option<String>,
    /// LDAP: a PEM CA bundle to trust besides the system's (a directory with a private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// LDAP: upgrade an ldap:// connection with StartTLS before binding.
    #[arg(long)]
    pub starttls: bool,
    /// LDAP: where the run's users go (default: found from the directory's naming contexts).
    #[arg(long, value_name = "DN")]
    pub base_dn: Option<String>,
    /// The login page users sign in at (an OAuth2 authorize URL, or the IdP's issuer or metadata
    /// URL), for the login check: which grant the IdP allows, a one-page or identifier-first
    /// form, CSRF fields, consent (read with GETs only; nothing is submitted).
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// With --login-url: the OAuth2 client the login check signs users in with (default: the
    /// target's --client-id).
    #[arg(long, value_name = "ID", requires = "login_url")]
    pub login_client_id: Option<String>,
    /// With --login-url: environment variable holding that client's secret (default: the
    /// target's --client-secret-env).
    #[arg(long, value_name = "NAME", requires = "login_url")]
    pub login_client_secret_env: Option<String>,
    /// With --login-url: the redirect URI registered for the login client; the IdP sends the
    /// browser back there with the code, which is read from the URL and never fetched
    /// (default: `http://127.0.0.1/callback`, which the reference service takes).
    #[arg(long, value_name = "URL", requires = "login_url")]
    pub redirect_uri: Option<String>,
    /// A linked service whose users probes read by filter (its SCIM base URL, or a query URL with
    /// {userName}) (repeatable).
    #[arg(long = "downstream", value_name = "URL")]
    pub downstreams: Vec<String>,
    /// Allow writing one marked test user (created, changed, deleted, read back as gone) to
    /// learn what reading cannot tell: the PATCH dialect, refused attributes, how deletes show.
    #[arg(long)]
    pub write_probe: bool,
    /// The workload's name (default: from the URL's host).
    #[arg(long)]
    pub name: Option<String>,
    /// Per-request timeout while discovering.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

impl InitArgs {
    /// What `init` was asked (for a URL; `--check` reads its workload instead).
    pub fn options(&self) -> anyhow::Result<crate::init::Options> {
        let Some(url) = self.url.clone() else {
            bail!("init needs the target's URL (or --check WORKLOAD)");
        };
        let kind = self.kind.unwrap_or_else(|| crate::init::Kind::of(&url));
        Ok(crate::init::Options {
            kind,
            credentials: crate::init::Credentials {
                token_env: self.token_env.clone(),
                token_url: self.token_url.clone(),
                client_id: self.client_id.clone(),
                client_secret_env: self.client_secret_env.clone(),
                client_auth: self.client_auth.clone(),
                scope: self.scope.clone(),
                bind_dn: self.bind_dn.clone(),
                password_env: self.password_env.clone(),
                ca_file: self.ca_file.clone(),
                starttls: self.starttls,
            },
            base_dn: self.base_dn.clone(),
            login_url: self.login_url.clone(),
            login: crate::init::LoginClient {
                client_id: self.login_client_id.clone(),
                client_secret_env: self.login_client_secret_env.clone(),
                redirect_uri: self.redirect_uri.clone(),
            },
            downstreams: self.downstreams.clone(),
            write_probe: self.write_probe,
            name: self.name.clone(),
            timeout: self.timeout,
            url,
        })
    }
}

#[derive(Debug, Args)]
#[command(
    long_about = "Merge the results folders of a sharded run into one: interval histograms are added per tag \
and per aligned second, counters and checks are summed, and the summary, thresholds and every report are \
rebuilt from the merge (percentiles are never averaged).",
    after_help = "Example:\n  provbench merge results/shard-0 results/shard-1 results/shard-2 --out results/merged"
)]
pub struct MergeArgs {
    /// The shards' results folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    /// Also write reports for CI systems (comma-separated or repeated): gitlab-load-performance
    /// (gitlab-load-performance.json, GitLab's load-performance report), openmetrics (metrics.txt,
    /// GitLab's metrics report) and bmf (bmf.json, Bencher Metric Format).
    #[arg(long = "report-format", value_name = "FORMAT", value_delimiter = ',')]
    pub formats: Vec<crate::report::Format>,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Step an open-model workload's arrival rate to find the highest load that still meets its \
thresholds and checks. Each step runs a warm-up (left out of its figures) and a measured hold at a constant rate; \
the sweep stops at the first step that loses a threshold, exceeds the error limit or saturates (achieved rate \
below target), then optionally bisects between the last passing and the first failing rate. Writes \
capacity.json, capacity.csv and capacity.html (the knee marked), and every step's own results.",
    after_help = "Examples:\n  provbench sweep workloads/open-model.toml --from 20/s --to 2000/s --factor 1.5 --bisect 3\n  \
provbench sweep w.toml --from 50/s --to 500/s --step 50/s --warmup 10s --hold 30s --out results/capacity"
)]
pub struct SweepArgs {
    pub workload: PathBuf,
    /// First rate.
    #[arg(long, default_value = "10/s")]
    pub from: String,
    /// Highest rate to try.
    #[arg(long, default_value = "1000/s")]
    pub to: String,
    /// Geometric steps: each rate is the previous times this.
    #[arg(long, conflicts_with = "step")]
    pub factor: Option<f64>,
    /// Linear steps: each rate is the previous plus this (e.g. 50/s).
    #[arg(long)]
    pub step: Option<String>,
    /// Bisection rounds between the last passing and the first failing rate.
    #[arg(long, default_value_t = 3)]
    pub bisect: u32,
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: std::time::Duration,
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub hold: std::time::Duration,
    /// A step with more errors than this fails.
    #[arg(long, default_value = "1%")]
    pub max_error_rate: String,
    /// Override a workload key, as for `run` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// An extra threshold every step must meet (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Results folder (default results/TIME-WORKLOAD-sweep/, TIME in UTC).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  provbench report results/2026-11-29T071500Z-quickstart")]
pub struct ReportArgs {
    /// A results folder (with summary.json and histograms.hlog).
    pub dir: PathBuf,
    /// Also write reports for CI systems (comma-separated or repeated): gitlab-load-performance
    /// (gitlab-load-performance.json, GitLab's load-performance report), openmetrics (metrics.txt,
    /// GitLab's metrics report) and bmf (bmf.json, Bencher Metric Format).
    #[arg(long = "report-format", value_name = "FORMAT", value_delimiter = ',')]
    pub formats: Vec<crate::report::Format>,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Compare a run with a baseline, per metric and tag set and per percentile, from the full \
histograms of both runs (never from averaged percentiles). Exit 1 when a --max-regression rule is broken, \
2 when nothing was judged (no rule, or every percentile a rule names too thin to judge).",
    after_help = "Examples:\n  provbench compare results/baselines/quickstart results/latest\n  \
provbench compare BASE CURRENT --max-regression p99=10% --max-regression p50=5% --metric api_latency\n  \
provbench compare BASE CURRENT --format json"
)]
pub struct CompareArgs {
    /// The baseline results folder.
    pub baseline: PathBuf,
    /// The results folder to judge.
    pub current: PathBuf,
    /// PERCENTILE=PERCENT: the most the current value may exceed the baseline's (repeatable).
    #[arg(long = "max-regression", value_name = "PCT=LIMIT")]
    pub max_regression: Vec<crate::report::compare::Rule>,
    /// Only this metric (e.g. api_latency, sync_lag).
    #[arg(long)]
    pub metric: Option<String>,
    /// Output format.
    #[arg(long, default_value = "markdown", value_parser = ["markdown", "json"])]
    pub format: String,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Run a workload: concurrent virtual admins (goose users) create, look up, change, disable and \
delete users against the workload's target, timed in microseconds. Results go to \
results/<UTC time>-<workload>/ (or --out): summary.json, histograms.hlog, intervals.csv, workload.toml.\n\n\
Every user the run creates carries its run id; at the end, on Ctrl-C and on SIGTERM, provbench deletes them.",
    after_help = "Examples:\n  provbench run workloads/quickstart.toml\n  \
provbench run workloads/quickstart.toml --duration 1m --set load.admins=50\n  \
provbench run workloads/scim2-server.toml --target-url http://127.0.0.1:8000/scim/v2\n  \
provbench run workloads/open-model.toml --set load.rate=500/s --out results/ci",
    group = clap::ArgGroup::new("live").multiple(true).args(["metrics_listen", "dashboard"])
)]
pub struct RunArgs {
    /// The workload file (TOML).
    pub workload: PathBuf,
    /// Override a workload key: KEY=VALUE with a dotted key, e.g. load.rate=500/s (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Shorthand for --set load.duration=DURATION.
    #[arg(long)]
    pub duration: Option<String>,
    /// An extra threshold, e.g. 'p99(api_latency{op=create_user}) < 300ms' (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Point the workload at this SCIM base URL (kind = "scim").
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
    /// Results folder (default results/TIME-WORKLOAD/, TIME in UTC).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Leave the created users in place (remove them later with `provbench cleanup`). No cleanup
    /// runs, so nothing reads back what the journeys deleted either: the run claims nothing about
    /// what it left.
    #[arg(long)]
    pub keep_users: bool,
    /// Serve live Prometheus text (format 0.0.4) at http://ADDR/metrics during the run: per
    /// metric a histogram since the start (classic buckets), a summary over the last 10 s, and
    /// counters, every sample labelled with run_id and shard.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Keep serving /metrics (and the dashboard) this long after the run ends (e.g. one scrape
    /// interval), so the last figures are scraped; Ctrl-C ends it early. The dashboard is served
    /// 3 s at least, for an open page to show the verdict.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "live")]
    pub metrics_linger: Option<std::time::Duration>,
    /// Serve a live page at http://ADDR/ during the run: the run's context, throughput, errors,
    /// API latency and the asynchronous half's p99 by the time of the write, redrawn every
    /// second, and the verdict when the run ends (e.g. 127.0.0.1:9465).
    #[arg(long, value_name = "ADDR")]
    pub dashboard: Option<String>,
    /// POST the final summary JSON to this webhook URL.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// Run shard INDEX of COUNT (0-based): this process takes 1/COUNT of the arrival rate or its
    /// part of the admins, and every COUNT-th user number. Without it, Kubernetes' Indexed Job
    /// index (JOB_COMPLETION_INDEX) is used when --shard-count is given.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<crate::workload::Shard>,
    /// Shard count for JOB_COMPLETION_INDEX.
    #[arg(long, env = "PROVBENCH_SHARD_COUNT")]
    pub shard_count: Option<u32>,
    /// A run id shared by every shard: `pb-` then 8 to 32 lowercase letters or digits
    /// (e.g. pb-nightly42); a new one by default. It marks every user the run creates.
    #[arg(long, value_parser = crate::ledger::RunId::parse)]
    pub run_id: Option<crate::ledger::RunId>,
    /// Start the load at this UTC instant (RFC 3339), so shards' intervals line up; an instant
    /// already past is an error.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<std::time::SystemTime>,
    /// For a shard: a lost threshold or check exits 0 (the summary still records it), so that
    /// `provbench merge` gives the verdict on the whole; errors still exit 2.
    #[arg(long)]
    pub defer_verdict: bool,
    /// Longest time cleanup may take at the end.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub cleanup_timeout: std::time::Duration,
    /// Fail the run (exit 1) on warnings too. A probe series whose every observation timed out,
    /// or that judged fewer observations than `[probes] min_evidence`, fails the run without it.
    #[arg(long)]
    pub strict: bool,
    /// Also write reports for CI systems (comma-separated or repeated): gitlab-load-performance
    /// (gitlab-load-performance.json, GitLab's load-performance report), openmetrics (metrics.txt,
    /// GitLab's metrics report) and bmf (bmf.json, Bencher Metric Format).
    #[arg(long = "report-format", value_name = "FORMAT", value_delimiter = ',')]
    pub formats: Vec<crate::report::Format>,
}

impl RunArgs {
    /// Every command-line change to the workload, in the order they apply.
    fn overrides(&self) -> anyhow::Result<crate::workload::Overrides> {
        let mut o = self
            .set
            .iter()
            .fold(crate::workload::Overrides::default(), |o, s| o.set(s));
        if let Some(d) = &self.duration {
            o = o.flag(format!("--duration {d}"), format!("load.duration={d}"));
        }
        if let Some(u) = &self.target_url {
            o = o
                .flag(format!("--target-url {u}"), "target.kind=scim".into())
                .flag(format!("--target-url {u}"), format!("target.base_url={u}"));
        }
        o.thresholds = self.thresholds.clone();
        o.shard = match (self.shard, self.shard_count, std::env::var("JOB_COMPLETION_INDEX").ok()) {
            (Some(s), _, _) => Some(s),
            (None, Some(n), Some(i)) => Some(
                format!("{i}/{n}")
                    .parse::<crate::workload::Shard>()
                    .map_err(anyhow::Error::msg)?,
            ),
            _ => None,
        };
        Ok(o)
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  provbench validate workloads/*.toml\n  provbench validate workloads/quickstart.toml --set load.admins=0"
)]
pub struct ValidateArgs {
    /// Workload files to check.
    #[arg(required = true)]
    pub workloads: Vec<PathBuf>,
    /// Overrides to check with them, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Also ask each target (signing in with the workload's credentials; nothing is written):
    /// a user attribute its /Schemas marks required and the user template lacks is an error.
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Delete what an interrupted run left on a SCIM target: every user (and group) whose name \
carries the run id as a whole token (`pb-nightly1` matches `pb-nightly1-7@example.test`, never \
`pb-nightly10-7@…`). Nothing without the marker is touched. Every delete is read back: one still \
found is counted unverified. A marker that is not a run id needs --force, and --force lists what \
it would delete unless --yes is given as well. Exits 1 when something could not be deleted or \
read back as gone, 2 when the target could not be searched (or --force came without --yes).",
    after_help = "Examples:\n  provbench cleanup --run-id pb-1a2b3c4d workloads/scim2-server.toml\n  \
SCIM_TOKEN=... provbench cleanup --run-id pb-1a2b3c4d --target-url http://127.0.0.1:8000/scim/v2 --token-env SCIM_TOKEN"
)]
pub struct CleanupArgs {
    /// The run id (printed at the start of a run and in summary.json).
    #[arg(long)]
    pub run_id: String,
    /// Accept a marker that is not a provbench run id (still matched as a whole token). Lists
    /// what carries it and deletes nothing unless --yes is given too.
    #[arg(long)]
    pub force: bool,
    /// With --force: delete what the listing shows.
    #[arg(long, requires = "force")]
    pub yes: bool,
    /// A workload whose target (and authentication) to clean.
    pub workload: Option<PathBuf>,
    /// The SCIM base URL, instead of (or overriding) the workload's.
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
    /// Environment variable holding a bearer token for --target-url.
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,
    /// Longest time the cleanup may take.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Run the embedded reference provisioning service standalone, so that any SCIM 2.0 client \
(provbench, a compliance suite, curl) can be pointed at it.\n\n\
Endpoints: /scim/v2/{Users,Groups,ServiceProviderConfig,ResourceTypes,Schemas}, /oauth/token \
(client_credentials and password grants), /oauth/userinfo, /jobs/{id}, /linked/{service}/Users[/{id}], \
/linked/{service}/me, /audit, /outbox, /stats (GET ground truth, DELETE to reset).\n\n\
Built-in OAuth2 clients (id / secret / scopes): provbench-admin / provbench-admin-secret / read write admin; \
helpdesk / helpdesk-secret / read write; readonly / readonly-secret / read; short-lived / short-lived-secret / \
read write, tokens expire after 2s.\n\n\
Settings apply in this order: --profile, then --config FILE (which may name its own profile), then the flags below.",
    after_help = "Examples:\n  provbench serve --listen 127.0.0.1:8080\n  \
provbench serve --profile fast --admin-token secret123\n  \
provbench serve --sync-delay crm=lognormal:median=2s,p99=20s --stall 1s/10s --error-rate 0.01\n  \
provbench serve --profile flawed            # every deliberate flaw on\n  \
provbench serve --flaw stale-tokens --flaw incomplete-deprovisioning=mail\n\n\
Distributions (DIST): 50ms | fixed:50ms | uniform:10ms..200ms | lognormal:median=200ms,p99=2s\n\n\
Then: curl -H 'Authorization: Bearer TOKEN' http://127.0.0.1:8080/scim/v2/Users"
)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Static bearer token with full admin scopes; generated and printed when not given.
    #[arg(long, env = "PROVBENCH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Named profile: fast (tests, tiny delays), realistic (default; lognormal delays, login
    /// needs directory sync), flaky (realistic + 2% errors, 429s over 500/s, 1s stall every 10s,
    /// lossy crm), flawed (fast + every deliberate flaw).
    #[arg(long, default_value = "realistic", value_parser = clap::builder::PossibleValuesParser::new(reference::config::PROFILES))]
    pub profile: String,
    /// TOML configuration laid over its profile (keys: profile, seed, token_ttl, clients,
    /// static_tokens, privileged_groups, roles, queue, services, login_requires_sync,
    /// password_grant, login_consent, login_identifier_first, count_error, filter_ignored, soft_delete, webhook_url, retention, retention_cap, faults, flaws; queue and
    /// faults are tables, services an array of tables).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Client authentication the token endpoint takes: any (default), basic (client_secret_basic
    /// only, as many identity providers) or post (client_secret_post only).
    #[arg(long, value_enum, value_name = "METHOD")]
    pub client_auth: Option<reference::config::ClientAuthMethods>,
    /// Refuse the password grant: users sign in through /oauth/authorize (authorization code
    /// with PKCE, an HTML login form with a CSRF token), as identity providers that disable it.
    #[arg(long)]
    pub no_password_grant: bool,
    /// Show a consent page after the login form, before redirecting with the code.
    #[arg(long)]
    pub login_consent: bool,
    /// Identifier-first sign-in: the login page asks for the username, the next page for the
    /// password (as several identity providers do).
    #[arg(long)]
    pub login_identifier_first: bool,
    /// A user attribute every create and replace must carry, published as required in /Schemas
    /// (repeatable), as identity providers that require `active` or `emails`.
    #[arg(long, value_name = "NAME")]
    pub require_attribute: Vec<String>,
    /// A `count` parameter on `GET /Users` answers 500, as some real servers do.
    #[arg(long)]
    pub count_error: bool,
    /// Filters on `GET /Users` are ignored: every user is listed, as some real servers do.
    #[arg(long)]
    pub filter_ignored: bool,
    /// Seed for every random draw (delays, faults), for repeatable runs.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Provisioning workers: jobs that run at once.
    #[arg(long, help_heading = "Pipeline")]
    pub workers: Option<usize>,
    /// How long jobs, audit and outbox entries and deleted users in linked services are kept
    /// (default 60s; at most 200,000 of each): observers must read them within it.
    #[arg(long, help_heading = "Pipeline", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub retention: Option<std::time::Duration>,
    /// Bounded queue size; a write that finds it full gets 503 with Retry-After.
    #[arg(long, help_heading = "Pipeline")]
    pub queue_capacity: Option<usize>,
    /// Time a job keeps its worker busy (DIST).
    #[arg(long, help_heading = "Pipeline", value_name = "DIST")]
    pub service_time: Option<Distribution>,
    /// A worker that finds the queue empty looks again only after this (DIST, e.g.
    /// uniform:500ms..1s): a worker polling a database table instead of being woken.
    #[arg(long, help_heading = "Pipeline", value_name = "DIST")]
    pub idle_poll: Option<Distribution>,
    /// Linked services, replacing the profile's (each starts with a 10ms sync delay).
    #[arg(long, help_heading = "Pipeline", value_delimiter = ',', value_name = "NAME,...")]
    pub services: Option<Vec<String>>,
    /// Sync delay of one linked service: SERVICE=DIST (repeatable).
    #[arg(long, help_heading = "Pipeline", value_name = "SERVICE=DIST")]
    pub sync_delay: Vec<String>,
    /// Probability that a change fails to apply in a service: SERVICE=P (repeatable).
    #[arg(long, help_heading = "Pipeline", value_name = "SERVICE=P")]
    pub sync_failure: Vec<String>,
    /// Probability that a change is silently lost in a service (job says applied, the service
    /// never shows it): SERVICE=P (repeatable).
    #[arg(long, help_heading = "Pipeline", value_name = "SERVICE=P")]
    pub sync_lost: Vec<String>,
    /// How a linked service's users can be read, like real downstreams: SERVICE=OPTS with OPTS
    /// a comma list of `filter-only` (by id always 404; found by filter, absent = empty list),
    /// `404` (a deleted user answers 404, not 410), `no-versions` (no meta.version),
    /// `opaque-etags` (an opaque ETag instead of meta.version; If-None-Match answers 304),
    /// `out-of-order` (changes applied as they arrive: a late, older one overwrites a newer),
    /// `token=SECRET` (its own bearer token; the target's are refused) (repeatable).
    #[arg(long, help_heading = "Pipeline", value_name = "SERVICE=OPTS")]
    pub linked_view: Vec<String>,
    /// Password logins succeed only once the user is active in this linked service ("" for never).
    #[arg(long, help_heading = "Pipeline", value_name = "SERVICE")]
    pub login_requires_sync: Option<String>,
    /// POST an event to this URL each time a change lands in a linked service.
    #[arg(long, help_heading = "Pipeline")]
    pub webhook_url: Option<String>,

    /// Fault: extra latency before every API response (DIST).
    #[arg(long, help_heading = "Faults", value_name = "DIST")]
    pub latency: Option<Distribution>,
    /// Fault: share of API requests answered with 500 (0..1).
    #[arg(long, help_heading = "Faults", value_name = "P")]
    pub error_rate: Option<f64>,
    /// Fault: rate limit as RATE[/BURST] requests per second; excess gets 429 + Retry-After.
    #[arg(long, help_heading = "Faults", value_name = "RATE[/BURST]")]
    pub rate_limit: Option<String>,
    /// Fault: pause every response for DURATION once every PERIOD, e.g. 1s/5s.
    #[arg(long, help_heading = "Faults", value_name = "DURATION/PERIOD")]
    pub stall: Option<String>,
    /// Fault: a PATCH of a user that names this attribute answers 500 (repeatable), as a real
    /// service's PATCH of `nickName` did.
    #[arg(long, help_heading = "Faults", value_name = "ATTR")]
    pub patch_error: Vec<String>,
    /// A DELETE of a user answers 204 but only disables it: the user stays readable and listed
    /// with active=false (a soft delete; a run's read-back never sees it gone).
    #[arg(long)]
    pub soft_delete: bool,

    /// Deliberate flaw (repeatable): privilege-escalation (helpdesk may grant admin, modify
    /// admins, join privileged groups), stale-tokens (user tokens keep working after disable or
    /// delete), incomplete-deprovisioning[=SERVICE] (that service, by default the last, never
    /// revokes), missing-audit (a quarter of audit entries are never written).
    #[arg(long, help_heading = "Flaws", value_name = "NAME")]
    pub flaw: Vec<String>,
}

fn split_pair<'a>(flag: &str, text: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .with_context(|| format!("--{flag} expects SERVICE=VALUE, got `{text}`"))
}

fn probability(flag: &str, text: &str) -> anyhow::Result<f64> {
    let p: f64 = text
        .parse()
        .with_context(|| format!("--{flag}: `{text}` is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        bail!("--{flag}: {p} is not a probability between 0 and 1");
    }
    Ok(p)
}

impl ServeArgs {
    /// The configuration these flags describe (profile, then file, then flags).
    pub fn reference_config(&self) -> anyhow::Result<ReferenceConfig> {
        let mut c = match &self.config {
            Some(path) => ReferenceConfig::from_file(path)?,
            None => ReferenceConfig::profile(&self.profile).map_err(anyhow::Error::msg)?,
        };
        let e = anyhow::Error::msg;
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.workers {
            c.workers = v;
        }
        if let Some(v) = self.retention {
            c.retention = v;
        }
        if let Some(v) = self.queue_capacity {
            c.queue_capacity = v;
        }
        if let Some(v) = &self.service_time {
            c.service_time = v.clone();
        }
        if let Some(names) = &self.services {
            c.services = names
                .iter()
                .map(|n| reference::config::LinkedServiceConfig {
                    name: n.trim().to_string(),
                    sync_delay: Distribution::Fixed(std::time::Duration::from_millis(10)),
                    failure_probability: 0.0,
                    lost_probability: 0.0,
                    view: Default::default(),
                })
                .collect();
            if c.login_requires_sync.as_ref().is_some_and(|s| !names.contains(s)) {
                c.login_requires_sync = None;
            }
        }
        if let Some(m) = self.client_auth {
            c.client_auth = m;
        }
        c.password_grant &= !self.no_password_grant;
        c.required_attributes.extend(self.require_attribute.iter().cloned());
        c.count_error |= self.count_error;
        c.filter_ignored |= self.filter_ignored;
        c.login_consent |= self.login_consent;
        c.login_identifier_first |= self.login_identifier_first;
        c.soft_delete |= self.soft_delete;
        c.faults.patch_errors.extend(self.patch_error.iter().cloned());
        if let Some(d) = &self.idle_poll {
            c.idle_poll = Some(d.clone());
        }
        for item in &self.sync_delay {
            let (svc, dist) = split_pair("sync-delay", item)?;
            c.service_mut(svc).map_err(e)?.sync_delay = dist.parse()?;
        }
        for item in &self.sync_failure {
            let (svc, p) = split_pair("sync-failure", item)?;
            c.service_mut(svc).map_err(e)?.failure_probability = probability("sync-failure", p)?;
        }
        for item in &self.sync_lost {
            let (svc, p) = split_pair("sync-lost", item)?;
            c.service_mut(svc).map_err(e)?.lost_probability = probability("sync-lost", p)?;
        }
        for item in &self.linked_view {
            let (svc, opts) = split_pair("linked-view", item)?;
            c.service_mut(svc).map_err(e)?.view =
                reference::config::LinkedViewConfig::parse(opts).map_err(|m| anyhow::anyhow!("--linked-view: {m}"))?;
        }
        if let Some(s) = &self.login_requires_sync {
            c.login_requires_sync = Some(s.clone()).filter(|s| !s.is_empty());
        }
        if let Some(u) = &self.webhook_url {
            c.webhook_url = Some(u.clone());
        }
        if let Some(d) = &self.latency {
            c.faults.latency = d.clone();
        }
        if let Some(p) = self.error_rate {
            c.faults.error_rate = probability("error-rate", &p.to_string())?;
        }
        if let Some(r) = &self.rate_limit {
            let (rate, burst) = r.split_once('/').unwrap_or((r, ""));
            let per_second: f64 = rate
                .parse()
                .with_context(|| format!("--rate-limit: `{rate}` is not a rate per second"))?;
            let burst: u32 = if burst.is_empty() {
                (per_second / 10.0).ceil().max(1.0) as u32
            } else {
                burst
                    .parse()
                    .with_context(|| format!("--rate-limit: `{burst}` is not a burst size"))?
            };
            c.faults.rate_limit = Some(reference::config::RateLimit { per_second, burst });
        }
        if let Some(s) = &self.stall {
            let (d, every) = s
                .split_once('/')
                .with_context(|| format!("--stall expects DURATION/PERIOD such as 1s/5s, got `{s}`"))?;
            c.faults.stall = Some(reference::config::Stall {
                duration: humantime::parse_duration(d).with_context(|| format!("--stall: `{d}`"))?,
                every: humantime::parse_duration(every).with_context(|| format!("--stall: `{every}`"))?,
            });
        }
        for f in &self.flaw {
            c.enable_flaw(f).map_err(e)?;
        }
        c.validate()
            .map_err(|m| anyhow::anyhow!("invalid reference service settings: {m}"))?;
        Ok(c)
    }
}

mod commands;

mod init;
pub use commands::run;
