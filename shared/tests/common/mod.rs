//! A small pipeline for the processor tests: readings with a device and an hour.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use runnel::pipeline::{Processor, ProcessorConfig};
use runnel::records::{DecodeLimits, FieldError, Validate};
use runnel::sink::{Location, ObjectMap, ObjectStore, Sink};
use runnel::source::{FailureMode, SourceRecord};
use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Reading {
    pub device: String,
    pub hour: u32,
    pub value: i64,
}

impl Validate for Reading {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.device.is_empty() {
            errors.push(FieldError::new("device", "must not be empty"));
        }
        if self.hour > 23 {
            errors.push(FieldError::new("hour", "must be 0-23"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Fails a record transiently the first `n` times it is seen, as configured per position.
/// Devices named `skip-…` are filtered out (no output) and `fan-…` fan out into two outputs,
/// the second an hour later.
#[derive(Default, Clone)]
pub struct TestTransform {
    pub transient_failures: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    pub panic_on_device: Option<String>,
    pub reject_device: Option<String>,
    pub calls: Arc<AtomicUsize>,
}

impl Transform for TestTransform {
    type Input = Reading;
    type Output = Reading;
    fn validate(&self, input: &Reading) -> Result<(), Vec<FieldError>> {
        input.validate()
    }
    fn apply(
        &self,
        input: Reading,
        ctx: &RecordContext<'_>,
        out: &mut Outputs<Reading>,
    ) -> Result<(), TransformError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.panic_on_device.as_deref() == Some(input.device.as_str()) {
            panic!("transform bug on {}", input.device);
        }
        if self.reject_device.as_deref() == Some(input.device.as_str()) {
            return Err(TransformError::Reject(format!(
                "device {} is blocked",
                input.device
            )));
        }
        let mut failures = self.transient_failures.lock().unwrap();
        if let Some(left) = failures.get_mut(ctx.position) {
            if *left > 0 {
                *left -= 1;
                return Err(TransformError::Transient(
                    "lookup service unavailable".into(),
                ));
            }
        }
        if input.device.starts_with("skip-") {
            return Ok(());
        }
        if input.device.starts_with("fan-") {
            let later = Reading {
                hour: (input.hour + 1) % 24,
                ..input.clone()
            };
            out.push(input);
            out.push(later);
            return Ok(());
        }
        out.push(input);
        Ok(())
    }
    fn event_time(&self, output: &Reading) -> Option<DateTime<Utc>> {
        Some(
            Utc.with_ymd_and_hms(2026, 11, 22, output.hour, 0, 0)
                .unwrap(),
        )
    }
}

/// [`TestTransform`] behind an awaited lookup: the configured transient failures happen in the
/// lookup (after it yields to the runtime, so that lookups of a batch interleave), and every
/// output carries nothing new — what lands must be exactly what the synchronous path lands.
#[derive(Default, Clone)]
pub struct Enriching(pub TestTransform);

impl Transform for Enriching {
    type Input = Reading;
    type Output = Reading;
    const ENRICHES: bool = true;

    fn validate(&self, input: &Reading) -> Result<(), Vec<FieldError>> {
        input.validate()
    }

    async fn enrich(
        &self,
        input: Reading,
        ctx: &RecordContext<'_>,
    ) -> Result<Reading, TransformError> {
        tokio::task::yield_now().await;
        let mut failures = self.0.transient_failures.lock().unwrap();
        if let Some(left) = failures.get_mut(ctx.position) {
            if *left > 0 {
                *left -= 1;
                return Err(TransformError::Transient("lookup timed out".into()));
            }
        }
        Ok(input)
    }

    fn apply(
        &self,
        input: Reading,
        ctx: &RecordContext<'_>,
        out: &mut Outputs<Reading>,
    ) -> Result<(), TransformError> {
        self.0.apply(input, ctx, out)
    }

    fn event_time(&self, output: &Reading) -> Option<DateTime<Utc>> {
        self.0.event_time(output)
    }
}

pub const SHARD: &str = "shardId-000000000001";

pub fn config(mode: FailureMode) -> ProcessorConfig {
    ProcessorConfig {
        curated: Location::new("curated", "iot"),
        quarantine: Location::new("curated", "quarantine/iot"),
        mode,
        limits: DecodeLimits::default(),
        concurrency: 4,
        source_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/iot".into()),
        redelivery: Default::default(),
        output_route: Default::default(),
    }
}

pub fn processor<T: Transform>(
    transform: T,
    store: Arc<dyn ObjectStore>,
    mode: FailureMode,
) -> Processor<T> {
    Processor::new(transform, Sink::new(store), config(mode))
}

/// A record as it sits on the shard.
#[derive(Debug, Clone)]
pub struct ShardRecord {
    pub seq: String,
    pub data: Vec<u8>,
}

pub fn seq(i: usize) -> String {
    // Kinesis sequence numbers are long decimal strings that sort by position within a shard.
    format!("4959033827149025660855969253836157109592157598913{i:07}")
}

pub fn reading_json(device: &str, hour: u32, value: i64) -> String {
    format!(r#"{{"device":"{device}","hour":{hour},"value":{value}}}"#)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn source_records(records: &[ShardRecord]) -> Vec<SourceRecord<'_>> {
    records
        .iter()
        .map(|r| SourceRecord {
            item_identifier: &r.seq,
            stream: SHARD,
            position: &r.seq,
            partition_key: Some("pk"),
            arrival: Some(Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()),
            data: &r.data,
        })
        .collect()
}

/// Every document of every object under a prefix (in any bucket), decompressing gzip.
pub fn lines_under(objects: &ObjectMap, prefix: &str) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|((_, key), _)| key.starts_with(prefix))
        .flat_map(|(_, body)| runnel::testing::ndjson_documents(body).unwrap())
        .collect()
}

pub fn ids(lines: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| l["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// One document of a generated payload, for the re-delivery property tests.
#[derive(Debug, Clone)]
pub enum Doc {
    Good {
        hour: u32,
    },
    Bad,
    /// The transform makes no output.
    Filtered,
    /// The transform makes two outputs, an hour apart (possibly in two partitions).
    FanOut {
        hour: u32,
    },
}

/// Documents in the proportions the property tests use.
pub fn doc_strategy() -> impl proptest::strategy::Strategy<Value = Doc> + Clone {
    use proptest::prelude::*;
    prop_oneof![
        8 => (7u32..10).prop_map(|hour| Doc::Good { hour }),
        2 => Just(Doc::Bad),
        1 => Just(Doc::Filtered),
        1 => (7u32..10).prop_map(|hour| Doc::FanOut { hour }),
    ]
}

/// The NDJSON of one payload's documents; records the ids (`<prefix>:<index>`) they must produce.
pub fn ndjson(
    docs: &[Doc],
    prefix: &str,
    name: &str,
    good: &mut std::collections::BTreeSet<String>,
    bad: &mut std::collections::BTreeSet<String>,
) -> String {
    let mut text = String::new();
    for (j, d) in docs.iter().enumerate() {
        match d {
            Doc::Good { hour } => {
                good.insert(format!("{prefix}:{j}"));
                text.push_str(&reading_json(&format!("dev-{name}-{j}"), *hour, j as i64));
            }
            Doc::Bad => {
                bad.insert(format!("{prefix}:{j}"));
                text.push_str(r#"{"device":"","hour":1,"value":0}"#);
            }
            Doc::Filtered => {
                text.push_str(&reading_json(&format!("skip-{name}-{j}"), 8, 0));
            }
            Doc::FanOut { hour } => {
                good.insert(format!("{prefix}:{j}"));
                good.insert(format!("{prefix}:{j}:1"));
                text.push_str(&reading_json(&format!("fan-{name}-{j}"), *hour, 0));
            }
        }
        text.push('\n');
    }
    text
}

/// The fault schedule of a run: a put fails when the seeded schedule says so, and after a crash
/// point every put of the invocation fails (a dead process writes nothing more).
pub struct Faults {
    fault_rate: u64,
    seed: u64,
    counter: std::sync::atomic::AtomicU64,
    crash_after: Mutex<Option<usize>>,
    puts_this_invocation: AtomicUsize,
}

impl Faults {
    /// `fault_rate` puts in 100 fail, picked by `seed`; no crash until an invocation sets one.
    pub fn new(fault_rate: u64, seed: u64) -> Arc<Self> {
        Arc::new(Faults {
            fault_rate,
            seed,
            counter: Default::default(),
            crash_after: Mutex::new(None),
            puts_this_invocation: AtomicUsize::new(0),
        })
    }

    /// Starts an invocation that crashes after `crash` successful puts (`None`: no crash).
    pub fn begin_invocation(&self, crash: Option<usize>) {
        *self.crash_after.lock().unwrap() = crash;
        self.puts_this_invocation.store(0, Ordering::Relaxed);
    }

    /// Whether the next put fails; a put that does not goes through to the store.
    pub fn fails_next_put(&self) -> bool {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let crashed = self
            .crash_after
            .lock()
            .unwrap()
            .is_some_and(|k| self.puts_this_invocation.load(Ordering::Relaxed) >= k);
        let faulty = self.fault_rate > 0
            && (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.seed) % 100 < self.fault_rate;
        if !(crashed || faulty) {
            // The put goes through to the in-memory store, which always takes it.
            self.puts_this_invocation.fetch_add(1, Ordering::Relaxed);
        }
        crashed || faulty
    }
}

/// The ids that appear more than once.
pub fn duplicates(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    for id in ids {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect()
}

/// A number in `0..n` from a xorshift64 state (reproducible from a scenario's seed).
pub fn xorshift(state: &mut u64, n: usize) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % n as u64) as usize
}

/// The aggregate the re-delivery property tests check: per `value % 3` and half hour of event
/// time, every kind of measure.
pub fn aggregation() -> runnel::window::Aggregation<Reading> {
    let at = |r: &Reading| {
        Utc.with_ymd_and_hms(2026, 11, 22, r.hour, 0, 0).unwrap()
            + chrono::Duration::seconds(r.value.rem_euclid(3600))
    };
    runnel::window::Aggregation::new("readings")
        .key("bucket", |r: &Reading| Some((r.value % 3).to_string()))
        .tumbling(std::time::Duration::from_secs(1800))
        .event_time(move |r: &Reading| Some(at(r)))
        .count("readings")
        .sum("total", |r: &Reading| Some(r.value as f64))
        .min("least", |r: &Reading| Some(r.value as f64))
        .max("latest_hour", |r: &Reading| Some(f64::from(r.hour)))
        .stats("value", |r: &Reading| Some(r.value as f64))
        .last("last_value", move |r: &Reading| {
            Some((r.value as f64, at(r)))
        })
        .distinct("devices", |r: &Reading| Some(r.device.clone()))
}

/// The panes of [`aggregation`] under `aggregates/readings` of the curated bucket.
pub fn panes() -> runnel::window::PaneSink<Reading> {
    runnel::window::PaneSink::new(
        aggregation(),
        Location::new("curated", "aggregates/readings"),
    )
}

/// Whether the merged panes in the store equal the aggregate computed directly from the curated
/// documents that landed (which the property tests check are the valid ones, once each); the
/// difference when they do not.
pub fn panes_differ(objects: &ObjectMap) -> Option<String> {
    let landed: Vec<Reading> = lines_under(objects, "iot/")
        .into_iter()
        .map(|line| serde_json::from_value(line).unwrap())
        .collect();
    let panes = lines_under(objects, "aggregates/readings/");
    let aggregation = aggregation();
    let merged = aggregation.merge_panes(&panes).unwrap();
    let direct = aggregation.aggregate_directly(landed.iter().map(|r| (r, None)));
    (merged != direct).then(|| format!("merged panes {merged:?}\n  direct {direct:?}"))
}

/// The rule the re-delivery property tests check: a value above 0.5, keyed like
/// [`aggregation`] (`value % 3`), at most once per half hour of event time.
pub fn rule() -> runnel::window::Rule<Reading> {
    runnel::window::Rule::above("positive", "value", 0.5, |r: &Reading| Some(r.value as f64))
        .key("bucket", |r: &Reading| Some((r.value % 3).to_string()))
        .event_time(|r: &Reading| Some(reading_time(r)))
        .once_per(std::time::Duration::from_secs(1800))
}

fn reading_time(r: &Reading) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, r.hour, 0, 0).unwrap()
        + chrono::Duration::seconds(r.value.rem_euclid(3600))
}

/// [`rule`]'s alerts to `publisher`, markers under `alerts/` of the curated bucket.
pub fn alerts(publisher: runnel::window::MemoryAlerts) -> runnel::window::AlertSink<Reading> {
    runnel::window::AlertSink::new(
        "test",
        vec![rule()],
        Arc::new(publisher),
        Location::new("curated", "alerts"),
    )
}

/// Whether the alerts published are exactly those of the documents that landed: every key and
/// window with a value above the limit alerted, nothing else, and no alert twice unless a marker
/// put failed after its publish (`marker_failures`, the one gap the markers leave).
pub fn alerts_differ(
    objects: &ObjectMap,
    published: &[runnel::window::Alert],
    marker_failures: usize,
) -> Option<String> {
    let expected: std::collections::BTreeSet<(String, String)> = lines_under(objects, "iot/")
        .into_iter()
        .map(|line| serde_json::from_value::<Reading>(line).unwrap())
        .filter(|r| r.value as f64 > 0.5)
        .map(|r| {
            let at = reading_time(&r).timestamp();
            let start = DateTime::from_timestamp(at - at.rem_euclid(1800), 0).unwrap();
            (
                (r.value % 3).to_string(),
                start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        })
        .collect();
    let got: Vec<(String, String)> = published
        .iter()
        .map(|a| {
            (
                a.key["bucket"].as_str().unwrap().to_string(),
                a.window_start.clone(),
            )
        })
        .collect();
    let distinct: std::collections::BTreeSet<(String, String)> = got.iter().cloned().collect();
    if distinct != expected {
        return Some(format!("alerted {distinct:?}\n  expected {expected:?}"));
    }
    let repeated = got.len() - distinct.len();
    (repeated > marker_failures).then(|| {
        format!("{repeated} alerts sent twice, with only {marker_failures} failed marker puts")
    })
}
