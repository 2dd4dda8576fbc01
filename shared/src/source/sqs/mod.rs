//! SQS as a batch source: the Lambda event in, `batchItemFailures` (message ids) out.
//!
//! - **Standard queues** deliver in no order and re-deliver a reported message on its own, in
//!   any later batch: every failed `messageId` is reported ([`FailureMode::ReportAll`] by default) and
//!   each message's output is keyed by its own id ([`Redelivery::PerRecord`]), so a re-delivered
//!   message overwrites its objects whatever batch it comes back in.
//! - **FIFO queues** (the queue name ends in `.fifo`) must keep the order of each message group:
//!   after the first failure that message and every later one of the batch are reported
//!   ([`FailureMode::Ordered`], whatever `BATCH_MODE` says), or with `BATCH_MODE=per-group` only the
//!   later messages of the failed message's `MessageGroupId` ([`FailureMode::PerGroup`]).
//!
//! Lambda fails the whole batch when a reported identifier is empty or unknown, so a message
//! without a `messageId` fails the invocation before anything is written
//! ([`BatchSource::check`]): the queue retries the batch and, after `maxReceiveCount`, moves it to
//! its dead-letter queue.
//!
//! The handler reads its own lean event model, [`SqsBatch`]: only the fields above, each
//! message's text and body in two buffers of the batch.

mod batch;

use crate::telemetry::metric;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use chrono::{DateTime, TimeZone, Utc};

pub use batch::{SqsBatch, SqsRecord};

use super::{BatchOutcome, BatchSource, FailureMode, Redelivery, ResponseError, SourceRecord};

/// The SQS source. `Pipeline::new(..).source(Sqs)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqs;

impl BatchSource for Sqs {
    type Event = SqsBatch;
    type Response = SqsBatchResponse;

    fn name(&self) -> &'static str {
        "sqs"
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::ReportAll
    }

    fn redelivery(&self) -> Redelivery {
        Redelivery::PerRecord
    }

    fn mode(&self, records: &[SourceRecord<'_>], configured: Option<FailureMode>) -> FailureMode {
        let fifo = records.first().is_some_and(|r| is_fifo(r.stream));
        match (fifo, configured) {
            (true, Some(FailureMode::PerGroup)) => FailureMode::PerGroup,
            // Report-all would let a group's later messages land before an earlier one.
            (true, _) => FailureMode::Ordered,
            (false, Some(mode)) => mode,
            (false, None) => FailureMode::ReportAll,
        }
    }

    fn records<'e>(&self, event: &'e SqsBatch) -> Vec<SourceRecord<'e>> {
        event.records().map(record).collect()
    }

    fn response(
        &self,
        _event: &SqsBatch,
        outcome: &BatchOutcome,
    ) -> Result<SqsBatchResponse, ResponseError> {
        response(outcome)
    }

    fn lag_metric(&self) -> &'static str {
        metric::MESSAGE_AGE
    }
}

/// Whether a queue name is a FIFO queue's.
pub fn is_fifo(queue: &str) -> bool {
    queue.ends_with(".fifo")
}

/// The queue's name: the last part of `eventSourceARN` (`arn:aws:sqs:<region>:<account>:<name>`).
pub fn queue_name(arn: Option<&str>) -> &str {
    match arn.and_then(|a| a.rsplit(':').next()) {
        Some(name) if !name.is_empty() => name,
        _ => "sqs",
    }
}

fn record(m: SqsRecord<'_>) -> SourceRecord<'_> {
    let id = m.message_id.unwrap_or("");
    SourceRecord {
        item_identifier: id,
        stream: queue_name(m.event_source_arn),
        position: id,
        partition_key: m.message_group_id,
        arrival: m.sent_timestamp.and_then(epoch_millis),
        data: m.body.unwrap_or_default(),
    }
}

fn epoch_millis(text: &str) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(text.trim().parse().ok()?).single()
}

/// The response Lambda reads: the failed message ids. An empty id would fail the whole batch on
/// Lambda's side; it is refused here instead, with the reason.
pub fn response(outcome: &BatchOutcome) -> Result<SqsBatchResponse, ResponseError> {
    let mut response = SqsBatchResponse::default();
    for id in &outcome.failures {
        if id.is_empty() {
            return Err(ResponseError(
                "a failed message has no messageId; the whole batch is retried".into(),
            ));
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id.clone();
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> SqsBatch {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_message_reads_as_a_record_keyed_by_its_id() {
        let e = event(include_str!("../../../../events/sqs-readings.json"));
        let records = Sqs.records(&e);
        let first = &records[0];
        assert_eq!(first.stream, "readings");
        assert_eq!(first.item_identifier, first.position);
        assert!(!first.position.is_empty());
        assert_eq!(first.partition_key, None);
        assert_eq!(
            first.arrival.unwrap().to_rfc3339(),
            "2026-11-22T07:15:00.123+00:00"
        );
        assert!(std::str::from_utf8(first.data)
            .unwrap()
            .contains("device_id"));
        assert_eq!(Sqs.mode(&records, None), FailureMode::ReportAll);
        assert_eq!(
            Sqs.mode(&records, Some(FailureMode::Ordered)),
            FailureMode::Ordered
        );
    }

    #[test]
    fn fifo_batches_keep_group_order_whatever_the_configuration() {
        let e = event(include_str!("../../../../events/sqs-fifo-readings.json"));
        let records = Sqs.records(&e);
        assert_eq!(records[0].stream, "readings.fifo");
        assert_eq!(records[0].partition_key, Some("sensor-0042"));
        assert_eq!(Sqs.mode(&records, None), FailureMode::Ordered);
        assert_eq!(
            Sqs.mode(&records, Some(FailureMode::ReportAll)),
            FailureMode::Ordered
        );
        assert_eq!(
            Sqs.mode(&records, Some(FailureMode::PerGroup)),
            FailureMode::PerGroup
        );
    }

    #[test]
    fn the_response_names_each_failed_message_and_never_an_empty_id() {
        let outcome = BatchOutcome {
            failures: vec!["a".into(), "b".into()],
            ..BatchOutcome::default()
        };
        let json = serde_json::to_value(response(&outcome).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]})
        );
        let empty = BatchOutcome {
            failures: vec![String::new()],
            ..BatchOutcome::default()
        };
        assert!(response(&empty).unwrap_err().0.contains("messageId"));
    }

    #[test]
    fn queue_names_come_from_the_arn() {
        assert_eq!(
            queue_name(Some("arn:aws:sqs:eu-west-1:123456789012:orders.fifo")),
            "orders.fifo"
        );
        assert_eq!(queue_name(None), "sqs");
        assert_eq!(queue_name(Some("arn:aws:sqs:eu-west-1:1:")), "sqs");
    }
}
