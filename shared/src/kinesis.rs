//! Kinesis as a batch source: the Lambda event in, `batchItemFailures` out.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;

use crate::aws::Aws;
use crate::batch::{
    BatchOutcome, BatchStats, Mode, Processor, ProcessorConfig, SourceRecord, Transform,
};
use crate::config::{self, ConfigError};
use crate::records::DecodeLimits;
use crate::sink::{Location, Ndjson, NdjsonGzip, S3Store};
use crate::telemetry::{self, Metrics, Unit};

/// The shard id of a record: the part of `eventID` before `:` (`shardId-000000000000:4959…`).
pub fn shard_id(event_id: Option<&str>) -> &str {
    event_id
        .and_then(|id| id.split_once(':').map(|(shard, _)| shard))
        .unwrap_or("unknown-shard")
}

/// Borrows the records of a Kinesis event as batch source records.
pub fn source_records(event: &KinesisEvent) -> Vec<SourceRecord<'_>> {
    event
        .records
        .iter()
        .map(|r| SourceRecord {
            item_identifier: &r.kinesis.sequence_number,
            stream: shard_id(r.event_id.as_deref()),
            position: &r.kinesis.sequence_number,
            partition_key: Some(r.kinesis.partition_key.as_str()),
            arrival: Some(r.kinesis.approximate_arrival_timestamp.0),
            data: &r.kinesis.data.0,
        })
        .collect()
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
pub fn iterator_age_ms(event: &KinesisEvent, now: DateTime<Utc>) -> Option<i64> {
    event
        .records
        .iter()
        .map(|r| r.kinesis.approximate_arrival_timestamp.0)
        .min()
        .map(|oldest| (now - oldest).num_milliseconds().max(0))
}

/// A correlation id for logs: the shard and the first sequence number of the batch.
pub fn correlation_id(event: &KinesisEvent) -> Option<String> {
    event.records.first().map(|r| {
        format!(
            "{}:{}",
            shard_id(r.event_id.as_deref()),
            r.kinesis.sequence_number
        )
    })
}

/// Processes a Kinesis event and returns the response with the batch's counts.
pub async fn handle<T: Transform>(
    processor: &Processor<T>,
    event: &KinesisEvent,
) -> (KinesisEventResponse, BatchOutcome) {
    let records = source_records(event);
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
    Processor::new(
        transform,
        Arc::new(S3Store::new(s3)),
        Arc::new(NdjsonGzip::default()),
        Arc::new(Ndjson),
        config.processor_config(),
    )
}

/// Handles one invocation: context for logs, processing, metrics, a summary log line.
pub async fn invoke<T: Transform>(
    processor: &Processor<T>,
    metrics_template: &Metrics,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let (event, context) = event.into_parts();
    let cold_start = telemetry::begin_invocation(&context.request_id, correlation_id(&event));
    let age = iterator_age_ms(&event, Utc::now());
    let (response, outcome) = handle(processor, &event).await;
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
