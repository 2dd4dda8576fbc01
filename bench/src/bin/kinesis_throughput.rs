//! The Kinesis path on the largest event Lambda delivers (≈ 6 MB): raw event bytes → gzip NDJSON
//! objects in an in-memory store, side by side with the floor (serde_json parsing the event into
//! `KinesisEvent` and nothing else). Median of several runs after two warm-ups.
//!
//! `kinesis-throughput [--runs N] [--write-event FILE] [--json FILE]`: `--write-event` saves the
//! event for the other benchmarks (Python handler, peak memory); `--json` saves the figures.

use std::time::Instant;

use anyhow::{bail, Context};
use aws_lambda_events::event::kinesis::KinesisEvent;
use runnel::pipeline::redrive::Incoming;
use runnel::source::kinesis::KinesisBatch;
use runnel_bench::{iot_event, median, memory_processor, RECORDS};

fn main() -> anyhow::Result<()> {
    let mut runs = 15;
    let (mut event_out, mut json_out) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = value()?.parse().context("--runs takes a whole number")?,
            "--write-event" => event_out = Some(value()?),
            "--json" => json_out = Some(value()?),
            other => bail!("unknown argument {other:?}; see the file's documentation"),
        }
    }
    let (event, avg_record) = iot_event(RECORDS);
    if let Some(path) = &event_out {
        std::fs::write(path, &event).with_context(|| format!("writing {path}"))?;
    }
    let mb = event.len() as f64 / 1e6;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let (processor, store) = memory_processor();
    let (mut floor, mut lean, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs + 2 {
        let t = Instant::now();
        let parsed: KinesisEvent = serde_json::from_slice(&event)?;
        let f = t.elapsed();
        drop(parsed);
        let t = Instant::now();
        let parsed: KinesisBatch = serde_json::from_slice(&event)?;
        let l = t.elapsed();
        drop(parsed);
        // The handler's whole path, as the runtime calls it: parse into its model (told apart
        // from a redrive request by the first key), process.
        let t = Instant::now();
        let parsed: Incoming<KinesisBatch> = serde_json::from_slice(&event)?;
        let Incoming::Batch(parsed) = parsed else {
            bail!("the benchmark event is a batch");
        };
        let (response, outcome) = rt.block_on(processor.handle(&parsed));
        let h = t.elapsed();
        let failures = response.map(|r| r.batch_item_failures.len()).unwrap_or(1);
        if failures > 0 || outcome.stats.documents_written != RECORDS {
            bail!(
                "the benchmark batch did not process cleanly: {:?}",
                outcome.stats
            );
        }
        if run >= 2 {
            floor.push(f);
            lean.push(l);
            full.push(h);
        }
    }
    let output_bytes: usize = store.objects().values().map(Vec::len).sum();
    let (f, l, h) = (
        median(floor).as_secs_f64(),
        median(lean).as_secs_f64(),
        median(full).as_secs_f64(),
    );
    let line = |name: &str, s: f64| {
        println!(
            "{name:<44} {:>8.2} ms {:>8.1} MB/s {:>10.0} records/s",
            s * 1e3,
            mb / s,
            RECORDS as f64 / s
        );
    };
    println!(
        "event: {RECORDS} records, {avg_record} bytes per reading, {mb:.2} MB of JSON; median of {runs} runs"
    );
    line("floor: serde_json parse into KinesisEvent", f);
    line("  parse into KinesisBatch (the handler's model)", l);
    line("kinesis-processor: parse → gzip NDJSON", h);
    println!("ratio handler/floor: {:.2}", h / f);
    println!("gzip NDJSON written: {:.2} MB", output_bytes as f64 / 1e6);
    if let Some(path) = &json_out {
        let figures = serde_json::json!({
            "records": RECORDS, "event_bytes": event.len(), "avg_record_bytes": avg_record,
            "runs": runs, "floor_ms": f * 1e3, "lean_parse_ms": l * 1e3, "handler_ms": h * 1e3, "output_bytes": output_bytes,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
