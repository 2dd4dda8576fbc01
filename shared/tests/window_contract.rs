//! Property test: Lambda's tumbling windows, through `runnel::testing::windows` (the emulator
//! ignores `TumblingWindowInSeconds`). Random shards over several windows, with bad, filtered
//! and fanned-out documents, transient transform failures, S3 faults, crashes mid-invocation and
//! state bounds small enough to make the state be written out mid-window, and batches delivered
//! twice with their state kept: every valid document
//! lands exactly once, and the rows written per shard and window merge to the aggregate of the
//! landed documents by arrival window.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lambda_events::time_window::{TimeWindowProperties, Window};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use proptest::prelude::*;
use runnel::sink::{Location, MemoryStore, SinkErrorKind};
use runnel::source::{FailureMode, SourceRecord};
use runnel::testing::windows::{drive, WindowAnswer, WindowConfig};
use runnel::testing::FaultyStore;
use runnel::window::{Aggregation, PaneSink};

const WINDOW_MS: i64 = 60_000;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

/// The property tests' aggregate, by the records' arrival in Lambda's windows.
fn by_arrival() -> Aggregation<Reading> {
    aggregation()
        .arrival_time()
        .tumbling(std::time::Duration::from_millis(WINDOW_MS as u64))
}

#[derive(Debug, Clone)]
struct Scenario {
    records: Vec<(Vec<Doc>, i64)>,
    batch_sizes: Vec<usize>,
    state_limit: usize,
    fault_rate: u64,
    seed: u64,
    transient: Vec<(usize, usize)>,
    crashes: Vec<Option<usize>>,
    lose_checkpoint_every: Option<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(
            (prop::collection::vec(doc_strategy(), 1..4), 0i64..30_000),
            1..40,
        ),
        prop::collection::vec(1usize..12, 1..6),
        prop_oneof![
            Just(400usize),
            Just(3_000),
            Just(runnel::window::STATE_LIMIT)
        ],
        prop_oneof![Just(0u64), 5u64..30],
        any::<u64>(),
        prop::collection::vec((0usize..40, 1usize..3), 0..4),
        prop::collection::vec(
            prop_oneof![3 => Just(None), 1 => (0usize..3).prop_map(Some)],
            1..8,
        ),
        prop_oneof![Just(None), (2usize..6).prop_map(Some)],
    )
        .prop_map(
            |(records, batch_sizes, state_limit, fault_rate, seed, transient, crashes, lose)| {
                Scenario {
                    lose_checkpoint_every: lose,
                    records,
                    batch_sizes,
                    state_limit,
                    fault_rate,
                    seed,
                    transient,
                    crashes,
                }
            },
        )
}

struct Shard {
    records: Vec<ShardRecord>,
    arrivals: Vec<i64>,
    good: BTreeSet<String>,
    bad: BTreeSet<String>,
}

fn build(s: &Scenario) -> Shard {
    let (mut good, mut bad) = (BTreeSet::new(), BTreeSet::new());
    let mut at = base().timestamp_millis();
    let mut shard = Shard {
        records: vec![],
        arrivals: vec![],
        good: BTreeSet::new(),
        bad: BTreeSet::new(),
    };
    for (i, (docs, gap)) in s.records.iter().enumerate() {
        at += gap;
        let text = ndjson(
            docs,
            &format!("{SHARD}:{}", seq(i)),
            &format!("{i}"),
            &mut good,
            &mut bad,
        );
        shard.records.push(ShardRecord {
            seq: seq(i),
            data: text.into_bytes(),
        });
        shard.arrivals.push(at);
    }
    shard.good = good;
    shard.bad = bad;
    shard
}

fn records<'a>(shard: &'a Shard, range: std::ops::Range<usize>) -> Vec<SourceRecord<'a>> {
    range
        .map(|i| SourceRecord {
            item_identifier: &shard.records[i].seq,
            stream: SHARD,
            position: &shard.records[i].seq,
            partition_key: Some("pk"),
            arrival: DateTime::from_timestamp_millis(shard.arrivals[i]),
            data: &shard.records[i].data,
        })
        .collect()
}

fn properties(
    start: i64,
    end: i64,
    state: HashMap<String, String>,
    is_final: bool,
    early: bool,
) -> TimeWindowProperties {
    let mut window = Window::default();
    window.start = DateTime::from_timestamp_millis(start).unwrap();
    window.end = DateTime::from_timestamp_millis(end).unwrap();
    let mut props = TimeWindowProperties::default();
    props.window = window;
    props.state = state;
    props.shard_id = Some(SHARD.to_string());
    props.is_final_invoke_for_window = is_final;
    props.is_window_terminated_early = early;
    props
}

struct Run {
    completed: bool,
    oversized: usize,
    data_ids: Vec<String>,
    quarantine_ids: Vec<String>,
    merged: Vec<serde_json::Map<String, serde_json::Value>>,
    direct: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn run(s: &Scenario) -> (Run, Shard) {
    let shard = build(s);
    let inner = MemoryStore::new();
    let faults = Faults::new(s.fault_rate, s.seed);
    let schedule = faults.clone();
    let store = Arc::new(FaultyStore::new(inner.clone(), move |_| {
        schedule
            .fails_next_put()
            .then_some(SinkErrorKind::Throttled)
    }));
    let transform = TestTransform::default();
    for (i, n) in &s.transient {
        if *i < shard.records.len() {
            transform
                .transient_failures
                .lock()
                .unwrap()
                .insert(seq(*i), *n);
        }
    }
    let panes = PaneSink::new(
        by_arrival(),
        Location::new("curated", "aggregates/readings"),
    )
    .in_window_state(s.state_limit);
    let p = processor(transform, store, FailureMode::Ordered).with_panes(panes);
    let ids: Vec<String> = shard.records.iter().map(|r| r.seq.clone()).collect();
    let (sizes, mut size_i) = (s.batch_sizes.clone(), 0);
    let invocation = AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt.block_on(drive(
        &ids,
        &shard.arrivals,
        WindowConfig {
            window_ms: WINDOW_MS,
            max_batch: 12,
            state_limit: 1_000_000,
            max_invocations: 5_000,
            lose_checkpoint_every: s.lose_checkpoint_every,
        },
        || {
            size_i += 1;
            sizes[size_i % sizes.len()]
        },
        |invoke| {
            let k = invocation.fetch_add(1, Ordering::Relaxed);
            let crash = if k < 20 {
                s.crashes[k % s.crashes.len()]
            } else {
                None
            };
            faults.begin_invocation(crash);
            let (p, shard) = (&p, &shard);
            async move {
                let props = properties(
                    invoke.start,
                    invoke.end,
                    invoke.state,
                    invoke.is_final,
                    invoke.terminated_early,
                );
                let batch = records(shard, invoke.records);
                match p.process_window(&props, &batch).await {
                    _ if crash.is_some() => WindowAnswer::FunctionError,
                    Ok(out) => WindowAnswer::Response {
                        state: out.window_state.unwrap(),
                        failures: out.failures,
                    },
                    Err(_) => WindowAnswer::FunctionError,
                }
            }
        },
    ));
    let objects = inner.objects();
    let landed = lines_under(&objects, "iot/");
    let arrival_of: HashMap<&str, i64> = shard
        .records
        .iter()
        .zip(&shard.arrivals)
        .map(|(r, a)| (r.seq.as_str(), *a))
        .collect();
    let readings: Vec<(Reading, Option<DateTime<Utc>>)> = landed
        .iter()
        .map(|line| {
            let seq = line["_id"].as_str().unwrap().split(':').nth(1).unwrap();
            let arrival = DateTime::from_timestamp_millis(arrival_of[seq]);
            (serde_json::from_value(line.clone()).unwrap(), arrival)
        })
        .collect();
    let aggregation = by_arrival();
    let result = Run {
        completed: report.completed,
        oversized: report.oversized_states,
        data_ids: ids_of(&landed),
        quarantine_ids: ids_of(&lines_under(&objects, "quarantine/")),
        merged: aggregation
            .merge_panes(&lines_under(&objects, "aggregates/readings/"))
            .unwrap(),
        direct: aggregation.aggregate_directly(readings.iter().map(|(r, a)| (r, *a))),
    };
    (result, shard)
}

fn ids_of(lines: &[serde_json::Value]) -> Vec<String> {
    ids(lines)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn windows_count_every_landed_document_once(s in scenario()) {
        let (r, shard) = run(&s);
        prop_assert!(r.completed, "the shard never finished");
        prop_assert_eq!(r.oversized, 0, "a state passed Lambda's bound");
        prop_assert_eq!(duplicates(&r.data_ids), Vec::<String>::new(), "duplicated output");
        prop_assert_eq!(r.data_ids.iter().cloned().collect::<BTreeSet<_>>(), shard.good, "output differs from the valid documents");
        prop_assert_eq!(r.quarantine_ids.iter().cloned().collect::<BTreeSet<_>>(), shard.bad, "quarantine differs from the bad documents");
        prop_assert_eq!(r.merged, r.direct, "window rows differ from the landed documents' aggregate");
    }
}

fn one_batch_shard() -> Shard {
    let s = Scenario {
        records: vec![
            (vec![Doc::Good { hour: 8 }, Doc::Good { hour: 8 }], 1_000),
            (vec![Doc::Good { hour: 9 }], 1_000),
        ],
        batch_sizes: vec![2],
        state_limit: runnel::window::STATE_LIMIT,
        fault_rate: 0,
        seed: 1,
        transient: vec![],
        crashes: vec![None],
        lose_checkpoint_every: None,
    };
    build(&s)
}

fn window_processor(store: MemoryStore) -> runnel::pipeline::Processor<TestTransform> {
    let panes = PaneSink::new(
        by_arrival(),
        Location::new("curated", "aggregates/readings"),
    )
    .in_window_state(runnel::window::STATE_LIMIT);
    processor(
        TestTransform::default(),
        Arc::new(store),
        FailureMode::Ordered,
    )
    .with_panes(panes)
}

#[tokio::test]
async fn the_last_invocation_writes_the_window_s_rows_once_under_shard_window_and_first_record() {
    let store = MemoryStore::new();
    let p = window_processor(store.clone());
    let shard = one_batch_shard();
    let start = base().timestamp_millis();
    let batch = records(&shard, 0..2);
    let props = properties(start, start + WINDOW_MS, HashMap::new(), false, false);
    let out = p.process_window(&props, &batch).await.unwrap();
    assert!(out.failures.is_empty());
    let state = out.window_state.unwrap();
    assert_eq!(state.keys().collect::<Vec<_>>(), ["runnel"]);
    assert!(lines_under(&store.objects(), "aggregates/").is_empty());
    let last = properties(start, start + WINDOW_MS, state, true, false);
    for _ in 0..2 {
        // A retried last invocation gets the same state and writes the same object.
        let out = p.process_window(&last, &[]).await.unwrap();
        assert_eq!(out.window_state, Some(HashMap::new()));
    }
    let objects = store.objects();
    let keys: Vec<&String> = objects
        .keys()
        .map(|(_, k)| k)
        .filter(|k| k.starts_with("aggregates/"))
        .collect();
    assert_eq!(
        keys,
        [&format!(
            "aggregates/readings/dt=2026-11-22/hour=08/{SHARD}-{start}-{}.json.gz",
            seq(0)
        )]
    );
    let rows = lines_under(&objects, "aggregates/");
    let merged = by_arrival().merge_panes(&rows).unwrap();
    let readings: u64 = merged.iter().map(|r| r["readings"].as_u64().unwrap()).sum();
    assert_eq!(readings, 3);
}

#[tokio::test]
async fn a_state_that_cannot_be_used_is_quarantined_and_the_window_goes_on() {
    let store = MemoryStore::new();
    let p = window_processor(store.clone());
    let shard = one_batch_shard();
    let start = base().timestamp_millis();
    let foreign = HashMap::from([("count".to_string(), "41".to_string())]);
    let props = properties(start, start + WINDOW_MS, foreign, false, false);
    let out = p
        .process_window(&props, &records(&shard, 0..1))
        .await
        .unwrap();
    assert!(out.failures.is_empty());
    let objects = store.objects();
    let entries = lines_under(&objects, "quarantine/");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["kind"], "window_state");
    assert!(entries[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no \"runnel\" entry"));
    assert_eq!(entries[0]["_id"], format!("{SHARD}:window:{start}"));
    // The answer is a fresh state that counted this batch.
    let last = properties(
        start,
        start + WINDOW_MS,
        out.window_state.unwrap(),
        true,
        false,
    );
    p.process_window(&last, &[]).await.unwrap();
    let merged = by_arrival()
        .merge_panes(&lines_under(&store.objects(), "aggregates/"))
        .unwrap();
    let readings: u64 = merged.iter().map(|r| r["readings"].as_u64().unwrap()).sum();
    assert_eq!(readings, 2);
}

#[tokio::test]
async fn a_last_invocation_whose_records_fail_is_retried_whole() {
    let store = MemoryStore::new();
    let transform = TestTransform::default();
    transform
        .transient_failures
        .lock()
        .unwrap()
        .insert(seq(1), 1);
    let panes = PaneSink::new(
        by_arrival(),
        Location::new("curated", "aggregates/readings"),
    )
    .in_window_state(runnel::window::STATE_LIMIT);
    let p = processor(transform, Arc::new(store.clone()), FailureMode::Ordered).with_panes(panes);
    let shard = one_batch_shard();
    let start = base().timestamp_millis();
    let last = properties(start, start + WINDOW_MS, HashMap::new(), true, false);
    let err = p
        .process_window(&last, &records(&shard, 0..2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not land 1 record"), "{err}");
    assert!(lines_under(&store.objects(), "aggregates/").is_empty());
    let out = p
        .process_window(&last, &records(&shard, 0..2))
        .await
        .unwrap();
    assert_eq!(out.window_state, Some(HashMap::new()));
    let merged = by_arrival()
        .merge_panes(&lines_under(&store.objects(), "aggregates/"))
        .unwrap();
    let readings: u64 = merged.iter().map(|r| r["readings"].as_u64().unwrap()).sum();
    assert_eq!(readings, 3);
}

#[test]
fn a_windowed_mapping_without_an_aggregate_is_refused() {
    let built = runnel::pipeline::Pipeline::new("readings")
        .source(runnel::source::Windowed(runnel::source::Kinesis))
        .transform(TestTransform::default())
        .store(MemoryStore::new())
        .config(runnel::pipeline::StreamConfig::new("readings", "curated"))
        .build();
    let err = built.err().expect("refused").to_string();
    assert!(err.contains("tumbling windows"), "{err}");
}
