//! The Cargo manifest parts of a new crate, and the edit that adds it to a workspace.
//!
//! Versions, the edition and the release profile come from this repository's workspace manifest,
//! embedded when the CLI is built: the functions in `functions/` and a generated crate resolve
//! the same versions, and there is no second list to keep in step. Everything is read and
//! written with `toml_edit`, so quoting is always valid TOML and an edited manifest keeps its
//! comments and layout.

use std::path::Path;

use anyhow::{bail, Context};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// The workspace manifest the CLI was built with.
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// What a generated crate depends on besides runnel, in the order they are written.
pub const DEPENDENCIES: [&str; 5] = ["lambda_runtime", "tokio", "serde", "serde_json", "chrono"];

/// `#[tokio::main]` and `#[tokio::test]` are all a generated crate uses of tokio.
const TOKIO_FEATURES: [&str; 3] = ["macros", "rt-multi-thread", "sync"];

/// Package fields a workspace member inherits when the workspace defines them.
const INHERITED: [&str; 5] = ["version", "edition", "rust-version", "license", "publish"];

/// Where the runnel dependency of a standalone crate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnelSource {
    /// A local checkout: the directory holding runnel's Cargo.toml.
    Path(String),
    /// A git repository holding the runnel crate, at a revision or its default branch.
    Git { url: String, rev: Option<String> },
}

fn embedded() -> DocumentMut {
    WORKSPACE_MANIFEST
        .parse()
        .expect("the workspace Cargo.toml embedded at build time is valid TOML")
}

fn workspace_dependency(doc: &DocumentMut, name: &str) -> Option<Value> {
    doc.get("workspace")?
        .get("dependencies")?
        .get(name)?
        .as_value()
        .cloned()
}

/// `key = value` with the value's own spacing normalised.
fn line(key: &str, mut value: Value) -> String {
    match &mut value {
        Value::InlineTable(t) => t.fmt(),
        Value::Array(a) => a.fmt(),
        _ => {}
    }
    value.decor_mut().clear();
    format!("{} = {}", toml_edit::Key::new(key).display_repr(), value)
}

/// Checks that `dir` holds the runnel crate and returns its absolute path for a path dependency.
pub fn runnel_path(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("--runnel-path: cannot read {}", manifest.display()))?;
    let doc: DocumentMut = text
        .parse()
        .with_context(|| format!("--runnel-path: {} is not valid TOML", manifest.display()))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(Item::as_str);
    if name != Some("runnel") {
        bail!(
            "--runnel-path: {} is not the runnel crate (package name {:?}); point it at the \
             directory of runnel's Cargo.toml (shared/ in the runnel repository)",
            manifest.display(),
            name.unwrap_or("none")
        );
    }
    let absolute = std::fs::canonicalize(dir)
        .with_context(|| format!("--runnel-path: cannot resolve {}", dir.display()))?;
    absolute
        .to_str()
        .map(str::to_string)
        .with_context(|| format!("--runnel-path: {} is not UTF-8", absolute.display()))
}

/// The `[dependencies]` lines of a standalone crate.
pub fn standalone_dependencies(runnel: &RunnelSource) -> String {
    let doc = embedded();
    let mut spec = InlineTable::new();
    match runnel {
        RunnelSource::Path(path) => {
            spec.insert("path", path.as_str().into());
        }
        RunnelSource::Git { url, rev } => {
            spec.insert("git", url.as_str().into());
            if let Some(rev) = rev {
                spec.insert("rev", rev.as_str().into());
            }
        }
    }
    let mut lines = vec![line("runnel", Value::InlineTable(spec))];
    for dep in DEPENDENCIES {
        let mut value = workspace_dependency(&doc, dep).unwrap_or_else(|| {
            panic!("[workspace.dependencies] of the embedded manifest has {dep}")
        });
        if dep == "tokio" {
            let features: Array = TOKIO_FEATURES.iter().copied().collect();
            match &mut value {
                Value::InlineTable(t) => {
                    t.insert("features", Value::Array(features));
                }
                v => {
                    let mut t = InlineTable::new();
                    t.insert("version", v.clone());
                    t.insert("features", Value::Array(features));
                    *v = Value::InlineTable(t);
                }
            }
        }
        lines.push(line(dep, value));
    }
    lines.join("\n")
}

/// The `[dependencies]` lines of a workspace member: everything from the workspace.
pub fn member_dependencies() -> String {
    std::iter::once("runnel")
        .chain(DEPENDENCIES)
        .map(|dep| format!("{dep}.workspace = true"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `[package]` fields after the name of a standalone crate.
pub fn standalone_package() -> String {
    let doc = embedded();
    let package = doc.get("workspace").and_then(|w| w.get("package"));
    let mut lines = vec![line("version", "0.1.0".into())];
    for key in ["edition", "rust-version"] {
        if let Some(v) = package.and_then(|p| p.get(key)).and_then(Item::as_value) {
            lines.push(line(key, v.clone()));
        }
    }
    lines.push(line("publish", false.into()));
    lines.join("\n")
}

/// The `[package]` fields after the name of a member of the workspace `root`.
pub fn member_package(root: &DocumentMut) -> String {
    let package = root.get("workspace").and_then(|w| w.get("package"));
    INHERITED
        .iter()
        .map(|key| {
            if package.and_then(|p| p.get(key)).is_some() {
                format!("{key}.workspace = true")
            } else {
                match *key {
                    "version" => line(key, "0.1.0".into()),
                    "publish" => line(key, false.into()),
                    _ => String::new(),
                }
            }
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What closes a standalone manifest: a workspace of its own and the release profile.
pub fn standalone_tail() -> String {
    let doc = embedded();
    let mut release = doc
        .get("profile")
        .and_then(|p| p.get("release"))
        .and_then(Item::as_table)
        .cloned()
        .unwrap_or_default();
    release.decor_mut().clear();
    let mut profile = Table::new();
    profile.set_implicit(true);
    profile.insert("release", Item::Table(release));
    let mut out = DocumentMut::new();
    out.insert("profile", Item::Table(profile));
    format!(
        "# A workspace of its own: the crate builds wherever it is checked out.\n\
         [workspace]\n\n\
         # Small, fast binaries: Lambda bills init and run time.\n\
         {}",
        out.to_string().trim_start()
    )
}

/// Checks that the workspace `root` can hold a member that takes everything from it.
pub fn check_workspace(root: &DocumentMut) -> anyhow::Result<()> {
    let Some(workspace) = root.get("workspace") else {
        bail!("Cargo.toml has no [workspace] table; --workspace runs from a workspace root");
    };
    if workspace.get("members").and_then(Item::as_array).is_none() {
        bail!("Cargo.toml has no [workspace] members array");
    }
    let missing: Vec<&str> = std::iter::once("runnel")
        .chain(DEPENDENCIES)
        .filter(|dep| workspace_dependency(root, dep).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "[workspace.dependencies] in Cargo.toml lacks {}; a member made by --workspace \
             takes every dependency from there",
            missing.join(", ")
        );
    }
    Ok(())
}

/// `manifest` with `member` appended to `[workspace] members`, in the layout the array already
/// has; `None` when it is listed already.
pub fn add_member(manifest: &str, member: &str) -> anyhow::Result<Option<String>> {
    let mut doc: DocumentMut = manifest.parse().context("Cargo.toml is not valid TOML")?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(Item::as_array_mut)
        .context("Cargo.toml has no [workspace] members array")?;
    if members.iter().any(|m| m.as_str() == Some(member)) {
        return Ok(None);
    }
    // One member per line stays one per line, at the same indentation; comments in the last
    // member's prefix are not copied.
    let prefix = members
        .iter()
        .last()
        .and_then(|last| last.decor().prefix())
        .and_then(|p| p.as_str())
        .and_then(|p| p.rfind('\n').map(|at| p[at..].to_string()))
        .unwrap_or_else(|| if members.is_empty() { "" } else { " " }.to_string());
    // Without a trailing comma, the space before `]` is the last member's suffix: it moves to
    // the new last member.
    let suffix = match members
        .len()
        .checked_sub(1)
        .and_then(|i| members.get_mut(i))
    {
        Some(last) => {
            let suffix = last.decor().suffix().and_then(|s| s.as_str()).unwrap_or("");
            let suffix = suffix.to_string();
            last.decor_mut().set_suffix("");
            suffix
        }
        None => String::new(),
    };
    let mut value = Value::from(member);
    value.decor_mut().set_prefix(prefix);
    value.decor_mut().set_suffix(suffix);
    members.push_formatted(value);
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_workspace_has_every_dependency() {
        check_workspace(&embedded()).unwrap();
    }

    #[test]
    fn standalone_dependencies_take_versions_from_the_workspace() {
        let deps = standalone_dependencies(&RunnelSource::Path("/src/runnel \"x\"/shared".into()));
        let doc: DocumentMut = format!("[dependencies]\n{deps}").parse().unwrap();
        let d = &doc["dependencies"];
        assert_eq!(
            d["runnel"]["path"].as_str(),
            Some("/src/runnel \"x\"/shared")
        );
        let root = embedded();
        let version = |item: &Item| {
            item.as_str()
                .or_else(|| item.get("version").and_then(Item::as_str))
                .map(str::to_string)
        };
        for dep in DEPENDENCIES {
            assert_eq!(
                version(&d[dep]),
                version(&root["workspace"]["dependencies"][dep]),
                "{dep}"
            );
        }
        let tokio: Vec<&str> = d["tokio"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert_eq!(tokio, TOKIO_FEATURES);
        assert!(deps.contains("serde = { version = \"1\", features = [\"derive\"] }"));

        let git = standalone_dependencies(&RunnelSource::Git {
            url: "https://example.com/runnel.git".into(),
            rev: Some("v1".into()),
        });
        assert!(git
            .starts_with("runnel = { git = \"https://example.com/runnel.git\", rev = \"v1\" }\n"));
    }

    #[test]
    fn a_standalone_manifest_is_its_own_workspace_with_the_release_profile() {
        let tail = standalone_tail();
        let doc: DocumentMut = tail.parse().unwrap();
        assert!(doc["workspace"].is_table());
        let root = embedded();
        assert_eq!(
            doc["profile"]["release"].to_string(),
            root["profile"]["release"].to_string()
        );
        assert!(tail.contains("\n[profile.release]\n"), "{tail}");
    }

    #[test]
    fn members_inherit_what_the_workspace_defines() {
        let root: DocumentMut =
            "[workspace]\nmembers = []\n[workspace.package]\nedition = \"2021\"\n"
                .parse()
                .unwrap();
        assert_eq!(
            member_package(&root),
            "version = \"0.1.0\"\nedition.workspace = true\npublish = false"
        );
        assert_eq!(
            member_dependencies().lines().next(),
            Some("runnel.workspace = true")
        );
    }

    #[test]
    fn a_workspace_without_runnel_is_refused() {
        let root: DocumentMut =
            "[workspace]\nmembers = []\n[workspace.dependencies]\ntokio = \"1\"\n"
                .parse()
                .unwrap();
        let err = check_workspace(&root).unwrap_err().to_string();
        assert!(
            err.contains("lacks runnel, lambda_runtime, serde, serde_json, chrono"),
            "{err}"
        );
    }

    #[test]
    fn a_one_line_members_array_grows_on_its_line() {
        let before = "# root\n[workspace]\nresolver = \"2\"\nmembers = [\"shared\", \"cli\"]  # all\n\n[profile.release]\nlto = true # small\n";
        let after = add_member(before, "functions/clicks").unwrap().unwrap();
        assert_eq!(
            after,
            before.replace("\"cli\"]", "\"cli\", \"functions/clicks\"]")
        );
        assert_eq!(add_member(&after, "functions/clicks").unwrap(), None);
    }

    #[test]
    fn a_multi_line_members_array_keeps_one_member_per_line() {
        let before = "[workspace]\nmembers = [\n    \"shared\",\n    # the CLI\n    \"cli\",\n]\n";
        let after = add_member(before, "functions/orders").unwrap().unwrap();
        assert_eq!(
            after,
            "[workspace]\nmembers = [\n    \"shared\",\n    # the CLI\n    \"cli\",\n    \"functions/orders\",\n]\n"
        );
        let no_trailing_comma = "[workspace]\nmembers = [\n  \"a\",\n  \"b\"\n]\n";
        assert_eq!(
            add_member(no_trailing_comma, "c").unwrap().unwrap(),
            "[workspace]\nmembers = [\n  \"a\",\n  \"b\",\n  \"c\"\n]\n"
        );
        assert_eq!(
            add_member("[workspace]\nmembers = []\n", "a")
                .unwrap()
                .unwrap(),
            "[workspace]\nmembers = [\"a\"]\n"
        );
    }

    #[test]
    fn the_repository_manifest_changes_only_by_the_new_member() {
        let after = add_member(WORKSPACE_MANIFEST, "functions/clicks")
            .unwrap()
            .unwrap();
        let common = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let (old, new) = (WORKSPACE_MANIFEST.as_bytes(), after.as_bytes());
        let head = common(old, new);
        let tail = common(
            &old[head..].iter().rev().copied().collect::<Vec<_>>(),
            &new[head..].iter().rev().copied().collect::<Vec<_>>(),
        );
        assert_eq!(head + tail, old.len(), "nothing of the original is lost");
        let inserted = &after[head..after.len() - tail];
        let rest = inserted.replacen("\"functions/clicks\"", "", 1);
        assert!(
            rest.chars().all(|c| c == ',' || c.is_whitespace()),
            "inserted {inserted:?}"
        );
    }

    #[test]
    fn a_manifest_without_members_is_refused() {
        let err = add_member("[package]\nname = \"x\"\n", "a").unwrap_err();
        assert!(err.to_string().contains("no [workspace] members"));
        assert!(add_member("[workspace\n", "a").is_err());
    }
}
