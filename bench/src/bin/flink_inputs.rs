//! The inputs of the Flink SQL comparison (`make flink-check`): readings delivered through the
//! `kinesis-processor` pipeline with its `device_minute` aggregate (memory store, batches of
//! varying size, one batch delivered twice as a retry would), then
//! - `<dir>/readings.ndjson`: the curated readings that landed, the records Flink aggregates;
//! - `<dir>/runnel.json`: Runnel's rows, the merge of the panes the pipeline wrote.
//!
//! `flink-inputs DIR [READINGS]` (default 20,000 readings of 150 devices over 40 minutes).

use base64::Engine as _;
use kinesis_processor::device_minute;
use runnel::pipeline::StreamConfig;
use runnel::sink::MemoryStore;
use runnel::source::kinesis::KinesisBatch;
use runnel::source::Kinesis;
use runnel_bench::Xorshift;

/// A reading: a few in Fahrenheit, some without humidity or battery, one in 500 bad data.
fn reading(i: usize, rng: &mut Xorshift) -> String {
    if i % 500 == 499 {
        return r#"{"device_id":"","ts":"2026-11-22T07:00:00Z","temperature":20}"#.into();
    }
    let device = rng.next_u64() % 150;
    let second = i * 2400 / 20_000 + (rng.next_u64() % 3) as usize;
    let millis = rng.next_u64() % 1000;
    let (value, unit) = match rng.next_u64() % 10 {
        0 => (50.0 + (rng.next_u64() % 5000) as f64 / 100.0, "F"),
        // Stuck sensors repeat a value.
        1 => (21.5, "C"),
        _ => (10.0 + (rng.next_u64() % 2500) as f64 / 100.0, "C"),
    };
    let humidity = match rng.next_u64() % 4 {
        0 => String::new(),
        _ => format!(
            r#","humidity":{:.1}"#,
            20.0 + (rng.next_u64() % 600) as f64 / 10.0
        ),
    };
    let battery = match rng.next_u64() % 3 {
        0 => String::new(),
        _ => format!(r#","battery":{}"#, rng.next_u64() % 101),
    };
    format!(
        r#"{{"device_id":"sensor-{device:03}","ts":"2026-11-22T07:{:02}:{:02}.{millis:03}Z","temperature":{value:.2},"unit":"{unit}"{humidity}{battery}}}"#,
        second / 60,
        second % 60,
    )
}

fn event(readings: &[String], first: usize) -> KinesisBatch {
    let records: Vec<serde_json::Value> = readings
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let seq = format!(
                "4961234567890123456789012345678901234567890123456{:07}",
                first + j
            );
            serde_json::json!({
                "kinesis": {
                    "partitionKey": "p",
                    "sequenceNumber": seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(r),
                    "approximateArrivalTimestamp": 1795331700.0 + (first + j) as f64 / 10.0
                },
                "eventID": format!("shardId-000000000000:{seq}"),
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/iot"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("a Kinesis event")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: flink-inputs DIR [READINGS]"))?,
    );
    let count: usize = args.next().map_or(Ok(20_000), |n| n.parse())?;
    std::fs::create_dir_all(&dir)?;
    let mut rng = Xorshift::new();
    let readings: Vec<String> = (0..count).map(|i| reading(i, &mut rng)).collect();
    let store = MemoryStore::new();
    let config = StreamConfig::new("kinesis-processor", "curated");
    // The rules' alerts are not compared: they stay in memory.
    let runner = kinesis_processor::aggregating_pipeline_from(Kinesis)
        .alerts(runnel::window::MemoryAlerts::new())
        .store(store.clone())
        .config(config)
        .build()?;
    let (mut at, mut n) = (0, 0usize);
    while at < readings.len() {
        let size = 1 + (n * 7919) % 500;
        let end = (at + size).min(readings.len());
        let batch = event(&readings[at..end], at);
        let (response, _) = runner.handle(&batch).await;
        anyhow::ensure!(
            response?.batch_item_failures.is_empty(),
            "batch {n} reported failures"
        );
        if n == 3 {
            // Delivered again, as after a crash: its runs overwrite their objects and panes.
            runner.handle(&batch).await.0?;
        }
        at = end;
        n += 1;
    }
    let objects = store.objects();
    let lines = |prefix: &str| -> anyhow::Result<Vec<serde_json::Value>> {
        let mut all = Vec::new();
        for ((_, key), body) in objects.iter().filter(|((_, k), _)| k.starts_with(prefix)) {
            all.extend(
                runnel::testing::ndjson_documents(body)
                    .map_err(|e| anyhow::anyhow!("{key}: {e}"))?,
            );
        }
        Ok(all)
    };
    let landed = lines("kinesis-processor/")?;
    let mut text = String::new();
    for line in &landed {
        text.push_str(&serde_json::to_string(line)?);
        text.push('\n');
    }
    std::fs::write(dir.join("readings.ndjson"), text)?;
    let merged = device_minute().merge_panes(&lines("aggregates/device_minute/")?)?;
    std::fs::write(dir.join("runnel.json"), serde_json::to_vec(&merged)?)?;
    eprintln!(
        "flink-inputs: {count} readings delivered in {n} batches, {} landed, {} device-minutes from the panes",
        landed.len(),
        merged.len()
    );
    Ok(())
}
