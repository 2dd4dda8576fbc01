//! The Kinesis path on the largest event Lambda delivers (≈ 6 MB): raw event bytes → gzip NDJSON
//! objects in an in-memory store, against the floor of parsing the event alone.
//!
//! `cargo bench -p kinesis-processor --bench kinesis_batch` (release profile). Prints ms, MB/s,
//! records/s for each, and the ratio handler/floor. Median of several runs after a warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use kinesis_processor::IotTransform;
use runnel::batch::{Mode, Processor, ProcessorConfig};
use runnel::records::DecodeLimits;
use runnel::sink::{Location, MemoryStore, Ndjson, NdjsonGzip};

const RECORDS: usize = 6_000;
const RUNS: usize = 15;

/// A reproducible reading of about 400 bytes (xorshift, fixed seed).
fn reading(i: usize, state: &mut u64) -> String {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let t = 15.0 + (next() % 2000) as f64 / 100.0;
    let h = 20.0 + (next() % 6000) as f64 / 100.0;
    let b = (next() % 100) as f64;
    let minute = i % 60;
    format!(
        concat!(
            r#"{{"device_id":"sensor-{:06}","ts":"2026-11-22T07:{:02}:{:02}.{:03}Z","temperature":{:.2},"unit":"C","humidity":{:.2},"battery":{},"#,
            r#""firmware":"4.12.{}","site":"plant-{:03}","location":{{"lat":{:.6},"lon":{:.6}}},"signal_dbm":-{},"#,
            r#""tags":["line-{}","zone-{}","shift-{}"],"seq":{},"note":"periodic reading from the floor sensor network {:016x}"}}"#
        ),
        i % 5000,
        minute,
        i % 60,
        i % 1000,
        t,
        h,
        b,
        next() % 30,
        next() % 200,
        40.0 + (next() % 1_000_000) as f64 / 1e6,
        -3.0 - (next() % 1_000_000) as f64 / 1e6,
        40 + next() % 60,
        next() % 12,
        next() % 8,
        next() % 3,
        i,
        next()
    )
}

fn event_json() -> (Vec<u8>, usize) {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut records = Vec::with_capacity(RECORDS);
    let mut payload_bytes = 0;
    for i in 0..RECORDS {
        let r = reading(i, &mut state);
        payload_bytes += r.len();
        let seq = format!("4961234567890123456789012345678901234567890123456{i:07}");
        records.push(serde_json::json!({
            "kinesis": {"kinesisSchemaVersion":"1.0","partitionKey":format!("sensor-{:06}", i % 5000),"sequenceNumber":seq,
                        "data": base64::engine::general_purpose::STANDARD.encode(r.as_bytes()),"approximateArrivalTimestamp":1795323300.25},
            "eventSource":"aws:kinesis","eventVersion":"1.0","eventID":format!("shardId-000000000000:{seq}"),
            "eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/r","awsRegion":"us-east-1",
            "eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/iot"}));
    }
    (
        serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap(),
        payload_bytes / RECORDS,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (event, avg_record) = event_json();
    let mb = event.len() as f64 / 1e6;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let processor = Processor::new(
        IotTransform,
        Arc::new(MemoryStore::new()),
        Arc::new(NdjsonGzip::default()),
        Arc::new(Ndjson),
        ProcessorConfig {
            output: Location::new("curated", "iot"),
            quarantine: Location::new("curated", "quarantine/iot"),
            mode: Mode::Ordered,
            limits: DecodeLimits::default(),
            concurrency: 8,
            source_arn: None,
        },
    );
    let mut floor = Vec::new();
    let mut full = Vec::new();
    for run in 0..RUNS + 2 {
        let t = Instant::now();
        let parsed: KinesisEvent = serde_json::from_slice(&event).unwrap();
        let f = t.elapsed();
        assert_eq!(parsed.records.len(), RECORDS);
        drop(parsed);
        let t = Instant::now();
        let parsed: KinesisEvent = serde_json::from_slice(&event).unwrap();
        let (response, outcome) = rt.block_on(runnel::kinesis::handle(&processor, &parsed));
        let h = t.elapsed();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(outcome.stats.documents_written, RECORDS);
        if run >= 2 {
            floor.push(f);
            full.push(h);
        }
    }
    let (f, h) = (median(floor), median(full));
    let line = |name: &str, d: Duration| {
        let s = d.as_secs_f64();
        println!(
            "{name:<44} {:>8.2} ms {:>8.1} MB/s {:>10.0} records/s",
            s * 1e3,
            mb / s,
            RECORDS as f64 / s
        );
    };
    println!("event: {RECORDS} records, {avg_record} bytes per reading, {mb:.2} MB of JSON; median of {RUNS} runs");
    line("floor: serde_json parse into KinesisEvent", f);
    line("kinesis-processor: parse → gzip NDJSON", h);
    println!(
        "ratio handler/floor: {:.2}",
        h.as_secs_f64() / f.as_secs_f64()
    );
}
