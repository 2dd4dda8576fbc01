//! The Kinesis path on the largest event Lambda delivers (≈ 6 MB): raw event bytes → gzip NDJSON
//! objects in an in-memory store, side by side with the floor (serde_json parsing the event into
//! `KinesisEvent` and nothing else). Median of several runs after two warm-ups.
//!
//! In the same loop, the path the deployed function runs on a Kinesis mapping: the same landing
//! plus the `device_minute` panes, then plus the rules too (no reading matches them, as almost
//! always).
//!
//! `kinesis-throughput [--runs N] [--write-event FILE] [--write-curated FILE] [--json FILE]`:
//! `--write-event` saves the event for the other benchmarks (Python handler, peak memory),
//! `--write-curated` the curated readings that landed (the Flink SQL benchmark's input) as
//! NDJSON; `--json` saves the figures.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_lambda_events::event::kinesis::KinesisEvent;
use runnel::pipeline::redrive::StreamEvent;
use runnel::pipeline::Runner;
use runnel::sink::MemoryStore;
use runnel::source::kinesis::KinesisBatch;
use runnel::source::Kinesis;
use runnel_bench::{
    iot_event, median, memory_aggregating_processor, memory_pane_processor, memory_processor,
    RECORDS,
};

/// The handler's whole path, as the runtime calls it: parse into its model (told apart from a
/// redrive request by the first key), process. Fails unless every record lands.
fn handle(
    rt: &tokio::runtime::Runtime,
    runner: &Runner<Kinesis, kinesis_processor::IotTransform>,
    event: &[u8],
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let parsed: StreamEvent<KinesisBatch> = serde_json::from_slice(event)?;
    let StreamEvent::Batch(parsed) = parsed else {
        bail!("the benchmark event is a batch");
    };
    let (response, outcome) = rt.block_on(runner.handle(&parsed));
    let elapsed = t.elapsed();
    let failures = response.map(|r| r.batch_item_failures.len()).unwrap_or(1);
    if failures > 0 || outcome.stats.documents_written != RECORDS {
        bail!(
            "the benchmark batch did not process cleanly: {:?}",
            outcome.stats
        );
    }
    Ok(elapsed)
}

/// Objects in `store` whose key starts with `prefix`.
fn objects(store: &MemoryStore, prefix: &str) -> usize {
    store
        .objects()
        .keys()
        .filter(|(_, key)| key.starts_with(prefix))
        .count()
}

fn main() -> anyhow::Result<()> {
    let mut runs = 15;
    let (mut event_out, mut curated_out, mut json_out) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = value()?.parse().context("--runs takes a whole number")?,
            "--write-event" => event_out = Some(value()?),
            "--write-curated" => curated_out = Some(value()?),
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
    let (landing, store) = memory_processor();
    let (panes, pane_store) = memory_pane_processor();
    let (deployed, deployed_store) = memory_aggregating_processor();
    let (mut floor, mut lean, mut full) = (Vec::new(), Vec::new(), Vec::new());
    let (mut paned, mut ruled) = (Vec::new(), Vec::new());
    for run in 0..runs + 2 {
        let t = Instant::now();
        let parsed: KinesisEvent = serde_json::from_slice(&event)?;
        let f = t.elapsed();
        drop(parsed);
        let t = Instant::now();
        let parsed: KinesisBatch = serde_json::from_slice(&event)?;
        let l = t.elapsed();
        drop(parsed);
        let h = handle(&rt, &landing, &event)?;
        let p = handle(&rt, &panes, &event)?;
        let r = handle(&rt, &deployed, &event)?;
        if run >= 2 {
            floor.push(f);
            lean.push(l);
            full.push(h);
            paned.push(p);
            ruled.push(r);
        }
    }
    let output_bytes: usize = store.objects().values().map(Vec::len).sum();
    let (f, l, h, p, r) = (
        median(floor).as_secs_f64(),
        median(lean).as_secs_f64(),
        median(full).as_secs_f64(),
        median(paned).as_secs_f64(),
        median(ruled).as_secs_f64(),
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
    line("  + device_minute panes", p);
    line("  + panes and rules (the deployed path)", r);
    println!("ratio handler/floor: {:.2}", h / f);
    println!(
        "ratio with panes/landing: {:.2}, with panes and rules/landing: {:.2}",
        p / h,
        r / h
    );
    println!("gzip NDJSON written: {:.2} MB", output_bytes as f64 / 1e6);
    // Every run overwrites the same keys, so the stores hold one batch's objects.
    let curated_objects = objects(&deployed_store, "kinesis-processor/");
    let pane_objects = objects(&deployed_store, "aggregates/device_minute/");
    anyhow::ensure!(
        curated_objects == store.objects().len()
            && pane_objects == objects(&pane_store, "aggregates/"),
        "the pipelines wrote different objects"
    );
    println!("objects per batch of {RECORDS}: {curated_objects} curated, {pane_objects} panes");
    if let Some(path) = &curated_out {
        let mut text = Vec::new();
        for body in store.objects().values() {
            for line in runnel::testing::ndjson_documents(body)? {
                serde_json::to_writer(&mut text, &line)?;
                text.push(b'\n');
            }
        }
        std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
    }
    if let Some(path) = &json_out {
        let figures = serde_json::json!({
            "records": RECORDS, "event_bytes": event.len(), "avg_record_bytes": avg_record,
            "runs": runs, "floor_ms": f * 1e3, "lean_parse_ms": l * 1e3, "handler_ms": h * 1e3, "output_bytes": output_bytes,
            "panes_ms": p * 1e3, "panes_rules_ms": r * 1e3,
            "curated_objects": curated_objects, "pane_objects": pane_objects,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
