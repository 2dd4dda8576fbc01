//! Reading a Kafka event straight into a [`KafkaBatch`]: keys and values decoded from the event
//! text as it is read, instead of parsing `aws_lambda_events`' full `KafkaEvent` (a string per
//! field, a map per header) and converting it (BENCHMARKS.md).
//!
//! Read the way the full model and [`KafkaBatch::from`] read them: the same records, ids, keys,
//! values, timestamps and headers. Skipped without being checked: `topic`, `partition` (the
//! event's key names the topic-partition) and `timestampType`; a record without `headers` has
//! none.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{KafkaBatch, KafkaMessage};
use crate::source::batch_reader::{name_keys, once, ModelMillis};

impl<'de> Deserialize<'de> for KafkaBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

name_keys! {
    /// The keys the reader knows, of the event and of a record.
    enum Field {
        Records = b"records",
        Offset = b"offset",
        Timestamp = b"timestamp",
        RecordKey = b"key",
        Value = b"value",
        Headers = b"headers",
    } else Other
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = KafkaBatch;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kafka event (an object with records)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KafkaBatch, A::Error> {
        let mut partitions: Option<Vec<(String, Vec<Record>)>> = None;
        while let Some(key) = map.next_key()? {
            match key {
                Field::Records => {
                    once(&partitions, "records")?;
                    partitions = Some(map.next_value_seed(PartitionsSeed)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut partitions = partitions.unwrap_or_default();
        partitions.sort_by(|a, b| a.0.cmp(&b.0));
        let total = partitions.iter().map(|(_, records)| records.len()).sum();
        let mut records = Vec::with_capacity(total);
        for (partition, mut batch) in partitions {
            batch.sort_by_key(|r| r.offset);
            records.extend(batch.into_iter().map(|r| r.message(&partition)));
        }
        Ok(KafkaBatch { records })
    }
}

/// One record as read, before it is placed in its partition's order.
struct Record {
    offset: i64,
    timestamp: DateTime<Utc>,
    key: Option<String>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    fn message(self, partition: &str) -> KafkaMessage {
        let mut id = String::with_capacity(partition.len() + 21);
        id.push_str(partition);
        id.push(':');
        id.push_str(itoa::Buffer::new().format(self.offset));
        KafkaMessage {
            id,
            partition_len: partition.len(),
            key: self.key,
            value: self.value,
            timestamp: (self.timestamp.timestamp_millis() != 0).then_some(self.timestamp),
            headers: self.headers,
        }
    }
}

/// `records`: topic-partition → its records, or `null` for none. A topic-partition given twice
/// keeps its last list, as a map does.
struct PartitionsSeed;

impl<'de> DeserializeSeed<'de> for PartitionsSeed {
    type Value = Vec<(String, Vec<Record>)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PartitionsSeed {
    type Value = Vec<(String, Vec<Record>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of topic-partitions to records, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut partitions: Vec<(String, Vec<Record>)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let records = map.next_value_seed(RecordsSeed)?;
            match partitions.iter_mut().find(|(n, _)| *n == name) {
                Some(earlier) => earlier.1 = records,
                None => partitions.push((name, records)),
            }
        }
        Ok(partitions)
    }
}

struct RecordsSeed;

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = Vec<Record>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Record>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed {
    type Value = Vec<Record>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Kafka records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Record>, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(record) = seq.next_element_seed(RecordSeed)? {
            records.push(record);
        }
        Ok(records)
    }
}

struct RecordSeed;

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = Record;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kafka record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let (mut offset, mut timestamp, mut key, mut value, mut headers) =
            (None, None, None, None, None);
        while let Some(k) = map.next_key()? {
            match k {
                Field::Offset => {
                    once(&offset, "offset")?;
                    offset = Some(map.next_value::<i64>()?);
                }
                Field::Timestamp => {
                    once(&timestamp, "timestamp")?;
                    timestamp = Some(map.next_value::<ModelMillis>()?.0);
                }
                Field::RecordKey => {
                    once(&key, "key")?;
                    key = Some(map.next_value_seed(Decoded::Text)?.and_then(Text::into_key));
                }
                Field::Value => {
                    once(&value, "value")?;
                    value = Some(map.next_value_seed(Decoded::Bytes)?.map(Text::into_value));
                }
                Field::Headers => {
                    once(&headers, "headers")?;
                    headers = Some(map.next_value::<Headers>()?.0);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Record {
            offset: offset.ok_or_else(|| de::Error::missing_field("offset"))?,
            timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
            key: key.flatten(),
            value: value.flatten(),
            headers: headers.unwrap_or_default(),
        })
    }
}

/// A base64 key or value as read: decoded, or its text when it is not base64.
enum Text {
    Decoded(Vec<u8>),
    Raw(Vec<u8>),
}

impl Text {
    /// A key is kept when it decodes to UTF-8 text.
    fn into_key(self) -> Option<String> {
        match self {
            Text::Decoded(bytes) => String::from_utf8(bytes).ok(),
            Text::Raw(_) => None,
        }
    }

    /// A value that is not base64 is kept as it came, to be quarantined as such.
    fn into_value(self) -> Vec<u8> {
        match self {
            Text::Decoded(bytes) | Text::Raw(bytes) => bytes,
        }
    }
}

/// A base64 string or `null`. `Text` keeps the raw bytes only when asked (`Bytes`, for values).
#[derive(Clone, Copy)]
enum Decoded {
    Text,
    Bytes,
}

impl<'de> DeserializeSeed<'de> for Decoded {
    type Value = Option<Text>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Text>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Decoded {
    type Value = Option<Text>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Text>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Text>, E> {
        Ok(None)
    }

    /// Read as bytes: base64 is ASCII, and a value that is not base64 is kept as its bytes
    /// (its document's parse checks them), so the UTF-8 check of a string would be spent for
    /// nothing.
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Text>, D::Error> {
        d.deserialize_bytes(self)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Option<Text>, E> {
        // `base64_simd`'s standard engine takes what the full model's (`base64`'s) takes, no
        // more (the Kinesis reader's differential fuzz target checks the same pair): what it
        // takes decides whether a value is kept raw.
        Ok(Some(match base64_simd::STANDARD.decode_to_vec(v) {
            Ok(bytes) => Text::Decoded(bytes),
            Err(_) => Text::Raw(match self {
                Decoded::Bytes => v.to_vec(),
                Decoded::Text => Vec::new(),
            }),
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Text>, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// `headers`: a list of maps from name to a list of signed bytes. A name repeated within one
/// map keeps its last value, as a map does.
struct Headers(Vec<(String, Vec<u8>)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of header maps")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Headers, A::Error> {
        let mut headers = Vec::new();
        while let Some(HeaderMap(map)) = seq.next_element()? {
            headers.extend(map);
        }
        Ok(Headers(headers))
    }
}

struct HeaderMap(Vec<(String, Vec<u8>)>);

impl<'de> Deserialize<'de> for HeaderMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderMapVisitor)
    }
}

struct HeaderMapVisitor;

impl<'de> Visitor<'de> for HeaderMapVisitor {
    type Value = HeaderMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of header names to byte lists")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderMap, A::Error> {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value: Vec<u8> = map
                .next_value::<Vec<i8>>()?
                .into_iter()
                .map(|b| b as u8)
                .collect();
            match headers.iter_mut().find(|(n, _)| *n == name) {
                Some(earlier) => earlier.1 = value,
                None => headers.push((name, value)),
            }
        }
        Ok(HeaderMap(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::kafka::KafkaEvent;

    /// The batch the full model gives, headers in a fixed order.
    fn both(text: &str) -> (KafkaBatch, KafkaBatch) {
        let sorted = |mut b: KafkaBatch| {
            b.records.iter_mut().for_each(|r| r.headers.sort());
            b
        };
        let full: KafkaEvent = serde_json::from_str(text).unwrap();
        (
            sorted(serde_json::from_str(text).unwrap()),
            sorted(KafkaBatch::from(full)),
        )
    }

    #[test]
    fn the_samples_read_as_the_full_model_reads_them() {
        for text in [
            include_str!("../../../../events/kafka-readings.json"),
            include_str!("../../../../events/kafka-self-managed-readings.json"),
        ] {
            let (lean, full) = both(text);
            assert!(!lean.records.is_empty());
            assert_eq!(lean, full);
        }
    }

    #[test]
    fn odd_but_accepted_events_read_as_the_full_model_reads_them() {
        let text = r#"{"records": {
            "t-1": [{"partition": 1, "offset": 9, "timestamp": "1795331700999", "key": "!!",
                     "value": "not base64", "headers": []}],
            "t-0": [{"partition": 0, "offset": 3, "timestamp": 1795331700123.0, "key": null,
                     "headers": [{"a": [1, -1]}, {"b": []}]},
                    {"partition": 0, "offset": 2, "timestamp": 0, "key": "azE=", "value": "e30=",
                     "headers": [{"a": [2], "a": [3]}]}],
            "t-1": [{"partition": 1, "offset": 7, "timestamp": 4102444800001, "value": "",
                     "headers": []}]
        }, "eventSource": "aws:kafka"}"#;
        let (lean, full) = both(text);
        assert_eq!(lean, full);
        let ids: Vec<&str> = lean.records.iter().map(|r| r.id.as_str()).collect();
        // Sorted by partition then offset; the repeated "t-1" keeps its last list.
        assert_eq!(ids, ["t-0:2", "t-0:3", "t-1:7"]);
        assert_eq!(lean.records[0].key.as_deref(), Some("k1"));
        assert_eq!(lean.records[0].timestamp, None);
        assert_eq!(lean.records[0].headers, [("a".to_string(), vec![3])]);
        assert_eq!(lean.records[1].value, None);
        assert_eq!(lean.records[2].value.as_deref(), Some(&b""[..]));
        let (empty, _) = both(r#"{"records": null}"#);
        assert!(empty.records.is_empty());
    }

    /// A value that is not UTF-8 is not base64 either: it is kept as its bytes (its document's
    /// parse then quarantines that one record); the full model refuses the whole batch for it.
    #[test]
    fn a_value_that_is_not_utf8_is_kept_as_its_bytes() {
        let event = b"{\"records\": {\"t-0\": [{\"offset\": 1, \"timestamp\": 1, \"key\": \"\xff\", \"value\": \"x\xff\"}]}}";
        assert!(serde_json::from_slice::<KafkaEvent>(event).is_err());
        let lean: KafkaBatch = serde_json::from_slice(event).unwrap();
        assert_eq!(lean.records[0].value.as_deref(), Some(&b"x\xff"[..]));
        assert_eq!(lean.records[0].key, None);
    }

    #[test]
    fn timestamps_land_where_the_full_model_puts_them() {
        // Millisecond values whose float split can differ from integer arithmetic.
        for ms in [
            1u64,
            999,
            1001,
            1_795_331_700_123,
            1_795_331_700_999,
            253_402_300_799_999,
        ] {
            let text = format!(
                r#"{{"records": {{"t-0": [{{"partition": 0, "offset": 1, "timestamp": {ms}, "value": "e30=", "headers": []}}]}}}}"#
            );
            let (lean, full) = both(&text);
            assert_eq!(lean, full, "{ms}");
        }
    }

    #[test]
    fn malformed_timestamps_are_errors_not_panics() {
        for t in ["1.5", "-1", "\"-0\"", "\"abc\"", "1e30", "true"] {
            let text = format!(
                r#"{{"records": {{"t-0": [{{"offset": 1, "timestamp": {t}, "headers": []}}]}}}}"#
            );
            assert!(serde_json::from_str::<KafkaBatch>(&text).is_err(), "{t}");
        }
    }
}
