//! Shared pieces of the benchmarks: the reproducible IoT event and the processor under test.
//!
//! `make bench` runs every benchmark and prints the figures (see `BENCHMARKS.md`).

use std::time::Duration;

use base64::Engine as _;
use kinesis_processor::IotTransform;
use runnel::pipeline::{Runner, StreamConfig, StreamPipeline};
use runnel::sink::MemoryStore;
use runnel::source::Kinesis;

/// Records in the benchmark event: about 6 MB of event JSON, the Lambda payload limit.
pub const RECORDS: usize = 6_000;

/// A small deterministic generator (xorshift64), so every run and every language sees the same
/// bytes.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new() -> Self {
        Xorshift(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Default for Xorshift {
    fn default() -> Self {
        Self::new()
    }
}

/// Reading `i`: the fields the transform uses plus the extra fields real devices send
/// (firmware, site, location, tags, ...), which it must skip. About 340 bytes.
pub fn reading(i: usize, rng: &mut Xorshift) -> String {
    let t = 15.0 + (rng.next_u64() % 2000) as f64 / 100.0;
    let h = 20.0 + (rng.next_u64() % 6000) as f64 / 100.0;
    let b = (rng.next_u64() % 100) as f64;
    let firmware = rng.next_u64() % 30;
    let site = rng.next_u64() % 200;
    let lat = 40.0 + (rng.next_u64() % 1_000_000) as f64 / 1e6;
    let lon = -3.0 - (rng.next_u64() % 1_000_000) as f64 / 1e6;
    let signal = 40 + rng.next_u64() % 60;
    let (line, zone, shift) = (rng.next_u64() % 12, rng.next_u64() % 8, rng.next_u64() % 3);
    let note = rng.next_u64();
    format!(
        concat!(
            r#"{{"device_id":"sensor-{:06}","ts":"2026-11-22T07:{:02}:{:02}.{:03}Z","temperature":{:.2},"unit":"C","humidity":{:.2},"battery":{},"#,
            r#""firmware":"4.12.{}","site":"plant-{:03}","location":{{"lat":{:.6},"lon":{:.6}}},"signal_dbm":-{},"#,
            r#""tags":["line-{}","zone-{}","shift-{}"],"seq":{},"note":"periodic reading from the floor sensor network {:016x}"}}"#
        ),
        i % 5000,
        i % 60,
        i % 60,
        i % 1000,
        t,
        h,
        b,
        firmware,
        site,
        lat,
        lon,
        signal,
        line,
        zone,
        shift,
        i,
        note
    )
}

/// The Kinesis event of `records` readings as Lambda delivers it (base64 data in JSON), and the
/// average reading size in bytes.
pub fn iot_event(records: usize) -> (Vec<u8>, usize) {
    let mut rng = Xorshift::new();
    let mut list = Vec::with_capacity(records);
    let mut payload_bytes = 0;
    for i in 0..records {
        let r = reading(i, &mut rng);
        payload_bytes += r.len();
        let seq = format!("4961234567890123456789012345678901234567890123456{i:07}");
        list.push(serde_json::json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": format!("sensor-{:06}", i % 5000),
                "sequenceNumber": seq,
                "data": base64::engine::general_purpose::STANDARD.encode(r.as_bytes()),
                "approximateArrivalTimestamp": 1795323300.25
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{seq}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/iot"
        }));
    }
    let bytes =
        serde_json::to_vec(&serde_json::json!({ "Records": list })).expect("the event serialises");
    (bytes, payload_bytes / records.max(1))
}

/// The production pipeline of `kinesis-processor` (default configuration, bucket `curated`)
/// with the S3 store replaced by memory: landing only.
pub fn memory_processor() -> (Runner<Kinesis, IotTransform>, MemoryStore) {
    memory_runner(kinesis_processor::pipeline())
}

/// What the deployed function runs on a Kinesis mapping, in memory: landing, the
/// `device_minute` panes and the rules (alerts kept in memory).
pub fn memory_aggregating_processor() -> (Runner<Kinesis, IotTransform>, MemoryStore) {
    memory_runner(
        kinesis_processor::aggregating_pipeline_from(Kinesis)
            .alerts(runnel::window::MemoryAlerts::new()),
    )
}

/// Landing and the `device_minute` panes, without the rules.
pub fn memory_pane_processor() -> (Runner<Kinesis, IotTransform>, MemoryStore) {
    memory_runner(kinesis_processor::pipeline().aggregate(kinesis_processor::device_minute()))
}

/// `pipeline` with the default configuration (bucket `curated`) and an in-memory store.
fn memory_runner(
    pipeline: StreamPipeline<Kinesis, IotTransform>,
) -> (Runner<Kinesis, IotTransform>, MemoryStore) {
    let config = StreamConfig::from_lookup("kinesis-processor", |name| {
        (name == "OUTPUT_BUCKET").then(|| "curated".into())
    })
    .expect("the default configuration is valid");
    let store = MemoryStore::new();
    let runner = pipeline
        .store(store.clone())
        .config(config)
        .build()
        .expect("a store and a configuration are given");
    (runner, store)
}

/// The median of a list of durations (the upper one for an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::kinesis::KinesisEvent;

    #[test]
    fn the_event_is_reproducible_and_near_the_payload_limit() {
        let (a, avg) = iot_event(RECORDS);
        assert_eq!(a, iot_event(RECORDS).0);
        assert!((5_500_000..6_291_456).contains(&a.len()), "{}", a.len());
        assert!((300..450).contains(&avg), "{avg}");
        let parsed: KinesisEvent = serde_json::from_slice(&a).unwrap();
        assert_eq!(parsed.records.len(), RECORDS);
    }

    #[tokio::test]
    async fn every_reading_is_valid_and_lands_once() {
        let (event, _) = iot_event(500);
        let parsed: runnel::source::kinesis::KinesisBatch = serde_json::from_slice(&event).unwrap();
        let (runner, store) = memory_processor();
        let (response, outcome) = runner.handle(&parsed).await;
        assert!(response.unwrap().batch_item_failures.is_empty());
        assert_eq!(outcome.stats.documents_written, 500);
        assert_eq!(outcome.stats.documents_quarantined, 0);
        assert!(!store.objects().is_empty());
    }
}
