//! Firehose data transformation as a batch source: the records of a delivery stream's buffer in,
//! one result per record out.
//!
//! Firehose delivers the output itself, so the curated documents go back in the response
//! ([`OutputRoute::Response`]) instead of to the store; quarantine entries are still written to the
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

mod batch;

use chrono::{DateTime, Utc};
use serde::ser::{Error as _, SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

pub use batch::{FirehoseBatch, FirehoseRecord};

use super::{
    BatchOutcome, BatchSource, FailureMode, OutputRoute, RecordStatus, Redelivery, ResponseError,
    SourceRecord,
};

/// Lambda's limit on a synchronous response (6 MB), less room for the JSON around the records.
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024 - 64 * 1024;

/// The Firehose source. `Pipeline::new(..).source(Firehose)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Firehose;

impl BatchSource for Firehose {
    type Event = FirehoseBatch;
    type Response = FirehoseResponse;

    fn name(&self) -> &'static str {
        "firehose"
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::ReportAll
    }

    fn redelivery(&self) -> Redelivery {
        Redelivery::PerRecord
    }

    fn output_route(&self) -> OutputRoute {
        OutputRoute::Response
    }

    fn records<'e>(&self, event: &'e FirehoseBatch) -> Vec<SourceRecord<'e>> {
        let stream = stream_name(event.delivery_stream_arn());
        event
            .records()
            .map(|r| {
                let id = r.record_id.unwrap_or("");
                SourceRecord {
                    item_identifier: id,
                    stream,
                    position: id,
                    partition_key: r.partition_key,
                    arrival: millis(r.arrival),
                    data: r.data,
                }
            })
            .collect()
    }

    fn response(
        &self,
        event: &FirehoseBatch,
        outcome: &BatchOutcome,
    ) -> Result<FirehoseResponse, ResponseError> {
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

/// The partition keys of a `k=v/k=v` partition path, in its order.
pub fn partition_keys(path: &str) -> Vec<(String, String)> {
    path.split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The answer Firehose reads: one result per record of the event, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirehoseResponse {
    /// The results.
    pub records: Vec<FirehoseAnswer>,
}

/// The result for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseAnswer {
    /// The record's `recordId`, as the event gave it.
    pub record_id: Option<String>,
    /// What happened to the record.
    pub result: FirehoseResult,
    /// `Ok`: the output; `ProcessingFailed`: the record's original data; `Dropped`: nothing.
    pub data: Vec<u8>,
    /// `metadata.partitionKeys` (for `Ok`), in the partition path's order.
    pub partition_keys: Vec<(String, String)>,
}

/// A record's result, as Firehose names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseResult {
    /// Transformed: the data is the output.
    Ok,
    /// Intentionally left out of the delivery.
    Dropped,
    /// Not transformed: Firehose writes the original under its error prefix.
    ProcessingFailed,
}

impl FirehoseResult {
    /// The name in the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            FirehoseResult::Ok => "Ok",
            FirehoseResult::Dropped => "Dropped",
            FirehoseResult::ProcessingFailed => "ProcessingFailed",
        }
    }
}

impl Serialize for FirehoseResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut response = serializer.serialize_struct("FirehoseResponse", 1)?;
        response.serialize_field("records", &self.records)?;
        response.end()
    }
}

impl Serialize for FirehoseAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut answer = serializer.serialize_struct("FirehoseAnswer", 4)?;
        answer.serialize_field("recordId", &self.record_id)?;
        answer.serialize_field("result", self.result.as_str())?;
        answer.serialize_field("data", &Base64Json(&self.data))?;
        answer.serialize_field("metadata", &Metadata(&self.partition_keys))?;
        answer.end()
    }
}

/// Bytes as a base64 JSON string, handed to serde_json as written: base64 needs no escaping, and
/// serde_json's escape scan of a plain string read every byte of every answer one at a time
/// (`source-paths` under callgrind).
struct Base64Json<'a>(&'a [u8]);

impl Serialize for Base64Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(self.0.len().div_ceil(3) * 4 + 2);
        text.push('"');
        base64_simd::STANDARD.encode_append(self.0, &mut text);
        text.push('"');
        serde_json::value::RawValue::from_string(text)
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

/// `{"partitionKeys": {…}}`.
struct Metadata<'a>(&'a [(String, String)]);

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Keys<'a>(&'a [(String, String)]);
        impl Serialize for Keys<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let mut metadata = serializer.serialize_struct("Metadata", 1)?;
        metadata.serialize_field("partitionKeys", &Keys(self.0))?;
        metadata.end()
    }
}

/// Builds the per-record answer, keeping the response within `limit` bytes: records whose
/// output does not fit are answered `ProcessingFailed`, the latest first to go.
pub fn response(
    event: &FirehoseBatch,
    outcome: &BatchOutcome,
    limit: usize,
) -> Result<FirehoseResponse, ResponseError> {
    if !outcome.failures.is_empty() {
        return Err(ResponseError(format!(
            "{} record(s) failed transiently ({}); the invocation fails and Firehose retries it",
            outcome.failures.len(),
            outcome.errors.join(" | ")
        )));
    }
    if outcome.records.len() != event.len() || outcome.returned.len() != event.len() {
        return Err(ResponseError(format!(
            "{} records in the event, {} outcomes: every recordId must be answered once",
            event.len(),
            outcome.records.len()
        )));
    }
    let records: Vec<FirehoseRecord<'_>> = event.records().collect();
    // Base64 and the record's JSON around it. `Ok` carries the output, `ProcessingFailed` the
    // original data, `Dropped` nothing.
    let cost = |n: usize, id: &str| n.div_ceil(3) * 4 + id.len() + 160;
    let id = |i: usize| records[i].record_id.unwrap_or("");
    let failed_cost = |i: usize| cost(records[i].data.len(), id(i));
    let mut ok: Vec<bool> = outcome
        .records
        .iter()
        .map(|s| *s == RecordStatus::Written)
        .collect();
    let mut total: usize = (0..records.len())
        .map(|i| match outcome.records[i] {
            RecordStatus::Written => cost(outcome.returned[i].data.len(), id(i)),
            RecordStatus::Filtered => cost(0, id(i)),
            _ => failed_cost(i),
        })
        .sum();
    for i in (0..records.len()).rev() {
        if total <= limit {
            break;
        }
        if ok[i] {
            ok[i] = false;
            total = total - cost(outcome.returned[i].data.len(), id(i)) + failed_cost(i);
            tracing::warn!(
                record_id = id(i),
                "output does not fit in the 6 MB response: answered ProcessingFailed (Firehose keeps the record under its error prefix)"
            );
        }
    }
    if total > limit {
        return Err(ResponseError(format!(
            "the response needs {total} bytes even without output; Lambda allows {limit}"
        )));
    }
    let answers = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (result, data, partition_keys) = if ok[i] {
                let out = &outcome.returned[i];
                let keys = out.partition.as_deref().map(partition_keys);
                (
                    FirehoseResult::Ok,
                    out.data.clone(),
                    keys.unwrap_or_default(),
                )
            } else if outcome.records[i] == RecordStatus::Filtered {
                (FirehoseResult::Dropped, Vec::new(), Vec::new())
            } else {
                (
                    FirehoseResult::ProcessingFailed,
                    r.data.to_vec(),
                    Vec::new(),
                )
            };
            FirehoseAnswer {
                record_id: r.record_id.map(str::to_string),
                result,
                data,
                partition_keys,
            }
        })
        .collect();
    Ok(FirehoseResponse { records: answers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ReturnedOutput;

    fn event() -> FirehoseBatch {
        serde_json::from_str(include_str!("../../../../events/firehose-readings.json")).unwrap()
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
        let results: Vec<&str> = r.records.iter().map(|x| x.result.as_str()).collect();
        assert_eq!(results, ["Ok", "Dropped", "ProcessingFailed", "Ok"]);
        let ids: Vec<_> = r.records.iter().map(|x| x.record_id.as_deref()).collect();
        let sent: Vec<_> = e.records().map(|x| x.record_id).collect();
        assert_eq!(ids, sent);
        assert_eq!(r.records[0].data, b"{\"_id\":\"0\"}\n");
        assert_eq!(
            r.records[0].partition_keys,
            [
                ("dt".into(), "2026-11-22".into()),
                ("hour".into(), "07".into())
            ]
        );
        // A failed record carries its original data; a dropped one none.
        assert_eq!(r.records[2].data, e.records().nth(2).unwrap().data);
        assert!(r.records[1].data.is_empty());
    }

    #[test]
    fn output_past_the_limit_is_answered_processing_failed_from_the_end() {
        use RecordStatus::*;
        let e = event();
        // About 4 KB of base64 per record: room for three and the fourth's original data.
        let all = sized_outcome(vec![Written, Written, Written, Written], 3000);
        let full = response(&e, &all, RESPONSE_LIMIT).unwrap();
        assert!(full.records.iter().all(|r| r.result == FirehoseResult::Ok));
        let limit = 3 * 4400 + 1000;
        let tight = response(&e, &all, limit).unwrap();
        let results: Vec<&str> = tight.records.iter().map(|x| x.result.as_str()).collect();
        assert_eq!(results, ["Ok", "Ok", "Ok", "ProcessingFailed"]);
        // The estimate is on the safe side of the real size.
        assert!(serde_json::to_vec(&tight).unwrap().len() <= limit);
        assert!(
            response(&e, &all, 500).is_err(),
            "not even the failures fit"
        );
    }

    /// The answer's JSON is what `aws_lambda_events`' response model writes for the same results.
    #[test]
    fn the_answer_serialises_as_the_response_model_does() {
        use aws_lambda_events::event::firehose::{
            KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
        };
        use RecordStatus::*;
        let e = event();
        let r = response(
            &e,
            &outcome(vec![Written, Filtered, Quarantined, Written]),
            RESPONSE_LIMIT,
        )
        .unwrap();
        let mut model = KinesisFirehoseResponse::default();
        for answer in &r.records {
            let mut record = KinesisFirehoseResponseRecord::default();
            record.record_id = answer.record_id.clone();
            record.result = Some(answer.result.as_str().to_string());
            record.data.0 = answer.data.clone();
            record.metadata.partition_keys = answer.partition_keys.iter().cloned().collect();
            model.records.push(record);
        }
        let ours: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(ours, serde_json::to_value(&model).unwrap());
        assert_eq!(ours["records"][0]["data"], "eyJfaWQiOiIwIn0K");
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
