//! Read-only discovery of a SCIM 2.0 target (and of a plain HTTP API, `--kind http`): GETs only,
//! through the run's own client. What the target publishes — `/ServiceProviderConfig` (PATCH,
//! filters, bulk, ETags, sort), `/ResourceTypes` (groups, extensions), `/Schemas` (required
//! attributes, what is mutable: [`super::scim_users`]) — then how its lists behave
//! ([`super::scim_lists`]) and whether it closes connections. A target that publishes none of
//! the discovery endpoints (some real ones answer 404) still gets a workload: the list probes
//! decide.

use serde_json::Value;

use super::draft::{Draft, Entry, Found};
use super::scim_lists::{self, Connections, get, json, said};
use super::{Context, Kind};
use crate::engine::targets::scim::schemas;
use crate::http::HttpClient;

/// The built-in steps that send a PATCH (see `engine::targets::scim::steps`).
const PATCHING: [&str; 5] = [
    "modify_user",
    "assign_role",
    "remove_role",
    "disable_user",
    "enable_user",
];
const GROUP_STEPS: [&str; 4] = ["create_group", "add_to_group", "remove_from_group", "delete_group"];

/// Reads what the target publishes and how its lists behave, writing what it learnt into `draft`.
pub async fn discover(cx: &Context<'_>, kind: Kind, draft: &mut Draft) -> anyhow::Result<()> {
    let Some(client) = cx.target.http_client() else {
        anyhow::bail!("the target is not reached over HTTP: nothing to discover as SCIM");
    };
    let mut conns = Connections::default();
    if kind == Kind::Http {
        super::scim_http::discover(&client, draft, &mut conns).await?;
        keep_alive(&conns, draft);
        return Ok(());
    }
    let published = service_provider_config(&client, draft, &mut conns).await?;
    let groups = resource_types(&client, draft, &mut conns).await?;
    let schema = match schemas::user_schema(&client).await {
        Ok(s) => s,
        Err(e) => {
            draft.heard(format!("/Schemas could not be read: {e}"));
            None
        }
    };
    let attrs = schema.as_ref().map(schemas::attributes);
    match &attrs {
        Some(a) => {
            let required: Vec<&str> = a
                .iter()
                .filter(|a| a.required && a.writable())
                .map(|a| a.name.as_str())
                .collect();
            draft.heard(format!(
                "/Schemas: the User has {} attribute(s); required: {}",
                a.len(),
                match required.is_empty() {
                    true => "none".to_string(),
                    false => required.join(", "),
                }
            ));
        }
        None => {
            draft.heard("/Schemas publishes no User schema: the usual attributes are written");
        }
    }
    let lists = scim_lists::probe(cx, &client, draft, &mut conns).await?;
    let groups = match groups {
        Some(g) => g,
        None => groups_answer(&client, draft, &mut conns, lists.count_breaks).await?,
    };
    if !groups {
        for step in GROUP_STEPS {
            draft.unsupported(step, "the target has no Group resource type");
        }
    }
    super::scim_users::write(attrs.as_deref(), groups, draft);
    if !published {
        draft.heard("the target publishes no discovery endpoints: the workload rests on the list probes");
    }
    keep_alive(&conns, draft);
    Ok(())
}

/// `GET /ServiceProviderConfig`: what it says it supports. `Ok(false)` when it publishes none.
async fn service_provider_config(
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
) -> anyhow::Result<bool> {
    let path = "/ServiceProviderConfig";
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let Some(spc) = json(&reply).filter(|v| reply.status.is_success() && v.is_object()) else {
        draft.heard(format!(
            "GET {path} answered {}: it publishes no configuration",
            said(&reply)
        ));
        return Ok(false);
    };
    let yes = |v: &Value| match v["supported"].as_bool() {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not said",
    };
    let max = spc["filter"]["maxResults"]
        .as_u64()
        .map_or(String::new(), |m| format!(" (maxResults {m})"));
    let bulk_max = spc["bulk"]["maxOperations"]
        .as_u64()
        .filter(|_| spc["bulk"]["supported"] == true)
        .map_or(String::new(), |m| format!(" (maxOperations {m})"));
    draft.heard(format!(
        "GET {path}: patch {}, filter {}{max}, bulk {}{bulk_max}, etag {}, sort {}, changePassword {}",
        yes(&spc["patch"]),
        yes(&spc["filter"]),
        yes(&spc["bulk"]),
        yes(&spc["etag"]),
        yes(&spc["sort"]),
        yes(&spc["changePassword"]),
    ));
    if spc["filter"]["supported"] == false {
        draft.unsupported(
            "find_user",
            format!("{path} says filter.supported = false (find_user filters on userName)"),
        );
    }
    if spc["patch"]["supported"] == false {
        let why = format!("{path} says patch.supported = false");
        for step in PATCHING {
            draft.unsupported(step, format!("{why} ({step} sends a PATCH)"));
        }
        draft.heard(format!(
            "{why}: modify, role, disable and enable steps are left out; replace_user (PUT /Users/{{id}}) is what remains to change a user"
        ));
    }
    Ok(true)
}

/// `GET /ResourceTypes`: whether there are groups (`None`: not published), and the User's
/// schema extensions.
async fn resource_types(
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
) -> anyhow::Result<Option<bool>> {
    let path = "/ResourceTypes";
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let types: Vec<Value> = match json(&reply).filter(|_| reply.status.is_success()) {
        Some(Value::Array(a)) => a,
        Some(v) => match v.get("Resources") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    if types.is_empty() {
        draft.heard(format!(
            "GET {path} answered {}: no resource types published",
            said(&reply)
        ));
        return Ok(None);
    }
    let is = |t: &Value, name: &str, endpoint: &str| {
        t["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))
            || t["endpoint"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(endpoint))
    };
    let groups = types.iter().any(|t| is(t, "Group", "/Groups"));
    let extensions: Vec<String> = types
        .iter()
        .filter(|t| is(t, "User", "/Users"))
        .flat_map(|t| t["schemaExtensions"].as_array().cloned().unwrap_or_default())
        .take(20)
        .filter_map(|e| {
            let schema: String = e["schema"].as_str()?.chars().take(120).collect();
            Some(match e["required"] == true {
                true => format!("{schema} (required)"),
                false => schema,
            })
        })
        .collect();
    draft.heard(format!(
        "GET {path}: {} type(s); groups {}; User extensions: {}",
        types.len(),
        if groups { "yes" } else { "no" },
        match extensions.is_empty() {
            true => "none".to_string(),
            false => extensions.join(", "),
        }
    ));
    Ok(Some(groups))
}

/// Without `/ResourceTypes`: whether `GET /Groups` answers a list.
async fn groups_answer(
    client: &HttpClient,
    draft: &mut Draft,
    conns: &mut Connections,
    count_breaks: bool,
) -> anyhow::Result<bool> {
    let path = match count_breaks {
        true => "/Groups",
        false => "/Groups?count=1",
    };
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let listed = reply.status.is_success()
        && json(&reply).is_some_and(|v| v.get("Resources").is_some() || v.get("totalResults").is_some());
    draft.heard(match listed {
        true => format!("GET {path}: a list of groups"),
        false => format!("GET {path} answered {}: no groups", said(&reply)),
    });
    Ok(listed)
}

/// A target that closes every connection is run with `keep_alive = false`, so no request is
/// sent on a connection the server has already given up.
fn keep_alive(conns: &Connections, draft: &mut Draft) {
    if let Some(why) = &conns.closing {
        draft.heard(format!("{why}: it closes its connections"));
        draft.set(
            "target",
            Entry::new("keep_alive", false)
                .why(format!("{why}: the target closes its connections"))
                .found(Found::equal().implied(true)),
        );
    }
}
