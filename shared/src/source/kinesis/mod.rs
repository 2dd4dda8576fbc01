//! Kinesis as a batch source: the Lambda event in, `batchItemFailures` out.
//!
//! Lambda checkpoints at the lowest reported sequence number and re-delivers everything after it,
//! so Kinesis is an ordered source: [`FailureMode::Ordered`] by default.

mod batch;

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};

pub use batch::{KinesisBatch, KinesisRecord};

use super::{BatchOutcome, BatchSource, FailureMode, ResponseError, SourceRecord};

/// The Kinesis source. `Pipeline::new(..).source(Kinesis)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinesis;

impl BatchSource for Kinesis {
    type Event = KinesisBatch;
    type Response = KinesisEventResponse;

    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::Ordered
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
    // memchr directly: `split_once`'s char searcher cost more per call on these short ids, once
    // per record of every batch (callgrind).
    event_id
        .and_then(|id| memchr::memchr(b':', id.as_bytes()).map(|end| &id[..end]))
        .unwrap_or("unknown-shard")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::kinesis::KinesisEvent;
    use chrono::Utc;

    const SAMPLES: [&str; 4] = [
        include_str!("../../../../events/kinesis-clean.json"),
        include_str!("../../../../events/kinesis-poison.json"),
        include_str!("../../../../events/kinesis-gzip-ndjson.json"),
        include_str!("../../../../events/kinesis-empty.json"),
    ];

    #[test]
    fn the_lean_model_reads_what_the_full_model_reads() {
        for sample in SAMPLES {
            let lean: KinesisBatch = serde_json::from_str(sample).unwrap();
            let full: KinesisEvent = serde_json::from_str(sample).unwrap();
            assert_eq!(lean.len(), full.records.len());
            // Through a `Value` too (tests and tools build events that way).
            let via_value: KinesisBatch =
                serde_json::from_value(serde_json::from_str(sample).unwrap()).unwrap();
            assert_eq!(via_value, lean);
            for (l, full) in lean.records().zip(&full.records) {
                let f = &full.kinesis;
                assert_eq!(l.event_id, full.event_id.as_deref());
                assert_eq!(
                    (l.sequence_number, l.partition_key, l.data),
                    (
                        f.sequence_number.as_str(),
                        f.partition_key.as_str(),
                        &f.data.0[..]
                    )
                );
                // Same second; the lean model keeps the milliseconds exactly.
                assert_eq!(
                    l.arrival.timestamp(),
                    f.approximate_arrival_timestamp.0.timestamp()
                );
            }
        }
    }

    #[test]
    fn each_record_keeps_its_own_parts() {
        let json = r#"{"Records":[
            {"eventID":"shardId-1:10","kinesis":{"sequenceNumber":"10","partitionKey":"a","data":"YQ==","approximateArrivalTimestamp":1}},
            {"eventID":null,"other":[1,{"x":2}],"kinesis":{"data":"Yi9j","kinesisSchemaVersion":"1.0","approximateArrivalTimestamp":2}},
            {"kinesis":{"sequenceNumber":"12","partitionKey":"c","data":"","approximateArrivalTimestamp":3},"eventID":"shardId-2:12"}
        ],"extra":true}"#;
        let batch: KinesisBatch = serde_json::from_str(json).unwrap();
        let got: Vec<_> = batch
            .records()
            .map(|r| (r.event_id, r.sequence_number, r.partition_key, r.data))
            .collect();
        assert_eq!(
            got,
            [
                (Some("shardId-1:10"), "10", "a", &b"a"[..]),
                (None, "", "", &b"b/c"[..]),
                (Some("shardId-2:12"), "12", "c", &b""[..]),
            ]
        );
        assert_eq!(batch.get(2).unwrap().arrival.timestamp(), 3);
        // Keys written with escapes are the same keys.
        let escaped_key =
            r#"{"Records":[{"kinesis":{"d\u0061ta":"YQ==","approximateArrivalTimestamp":1}}]}"#;
        let batch: KinesisBatch = serde_json::from_str(escaped_key).unwrap();
        assert_eq!(batch.get(0).unwrap().data, b"a");
        assert_eq!(batch.get(3), None);
        // An escaped solidus in the base64 text reads as the plain one.
        let escaped =
            r#"{"Records":[{"kinesis":{"data":"\/w==","approximateArrivalTimestamp":1}}]}"#;
        let batch: KinesisBatch = serde_json::from_str(escaped).unwrap();
        assert_eq!(batch.get(0).unwrap().data, [0xff]);
    }

    proptest::proptest! {
        /// The event's base64 is decoded with SIMD: it accepts whatever the base64 crate
        /// (`aws_lambda_events`' decoder) accepts, with the same bytes.
        #[test]
        fn data_decodes_as_the_full_model_decodes_it(text in "[A-Za-z0-9+/=]{0,14}") {
            use base64::Engine as _;
            let event = format!(
                r#"{{"Records":[{{"kinesis":{{"data":"{text}","approximateArrivalTimestamp":1}}}}]}}"#
            );
            let lean = serde_json::from_str::<KinesisBatch>(&event);
            if let Ok(reference) = base64::engine::general_purpose::STANDARD.decode(&text) {
                let lean = lean.unwrap();
                proptest::prop_assert_eq!(lean.get(0).unwrap().data, &reference[..]);
            }
        }

        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let event = format!(
                r#"{{"Records":[{{"kinesis":{{"data":"{text}","approximateArrivalTimestamp":1}}}}]}}"#
            );
            let lean = serde_json::from_str::<KinesisBatch>(&event).unwrap();
            proptest::prop_assert_eq!(lean.get(0).unwrap().data, &bytes[..]);
        }
    }

    #[test]
    fn arrival_times_keep_their_milliseconds_in_every_shape() {
        let parse = |ts: &str| {
            let json = format!(
                r#"{{"Records":[{{"eventID":"shardId-000000000001:7","kinesis":{{"sequenceNumber":"7","data":"e30=","approximateArrivalTimestamp":{ts}}}}}]}}"#
            );
            serde_json::from_str::<KinesisBatch>(&json)
                .map(|b| b.get(0).unwrap().arrival.timestamp_millis())
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
        let error = |json: &str| {
            serde_json::from_str::<KinesisBatch>(json)
                .unwrap_err()
                .to_string()
        };
        let record = |kinesis: &str| format!(r#"{{"Records":[{{"kinesis":{kinesis}}}]}}"#);
        assert!(error(&record(
            r#"{"sequenceNumber":"1","data":"not base64!","approximateArrivalTimestamp":1}"#
        ))
        .contains("not base64"));
        assert!(error(r#"{"detail":{}}"#).contains("missing field `Records`"));
        assert!(error(r#"{"Records":[{"eventID":"x"}]}"#).contains("missing field `kinesis`"));
        assert!(
            error(&record(r#"{"approximateArrivalTimestamp":1}"#)).contains("missing field `data`")
        );
        assert!(error(&record(r#"{"data":""}"#))
            .contains("missing field `approximateArrivalTimestamp`"));
        assert!(error(&record(
            r#"{"data":"","data":"","approximateArrivalTimestamp":1}"#
        ))
        .contains("duplicate field `data`"));
        assert!(error(&record(
            r#"{"data":"","sequenceNumber":null,"approximateArrivalTimestamp":1}"#
        ))
        .contains("expected a string"));
        assert!(error(r#"{"Records":{}}"#).contains("list of Kinesis records"));
        assert!(error("[]").contains("a Kinesis event"));
        let empty = KinesisBatch::default();
        assert!(empty.is_empty());
        let records = empty.source_records();
        assert_eq!(Kinesis.lag_ms(&records, Utc::now()), None);
        assert_eq!(Kinesis.correlation_id(&records), None);
    }

    #[test]
    fn correlation_and_age_come_from_the_records() {
        let batch: KinesisBatch = serde_json::from_str(SAMPLES[0]).unwrap();
        let records = batch.source_records();
        let first = batch.get(0).unwrap();
        assert_eq!(
            Kinesis.correlation_id(&records).unwrap(),
            format!("{}:{}", shard_id(first.event_id), first.sequence_number)
        );
        let now = first.arrival + chrono::Duration::seconds(5);
        assert_eq!(Kinesis.lag_ms(&records, now), Some(5_000));
    }
}
