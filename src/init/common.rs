//! The parts of a written workload a team starts from, whatever the target: its name, a gentle
//! load, journeys of the built-in steps the target takes, thresholds, probes of the downstreams
//! given with `--downstream`, and the evidence the checks need. Discovery has already written
//! what the target told it; nothing here overrides a setting discovery made.

use super::draft::{Draft, Entry};
use super::{Kind, Options};

/// The lifecycle a virtual admin runs, in order; steps the target cannot take are left out.
const LIFECYCLE: [&str; 7] = [
    "create_user",
    "get_user",
    "find_user",
    "modify_user",
    "disable_user",
    "enable_user",
    "delete_user",
];

const GROUPS: [&str; 6] = [
    "create_user",
    "create_group",
    "add_to_group",
    "remove_from_group",
    "delete_group",
    "delete_user",
];

/// Fills in every part discovery left open.
pub fn finish(opts: &Options, draft: &mut Draft) {
    naming(opts, draft);
    load(draft);
    journeys(opts.kind, draft);
    thresholds(opts, draft);
    probes(opts, draft);
}

fn naming(opts: &Options, draft: &mut Draft) {
    let name = opts.name.clone().unwrap_or_else(|| name_from(&opts.url));
    draft.set("", Entry::new("name", name));
    draft.set(
        "",
        Entry::new(
            "description",
            format!("Users' lifecycle against {}", crate::redact::url(&opts.url)),
        ),
    );
}

/// A workload name from the URL's host (`idp.example.com` → `idp-example-com`).
pub fn name_from(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name: String = host
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '-',
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    match name.is_empty() {
        true => "target".into(),
        false => name,
    }
}

fn load(draft: &mut Draft) {
    if draft.get("load", "model").is_some() {
        return;
    }
    draft.comment(
        "load",
        &["A gentle first run: raise admins (or use model = \"open\" with a rate) once it passes."],
    );
    draft.set("load", Entry::new("model", "closed"));
    draft.set("load", Entry::new("admins", 2));
    draft.set("load", Entry::new("ramp", "2s"));
    draft.set(
        "load",
        Entry::new("think_time", "60ms..90ms").why("room between a disable and its delete for checks to judge each"),
    );
    draft.set("load", Entry::new("duration", "30s"));
}

fn journeys(kind: Kind, draft: &mut Draft) {
    if kind == Kind::Http || draft.sections().iter().any(|s| s.array && s.name == "journey") {
        return;
    }
    let mut lifecycle: Vec<&str> = LIFECYCLE.into_iter().filter(|s| draft.supports(s)).collect();
    // A target that takes no PATCH still changes users by PUT: the mover's change is a replace.
    if !draft.supports("modify_user") && draft.supports("replace_user") {
        let at = lifecycle
            .iter()
            .position(|s| *s == "find_user" || *s == "get_user")
            .map_or(1, |i| i + 1);
        lifecycle.insert(at.min(lifecycle.len()), "replace_user");
    }
    let left_out: Vec<String> = LIFECYCLE
        .into_iter()
        .filter(|s| !draft.supports(s))
        .map(|s| format!("{s} is left out: {}", why_not(draft, s)))
        .collect();
    draft.push(
        "journey",
        [
            vec!["Joiner, mover, leaver: every step the target was seen to take.".to_string()],
            left_out,
        ]
        .concat(),
        vec![
            Entry::new("name", "lifecycle"),
            Entry::new("weight", 3),
            Entry::new("steps", lifecycle),
        ],
    );
    if GROUPS.into_iter().all(|s| draft.supports(s)) {
        draft.push(
            "journey",
            vec!["Group membership.".to_string()],
            vec![
                Entry::new("name", "groups"),
                Entry::new("weight", 1),
                Entry::new("steps", GROUPS.to_vec()),
            ],
        );
    }
}

fn why_not(draft: &Draft, step: &str) -> String {
    draft
        .unsupported
        .iter()
        .find(|u| u.step == step)
        .map_or_else(String::new, |u| u.why.clone())
}

fn thresholds(opts: &Options, draft: &mut Draft) {
    if draft.get("", "thresholds").is_some() {
        return;
    }
    let mut t = vec!["rate(errors) < 1%".to_string(), "p95(api_latency) < 1s".to_string()];
    for name in opts.downstreams.iter().map(|u| service_name(u)) {
        t.push(format!("p95(sync_lag{{service={name}}}) < 30s"));
    }
    draft.set(
        "",
        Entry::new("thresholds", t)
            .why("what decides the verdict (exit 1 when lost); tighten them once you know the target"),
    );
}

/// A probe service's name from its URL: the host's first label, or `downstream`.
pub fn service_name(url: &str) -> String {
    let name = name_from(url);
    let first = name.split('-').next().unwrap_or("");
    match first.chars().all(|c| c.is_ascii_digit()) || first == "localhost" || first.is_empty() {
        true => "downstream".into(),
        false => first.to_string(),
    }
}

/// One by-filter probe service per `--downstream`, batched within the shared budget.
fn probes(opts: &Options, draft: &mut Draft) {
    if opts.downstreams.is_empty() || draft.sections().iter().any(|s| s.name == "probes.sync") {
        return;
    }
    draft.comment(
        "probes",
        &["Sync lag in each downstream given with --downstream: each read lists every pending user at once."],
    );
    draft.set(
        "probes",
        Entry::new("sample", 0.2).why("share of created users followed"),
    );
    draft.set(
        "probes",
        Entry::new("timeout", "30s").why("a change not seen by then is a timeout at the bound"),
    );
    draft.set(
        "probes",
        Entry::new("budget", 45).why("requests a second shared by the batched services"),
    );
    let mut names: Vec<String> = Vec::new();
    for url in &opts.downstreams {
        let mut name = service_name(url);
        if names.contains(&name) {
            name = format!("{name}{}", names.len() + 1);
        }
        names.push(name.clone());
        let query = match url.contains('{') {
            true => url.clone(),
            false => format!(
                "{}/Users?filter=userName eq \"{{userName}}\"",
                url.trim_end_matches('/')
            ),
        };
        draft.push(
            "probes.sync",
            vec![format!("{name}: found by filter; give it credentials with auth = {{ kind = \"bearer\", token_env = \"…\" }} if it asks")],
            vec![
                Entry::new("service", name),
                Entry::new("query", query),
                Entry::new("batch_max", 50),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(name_from("https://idp.example.com/scim/v2"), "idp-example-com");
        assert_eq!(name_from("ldap://user:pw@127.0.0.1:389"), "127-0-0-1-389");
        assert_eq!(name_from(""), "target");
        assert_eq!(service_name("https://crm.example.test/scim/v2"), "crm");
        assert_eq!(service_name("http://127.0.0.1:9000/scim"), "downstream");
    }

    #[test]
    fn journeys_leave_out_what_the_target_cannot_take() {
        let mut d = Draft::new();
        d.unsupported("find_user", "the target ignores filters");
        d.unsupported("create_group", "no Group resource type");
        journeys(Kind::Scim, &mut d);
        let text = d.render();
        let t: toml::Table = toml::from_str(&text).unwrap();
        let j = t["journey"].as_array().unwrap();
        assert_eq!(j.len(), 1, "{text}");
        let steps: Vec<&str> = j[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(!steps.contains(&"find_user"));
        assert!(
            text.contains("find_user is left out: the target ignores filters"),
            "{text}"
        );
    }
}
