//! `runnel new`: writes a function crate — a sample transform with its tests, a one-line `main`,
//! sample events, a SAM template and a README — ready to build, test, invoke and deploy.
//!
//! The files are templates under `cli/templates/`, built into the binary, with a few
//! placeholders (`{{name}}`, `{{crate}}`, and the manifest parts of [`manifest`]) substituted.

mod manifest;
mod template;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use manifest::RunnelSource;

/// What triggers the new function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Records from a Kinesis stream (clickstream sample), gzip NDJSON out by hour.
    Kinesis,
    /// Objects landing in an S3 bucket (CSV orders sample), gzip NDJSON out by day.
    S3,
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// Name of the function and its crate: lowercase letters, digits and '-', starting with a
    /// letter.
    name: String,
    /// What triggers the function.
    #[arg(long, value_enum)]
    source: Source,
    /// Directory to create the crate in; with --workspace, the workspace root.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The runnel crate by path: the directory of its Cargo.toml (default: the runnel this
    /// command was built with, when it is still there).
    #[arg(long, conflicts_with_all = ["runnel_git", "workspace"])]
    runnel_path: Option<PathBuf>,
    /// The runnel crate from this git repository.
    #[arg(long, conflicts_with = "workspace")]
    runnel_git: Option<String>,
    /// A commit (or ref) of --runnel-git.
    #[arg(long, requires = "runnel_git")]
    runnel_rev: Option<String>,
    /// Make the crate a member of the workspace at --dir: writes functions/<name>/ and adds it
    /// to the members in Cargo.toml; every dependency comes from the workspace.
    #[arg(long)]
    workspace: bool,
}

/// Rust keywords, strict and reserved: the crate name appears in code (`<crate>::pipeline()`).
const KEYWORDS: &str = "as async await break const continue crate dyn else enum extern false fn \
    for if impl in let loop match mod move mut pub ref return self static struct super trait true \
    type unsafe use where while abstract become box do final gen macro override priv try typeof \
    unsized virtual yield";

/// Built-in crates, and the generated crate's own dependencies.
const TAKEN: &str =
    "std core alloc test proc-macro runnel lambda-runtime tokio serde serde-json chrono";

/// Longer crate names make rustfmt wrap `main`'s one line, and leave little room in the AWS
/// names built from the name (the sample's `<name>-raw` bucket; S3 allows 63 characters).
const MAX_NAME: usize = 36;

/// Checks a function name; the error says what a valid one looks like.
pub fn validate_name(name: &str) -> Result<(), String> {
    let hint = "use lowercase letters, digits and '-', starting with a letter (e.g. \"clicks\" \
                or \"order-events\")";
    if name.is_empty() {
        return Err(format!("the name is empty: {hint}"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "invalid name {name:?}: {bad:?} is not allowed; {hint}"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "invalid name {name:?}: it must start with a letter; {hint}"
        ));
    }
    if name.ends_with('-') {
        return Err(format!("invalid name {name:?}: it must not end with '-'"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "invalid name {name:?}: {} characters, at most {MAX_NAME}",
            name.len()
        ));
    }
    if KEYWORDS
        .split_whitespace()
        .chain(TAKEN.split_whitespace())
        .any(|w| w == name)
    {
        return Err(format!(
            "invalid name {name:?}: reserved in Rust or taken by a dependency; pick another"
        ));
    }
    Ok(())
}

/// One file of a source's template set.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

macro_rules! templates {
    ($dir:literal: $($path:literal),* $(,)?) => {
        &[$(TemplateFile {
            path: $path,
            text: include_str!(concat!("../../templates/", $dir, "/", $path)),
        }),*]
    };
}

const KINESIS: &[TemplateFile] = templates!("kinesis":
    "src/lib.rs",
    "src/main.rs",
    "events/clean.json",
    "events/poison.json",
    "template.yaml",
    "README.md",
);

const S3: &[TemplateFile] = templates!("s3":
    "src/lib.rs",
    "src/main.rs",
    "events/s3-notification.json",
    "events/eventbridge-object-created.json",
    "events/daily-orders.csv",
    "template.yaml",
    "README.md",
);

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml");
const GITIGNORE: &str = include_str!("../../templates/gitignore");
const KINESIS_DEPLOY: &str = include_str!("../../templates/kinesis/deploy.toml");
const S3_DEPLOY: &str = include_str!("../../templates/s3/deploy.toml");

/// How the crate relates to a workspace.
enum Layout {
    /// A project of its own.
    Standalone(RunnelSource),
    /// A member of a workspace, with its `[package]` fields.
    Member { package: String },
}

/// Everything `runnel new` writes, before anything is written.
#[derive(Debug)]
struct Plan {
    /// The crate's directory.
    dir: PathBuf,
    /// Files relative to `dir`, with their contents.
    files: Vec<(String, String)>,
    /// The workspace manifest and its new text, when it gains a member.
    manifest_edit: Option<(PathBuf, String)>,
}

/// Renders every file of a new crate.
fn render_files(
    name: &str,
    source: Source,
    layout: &Layout,
) -> anyhow::Result<Vec<(String, String)>> {
    let krate = name.replace('-', "_");
    let (set, deploy, description) = match source {
        Source::Kinesis => (
            KINESIS,
            KINESIS_DEPLOY,
            "Clickstream events from Kinesis to partitioned gzip NDJSON in S3",
        ),
        Source::S3 => (
            S3,
            S3_DEPLOY,
            "Order files landing in S3 to partitioned gzip NDJSON in S3",
        ),
    };
    let basic = [("name", name), ("crate", krate.as_str())];
    let deploy = template::render(deploy, &basic).context("templates: deploy.toml")?;
    let (package, dependencies, tail) = match layout {
        Layout::Standalone(runnel) => (
            manifest::standalone_package(),
            manifest::standalone_dependencies(runnel),
            format!("\n\n{}", manifest::standalone_tail().trim_end()),
        ),
        Layout::Member { package, .. } => (
            package.clone(),
            manifest::member_dependencies(),
            String::new(),
        ),
    };
    let cargo_values = [
        ("name", name),
        ("crate", krate.as_str()),
        ("description", description),
        ("package", package.as_str()),
        ("dependencies", dependencies.as_str()),
        ("deploy", deploy.trim_end()),
        ("standalone", tail.as_str()),
    ];
    let mut files = vec![(
        "Cargo.toml".to_string(),
        template::render(CARGO_TOML, &cargo_values).context("templates: Cargo.toml")?,
    )];
    if matches!(layout, Layout::Standalone(_)) {
        files.push((".gitignore".to_string(), GITIGNORE.to_string()));
    }
    for file in set {
        let text = template::render(file.text, &basic)
            .with_context(|| format!("templates: {}", file.path))?;
        files.push((file.path.to_string(), text));
    }
    Ok(files)
}

/// The runnel dependency of a standalone crate, from the flags or the build's own checkout.
fn runnel_source(args: &NewArgs) -> anyhow::Result<RunnelSource> {
    if let Some(url) = &args.runnel_git {
        return Ok(RunnelSource::Git {
            url: url.clone(),
            rev: args.runnel_rev.clone(),
        });
    }
    if let Some(path) = &args.runnel_path {
        return Ok(RunnelSource::Path(manifest::runnel_path(path)?));
    }
    let built_with = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if built_with.join("Cargo.toml").is_file() {
        return Ok(RunnelSource::Path(manifest::runnel_path(&built_with)?));
    }
    bail!("say where the runnel crate is: --runnel-path <dir> or --runnel-git <url>")
}

fn plan(args: &NewArgs) -> anyhow::Result<Plan> {
    validate_name(&args.name).map_err(anyhow::Error::msg)?;
    if args.workspace {
        let manifest_path = args.dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path).with_context(|| {
            format!(
                "--workspace: cannot read {} (run from the workspace root or pass --dir)",
                manifest_path.display()
            )
        })?;
        let root: toml_edit::DocumentMut = text
            .parse()
            .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
        manifest::check_workspace(&root)?;
        let member = format!("functions/{}", args.name);
        let edited = manifest::add_member(&text, &member)?;
        let layout = Layout::Member {
            package: manifest::member_package(&root),
        };
        Ok(Plan {
            dir: args.dir.join(&member),
            files: render_files(&args.name, args.source, &layout)?,
            manifest_edit: edited.map(|text| (manifest_path, text)),
        })
    } else {
        let layout = Layout::Standalone(runnel_source(args)?);
        Ok(Plan {
            dir: args.dir.join(&args.name),
            files: render_files(&args.name, args.source, &layout)?,
            manifest_edit: None,
        })
    }
}

/// Writes `files` into the new directory `dir`, which must not exist or be empty. The files are
/// written into a sibling directory first and moved into place at once, so a failure leaves no
/// half-written crate behind.
fn write_crate(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty; refusing to overwrite it (pick another name or \
                     --dir)",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if dir.exists() => {
            bail!(
                "{} exists and is not a directory we can use: {e}",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let leaf = dir
        .file_name()
        .context("the crate directory has no name")?
        .to_string_lossy();
    let staging = parent.join(format!(".{leaf}.runnel-new-{}", std::process::id()));
    let written = (|| -> anyhow::Result<()> {
        for (path, text) in files {
            let target = staging.join(path);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p)
                    .with_context(|| format!("cannot create {}", p.display()))?;
            }
            std::fs::write(&target, text)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        if dir.exists() {
            // Empty, checked above.
            std::fs::remove_dir(dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
        std::fs::rename(&staging, dir)
            .with_context(|| format!("cannot move the new crate to {}", dir.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written
}

fn shown(path: &Path) -> String {
    path.strip_prefix(".").unwrap_or(path).display().to_string()
}

/// What was written and what to run next. Printing is best effort: the crate is written already,
/// so a closed stdout (`| head`) is not an error.
fn print_summary(args: &NewArgs, plan: &Plan) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let dir = shown(&plan.dir);
    let kind = match args.source {
        Source::Kinesis => "Kinesis",
        Source::S3 => "S3 object",
    };
    let _ = writeln!(out, "Created the {kind} pipeline {} in {dir}/:", args.name);
    let mut paths: Vec<&str> = plan.files.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort_unstable();
    for path in paths {
        let _ = writeln!(out, "  {dir}/{path}");
    }
    if let Some((path, _)) = &plan.manifest_edit {
        let _ = writeln!(
            out,
            "Added functions/{} to the workspace members in {}.",
            args.name,
            shown(path)
        );
    }
    if args.workspace {
        let infra = args.dir.join("infra/template.yaml");
        let stack = if infra.is_file() {
            shown(&infra)
        } else {
            "your stack's template".to_string()
        };
        let _ = writeln!(
            out,
            "To deploy it with the rest, copy the function in {dir}/template.yaml into {stack} \
             (CodeUri: the workspace root, BuildProperties.Binary: {}).",
            args.name
        );
    }
    let sample = match args.source {
        Source::Kinesis => "events/poison.json",
        Source::S3 => "events/s3-notification.json",
    };
    let _ = write!(
        out,
        "\nNext:\n  cd {dir}\n  cargo test\n  \
         cargo lambda watch --env-var OUTPUT_BUCKET=<bucket>   # serves the function on :9000\n  \
         cargo lambda invoke --data-file {sample} {}\n  \
         sam validate --lint && sam build && sam deploy --guided\n",
        args.name
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
}

/// Runs `runnel new`.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let plan = create(&args)?;
    print_summary(&args, &plan);
    Ok(())
}

/// Writes the crate, then the workspace manifest when it gains a member.
fn create(args: &NewArgs) -> anyhow::Result<Plan> {
    let plan = plan(args)?;
    write_crate(&plan.dir, &plan.files)?;
    if let Some((path, text)) = &plan.manifest_edit {
        std::fs::write(path, text)
            .with_context(|| format!("cannot add the member to {}", path.display()))?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass() {
        for name in ["clicks", "order-events", "a", "s3-ingest-v2", "x1"] {
            validate_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn invalid_names_say_why() {
        let cases = [
            ("", "empty"),
            ("Clicks", "'C' is not allowed"),
            ("order_events", "'_' is not allowed"),
            ("my clicks", "' ' is not allowed"),
            ("café", "'é' is not allowed"),
            ("9lives", "must start with a letter"),
            ("-x", "must start with a letter"),
            ("clicks-", "must not end with '-'"),
            ("fn", "reserved"),
            ("runnel", "reserved"),
            ("test", "reserved"),
        ];
        for (name, why) in cases {
            let err = validate_name(name).unwrap_err();
            assert!(err.contains(why), "{name:?}: {err}");
        }
        let long = "a".repeat(37);
        assert!(validate_name(&long).unwrap_err().contains("at most 36"));
        assert!(validate_name(&"a".repeat(36)).is_ok());
    }

    fn standalone() -> Layout {
        Layout::Standalone(RunnelSource::Path("/opt/runnel/shared".into()))
    }

    #[test]
    fn every_template_renders_with_no_placeholder_left() {
        let member = || Layout::Member {
            package: "version.workspace = true".into(),
        };
        for source in [Source::Kinesis, Source::S3] {
            for layout in [standalone(), member()] {
                let files = render_files("order-events", source, &layout).unwrap();
                for (path, text) in &files {
                    assert!(
                        !text.contains("{{name}}") && !text.contains("{{crate}}"),
                        "{path}"
                    );
                }
                let main = &files.iter().find(|(p, _)| p == "src/main.rs").unwrap().1;
                let wired = match source {
                    Source::Kinesis => "order_events::pipeline(order_events::Clicks { sections })",
                    Source::S3 => "order_events::pipeline().run().await",
                };
                assert!(main.contains(wired), "{main}");
                let cargo: toml_edit::DocumentMut = files[0].1.parse().unwrap();
                assert_eq!(cargo["package"]["name"].as_str(), Some("order-events"));
                assert_eq!(cargo["lib"]["name"].as_str(), Some("order_events"));
                assert_eq!(cargo["bin"][0]["name"].as_str(), Some("order-events"));
                assert_eq!(
                    cargo["package"]["metadata"]["lambda"]["deploy"]["runtime"].as_str(),
                    Some("provided.al2023")
                );
                let standalone = matches!(layout, Layout::Standalone(_));
                assert_eq!(cargo.get("workspace").is_some(), standalone);
                assert_eq!(files.iter().any(|(p, _)| p == ".gitignore"), standalone);
            }
        }
    }

    #[test]
    fn the_wiring_stays_within_thirty_lines() {
        for source in [Source::Kinesis, Source::S3] {
            let files = render_files("clicks", source, &standalone()).unwrap();
            let text = |p: &str| files.iter().find(|(q, _)| q == p).unwrap().1.clone();
            let lib = text("src/lib.rs");
            let start = lib.find("pub fn pipeline(").expect("pipeline()");
            let doc_start = lib[..start].rfind("\n\n").map_or(0, |at| at + 2);
            let end = start + lib[start..].find("\n}\n").expect("end of pipeline()") + 3;
            let wiring = text("src/main.rs").lines().count() + lib[doc_start..end].lines().count();
            assert!(wiring <= 30, "{source:?}: {wiring} lines");
        }
    }

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn args(dir: &Path, workspace: bool) -> NewArgs {
        NewArgs {
            name: "clicks".into(),
            source: Source::Kinesis,
            dir: dir.to_path_buf(),
            runnel_path: None,
            runnel_git: (!workspace).then(|| "https://example.com/runnel.git".into()),
            runnel_rev: None,
            workspace,
        }
    }

    #[test]
    fn a_crate_is_written_into_a_new_or_empty_directory() {
        let tmp = scratch();
        create(&args(tmp.path(), false)).unwrap();
        let dir = tmp.path().join("clicks");
        for file in [
            "Cargo.toml",
            ".gitignore",
            "src/lib.rs",
            "events/poison.json",
        ] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        let empty = scratch();
        std::fs::create_dir(empty.path().join("clicks")).unwrap();
        create(&args(empty.path(), false)).unwrap();
        assert!(empty.path().join("clicks/template.yaml").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(empty.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging directory is left behind");
    }

    #[test]
    fn an_existing_non_empty_directory_is_never_overwritten() {
        let tmp = scratch();
        let dir = tmp.path().join("clicks");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err = create(&args(tmp.path(), false)).unwrap_err().to_string();
        assert!(err.contains("not empty; refusing to overwrite"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        let mut a = args(tmp.path(), false);
        a.name = "file".into();
        assert!(create(&a).is_err());
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("file")).unwrap(),
            "x"
        );
    }

    #[test]
    fn workspace_mode_adds_a_member_that_inherits_everything() {
        let tmp = scratch();
        let root = "[workspace]\nmembers = [\"shared\"]\n\n[workspace.package]\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace.dependencies]\nrunnel = { path = \"shared\" }\nlambda_runtime = \"1\"\ntokio = \"1\"\nserde = \"1\"\nserde_json = \"1\"\nchrono = \"0.4\"\n";
        std::fs::write(tmp.path().join("Cargo.toml"), root).unwrap();
        create(&args(tmp.path(), true)).unwrap();
        let edited = std::fs::read_to_string(tmp.path().join("Cargo.toml")).unwrap();
        assert_eq!(
            edited,
            root.replace("[\"shared\"]", "[\"shared\", \"functions/clicks\"]")
        );
        let cargo =
            std::fs::read_to_string(tmp.path().join("functions/clicks/Cargo.toml")).unwrap();
        assert!(cargo.contains("runnel.workspace = true"), "{cargo}");
        assert!(cargo.contains("edition.workspace = true"), "{cargo}");
        assert!(!cargo.contains("[workspace]"), "{cargo}");
        assert!(!tmp.path().join("functions/clicks/.gitignore").exists());
        // A second run refuses, and leaves the manifest as it was.
        assert!(create(&args(tmp.path(), true)).is_err());
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("Cargo.toml")).unwrap(),
            edited
        );
    }

    #[test]
    fn workspace_mode_needs_a_workspace_with_runnel() {
        let tmp = scratch();
        let err = create(&args(tmp.path(), true)).unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::write(tmp.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let err = create(&args(tmp.path(), true)).unwrap_err().to_string();
        assert!(err.contains("lacks runnel"), "{err}");
        assert!(!tmp.path().join("functions").exists());
    }

    #[test]
    fn runnel_path_must_hold_the_runnel_crate() {
        let tmp = scratch();
        std::fs::write(
            tmp.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();
        let err = manifest::runnel_path(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("is not the runnel crate"), "{err}");
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        let path = manifest::runnel_path(&shared).unwrap();
        assert!(
            Path::new(&path).is_absolute() && path.ends_with("shared"),
            "{path}"
        );
    }
}
