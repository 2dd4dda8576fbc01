//! A small pipeline for the processor tests: readings with a device and an hour.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use runnel::pipeline::{Processor, ProcessorConfig};
use runnel::records::{DecodeLimits, FieldError, Validate};
use runnel::sink::{Location, ObjectMap, ObjectStore, Sink};
use runnel::source::{Mode, SourceRecord};
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

pub const SHARD: &str = "shardId-000000000001";

pub fn config(mode: Mode) -> ProcessorConfig {
    ProcessorConfig {
        output: Location::new("curated", "iot"),
        quarantine: Location::new("curated", "quarantine/iot"),
        mode,
        limits: DecodeLimits::default(),
        concurrency: 4,
        source_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/iot".into()),
        redelivery: Default::default(),
        delivery: Default::default(),
    }
}

pub fn processor(
    transform: TestTransform,
    store: Arc<dyn ObjectStore>,
    mode: Mode,
) -> Processor<TestTransform> {
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
