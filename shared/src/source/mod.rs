//! Batch sources: what a Lambda batch event is, and how the function answers it.
//!
//! A [`BatchSource`] turns its event into [`SourceRecord`]s (identifier, stream, position,
//! partition key, arrival time, payload) and builds the response from the [`BatchOutcome`]. The
//! processor never sees the event's shape, so every source shares one transform, one sink and one
//! set of delivery rules. A source also says how failures inside a batch are reported
//! ([`FailureMode`]): ordered sources (Kinesis, DynamoDB Streams, Kafka partitions, SQS FIFO) stop at the
//! first failure because the mapping resumes from it; unordered ones report each failure. And it
//! says what comes back after a failure ([`Redelivery`]), which decides how far one object's run
//! may reach for keys to stay the same in every delivery.
//!
//! The response is the source's own: `batchItemFailures` for Kinesis, and per-record results
//! for sources that answer every record (Firehose) — [`BatchOutcome::records`] carries what
//! happened to each record for them.

mod batch_reader;
pub mod dynamodb;
pub mod firehose;
pub mod kafka;
pub mod kinesis;
pub mod sqs;
pub mod windowed;

use crate::telemetry::metric;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use dynamodb::DynamoDb;
pub use firehose::Firehose;
pub use kafka::Kafka;
pub use kinesis::Kinesis;
pub use sqs::Sqs;
pub use windowed::Windowed;

/// Object ingest's source: S3 "Object Created" events (an S3 notification, EventBridge, either
/// through SQS), each object's rows read, transformed and landed in a day's partition. Used as
/// `Pipeline::new(name).source(S3Objects).transform(t)`, like the batch sources.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3Objects;

/// What [`crate::pipeline::Pipeline::source`] takes: every [`BatchSource`], and [`S3Objects`].
pub trait PipelineSource: Send + Sync + 'static {}

impl<S: BatchSource> PipelineSource for S {}

impl PipelineSource for S3Objects {}

/// How failures inside a batch are reported; the batch processor documents the exact semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Stop at the first record that fails transiently and report it and every later record.
    #[default]
    Ordered,
    /// Process every record and report each failed one.
    ReportAll,
    /// Ordered within each partition key (SQS FIFO `MessageGroupId`): a failure reports its
    /// record and the later records of its group; other groups go on. Only for sources whose
    /// re-delivery is [`Redelivery::PerRecord`]: a stream that resumes from its lowest reported
    /// record would re-deliver the other groups' records anyway.
    PerGroup,
}

/// What the source re-delivers after a batch reports failures; it decides how far a run (one
/// object) may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redelivery {
    /// The stream resumes from the lowest reported record (Kinesis, DynamoDB Streams, Kafka):
    /// a run may span records, since a re-delivery starts at the same record.
    #[default]
    FromCheckpoint,
    /// Each reported record comes back on its own, in any later batch beside any other records
    /// (SQS): every record's output is its own runs, keyed by the record alone.
    PerRecord,
}

impl std::str::FromStr for FailureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ordered" => Ok(FailureMode::Ordered),
            "report-all" | "report_all" | "reportall" => Ok(FailureMode::ReportAll),
            "per-group" | "per_group" | "pergroup" => Ok(FailureMode::PerGroup),
            other => Err(format!(
                "unknown mode {other:?}; use ordered, report-all or per-group"
            )),
        }
    }
}

/// One record of any batch source, borrowed from its event.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// What goes back in the response when the record fails (Kinesis: the sequence number).
    pub item_identifier: &'a str,
    /// The ordered stream the record belongs to (Kinesis: the shard id).
    pub stream: &'a str,
    /// The record's position in its stream (Kinesis: the sequence number).
    pub position: &'a str,
    /// The producer's partition key, when the source has one.
    pub partition_key: Option<&'a str>,
    /// When the source received the record.
    pub arrival: Option<DateTime<Utc>>,
    /// The payload, decoded from the event's transport encoding (base64).
    pub data: &'a [u8],
}

/// What happened to one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    /// At least one output document was written.
    Written,
    /// The transform made no output and nothing was quarantined.
    Filtered,
    /// Every document of the record went to quarantine.
    Quarantined,
    /// The record failed transiently and is reported for retry.
    Failed,
}

/// Counts of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Records in the event.
    pub records_in: usize,
    /// Output documents written.
    pub documents_written: usize,
    /// Documents written to quarantine.
    pub documents_quarantined: usize,
    /// Records reported for retry.
    pub records_failed: usize,
    /// Objects put (data and quarantine).
    pub objects_written: usize,
    /// Payload bytes in the event.
    pub bytes_in: usize,
    /// Rule alerts published ([`crate::window::Rule`]).
    pub alerts_published: usize,
}

/// What to do with the curated output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputRoute {
    /// Write it to the sink's store (every source but Firehose).
    #[default]
    Store,
    /// Hand it back in the response, one buffer per record (Firehose data transformation,
    /// which delivers the output itself); quarantine is still written to the store.
    Response,
}

/// One record's output handed back in the response ([`OutputRoute::Response`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnedOutput {
    /// The record's output documents as NDJSON lines, `_id` included.
    pub data: Vec<u8>,
    /// The partition of the record's first output document (`dt=…/hour=…`).
    pub partition: Option<String>,
}

/// The result of one batch: what to report, what happened to each record, counts, and the
/// errors behind failures.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Item identifiers of the records to report for retry, in batch order.
    pub failures: Vec<String>,
    /// What happened to each record, in batch order.
    pub records: Vec<RecordStatus>,
    /// Counts.
    pub stats: BatchStats,
    /// Why records failed (for logs).
    pub errors: Vec<String>,
    /// Per record, the output handed back ([`OutputRoute::Response`] only; empty otherwise).
    pub returned: Vec<ReturnedOutput>,
    /// The state a tumbling-window invocation answers with (under [`STATE_KEY`](crate::window::STATE_KEY)).
    pub window_state: Option<std::collections::HashMap<String, String>>,
    /// What each written output adds to an aggregate kept in a window's state, by record.
    pub(crate) observed: Vec<(usize, crate::window::Observation)>,
}

/// Why a response could not be built; the invocation fails and the source retries the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot answer the batch: {0}")]
pub struct ResponseError(pub String);

/// A Lambda batch source: its event, its records and its response.
pub trait BatchSource: Send + Sync + 'static {
    /// The event Lambda delivers.
    type Event: DeserializeOwned + Send + Sync + 'static;
    /// The answer Lambda reads.
    type Response: Serialize + Send + 'static;

    /// A short name for logs and metrics (`kinesis`).
    fn name(&self) -> &'static str;

    /// How failures are reported when the configuration does not say.
    fn default_mode(&self) -> FailureMode;

    /// What the source re-delivers after reported failures.
    fn redelivery(&self) -> Redelivery {
        Redelivery::FromCheckpoint
    }

    /// Where the curated output goes.
    fn output_route(&self) -> OutputRoute {
        OutputRoute::Store
    }

    /// The mode of one batch, from the configured one (`None`: the default). Sources whose
    /// batches differ (an SQS FIFO queue must not be processed out of order) override it.
    fn mode(&self, _records: &[SourceRecord<'_>], configured: Option<FailureMode>) -> FailureMode {
        configured.unwrap_or(self.default_mode())
    }

    /// The event's records, in delivery order.
    fn records<'e>(&self, event: &'e Self::Event) -> Vec<SourceRecord<'e>>;

    /// Refuses, before anything is written, a batch that could not be answered: a record
    /// without an item identifier could never be reported (Lambda fails the whole batch on an
    /// empty one) and would share its output keys with any other such record; two records at the
    /// same place of the same stream would overwrite each other's output. The invocation then
    /// fails and the source retries the batch (and finally sets it aside: on-failure
    /// destination, dead-letter queue). No source delivers such a batch; a hand-made or corrupted
    /// event can.
    fn check(&self, records: &[SourceRecord<'_>]) -> Result<(), ResponseError> {
        if let Some(i) = records.iter().position(|r| r.item_identifier.is_empty()) {
            return Err(ResponseError(format!(
                "record {i} of the {} batch has no identifier (position)",
                self.name()
            )));
        }
        match repeated_place(records) {
            Some(i) => Err(ResponseError(format!(
                "record {i} of the {} batch repeats an earlier record's place ({}:{})",
                self.name(),
                records[i].stream,
                records[i].position
            ))),
            None => Ok(()),
        }
    }

    /// Whether the source's invocations carry tumbling windows ([`Windowed`]).
    fn windowed(&self) -> bool {
        false
    }

    /// The tumbling window of a windowed invocation ([`Windowed`]); `None` for every other
    /// event.
    fn window<'e>(
        &self,
        _event: &'e Self::Event,
    ) -> Option<&'e aws_lambda_events::time_window::TimeWindowProperties> {
        None
    }

    /// The response for a processed batch.
    fn response(
        &self,
        event: &Self::Event,
        outcome: &BatchOutcome,
    ) -> Result<Self::Response, ResponseError>;

    /// Ties an invocation's logs to its input: the first record's stream and position.
    fn correlation_id(&self, records: &[SourceRecord<'_>]) -> Option<String> {
        records
            .first()
            .map(|r| format!("{}:{}", r.stream, r.position))
    }

    /// The name of the lag metric [`BatchSource::lag_ms`] feeds.
    fn lag_metric(&self) -> &'static str {
        metric::ITERATOR_AGE
    }

    /// How far behind the source this batch is: now minus the oldest arrival time.
    fn lag_ms(&self, records: &[SourceRecord<'_>], now: DateTime<Utc>) -> Option<i64> {
        records
            .iter()
            .filter_map(|r| r.arrival)
            .min()
            .map(|oldest| (now - oldest).num_milliseconds().max(0))
    }
}

/// The first record whose (stream, position) an earlier record of the batch has. Stream sources
/// deliver positions in increasing order, checked without a set; others fall back to one.
fn repeated_place(records: &[SourceRecord<'_>]) -> Option<usize> {
    // Decimal positions of any length: shorter is smaller.
    let increasing = records.windows(2).all(|w| {
        let (a, b) = (&w[0], &w[1]);
        a.stream == b.stream && (a.position.len(), a.position) < (b.position.len(), b.position)
    });
    if increasing {
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    records
        .iter()
        .position(|r| !seen.insert((r.stream, r.position)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_every_spelling_and_refuse_others() {
        assert_eq!("Ordered".parse::<FailureMode>(), Ok(FailureMode::Ordered));
        assert_eq!(
            " report-all ".parse::<FailureMode>(),
            Ok(FailureMode::ReportAll)
        );
        assert_eq!(
            "report_all".parse::<FailureMode>(),
            Ok(FailureMode::ReportAll)
        );
        assert_eq!(
            "Per-Group".parse::<FailureMode>(),
            Ok(FailureMode::PerGroup)
        );
        assert!("fast"
            .parse::<FailureMode>()
            .unwrap_err()
            .contains("ordered"));
    }

    fn at<'a>(stream: &'a str, position: &'a str) -> SourceRecord<'a> {
        SourceRecord {
            item_identifier: position,
            stream,
            position,
            partition_key: None,
            arrival: None,
            data: b"",
        }
    }

    #[test]
    fn a_batch_repeating_a_place_is_found_in_either_order() {
        let shard = |ps: &[&'static str]| ps.iter().map(|p| at("s", p)).collect::<Vec<_>>();
        assert_eq!(repeated_place(&shard(&["9", "10", "11"])), None);
        assert_eq!(repeated_place(&shard(&["9", "10", "10", "11"])), Some(2));
        // Message ids come in no order: the set finds the repeat.
        assert_eq!(repeated_place(&shard(&["b", "a", "c"])), None);
        assert_eq!(repeated_place(&shard(&["b", "a", "c", "a"])), Some(3));
        // The same position in two streams is two places.
        assert_eq!(repeated_place(&[at("s1", "7"), at("s2", "7")]), None);
        assert_eq!(repeated_place(&[]), None);
    }

    /// `aws_lambda_events` 1.2 asserts that a millisecond time has no fraction (its models panic
    /// on such an event); the readers refuse it.
    #[test]
    fn times_the_full_models_panic_on_are_errors() {
        let event = r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,
            "timestamp":1795331700123.5,"timestampType":"CREATE_TIME","value":"e30="}]}}"#;
        let parsed = serde_json::from_str::<kafka::KafkaBatch>(event);
        assert!(parsed.unwrap_err().to_string().contains("malformed"));
        let firehose =
            r#"{"records":[{"recordId":"1","approximateArrivalTimestamp":1.5,"data":"e30="}]}"#;
        let parsed = serde_json::from_str::<firehose::FirehoseBatch>(firehose);
        assert!(parsed.unwrap_err().to_string().contains("malformed"));
    }
}
