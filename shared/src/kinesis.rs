//! Kinesis as a batch source: the Lambda event in, `batchItemFailures` out.

use std::sync::Arc;

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use lambda_runtime::LambdaEvent;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::aws::Aws;
use crate::batch::{
    BatchOutcome, BatchStats, Mode, Processor, ProcessorConfig, SourceRecord, Transform,
};
use crate::config::{self, ConfigError};
use crate::records::DecodeLimits;
use crate::sink::{Location, Ndjson, NdjsonGzip, ObjectStore, S3Store};
use crate::telemetry::{self, Metrics, Unit};

/// The shard id of a record: the part of `eventID` before `:` (`shardId-000000000000:4959…`).
pub fn shard_id(event_id: Option<&str>) -> &str {
    event_id
        .and_then(|id| id.split_once(':').map(|(shard, _)| shard))
        .unwrap_or("unknown-shard")
}

/// A Kinesis event as the handler reads it: the fields it uses, in Lambda's shape. Parsing it
/// costs about half of parsing the full `KinesisEvent` model, which allocates seven strings per
/// record the handler never reads and decodes the arrival time through text (BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KinesisBatch {
    #[serde(rename = "Records")]
    pub records: Vec<BatchRecord>,
}

/// One record of a [`KinesisBatch`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BatchRecord {
    /// `shardId-…:<sequence number>`.
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    pub kinesis: BatchPayload,
}

/// The `kinesis` part of a record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPayload {
    #[serde(default)]
    pub sequence_number: String,
    #[serde(default)]
    pub partition_key: String,
    /// The record's bytes (base64 in the event).
    #[serde(deserialize_with = "base64_bytes")]
    pub data: Vec<u8>,
    /// Epoch seconds with millisecond precision.
    #[serde(deserialize_with = "epoch_seconds")]
    pub approximate_arrival_timestamp: DateTime<Utc>,
}

fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl de::Visitor<'_> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("base64 text")
        }
        // Decodes straight from the event's text, without an intermediate String.
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| E::custom(format!("data is not base64: {e}")))
        }
    }
    deserializer.deserialize_str(Bytes)
}

fn epoch_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Seconds;
    impl Seconds {
        fn from_f64<E: de::Error>(v: f64) -> Result<DateTime<Utc>, E> {
            // Kinesis gives milliseconds: round to them so 1795323300.25 is .250, not float noise.
            let millis = (v * 1000.0).round();
            if !millis.is_finite() || millis.abs() > 8.0e15 {
                return Err(E::custom(format!("{v} is not an epoch time in seconds")));
            }
            Utc.timestamp_millis_opt(millis as i64)
                .single()
                .ok_or_else(|| E::custom(format!("{v} is not an epoch time in seconds")))
        }
    }
    impl de::Visitor<'_> for Seconds {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("epoch seconds")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<DateTime<Utc>, E> {
            Self::from_f64(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<DateTime<Utc>, E> {
            Self::from_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<DateTime<Utc>, E> {
            Self::from_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime<Utc>, E> {
            let seconds: f64 = v
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not an epoch time in seconds")))?;
            Self::from_f64(seconds)
        }
    }
    deserializer.deserialize_any(Seconds)
}

impl KinesisBatch {
    /// Borrows the records as batch source records, reported and keyed by sequence number.
    pub fn source_records(&self) -> Vec<SourceRecord<'_>> {
        self.records
            .iter()
            .map(|r| SourceRecord {
                item_identifier: &r.kinesis.sequence_number,
                stream: shard_id(r.event_id.as_deref()),
                position: &r.kinesis.sequence_number,
                partition_key: Some(r.kinesis.partition_key.as_str()),
                arrival: Some(r.kinesis.approximate_arrival_timestamp),
                data: &r.kinesis.data,
            })
            .collect()
    }
}

/// The response Lambda reads: the failed sequence numbers.
pub fn response(outcome: &BatchOutcome) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    response.batch_item_failures = outcome
        .failures
        .iter()
        .map(|id| {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(id.clone());
            failure
        })
        .collect();
    response
}

/// How far behind the stream's tip this batch is: now minus the oldest arrival time.
pub fn iterator_age_ms(records: &[SourceRecord<'_>], now: DateTime<Utc>) -> Option<i64> {
    records
        .iter()
        .filter_map(|r| r.arrival)
        .min()
        .map(|oldest| (now - oldest).num_milliseconds().max(0))
}

/// A correlation id for logs: the shard and the first sequence number of the batch.
pub fn correlation_id(records: &[SourceRecord<'_>]) -> Option<String> {
    records
        .first()
        .map(|r| format!("{}:{}", r.stream, r.position))
}

/// Processes a Kinesis event and returns the response with the batch's counts.
pub async fn handle<T: Transform>(
    processor: &Processor<T>,
    event: &KinesisBatch,
) -> (KinesisEventResponse, BatchOutcome) {
    let records = event.source_records();
    let outcome = processor.process(&records).await;
    (response(&outcome), outcome)
}

/// Records the batch's metrics.
pub fn record_metrics(
    metrics: &mut Metrics,
    stats: &BatchStats,
    latency_ms: f64,
    iterator_age_ms: Option<i64>,
) {
    metrics.count("RecordsIn", stats.records_in as u64);
    metrics.count("DocumentsWritten", stats.documents_written as u64);
    metrics.count("DocumentsQuarantined", stats.documents_quarantined as u64);
    metrics.count("RecordsFailed", stats.records_failed as u64);
    metrics.count("ObjectsWritten", stats.objects_written as u64);
    metrics.add("BytesIn", Unit::Bytes, stats.bytes_in as f64);
    metrics.add("BatchLatency", Unit::Milliseconds, latency_ms);
    if let Some(age) = iterator_age_ms {
        metrics.add("IteratorAge", Unit::Milliseconds, age as f64);
    }
}

/// Configuration of a Kinesis → S3 pipeline, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    pub output: Location,
    pub quarantine: Location,
    pub mode: Mode,
    pub max_record_bytes: usize,
    pub concurrency: usize,
    pub metrics_namespace: String,
    pub pipeline: String,
}

impl StreamConfig {
    /// Reads `OUTPUT_BUCKET` (required), `OUTPUT_PREFIX`, `QUARANTINE_BUCKET` (defaults to the
    /// output bucket), `QUARANTINE_PREFIX`, `BATCH_MODE` (`ordered` | `report-all`),
    /// `MAX_RECORD_BYTES`, `WRITE_CONCURRENCY`, `METRICS_NAMESPACE`, `PIPELINE_NAME`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        config::load(lookup, |env| {
            let bucket: String = env.required("OUTPUT_BUCKET", "the S3 bucket for curated output");
            let prefix: String =
                env.optional_or("OUTPUT_PREFIX", "iot".to_string(), "a key prefix");
            let q_bucket: String = env.optional_or(
                "QUARANTINE_BUCKET",
                bucket.clone(),
                "the S3 bucket for bad records",
            );
            let q_prefix: String = env.optional_or(
                "QUARANTINE_PREFIX",
                "quarantine/iot".to_string(),
                "a key prefix",
            );
            let mode = env.optional_or("BATCH_MODE", Mode::Ordered, "ordered or report-all");
            let max_record_bytes: usize = env.optional_or(
                "MAX_RECORD_BYTES",
                DecodeLimits::default().max_decoded_bytes,
                "a size in bytes (decoded record limit)",
            );
            if max_record_bytes == 0 {
                env.problem(
                    "MAX_RECORD_BYTES",
                    "a size in bytes above 0",
                    Some("0".into()),
                    "must be positive",
                );
            }
            let concurrency: usize = env.optional_or("WRITE_CONCURRENCY", 8, "a whole number 1-64");
            if !(1..=64).contains(&concurrency) {
                env.problem(
                    "WRITE_CONCURRENCY",
                    "a whole number 1-64",
                    Some(concurrency.to_string()),
                    "out of range",
                );
            }
            StreamConfig {
                output: Location::new(bucket, prefix),
                quarantine: Location::new(q_bucket, q_prefix),
                mode,
                max_record_bytes,
                concurrency,
                metrics_namespace: env.optional_or(
                    "METRICS_NAMESPACE",
                    "Runnel".to_string(),
                    "a CloudWatch namespace",
                ),
                pipeline: env.optional_or("PIPELINE_NAME", "runnel".to_string(), "a pipeline name"),
            }
        })
    }

    pub fn processor_config(&self) -> ProcessorConfig {
        ProcessorConfig {
            output: self.output.clone(),
            quarantine: self.quarantine.clone(),
            mode: self.mode,
            limits: DecodeLimits {
                max_decoded_bytes: self.max_record_bytes,
            },
            concurrency: self.concurrency,
            source_arn: None,
        }
    }
}

/// Builds a processor writing gzip NDJSON to S3 and plain NDJSON to quarantine.
pub fn s3_processor<T: Transform>(
    transform: T,
    config: &StreamConfig,
    s3: aws_sdk_s3::Client,
) -> Processor<T> {
    processor_with_store(transform, config, Arc::new(S3Store::new(s3)))
}

/// The same processor over any object store (memory in tests and benchmarks).
pub fn processor_with_store<T: Transform>(
    transform: T,
    config: &StreamConfig,
    store: Arc<dyn ObjectStore>,
) -> Processor<T> {
    Processor::new(
        transform,
        store,
        Arc::new(NdjsonGzip::default()),
        Arc::new(Ndjson),
        config.processor_config(),
    )
}

/// Handles one invocation: context for logs, processing, metrics, a summary log line.
pub async fn invoke<T: Transform>(
    processor: &Processor<T>,
    metrics_template: &Metrics,
    event: LambdaEvent<KinesisBatch>,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let (event, context) = event.into_parts();
    let records = event.source_records();
    let cold_start = telemetry::begin_invocation(&context.request_id, correlation_id(&records));
    let age = iterator_age_ms(&records, Utc::now());
    let outcome = processor.process(&records).await;
    let response = response(&outcome);
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    let mut metrics = metrics_template.clone();
    metrics.property("request_id", context.request_id.clone());
    metrics.property("cold_start", cold_start);
    record_metrics(&mut metrics, &outcome.stats, latency, age);
    metrics.flush();
    let s = &outcome.stats;
    if outcome.failures.is_empty() {
        tracing::info!(
            records = s.records_in,
            written = s.documents_written,
            quarantined = s.documents_quarantined,
            objects = s.objects_written,
            latency_ms = latency,
            "batch processed"
        );
    } else {
        tracing::warn!(
            records = s.records_in,
            written = s.documents_written,
            quarantined = s.documents_quarantined,
            failed = s.records_failed,
            first_failure = outcome
                .failures
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
            errors = outcome.errors.join(" | ").as_str(),
            "batch processed with failures reported for retry"
        );
    }
    Ok(response)
}

/// Runs a Kinesis → S3 pipeline as a Lambda function: the whole `main` of a handler.
pub async fn run<T: Transform>(service: &str, transform: T) -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging(service);
    let config = crate::config::logged(StreamConfig::from_lookup(|n| std::env::var(n).ok()))?;
    let aws = Aws::from_env().await;
    let processor = s3_processor(transform, &config, aws.s3());
    let metrics = Metrics::new(config.metrics_namespace.clone())
        .dimension("service", service)
        .dimension("pipeline", config.pipeline.clone());
    tracing::debug!(?config, "configuration loaded");
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        invoke(&processor, &metrics, event)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::kinesis::KinesisEvent;

    const SAMPLES: [&str; 4] = [
        include_str!("../../events/kinesis-clean.json"),
        include_str!("../../events/kinesis-poison.json"),
        include_str!("../../events/kinesis-gzip-ndjson.json"),
        include_str!("../../events/kinesis-empty.json"),
    ];

    #[test]
    fn the_lean_model_reads_what_the_full_model_reads() {
        for sample in SAMPLES {
            let lean: KinesisBatch = serde_json::from_str(sample).unwrap();
            let full: KinesisEvent = serde_json::from_str(sample).unwrap();
            assert_eq!(lean.records.len(), full.records.len());
            for (lean, full) in lean.records.iter().zip(&full.records) {
                let (l, f) = (&lean.kinesis, &full.kinesis);
                assert_eq!(lean.event_id, full.event_id);
                assert_eq!(
                    (&l.sequence_number, &l.partition_key, &l.data),
                    (&f.sequence_number, &f.partition_key, &f.data.0)
                );
                // Same second; the lean model keeps the milliseconds exactly.
                assert_eq!(
                    l.approximate_arrival_timestamp.timestamp(),
                    f.approximate_arrival_timestamp.0.timestamp()
                );
            }
        }
    }

    #[test]
    fn arrival_times_keep_their_milliseconds_in_every_shape() {
        let parse = |ts: &str| {
            let json = format!(
                r#"{{"Records":[{{"eventID":"shardId-000000000001:7","kinesis":{{"sequenceNumber":"7","data":"e30=","approximateArrivalTimestamp":{ts}}}}}]}}"#
            );
            serde_json::from_str::<KinesisBatch>(&json).map(|b| {
                b.records[0]
                    .kinesis
                    .approximate_arrival_timestamp
                    .timestamp_millis()
            })
        };
        assert_eq!(parse("1795323300.25").unwrap(), 1_795_323_300_250);
        assert_eq!(parse("1795323300.001").unwrap(), 1_795_323_300_001);
        assert_eq!(parse("1795323300").unwrap(), 1_795_323_300_000);
        assert_eq!(parse("\"1795323300.5\"").unwrap(), 1_795_323_300_500);
        assert!(parse("\"soon\"")
            .unwrap_err()
            .to_string()
            .contains("not an epoch time"));
        assert!(parse("1e300").is_err());
    }

    #[test]
    fn bad_data_and_missing_records_are_errors_not_panics() {
        let bad = r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"not base64!","approximateArrivalTimestamp":1}}]}"#;
        assert!(serde_json::from_str::<KinesisBatch>(bad)
            .unwrap_err()
            .to_string()
            .contains("not base64"));
        assert!(serde_json::from_str::<KinesisBatch>(r#"{"detail":{}}"#).is_err());
        let empty = KinesisBatch::default();
        let records = empty.source_records();
        assert_eq!(iterator_age_ms(&records, Utc::now()), None);
        assert_eq!(correlation_id(&records), None);
    }

    #[test]
    fn correlation_and_age_come_from_the_records() {
        let batch: KinesisBatch = serde_json::from_str(SAMPLES[0]).unwrap();
        let records = batch.source_records();
        let first = &batch.records[0];
        assert_eq!(
            correlation_id(&records).unwrap(),
            format!(
                "{}:{}",
                shard_id(first.event_id.as_deref()),
                first.kinesis.sequence_number
            )
        );
        let now = first.kinesis.approximate_arrival_timestamp + chrono::Duration::seconds(5);
        assert_eq!(iterator_age_ms(&records, now), Some(5_000));
    }
}
