//! Each batch source's path on an event of the same readings (one per record, ≈ 6 MB), against
//! its own floor: serde_json parsing the event into the `aws_lambda_events` model of that source
//! and nothing else. The handler's path is what the runtime does: parse into the source's event
//! type, process into an in-memory store, serialise the answer (Firehose's carries the output).
//! The reader's figure is the first step alone: the parse into the source's event type.
//! Median of several runs after two warm-ups, all sources in one run (or one, with `--only`).
//!
//! `source-paths [--runs N] [--only SOURCE] [--json FILE]`: `--only` measures one source (`sqs`,
//! `dynamodb`, `firehose` or `kafka`), for a profiler.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
use aws_lambda_events::event::kafka::KafkaEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine as _;
use runnel::pipeline::{StreamConfig, StreamPipeline};
use runnel::sink::MemoryStore;
use runnel::source::{BatchSource, Firehose, Kafka, Sqs};
use runnel::transform::Transform;
use runnel_bench::{median, reading, Xorshift, RECORDS};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

const ARRIVAL_MS: i64 = 1_795_323_300_250;

fn readings() -> Vec<String> {
    let mut rng = Xorshift::new();
    (0..RECORDS).map(|i| reading(i, &mut rng)).collect()
}

fn sqs_event(readings: &[String]) -> Value {
    let records: Vec<Value> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "messageId": format!("5a1e0000-0000-4000-8000-{i:012}"),
                "receiptHandle": format!("AQEB{i:040}"),
                "body": r,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": ARRIVAL_MS.to_string(),
                               "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": ARRIVAL_MS.to_string()},
                "messageAttributes": {},
                "md5OfBody": "0123456789abcdef0123456789abcdef",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:readings",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A reading as DynamoDB attribute values: strings `S`, numbers `N`, objects `M`, arrays `L`.
fn attribute(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "S": s }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Null => json!({ "NULL": true }),
        Value::Array(a) => json!({ "L": a.iter().map(attribute).collect::<Vec<_>>() }),
        Value::Object(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<serde_json::Map<_, _>>() })
        }
    }
}

fn dynamodb_event(readings: &[String]) -> Value {
    let records: Vec<Value> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let item: Value = serde_json::from_str(r).expect("readings are JSON");
            let image = match attribute(&item) {
                Value::Object(mut m) => m.remove("M").expect("an object"),
                _ => unreachable!("readings are objects"),
            };
            json!({
                "eventID": format!("c4ca4238a0b923820dcc509a6f7584{i:06}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/readings/stream/2026-11-22T00:00:00.000",
                "dynamodb": {
                    "ApproximateCreationDateTime": ARRIVAL_MS / 1000,
                    "Keys": {"device_id": image["device_id"], "ts": image["ts"]},
                    "NewImage": image,
                    "SequenceNumber": format!("44215845000000000174504{i:07}"),
                    "SizeBytes": r.len(),
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

fn firehose_event(readings: &[String]) -> Value {
    let records: Vec<Value> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "recordId": format!("49546986683135544286507457936321625675700192471156{i:06}"),
                "approximateArrivalTimestamp": ARRIVAL_MS,
                "data": base64::engine::general_purpose::STANDARD.encode(r),
            })
        })
        .collect();
    json!({
        "invocationId": "0b4f8b2c-7b1f-4a1e-9c3a-2f5d6e7a8b9c",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/readings",
        "region": "us-east-1",
        "records": records
    })
}

fn kafka_event(readings: &[String]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut partitions = serde_json::Map::new();
    for p in 0..4usize {
        let list: Vec<Value> = readings
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == p)
            .map(|(i, r)| {
                json!({
                    "topic": "readings", "partition": p, "offset": i, "timestamp": ARRIVAL_MS,
                    "timestampType": "CREATE_TIME", "key": b64.encode(format!("sensor-{:06}", i % 5000)),
                    "value": b64.encode(r), "headers": [{"source": [103, 119]}]
                })
            })
            .collect();
        partitions.insert(format!("readings-{p}"), list.into());
    }
    json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/readings/751d2973-a626-431c-9d4e-d7975eb44dd7-2",
        "bootstrapServers": "b-1.readings.kafka.us-east-1.amazonaws.com:9098",
        "records": partitions
    })
}

struct Figures {
    name: &'static str,
    event_bytes: usize,
    floor: f64,
    reader: f64,
    handler: f64,
}

/// Times the floor (`F`: parse into the event model), the reader (parse into the source's event
/// type) and the handler (that parse, processing into an in-memory store, the answer serialised
/// as the runtime does; Firehose's carries the output), in turn, and checks each handled batch
/// landed every reading.
fn measure<F: DeserializeOwned, S: BatchSource, T: Transform>(
    name: &'static str,
    event: &Value,
    runs: usize,
    rt: &tokio::runtime::Runtime,
    pipeline: StreamPipeline<S, T>,
) -> anyhow::Result<Figures> {
    let event = serde_json::to_vec(event)?;
    let runner = pipeline
        .store(MemoryStore::new())
        .config(StreamConfig::new("bench", "curated"))
        .build()?;
    let (mut floor, mut reader, mut handler): (Vec<Duration>, Vec<Duration>, Vec<Duration>) =
        (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs + 2 {
        let t = Instant::now();
        let parsed: F = serde_json::from_slice(&event)?;
        let f = t.elapsed();
        drop(parsed);
        let t = Instant::now();
        let parsed: S::Event = serde_json::from_slice(&event)?;
        let r = t.elapsed();
        drop(parsed);
        let t = Instant::now();
        let parsed: S::Event = serde_json::from_slice(&event)?;
        let (response, outcome) = rt.block_on(runner.handle(&parsed));
        let answer = serde_json::to_vec(&response?)?;
        let h = t.elapsed();
        if answer.is_empty()
            || !outcome.failures.is_empty()
            || outcome.stats.documents_written != RECORDS
        {
            bail!(
                "{name}: the batch did not process cleanly: {:?}",
                outcome.stats
            );
        }
        if run >= 2 {
            floor.push(f);
            reader.push(r);
            handler.push(h);
        }
    }
    Ok(Figures {
        name,
        event_bytes: event.len(),
        floor: median(floor).as_secs_f64(),
        reader: median(reader).as_secs_f64(),
        handler: median(handler).as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let mut runs = 9;
    let (mut json_out, mut only) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = value()?.parse().context("--runs takes a whole number")?,
            "--json" => json_out = Some(value()?),
            "--only" => only = Some(value()?),
            other => bail!("unknown argument {other:?}; see the file's documentation"),
        }
    }
    const SOURCES: [&str; 4] = ["sqs", "dynamodb", "firehose", "kafka"];
    if let Some(name) = only.as_deref().filter(|n| !SOURCES.contains(n)) {
        bail!("--only takes one of {SOURCES:?}, not {name:?}");
    }
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let readings = readings();
    let mut all = Vec::new();

    if wanted("sqs") {
        let pipeline = kinesis_processor::pipeline_from(Sqs);
        all.push(measure::<SqsEvent, _, _>(
            "sqs",
            &sqs_event(&readings),
            runs,
            &rt,
            pipeline,
        )?);
    }
    if wanted("dynamodb") {
        let (event, pipeline) = (
            dynamodb_event(&readings),
            kinesis_processor::table_pipeline(),
        );
        all.push(measure::<DynamoDbEvent, _, _>(
            "dynamodb", &event, runs, &rt, pipeline,
        )?);
    }
    if wanted("firehose") {
        let pipeline = kinesis_processor::pipeline_from(Firehose);
        let event = firehose_event(&readings);
        all.push(measure::<KinesisFirehoseEvent, _, _>(
            "firehose", &event, runs, &rt, pipeline,
        )?);
    }
    if wanted("kafka") {
        let pipeline = kinesis_processor::pipeline_from(Kafka);
        all.push(measure::<KafkaEvent, _, _>(
            "kafka",
            &kafka_event(&readings),
            runs,
            &rt,
            pipeline,
        )?);
    }

    println!("{RECORDS} readings, one per record, in each source's event; median of {runs} runs");
    for f in &all {
        println!(
            "{:<9} {:>6.2} MB event   floor (parse into its aws_lambda_events model) {:>7.2} ms   reader {:>7.2} ms ({:.2})   handler {:>7.2} ms   ratio {:.2}",
            f.name,
            f.event_bytes as f64 / 1e6,
            f.floor * 1e3,
            f.reader * 1e3,
            f.reader / f.floor,
            f.handler * 1e3,
            f.handler / f.floor
        );
    }
    if let Some(path) = &json_out {
        let figures: serde_json::Map<String, Value> = all
            .iter()
            .map(|f| {
                (
                    f.name.to_string(),
                    json!({"event_bytes": f.event_bytes, "floor_ms": f.floor * 1e3,
                           "reader_ms": f.reader * 1e3, "handler_ms": f.handler * 1e3}),
                )
            })
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
