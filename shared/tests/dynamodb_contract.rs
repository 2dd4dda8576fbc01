//! Property test: a table's change records through `NewImages` under randomised stream
//! re-delivery (`runnel::testing::esm`: retries from the lowest failure, fresh batch sizes,
//! bisect on function error) with transient transform failures, S3 faults and crashes.
//!
//! The records are what the DynamoDB reader writes for each change: inserts of valid and invalid
//! items, corrections (a valid new image over an invalid old one), updates, and removals whose
//! old image is valid, invalid or not JSON of the item's shape at all. Every valid new image must
//! land exactly once, every invalid one be quarantined exactly once, and removals leave nothing:
//! the old image never decides a change's fate.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use runnel::pipeline::Processor;
use runnel::sink::{MemoryStore, Sink, SinkErrorKind};
use runnel::source::dynamodb::NewImages;
use runnel::source::FailureMode;
use runnel::testing::esm::{drive, EsmConfig, Invocation};
use runnel::testing::FaultyStore;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
enum Change {
    Insert,
    /// An item written without the fields the item type needs.
    InsertInvalid,
    /// A valid new image over an invalid old one: the fix of a bad item.
    Correction,
    Update,
    /// A removal; the old image a valid item, an invalid one, or no item at all.
    Remove(Value),
}

fn change_strategy() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Insert),
        1 => Just(Change::InsertInvalid),
        2 => Just(Change::Correction),
        1 => Just(Change::Update),
        1 => prop_oneof![
            Just(json!({"device": "d", "hour": 8, "value": 1})),
            Just(json!({"device": 7, "temperature": "very hot"})),
            Just(json!("not an item")),
        ]
        .prop_map(Change::Remove),
    ]
}

fn item(i: usize) -> Value {
    json!({"device": format!("device-{}", i % 5), "hour": 7 + i % 3, "value": i})
}

/// The document the DynamoDB reader writes for change `i`.
fn document(i: usize, change: &Change) -> Value {
    let keys = json!({"device": format!("device-{}", i % 5)});
    let broken = json!({"device": format!("device-{}", i % 5), "hour": 99});
    match change {
        Change::Insert => json!({"eventName": "INSERT", "keys": keys, "newImage": item(i)}),
        Change::InsertInvalid => json!({"eventName": "INSERT", "keys": keys, "newImage": broken}),
        Change::Correction => {
            json!({"eventName": "MODIFY", "keys": keys, "newImage": item(i), "oldImage": broken})
        }
        Change::Update => {
            json!({"eventName": "MODIFY", "keys": keys, "newImage": item(i), "oldImage": item(i + 1)})
        }
        Change::Remove(old) => json!({"eventName": "REMOVE", "keys": keys, "oldImage": old}),
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    changes: Vec<Change>,
    max_batch: usize,
    batch_sizes: Vec<usize>,
    fault_rate: u64,
    seed: u64,
    transient: Vec<(usize, usize)>,
    crashes: Vec<Option<usize>>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(change_strategy(), 1..40),
        1usize..16,
        prop::collection::vec(1usize..16, 1..8),
        prop_oneof![Just(0u64), 5u64..35],
        any::<u64>(),
        prop::collection::vec((0usize..40, 1usize..3), 0..4),
        prop::collection::vec(
            prop_oneof![3 => Just(None), 1 => (0usize..4).prop_map(Some)],
            1..10,
        ),
    )
        .prop_map(
            |(changes, max_batch, batch_sizes, fault_rate, seed, transient, crashes)| Scenario {
                changes,
                max_batch,
                batch_sizes,
                fault_rate,
                seed,
                transient,
                crashes,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn new_images_land_once_and_old_images_never_decide(s in scenario()) {
        let shard: Vec<ShardRecord> = s
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| ShardRecord { seq: seq(i), data: serde_json::to_vec(&document(i, c)).unwrap() })
            .collect();
        let (mut good, mut bad) = (BTreeSet::new(), BTreeSet::new());
        for (i, c) in s.changes.iter().enumerate() {
            let id = format!("{SHARD}:{}:0", seq(i));
            match c {
                Change::Insert | Change::Correction | Change::Update => { good.insert(id); }
                Change::InsertInvalid => { bad.insert(id); }
                Change::Remove(_) => {}
            }
        }
        let inner = MemoryStore::new();
        let faults = Faults::new(s.fault_rate, s.seed);
        let schedule = faults.clone();
        let store = Arc::new(FaultyStore::new(inner.clone(), move |_| {
            schedule.fails_next_put().then_some(SinkErrorKind::Throttled)
        }));
        let transform = TestTransform::default();
        for (i, n) in &s.transient {
            if *i < shard.len() {
                transform.transient_failures.lock().unwrap().insert(seq(*i), *n);
            }
        }
        let p = Processor::new(NewImages(transform), Sink::new(store), config(FailureMode::Ordered));
        let positions: Vec<String> = shard.iter().map(|r| r.seq.clone()).collect();
        let mut size_i = 0;
        let invocation = AtomicUsize::new(0);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let report = rt.block_on(drive(
            &positions,
            EsmConfig { max_batch: s.max_batch, max_retries: None, bisect_on_error: true, max_invocations: 5_000 },
            || {
                size_i += 1;
                s.batch_sizes[size_i % s.batch_sizes.len()]
            },
            |range| {
                let k = invocation.fetch_add(1, Ordering::Relaxed);
                // Crashes only in the first invocations, so that the run ends.
                let crash = if k < 20 { s.crashes[k % s.crashes.len()] } else { None };
                faults.begin_invocation(crash);
                let batch = source_records(&shard[range]);
                let p = &p;
                async move {
                    let out = p.process(&batch).await;
                    if crash.is_some() { Invocation::FunctionError } else { Invocation::Response(out.failures) }
                }
            },
        ));
        prop_assert!(report.completed, "the shard never finished");
        let objects = inner.objects();
        let landed = ids(&lines_under(&objects, "iot/"));
        let quarantined = ids(&lines_under(&objects, "quarantine/"));
        prop_assert_eq!(duplicates(&landed), Vec::<String>::new(), "duplicated output");
        prop_assert_eq!(landed.into_iter().collect::<BTreeSet<_>>(), good, "output differs from the valid new images");
        prop_assert_eq!(duplicates(&quarantined), Vec::<String>::new(), "duplicated quarantine");
        prop_assert_eq!(quarantined.into_iter().collect::<BTreeSet<_>>(), bad, "quarantine differs from the invalid new images");
    }
}
