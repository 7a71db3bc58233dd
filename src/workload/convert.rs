//! Converting the wire form into the domain types: every check a workload must pass, each error
//! pointing at its file, line and key.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::schedule::{Schedule, Stage, parse_rate};
use super::template::Template;
use super::wire::{AuthWire, LoadWire, TargetWire, UsersWire, WorkloadWire};
use super::*;

/// A duration no longer than `max` (see [`limits`]).
fn duration(src: &Source, s: &Spanned<String>, key: &str, max: Duration) -> Result<Duration, WorkloadError> {
    let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
        src.error(
            Some(s.span()),
            format!("`{key}`: `{}` is not a duration ({e}); e.g. `30s`, `2m`", s.get_ref()),
        )
    })?;
    limits::duration(key, d, max).map_err(|m| src.error(Some(s.span()), m))
}

/// A rate no higher than [`limits::RATE`].
fn rate(src: &Source, text: &str, span: std::ops::Range<usize>, key: &str) -> Result<f64, WorkloadError> {
    parse_rate(text)
        .and_then(|r| limits::rate(key, r))
        .map_err(|m| src.error(Some(span), m))
}

pub(super) fn convert(src: &Source, w: WorkloadWire) -> Result<Workload, WorkloadError> {
    let name = w.name.get_ref().trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(src.error(
            Some(w.name.span()),
            "`name` must be letters, digits, `-`, `_` or `.` (it names the results folder)",
        ));
    }
    let users_wire = w.users.unwrap_or_default();
    let (target, http) = convert_target(src, w.target.unwrap_or_default(), w.directory, &users_wire)?;
    let load = convert_load(src, w.load)?;
    let operations = operations::convert(w.operations, &users_wire.vars, &|n| {
        crate::vocab::Op::parse(n).is_some()
    })
    .map_err(|(span, m)| src.error(span, m))?;
    let journeys = convert_journeys(src, w.journeys, &operations)?;
    let users = convert_users(src, users_wire)?;
    check_journeys_have_users(src, &journeys, &users)?;
    check_custom_steps(src, &journeys, &operations, &users)?;
    if let Target::Scim { scim: false, .. } = &target {
        check_http_target(src, &journeys, &users, w.probes.is_some() || w.checks.is_some())?;
    }
    if let Target::Ldap(_) = &target {
        check_ldap_target(src, &journeys, &users)?;
    }
    let embedded = match &target {
        Target::Embedded { reference, .. } => Some(reference.as_ref()),
        Target::Scim { .. } | Target::Ldap(_) => None,
    };
    let embedded_services: Option<Vec<String>> = embedded.map(|c| c.services.iter().map(|s| s.name.clone()).collect());
    // Errors inside these sections point at the section's first line.
    let (checks_span, checks_wire) = w.checks.map(|c| (c.span(), c.into_inner())).unzip();
    let checks = checks::Checks::from_wire(
        checks_wire,
        embedded.map(|c| (embedded_services.clone().unwrap_or_default(), c.roles.clone())),
        src.file.parent().unwrap_or(Path::new(".")),
    )
    .map_err(|m| src.error(checks_span, m))?;
    let (probes_span, probes_wire) = w.probes.map(|p| (p.span(), p.into_inner())).unzip();
    let probes = probes::Probes::from_wire(
        probes_wire,
        embedded_services.as_deref(),
        src.file.parent().unwrap_or(Path::new(".")),
    )
    .map_err(|m| src.error(probes_span, m))?;
    let thresholds = convert_thresholds(src, w.thresholds.as_ref())?;
    if let Some(c) = &checks
        && c.kinds.iter().any(|k| k.logs_in())
        && users.password.is_none()
    {
        return Err(src.error(
            None,
            "the login, permissions and revocation checks log in as the created users: set [users] password",
        ));
    }
    let workload = Workload {
        checks,
        operations,
        thresholds,
        probes,
        name,
        description: w.description,
        target,
        http,
        load,
        journeys,
        users,
        effective_text: String::new(),
        overrides: Vec::new(),
        shard: None,
        path: src.file.to_path_buf(),
    };
    let vocabulary = workload.vocabulary();
    for t in &workload.thresholds {
        let span = w.thresholds.as_ref().map(|l| l.span());
        vocabulary.check(t).map_err(|m| src.error(span, m))?;
    }
    Ok(workload)
}

fn convert_journeys(
    src: &Source,
    wires: Vec<wire::JourneyWire>,
    custom: &[operations::Operation],
) -> Result<Vec<Journey>, WorkloadError> {
    let custom: Vec<&str> = custom.iter().map(|o| o.name.as_str()).collect();
    if wires.is_empty() {
        return Err(src.error(
            None,
            "the workload has no [[journey]]: add at least one, e.g. steps = [\"create_user\", \"delete_user\"]",
        ));
    }
    let mut journeys = Vec::new();
    let mut names = std::collections::HashSet::new();
    for j in wires {
        if !names.insert(j.name.get_ref().clone()) {
            return Err(src.error(
                Some(j.name.span()),
                format!("journey `{}` is defined twice", j.name.get_ref()),
            ));
        }
        let weight = match &j.weight {
            Some(w) => {
                limits::count("weight", *w.get_ref(), 1, limits::WEIGHT).map_err(|m| src.error(Some(w.span()), m))?
            }
            None => 1,
        };
        if j.steps.get_ref().is_empty() {
            return Err(src.error(Some(j.steps.span()), "`steps` is empty"));
        }
        let steps = j
            .steps
            .get_ref()
            .iter()
            .map(|s| Step::parse_with(s.get_ref(), &custom).map_err(|m| src.error(Some(s.span()), m)))
            .collect::<Result<Vec<_>, _>>()?;
        journeys.push(Journey {
            name: j.name.get_ref().clone(),
            weight,
            steps,
        });
    }
    Ok(journeys)
}

/// A journey may change only users it created, and may look up others only when there are some.
fn check_journeys_have_users(src: &Source, journeys: &[Journey], users: &Users) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(step) = step::mutates_borrowed_user(&j.steps) {
            return Err(src.error(
                None,
                format!("journey `{}` would `{}` a user it did not create: put `create_user` first (only get_user, find_user and list_users may act on existing users)", j.name, step.name()),
            ));
        }
        if let Some(msg) = step::needs_existing_user(&j.steps)
            && users.prepopulate == 0
            && users.feeder.is_empty()
        {
            return Err(src.error(
                None,
                format!(
                    "journey `{}` {msg}: create a user first, or set [users] prepopulate = N or feeder = \"users.csv\"",
                    j.name
                ),
            ));
        }
    }
    Ok(())
}

/// A custom step may use a runtime value only once the journey can have it: a value an earlier
/// step extracts, or the current user's (`id`, `user_name`) and group's (`group_id`) once an
/// earlier step (or the pool) provides them.
fn check_custom_steps(
    src: &Source,
    journeys: &[Journey],
    ops: &[operations::Operation],
    users: &Users,
) -> Result<(), WorkloadError> {
    let pooled = users.prepopulate > 0 || !users.feeder.is_empty();
    for j in journeys {
        let mut known: Vec<&str> = Vec::new();
        for step in &j.steps {
            match step {
                Step::Custom { index, name } => {
                    let op = &ops[*index];
                    for n in op.runtime_names() {
                        let user_ok = matches!(n, "id" | "user_name") && (pooled || known.contains(&"user"));
                        let group_ok = n == "group_id" && known.contains(&"group");
                        if !(known.contains(&n) || user_ok || group_ok) {
                            return Err(src.error(
                                None,
                                format!("journey `{}`: step `{name}` uses `{{{n}}}` before any step provides it (extract it in an earlier custom step{})", j.name,
                                    if operations::RUNTIME.contains(&n) { ", or create the user or group first" } else { "" }),
                            ));
                        }
                    }
                    known.extend(op.extract.iter().map(|(v, _)| v.as_str()));
                }
                Step::CreateUser => known.push("user"),
                Step::CreateGroup => known.push("group"),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A target of kind `http` speaks no SCIM: only custom steps, nothing that reads SCIM.
fn check_http_target(src: &Source, journeys: &[Journey], users: &Users, observed: bool) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(s) = j.steps.iter().find(|s| s.builtin().is_some()) {
            return Err(src.error(
                None,
                format!("journey `{}`: `{}` is a SCIM step, and a target of kind \"http\" runs custom operations only ([operations.NAME]); use kind = \"scim\" for a SCIM service", j.name, s.name()),
            ));
        }
    }
    if users.prepopulate > 0 || !users.feeder.is_empty() {
        return Err(src.error(
            None,
            "[users] prepopulate and feeder create or look up SCIM users: not for a target of kind \"http\"",
        ));
    }
    if observed {
        return Err(src.error(
            None,
            "[probes] and [checks] read SCIM users: not yet for a target of kind \"http\"",
        ));
    }
    Ok(())
}

fn convert_thresholds(
    src: &Source,
    list: Option<&Spanned<Vec<wire::ThresholdWire>>>,
) -> Result<Vec<crate::thresholds::ThresholdSpec>, WorkloadError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    let mut thresholds = Vec::new();
    for t in list.get_ref() {
        let (expr, abort_on_fail, delay) = match t {
            wire::ThresholdWire::Plain(e) => (e, false, None),
            wire::ThresholdWire::Full {
                expr,
                abort_on_fail,
                delay,
            } => (expr, *abort_on_fail, delay.as_deref()),
        };
        let mut spec =
            crate::thresholds::ThresholdSpec::parse(expr).map_err(|e| src.error(Some(list.span()), e.to_string()))?;
        spec.abort_on_fail = abort_on_fail;
        if let Some(d) = delay {
            spec.delay = humantime::parse_duration(d.trim())
                .map_err(|e| src.error(Some(list.span()), format!("threshold `{expr}`: delay `{d}`: {e}")))?;
        }
        thresholds.push(spec);
    }
    Ok(thresholds)
}

/// A target of kind `ldap` runs the built-in steps as LDAP operations; custom operations,
/// prepopulated users and a feeder are SCIM-only so far.
fn check_ldap_target(src: &Source, journeys: &[Journey], users: &Users) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(s) = j.steps.iter().find(|s| s.builtin().is_none()) {
            return Err(src.error(
                None,
                format!("journey `{}`: `{}` is a custom HTTP operation; a target of kind \"ldap\" runs the built-in steps (create_user, modify_user, disable_user, …) as LDAP operations", j.name, s.name()),
            ));
        }
    }
    if users.prepopulate > 0 || !users.feeder.is_empty() {
        return Err(src.error(
            None,
            "[users] prepopulate and feeder are not yet supported for a target of kind \"ldap\": journeys create the entries they use",
        ));
    }
    Ok(())
}

/// `[target] kind = "ldap"` with `[directory]`.
fn ldap_target(
    src: &Source,
    t: &TargetWire,
    directory: Option<Spanned<super::directory::DirectoryWire>>,
    users: &UsersWire,
    timeout: Duration,
    connections: Option<usize>,
) -> Result<Target, WorkloadError> {
    let kind_span = t.kind.as_ref().map(|k| k.span());
    let scim_only = [
        ("base_url", t.base_url.is_some()),
        ("auth", t.auth.is_some()),
        ("profile", t.profile.is_some()),
        ("client_cert", t.client_cert.is_some()),
        ("headers", !t.headers.is_empty()),
    ];
    if let Some((key, _)) = scim_only.iter().find(|(_, given)| *given) {
        return Err(src.error(
            kind_span,
            format!("target.{key} belongs to HTTP targets; an ldap target takes url, bind_dn, password_env or password_file, base_dn, starttls, ca_file"),
        ));
    }
    let users_scim_only = [
        ("template", users.template.is_some()),
        ("patch", users.patch.is_some()),
        ("modify", users.modify.is_some()),
        ("roles", users.roles.is_some()),
    ];
    if let Some((key, _)) = users_scim_only.iter().find(|(_, given)| *given) {
        return Err(src.error(
            None,
            format!(
                "users.{key} shapes SCIM requests; for an ldap target say it in [directory] (attributes, modify, roles)"
            ),
        ));
    }
    let dir = src.file.parent().unwrap_or(Path::new("."));
    let url_span = t.url.as_ref().map(|u| u.span()).or(kind_span.clone());
    let endpoint = super::directory::endpoint(
        super::directory::EndpointWire {
            url: t.url.as_ref().map(|u| u.get_ref().as_str()),
            starttls: t.starttls,
            ca_file: t.ca_file.as_ref().map(|c| c.get_ref().as_str()),
            bind_dn: t.bind_dn.as_deref(),
            password_env: t.password_env.as_deref(),
            password_file: t.password_file.as_deref(),
            timeout,
        },
        "target",
        dir,
    )
    .map_err(|m| src.error(url_span.clone(), m))?;
    let Some(base_dn) = &t.base_dn else {
        return Err(src.error(
            kind_span,
            "an ldap target needs `base_dn`: where user entries are created",
        ));
    };
    let (span, wire) = directory.map(|d| (Some(d.span()), d.into_inner())).unwrap_or_default();
    let target = super::directory::LdapTarget::from_wire(
        endpoint,
        base_dn.get_ref().trim().to_string(),
        connections.unwrap_or(4),
        wire,
        &users.vars,
        users.password.as_deref(),
        &marker_stands_alone,
    )
    .map_err(|m| src.error(span, m))?;
    Ok(Target::Ldap(Box::new(target)))
}

fn convert_target(
    src: &Source,
    t: TargetWire,
    directory: Option<Spanned<super::directory::DirectoryWire>>,
    users: &UsersWire,
) -> Result<(Target, HttpSettings), WorkloadError> {
    let ldap_only = [
        ("url", t.url.is_some()),
        ("bind_dn", t.bind_dn.is_some()),
        ("base_dn", t.base_dn.is_some()),
        ("starttls", t.starttls.is_some()),
        ("password_env", t.password_env.is_some()),
        ("password_file", t.password_file.is_some()),
    ];
    let is_ldap = t.kind.as_ref().is_some_and(|k| k.get_ref() == "ldap");
    if !is_ldap {
        if let Some((key, _)) = ldap_only.iter().find(|(_, given)| *given) {
            return Err(src.error(
                t.kind.as_ref().map(|k| k.span()),
                format!("target.{key} belongs to kind = \"ldap\""),
            ));
        }
        if let Some(d) = &directory {
            return Err(src.error(
                Some(d.span()),
                "[directory] shapes the entries of a target of kind \"ldap\"",
            ));
        }
    }
    let kind = t
        .kind
        .as_ref()
        .map(|k| k.get_ref().as_str())
        .unwrap_or(if t.base_url.is_some() { "scim" } else { "embedded" });
    let http = HttpSettings {
        timeout: t
            .timeout
            .as_ref()
            .map(|d| duration(src, d, "target.timeout", limits::WAIT))
            .transpose()?
            .unwrap_or(Duration::from_secs(30)),
        honor_retry_after: t.honor_retry_after.unwrap_or(true),
        max_retries: match &t.max_retries {
            Some(n) => limits::count("max_retries", *n.get_ref(), 0, limits::RETRIES)
                .map_err(|m| src.error(Some(n.span()), m))?,
            None => 3,
        },
        max_connections: match &t.max_connections {
            Some(n) => Some(
                limits::count("max_connections", *n.get_ref(), 0, limits::CONNECTIONS)
                    .map_err(|m| src.error(Some(n.span()), m))?,
            )
            .filter(|n| *n > 0),
            None => None,
        },
        keep_alive: t.keep_alive.unwrap_or(true),
        tls: if is_ldap {
            Default::default()
        } else {
            convert_tls(src, &t)?
        },
        http2: t.http2.unwrap_or(true),
    };
    let target = match kind {
        "ldap" => ldap_target(src, &t, directory, users, http.timeout, http.max_connections)?,
        "embedded" => {
            if let Some(u) = &t.base_url {
                return Err(src.error(
                    Some(u.span()),
                    "`base_url` belongs to kind = \"scim\"; an embedded target has its own address",
                ));
            }
            if !t.headers.is_empty() {
                return Err(src.error(None, "target.headers belong to kind = \"scim\" or \"http\""));
            }
            let profile = t
                .profile
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_else(|| "realistic".into());
            if !crate::reference::config::PROFILES.contains(&profile.as_str()) {
                let span = t.profile.as_ref().map(|p| p.span());
                let hint = error::did_you_mean(&profile, crate::reference::config::PROFILES)
                    .map(|b| format!(": did you mean `{b}`?"))
                    .unwrap_or_else(|| format!(" (known: {})", crate::reference::config::PROFILES.join(", ")));
                return Err(src.error(span, format!("unknown profile `{profile}`{hint}")));
            }
            let file = t.config.map(|c| src.file.parent().unwrap_or(Path::new(".")).join(c));
            let reference = ReferenceConfig::resolve(&profile, file.as_deref(), &t.flaws)
                .map_err(|e| src.error(None, format!("target: {e:#}")))?;
            Target::Embedded {
                profile,
                reference: Box::new(reference),
            }
        }
        "scim" | "http" => {
            let Some(url) = &t.base_url else {
                return Err(src.error(
                    t.kind.as_ref().map(|k| k.span()),
                    format!("a {kind} target needs `base_url` (or --target-url)"),
                ));
            };
            let base = url.get_ref().trim_end_matches('/').to_string();
            // A password in the URL is a secret from here on: no output will show it.
            let _ = crate::redact::url(&base);
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(src.error(
                    Some(url.span()),
                    format!("`base_url` must start with http:// or https://, got `{base}`"),
                ));
            }
            if let Some(p) = &t.profile {
                return Err(src.error(Some(p.span()), "`profile` applies to the embedded target only"));
            }
            let auth = convert_auth(src, t.auth)?;
            let headers = target_headers(src, &t.headers)?;
            Target::Scim {
                base_url: base,
                auth,
                headers,
                scim: kind == "scim",
            }
        }
        other => {
            let span = t.kind.as_ref().map(|k| k.span());
            return Err(src.error(
                span,
                format!("unknown target kind `{other}` (known: embedded, scim, http, ldap)"),
            ));
        }
    };
    Ok((target, http))
}

/// `ca_file`, `client_cert` and `client_key`: files that exist, for an https:// target.
fn convert_tls(src: &Source, t: &TargetWire) -> Result<crate::http::Tls, WorkloadError> {
    let dir = src.file.parent().unwrap_or(Path::new("."));
    let file = |s: &Spanned<String>, key: &str| {
        let path = dir.join(s.get_ref());
        if !path.is_file() {
            return Err(src.error(Some(s.span()), format!("target.{key}: no file {}", path.display())));
        }
        if !t.base_url.as_ref().is_some_and(|u| u.get_ref().starts_with("https://")) {
            return Err(src.error(Some(s.span()), format!("target.{key} needs an https:// base_url")));
        }
        Ok(path)
    };
    let ca_file = t.ca_file.as_ref().map(|s| file(s, "ca_file")).transpose()?;
    let client_identity = match (&t.client_cert, &t.client_key) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((file(c, "client_cert")?, file(k, "client_key")?)),
        (Some(s), None) | (None, Some(s)) => {
            return Err(src.error(Some(s.span()), "give both `client_cert` and `client_key` (PEM files)"));
        }
    };
    Ok(crate::http::Tls {
        ca_file,
        client_identity,
    })
}

/// `[target] headers`: names that are header names, literal values that are header values.
fn target_headers(
    src: &Source,
    headers: &std::collections::BTreeMap<String, downstream::HeaderValue>,
) -> Result<Vec<(String, downstream::HeaderValue)>, WorkloadError> {
    for (k, v) in headers {
        if ::http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(src.error(None, format!("target.headers: `{k}` is not a header name")));
        }
        if let downstream::HeaderValue::Literal(l) = v
            && ::http::HeaderValue::from_str(l).is_err()
        {
            return Err(src.error(
                None,
                format!("target.headers.{k}: the value has characters a header cannot carry"),
            ));
        }
        if ["authorization", "host", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
            return Err(src.error(
                None,
                format!("target.headers: `{k}` is set by provbench (use [target] auth for credentials)"),
            ));
        }
    }
    Ok(headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn convert_auth(src: &Source, auth: Option<AuthWire>) -> Result<Auth, WorkloadError> {
    let auth = match auth {
        None | Some(AuthWire::None) => Auth::None,
        Some(AuthWire::Bearer { token_env, token_file }) => Auth::Bearer {
            source: match (token_env, token_file) {
                (Some(e), None) => Secret::Env(e),
                (None, Some(f)) => Secret::File(src.file.parent().unwrap_or(Path::new(".")).join(f)),
                _ => {
                    return Err(src.error(
                        None,
                        "target.auth bearer: give exactly one of `token_env` or `token_file`",
                    ));
                }
            },
        },
        Some(AuthWire::OAuth2ClientCredentials {
            token_url,
            client_id,
            client_id_env,
            client_secret_env,
            client_secret_file,
            scope,
            audience,
            client_auth,
        }) => {
            let client_id = match (client_id, client_id_env) {
                (Some(id), None) => ClientId::Literal(id),
                (None, Some(env)) => ClientId::Env(env),
                _ => {
                    return Err(src.error(None, "target.auth: give exactly one of `client_id` or `client_id_env`"));
                }
            };
            let client_secret = match (client_secret_env, client_secret_file) {
                (Some(env), None) => Some(Secret::Env(env)),
                (None, Some(file)) => Some(Secret::File(src.file.parent().unwrap_or(Path::new(".")).join(file))),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(src.error(
                        None,
                        "target.auth: give `client_secret_env` or `client_secret_file`, not both",
                    ));
                }
            };
            let client_auth = client_auth
                .as_deref()
                .map(ClientAuth::parse)
                .transpose()
                .map_err(|m| src.error(None, format!("target.auth: {m}")))?
                .unwrap_or_default();
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                audience,
                client_auth,
            }
        }
    };
    Ok(auth)
}

/// A count in `1..=max`.
fn positive(src: &Source, v: &Option<Spanned<usize>>, key: &str, max: usize) -> Result<Option<usize>, WorkloadError> {
    v.as_ref()
        .map(|n| limits::count(key, *n.get_ref(), 1, max).map_err(|m| src.error(Some(n.span()), m)))
        .transpose()
}

fn misplaced(src: &Source, field: &Option<Spanned<String>>, key: &str, model: &str) -> Result<(), WorkloadError> {
    match field {
        Some(f) => Err(src.error(Some(f.span()), format!("`{key}` applies to the {model} model only"))),
        None => Ok(()),
    }
}

fn convert_load(src: &Source, l: LoadWire) -> Result<Load, WorkloadError> {
    let seed = l.seed.unwrap_or(1);
    match l.model.get_ref().as_str() {
        "closed" => convert_closed(src, &l, seed),
        "open" => convert_open(src, &l, seed),
        other => Err(src.error(
            Some(l.model.span()),
            format!("unknown load model `{other}` (known: closed, open)"),
        )),
    }
}

fn convert_closed(src: &Source, l: &LoadWire, seed: u64) -> Result<Load, WorkloadError> {
    misplaced(src, &l.rate, "rate", "open")?;
    misplaced(src, &l.max_lag, "max_lag", "open")?;
    if let Some(s) = &l.stages {
        return Err(src.error(Some(s.span()), "`stages` applies to the open model only"));
    }
    if let Some(m) = &l.max_admins {
        return Err(src.error(
            Some(m.span()),
            "`max_admins` applies to the open model; the closed model uses `admins`",
        ));
    }
    let admins = positive(src, &l.admins, "admins", limits::ADMINS)?.unwrap_or(10);
    let ramp = l
        .ramp
        .as_ref()
        .map(|r| duration(src, r, "ramp", limits::RUN))
        .transpose()?
        .unwrap_or(Duration::ZERO);
    let think_time = l
        .think_time
        .as_ref()
        .map(|t| {
            let text = t.get_ref();
            match text.split_once("..") {
                Some((a, b)) => {
                    let p = |s: &str| {
                        humantime::parse_duration(s.trim())
                            .map_err(|e| format!("`think_time`: {e}"))
                            .and_then(|d| limits::duration("think_time", d, limits::WAIT))
                            .map_err(|m| src.error(Some(t.span()), m))
                    };
                    let (a, b) = (p(a)?, p(b)?);
                    if b < a {
                        return Err(src.error(Some(t.span()), "`think_time`: MAX is below MIN"));
                    }
                    Ok(ThinkTime::Uniform(a, b))
                }
                None => Ok(ThinkTime::Fixed(duration(src, t, "think_time", limits::WAIT)?)),
            }
        })
        .transpose()?;
    let stop = match (
        &l.duration,
        positive(src, &l.iterations, "iterations", limits::ITERATIONS)?,
    ) {
        (Some(d), None) => Stop::Duration(duration(src, d, "duration", limits::RUN)?),
        (None, Some(n)) => Stop::Iterations(n),
        (Some(d), Some(_)) => {
            return Err(src.error(Some(d.span()), "give `duration` or `iterations`, not both"));
        }
        (None, None) => {
            return Err(src.error(
                Some(l.model.span()),
                "a closed-model load needs `duration` or `iterations`",
            ));
        }
    };
    if matches!(stop, Stop::Duration(d) if d.is_zero()) {
        return Err(src.error(l.duration.as_ref().map(|d| d.span()), "`duration` must be positive"));
    }
    Ok(Load::Closed {
        admins,
        ramp,
        think_time,
        stop,
        seed,
    })
}

fn convert_open(src: &Source, l: &LoadWire, seed: u64) -> Result<Load, WorkloadError> {
    misplaced(src, &l.ramp, "ramp", "closed")?;
    misplaced(src, &l.think_time, "think_time", "closed")?;
    if let Some(a) = &l.admins {
        return Err(src.error(
            Some(a.span()),
            "`admins` applies to the closed model; the open model uses `max_admins`",
        ));
    }
    if let Some(i) = &l.iterations {
        return Err(src.error(Some(i.span()), "`iterations` applies to the closed model only"));
    }
    let start_rate = l
        .rate
        .as_ref()
        .map(|r| rate(src, r.get_ref(), r.span(), "rate"))
        .transpose()?;
    let schedule = match (&l.stages, &l.duration) {
        (Some(stages), None) => {
            let mut current = start_rate.unwrap_or(0.0);
            let mut out = Vec::new();
            for s in stages.get_ref() {
                let bad = |m: String| src.error(Some(stages.span()), m);
                let parse_d = |s: &str| {
                    humantime::parse_duration(s.trim())
                        .map_err(|e| format!("stage duration `{s}`: {e}"))
                        .and_then(|d| limits::duration("a stage", d, limits::RUN))
                        .map_err(bad)
                };
                match (&s.to, &s.over, &s.hold) {
                    (Some(to), Some(over), None) => {
                        let to = parse_rate(to)
                            .and_then(|r| limits::rate("a stage's `to`", r))
                            .map_err(bad)?;
                        out.push(Stage {
                            from_rate: current,
                            to_rate: to,
                            duration: parse_d(over)?,
                        });
                        current = to;
                    }
                    (None, None, Some(hold)) => out.push(Stage {
                        from_rate: current,
                        to_rate: current,
                        duration: parse_d(hold)?,
                    }),
                    _ => {
                        return Err(bad(
                            "each stage is either { to = \"500/s\", over = \"2m\" } or { hold = \"5m\" }".into(),
                        ));
                    }
                }
            }
            let total: Duration = out.iter().map(|s| s.duration).sum();
            limits::duration("the stages together", total, limits::RUN)
                .map_err(|m| src.error(Some(stages.span()), m))?;
            Schedule::new(out).map_err(|m| src.error(Some(stages.span()), m))?
        }
        (None, Some(d)) => {
            let Some(rate) = start_rate else {
                return Err(src.error(
                    Some(l.model.span()),
                    "an open-model load needs `rate` (e.g. \"200/s\") with `duration`, or `stages`",
                ));
            };
            Schedule::constant(rate, duration(src, d, "duration", limits::RUN)?)
                .map_err(|m| src.error(Some(d.span()), m))?
        }
        (Some(s), Some(_)) => {
            return Err(src.error(
                Some(s.span()),
                "give `duration` or `stages`, not both (stages set their own durations)",
            ));
        }
        (None, None) => {
            return Err(src.error(Some(l.model.span()), "an open-model load needs `duration` or `stages`"));
        }
    };
    let max_admins = positive(src, &l.max_admins, "max_admins", limits::ADMINS)?.unwrap_or(100);
    let max_lag = l
        .max_lag
        .as_ref()
        .map(|m| duration(src, m, "max_lag", limits::WAIT))
        .transpose()?
        .unwrap_or(Duration::from_secs(10));
    Ok(Load::Open {
        schedule,
        max_admins,
        max_lag,
        seed,
    })
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn convert_users(src: &Source, u: UsersWire) -> Result<Users, WorkloadError> {
    let compile = |v: Value, span: Option<std::ops::Range<usize>>, key: &str| {
        if !v.is_object() {
            return Err(src.error(
                span.clone(),
                format!("`users.{key}` must be a table (the JSON body to send)"),
            ));
        }
        Template::compile(&v, &u.vars).map_err(|m| src.error(span, format!("users.{key}: {m}")))
    };
    let (template_value, span) = match &u.template {
        Some(t) => (to_json(t.get_ref()), Some(t.span())),
        None => (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "{run_id}-{seq}@example.test",
                   "externalId": "{run_id}-{seq}", "name": {"givenName": "{first}", "familyName": "{last}", "formatted": "{first} {last}"},
                   "displayName": "{first} {last}", "emails": [{"value": "{run_id}-{seq}@example.test", "type": "work", "primary": true}],
                   "active": true}),
            None,
        ),
    };
    let mut template_value = template_value;
    let user_name = template_value
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !user_name.contains("{run_id}") || !user_name.contains("{seq}") {
        return Err(src.error(
            span.clone(),
            "users.template: `userName` must contain `{run_id}` and `{seq}` (the run's marker, so cleanup finds every user it created and nothing else)",
        ));
    }
    if !marker_stands_alone(&user_name) {
        return Err(src.error(
            span.clone(),
            format!("users.template: in `userName` = \"{user_name}\", `{{run_id}}` must stand apart from letters, digits and other placeholders (e.g. \"{{run_id}}-{{seq}}@example.test\"): cleanup matches the run id as a whole token"),
        ));
    }
    if let Some(ext) = template_value.get("externalId").and_then(Value::as_str)
        && !ext.contains("{run_id}")
    {
        return Err(src.error(
            span.clone(),
            "users.template: `externalId` must contain `{run_id}` (the run's marker)",
        ));
    }
    let password = match &u.password {
        Some(p) => {
            template_value["password"] = Value::String(p.clone());
            Some(
                Template::compile(&Value::String(p.clone()), &u.vars)
                    .map_err(|m| src.error(None, format!("users.password: {m}")))?,
            )
        }
        None => None,
    };
    let user_name = Template::compile(&Value::String(user_name), &u.vars)
        .map_err(|m| src.error(span.clone(), format!("users.template: {m}")))?;
    let template = compile(template_value, span, "template")?;
    let group_template = match &u.group_template {
        Some(t) => {
            let value = to_json(t.get_ref());
            let name = value.get("displayName").and_then(Value::as_str).unwrap_or_default();
            if !name.contains("{run_id}") || !marker_stands_alone(name) {
                return Err(src.error(
                    Some(t.span()),
                    "users.group_template: `displayName` must carry `{run_id}` apart from letters, digits and other placeholders (e.g. \"{run_id}-group-{seq}\"), so cleanup finds the groups the run created",
                ));
            }
            compile(value, Some(t.span()), "group_template")?
        }
        None => compile(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "{run_id}-group-{seq}", "externalId": "{run_id}-group-{seq}"}),
            None,
            "group_template",
        )?,
    };
    let feeder = match &u.feeder {
        None => Vec::new(),
        Some(path) => {
            let full = src.file.parent().unwrap_or(Path::new(".")).join(path);
            read_feeder(&full).map_err(|m| src.error(None, format!("users.feeder `{}`: {m}", full.display())))?
        }
    };
    let span = u
        .patch
        .as_ref()
        .map(|s| s.span())
        .or(u.modify.as_ref().map(|s| s.span()))
        .or(u.roles.as_ref().map(|s| s.span()));
    let dialect = dialect::convert(
        u.patch.as_ref().map(|s| s.get_ref().as_str()),
        u.modify.as_ref().map(|s| s.get_ref()),
        u.roles.as_ref().map(|s| s.get_ref().as_str()),
        &u.vars,
    )
    .map_err(|m| {
        let at = |key: &str, s: &Option<Spanned<_>>| {
            m.starts_with(key)
                .then(|| s.as_ref().map(|s: &Spanned<_>| s.span()))
                .flatten()
        };
        let span = at("users.patch", &u.patch).or(at("users.roles", &u.roles)).or(span);
        src.error(span, m)
    })?;
    Ok(Users {
        dialect,
        template,
        user_name,
        password,
        group_template,
        prepopulate: match &u.prepopulate {
            Some(n) => limits::count("prepopulate", *n.get_ref(), 0, limits::PREPOPULATE)
                .map_err(|m| src.error(Some(n.span()), m))?,
            None => 0,
        },
        feeder,
    })
}

/// Every `{run_id}` in `template` is bounded by characters that cannot extend the run id as a
/// token once rendered: not a letter or digit, and not another placeholder.
fn marker_stands_alone(template: &str) -> bool {
    let bytes = template.as_bytes();
    let apart =
        |b: Option<&u8>, placeholder_edge: u8| b.is_none_or(|b| !b.is_ascii_alphanumeric() && *b != placeholder_edge);
    template.match_indices("{run_id}").all(|(at, m)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        apart(before, b'}') && apart(bytes.get(at + m.len()), b'{')
    })
}

/// Reads a CSV with a `userName` column (and optionally `id`).
fn read_feeder(path: &Path) -> Result<Vec<(String, Option<String>)>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let user_col = col("userName").ok_or("no `userName` column")?;
    let id_col = col("id");
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", i + 2))?;
        let name = rec.get(user_col).unwrap_or_default().trim().to_string();
        if name.is_empty() {
            return Err(format!("row {}: empty userName", i + 2));
        }
        out.push((
            name,
            id_col
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        ));
    }
    if out.is_empty() {
        return Err("no users in the file".into());
    }
    Ok(out)
}
