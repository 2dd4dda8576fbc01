//! Every sample event in `events/` parses as the event its handler takes, survives a
//! serialise/parse round trip, and produces the outcome its name promises.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
use aws_lambda_events::event::kafka::KafkaEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use runnel::apps::alert::Incoming;
use runnel::pipeline::StreamConfig;
use runnel::sink::MemoryStore;
use runnel::source::dynamodb::DynamoDbBatch;
use runnel::source::kinesis::KinesisBatch;
use runnel_tests::{event_file, ndjson_lines, workspace_root};

#[test]
fn every_event_file_round_trips() {
    let mut seen = 0;
    for entry in std::fs::read_dir(workspace_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.starts_with("kinesis-") {
            let event: KinesisEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again: KinesisEvent =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            assert_eq!(event, again, "{name}");
            seen += 1;
        } else if name.starts_with("sqs-") {
            let event: SqsEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again: SqsEvent =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            assert_eq!(event, again, "{name}");
            seen += 1;
        } else if name.starts_with("firehose-") {
            let event: KinesisFirehoseEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again: KinesisFirehoseEvent =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            assert_eq!(event.records.len(), again.records.len(), "{name}");
            seen += 1;
        } else if name.starts_with("kafka-") {
            let event: KafkaEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again: KafkaEvent =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            assert_eq!(event, again, "{name}");
            let batch: runnel::source::kafka::KafkaBatch = serde_json::from_str(&text).unwrap();
            let total: usize = event.records.values().map(Vec::len).sum();
            assert_eq!(batch.records.len(), total, "{name}");
            seen += 1;
        } else if name.starts_with("dynamodb-") {
            let event: DynamoDbEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again: DynamoDbEvent =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            assert_eq!(event, again, "{name}");
            let batch: DynamoDbBatch = serde_json::from_str(&text).unwrap();
            assert_eq!(batch.len(), event.records.len(), "{name}");
            seen += 1;
        } else if name.starts_with("alert-") {
            // Alert events are any JSON; each must be recognised as the kind its name says.
            let value: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let kinds: Vec<&str> = runnel::apps::alert::deliveries(&value)
                .iter()
                .map(|d| match &d.event {
                    Incoming::GlueJobStateChange(_) => "glue",
                    Incoming::GlueJobRunStatus(_) => "glue-stuck",
                    Incoming::Invocation(r) if r.batch.is_some() => "esm",
                    Incoming::Invocation(_) => "lambda",
                    Incoming::StepFunctions(_) => "sfn",
                    Incoming::StoredRecord(_) => "stored",
                    Incoming::Unknown(_) => "unknown",
                })
                .collect();
            let expected = match name.as_str() {
                "alert-glue-stuck.json" => vec!["glue-stuck"],
                n if n.starts_with("alert-glue-") => vec!["glue"],
                "alert-kinesis-esm-duplicate-sqs.json" => vec!["esm", "esm"],
                n if n.starts_with("alert-kinesis-esm-") => vec!["esm"],
                n if n.starts_with("alert-kafka-esm-") => vec!["esm"],
                n if n.starts_with("alert-esm-failure-stored") => vec!["stored"],
                n if n.starts_with("alert-lambda-") => vec!["lambda"],
                n if n.starts_with("alert-sfn-") => vec!["sfn"],
                "alert-unknown.json" => vec!["unknown"],
                other => panic!("no expectation for {other}"),
            };
            assert_eq!(kinds, expected, "{name}");
            seen += 1;
        } else if name.starts_with("window-") {
            // Tumbling-window invocations: the full models read them (runnel reads them with
            // the sources' own readers through source::Windowed).
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let window = if name == "window-kinesis.json" {
                let e: aws_lambda_events::event::kinesis::KinesisTimeWindowEvent =
                    serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(e.kinesis_event.records.len(), 2, "{name}");
                e.time_window_properties
            } else {
                let e: aws_lambda_events::event::dynamodb::TimeWindowEvent =
                    serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(e.dynamo_db_event.records.len(), 1, "{name}");
                e.time_window_properties
            };
            assert!(
                window.state.is_empty() && window.shard_id.is_some(),
                "{name}"
            );
            seen += 1;
        } else if name.starts_with("s3-") {
            let value: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let objs = runnel::s3event::objects(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let keys: Vec<&str> = objs.iter().map(|o| o.key.as_str()).collect();
            let export = "transactions/dt=2026-11-22/daily export Zürich café.csv.gz";
            let expected: Vec<&str> = match name.as_str() {
                "s3-duplicate-delivery.json" => vec![export, export],
                "s3-success-marker.json" => vec!["transactions/dt=2026-11-22/_SUCCESS"],
                _ => vec![export],
            };
            assert_eq!(keys, expected, "{name}");
            assert!(objs.iter().all(|o| o.bucket == "runnel-dev-raw"));
            seen += 1;
        } else {
            panic!("events/{name}: no handler claims this sample");
        }
    }
    assert!(seen >= 26, "expected every sample, saw {seen}");
}

async fn run(name: &str) -> (runnel::source::BatchOutcome, MemoryStore) {
    let store = MemoryStore::new();
    let config = StreamConfig::from_lookup("kinesis-processor", |n| {
        (n == "OUTPUT_BUCKET").then(|| "curated".into())
    })
    .expect("the default configuration is valid");
    let runner = kinesis_processor::pipeline()
        .store(store.clone())
        .config(config)
        .build()
        .unwrap();
    // The model the runtime hands the handler.
    let event: KinesisBatch =
        serde_json::from_str(&event_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (response, outcome) = runner.handle(&event).await;
    assert_eq!(
        response.unwrap().batch_item_failures.len(),
        outcome.failures.len()
    );
    (outcome, store)
}

#[tokio::test]
async fn clean_batch_sample() {
    let (out, store) = run("kinesis-clean.json").await;
    assert!(out.failures.is_empty());
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (4, 0)
    );
    let objects = store.objects();
    let hour8: Vec<_> = objects
        .iter()
        .filter(|((_, k), _)| k.contains("hour=08"))
        .collect();
    assert_eq!(hour8.len(), 1);
    let line = &ndjson_lines(hour8[0].1)[0];
    assert_eq!(line["temperature_c"], 22.0, "71.6 °F is 22 °C");
}

#[tokio::test]
async fn poison_batch_sample() {
    let (out, store) = run("kinesis-poison.json").await;
    assert!(out.failures.is_empty(), "bad data is never retried");
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (2, 2)
    );
    let q: Vec<serde_json::Value> = store
        .objects()
        .iter()
        .filter(|((_, k), _)| k.starts_with("quarantine/"))
        .flat_map(|(_, b)| ndjson_lines(b))
        .collect();
    let kinds: Vec<&str> = q.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["json", "validation"]);
}

#[tokio::test]
async fn gzip_ndjson_sample() {
    let (out, _) = run("kinesis-gzip-ndjson.json").await;
    assert!(out.failures.is_empty());
    // 5 + 5 NDJSON readings, 2 good of 3 in the mixed record; 1 bad line and 1 corrupt gzip record.
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (12, 2)
    );
}

#[tokio::test]
async fn empty_sample() {
    let (out, store) = run("kinesis-empty.json").await;
    assert!(out.failures.is_empty());
    assert_eq!(store.put_count(), 0);
}

async fn run_sqs(
    event: &SqsEvent,
) -> (
    Result<aws_lambda_events::event::sqs::SqsBatchResponse, runnel::source::ResponseError>,
    runnel::source::BatchOutcome,
    MemoryStore,
) {
    let store = MemoryStore::new();
    let runner = kinesis_processor::pipeline_from(runnel::source::Sqs)
        .store(store.clone())
        .config(StreamConfig::new("kinesis-processor", "curated"))
        .build()
        .unwrap();
    // The handler reads its lean model; the full one is what a test edits.
    let batch: runnel::source::sqs::SqsBatch =
        serde_json::from_value(serde_json::to_value(event).unwrap()).unwrap();
    let (response, outcome) = runner.handle(&batch).await;
    (response, outcome, store)
}

fn sqs_sample(name: &str) -> SqsEvent {
    serde_json::from_str(&event_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Each message is its own object, keyed and identified by its message id.
#[tokio::test]
async fn sqs_samples_land_one_object_per_message() {
    for (name, queue, messages, written, quarantined) in [
        ("sqs-readings.json", "readings", 4, 3, 2),
        ("sqs-fifo-readings.json", "readings.fifo", 4, 3, 1),
    ] {
        let event = sqs_sample(name);
        let (response, out, store) = run_sqs(&event).await;
        assert!(response.unwrap().batch_item_failures.is_empty(), "{name}");
        assert_eq!(out.stats.records_in, messages, "{name}");
        assert_eq!(
            (out.stats.documents_written, out.stats.documents_quarantined),
            (written, quarantined),
            "{name}"
        );
        let objects = store.objects();
        let data: Vec<&String> = objects
            .keys()
            .map(|(_, k)| k)
            .filter(|k| k.starts_with("kinesis-processor/"))
            .collect();
        for m in &event.records {
            let id = m.message_id.as_deref().unwrap();
            let own: Vec<_> = data.iter().filter(|k| k.contains(id)).collect();
            assert!(own.len() <= 1, "{name}: {own:?}");
        }
        let ids: Vec<String> = objects
            .iter()
            .filter(|((_, k), _)| k.starts_with("kinesis-processor/"))
            .flat_map(|(_, b)| ndjson_lines(b))
            .map(|l| l["_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), written, "{name}");
        assert!(
            ids.iter().all(|id| id.starts_with(&format!("{queue}:"))),
            "{ids:?}"
        );
    }
}

#[tokio::test]
async fn sqs_message_without_an_id_fails_the_batch_before_anything_is_written() {
    let mut event = sqs_sample("sqs-readings.json");
    event.records[1].message_id = None;
    let (response, out, store) = run_sqs(&event).await;
    assert!(response.unwrap_err().0.contains("no identifier"));
    assert_eq!(out.stats.records_in, 0);
    assert_eq!(store.put_count(), 0);
}

/// The table pipeline on the DynamoDB sample `name`, into memory; nothing may be reported.
async fn run_table(name: &str) -> (runnel::source::BatchOutcome, MemoryStore) {
    let store = MemoryStore::new();
    let runner = kinesis_processor::table_pipeline()
        .store(store.clone())
        .config(StreamConfig::new("kinesis-processor", "curated"))
        .build()
        .unwrap();
    let event: DynamoDbBatch =
        serde_json::from_str(&event_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (response, outcome) = runner.handle(&event).await;
    assert!(response.unwrap().batch_item_failures.is_empty(), "{name}");
    (outcome, store)
}

/// The table's change records: INSERT and MODIFY land as readings, REMOVE makes nothing, a bad
/// new image is quarantined, nothing is reported.
#[tokio::test]
async fn dynamodb_sample_lands_new_images() {
    let (out, store) = run_table("dynamodb-readings.json").await;
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (2, 1)
    );
    use runnel::source::RecordStatus::*;
    assert_eq!(out.records, [Written, Written, Filtered, Quarantined]);
    assert_eq!(store.put_count(), 2, "one data run, one quarantine object");
}

/// A bad item, then its fix, then a removal whose old image is no reading: the fix lands (its old
/// image is never read), the removal makes nothing, the bad insert alone is quarantined; an
/// integer beyond 2^53 stays text in the quarantined document.
#[tokio::test]
async fn dynamodb_corrections_land_whatever_the_old_image() {
    let (out, store) = run_table("dynamodb-corrections.json").await;
    use runnel::source::RecordStatus::*;
    assert_eq!(out.records, [Quarantined, Written, Filtered]);
    let objects = store.objects();
    let under = |prefix: &str| -> Vec<serde_json::Value> {
        objects
            .iter()
            .filter(|((_, k), _)| k.starts_with(prefix))
            .flat_map(|(_, b)| ndjson_lines(b))
            .collect()
    };
    let landed = under("kinesis-processor/");
    assert_eq!(landed.len(), 1, "{landed:?}");
    assert_eq!(landed[0]["device_id"], "sensor-0050");
    assert_eq!(landed[0]["temperature_c"], 23.0);
    let quarantined = under("quarantine/");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        quarantined[0]["reason"]
            .as_str()
            .unwrap()
            .contains("temperature"),
        "{quarantined:?}"
    );
    use base64::Engine as _;
    let document: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(quarantined[0]["data_base64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(document["newImage"]["counter"], "12345678901234567");
}

/// A CloudWatch Logs subscription on the stream: each log event is one document (here not a
/// reading, so quarantined one by one with its own JSON), the control message is dropped.
#[tokio::test]
async fn cloudwatch_logs_sample() {
    let (out, store) = run("kinesis-cloudwatch-logs.json").await;
    assert!(out.failures.is_empty());
    use runnel::source::RecordStatus::*;
    assert_eq!(out.records, [Quarantined, Filtered]);
    assert_eq!(out.stats.documents_quarantined, 3);
    let raws: Vec<serde_json::Value> = store
        .objects()
        .iter()
        .filter(|((_, k), _)| k.starts_with("quarantine/"))
        .flat_map(|(_, b)| ndjson_lines(b))
        .map(|q| {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(q["data_base64"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice(&raw).unwrap()
        })
        .collect();
    assert_eq!(raws.len(), 3);
    // Each entry is the log event's, under its own id.
    let mut ids: Vec<String> = store
        .objects()
        .iter()
        .filter(|((_, k), _)| k.starts_with("quarantine/"))
        .flat_map(|(_, b)| ndjson_lines(b))
        .map(|q| q["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut event_ids: Vec<String> = raws
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    event_ids.sort();
    assert_eq!(ids, event_ids);
    assert_eq!(raws[1]["logGroup"], "/iot/gateway");
    assert!(raws[1]["message"].as_str().unwrap().contains("sensor-0041"));
}

/// A KPL-aggregated record: its user records land with ids `shard:sequence:user record:index`,
/// the bad one is quarantined alone; the plain record beside it is unaffected; a copy of the
/// aggregate with a broken digest is quarantined whole, with the reason.
#[tokio::test]
async fn kpl_aggregated_sample() {
    let (out, store) = run("kinesis-kpl-aggregated.json").await;
    assert!(out.failures.is_empty());
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (4, 2)
    );
    let objects = store.objects();
    let mut ids: Vec<String> = objects
        .iter()
        .filter(|((_, k), _)| !k.starts_with("quarantine/"))
        .flat_map(|(_, b)| ndjson_lines(b))
        .map(|l| l["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let seq = |i: u32| {
        format!("shardId-000000000000:4959033827149025660855969253836157109592157598913{i:07}")
    };
    assert_eq!(
        ids,
        [
            format!("{}:0:0", seq(1)),
            format!("{}:1:0", seq(1)),
            format!("{}:1:1", seq(1)),
            format!("{}:0", seq(2)),
        ]
    );
    let q: Vec<serde_json::Value> = objects
        .iter()
        .filter(|((_, k), _)| k.starts_with("quarantine/"))
        .flat_map(|(_, b)| ndjson_lines(b))
        .collect();
    let user = q.iter().find(|e| e["kind"] == "validation").unwrap();
    assert_eq!(user["_id"], format!("{}:2:0", seq(1)));
    assert_eq!(user["sub_record"], 2);
    let corrupt = q.iter().find(|e| e["kind"] == "kpl").unwrap();
    assert_eq!(corrupt["_id"], format!("{}:0", seq(3)));
    assert_eq!(corrupt["reason"], "KPL aggregate fails its MD5 check");
}
