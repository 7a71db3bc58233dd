//! Setting a SCIM target up before the load: the user template checked against the target's
//! `/Schemas`, `[users] prepopulate` users and the shared group created (each marked, and in the
//! ledger as it is created), the feeder's users pooled, and the existing group of each role
//! found (`roles = "groups"`).

use anyhow::Context as _;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use super::schemas;
use crate::engine::state::{PooledUser, Staged, assigned_roles};
use crate::engine::targets::requests::shows_identity_of;
use crate::http::HttpClient;
use crate::ledger::{Created, Ledger, RunId};
use crate::workload::template::Vars;
use crate::workload::{Step, Workload};

/// Creates `[users] prepopulate` users and the shared group (marked, in the ledger), and adds
/// the feeder's users to the pool.
pub async fn stage(
    client: &HttpClient,
    workload: &Workload,
    run_id: &RunId,
    ledger: &Ledger,
    stop: &CancellationToken,
) -> anyhow::Result<Staged> {
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
            !stop.is_cancelled(),
            "interrupted while prepopulating ({i} of {} users created)",
            workload.users.prepopulate
        );
        // Sequence numbers from the top of the range keep them apart from the journeys' users.
        let vars = Vars {
            run_id: run_id.as_str(),
            seq: u64::MAX / 2 + i as u64,
            admin: 0,
        };
        let body = workload.users.template.render(&vars);
        ledger.create_sent();
        let (id, name) = tokio::select! {
            created = create(client, "/Users", body, "prepopulating users") => created?,
            _ = stop.cancelled() => anyhow::bail!("interrupted while prepopulating ({i} of {} users created)", workload.users.prepopulate),
        };
        let owned = ledger.record_created(Created::User {
            id: id.clone(),
            user_name: name.clone(),
        });
        anyhow::ensure!(
            owned,
            "prepopulating users: the target answered a create with `{name}`, which does not carry the run's marker"
        );
        read_back(client, "Users", &id, &name, "prepopulating users").await?;
        pool.push(PooledUser {
            id: Some(id),
            user_name: name,
        });
    }
    let shared_group = if needs_shared_group(workload) {
        let vars = Vars {
            run_id: run_id.as_str(),
            seq: u64::MAX / 4,
            admin: 0,
        };
        let body = workload.users.group_template.render(&vars);
        ledger.create_sent();
        let (id, name) = create(client, "/Groups", body, "creating the shared group").await?;
        let owned = ledger.record_created(Created::Group {
            id: id.clone(),
            display_name: name.clone(),
        });
        anyhow::ensure!(
            owned,
            "creating the shared group: the target answered with `{name}`, which does not carry the run's marker"
        );
        read_back(client, "Groups", &id, &name, "creating the shared group").await?;
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
        // The listing's word is read back as the journeys' gate reads what they create: the
        // run adds its users to this group.
        read_back(client, "Groups", id, &role, &what).await?;
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
    let Some(required) = schemas::required_user_attributes(client)
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
    let missing = schemas::missing(&body, &required);
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

/// POSTs `body` and returns the created resource's id and identity (a user's `userName`, a
/// group's `displayName`) as the target answered them.
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
    let name = v[identity_attribute(path.trim_start_matches('/'))]
        .as_str()
        .unwrap_or_default();
    Ok((id.to_string(), name.to_string()))
}

/// What set-up created or found is used only once a GET of the id the target answered for it
/// shows the identity it was created or found with (`requests::shows_identity_of`, the rule of the
/// journeys' gate `super::own` and of cleanup): journeys make members of the shared group and
/// of each role's group, and custom steps may name pooled users.
async fn read_back(client: &HttpClient, collection: &str, id: &str, identity: &str, what: &str) -> anyhow::Result<()> {
    let path = crate::http::url::member(collection, id)
        .map_err(|why| anyhow::anyhow!("{what}: the target's id {id:?} cannot name a resource: {why}"))?;
    let reply = client
        .call(Method::GET, &path, None)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: reading {collection}/{id} back: {e}"))?
        .expect(&[200])
        .map_err(|e| anyhow::anyhow!("{what}: reading {collection}/{id} back: {e}"))?;
    let attribute = identity_attribute(collection);
    anyhow::ensure!(
        shows_identity_of(&reply.body, id, attribute, identity),
        "{what}: a GET of {collection}/{id}, the id the target answered for it, shows a resource whose {attribute} is not `{identity}`, so the run does not use it"
    );
    Ok(())
}

/// The identity the ledger's marker is read in (invariant 4) for a resource of `collection`: a
/// user's `userName`, a group's `displayName`, never the other (a group answered with a marked
/// `userName` is not ours).
fn identity_attribute(collection: &str) -> &'static str {
    if collection == "Groups" {
        "displayName"
    } else {
        "userName"
    }
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
