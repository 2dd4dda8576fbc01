//! `s3-ingest`'s whole path on one core, in memory: a large gzip CSV of transactions goes through
//! the function's pipeline (gunzip → CSV → validate → transform → serialise → gzip → multipart
//! output) into an in-memory store, against a floor measured in the same run: gunzip of the same
//! input plus gzip level 1 of its bytes, with the same zlib.
//!
//! ```text
//! ingest-throughput [--mb 200] [--runs 3] [--write-input PATH] [--json PATH]
//! ```
//!
//! `--write-input` saves the gzip CSV for the Python equivalent (`bench/python/ingest_measure.py`).

use std::io::{Read, Write};
use std::time::Instant;

use anyhow::{bail, Context};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use runnel::ingest::IngestConfig;
use runnel::pipeline::Pipeline;
use runnel::sink::{MemoryStore, ObjectStore, PutObject};
use runnel::source::S3Objects;
use runnel::telemetry::Metrics;
use s3_ingest::TransactionTransform;

const KEY: &str = "transactions/dt=2026-11-22/bench.csv.gz";
const HEADER: &str =
    "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n";
const CURRENCIES: [&str; 4] = ["EUR", "USD", "CHF", "JPY"];

/// A deterministic CSV of about `bytes` bytes and its row count (xorshift, fixed seed).
fn generate_csv(bytes: usize) -> (Vec<u8>, usize) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut csv = Vec::with_capacity(bytes + 256);
    csv.extend_from_slice(HEADER.as_bytes());
    let mut rows = 0;
    while csv.len() < bytes {
        let r = next();
        let currency = CURRENCIES[(r % 4) as usize];
        let amount = if currency == "JPY" {
            format!("{}", r % 100_000)
        } else {
            format!("{}.{:02}", r % 10_000, (r >> 20) % 100)
        };
        let secs = (r >> 8) % 86_400;
        writeln!(
            csv,
            "tx-{rows:09},acc-{:05},{amount},{currency},2026-11-22T{:02}:{:02}:{:02}Z,Merchant {},{},{}",
            (r >> 16) % 20_000,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            (r >> 24) % 500,
            ["groceries", "travel", "", "fuel"][((r >> 32) % 4) as usize],
            ["DE", "CH", "US", "JP"][((r >> 36) % 4) as usize],
        )
        .expect("write to a Vec");
        rows += 1;
    }
    (csv, rows)
}

/// Gunzip of the input and gzip level 1 of its bytes: the codec work any ingest must do.
fn floor(gz: &[u8], csv_len: usize, scratch: &mut Vec<u8>) -> anyhow::Result<f64> {
    let started = Instant::now();
    scratch.clear();
    MultiGzDecoder::new(gz).read_to_end(scratch)?;
    let mut encoder = GzEncoder::new(Vec::with_capacity(csv_len / 4), Compression::new(1));
    encoder.write_all(scratch)?;
    let compressed = encoder.finish()?;
    let elapsed = started.elapsed().as_secs_f64();
    if scratch.len() != csv_len || compressed.is_empty() {
        bail!("floor: {} bytes out of {csv_len}", scratch.len());
    }
    Ok(elapsed)
}

/// The uncompressed NDJSON the handler wrote (every curated object, gunzipped).
fn curated_ndjson(store: &MemoryStore) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for ((bucket, _), body) in store.objects() {
        if bucket == "curated" && body.starts_with(&[0x1f, 0x8b]) {
            MultiGzDecoder::new(&body[..]).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// The function's pipeline on the object in a fresh in-memory store; returns (seconds, rows out,
/// the store).
async fn handler(gz: &[u8]) -> anyhow::Result<(f64, u64, MemoryStore)> {
    let store = MemoryStore::new();
    store
        .put(PutObject {
            bucket: "raw".into(),
            key: KEY.into(),
            body: gz.to_vec(),
            content_type: "application/gzip",
        })
        .await?;
    let runner = Pipeline::new("s3-ingest")
        .source(S3Objects)
        .transform(TransactionTransform)
        .store(store.clone())
        .config(IngestConfig::new("s3-ingest", "curated"))
        .build()?;
    let event = serde_json::json!({"detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "raw"}, "object": {"key": KEY}}});
    let mut metrics = Metrics::new("Bench");
    let started = Instant::now();
    let out = runner.handle(&mut metrics, &event).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let object = &out["objects"][0];
    if object["status"] != "complete" {
        bail!("ingest did not complete: {out}");
    }
    Ok((elapsed, object["rows_out"].as_u64().unwrap_or(0), store))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut mb, mut runs, mut json, mut input) = (200usize, 3usize, None, None);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--mb" => mb = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            "--json" => json = Some(value()?),
            "--write-input" => input = Some(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let (csv, rows) = generate_csv(mb * 1_000_000);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(&csv)?;
    let gz = encoder.finish()?;
    if let Some(path) = &input {
        std::fs::write(path, &gz).with_context(|| format!("writing {path}"))?;
    }
    println!(
        "input: {:.1} MB CSV, {rows} rows, {:.1} MB gzip (level 6)",
        csv.len() as f64 / 1e6,
        gz.len() as f64 / 1e6
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut scratch = Vec::with_capacity(csv.len());
    let (mut floors, mut handlers) = (Vec::new(), Vec::new());
    // One warm-up each, then alternate so both see the same machine state.
    floor(&gz, csv.len(), &mut scratch)?;
    let (_, _, store) = rt.block_on(handler(&gz))?;
    // A second floor for the output the handler must compress: its NDJSON is larger than the CSV
    // (field names, `_id`, `_source`, `_line` on every line), so gzip costs more than on the input.
    let ndjson = curated_ndjson(&store)?;
    drop(store);
    let mut output_floors = Vec::new();
    for _ in 0..runs {
        floors.push(floor(&gz, csv.len(), &mut scratch)?);
        let started = Instant::now();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut scratch)?;
        scratch.clear();
        let mut encoder = GzEncoder::new(Vec::with_capacity(ndjson.len() / 4), Compression::new(1));
        encoder.write_all(&ndjson)?;
        encoder.finish()?;
        output_floors.push(started.elapsed().as_secs_f64());
        let (seconds, rows_out, _) = rt.block_on(handler(&gz))?;
        if rows_out != rows as u64 {
            bail!("the handler wrote {rows_out} of {rows} rows");
        }
        handlers.push(seconds);
    }
    let (f, h, o) = (median(floors), median(handlers), median(output_floors));
    let mbs = |s: f64| csv.len() as f64 / 1e6 / s;
    println!(
        "floor (gunzip + gzip level 1): {:.3} s, {:.1} MB/s of CSV",
        f,
        mbs(f)
    );
    println!(
        "output floor (gunzip + gzip level 1 of the {:.1} MB of NDJSON written): {:.3} s",
        ndjson.len() as f64 / 1e6,
        o
    );
    println!(
        "s3-ingest path: {:.3} s, {:.1} MB/s of CSV per core, {:.2} x floor, {:.2} x output floor",
        h,
        mbs(h),
        h / f,
        h / o
    );
    if let Some(path) = json {
        let report = serde_json::json!({
            "csv_bytes": csv.len(), "gzip_bytes": gz.len(), "rows": rows, "runs": runs,
            "floor_s": f, "handler_s": h, "floor_mb_s": mbs(f), "handler_mb_s": mbs(h), "ratio": h / f,
            "ndjson_bytes": ndjson.len(), "output_floor_s": o, "output_ratio": h / o,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
