//! `provbench init`: read a target and write the workload that runs against it the first time,
//! each setting commented with what the target said; `init --check` reads an existing workload
//! against the same discovery (a validate that asks the target).
//!
//! In order: the target's settings from the flags ([`Options`]); the token endpoint's metadata
//! before sign-in ([`oauth`]: which client authentication it takes); sign-in through the run's
//! own target seam (`engine::targets::resolve`, so the egress rule and the TLS settings are the
//! run's); read-only discovery of the target ([`scim`], [`ldap`]); with `--write-probe` only, one
//! marked user created, changed and deleted through the ownership gate and read back as gone
//! ([`scim_probe`], [`ldap_probe`]); the login shape ([`login`]); then the parts a team starts
//! from ([`common`]: load, journeys from the steps the target takes, thresholds, probes of the
//! downstreams given, checks that can judge something). The text is parsed as a workload before
//! it is written: `init` never writes a workload that `validate` refuses.
//!
//! Layering: above `engine` (it resolves targets and runs the pre-flight), beside `report`.
//! Files: `draft` (the leaf: the workload being written) ← every other file; `check` compares;
//! `oauth_meta` finds an authorization server's metadata for `oauth` and `login`; `login_page`
//! reads the login page for `login`.

pub mod check;
pub mod common;
pub mod draft;
pub mod ldap;
pub mod ldap_dse;
pub mod ldap_probe;
pub mod ldap_schema;
pub mod login;
pub mod login_page;
pub mod oauth;
pub mod oauth_meta;
pub mod scim;
pub mod scim_http;
pub mod scim_lists;
pub mod scim_probe;
pub mod scim_probe_steps;
pub mod scim_users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::engine::targets::{self, ResolvedTarget};
use crate::ledger::RunId;
use crate::workload::Workload;
use crate::workload::overrides::Overrides;
use draft::{Draft, Entry, Found};

/// What kind of target `init` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A SCIM 2.0 service (the default for http:// and https:// URLs).
    Scim,
    /// An HTTP API that is not SCIM: custom operations only.
    Http,
    /// An LDAP directory (the default for ldap:// and ldaps:// URLs).
    Ldap,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Scim => "scim",
            Kind::Http => "http",
            Kind::Ldap => "ldap",
        }
    }
}

/// The target's credentials, as a workload names them (secrets by environment variable).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Environment variable holding a bearer token.
    pub token_env: Option<String>,
    /// OAuth2 client credentials: the token endpoint.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    /// `basic` or `post`; discovered from the token endpoint's metadata when not given.
    pub client_auth: Option<String>,
    pub scope: Option<String>,
    /// LDAP: the DN to bind as and the environment variable holding its password.
    pub bind_dn: Option<String>,
    pub password_env: Option<String>,
    /// LDAP: a PEM CA bundle to trust (a private CA), and StartTLS on an ldap:// URL.
    pub ca_file: Option<PathBuf>,
    pub starttls: bool,
}

/// Everything `init` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target's URL (a SCIM base URL, an API's base URL, or an LDAP URL).
    pub url: String,
    pub kind: Kind,
    pub credentials: Credentials,
    /// LDAP: where users go (discovered from the naming contexts when not given).
    pub base_dn: Option<String>,
    /// The login page (OAuth2 authorize URL) users sign in at, for the login check.
    pub login_url: Option<String>,
    /// The login check's client and redirect URI (with `login_url`).
    pub login: LoginClient,
    /// Linked services whose users the probes read (found by filter).
    pub downstreams: Vec<String>,
    /// Allow the one marked test user (created, changed, deleted, read back as gone).
    pub write_probe: bool,
    /// The workload's name (default: from the URL's host).
    pub name: Option<String>,
    /// Per-request timeout while discovering.
    pub timeout: Duration,
}

impl Kind {
    /// The kind a URL implies: LDAP for ldap:// and ldaps://, SCIM otherwise.
    pub fn of(url: &str) -> Kind {
        let lower = url.to_ascii_lowercase();
        match lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
            true => Kind::Ldap,
            false => Kind::Scim,
        }
    }
}

/// The client the login check signs users in with (`--login-client-id`, `--redirect-uri`):
/// unset parts default to the target's own client, and the reference's redirect URI.
#[derive(Debug, Clone, Default)]
pub struct LoginClient {
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    /// Where the IdP sends the browser back with the code (never fetched).
    pub redirect_uri: Option<String>,
}

/// What discovery works with: the target signed in to, as a run would be.
pub struct Context<'a> {
    /// The workload the target was resolved from (a minimal one for `init`, the user's for
    /// `--check`): its `[target]`, `[users]` and `[directory]` say what a run would send.
    pub workload: &'a Workload,
    pub target: &'a ResolvedTarget,
    /// The marker the write probe's user carries (and nothing else).
    pub run_id: &'a RunId,
    pub write_probe: bool,
    pub login_url: Option<&'a str>,
    pub login: LoginClient,
    pub downstreams: &'a [String],
    pub timeout: Duration,
    pub stop: CancellationToken,
    /// `init --check`: the write probe sends the workload's own `[users]` (template, modify), so
    /// that what it learns is about the workload, not about what discovery would draft.
    pub checking: bool,
}

/// A written workload, and what was learnt.
pub struct Written {
    pub text: String,
    pub heard: Vec<String>,
}

/// `provbench init URL`: discovery, then the workload's text (parsed as a workload first).
pub async fn init(opts: &Options, interrupt: CancellationToken) -> Result<Written, Failure> {
    let mut draft = Draft::new();
    match write(opts, &mut draft, interrupt).await {
        Ok(text) => Ok(Written {
            text,
            heard: draft.heard,
        }),
        Err(error) => Err(Failure {
            heard: draft.heard,
            error,
        }),
    }
}

/// What `init` or `init --check` learnt before it failed, and why it failed: what was heard
/// says how far discovery got (and what it saw) when the error alone would not.
pub struct Failure {
    pub heard: Vec<String>,
    pub error: anyhow::Error,
}

async fn write(opts: &Options, draft: &mut Draft, interrupt: CancellationToken) -> anyhow::Result<String> {
    // A URL's userinfo would be written into the workload (and its logs) as it stands.
    if let Ok(u) = reqwest::Url::parse(&opts.url)
        && (!u.username().is_empty() || u.password().is_some())
    {
        anyhow::bail!(
            "the URL carries credentials (user:password@): give them as the workload does instead (--token-env, --client-secret-env, --bind-dn with --password-env)"
        );
    }
    target_section(opts, draft);
    let target_table = target_table(draft)?;
    oauth::discover(&target_table, opts.timeout, draft).await?;
    if opts.kind == Kind::Ldap {
        // A target of kind ldap needs its base DN before it can be resolved.
        ldap::before_bind(opts, draft).await?;
    }
    let minimal = minimal_workload(draft, opts.kind)?;
    let run_id = RunId::generate();
    // Cancelled by a signal (the caller's token) or when discovery ends.
    let stop = interrupt.child_token();
    let target = targets::resolve(&minimal, stop.clone(), None, None)
        .await
        .map_err(|e| oauth::sign_in_hint(e, draft))?;
    let cx = Context {
        workload: &minimal,
        target: &target,
        run_id: &run_id,
        write_probe: opts.write_probe,
        login_url: opts.login_url.as_deref(),
        login: opts.login.clone(),
        downstreams: &opts.downstreams,
        timeout: opts.timeout,
        stop: stop.clone(),
        checking: false,
    };
    let discovered = discover(&cx, opts.kind, draft).await;
    stop.cancel();
    target.stop().await;
    discovered?;
    common::finish(opts, draft);
    header(opts, draft);
    let text = draft.render();
    Workload::parse(Path::new("provbench-init.toml"), &text, &Overrides::default()).map_err(|e| {
        anyhow::anyhow!("init wrote a workload that does not validate (a provbench bug; please report it): {e}\n{text}")
    })?;
    Ok(text)
}

/// What `init --check` found.
pub struct Checked {
    pub heard: Vec<String>,
    pub disagreements: Vec<check::Disagreement>,
}

/// `provbench init --check WORKLOAD`: the same discovery against the workload's own target
/// (read-only unless `write_probe`), each found setting compared with the workload's.
pub async fn check(
    path: &Path,
    write_probe: bool,
    login_url: Option<&str>,
    interrupt: CancellationToken,
) -> Result<Checked, Failure> {
    let mut draft = Draft::new();
    match check_with(path, write_probe, login_url, &mut draft, interrupt).await {
        Ok(disagreements) => Ok(Checked {
            disagreements,
            heard: draft.heard,
        }),
        Err(error) => Err(Failure {
            heard: draft.heard,
            error,
        }),
    }
}

async fn check_with(
    path: &Path,
    write_probe: bool,
    login_url: Option<&str>,
    draft: &mut Draft,
    interrupt: CancellationToken,
) -> anyhow::Result<Vec<check::Disagreement>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let workload = Workload::parse(path, &text, &Overrides::default())?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let target_table = table
        .get("target")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    oauth::discover(&target_table, workload.http.timeout, draft).await?;
    let run_id = RunId::generate();
    // Cancelled by a signal (the caller's token) or when discovery ends.
    let stop = interrupt.child_token();
    let target = match targets::resolve(&workload, stop.clone(), None, None).await {
        Ok(t) => t,
        // A sign-in refused for a setting the token endpoint's metadata disagrees with: that
        // disagreement is the answer (exit 1), the refusal what it caused.
        Err(e) if !check::disagreements(draft, &table).is_empty() => {
            draft.heard(format!(
                "sign-in failed, so nothing past the token endpoint was read: {:#}",
                oauth::sign_in_hint(e, draft)
            ));
            return Ok(check::disagreements(draft, &table));
        }
        Err(e) => return Err(oauth::sign_in_hint(e, draft)),
    };
    let kind = match target.kind() {
        "ldap" => Kind::Ldap,
        "http" => Kind::Http,
        _ => Kind::Scim,
    };
    let downstreams = Vec::new();
    let cx = Context {
        workload: &workload,
        target: &target,
        run_id: &run_id,
        write_probe,
        login_url,
        login: login::client_of(&workload),
        downstreams: &downstreams,
        timeout: workload.http.timeout,
        stop: stop.clone(),
        checking: true,
    };
    let discovered = discover(&cx, kind, draft).await;
    stop.cancel();
    target.stop().await;
    discovered?;
    Ok(check::disagreements(draft, &table))
}

/// Read-only discovery of the target, the write probe when allowed, and the login shape.
async fn discover(cx: &Context<'_>, kind: Kind, draft: &mut Draft) -> anyhow::Result<()> {
    // Reads only: a signal ends them at once. The probes watch it themselves, since what they
    // wrote must be deleted first.
    let read = async {
        match kind {
            Kind::Scim | Kind::Http => scim::discover(cx, kind, draft).await,
            Kind::Ldap => ldap::discover(cx, draft).await,
        }
    };
    tokio::select! {
        read = read => read?,
        () = cx.stop.cancelled() => anyhow::bail!("interrupted: nothing was written"),
    }
    match (cx.write_probe, kind) {
        (true, Kind::Scim) => scim_probe::probe(cx, draft).await?,
        (true, Kind::Ldap) => ldap_probe::probe(cx, draft).await?,
        (true, Kind::Http) => {
            draft.heard("--write-probe: an HTTP API's writes are its custom operations; nothing was written");
        }
        (false, _) => {
            draft.heard("nothing was written to the target (--write-probe writes one marked test user)");
        }
    }
    if let Some(url) = cx.login_url {
        login::discover(cx, url, draft).await?;
    }
    Ok(())
}

/// `[target]` from the flags: kind, URL and credentials (secrets named, never written).
fn target_section(opts: &Options, draft: &mut Draft) {
    let c = &opts.credentials;
    draft.set("target", Entry::new("kind", opts.kind.name()));
    match opts.kind {
        Kind::Ldap => {
            draft.set("target", Entry::new("url", opts.url.as_str()));
            if let Some(dn) = &c.bind_dn {
                draft.set("target", Entry::new("bind_dn", dn.as_str()));
            }
            if let Some(env) = &c.password_env {
                draft.set("target", Entry::new("password_env", env.as_str()));
            }
            if c.starttls {
                draft.set("target", Entry::new("starttls", true));
            }
            if let Some(ca) = &c.ca_file {
                // Absolute: the workload is read from wherever it is written.
                let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
                draft.set("target", Entry::new("ca_file", ca.display().to_string()));
            }
            if let Some(base) = &opts.base_dn {
                draft.set("target", Entry::new("base_dn", base.as_str()));
            }
        }
        Kind::Scim | Kind::Http => {
            draft.set("target", Entry::new("base_url", opts.url.trim_end_matches('/')));
            if let Some(token_url) = &c.token_url {
                draft.set("target", Entry::new("auth.kind", "oauth2-client-credentials"));
                draft.set("target", Entry::new("auth.token_url", token_url.as_str()));
                if let Some(id) = &c.client_id {
                    draft.set("target", Entry::new("auth.client_id", id.as_str()));
                }
                if let Some(env) = &c.client_secret_env {
                    draft.set("target", Entry::new("auth.client_secret_env", env.as_str()));
                }
                if let Some(scope) = &c.scope {
                    draft.set("target", Entry::new("auth.scope", scope.as_str()));
                }
                if let Some(m) = &c.client_auth {
                    draft.set(
                        "target",
                        Entry::new("auth.client_auth", m.as_str()).why("as given with --client-auth"),
                    );
                }
            } else if let Some(env) = &c.token_env {
                draft.set("target", Entry::new("auth.kind", "bearer"));
                draft.set("target", Entry::new("auth.token_env", env.as_str()));
            } else {
                draft.set(
                    "target",
                    Entry::new("auth.kind", "none").why("no credentials were given"),
                );
            }
        }
    }
    draft.set(
        "target",
        Entry::new("timeout", humantime::format_duration(opts.timeout).to_string()),
    );
}

fn target_table(draft: &Draft) -> anyhow::Result<toml::Table> {
    let t: toml::Table = toml::from_str(&draft.render()).context("the drafted [target]")?;
    Ok(t.get("target")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default())
}

/// The drafted `[target]` in a workload of one journey, to sign in with as a run would.
fn minimal_workload(draft: &Draft, kind: Kind) -> anyhow::Result<Workload> {
    let mut d = draft.clone();
    d.set("", Entry::new("name", "provbench-init"));
    d.set("load", Entry::new("model", "closed"));
    d.set("load", Entry::new("admins", 1));
    d.set("load", Entry::new("iterations", 1));
    match kind {
        Kind::Http => {
            d.set("operations", Entry::new("base.method", "GET"));
            d.set("operations", Entry::new("base.path", "/"));
            d.push(
                "journey",
                vec![],
                vec![Entry::new("name", "init"), Entry::new("steps", vec!["base"])],
            );
        }
        Kind::Scim | Kind::Ldap => {
            d.push(
                "journey",
                vec![],
                vec![Entry::new("name", "init"), Entry::new("steps", vec!["create_user"])],
            );
        }
    }
    let text = d.render();
    Ok(Workload::parse(
        Path::new("the target given"),
        &text,
        &Overrides::default(),
    )?)
}

/// The file's opening comment: where it came from and how to run it.
fn header(opts: &Options, draft: &mut Draft) {
    let mut lines = vec![
        format!("Written by `provbench init` from {}.", crate::redact::url(&opts.url)),
        "Each comment says what the target answered, or which default a team starts from.".to_string(),
        "Check it again later with: provbench init --check THIS_FILE".to_string(),
    ];
    let envs: Vec<&String> = [
        &opts.credentials.token_env,
        &opts.credentials.client_secret_env,
        &opts.credentials.password_env,
    ]
    .into_iter()
    .flatten()
    .collect();
    if !envs.is_empty() {
        let names: Vec<String> = envs.iter().map(|e| format!("${e}")).collect();
        lines.push(format!("Secrets are read from {} when it runs.", names.join(", ")));
    }
    lines.push("Run it with: provbench run THIS_FILE".to_string());
    draft.header = lines;
}

/// Marks `entry` as found, equal to what a workload leaving it out implies.
pub fn found_default(entry: Entry, implied: impl Into<toml::Value>) -> Entry {
    entry.found(Found::equal().implied(implied))
}

/// Said on stderr the moment before the write probe writes, so that even a `kill -9` leaves the
/// name of what to look for: the run id the probe's user or entry carries.
fn announce(cx: &Context<'_>, what: &str) {
    crate::redact::eprint(&format!(
        "  write probe: creating {what} (run id {}); if init is killed before it deletes it: provbench cleanup --run-id {} with the target's workload or flags\n",
        cx.run_id, cx.run_id
    ));
}

/// Where `init --out` writes: refuses to overwrite a file unless `force`.
pub fn write_out(out: &PathBuf, text: &str, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        anyhow::bail!(
            "{} exists; choose another --out, or add --force to overwrite it",
            out.display()
        );
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))
}
