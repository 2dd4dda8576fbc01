//! Kafka (Amazon MSK `aws:kafka` and self-managed `SelfManagedKafka`) as a batch source.
//!
//! Lambda's event maps each topic-partition (`orders-0`) to its records, with base64 keys and
//! values, headers and timestamps. The partial batch response names a failed record by an object,
//! `{"itemIdentifier": {"partition": "orders-0", "offset": 42}}`; an identifier that was not in
//! the batch fails the whole batch (Lambda's Kafka error-handling guide, provisioned mode).
//!
//! Each topic-partition is an ordered stream: records are processed partition by partition in
//! offset order, in [`FailureMode::Ordered`] — the first transient failure stops the batch and every
//! later record is reported, so no partition resumes past a record that was not written. Keys and
//! ids use the topic-partition as the stream and the offset as the position
//! (`orders-0:42:0`). A record without a value (a tombstone in a compacted topic) has nothing
//! to transform and is left out.

mod batch;

use std::collections::HashMap;

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BatchOutcome, BatchSource, FailureMode, ResponseError, SourceRecord};

/// The Kafka source (MSK and self-managed). `Pipeline::new(..).source(Kafka)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kafka;

impl BatchSource for Kafka {
    type Event = KafkaBatch;
    type Response = KafkaResponse;

    fn name(&self) -> &'static str {
        "kafka"
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::Ordered
    }

    fn records<'e>(&self, event: &'e KafkaBatch) -> Vec<SourceRecord<'e>> {
        event
            .records
            .iter()
            .filter_map(|r| {
                Some(SourceRecord {
                    item_identifier: &r.id,
                    stream: &r.id[..r.partition_len],
                    position: &r.id[r.partition_len + 1..],
                    partition_key: r.key.as_deref(),
                    arrival: r.timestamp,
                    data: r.value.as_deref()?,
                })
            })
            .collect()
    }

    fn response(
        &self,
        _event: &KafkaBatch,
        outcome: &BatchOutcome,
    ) -> Result<KafkaResponse, ResponseError> {
        let mut response = KafkaResponse::default();
        for id in &outcome.failures {
            let failure = id
                .rsplit_once(':')
                .and_then(|(partition, offset)| {
                    Some(KafkaItemIdentifier {
                        partition: partition.to_string(),
                        offset: offset.parse().ok()?,
                    })
                })
                .ok_or_else(|| {
                    ResponseError(format!("{id:?} is not a topic-partition:offset identifier"))
                })?;
            response.batch_item_failures.push(KafkaItemFailure {
                item_identifier: failure,
            });
        }
        Ok(response)
    }
}

/// A Kafka event as the handler reads it: its records in one list ordered by topic-partition and
/// offset, keys and values decoded from base64 as the event is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaBatch {
    /// The records, by topic-partition then offset.
    pub records: Vec<KafkaMessage>,
}

/// One record of a [`KafkaBatch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaMessage {
    /// `<topic>-<partition>:<offset>`: the record's identifier (`:` is not allowed in topic
    /// names, so the last one separates the offset).
    pub id: String,
    /// Length of the topic-partition part of `id`.
    pub partition_len: usize,
    /// The key as UTF-8 text, when it is text.
    pub key: Option<String>,
    /// The value's bytes (base64 in the event); `None` for a tombstone. A value that is not
    /// base64 is kept as its text, to be quarantined as it came.
    pub value: Option<Vec<u8>>,
    /// The record's timestamp (`CREATE_TIME` or `LOG_APPEND_TIME`).
    pub timestamp: Option<DateTime<Utc>>,
    /// Header names and values (values as bytes), in the event's order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The same batch from `aws_lambda_events`' full model (the handler reads its event straight
/// into a `KafkaBatch` instead, to the same records).
impl From<KafkaEvent> for KafkaBatch {
    fn from(event: KafkaEvent) -> Self {
        let mut partitions: Vec<(String, Vec<KafkaRecord>)> = event.records.into_iter().collect();
        partitions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut records = Vec::new();
        for (partition, mut batch) in partitions {
            batch.sort_by_key(|r| r.offset);
            records.extend(batch.into_iter().map(|r| message(&partition, r)));
        }
        KafkaBatch { records }
    }
}

fn message(partition: &str, r: KafkaRecord) -> KafkaMessage {
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |text: String| b64.decode(&text).unwrap_or_else(|_| text.into_bytes());
    KafkaMessage {
        id: format!("{partition}:{}", r.offset),
        partition_len: partition.len(),
        key: r
            .key
            .and_then(|k| b64.decode(k).ok())
            .and_then(|k| String::from_utf8(k).ok()),
        value: r.value.map(decode),
        timestamp: (r.timestamp.0.timestamp_millis() != 0).then_some(r.timestamp.0),
        headers: r
            .headers
            .into_iter()
            .flat_map(|h| h.into_iter())
            .map(|(name, value)| (name, value.into_iter().map(|b| b as u8).collect()))
            .collect(),
    }
}

/// The partial batch response of a Kafka mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaResponse {
    /// The failed records.
    pub batch_item_failures: Vec<KafkaItemFailure>,
}

/// One failed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaItemFailure {
    /// Which record.
    pub item_identifier: KafkaItemIdentifier,
}

/// A record's place: topic-partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaItemIdentifier {
    /// `<topic>-<partition>`, as the event's key.
    pub partition: String,
    /// The record's offset.
    pub offset: i64,
}

/// Headers of a record by name (a name may repeat; the last wins here).
pub fn headers_by_name(message: &KafkaMessage) -> HashMap<&str, &[u8]> {
    message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch(name: &str) -> KafkaBatch {
        let text = match name {
            "msk" => include_str!("../../../../events/kafka-readings.json"),
            _ => include_str!("../../../../events/kafka-self-managed-readings.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn records_come_in_partition_and_offset_order_with_decoded_values() {
        let b = batch("msk");
        let records = Kafka.records(&b);
        let ids: Vec<&str> = records.iter().map(|r| r.item_identifier).collect();
        assert_eq!(
            ids,
            [
                "readings-0:15",
                "readings-0:16",
                "readings-1:7",
                "readings-1:8"
            ]
        );
        assert_eq!(records[0].stream, "readings-0");
        assert_eq!(records[0].position, "15");
        assert_eq!(records[0].partition_key, Some("sensor-0042"));
        assert!(std::str::from_utf8(records[0].data)
            .unwrap()
            .contains("sensor-0042"));
        assert!(records[0].arrival.is_some());
        assert_eq!(
            headers_by_name(&b.records[0]).get("source"),
            Some(&&b"gateway-7"[..])
        );
        // The tombstone at readings-1:9 has nothing to transform.
        assert_eq!(b.records.len(), 5);
    }

    #[test]
    fn self_managed_events_read_the_same_way() {
        let b = batch("self-managed");
        let records = Kafka.records(&b);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].item_identifier, "iot.readings-3:100");
    }

    #[test]
    fn the_response_names_partition_and_offset_as_an_object() {
        let outcome = BatchOutcome {
            failures: vec!["readings-1:7".into(), "readings-1:8".into()],
            ..BatchOutcome::default()
        };
        let r = Kafka.response(&batch("msk"), &outcome).unwrap();
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({"batchItemFailures": [
                {"itemIdentifier": {"partition": "readings-1", "offset": 7}},
                {"itemIdentifier": {"partition": "readings-1", "offset": 8}}
            ]})
        );
        let bad = BatchOutcome {
            failures: vec!["nonsense".into()],
            ..BatchOutcome::default()
        };
        assert!(Kafka.response(&batch("msk"), &bad).is_err());
    }
}
