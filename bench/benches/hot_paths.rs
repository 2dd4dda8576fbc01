//! Criterion micro-benchmarks of the per-record hot paths of the Kinesis path:
//! decode (JSON → `Reading`), validate, serialise (curated line with `_id`), compress (a
//! 6,000-line run at the levels worth considering), and the whole per-record decode.
//!
//! `cargo bench -p runnel-bench --bench hot_paths`

use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kinesis_processor::CuratedReading;
use kinesis_processor::{IotTransform, Reading};
use runnel::records::{decode_payload, DecodeLimits, Validate};
use runnel::sink::{write_json_line, Encoder, LeadField, NdjsonGzip};
use runnel::transform::{Outputs, RecordContext, Transform};
use runnel_bench::{reading, Xorshift, RECORDS};

fn readings() -> Vec<String> {
    let mut rng = Xorshift::new();
    (0..RECORDS).map(|i| reading(i, &mut rng)).collect()
}

fn ctx() -> RecordContext<'static> {
    RecordContext {
        stream: "shardId-000000000000",
        position: "49612345678901234567890123456789012345678901234560000042",
        index: 0,
        partition_key: Some("sensor-000042"),
        arrival: Utc.timestamp_opt(1_795_323_300, 250_000_000).single(),
    }
}

/// The transform's one output for a reading.
fn curate(r: Reading, out: &mut Outputs<CuratedReading>) -> CuratedReading {
    IotTransform.apply(r, &ctx(), out).unwrap();
    out.drain().next().expect("one reading, one output").1
}

/// Every reading's curated NDJSON line, as the processor writes them.
fn lines(texts: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in texts {
        let r: Reading = serde_json::from_str(t).unwrap();
        let curated = curate(r, &mut Outputs::default());
        write_json_line(&mut out, &[("_id", LeadField::Str("shardId-000000000000:49612345678901234567890123456789012345678901234560000042:0"))], &curated).unwrap();
        out.push(b'\n');
    }
    out
}

fn hot_paths(c: &mut Criterion) {
    let texts = readings();
    let one = texts[42].as_bytes();
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("decode (JSON → Reading)", |b| {
        b.iter(|| serde_json::from_slice::<Reading>(std::hint::black_box(one)).unwrap())
    });
    let parsed: Reading = serde_json::from_slice(one).unwrap();
    g.bench_function("validate", |b| {
        b.iter(|| std::hint::black_box(&parsed).validate().unwrap())
    });
    g.bench_function("decode_payload (decode + validate)", |b| {
        b.iter(|| {
            decode_payload::<Reading>(
                std::hint::black_box(one),
                DecodeLimits::default(),
                &Reading::validate,
            )
            .unwrap()
        })
    });
    let mut outputs = Outputs::default();
    let curated = curate(parsed.clone(), &mut outputs);
    let mut buf = Vec::with_capacity(512);
    g.bench_function("transform + serialise line", |b| {
        b.iter_batched_ref(
            || parsed.clone(),
            |r| {
                buf.clear();
                let out = curate(r.clone(), &mut outputs);
                write_json_line(
                    &mut buf,
                    &[("_id", LeadField::Str("shardId-000000000000:4961:0"))],
                    &out,
                )
                .unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("serialise line", |b| {
        b.iter(|| {
            buf.clear();
            write_json_line(
                &mut buf,
                &[("_id", LeadField::Str("shardId-000000000000:4961:0"))],
                std::hint::black_box(&curated),
            )
            .unwrap();
        })
    });
    g.finish();

    let ndjson = lines(&texts);
    let mut g = c.benchmark_group("compress 6,000 lines");
    g.throughput(Throughput::Bytes(ndjson.len() as u64));
    for level in [1, 2, 6] {
        let writer = NdjsonGzip {
            level: flate2::Compression::new(level),
        };
        let size = writer.encode(&ndjson).unwrap().len();
        println!(
            "gzip level {level}: {} → {} bytes ({:.1} %)",
            ndjson.len(),
            size,
            100.0 * size as f64 / ndjson.len() as f64
        );
        g.bench_function(format!("gzip level {level}"), |b| {
            b.iter(|| writer.encode(std::hint::black_box(&ndjson)).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Short windows: these run inside `make bench` beside the other measurements.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    targets = hot_paths
}
criterion_main!(benches);
