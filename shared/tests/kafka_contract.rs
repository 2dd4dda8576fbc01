//! Property test: the Kafka source under randomized re-delivery of several partitions.
//!
//! Random partitions of records (clean, poison, NDJSON, filtered and fanned-out documents) go
//! through `runnel::testing::partitions` — batches that take a run of records from every
//! partition, each partition resumed from its lowest reported offset — as real Kafka events,
//! answered with the source's own response (partition and offset objects), with transient
//! transform failures, injected S3 faults and crashes. The union of output must hold every valid
//! document exactly once and quarantine every bad one exactly once.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use common::*;
use proptest::prelude::*;
use runnel::pipeline::{Processor, ProcessorConfig};
use runnel::sink::{MemoryStore, Sink, SinkErrorKind};
use runnel::source::kafka::KafkaBatch;
use runnel::source::{BatchSource, Kafka};
use runnel::testing::partitions::{drive, PartitionInvocation};
use runnel::testing::FaultyStore;

#[derive(Debug, Clone)]
struct Scenario {
    partitions: Vec<Vec<Vec<Doc>>>,
    max_per_partition: usize,
    fault_rate: u64,
    seed: u64,
    transient: Vec<(usize, usize, usize)>,
    crashes: Vec<Option<usize>>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let record = prop::collection::vec(doc_strategy(), 1..3);
    (
        prop::collection::vec(prop::collection::vec(record, 1..15), 1..4),
        1usize..8,
        prop_oneof![Just(0u64), 5u64..35],
        any::<u64>(),
        prop::collection::vec((0usize..4, 0usize..15, 1usize..3), 0..4),
        prop::collection::vec(
            prop_oneof![3 => Just(None), 1 => (0usize..4).prop_map(Some)],
            1..10,
        ),
    )
        .prop_map(
            |(partitions, max_per_partition, fault_rate, seed, transient, crashes)| Scenario {
                partitions,
                max_per_partition,
                fault_rate,
                seed,
                transient,
                crashes,
            },
        )
}

fn offset(p: usize, i: usize) -> i64 {
    (p * 1000 + i) as i64
}

/// Each record's value, and the ids the output must hold.
fn build(s: &Scenario) -> (Vec<Vec<String>>, BTreeSet<String>, BTreeSet<String>) {
    let (mut good, mut bad) = (BTreeSet::new(), BTreeSet::new());
    let values = s
        .partitions
        .iter()
        .enumerate()
        .map(|(p, records)| {
            records
                .iter()
                .enumerate()
                .map(|(i, docs)| {
                    let id = format!("readings-{p}:{}", offset(p, i));
                    let text = ndjson(docs, &id, &format!("{p}-{i}"), &mut good, &mut bad);
                    base64::engine::general_purpose::STANDARD.encode(text)
                })
                .collect()
        })
        .collect();
    (values, good, bad)
}

/// The Kafka event Lambda would send for a batch.
fn event(values: &[Vec<String>], batch: &[(usize, std::ops::Range<usize>)]) -> KafkaBatch {
    let mut records = serde_json::Map::new();
    for (p, range) in batch {
        let list: Vec<serde_json::Value> = range
            .clone()
            .map(|i| {
                serde_json::json!({
                    "topic": "readings", "partition": p, "offset": offset(*p, i),
                    "timestamp": 1_795_331_700_123i64, "timestampType": "CREATE_TIME",
                    "key": null, "value": values[*p][i], "headers": []
                })
            })
            .collect();
        records.insert(format!("readings-{p}"), list.into());
    }
    serde_json::from_value(serde_json::json!({"eventSource": "aws:kafka", "records": records}))
        .unwrap()
}

fn run(
    s: &Scenario,
) -> (
    Vec<String>,
    Vec<String>,
    bool,
    BTreeSet<String>,
    BTreeSet<String>,
) {
    let (values, good, bad) = build(s);
    let inner = MemoryStore::new();
    let faults = Faults::new(s.fault_rate, s.seed);
    let store = {
        let faults = faults.clone();
        Arc::new(FaultyStore::new(inner.clone(), move |_| {
            faults.fails_next_put().then_some(SinkErrorKind::Throttled)
        }))
    };
    let transform = TestTransform::default();
    for (p, i, n) in &s.transient {
        if *p < values.len() && *i < values[*p].len() {
            transform
                .transient_failures
                .lock()
                .unwrap()
                .insert(offset(*p, *i).to_string(), *n);
        }
    }
    let p = Processor::new(
        transform,
        Sink::new(store),
        ProcessorConfig {
            redelivery: Kafka.redelivery(),
            ..config(Kafka.default_mode())
        },
    )
    .with_panes(panes());
    let lengths: Vec<usize> = values.iter().map(Vec::len).collect();
    let mut rng = s.seed | 1;
    let invocation = AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt.block_on(drive(
        &lengths,
        5_000,
        s.max_per_partition,
        |n| xorshift(&mut rng, n),
        |batch| {
            let k = invocation.fetch_add(1, Ordering::Relaxed);
            let crash = if k < 20 {
                s.crashes[k % s.crashes.len()]
            } else {
                None
            };
            faults.begin_invocation(crash);
            let e = event(&values, &batch);
            let p = &p;
            async move {
                let records = Kafka.records(&e);
                let mode = Kafka.mode(&records, None);
                let out = p.process_in(&records, mode).await;
                if crash.is_some() {
                    return PartitionInvocation::FunctionError;
                }
                let response = serde_json::to_value(Kafka.response(&e, &out).unwrap()).unwrap();
                let mut failures = Vec::new();
                for f in response["batchItemFailures"].as_array().unwrap() {
                    let id = &f["itemIdentifier"];
                    let part: usize = id["partition"]
                        .as_str()
                        .unwrap()
                        .strip_prefix("readings-")
                        .unwrap()
                        .parse()
                        .unwrap();
                    let off = id["offset"].as_i64().unwrap() as usize - part * 1000;
                    if !batch.iter().any(|(bp, r)| *bp == part && r.contains(&off)) {
                        return PartitionInvocation::UnknownIdentifier;
                    }
                    failures.push((part, off));
                }
                PartitionInvocation::Response(failures)
            }
        },
    ));
    let objects = inner.objects();
    assert_eq!(
        panes_differ(&objects),
        None,
        "merged aggregates differ from the accepted records'"
    );
    (
        ids(&lines_under(&objects, "iot/")),
        ids(&lines_under(&objects, "quarantine/")),
        report.completed,
        good,
        bad,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every partition resumed from its lowest reported offset: exactly once, whatever the
    /// faults, crashes and batch cuts.
    #[test]
    fn exactly_once_across_partitions(s in scenario()) {
        let (data, quarantine, completed, good, bad) = run(&s);
        prop_assert!(completed, "the partitions never finished");
        prop_assert_eq!(duplicates(&data), Vec::<String>::new(), "duplicated output");
        prop_assert_eq!(data.iter().cloned().collect::<BTreeSet<_>>(), good, "output differs from the valid documents");
        prop_assert_eq!(duplicates(&quarantine), Vec::<String>::new(), "duplicated quarantine");
        prop_assert_eq!(quarantine.iter().cloned().collect::<BTreeSet<_>>(), bad, "quarantine differs from the bad documents");
    }
}
