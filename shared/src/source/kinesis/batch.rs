//! The Kinesis event as the handler reads it: the fields it uses, in Lambda's shape, with every
//! record's text and decoded data in two buffers of the batch instead of four allocations per
//! record. Parsing it costs well under half of parsing `aws_lambda_events`' full `KinesisEvent`,
//! which allocates seven strings per record the handler never reads and decodes the arrival time
//! through text (BENCHMARKS.md).

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::source::batch_reader::{
    entry_names, name_keys, once, read_records, Base64, Buffers, EpochUnit, EpochVisitor, Optional,
    ReadEntry, Span, Text,
};
use crate::source::SourceRecord;

/// A Kinesis event: its records in shard order. Read one with [`KinesisBatch::records`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KinesisBatch(Buffers<Entry>);

/// Where a record's parts sit in the batch's buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    event_id: Option<Span>,
    sequence_number: Span,
    partition_key: Span,
    data: Span,
    arrival: DateTime<Utc>,
}

/// One record of a [`KinesisBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisRecord<'a> {
    /// `shardId-…:<sequence number>`.
    pub event_id: Option<&'a str>,
    /// The record's position in its shard (decimal digits); also its item identifier in a batch
    /// response. Empty when the event leaves it out.
    pub sequence_number: &'a str,
    /// The key the producer chose the shard with. Empty when the event leaves it out.
    pub partition_key: &'a str,
    /// The record's bytes (base64 in the event).
    pub data: &'a [u8],
    /// When Kinesis received the record (epoch seconds with millisecond precision in the event).
    pub arrival: DateTime<Utc>,
}

impl KinesisBatch {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// The record at `index`.
    pub fn get(&self, index: usize) -> Option<KinesisRecord<'_>> {
        self.0.entries.get(index).map(|e| self.view(e))
    }

    /// The records, in shard order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = KinesisRecord<'_>> + '_ {
        self.0.entries.iter().map(|e| self.view(e))
    }

    /// Borrows the records as batch source records, reported and keyed by sequence number.
    pub fn source_records(&self) -> Vec<SourceRecord<'_>> {
        self.records()
            .map(|r| SourceRecord {
                item_identifier: r.sequence_number,
                stream: super::shard_id(r.event_id),
                position: r.sequence_number,
                partition_key: Some(r.partition_key),
                arrival: Some(r.arrival),
                data: r.data,
            })
            .collect()
    }

    fn view(&self, e: &Entry) -> KinesisRecord<'_> {
        let text = |s: Span| s.text(&self.0.text);
        KinesisRecord {
            event_id: e.event_id.map(text),
            sequence_number: text(e.sequence_number),
            partition_key: text(e.partition_key),
            data: e.data.bytes(&self.0.data),
            arrival: e.arrival,
        }
    }
}

impl<'de> Deserialize<'de> for KinesisBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_records(deserializer, "a Kinesis event").map(KinesisBatch)
    }
}

name_keys! {
    /// The keys the model reads; every other key is skipped.
    enum Key {
        EventId = b"eventID",
        Kinesis = b"kinesis",
        SequenceNumber = b"sequenceNumber",
        Partition = b"partitionKey",
        Data = b"data",
        Arrival = b"approximateArrivalTimestamp",
    } else Other
}

impl ReadEntry for Entry {
    entry_names!("a Kinesis record", "a list of Kinesis records");

    /// One record: its event id and its `kinesis` part.
    fn read_fields<'de, A: MapAccess<'de>>(
        mut map: A,
        batch: &mut Buffers<Entry>,
    ) -> Result<Entry, A::Error> {
        let (mut event_id, mut payload) = (None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::EventId => {
                    once(&event_id, "eventID")?;
                    event_id = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Key::Kinesis => {
                    once(&payload, "kinesis")?;
                    payload = Some(map.next_value_seed(PayloadSeed(&mut *batch))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut entry: Entry = payload.ok_or_else(|| de::Error::missing_field("kinesis"))?;
        entry.event_id = event_id.flatten();
        Ok(entry)
    }
}

/// The `kinesis` part of a record.
struct PayloadSeed<'b>(&'b mut Buffers<Entry>);

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Entry, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the kinesis part of a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let batch = self.0;
        let (mut sequence_number, mut partition_key, mut data, mut arrival) =
            (None, None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::SequenceNumber => {
                    once(&sequence_number, "sequenceNumber")?;
                    sequence_number = Some(map.next_value_seed(Text(&mut batch.text))?);
                }
                Key::Partition => {
                    once(&partition_key, "partitionKey")?;
                    partition_key = Some(map.next_value_seed(Text(&mut batch.text))?);
                }
                Key::Data => {
                    once(&data, "data")?;
                    data = Some(map.next_value_seed(Base64(&mut batch.data))?);
                }
                Key::Arrival => {
                    once(&arrival, "approximateArrivalTimestamp")?;
                    arrival = Some(map.next_value::<EpochSeconds>()?.0);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Entry {
            event_id: None,
            sequence_number: sequence_number.unwrap_or_default(),
            partition_key: partition_key.unwrap_or_default(),
            data: data.ok_or_else(|| de::Error::missing_field("data"))?,
            arrival: arrival
                .ok_or_else(|| de::Error::missing_field("approximateArrivalTimestamp"))?,
        })
    }
}

/// Epoch seconds (a number, or a number in a string), kept to the millisecond.
struct EpochSeconds(DateTime<Utc>);

impl<'de> Deserialize<'de> for EpochSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(EpochVisitor::<Seconds>(PhantomData))
            .map(EpochSeconds)
    }
}

struct Seconds;

impl EpochUnit for Seconds {
    const EXPECTING: &'static str = "epoch seconds";

    fn time<E: de::Error>(v: f64) -> Result<DateTime<Utc>, E> {
        // Kinesis gives milliseconds: round to them so 1795323300.25 is .250, not float noise.
        let millis = (v * 1000.0).round();
        if !millis.is_finite() || millis.abs() > 8.0e15 {
            return Err(E::custom(format!("{v} is not an epoch time in seconds")));
        }
        Utc.timestamp_millis_opt(millis as i64)
            .single()
            .ok_or_else(|| E::custom(format!("{v} is not an epoch time in seconds")))
    }

    fn number<E: de::Error>(v: &str) -> Result<f64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format!("{v:?} is not an epoch time in seconds")))
    }
}
