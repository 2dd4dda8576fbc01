//! Firehose data transformation as a batch source: the records of a delivery stream's buffer in,
//! one result per record out.
//!
//! Firehose delivers the output itself, so the curated documents go back in the response
//! ([`Delivery::Response`]) instead of to the store; quarantine entries are still written to the
//! store. Every `recordId` is answered exactly once, in the event's order:
//! - `Ok` with the record's output documents as NDJSON lines (`_id` first, each line ending in a
//!   newline, so Firehose's concatenation stays NDJSON) and `metadata.partitionKeys` from the
//!   partition of its first document (`dt=2026-11-22/hour=07` → `{"dt": "2026-11-22", "hour":
//!   "07"}`), for dynamic partitioning (`!{partitionKeyFromLambda:dt}`);
//! - `Dropped` when the transform made no output;
//! - `ProcessingFailed` when every document of the record is bad data (each is quarantined
//!   with its reason; Firehose also keeps the original under its error prefix), or when the
//!   record's output would take the response past Lambda's 6 MB limit.
//!
//! A transient failure (the transform's `Transient`, a quarantine write that failed) fails the
//! whole invocation: Firehose retries it, and after its retry duration sends the batch to the
//! error prefix.

use aws_lambda_events::event::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
    KinesisFirehoseResponseRecordMetadata,
};
use chrono::{DateTime, Utc};

use super::{
    BatchOutcome, BatchSource, Delivery, Mode, RecordStatus, Redelivery, ResponseError,
    SourceRecord,
};

/// Lambda's limit on a synchronous response (6 MB), less room for the JSON around the records.
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024 - 64 * 1024;

/// A Firehose transformation event: `aws_lambda_events`' model, parsed so that a malformed
/// arrival time is an error rather than a panic (see `deserialize_guarded`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirehoseBatch(pub KinesisFirehoseEvent);

impl std::ops::Deref for FirehoseBatch {
    type Target = KinesisFirehoseEvent;
    fn deref(&self) -> &KinesisFirehoseEvent {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for FirehoseBatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::deserialize_guarded(deserializer).map(FirehoseBatch)
    }
}

/// The Firehose source. `Pipeline::new(..).source(Firehose)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Firehose;

impl BatchSource for Firehose {
    type Event = FirehoseBatch;
    type Response = KinesisFirehoseResponse;

    fn name(&self) -> &'static str {
        "firehose"
    }

    fn default_mode(&self) -> Mode {
        Mode::ReportAll
    }

    fn redelivery(&self) -> Redelivery {
        Redelivery::Regrouped
    }

    fn delivery(&self) -> Delivery {
        Delivery::Response
    }

    fn records<'e>(&self, event: &'e FirehoseBatch) -> Vec<SourceRecord<'e>> {
        let stream = stream_name(event.delivery_stream_arn.as_deref());
        event
            .records
            .iter()
            .map(|r| {
                let id = r.record_id.as_deref().unwrap_or("");
                SourceRecord {
                    item_identifier: id,
                    stream,
                    position: id,
                    partition_key: r
                        .kinesis_firehose_record_metadata
                        .as_ref()
                        .and_then(|m| m.partition_key.as_deref()),
                    arrival: millis(r.approximate_arrival_timestamp.0),
                    data: &r.data.0,
                }
            })
            .collect()
    }

    fn response(
        &self,
        event: &FirehoseBatch,
        outcome: &BatchOutcome,
    ) -> Result<KinesisFirehoseResponse, ResponseError> {
        response(event, outcome, RESPONSE_LIMIT)
    }

    fn lag_metric(&self) -> &'static str {
        "RecordAge"
    }
}

/// The delivery stream's name: the part of `deliveryStreamArn` after `deliverystream/`.
pub fn stream_name(arn: Option<&str>) -> &str {
    match arn.and_then(|a| a.rsplit_once("deliverystream/")) {
        Some((_, name)) if !name.is_empty() => name,
        _ => "firehose",
    }
}

fn millis(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // The model reads a missing time as the epoch.
    (t.timestamp_millis() != 0).then_some(t)
}

/// The partition keys of a `k=v/k=v` partition path.
pub fn partition_keys(path: &str) -> std::collections::HashMap<String, String> {
    path.split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Builds the per-record answer, keeping the response within `limit` bytes: records whose
/// output does not fit are answered `ProcessingFailed`, the latest first to go.
pub fn response(
    event: &KinesisFirehoseEvent,
    outcome: &BatchOutcome,
    limit: usize,
) -> Result<KinesisFirehoseResponse, ResponseError> {
    if !outcome.failures.is_empty() {
        return Err(ResponseError(format!(
            "{} record(s) failed transiently ({}); the invocation fails and Firehose retries it",
            outcome.failures.len(),
            outcome.errors.join(" | ")
        )));
    }
    if outcome.records.len() != event.records.len() || outcome.returned.len() != event.records.len()
    {
        return Err(ResponseError(format!(
            "{} records in the event, {} outcomes: every recordId must be answered once",
            event.records.len(),
            outcome.records.len()
        )));
    }
    // Base64 and the record's JSON around it. `Ok` carries the output, `ProcessingFailed` the
    // original data, `Dropped` nothing.
    let cost = |n: usize, id: &str| n.div_ceil(3) * 4 + id.len() + 160;
    let ids: Vec<&str> = event
        .records
        .iter()
        .map(|r| r.record_id.as_deref().unwrap_or(""))
        .collect();
    let failed_cost = |i: usize| cost(event.records[i].data.0.len(), ids[i]);
    let mut ok: Vec<bool> = outcome
        .records
        .iter()
        .map(|s| *s == RecordStatus::Written)
        .collect();
    let mut total: usize = (0..ids.len())
        .map(|i| match outcome.records[i] {
            RecordStatus::Written => cost(outcome.returned[i].data.len(), ids[i]),
            RecordStatus::Filtered => cost(0, ids[i]),
            _ => failed_cost(i),
        })
        .sum();
    for i in (0..ids.len()).rev() {
        if total <= limit {
            break;
        }
        if ok[i] {
            ok[i] = false;
            total = total - cost(outcome.returned[i].data.len(), ids[i]) + failed_cost(i);
            tracing::warn!(
                record_id = ids[i],
                "output does not fit in the 6 MB response: answered ProcessingFailed (Firehose keeps the record under its error prefix)"
            );
        }
    }
    if total > limit {
        return Err(ResponseError(format!(
            "the response needs {total} bytes even without output; Lambda allows {limit}"
        )));
    }
    let mut response = KinesisFirehoseResponse::default();
    for (i, r) in event.records.iter().enumerate() {
        let mut record = KinesisFirehoseResponseRecord::default();
        record.record_id = r.record_id.clone();
        let result = if ok[i] {
            let out = &outcome.returned[i];
            *record.data = out.data.clone();
            let mut metadata = KinesisFirehoseResponseRecordMetadata::default();
            if let Some(p) = &out.partition {
                metadata.partition_keys = partition_keys(p);
            }
            record.metadata = metadata;
            "Ok"
        } else if outcome.records[i] == RecordStatus::Filtered {
            "Dropped"
        } else {
            record.data = r.data.clone();
            "ProcessingFailed"
        };
        record.result = Some(result.to_string());
        response.records.push(record);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ReturnedOutput;

    fn event() -> FirehoseBatch {
        serde_json::from_str(include_str!("../../../events/firehose-readings.json")).unwrap()
    }

    fn outcome(statuses: Vec<RecordStatus>) -> BatchOutcome {
        sized_outcome(statuses, 0)
    }

    /// Written records return `{"_id":"<i>"}`, with a `pad` field of `pad` bytes if asked.
    fn sized_outcome(statuses: Vec<RecordStatus>, pad: usize) -> BatchOutcome {
        let returned = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                RecordStatus::Written => ReturnedOutput {
                    data: match pad {
                        0 => format!("{{\"_id\":\"{i}\"}}\n"),
                        n => format!("{{\"_id\":\"{i}\",\"pad\":\"{}\"}}\n", "x".repeat(n)),
                    }
                    .into_bytes(),
                    partition: Some("dt=2026-11-22/hour=07".into()),
                },
                _ => ReturnedOutput::default(),
            })
            .collect();
        BatchOutcome {
            records: statuses,
            returned,
            ..BatchOutcome::default()
        }
    }

    #[test]
    fn records_are_keyed_by_record_id_in_the_delivery_stream() {
        let e = event();
        let records = Firehose.records(&e);
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].stream, "readings");
        assert_eq!(records[0].item_identifier, records[0].position);
        // The event model reads milliseconds through a float: within a millisecond.
        let arrival = records[0].arrival.unwrap().timestamp_millis();
        assert!((arrival - 1_795_331_700_123).abs() <= 1, "{arrival}");
        assert!(records[1].data.ends_with(b"\n"));
    }

    #[test]
    fn every_record_is_answered_once_in_order() {
        use RecordStatus::*;
        let e = event();
        let r = response(
            &e,
            &outcome(vec![Written, Filtered, Quarantined, Written]),
            RESPONSE_LIMIT,
        )
        .unwrap();
        let results: Vec<&str> = r
            .records
            .iter()
            .map(|x| x.result.as_deref().unwrap())
            .collect();
        assert_eq!(results, ["Ok", "Dropped", "ProcessingFailed", "Ok"]);
        let ids: Vec<_> = r.records.iter().map(|x| x.record_id.clone()).collect();
        let sent: Vec<_> = e.records.iter().map(|x| x.record_id.clone()).collect();
        assert_eq!(ids, sent);
        assert_eq!(r.records[0].data.0, b"{\"_id\":\"0\"}\n");
        assert_eq!(r.records[0].metadata.partition_keys["dt"], "2026-11-22");
        assert_eq!(r.records[0].metadata.partition_keys["hour"], "07");
        // A failed record carries its original data; a dropped one none.
        assert_eq!(r.records[2].data.0, e.records[2].data.0);
        assert!(r.records[1].data.0.is_empty());
    }

    #[test]
    fn output_past_the_limit_is_answered_processing_failed_from_the_end() {
        use RecordStatus::*;
        let e = event();
        // About 4 KB of base64 per record: room for three and the fourth's original data.
        let all = sized_outcome(vec![Written, Written, Written, Written], 3000);
        let full = response(&e, &all, RESPONSE_LIMIT).unwrap();
        assert!(full
            .records
            .iter()
            .all(|r| r.result.as_deref() == Some("Ok")));
        let limit = 3 * 4400 + 1000;
        let tight = response(&e, &all, limit).unwrap();
        let results: Vec<&str> = tight
            .records
            .iter()
            .map(|x| x.result.as_deref().unwrap())
            .collect();
        assert_eq!(results, ["Ok", "Ok", "Ok", "ProcessingFailed"]);
        // The estimate is on the safe side of the real size.
        assert!(serde_json::to_vec(&tight).unwrap().len() <= limit);
        assert!(
            response(&e, &all, 500).is_err(),
            "not even the failures fit"
        );
    }

    #[test]
    fn a_transient_failure_fails_the_invocation() {
        let e = event();
        let mut o = outcome(vec![RecordStatus::Failed; 4]);
        o.failures = vec!["x".into()];
        o.errors = vec!["lookup down".into()];
        let err = response(&e, &o, RESPONSE_LIMIT).unwrap_err();
        assert!(err.0.contains("Firehose retries"), "{err}");
        assert!(err.0.contains("lookup down"), "{err}");
    }

    #[test]
    fn names_and_keys_come_from_arns_and_paths() {
        assert_eq!(
            stream_name(Some("arn:aws:firehose:eu-west-1:1:deliverystream/clicks")),
            "clicks"
        );
        assert_eq!(stream_name(None), "firehose");
        assert_eq!(partition_keys("dt=2026-11-22/hour=07").len(), 2);
        assert!(partition_keys("flat").is_empty());
    }
}
