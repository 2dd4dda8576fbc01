//! Replaying a batch an event source mapping gave up on (`runnel replay`).
//!
//! Lambda's on-failure record names the batch: for Kinesis and DynamoDB Streams the shard and
//! the first and last sequence numbers (`KinesisBatchInfo`, `DDBStreamBatchInfo`), for Kafka the
//! offsets per partition (`KafkaBatchInfo`). Written to an S3 destination, it also carries the
//! original event as `payload` (an escaped JSON string). A replay invokes the same function with
//! the same batch: the event from the payload as it was, or — for a Kinesis record without one —
//! the shard's records from the first to the last sequence number, read again from the stream
//! while it still holds them. The same batch gives the same output keys, so a replay after a
//! partial write overwrites what was written and adds what was missing: exactly once.

use aws_lambda_events::encodings::{Base64Data, SecondTimestamp};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use aws_sdk_kinesis::types::ShardIteratorType;
use serde::Deserialize;

/// An on-failure record, as Lambda writes it to SQS, SNS or S3 (the fields a replay reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OnFailureRecord {
    /// Who failed and why.
    #[serde(rename = "requestContext", default)]
    pub request_context: RequestContext,
    /// A Kinesis batch.
    #[serde(rename = "KinesisBatchInfo")]
    pub kinesis: Option<StreamBatchInfo>,
    /// A DynamoDB Streams batch.
    #[serde(rename = "DDBStreamBatchInfo")]
    pub dynamodb: Option<StreamBatchInfo>,
    /// A Kafka batch (its fields are not needed: only its payload can be replayed).
    #[serde(rename = "KafkaBatchInfo")]
    pub kafka: Option<serde_json::Value>,
    /// The original event, as escaped JSON text (S3 destinations only).
    pub payload: Option<String>,
}

/// `requestContext` of an on-failure record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The function that failed.
    #[serde(default)]
    pub function_arn: String,
    /// Why Lambda gave up (`RetryAttemptsExhausted`, `RecordAgeExceeded`, …).
    #[serde(default)]
    pub condition: String,
}

/// `KinesisBatchInfo` / `DDBStreamBatchInfo`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatchInfo {
    /// The shard.
    pub shard_id: String,
    /// The batch's first record.
    pub start_sequence_number: String,
    /// The batch's last record.
    pub end_sequence_number: String,
    /// Records in the batch.
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// The stream.
    pub stream_arn: String,
}

/// Why a batch cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The record is not an on-failure record, or names no batch.
    #[error("not an on-failure record of a stream batch: {0}")]
    NotARecord(String),
    /// Only the payload could replay this batch, and the record has none.
    #[error(
        "the {0} on-failure record has no payload: only an S3 on-failure destination keeps the \
         batch's records for {0}"
    )]
    NoPayload(&'static str),
    /// The stream no longer holds (all of) the batch.
    #[error("the stream no longer holds the batch: {0}")]
    Expired(String),
    /// Reading the stream failed.
    #[error("reading {shard} of {stream} failed")]
    Read {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a replay invokes the function with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayEvent {
    /// The original event, from the record's payload.
    Payload(Vec<u8>),
    /// A Kinesis range to read again from the stream.
    KinesisRange(StreamBatchInfo),
}

impl OnFailureRecord {
    /// Parses a record (JSON text).
    pub fn parse(text: &[u8]) -> Result<Self, ReplayError> {
        serde_json::from_slice(text).map_err(|e| ReplayError::NotARecord(e.to_string()))
    }

    /// What to invoke the function with: the payload when the record has one, else the Kinesis
    /// range; DynamoDB and Kafka records need their payload.
    pub fn replay_event(&self) -> Result<ReplayEvent, ReplayError> {
        if let Some(payload) = &self.payload {
            return Ok(ReplayEvent::Payload(payload.clone().into_bytes()));
        }
        match (&self.kinesis, &self.dynamodb, &self.kafka) {
            (Some(batch), _, _) => Ok(ReplayEvent::KinesisRange(batch.clone())),
            (_, Some(_), _) => Err(ReplayError::NoPayload("DynamoDB Streams")),
            (_, _, Some(_)) => Err(ReplayError::NoPayload("Kafka")),
            _ => Err(ReplayError::NotARecord(
                "no KinesisBatchInfo, DDBStreamBatchInfo or KafkaBatchInfo".into(),
            )),
        }
    }

    /// The failed function's name (the last part of its ARN), if the record names it.
    pub fn function_name(&self) -> Option<&str> {
        crate::aws::arn::function_name(&self.request_context.function_arn)
    }
}

/// Reads the records of `batch` again from its stream — from the first sequence number to the
/// last, both included — as the Kinesis event Lambda delivered. Fails when the stream no longer
/// holds the first record (past its retention), so nothing is replayed in part.
pub async fn read_kinesis_batch(
    client: &aws_sdk_kinesis::Client,
    batch: &StreamBatchInfo,
) -> Result<KinesisEvent, ReplayError> {
    let read_error = |e: Box<dyn std::error::Error + Send + Sync>| ReplayError::Read {
        stream: batch.stream_arn.clone(),
        shard: batch.shard_id.clone(),
        source: e,
    };
    // By name: every Kinesis endpoint takes it, not all take the ARN.
    let stream = batch
        .stream_arn
        .rsplit_once("stream/")
        .map_or(&*batch.stream_arn, |(_, n)| n);
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&batch.start_sequence_number)
        .send()
        .await
        .map_err(|e| read_error(Box::new(aws_sdk_kinesis::Error::from(e))))?;
    let mut iterator = iterator.shard_iterator;
    let end = position_key(&batch.end_sequence_number);
    let mut records: Vec<aws_sdk_kinesis::types::Record> = Vec::new();
    let mut empty_reads = 0;
    while let Some(it) = iterator.take() {
        let out = client
            .get_records()
            .shard_iterator(it)
            .limit(10_000)
            .send()
            .await
            .map_err(|e| read_error(Box::new(aws_sdk_kinesis::Error::from(e))))?;
        let got = out.records.len();
        let before = records.len();
        records.extend(
            out.records
                .into_iter()
                .take_while(|r| position_key(&r.sequence_number) <= end),
        );
        let reached = records
            .last()
            .is_some_and(|r| position_key(&r.sequence_number) >= end);
        // Past the end (a record beyond it was read): the range is all there is.
        if reached || records.len() - before < got {
            break;
        }
        // Nothing new at the shard's tip: the rest of the range is not there.
        empty_reads = if got == 0 { empty_reads + 1 } else { 0 };
        if empty_reads > 5 || (got == 0 && out.millis_behind_latest == Some(0)) {
            break;
        }
        iterator = out.next_shard_iterator;
    }
    let last = records.last().map(|r| r.sequence_number.clone());
    match records.first() {
        Some(first) if first.sequence_number != batch.start_sequence_number => {
            return Err(ReplayError::Expired(format!(
                "it begins at {}, the batch at {}",
                first.sequence_number, batch.start_sequence_number
            )))
        }
        Some(_) if last.as_deref() != Some(&batch.end_sequence_number) => {
            return Err(ReplayError::Expired(format!(
                "it ends at {}, the batch at {}",
                last.unwrap_or_default(),
                batch.end_sequence_number
            )))
        }
        Some(_) => {}
        None => {
            return Err(ReplayError::Expired(format!(
                "no records from {} to {}",
                batch.start_sequence_number, batch.end_sequence_number
            )))
        }
    }
    let region = crate::aws::arn::region(&batch.stream_arn)
        .unwrap_or_default()
        .to_string();
    // The models are non-exhaustive: built from their defaults, field by field.
    let mut event = KinesisEvent::default();
    for r in records {
        let mut kinesis = KinesisRecord::default();
        kinesis.approximate_arrival_timestamp = SecondTimestamp(
            r.approximate_arrival_timestamp
                .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?))
                .unwrap_or_default(),
        );
        let mut data = Base64Data::default();
        *data = r.data.into_inner();
        kinesis.data = data;
        kinesis.partition_key = r.partition_key.unwrap_or_default();
        kinesis.kinesis_schema_version = Some("1.0".into());
        let mut record = KinesisEventRecord::default();
        record.aws_region = Some(region.clone());
        record.event_id = Some(format!("{}:{}", batch.shard_id, r.sequence_number));
        kinesis.sequence_number = r.sequence_number;
        record.event_name = Some("aws:kinesis:record".into());
        record.event_source = Some("aws:kinesis".into());
        record.event_source_arn = Some(batch.stream_arn.clone());
        record.event_version = Some("1.0".into());
        record.kinesis = kinesis;
        event.records.push(record);
    }
    Ok(event)
}

/// Orders decimal sequence numbers of any length.
fn position_key(s: &str) -> (usize, &str) {
    (s.len(), s)
}

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeAnswer {
    /// The function's error (`Unhandled`, …) when it failed.
    pub function_error: Option<String>,
    /// The response body.
    pub body: serde_json::Value,
    /// The identifiers the function reported for retry (`batchItemFailures`).
    pub failed: Vec<String>,
}

impl InvokeAnswer {
    /// Reads a response body: `batchItemFailures` identifiers as text (Kafka's are objects).
    pub fn new(function_error: Option<String>, body: &[u8]) -> Self {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        });
        let failed = body
            .get("batchItemFailures")
            .and_then(|f| f.as_array())
            .map(|items| {
                items
                    .iter()
                    .map(|i| match i.get("itemIdentifier") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => i.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        InvokeAnswer {
            function_error,
            body,
            failed,
        }
    }
}

/// Invokes `function` synchronously with `event` and reads the answer.
pub async fn invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    event: Vec<u8>,
) -> Result<InvokeAnswer, aws_sdk_lambda::Error> {
    let out = client
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(event))
        .send()
        .await?;
    let body = out.payload.map(|b| b.into_inner()).unwrap_or_default();
    Ok(InvokeAnswer::new(out.function_error, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINESIS: &str = r#"{
      "requestContext": {"requestId": "c9b8fa9f", "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:readings:live",
        "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
      "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
      "version": "1.0", "timestamp": "2026-11-30T00:38:06.021Z",
      "KinesisBatchInfo": {"shardId": "shardId-000000000001", "startSequenceNumber": "4960", "endSequenceNumber": "4970",
        "approximateArrivalOfFirstRecord": "2026-11-30T00:38:04.835Z", "approximateArrivalOfLastRecord": "2026-11-30T00:38:05.580Z",
        "batchSize": 500, "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/readings"}
    }"#;

    #[test]
    fn a_kinesis_record_without_payload_is_a_range_to_read_again() {
        let record = OnFailureRecord::parse(KINESIS.as_bytes()).unwrap();
        assert_eq!(record.function_name(), Some("readings"));
        let ReplayEvent::KinesisRange(batch) = record.replay_event().unwrap() else {
            panic!("a range");
        };
        assert_eq!(batch.shard_id, "shardId-000000000001");
        assert_eq!(
            (&*batch.start_sequence_number, &*batch.end_sequence_number),
            ("4960", "4970")
        );
        assert_eq!(
            crate::aws::arn::region(&batch.stream_arn),
            Some("us-east-2")
        );
    }

    #[test]
    fn a_payload_is_replayed_as_it_was_for_every_source() {
        let mut record: serde_json::Value = serde_json::from_str(KINESIS).unwrap();
        let event = r#"{"Records":[{"eventID":"x"}]}"#;
        record["payload"] = event.into();
        let parsed = OnFailureRecord::parse(record.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.replay_event().unwrap(),
            ReplayEvent::Payload(event.as_bytes().to_vec())
        );
        // DynamoDB and Kafka: only with a payload.
        let ddb = record["KinesisBatchInfo"].clone();
        let mut ddb_record = serde_json::json!({"DDBStreamBatchInfo": ddb});
        let err = OnFailureRecord::parse(ddb_record.to_string().as_bytes())
            .unwrap()
            .replay_event()
            .unwrap_err();
        assert!(
            err.to_string().contains("S3 on-failure destination"),
            "{err}"
        );
        ddb_record["payload"] = event.into();
        assert!(OnFailureRecord::parse(ddb_record.to_string().as_bytes())
            .unwrap()
            .replay_event()
            .is_ok());
        let kafka = serde_json::json!({"KafkaBatchInfo": {"batchSize": 1}});
        let err = OnFailureRecord::parse(kafka.to_string().as_bytes())
            .unwrap()
            .replay_event()
            .unwrap_err();
        assert!(err.to_string().contains("Kafka"), "{err}");
    }

    #[test]
    fn other_json_is_refused_with_the_reason() {
        for text in [&b"{}"[..], b"[1]", b"not json"] {
            assert!(matches!(
                OnFailureRecord::parse(text).and_then(|r| r.replay_event()),
                Err(ReplayError::NotARecord(_))
            ));
        }
    }

    #[test]
    fn answers_list_the_records_reported_for_retry() {
        let a = InvokeAnswer::new(
            None,
            br#"{"batchItemFailures":[{"itemIdentifier":"4962"},{"itemIdentifier":{"partition":"t-0","offset":3}}]}"#,
        );
        assert_eq!(a.failed, vec!["4962", r#"{"partition":"t-0","offset":3}"#]);
        let b = InvokeAnswer::new(Some("Unhandled".into()), b"boom");
        assert_eq!(b.body, serde_json::json!("boom"));
        assert!(b.failed.is_empty());
    }
}
