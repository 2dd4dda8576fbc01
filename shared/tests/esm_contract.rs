//! Property test: the processor under randomized event source mapping re-delivery.
//!
//! Random shards (clean, poison, gzip, NDJSON, KPL-aggregated and mixed records over several
//! hours, with documents the transform filters out or fans out into two outputs) are driven
//! through `runnel::testing::esm` — retries, checkpoint at the lowest failure, fresh batch sizes, bisect on
//! function error — with transient transform failures, injected S3 faults and crashes (an
//! invocation that dies after some puts). With the mapping retrying until success, the union of
//! output must hold every valid document exactly once and quarantine every bad one exactly once,
//! and the rule must have alerted each key and window of what landed, once.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use runnel::pipeline::Processor;
use runnel::sink::{MemoryStore, SinkErrorKind};
use runnel::source::FailureMode;
use runnel::testing::esm::{drive, EsmConfig, EsmReport, Invocation};
use runnel::testing::FaultyStore;
use runnel::transform::Transform;
use runnel::window::MemoryAlerts;

#[derive(Debug, Clone)]
enum Rec {
    Docs {
        docs: Vec<Doc>,
        gzip: bool,
    },
    Undecodable,
    /// A KPL-aggregated record of user records, each with its documents.
    Aggregated {
        subs: Vec<Vec<Doc>>,
    },
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    let doc = doc_strategy();
    prop_oneof![
        8 => (prop::collection::vec(doc.clone(), 1..4), any::<bool>()).prop_map(|(docs, gzip)| Rec::Docs { docs, gzip }),
        1 => Just(Rec::Undecodable),
        1 => prop::collection::vec(prop::collection::vec(doc, 1..3), 1..4).prop_map(|subs| Rec::Aggregated { subs }),
    ]
}

/// Builds the shard and the ids the output must hold.
fn build(recs: &[Rec]) -> (Vec<ShardRecord>, BTreeSet<String>, BTreeSet<String>) {
    let mut shard = Vec::new();
    let mut good = BTreeSet::new();
    let mut bad = BTreeSet::new();
    for (i, r) in recs.iter().enumerate() {
        let s = seq(i);
        let data = match r {
            Rec::Undecodable => {
                bad.insert(format!("{SHARD}:{s}:0"));
                // gzip magic followed by garbage
                vec![0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad]
            }
            Rec::Docs { docs, gzip: z } => {
                let text = ndjson(
                    docs,
                    &format!("{SHARD}:{s}"),
                    &format!("{i}"),
                    &mut good,
                    &mut bad,
                );
                if *z {
                    gzip(text.as_bytes())
                } else {
                    text.into_bytes()
                }
            }
            Rec::Aggregated { subs } => {
                let texts: Vec<String> = subs
                    .iter()
                    .enumerate()
                    .map(|(k, docs)| {
                        ndjson(
                            docs,
                            &format!("{SHARD}:{s}:{k}"),
                            &format!("{i}-{k}"),
                            &mut good,
                            &mut bad,
                        )
                    })
                    .collect();
                let parts: Vec<(&str, &[u8])> =
                    texts.iter().map(|t| ("pk", t.as_bytes())).collect();
                runnel::records::kpl::aggregate(&parts)
            }
        };
        shard.push(ShardRecord { seq: s, data });
    }
    (shard, good, bad)
}

#[derive(Debug, Clone)]
struct Scenario {
    recs: Vec<Rec>,
    mode: FailureMode,
    max_batch: usize,
    batch_sizes: Vec<usize>,
    fault_rate: u64,
    seed: u64,
    transient: Vec<(usize, usize)>,
    crashes: Vec<Option<usize>>,
    /// Whether the transform awaits a lookup before `apply` ([`Enriching`]).
    enrich: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(rec_strategy(), 1..40),
        prop_oneof![Just(FailureMode::Ordered), Just(FailureMode::ReportAll)],
        1usize..16,
        prop::collection::vec(1usize..16, 1..8),
        prop_oneof![Just(0u64), 5u64..35],
        any::<u64>(),
        prop::collection::vec((0usize..40, 1usize..3), 0..4),
        prop::collection::vec(
            prop_oneof![3 => Just(None), 1 => (0usize..4).prop_map(Some)],
            1..10,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(recs, mode, max_batch, batch_sizes, fault_rate, seed, transient, crashes, enrich)| {
                Scenario {
                    recs,
                    mode,
                    max_batch,
                    batch_sizes,
                    fault_rate,
                    seed,
                    transient,
                    crashes,
                    enrich,
                }
            },
        )
}

struct RunResult {
    panes_differ: Option<String>,
    alerts_differ: Option<String>,
    data_ids: Vec<String>,
    quarantine_ids: Vec<String>,
    completed: bool,
    reports_with_failures: usize,
    discarded: Vec<std::ops::Range<usize>>,
}

/// Drives the scenario's shard through `p` under the mapping model.
fn drive_with<T: Transform<Output = Reading>>(
    s: &Scenario,
    shard: &[ShardRecord],
    faults: &Faults,
    p: Processor<T>,
    publisher: &MemoryAlerts,
    max_retries: Option<u32>,
) -> EsmReport {
    let p = p.with_panes(panes()).with_alerts(alerts(publisher.clone()));
    let ids: Vec<String> = shard.iter().map(|r| r.seq.clone()).collect();
    let sizes = s.batch_sizes.clone();
    let mut size_i = 0;
    let invocation = AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(drive(
        &ids,
        EsmConfig {
            max_batch: s.max_batch,
            max_retries,
            bisect_on_error: true,
            max_invocations: 5_000,
        },
        || {
            size_i += 1;
            sizes[size_i % sizes.len()]
        },
        |range| {
            let k = invocation.fetch_add(1, Ordering::Relaxed);
            // Crashes only in the first invocations, so that a run with retries forever ends.
            let crash = if k < 20 {
                s.crashes[k % s.crashes.len()]
            } else {
                None
            };
            faults.begin_invocation(crash);
            let batch = source_records(&shard[range]);
            let p = &p;
            async move {
                let out = p.process(&batch).await;
                if crash.is_some() {
                    Invocation::FunctionError
                } else {
                    Invocation::Response(out.failures)
                }
            }
        },
    ))
}

fn run(
    s: &Scenario,
    max_retries: Option<u32>,
) -> (
    RunResult,
    BTreeSet<String>,
    BTreeSet<String>,
    Vec<ShardRecord>,
) {
    let (shard, good, bad) = build(&s.recs);
    let inner = MemoryStore::new();
    let faults = Faults::new(s.fault_rate, s.seed);
    let schedule = faults.clone();
    let marker_failures = Arc::new(AtomicUsize::new(0));
    let counted = marker_failures.clone();
    let store = Arc::new(FaultyStore::new(inner.clone(), move |put| {
        let fails = schedule.fails_next_put();
        if fails && put.key.starts_with("alerts/") {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        fails.then_some(SinkErrorKind::Throttled)
    }));
    let transform = TestTransform::default();
    for (i, n) in &s.transient {
        if *i < shard.len() {
            transform
                .transient_failures
                .lock()
                .unwrap()
                .insert(seq(*i), *n);
        }
    }
    let publisher = MemoryAlerts::new();
    let report = match s.enrich {
        false => drive_with(
            s,
            &shard,
            &faults,
            processor(transform, store, s.mode),
            &publisher,
            max_retries,
        ),
        true => drive_with(
            s,
            &shard,
            &faults,
            processor(Enriching(transform), store, s.mode),
            &publisher,
            max_retries,
        ),
    };
    let objects = inner.objects();
    let result = RunResult {
        panes_differ: panes_differ(&objects),
        alerts_differ: alerts_differ(
            &objects,
            &publisher.published(),
            marker_failures.load(Ordering::Relaxed),
        ),
        data_ids: ids_of(&lines_under(&objects, "iot/")),
        quarantine_ids: ids_of(&lines_under(&objects, "quarantine/")),
        completed: report.completed,
        reports_with_failures: report.partial_failures,
        discarded: report.discarded,
    };
    (result, good, bad, shard)
}

fn ids_of(lines: &[serde_json::Value]) -> Vec<String> {
    ids(lines)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Retries until success: exactly once, whatever the faults, crashes and batch boundaries.
    #[test]
    fn exactly_once_when_every_batch_eventually_completes(s in scenario()) {
        let (r, good, bad, _) = run(&s, None);
        prop_assert!(r.completed, "the shard never finished");
        prop_assert_eq!(duplicates(&r.data_ids), Vec::<String>::new(), "duplicated output");
        prop_assert_eq!(r.data_ids.iter().cloned().collect::<BTreeSet<_>>(), good, "output differs from the valid documents");
        prop_assert_eq!(duplicates(&r.quarantine_ids), Vec::<String>::new(), "duplicated quarantine");
        prop_assert_eq!(r.quarantine_ids.iter().cloned().collect::<BTreeSet<_>>(), bad, "quarantine differs from the bad documents");
        prop_assert_eq!(r.panes_differ, None, "merged aggregates differ from the accepted records'");
        prop_assert_eq!(r.alerts_differ, None, "alerts differ from the accepted records'");
    }

    /// Bad data alone never causes a retry: with no transient fault, no batch reports a failure.
    #[test]
    fn bad_data_never_blocks_the_shard(mut s in scenario()) {
        s.fault_rate = 0;
        s.transient.clear();
        s.crashes = vec![None];
        let (r, _, bad, _) = run(&s, Some(0));
        prop_assert!(r.completed);
        prop_assert_eq!(r.reports_with_failures, 0);
        prop_assert!(r.discarded.is_empty());
        prop_assert_eq!(r.quarantine_ids.len(), bad.len());
    }

    /// With a retry limit, batches may go to the on-failure destination; every valid document is
    /// then either in the output (possibly more than once after a crash: same `_id`) or in a
    /// discarded batch — nothing is lost silently.
    #[test]
    fn nothing_lost_when_the_mapping_gives_up(s in scenario()) {
        let (r, good, _, shard) = run(&s, Some(1));
        prop_assert!(r.completed);
        let written: BTreeSet<String> = r.data_ids.iter().cloned().collect();
        let discarded: BTreeSet<&str> = r.discarded.iter().flat_map(|d| shard[d.clone()].iter().map(|x| x.seq.as_str())).collect();
        for id in &good {
            let seq = id.split(':').nth(1).unwrap();
            prop_assert!(written.contains(id) || discarded.contains(seq), "{} lost", id);
        }
        if r.discarded.is_empty() {
            prop_assert_eq!(duplicates(&r.data_ids), Vec::<String>::new());
        }
    }
}
