//! The batch processor's defined outcomes, one scenario each, on an in-memory store.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::*;
use runnel::sink::{MemoryStore, SinkErrorKind};
use runnel::source::FailureMode;
use runnel::testing::FaultyStore;

fn records(data: Vec<Vec<u8>>) -> Vec<ShardRecord> {
    data.into_iter()
        .enumerate()
        .map(|(i, data)| ShardRecord { seq: seq(i), data })
        .collect()
}

fn plain(device: &str, hour: u32) -> Vec<u8> {
    reading_json(device, hour, 1).into_bytes()
}

#[tokio::test]
async fn clean_batch_lands_partitioned_with_stable_ids() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let recs = records(vec![plain("a", 7), plain("b", 7), plain("c", 8)]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty(), "{:?}", out.errors);
    assert_eq!(out.stats.documents_written, 3);
    assert_eq!(out.stats.objects_written, 2);
    let objects = store.objects();
    let keys: Vec<&str> = objects.keys().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("iot/dt=2026-11-22/hour=07/{SHARD}-{}-00000.json.gz", seq(0)),
            format!("iot/dt=2026-11-22/hour=08/{SHARD}-{}-00000.json.gz", seq(2)),
        ]
    );
    let lines = lines_under(&objects, "iot/");
    assert_eq!(
        ids(&lines),
        [0, 1, 2].map(|i| format!("{SHARD}:{}:0", seq(i)))
    );
    assert_eq!(lines[0]["device"], "a");
}

#[tokio::test]
async fn poison_record_is_quarantined_not_retried() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let recs = records(vec![
        plain("a", 7),
        b"\x00\x01 not json".to_vec(),
        plain("c", 7),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty());
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (2, 1)
    );
    let objects = store.objects();
    let q = lines_under(&objects, "quarantine/");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["kind"], "json");
    assert_eq!(q[0]["stream"], SHARD);
    assert_eq!(q[0]["position"], seq(1));
    assert!(q[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("not valid JSON"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(q[0]["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"\x00\x01 not json");
    // The bad record sits between two good ones of the same hour: three runs, three objects.
    assert_eq!(out.stats.objects_written, 3);
    let quarantine_key = objects
        .keys()
        .find(|(_, k)| k.starts_with("quarantine/"))
        .unwrap();
    assert_eq!(
        quarantine_key.1,
        format!("quarantine/iot/dt=2026-11-22/{SHARD}-{}-00000.json", seq(1))
    );
}

#[tokio::test]
async fn ndjson_and_gzip_records_split_into_documents() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let ndjson = format!(
        "{}\n{}\n{{\"device\":\"\",\"hour\":99,\"value\":0}}\n",
        reading_json("a", 7, 1),
        reading_json("b", 7, 2)
    );
    let recs = records(vec![ndjson.clone().into_bytes(), gzip(ndjson.as_bytes())]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty());
    assert_eq!(
        (out.stats.documents_written, out.stats.documents_quarantined),
        (4, 2)
    );
    let objects = store.objects();
    let q = lines_under(&objects, "quarantine/");
    assert_eq!(q[0]["kind"], "validation");
    assert_eq!(q[0]["document_index"], 2);
    assert_eq!(
        q[0]["reason"],
        "failed validation: device: must not be empty; hour: must be 0-23"
    );
    assert_eq!(
        ids(&lines_under(&objects, "iot/")),
        [
            format!("{SHARD}:{}:0", seq(0)),
            format!("{SHARD}:{}:1", seq(0)),
            format!("{SHARD}:{}:0", seq(1)),
            format!("{SHARD}:{}:1", seq(1)),
        ]
    );
}

#[tokio::test]
async fn ordered_mode_stops_at_first_transient_failure() {
    let store = MemoryStore::new();
    let t = TestTransform::default();
    t.transient_failures.lock().unwrap().insert(seq(3), 1);
    let p = processor(t, Arc::new(store.clone()), FailureMode::Ordered);
    let recs = records((0..6).map(|i| plain(&format!("d{i}"), 7)).collect());
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(3), seq(4), seq(5)]);
    let written = ids(&lines_under(&store.objects(), "iot/"));
    assert_eq!(
        written,
        (0..3)
            .map(|i| format!("{SHARD}:{}:0", seq(i)))
            .collect::<Vec<_>>()
    );
    assert_eq!(out.stats.records_failed, 3);
}

#[tokio::test]
async fn report_all_mode_processes_past_failures() {
    let store = MemoryStore::new();
    let t = TestTransform::default();
    t.transient_failures.lock().unwrap().insert(seq(3), 1);
    let p = processor(t, Arc::new(store.clone()), FailureMode::ReportAll);
    // 0-2 hour 7 | 3 fails | 4 hour 7 (directly after the failure: held back) | 5 hour 8 (written)
    let recs = records(vec![
        plain("a", 7),
        plain("b", 7),
        plain("c", 7),
        plain("d", 7),
        plain("e", 7),
        plain("f", 8),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(3), seq(4)]);
    let written = ids(&lines_under(&store.objects(), "iot/"));
    assert_eq!(
        written,
        [0, 1, 2, 5].map(|i| format!("{SHARD}:{}:0", seq(i)))
    );
}

#[tokio::test]
async fn report_all_mode_holds_back_a_run_after_a_failure_and_filtered_records() {
    let store = MemoryStore::new();
    let t = TestTransform::default();
    t.transient_failures.lock().unwrap().insert(seq(1), 1);
    let p = processor(t, Arc::new(store.clone()), FailureMode::ReportAll);
    // 0 | 1 fails | 2 filtered | 3: a re-delivery from 1 writes 1..=3 under 1's key, so 3 must
    // not land now under its own.
    let recs = records(vec![
        plain("a", 7),
        plain("b", 7),
        plain("skip-c", 7),
        plain("d", 7),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(1), seq(3)]);
    p.process(&source_records(&recs[1..])).await;
    let written = ids(&lines_under(&store.objects(), "iot/"));
    assert_eq!(written, [0, 1, 3].map(|i| format!("{SHARD}:{}:0", seq(i))));
}

#[tokio::test]
async fn ordered_mode_reports_from_the_run_whose_write_failed() {
    let store = MemoryStore::new();
    let faulty = FaultyStore::new(store.clone(), |o| {
        o.key
            .contains("hour=08")
            .then_some(SinkErrorKind::Throttled)
    });
    let p = processor(
        TestTransform::default(),
        Arc::new(faulty),
        FailureMode::Ordered,
    );
    let recs = records(vec![
        plain("a", 7),
        plain("b", 7),
        plain("c", 8),
        plain("d", 8),
        plain("e", 7),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(2), seq(3), seq(4)]);
    assert!(out.errors[0].contains("Throttled"), "{:?}", out.errors);
    // Record 4 (hour 7) comes after the failure, so it is not written before it.
    assert_eq!(
        ids(&lines_under(&store.objects(), "iot/")),
        [0, 1].map(|i| format!("{SHARD}:{}:0", seq(i)))
    );
}

#[tokio::test]
async fn report_all_mode_writes_other_runs_when_one_write_fails() {
    let store = MemoryStore::new();
    let faulty = FaultyStore::new(store.clone(), |o| {
        o.key
            .contains("hour=08")
            .then_some(SinkErrorKind::Unavailable)
    });
    let p = processor(
        TestTransform::default(),
        Arc::new(faulty),
        FailureMode::ReportAll,
    );
    let recs = records(vec![
        plain("a", 7),
        plain("b", 8),
        plain("c", 8),
        plain("e", 7),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(1), seq(2)]);
    assert_eq!(
        ids(&lines_under(&store.objects(), "iot/")),
        [0, 3].map(|i| format!("{SHARD}:{}:0", seq(i)))
    );
}

#[tokio::test]
async fn empty_batch_succeeds_and_writes_nothing() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let out = p.process(&[]).await;
    assert!(out.failures.is_empty());
    assert_eq!(out.stats, Default::default());
    assert_eq!(store.put_count(), 0);
}

#[tokio::test]
async fn store_down_reports_every_record() {
    for mode in [FailureMode::Ordered, FailureMode::ReportAll] {
        let store = MemoryStore::new();
        let faulty = FaultyStore::new(store.clone(), |_| Some(SinkErrorKind::Unavailable));
        let p = processor(TestTransform::default(), Arc::new(faulty), mode);
        let recs = records(vec![plain("a", 7), b"bad".to_vec(), plain("c", 9)]);
        let out = p.process(&source_records(&recs)).await;
        assert_eq!(out.failures, [seq(0), seq(1), seq(2)], "{mode:?}");
        assert!(store.objects().is_empty());
    }
}

#[tokio::test]
async fn panicking_or_rejecting_transform_quarantines_the_record() {
    let store = MemoryStore::new();
    let t = TestTransform {
        panic_on_device: Some("boom".into()),
        reject_device: Some("blocked".into()),
        ..Default::default()
    };
    let p = processor(t, Arc::new(store.clone()), FailureMode::Ordered);
    let recs = records(vec![
        plain("a", 7),
        plain("boom", 7),
        plain("blocked", 7),
        plain("d", 7),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty());
    let q = lines_under(&store.objects(), "quarantine/");
    let kinds: Vec<&str> = q.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["panic", "rejected"]);
    assert_eq!(q[0]["reason"], "transform panicked: transform bug on boom");
    assert_eq!(out.stats.documents_written, 2);
}

#[tokio::test]
async fn redelivered_batch_overwrites_instead_of_duplicating() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let recs = records(vec![plain("a", 7), b"{".to_vec(), plain("c", 8)]);
    p.process(&source_records(&recs)).await;
    let first = store.objects();
    p.process(&source_records(&recs)).await;
    assert_eq!(store.objects(), first);
    assert_eq!(store.put_count(), 6);
}

#[tokio::test]
async fn oversized_record_is_quarantined() {
    let store = MemoryStore::new();
    let mut cfg = config(FailureMode::Ordered);
    cfg.limits.max_decoded_bytes = 64;
    let p = runnel::pipeline::Processor::new(
        TestTransform::default(),
        runnel::sink::Sink::new(store.clone()),
        cfg,
    );
    let big = format!(
        "{{\"device\":\"{}\",\"hour\":1,\"value\":1}}",
        "x".repeat(100)
    );
    let recs = records(vec![big.into_bytes()]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty());
    let q = lines_under(&store.objects(), "quarantine/");
    assert_eq!(q[0]["kind"], "too_large");
}

#[tokio::test]
async fn filtered_records_write_nothing_and_fan_out_keeps_stable_ids() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    );
    let recs = records(vec![
        plain("a", 7),
        plain("skip-b", 7),
        plain("fan-c", 7),
        b"not json".to_vec(),
    ]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty(), "{:?}", out.errors);
    use runnel::source::RecordStatus::*;
    assert_eq!(out.records, [Written, Filtered, Written, Quarantined]);
    assert_eq!(out.stats.documents_written, 3);
    let lines = lines_under(&store.objects(), "iot/");
    assert_eq!(
        ids(&lines),
        [
            format!("{SHARD}:{}:0", seq(0)),
            format!("{SHARD}:{}:0", seq(2)),
            format!("{SHARD}:{}:0:1", seq(2)),
        ]
    );
    // The fan-out's second output lands an hour later, in the next partition, under its own key.
    let keys: Vec<String> = store.objects().keys().map(|(_, k)| k.clone()).collect();
    assert!(
        keys.contains(&format!(
            "iot/dt=2026-11-22/hour=08/{SHARD}-{}-00000-1.json.gz",
            seq(2)
        )),
        "{keys:?}"
    );
    // A second delivery overwrites the same objects.
    let first = store.objects();
    p.process(&source_records(&recs)).await;
    assert_eq!(store.objects(), first);
}

#[tokio::test]
async fn an_encoder_that_fails_reports_the_records_instead_of_writing_empty_objects() {
    struct Broken;
    impl runnel::sink::Encoder for Broken {
        fn extension(&self) -> &'static str {
            "bin"
        }
        fn content_type(&self) -> &'static str {
            "application/octet-stream"
        }
        fn encode(&self, _: &[u8]) -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other("disk full"))
        }
        fn stream(&self, _: usize) -> Box<dyn runnel::sink::EncodeStream> {
            unimplemented!("not used by the stream path")
        }
    }
    for mode in [FailureMode::Ordered, FailureMode::ReportAll] {
        let store = MemoryStore::new();
        let p = runnel::pipeline::Processor::new(
            TestTransform::default(),
            runnel::sink::Sink::new(store.clone()).encoder(Broken),
            config(mode),
        );
        let recs = records(vec![plain("a", 7), plain("b", 7)]);
        let out = p.process(&source_records(&recs)).await;
        assert_eq!(out.failures, [seq(0), seq(1)], "{mode:?}");
        assert_eq!(out.stats.objects_written, 0);
        assert!(out.errors[0].contains("disk full"), "{:?}", out.errors);
        assert!(store.objects().is_empty(), "nothing written, {mode:?}");
    }
}

/// SQS FIFO per group: a transient failure reports its message and the later messages of its
/// group only; every message is its own object, keyed by its id.
#[tokio::test]
async fn per_group_mode_holds_back_only_the_failed_group() {
    let store = MemoryStore::new();
    let t = TestTransform::default();
    t.transient_failures.lock().unwrap().insert(seq(1), 1);
    let p = runnel::pipeline::Processor::new(
        t,
        runnel::sink::Sink::new(Arc::new(store.clone())),
        runnel::pipeline::ProcessorConfig {
            redelivery: runnel::source::Redelivery::PerRecord,
            ..config(FailureMode::PerGroup)
        },
    );
    // groups: a b a b a — b's first message fails.
    let recs = records((0..5).map(|i| plain(&format!("d{i}"), 7)).collect());
    let mut batch = source_records(&recs);
    for (i, r) in batch.iter_mut().enumerate() {
        r.partition_key = Some(if i % 2 == 0 { "a" } else { "b" });
    }
    let out = p.process(&batch).await;
    assert_eq!(out.failures, [seq(1), seq(3)]);
    let keys: Vec<String> = store.objects().into_keys().map(|(_, k)| k).collect();
    assert_eq!(keys.len(), 3, "one object per written message: {keys:?}");
    for i in [0, 2, 4] {
        assert!(keys.iter().any(|k| k.contains(&seq(i))), "{keys:?}");
    }
}

/// CloudWatch Logs payloads: one document per log event, each under the log event's id.
#[tokio::test]
async fn log_events_land_under_their_own_ids() {
    use runnel::records::cloudwatch_logs::LogEvent;
    use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
    struct Logs;
    impl Transform for Logs {
        type Input = LogEvent;
        type Output = LogEvent;
        fn apply(
            &self,
            input: LogEvent,
            _: &RecordContext<'_>,
            out: &mut Outputs<LogEvent>,
        ) -> Result<(), TransformError> {
            out.push(input);
            Ok(())
        }
    }
    let payload = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[{"id":"e-1","timestamp":1,"message":"a"},{"id":"e-2","timestamp":2,"message":"b"}]}"#;
    let store = MemoryStore::new();
    let p = runnel::pipeline::Processor::new(
        Logs,
        runnel::sink::Sink::new(Arc::new(store.clone())),
        config(FailureMode::Ordered),
    );
    let recs = records(vec![gzip(payload.as_bytes())]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty());
    assert_eq!(ids(&lines_under(&store.objects(), "iot/")), ["e-1", "e-2"]);
}

#[tokio::test]
async fn every_run_of_curated_output_writes_its_pane_under_the_same_name() {
    let store = MemoryStore::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    )
    .with_panes(panes());
    let bad = br#"{"device":"","hour":1,"value":0}"#.to_vec();
    let recs = records(vec![plain("a", 7), plain("b", 7), bad, plain("c", 8)]);
    let out = p.process(&source_records(&recs)).await;
    assert!(out.failures.is_empty(), "{:?}", out.errors);
    let objects = store.objects();
    let names = |prefix: &str| -> Vec<String> {
        objects
            .keys()
            .filter_map(|(_, k)| k.strip_prefix(prefix).map(str::to_string))
            .collect()
    };
    // Quarantine gets no pane; each data run gets one, named as the run is.
    assert_eq!(names("aggregates/readings/"), names("iot/"));
    assert_eq!(names("iot/").len(), 2);
    assert_eq!(panes_differ(&objects), None);
    let rows = lines_under(&objects, "aggregates/readings/dt=2026-11-22/hour=07/");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["readings"], 2);
    assert_eq!(rows[0]["_pane"], format!("{SHARD}:{}:0:0", seq(0)));
}

#[tokio::test]
async fn a_pane_that_cannot_be_written_fails_its_run_before_the_data_lands() {
    let store = MemoryStore::new();
    let faulty = FaultyStore::new(store.clone(), |o| {
        (o.key.starts_with("aggregates/") && o.key.contains("hour=08"))
            .then_some(SinkErrorKind::Throttled)
    });
    let p = processor(
        TestTransform::default(),
        Arc::new(faulty),
        FailureMode::Ordered,
    )
    .with_panes(panes());
    let recs = records(vec![plain("a", 7), plain("c", 8), plain("d", 8)]);
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(1), seq(2)]);
    let objects = store.objects();
    assert_eq!(
        ids(&lines_under(&objects, "iot/")),
        [format!("{SHARD}:{}:0", seq(0))]
    );
    assert_eq!(panes_differ(&objects), None);
}

#[test]
fn a_source_that_hands_its_output_back_cannot_aggregate() {
    let built = runnel::pipeline::Pipeline::new("readings")
        .source(runnel::source::Firehose)
        .transform(TestTransform::default())
        .store(MemoryStore::new())
        .config(runnel::pipeline::StreamConfig::new("readings", "curated"))
        .aggregate(aggregation())
        .build();
    let err = built.err().expect("refused").to_string();
    assert!(err.contains("no pane could be written"), "{err}");
}
