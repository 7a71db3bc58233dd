//! Every TOML example in the README and in the manual (`docs/src/**/*.md`) validates. The base is
//! the first example of the manual's workload reference (`docs/src/workload.md`), a whole
//! workload; each example is laid over it, or over it with the embedded target (examples of
//! checks rely on the URLs the embedded target supplies), or over its name, load and creating
//! journeys for an ldap target; a whole workload (one with a `name`) may also validate as
//! written. A target of kind `http` gets a journey of its own operations, since SCIM steps are not
//! for it. Files the examples name exist as empty placeholders.

use std::path::{Path, PathBuf};

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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ```toml blocks of a Markdown file, in order.
fn toml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The bases an example is laid over: the whole workload, the same on the embedded target, and
/// its name, load and creating journeys only (for an ldap target).
fn bases() -> [Table; 3] {
    let reference = root().join("docs/src/workload.md");
    let blocks = toml_blocks(&reference);
    let base: Table = toml::from_str(&blocks[0]).expect("the workload reference's first example is a whole workload");
    let mut embedded = base.clone();
    embedded.remove("target");
    let mut directory = Table::new();
    for key in ["name", "load"] {
        directory.insert(key.into(), base[key].clone());
    }
    let creating: Vec<Value> = base["journey"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["steps"][0].as_str() == Some("create_user"))
        .cloned()
        .collect();
    directory.insert("journey".into(), Value::Array(creating));
    [base, embedded, directory]
}

/// Validates every example of `files`; returns one line per example that fails, naming the file
/// and the example's index in it.
fn check(files: &[PathBuf]) -> (usize, Vec<String>) {
    let bases = bases();
    let dir = tempfile::tempdir().unwrap();
    for f in ["hr-ca.pem", "probe.pem", "probe.key", "users.csv"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let mut seen = 0;
    let mut failures = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
        for (i, block) in toml_blocks(file).iter().enumerate() {
            seen += 1;
            let fragment: Table = match toml::from_str(block) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{shown}: TOML example {i} does not parse: {e}\n{block}"));
                    continue;
                }
            };
            let mut errors = Vec::new();
            if fragment.contains_key("name") {
                match validate(dir.path(), &format!("f{n}-e{i}-whole"), &Table::new(), &fragment) {
                    Ok(()) => continue,
                    Err(e) => errors.push(format!("as written: {e}")),
                }
            }
            let mut passed = false;
            for (b, base) in bases.iter().enumerate() {
                match validate(dir.path(), &format!("f{n}-e{i}-{b}"), base, &fragment) {
                    Ok(()) => {
                        passed = true;
                        break;
                    }
                    Err(e) => errors.push(format!("over base {b}: {e}")),
                }
            }
            if !passed {
                failures.push(format!(
                    "{shown}: TOML example {i} does not validate:\n{}\n{block}",
                    errors.join("\n")
                ));
            }
        }
    }
    (seen, failures)
}

#[test]
fn every_readme_example_validates() {
    let (seen, failures) = check(&[root().join("README.md")]);
    assert!(seen >= 1, "the README's TOML examples: {seen}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_docs_example_validates() {
    let files = markdown_files(&root().join("docs/src"));
    let (seen, failures) = check(&files);
    assert!(seen >= 8, "the manual's TOML examples: {seen} in {} files", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `fragment` laid over `base`, written to `dir/name.toml` and loaded.
fn validate(dir: &Path, name: &str, base: &Table, fragment: &Table) -> Result<(), String> {
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
