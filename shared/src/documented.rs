//! The README's configuration tables and metric lists (and the scaffold templates' tables),
//! checked against the code that reads the variables and records the metrics: a variable or a
//! metric added, renamed or dropped on one side and not the other fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::config::ConfigError;
use crate::telemetry::metric;

const README: &str = include_str!("../../README.md");
const CONFIG_MODULE: &str = include_str!("pipeline/config.rs");
const KINESIS_PROCESSOR: &str = include_str!("../../functions/kinesis-processor/src/lib.rs");
const KINESIS_TEMPLATE: &str = include_str!("../../cli/templates/kinesis/README.md");
const KINESIS_TEMPLATE_LIB: &str = include_str!("../../cli/templates/kinesis/src/lib.rs");
const S3_TEMPLATE: &str = include_str!("../../cli/templates/s3/README.md");

/// One row of a `| variable | default | meaning |` table: its variables (a row may name two,
/// `A` / `B`) and whether the default column says `required`.
#[derive(Debug)]
struct Row {
    names: Vec<String>,
    required: bool,
}

/// The rows of the first configuration table after `heading` (a line of `doc`, or the start).
fn table(doc: &str, heading: &str) -> Vec<Row> {
    let start = match heading {
        "" => 0,
        h => doc.find(h).unwrap_or_else(|| panic!("no heading {h:?}")),
    };
    let rows: Vec<Row> = doc[start..]
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .skip_while(|l| !l.starts_with("| variable | default |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let names = cells[1]
                .split('/')
                .map(|n| n.trim().trim_matches('`').to_string())
                .collect();
            Row {
                names,
                required: cells[2].starts_with("required"),
            }
        })
        .collect();
    assert!(!rows.is_empty(), "no configuration table after {heading:?}");
    rows
}

type Reader = fn(&dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError>;

/// The variables `read` asks for, and its result, when only `set` are set.
fn reads(read: Reader, set: &[&str]) -> (BTreeSet<String>, Result<(), ConfigError>) {
    let asked = RefCell::new(BTreeSet::new());
    let result = read(&|name: &str| {
        asked.borrow_mut().insert(name.to_string());
        set.contains(&name).then(|| sample(name).to_string())
    });
    (asked.into_inner(), result)
}

/// A valid value for any variable the readers take.
fn sample(name: &str) -> &'static str {
    match name {
        "ALERT_TOPIC_ARN" => "arn:aws:sns:us-east-1:123456789012:alerts",
        _ => "bucket",
    }
}

fn stream(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    crate::pipeline::StreamConfig::from_lookup("p", lookup).map(drop)
}

fn ingest(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    crate::ingest::IngestConfig::from_lookup("p", lookup).map(drop)
}

#[cfg(feature = "glue")]
fn ingest_with_glue(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let (a, b) = (
        ingest(lookup),
        crate::apps::glue_trigger::GlueTriggerConfig::from_lookup(lookup).map(drop),
    );
    a.and(b)
}

#[cfg(feature = "alert")]
fn alert(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    crate::apps::alert::AlertConfig::from_lookup(lookup).map(drop)
}

/// Checks a table against its reader: every documented variable is read and is required
/// exactly when the table says so; with `complete`, every variable read is documented, unless
/// it is Lambda's own (`AWS_*`) or named in `besides`. `elsewhere` is the source of variables
/// the function reads itself (documented, not read by `read`).
fn check(doc: &str, heading: &str, read: Reader, complete: bool, elsewhere: &str) {
    let rows = table(doc, heading);
    let required: Vec<&str> = rows
        .iter()
        .filter(|r| r.required)
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect();
    let (asked, result) = reads(read, &required);
    assert!(result.is_ok(), "{heading}: {result:?}");
    let mut documented = BTreeSet::new();
    for row in &rows {
        for name in &row.names {
            documented.insert(name.clone());
            if !asked.contains(name) {
                assert!(
                    elsewhere.contains(&format!("\"{name}\"")),
                    "{heading}: `{name}` is documented but nothing reads it"
                );
                continue;
            }
            let without: Vec<&str> = required.iter().copied().filter(|r| r != name).collect();
            let missing = reads(read, &without).1.err().is_some_and(|e| {
                e.problems
                    .iter()
                    .any(|p| &p.variable == name && p.found.is_none())
            });
            assert_eq!(
                missing,
                row.required,
                "{heading}: `{name}` is documented as {} but the code {}",
                if row.required { "required" } else { "optional" },
                if missing { "requires it" } else { "does not" }
            );
        }
    }
    if complete {
        let undocumented: Vec<&String> = asked
            .iter()
            .filter(|n| !documented.contains(*n) && !n.starts_with("AWS_"))
            .collect();
        assert!(
            undocumented.is_empty(),
            "{heading}: read but not documented: {undocumented:?}"
        );
    }
}

#[test]
fn the_stream_pipeline_tables_match_the_code() {
    check(
        README,
        "## The Kinesis processor",
        stream,
        true,
        KINESIS_PROCESSOR,
    );
    // The module's own table lists the output variables every pipeline reads.
    check(CONFIG_MODULE, "", stream, false, "");
    // The scaffold's README lists what a pipeline without aggregates or rules reads.
    check(
        KINESIS_TEMPLATE,
        "## Configuration",
        stream,
        false,
        KINESIS_TEMPLATE_LIB,
    );
}

#[test]
fn the_ingest_tables_match_the_code() {
    check(S3_TEMPLATE, "## Configuration", ingest, true, "");
    #[cfg(feature = "glue")]
    check(
        README,
        "## Batch ingest and Glue",
        ingest_with_glue,
        true,
        "",
    );
}

#[cfg(feature = "alert")]
#[test]
fn the_alert_table_matches_the_code() {
    check(README, "## Failure alerts", alert, true, "");
}

/// The backticked metric names of the README's "Metrics per …" sentences.
fn listed_metrics() -> BTreeSet<&'static str> {
    let mut listed = BTreeSet::new();
    for (at, _) in README.match_indices("Metrics per") {
        let sentence = &README[at..];
        let end = sentence
            .find(".\n")
            .or_else(|| sentence.find(". "))
            .unwrap();
        for (i, part) in sentence[..end].split('`').enumerate() {
            let camel = part.len() > 1
                && part.starts_with(|c: char| c.is_ascii_uppercase())
                && part.chars().all(|c| c.is_ascii_alphabetic());
            if i % 2 == 1 && camel {
                listed.insert(part);
            }
        }
    }
    listed
}

#[test]
fn the_readme_lists_every_metric_and_no_other() {
    let declared: BTreeSet<&str> = metric::ALL.iter().copied().collect();
    assert_eq!(declared.len(), metric::ALL.len(), "a name declared twice");
    let listed = listed_metrics();
    let unlisted: Vec<_> = declared.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&declared).collect();
    assert!(
        unlisted.is_empty(),
        "recorded but not in the README: {unlisted:?}"
    );
    assert!(
        unknown.is_empty(),
        "in the README but never recorded: {unknown:?}"
    );
}
