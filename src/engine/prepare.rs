//! The first phase: the results folder and the workload as run, the summary written at the start,
//! `run.log`, the target (the embedded service started, or a SCIM target authenticated), the
//! push receiver and the live metrics endpoint; then, once the folder exists, the users and the
//! group the journeys need before the load (each recorded in the ledger as it is created).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use reqwest::Method;

use super::RunOptions;
use super::context::PooledUser;
use super::runlog::RunLog;
use super::shutdown::Shutdown;
use super::target::{self, ResolvedTarget};
use crate::http::HttpClient;
use crate::ledger::{Created, Ledger, RunId};
use crate::metrics::dashboard::{self, Dashboard};
use crate::metrics::exposition::{self, Exposition};
use crate::probes::push::PushHub;
use crate::results::{LoadInfo, RunOutcome, SCHEMA_VERSION, Summary, TargetInfo};
use crate::workload::template::Vars;
use crate::workload::{Step, Workload};

/// A run that is set up: what every later phase reads.
pub struct Prepared {
    pub workload: Arc<Workload>,
    pub run_id: RunId,
    pub dir: PathBuf,
    /// As written at the start (outcome `running`).
    pub summary: Summary,
    pub run_log: Arc<RunLog>,
    pub target: ResolvedTarget,
    pub push: Option<Arc<PushHub>>,
    pub exposition: Option<Exposition>,
    /// The live page's data, when `--dashboard` is on.
    pub dashboard: Option<Dashboard>,
    /// Everything the run creates, recorded as it goes, so cleanup finds it whatever fails.
    pub ledger: Ledger,
}

/// What the journeys need before the load starts.
pub struct Staged {
    pub pool: Vec<PooledUser>,
    pub shared_group: Option<String>,
    /// `[users] roles = "groups"`: each role's group id, by role.
    pub role_groups: std::collections::HashMap<String, String>,
}

fn default_dir(workload: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("results").join(format!("{stamp}Z-{workload}"))
}

/// Opens the run: files, target and services. Nothing is created on the target yet.
pub async fn open(opts: &RunOptions, shutdown: &Shutdown) -> anyhow::Result<Prepared> {
    let workload = Arc::new(opts.workload.clone());
    let run_id = opts.run_id.clone().unwrap_or_else(RunId::generate);
    let dir = opts.out.clone().unwrap_or_else(|| default_dir(&workload.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the results folder {}", dir.display()))?;
    std::fs::write(
        dir.join("workload.toml"),
        crate::redact::output(&workload.effective_text),
    )
    .context("cannot copy the workload into the results")?;
    let push = match workload
        .probes
        .as_ref()
        .and_then(|p| p.push.as_ref().map(|push| (push, p.max_pending)))
    {
        Some((push, capacity)) => Some(PushHub::start(push, capacity, shutdown.services.clone()).await?),
        None => None,
    };
    let target = target::resolve(&workload, shutdown.services.clone(), push.as_ref().map(|p| p.url())).await?;
    tracing::info!(run_id = %run_id, target_url = %target.url, load = %workload.load_summary(), "run starting");
    super::shutdown::set_cleanup_hint(format!(
        "provbench cleanup --run-id {run_id} {}",
        workload.path.display()
    ));
    let summary = starting_summary(&workload, &run_id, &target, opts);
    summary.write(&dir)?;
    let run_log = Arc::new(RunLog::open(&dir)?);
    run_log.event(
        "start",
        serde_json::json!({"run_id": run_id.as_str(), "workload": workload.name, "target": target.url, "load": workload.load_summary()}),
    );
    let exposition = match &opts.metrics_listen {
        Some(listen) => {
            let e = Exposition::default();
            let addr = exposition::serve(listen, e.clone(), shutdown.services.clone()).await?;
            tracing::info!(%addr, "serving live metrics at /metrics");
            Some(e)
        }
        None => None,
    };
    let dashboard = match &opts.dashboard {
        Some(listen) => {
            let d = Dashboard::default();
            let addr = dashboard::serve(listen, d.clone(), shutdown.services.clone()).await?;
            tracing::info!(url = %format!("http://{addr}/"), "live dashboard");
            Some(d)
        }
        None => None,
    };
    Ok(Prepared {
        dashboard,
        workload,
        ledger: Ledger::new(run_id.clone()),
        run_id,
        dir,
        summary,
        run_log,
        target,
        push,
        exposition,
    })
}

fn starting_summary(workload: &Workload, run_id: &RunId, target: &ResolvedTarget, opts: &RunOptions) -> Summary {
    Summary {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        workload: workload.name.clone(),
        description: workload.description.clone(),
        started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        ended_at: None,
        outcome: RunOutcome::Running,
        stop_reason: None,
        target: TargetInfo {
            kind: target.kind.into(),
            url: target.url.clone(),
        },
        load: LoadInfo {
            model: workload.load.model().into(),
            description: workload.load_summary(),
            admins: workload.load.admins(),
            ..Default::default()
        },
        shard: workload.shard.map(|s| format!("{}/{}", s.index, s.count)),
        overrides: workload.overrides.clone(),
        strict: opts.strict,
        journeys: Vec::new(),
        metrics: Vec::new(),
        declared_thresholds: workload.thresholds.iter().map(|t| t.declared()).collect(),
        thresholds: Vec::new(),
        checks: Vec::new(),
        probes: None,
        cleanup: None,
        failures: Vec::new(),
        notes: Vec::new(),
    }
}

/// Creates `[users] prepopulate` users and the shared group (marked, in the ledger), and adds
/// the feeder's users to the pool.
pub async fn stage(p: &Prepared, shutdown: &Shutdown) -> anyhow::Result<Staged> {
    let (workload, client) = (&p.workload, &p.target.client);
    if let (Some(dir), crate::workload::Target::Ldap(t)) = (&p.target.directory, &workload.target) {
        return stage_directory(workload, dir, t).await;
    }
    check_required_attributes(workload, client).await?;
    let mut pool: Vec<PooledUser> = workload
        .users
        .feeder
        .iter()
        .map(|(name, id)| PooledUser {
            id: id.clone(),
            user_name: name.clone(),
        })
        .collect();
    for i in 0..workload.users.prepopulate {
        anyhow::ensure!(
            !shutdown.load.is_cancelled(),
            "interrupted while prepopulating ({i} of {} users created)",
            workload.users.prepopulate
        );
        // Sequence numbers from the top of the range keep them apart from the journeys' users.
        let vars = Vars {
            run_id: p.run_id.as_str(),
            seq: u64::MAX / 2 + i as u64,
            admin: 0,
        };
        let body = workload.users.template.render(&vars);
        let (id, name) = tokio::select! {
            created = create(client, "/Users", body, "prepopulating users") => created?,
            _ = shutdown.load.cancelled() => anyhow::bail!("interrupted while prepopulating ({i} of {} users created)", workload.users.prepopulate),
        };
        let owned = p.ledger.record(Created::User {
            id: id.clone(),
            user_name: name.clone(),
        });
        anyhow::ensure!(
            owned,
            "prepopulating users: the target answered a create with `{name}`, which does not carry the run's marker"
        );
        pool.push(PooledUser {
            id: Some(id),
            user_name: name,
        });
    }
    let shared_group = if needs_shared_group(workload) {
        let vars = Vars {
            run_id: p.run_id.as_str(),
            seq: u64::MAX / 4,
            admin: 0,
        };
        let body = workload.users.group_template.render(&vars);
        let (id, name) = create(client, "/Groups", body, "creating the shared group").await?;
        let owned = p.ledger.record(Created::Group {
            id: id.clone(),
            display_name: name.clone(),
        });
        anyhow::ensure!(
            owned,
            "creating the shared group: the target answered with `{name}`, which does not carry the run's marker"
        );
        Some(id)
    } else {
        None
    };
    let role_groups = role_groups(workload, client).await?;
    Ok(Staged {
        pool,
        shared_group,
        role_groups,
    })
}

/// An ldap target: with `roles = "groups"`, the DN of the existing group of each role the
/// journeys assign (a role without its group fails the run before any load).
async fn stage_directory(
    workload: &Workload,
    dir: &crate::ldap::Directory,
    t: &crate::workload::directory::LdapTarget,
) -> anyhow::Result<Staged> {
    let mut role_groups = std::collections::HashMap::new();
    if t.roles == crate::workload::directory::LdapRoles::Groups {
        for role in assigned_roles(workload) {
            let dn = t.group_dn(&role);
            let found = dir
                .search(&dn, crate::ldap::Scope::Base, "(objectClass=*)", &["1.1"], None)
                .await
                .map_err(|e| anyhow::anyhow!("looking up the group of role `{role}` ({dn}): {e}"))?;
            anyhow::ensure!(
                !found.is_empty(),
                "role `{role}`: no group {dn} (roles = \"groups\" uses existing groups, named cn=ROLE under the groups' base_dn; provbench never creates or deletes them)"
            );
            role_groups.insert(role, dn);
        }
    }
    Ok(Staged {
        pool: Vec::new(),
        shared_group: None,
        role_groups,
    })
}

/// Every role the journeys assign or remove, once each.
fn assigned_roles(workload: &Workload) -> std::collections::BTreeSet<String> {
    workload
        .journeys
        .iter()
        .flat_map(|j| &j.steps)
        .filter_map(|s| match s {
            Step::AssignRole(r) | Step::RemoveRole(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// With `[users] roles = "groups"`, the id of the existing group named after each role the
/// journeys assign: a role without its group fails the run before any load (provbench never
/// creates or deletes a group it did not mark).
async fn role_groups(
    workload: &Workload,
    client: &HttpClient,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut found = std::collections::HashMap::new();
    if workload.users.dialect.roles != crate::workload::dialect::Roles::Groups {
        return Ok(found);
    }
    for role in assigned_roles(workload) {
        if found.contains_key(&role) {
            continue;
        }
        let what = format!("[users] roles = \"groups\": finding the group `{role}`");
        let filter = crate::http::client::encode_query(&format!("displayName eq {}", serde_json::to_string(&role)?));
        let reply = client
            .call(Method::GET, &format!("/Groups?filter={filter}"), None)
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?
            .expect(&[200])
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&reply.body).with_context(|| format!("{what}: answer is not JSON"))?;
        let id = v["Resources"]
            .as_array()
            .and_then(|list| list.iter().find(|g| g["displayName"].as_str() == Some(role.as_str())))
            .and_then(|g| g["id"].as_str())
            .with_context(|| {
                format!(
                    "{what}: the target has no group with that displayName (create it, or assign roles by attribute)"
                )
            })?;
        found.insert(role, id.to_string());
    }
    Ok(found)
}

/// Fails when the target's `/Schemas` marks a user attribute required that the user template
/// lacks: every create would be refused. Targets that publish no schema are not checked.
pub async fn check_required_attributes(workload: &Workload, client: &HttpClient) -> anyhow::Result<()> {
    let creates = workload
        .journeys
        .iter()
        .flat_map(|j| &j.steps)
        .any(|s| *s == Step::CreateUser);
    if !(creates || workload.users.prepopulate > 0) {
        return Ok(());
    }
    let Some(required) = crate::http::schemas::required_user_attributes(client)
        .await
        .map_err(|e| anyhow::anyhow!("reading the target's /Schemas: {e}"))?
    else {
        tracing::info!("the target publishes no User schema: required attributes not checked");
        return Ok(());
    };
    let vars = Vars {
        run_id: "pb-00000000",
        seq: 1,
        admin: 0,
    };
    let body: serde_json::Value = serde_json::from_str(&workload.users.template.render(&vars)).unwrap_or_default();
    let missing = crate::http::schemas::missing(&body, &required);
    anyhow::ensure!(
        missing.is_empty(),
        "{}: the target's /Schemas marks {} required for users, and the [users] template has no {}: every create would be refused (add them to the template)",
        workload.path.display(),
        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
        if missing.len() == 1 {
            "such attribute"
        } else {
            "such attributes"
        },
    );
    Ok(())
}

/// POSTs `body` and returns the created resource's id and name (`userName` or `displayName`)
/// as the target answered them.
async fn create(client: &HttpClient, path: &str, body: String, what: &str) -> anyhow::Result<(String, String)> {
    let reply = client
        .call(Method::POST, path, Some(body.into()))
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?
        .expect(&[200, 201])
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&reply.body).with_context(|| format!("{what}: answer is not JSON"))?;
    let id = v["id"]
        .as_str()
        .with_context(|| format!("{what}: the created resource has no id"))?;
    let name = v["userName"].as_str().or(v["displayName"].as_str()).unwrap_or_default();
    Ok((id.to_string(), name.to_string()))
}

/// A journey adds members before (or without) creating a group of its own.
fn needs_shared_group(workload: &Workload) -> bool {
    workload.journeys.iter().any(|j| {
        let first_group = j
            .steps
            .iter()
            .position(|s| *s == Step::CreateGroup)
            .unwrap_or(usize::MAX);
        j.steps
            .iter()
            .position(|s| matches!(s, Step::AddToGroup | Step::RemoveFromGroup))
            .is_some_and(|p| p < first_group)
    })
}
