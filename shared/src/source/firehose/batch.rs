//! The Firehose transformation event as the handler reads it: the delivery stream's ARN and each
//! record's id, arrival time, data and Kinesis partition key, kept in two buffers of the batch.
//! `aws_lambda_events`' full model allocates a string per field, and its arrival time is read
//! through an untagged enum that formats an error message for every number it meets
//! (BENCHMARKS.md).
//!
//! Skipped without being checked: `invocationId`, `region`, `sourceKinesisStreamArn`, and in
//! `kinesisRecordMetadata` everything but `partitionKey`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::source::batch_reader::{
    entry_names, name_keys, once, Base64, Buffers, EntriesSeed, ModelMillis, Optional, ReadEntry,
    Span, Text,
};

/// A Firehose transformation event: its records in the order they must be answered. Read one
/// with [`FirehoseBatch::records`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirehoseBatch {
    buffers: Buffers<Entry>,
    /// In the buffers' text, beside the record ids and partition keys.
    delivery_stream_arn: Option<Span>,
}

/// Where a record's parts sit in the batch's buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    record_id: Option<Span>,
    partition_key: Option<Span>,
    data: Span,
    arrival: DateTime<Utc>,
}

/// One record of a [`FirehoseBatch`], borrowed from it. A field the event leaves out (or sets to
/// `null`) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirehoseRecord<'a> {
    /// `recordId`: what the answer for this record must carry.
    pub record_id: Option<&'a str>,
    /// `kinesisRecordMetadata.partitionKey`, when the delivery stream reads a Kinesis stream.
    pub partition_key: Option<&'a str>,
    /// The record's bytes (base64 in the event).
    pub data: &'a [u8],
    /// `approximateArrivalTimestamp` (epoch milliseconds in the event).
    pub arrival: DateTime<Utc>,
}

impl FirehoseBatch {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.buffers.entries.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.buffers.entries.is_empty()
    }

    /// `deliveryStreamArn`.
    pub fn delivery_stream_arn(&self) -> Option<&str> {
        self.delivery_stream_arn.map(|s| s.text(&self.buffers.text))
    }

    /// The records, in the event's order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = FirehoseRecord<'_>> + '_ {
        let Buffers {
            entries,
            text,
            data,
        } = &self.buffers;
        entries.iter().map(|e| {
            let text = |s: Span| s.text(text);
            FirehoseRecord {
                record_id: e.record_id.map(text),
                partition_key: e.partition_key.map(text),
                data: e.data.bytes(data),
                arrival: e.arrival,
            }
        })
    }
}

impl<'de> Deserialize<'de> for FirehoseBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BatchVisitor)
    }
}

name_keys! {
    /// The keys the reader knows, of the event, a record and its Kinesis metadata.
    enum Field {
        Records = b"records",
        DeliveryStreamArn = b"deliveryStreamArn",
        RecordId = b"recordId",
        Arrival = b"approximateArrivalTimestamp",
        Data = b"data",
        Metadata = b"kinesisRecordMetadata",
        Partition = b"partitionKey",
    } else Other
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = FirehoseBatch;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Firehose transformation event (an object with records)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirehoseBatch, A::Error> {
        let mut batch = FirehoseBatch::default();
        let (mut records, mut arn) = (None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Field::Records => {
                    once(&records, "records")?;
                    map.next_value_seed(EntriesSeed(&mut batch.buffers))?;
                    records = Some(());
                }
                Field::DeliveryStreamArn => {
                    once(&arn, "deliveryStreamArn")?;
                    arn = Some(map.next_value_seed(Optional(Text(&mut batch.buffers.text)))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        records.ok_or_else(|| de::Error::missing_field("records"))?;
        batch.delivery_stream_arn = arn.flatten();
        Ok(batch)
    }
}

impl ReadEntry for Entry {
    entry_names!("a Firehose record", "a list of Firehose records");

    fn read_fields<'de, A: MapAccess<'de>>(
        mut map: A,
        batch: &mut Buffers<Entry>,
    ) -> Result<Entry, A::Error> {
        let (mut id, mut arrival, mut data, mut metadata) = (None, None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Field::RecordId => {
                    once(&id, "recordId")?;
                    id = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Field::Arrival => {
                    once(&arrival, "approximateArrivalTimestamp")?;
                    arrival = Some(map.next_value::<ModelMillis>()?.0);
                }
                Field::Data => {
                    once(&data, "data")?;
                    data = Some(map.next_value_seed(Base64(&mut batch.data))?);
                }
                Field::Metadata => {
                    once(&metadata, "kinesisRecordMetadata")?;
                    metadata = Some(map.next_value_seed(MetadataSeed(&mut batch.text))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Entry {
            record_id: id.flatten(),
            partition_key: metadata.flatten(),
            data: data.ok_or_else(|| de::Error::missing_field("data"))?,
            arrival: arrival
                .ok_or_else(|| de::Error::missing_field("approximateArrivalTimestamp"))?,
        })
    }
}

/// `kinesisRecordMetadata`, or `null`: its partition key.
struct MetadataSeed<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for MetadataSeed<'_> {
    type Value = Option<Span>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Span>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed<'_> {
    type Value = Option<Span>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the record's Kinesis metadata or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Span>, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Span>, A::Error> {
        let mut key = None;
        while let Some(k) = map.next_key()? {
            match k {
                Field::Partition => {
                    once(&key, "partitionKey")?;
                    key = Some(map.next_value_seed(Optional(Text(&mut *self.0)))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(key.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::firehose::KinesisFirehoseEvent;

    fn assert_same(text: &str) -> FirehoseBatch {
        let lean: FirehoseBatch = serde_json::from_str(text).unwrap();
        let full: KinesisFirehoseEvent = serde_json::from_str(text).unwrap();
        assert_eq!(
            lean.delivery_stream_arn(),
            full.delivery_stream_arn.as_deref()
        );
        assert_eq!(lean.len(), full.records.len());
        for (l, f) in lean.records().zip(&full.records) {
            assert_eq!(l.record_id, f.record_id.as_deref());
            let key = f.kinesis_firehose_record_metadata.as_ref();
            assert_eq!(
                l.partition_key,
                key.and_then(|m| m.partition_key.as_deref())
            );
            assert_eq!(l.data, &f.data.0[..]);
            assert_eq!(l.arrival, f.approximate_arrival_timestamp.0);
        }
        lean
    }

    #[test]
    fn the_sample_reads_as_the_full_model_reads_it() {
        let lean = assert_same(include_str!("../../../../events/firehose-readings.json"));
        assert!(!lean.is_empty());
    }

    #[test]
    fn kinesis_metadata_absent_and_null_fields_read_as_the_full_model_reads_them() {
        let lean = assert_same(
            r#"{"invocationId": "i", "records": [
                {"recordId": null, "approximateArrivalTimestamp": "1795331700123", "data": ""},
                {"recordId": "2", "approximateArrivalTimestamp": 1795331700999, "data": "e30=",
                 "kinesisRecordMetadata": {"shardId": "s", "partitionKey": "sensor-1",
                   "sequenceNumber": "9", "subsequenceNumber": 0,
                   "approximateArrivalTimestamp": 1795331700999}},
                {"recordId": "3", "approximateArrivalTimestamp": 0, "data": "e30=",
                 "kinesisRecordMetadata": null}
            ]}"#,
        );
        assert_eq!(lean.delivery_stream_arn(), None);
        assert_eq!(
            lean.records().nth(1).unwrap().partition_key,
            Some("sensor-1")
        );
    }

    #[test]
    fn what_the_full_model_refuses_for_the_fields_read_is_refused() {
        for text in [
            r#"{}"#,
            r#"{"records": [{"approximateArrivalTimestamp": 1}]}"#,
            r#"{"records": [{"data": "e30="}]}"#,
            r#"{"records": [{"approximateArrivalTimestamp": 1, "data": "e30=", "recordId": 5}]}"#,
            r#"{"records": [{"approximateArrivalTimestamp": 1, "data": "!"}]}"#,
            r#"{"records": [{"approximateArrivalTimestamp": -1, "data": "e30="}]}"#,
        ] {
            assert!(
                serde_json::from_str::<KinesisFirehoseEvent>(text).is_err(),
                "{text}"
            );
            assert!(
                serde_json::from_str::<FirehoseBatch>(text).is_err(),
                "{text}"
            );
        }
    }
}
