//! Every TOML example in the README validates: the full workload as written, and each fragment
//! laid over it, or over it with the embedded target (examples of checks rely on the URLs the
//! embedded target supplies); a target of kind `http` gets a journey of its own operations,
//! since SCIM steps are not for it. Files the examples name exist as empty placeholders.

use toml::{Table, Value};

fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[test]
fn every_readme_example_validates() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 6, "the README's TOML examples: {}", blocks.len());
    let base: Table = toml::from_str(blocks[0]).expect("the README's first example is a whole workload");
    let mut embedded = base.clone();
    embedded.remove("target");
    // An ldap target's example goes on the base's name, load and built-in journeys only.
    let mut directory = Table::new();
    for key in ["name", "load"] {
        directory.insert(key.into(), base[key].clone());
    }
    let creating: Vec<toml::Value> = base["journey"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["steps"][0].as_str() == Some("create_user"))
        .cloned()
        .collect();
    directory.insert("journey".into(), toml::Value::Array(creating));
    let dir = tempfile::tempdir().unwrap();
    for f in ["hr-ca.pem", "probe.pem", "probe.key", "users.csv"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    for (i, block) in blocks.iter().enumerate() {
        let fragment: Table = toml::from_str(block).unwrap_or_else(|e| panic!("README TOML example {i}: {e}\n{block}"));
        let errors: Vec<String> = [&base, &embedded, &directory]
            .iter()
            .enumerate()
            .filter_map(|(b, base)| validate(dir.path(), &format!("example-{i}-{b}"), base, &fragment).err())
            .collect();
        if errors.len() == 3 {
            panic!(
                "README TOML example {i} does not validate:\n{}\n{block}",
                errors.join("\n")
            );
        }
    }
}

/// `fragment` laid over `base`, written to `dir/name.toml` and loaded.
fn validate(dir: &std::path::Path, name: &str, base: &Table, fragment: &Table) -> Result<(), String> {
    let mut doc = base.clone();
    merge(&mut doc, fragment.clone());
    let kind = fragment
        .get("target")
        .and_then(|t| t.get("kind"))
        .and_then(Value::as_str);
    if kind == Some("http") {
        let ops = fragment["operations"].as_table().unwrap().keys();
        let mut journey = Table::new();
        journey.insert("name".into(), "vendor".into());
        journey.insert(
            "steps".into(),
            Value::Array(ops.map(|k| Value::String(k.clone())).collect()),
        );
        doc.insert("journey".into(), Value::Array(vec![Value::Table(journey)]));
        doc.remove("users");
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    provbench::workload::Workload::load(&path, &Default::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
