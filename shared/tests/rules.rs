//! Real-time rules through the processor: a refused publish fails the batch and its retry sends
//! the alert, a re-delivered batch sends nothing again, and pipelines refuse rules they cannot
//! keep.

mod common;

use std::sync::Arc;

use common::*;
use runnel::pipeline::{BuildError, Pipeline, StreamConfig};
use runnel::sink::MemoryStore;
use runnel::source::{FailureMode, Firehose, Kinesis};
use runnel::window::MemoryAlerts;

fn shard() -> Vec<ShardRecord> {
    // Values 1 and 4 share key 1 in one window: one alert between them; 0 is within limits.
    [("a", 1), ("b", 0), ("c", 4)]
        .iter()
        .enumerate()
        .map(|(i, (device, value))| ShardRecord {
            seq: seq(i),
            data: reading_json(device, 8, *value).into_bytes(),
        })
        .collect()
}

#[tokio::test]
async fn a_refused_publish_fails_the_batch_and_its_retry_alerts_once() {
    let store = MemoryStore::new();
    let publisher = MemoryAlerts::new();
    let p = processor(
        TestTransform::default(),
        Arc::new(store.clone()),
        FailureMode::Ordered,
    )
    .with_alerts(alerts(publisher.clone()));
    let records = shard();
    let batch = source_records(&records);

    publisher.refuse_next(1);
    let refused = p.process(&batch).await;
    assert_eq!(refused.failures.len(), 3, "every record is reported");
    assert!(refused
        .errors
        .iter()
        .any(|e| e.contains("alerts not published")));
    assert!(publisher.published().is_empty());

    let retried = p.process(&batch).await;
    assert!(retried.failures.is_empty(), "{:?}", retried.errors);
    assert_eq!(retried.stats.alerts_published, 1);
    let alert = &publisher.published()[0];
    assert_eq!(alert.rule, "positive");
    assert_eq!(alert.key["bucket"], "1");
    assert_eq!(
        (alert.value, alert.position.as_str()),
        (1.0, seq(0).as_str())
    );
    assert_eq!(alert.window_start, "2026-11-22T08:00:00.000Z");
    assert_eq!(alert.window_end, "2026-11-22T08:30:00.000Z");
    // The marker holds the alert it stands for.
    let markers = lines_under(&store.objects(), "alerts/positive/dt=2026-11-22/");
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0]["id"], alert.id.as_str());

    let again = p.process(&batch).await;
    assert!(again.failures.is_empty());
    assert_eq!(again.stats.alerts_published, 0);
    assert_eq!(publisher.published().len(), 1, "re-delivery alerted twice");
}

#[test]
fn pipelines_refuse_rules_they_cannot_keep() {
    let config = StreamConfig::new("iot", "curated");
    let without_publisher = Pipeline::new("iot")
        .source(Kinesis)
        .transform(TestTransform::default())
        .rule(rule())
        .store(MemoryStore::new())
        .config(config.clone())
        .build();
    assert!(
        matches!(&without_publisher, Err(BuildError::Rule(m)) if m.contains(".alerts(..)")),
        "{:?}",
        without_publisher.err()
    );
    let firehose = Pipeline::new("iot")
        .source(Firehose)
        .transform(TestTransform::default())
        .rule(rule())
        .alerts(MemoryAlerts::new())
        .store(MemoryStore::new())
        .config(config.clone())
        .build();
    assert!(matches!(&firehose, Err(BuildError::Rule(m)) if m.contains("hands its output back")));
    let unnamed = Pipeline::new("iot")
        .source(Kinesis)
        .transform(TestTransform::default())
        .rule(runnel::window::Rule::above(
            "too hot",
            "value",
            1.0,
            |_: &Reading| None,
        ))
        .alerts(MemoryAlerts::new())
        .store(MemoryStore::new())
        .config(config)
        .build();
    assert!(matches!(&unnamed, Err(BuildError::Rule(m)) if m.contains("rule name")));
}
