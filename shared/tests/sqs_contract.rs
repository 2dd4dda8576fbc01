//! Property test: the processor behind the SQS source under randomized queue re-delivery.
//!
//! Random messages (clean, poison, gzip, NDJSON, filtered and fanned-out documents, in a few
//! message groups) go through `runnel::testing::queue` — random batches from a standard queue,
//! in-order batches from a FIFO queue, reported messages received again — with transient
//! transform failures, injected S3 faults and crashes, in every mode the SQS source picks. With
//! messages received until deleted, the union of output must hold every valid document exactly
//! once and quarantine every bad one exactly once; on a FIFO queue no message of a group lands
//! before an earlier one of its group.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use common::*;
use proptest::prelude::*;
use runnel::pipeline::{Processor, ProcessorConfig};
use runnel::sink::{MemoryStore, Sink, SinkErrorKind};
use runnel::source::{BatchSource, FailureMode, SourceRecord, Sqs};
use runnel::testing::queue::{drive, Invocation, QueueConfig};
use runnel::testing::FaultyStore;
use runnel::window::MemoryAlerts;

#[derive(Debug, Clone)]
struct Msg {
    docs: Option<Vec<Doc>>,
    gzip: bool,
    group: u8,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        prop_oneof![8 => prop::collection::vec(doc_strategy(), 1..4).prop_map(Some), 1 => Just(None)],
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(docs, gzip, group)| Msg { docs, gzip, group })
}

#[derive(Debug, Clone)]
struct Scenario {
    msgs: Vec<Msg>,
    fifo: bool,
    configured: Option<FailureMode>,
    max_batch: usize,
    fault_rate: u64,
    seed: u64,
    transient: Vec<(usize, usize)>,
    crashes: Vec<Option<usize>>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(msg(), 1..40),
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some(FailureMode::Ordered)),
            Just(Some(FailureMode::ReportAll)),
            Just(Some(FailureMode::PerGroup))
        ],
        1usize..12,
        prop_oneof![Just(0u64), 5u64..35],
        any::<u64>(),
        prop::collection::vec((0usize..40, 1usize..3), 0..4),
        prop::collection::vec(
            prop_oneof![3 => Just(None), 1 => (0usize..4).prop_map(Some)],
            1..10,
        ),
    )
        .prop_map(
            |(msgs, fifo, configured, max_batch, fault_rate, seed, transient, crashes)| Scenario {
                msgs,
                fifo,
                configured,
                max_batch,
                fault_rate,
                seed,
                transient,
                crashes,
            },
        )
}

struct Message {
    id: String,
    group: String,
    data: Vec<u8>,
}

/// Builds the messages and the ids the output must hold.
fn build(s: &Scenario, queue: &str) -> (Vec<Message>, BTreeSet<String>, BTreeSet<String>) {
    let (mut msgs, mut good, mut bad) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    for (i, m) in s.msgs.iter().enumerate() {
        let id = seq(i);
        let data = match &m.docs {
            None => {
                bad.insert(format!("{queue}:{id}:0"));
                vec![0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad]
            }
            Some(docs) => {
                let text = ndjson(
                    docs,
                    &format!("{queue}:{id}"),
                    &i.to_string(),
                    &mut good,
                    &mut bad,
                );
                if m.gzip {
                    gzip(text.as_bytes())
                } else {
                    text.into_bytes()
                }
            }
        };
        msgs.push(Message {
            id,
            group: format!("g{}", m.group),
            data,
        });
    }
    (msgs, good, bad)
}

fn records<'a>(
    msgs: &'a [Message],
    batch: &[usize],
    queue: &'a str,
    fifo: bool,
) -> Vec<SourceRecord<'a>> {
    batch
        .iter()
        .map(|i| {
            let m = &msgs[*i];
            SourceRecord {
                item_identifier: &m.id,
                stream: queue,
                position: &m.id,
                partition_key: fifo.then_some(m.group.as_str()),
                arrival: Some(Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()),
                data: &m.data,
            }
        })
        .collect()
}

struct Outcome {
    panes_differ: Option<String>,
    alerts_differ: Option<String>,
    data_ids: Vec<String>,
    quarantine_ids: Vec<String>,
    completed: bool,
    /// Message indexes in the order of their first data put.
    first_puts: Vec<usize>,
}

fn run(s: &Scenario) -> (Outcome, BTreeSet<String>, BTreeSet<String>, Vec<Message>) {
    let queue = if s.fifo { "readings.fifo" } else { "readings" };
    let (msgs, good, bad) = build(s, queue);
    let index: HashMap<String, usize> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let inner = MemoryStore::new();
    let faults = Faults::new(s.fault_rate, s.seed);
    let first_puts: Arc<Mutex<Vec<usize>>> = Arc::default();
    let marker_failures = Arc::new(AtomicUsize::new(0));
    let store = {
        let (faults, first_puts) = (faults.clone(), first_puts.clone());
        let counted = marker_failures.clone();
        let prefix = format!("{queue}-");
        Arc::new(FaultyStore::new(inner.clone(), move |put| {
            if faults.fails_next_put() {
                if put.key.starts_with("alerts/") {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                return Some(SinkErrorKind::Throttled);
            }
            if put.key.starts_with("iot/") {
                let name = put.key.rsplit('/').next().unwrap();
                let id = name
                    .strip_prefix(&prefix)
                    .unwrap()
                    .split('-')
                    .next()
                    .unwrap();
                let mut order = first_puts.lock().unwrap();
                let i = index[id];
                if !order.contains(&i) {
                    order.push(i);
                }
            }
            None
        }))
    };
    let transform = TestTransform::default();
    for (i, n) in &s.transient {
        if *i < msgs.len() {
            transform
                .transient_failures
                .lock()
                .unwrap()
                .insert(seq(*i), *n);
        }
    }
    let publisher = MemoryAlerts::new();
    let p = Processor::new(
        transform,
        Sink::new(store),
        ProcessorConfig {
            redelivery: Sqs.redelivery(),
            ..config(FailureMode::ReportAll)
        },
    )
    .with_panes(panes())
    .with_alerts(alerts(publisher.clone()));
    let ids: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    let mut rng = s.seed | 1;
    let invocation = AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt.block_on(drive(
        &ids,
        QueueConfig {
            max_batch: s.max_batch,
            fifo: s.fifo,
            max_receives: None,
            max_invocations: 5_000,
        },
        |n| xorshift(&mut rng, n),
        |batch| {
            let k = invocation.fetch_add(1, Ordering::Relaxed);
            let crash = if k < 20 {
                s.crashes[k % s.crashes.len()]
            } else {
                None
            };
            faults.begin_invocation(crash);
            let batch = records(&msgs, &batch, queue, s.fifo);
            let p = &p;
            async move {
                let mode = Sqs.mode(&batch, s.configured);
                let out = p.process_in(&batch, mode).await;
                if crash.is_some() {
                    Invocation::FunctionError
                } else {
                    Invocation::Response(out.failures)
                }
            }
        },
    ));
    let objects = inner.objects();
    let outcome = Outcome {
        panes_differ: panes_differ(&objects),
        alerts_differ: alerts_differ(
            &objects,
            &publisher.published(),
            marker_failures.load(Ordering::Relaxed),
        ),
        data_ids: ids_of(&lines_under(&objects, "iot/")),
        quarantine_ids: ids_of(&lines_under(&objects, "quarantine/")),
        completed: report.completed,
        first_puts: first_puts.lock().unwrap().clone(),
    };
    (outcome, good, bad, msgs)
}

fn ids_of(lines: &[serde_json::Value]) -> Vec<String> {
    ids(lines)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Received until deleted: exactly once, whatever the faults, crashes and batches; FIFO
    /// groups land in order.
    #[test]
    fn exactly_once_and_in_group_order(s in scenario()) {
        let (r, good, bad, msgs) = run(&s);
        prop_assert!(r.completed, "the queue never emptied");
        prop_assert_eq!(duplicates(&r.data_ids), Vec::<String>::new(), "duplicated output");
        prop_assert_eq!(r.data_ids.iter().cloned().collect::<BTreeSet<_>>(), good, "output differs from the valid documents");
        prop_assert_eq!(duplicates(&r.quarantine_ids), Vec::<String>::new(), "duplicated quarantine");
        prop_assert_eq!(r.quarantine_ids.iter().cloned().collect::<BTreeSet<_>>(), bad, "quarantine differs from the bad documents");
        prop_assert_eq!(&r.panes_differ, &None, "merged aggregates differ from the accepted records'");
        prop_assert_eq!(&r.alerts_differ, &None, "alerts differ from the accepted records'");
        if s.fifo {
            for group in ["g0", "g1", "g2"] {
                let order: Vec<usize> = r.first_puts.iter().copied().filter(|i| msgs[*i].group == group).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "group {} landed out of order: {:?}", group, order);
            }
        }
    }
}
