//! The fuzz targets' inputs under `cargo test`: every seed made from `events/` and every saved
//! crash (`fuzz/regressions/<target>/`) through the same harnesses the cargo-fuzz targets run
//! (`runnel::testing::fuzz`), so a bug the fuzzer found stays fixed.

use std::path::Path;

use kinesis_processor::IotTransform;
use runnel::records::Validate;
use runnel::source::{DynamoDb, Firehose, Kafka, Kinesis, Sqs};
use runnel::testing::fuzz;
use runnel_tests::workspace_root;

/// What each target of `fuzz/fuzz_targets/` runs on an input (they are one line each).
fn run(target: &str, data: &[u8]) {
    match target {
        "kinesis_event" => fuzz::batch_event(data, Kinesis, IotTransform),
        "kinesis_models" => fuzz::kinesis_models(data),
        "sqs_models" => fuzz::sqs_models(data),
        "kafka_models" => fuzz::kafka_models(data),
        "firehose_models" => fuzz::firehose_models(data),
        "dynamodb_models" => fuzz::dynamodb_models(data),
        "batch_event" => {
            let Some((&selector, event)) = data.split_first() else {
                return;
            };
            match selector % 4 {
                0 => fuzz::batch_event(event, Sqs, IotTransform),
                1 => fuzz::batch_event(event, DynamoDb, IotTransform),
                2 => fuzz::batch_event(event, Firehose, IotTransform),
                _ => fuzz::batch_event(event, Kafka, IotTransform),
            }
        }
        "s3_event" => fuzz::s3_event(data),
        "alert_event" => fuzz::alert_event(data),
        "record_data" => fuzz::record_data(data),
        "object_rows" => {
            fuzz::object_rows::<s3_ingest::TransactionRow>(data, &|row| row.validate())
        }
        "timestamp" => fuzz::timestamp(data),
        other => panic!("no fuzz target {other}: add it here and in fuzz/fuzz_targets/"),
    }
}

/// Runs every file of `dir/<target>/` through its target; returns how many ran per target.
fn replay(dir: &Path) -> Vec<(String, usize)> {
    let mut counts = Vec::new();
    let Ok(targets) = std::fs::read_dir(dir) else {
        return counts;
    };
    let mut targets: Vec<_> = targets.map(|e| e.unwrap().path()).collect();
    targets.sort();
    for folder in targets.iter().filter(|p| p.is_dir()) {
        let target = folder.file_name().unwrap().to_str().unwrap().to_string();
        let mut n = 0;
        for input in std::fs::read_dir(folder).unwrap() {
            let input = input.unwrap().path();
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&target, &data));
            assert!(outcome.is_ok(), "{target} fails on {}", input.display());
            n += 1;
        }
        counts.push((target, n));
    }
    counts
}

/// The targets `fuzz/Cargo.toml` declares.
fn declared_targets() -> Vec<String> {
    let declared = std::fs::read_to_string(workspace_root().join("fuzz/Cargo.toml")).unwrap();
    declared
        .lines()
        .filter_map(|l| l.strip_prefix("path = \"fuzz_targets/"))
        .map(|name| name.trim_end_matches(".rs\"").to_string())
        .collect()
}

#[test]
fn every_fuzz_target_is_replayed_here() {
    for name in declared_targets() {
        // An empty input reaches the target's dispatch without touching any parser.
        run(&name, b"");
    }
}

#[test]
fn the_seeds_from_events_pass_every_harness() {
    let out = std::env::temp_dir().join(format!("runnel-fuzz-seeds-{}", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(workspace_root().join("scripts/fuzz-seeds.py"))
        .arg(&out)
        .status()
        .expect("python3 runs scripts/fuzz-seeds.py");
    assert!(status.success());
    let counts = replay(&out);
    std::fs::remove_dir_all(&out).unwrap();
    // Every target has seeds, so a renamed event file cannot leave one without any.
    assert_eq!(counts.len(), declared_targets().len(), "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
}

#[test]
fn saved_crashes_stay_fixed() {
    replay(&workspace_root().join("fuzz/regressions"));
}
