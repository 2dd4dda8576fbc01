//! Kinesis as a batch source: the Lambda event in, `batchItemFailures` out.
//!
//! Lambda checkpoints at the lowest reported sequence number and re-delivers everything after it,
//! so Kinesis is an ordered source: [`Mode::Ordered`] by default.

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::{BatchOutcome, BatchSource, Mode, ResponseError, SourceRecord};

/// The Kinesis source. `Pipeline::new(..).source(Kinesis)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinesis;

impl BatchSource for Kinesis {
    type Event = KinesisBatch;
    type Response = KinesisEventResponse;

    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn default_mode(&self) -> Mode {
        Mode::Ordered
    }

    fn records<'e>(&self, event: &'e KinesisBatch) -> Vec<SourceRecord<'e>> {
        event.source_records()
    }

    fn response(
        &self,
        _event: &KinesisBatch,
        outcome: &BatchOutcome,
    ) -> Result<KinesisEventResponse, ResponseError> {
        Ok(response(outcome))
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
    /// The batch's records, in shard order.
    #[serde(rename = "Records")]
    pub records: Vec<BatchRecord>,
}

/// One record of a [`KinesisBatch`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BatchRecord {
    /// `shardId-…:<sequence number>`.
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    /// The record itself.
    pub kinesis: BatchPayload,
}

/// The `kinesis` part of a record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPayload {
    /// The record's position in its shard (decimal digits); also its item identifier in a batch
    /// response.
    #[serde(default)]
    pub sequence_number: String,
    /// The key the producer chose the shard with.
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::kinesis::KinesisEvent;

    const SAMPLES: [&str; 4] = [
        include_str!("../../../events/kinesis-clean.json"),
        include_str!("../../../events/kinesis-poison.json"),
        include_str!("../../../events/kinesis-gzip-ndjson.json"),
        include_str!("../../../events/kinesis-empty.json"),
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
        assert_eq!(Kinesis.lag_ms(&records, Utc::now()), None);
        assert_eq!(Kinesis.correlation_id(&records), None);
    }

    #[test]
    fn correlation_and_age_come_from_the_records() {
        let batch: KinesisBatch = serde_json::from_str(SAMPLES[0]).unwrap();
        let records = batch.source_records();
        let first = &batch.records[0];
        assert_eq!(
            Kinesis.correlation_id(&records).unwrap(),
            format!(
                "{}:{}",
                shard_id(first.event_id.as_deref()),
                first.kinesis.sequence_number
            )
        );
        let now = first.kinesis.approximate_arrival_timestamp + chrono::Duration::seconds(5);
        assert_eq!(Kinesis.lag_ms(&records, now), Some(5_000));
    }
}
