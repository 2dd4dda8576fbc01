//! The DynamoDB Streams event as the handler reads it: each record's sequence number, stream,
//! creation time and the JSON document the transform reads, written while the event is read.
//! `aws_lambda_events`' full model builds a hash map and a string per attribute, which were then
//! converted to JSON values and serialised (BENCHMARKS.md).
//!
//! Skipped without being checked: `eventID`, `awsRegion`, `SizeBytes`, `StreamViewType`,
//! `userIdentity` and the other fields the handler does not use (the full model requires some of
//! them; Lambda always sends them).

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::attributes::{ItemSeed, Scalar};
use crate::source::batch_reader::{
    entry_names, name_keys, once, read_records, Buffers, Optional, ReadEntry, Span, Text,
};

/// A DynamoDB Streams event: its change records in stream order. Read one with
/// [`DynamoDbBatch::records`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamoDbBatch(Buffers<Entry>);

/// Where a record's parts sit in the batch's buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    sequence_number: Span,
    stream: Span,
    arrival: Option<DateTime<Utc>>,
    document: Span,
    /// `eventSourceARN` and `tableName`, which the stream is named from: the next record with the
    /// same ones shares this record's stream text.
    source: (Option<Span>, Option<Span>),
}

/// One change record of a [`DynamoDbBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangeRecord<'a> {
    /// `SequenceNumber`: the item identifier and position (empty when the event leaves it out).
    pub sequence_number: &'a str,
    /// The table and stream label (`Orders-2026-11-22T000000.000`), from `eventSourceARN`
    /// ([`super::stream_id`]).
    pub stream: &'a str,
    /// `ApproximateCreationDateTime`, when present.
    pub arrival: Option<DateTime<Utc>>,
    /// The JSON document the transform reads (see the module docs of [`super`]).
    pub document: &'a [u8],
}

impl DynamoDbBatch {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// The records, in stream order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = ChangeRecord<'_>> + '_ {
        let Buffers {
            entries,
            text,
            data,
        } = &self.0;
        entries.iter().map(|e| ChangeRecord {
            sequence_number: e.sequence_number.text(text),
            stream: e.stream.text(text),
            arrival: e.arrival,
            document: e.document.bytes(data),
        })
    }

    /// Appends a record made elsewhere (from the full model).
    pub(super) fn push(
        &mut self,
        sequence_number: &str,
        stream: &str,
        arrival: Option<DateTime<Utc>>,
        document: &[u8],
    ) {
        let b = &mut self.0;
        let sequence_number = push_text(&mut b.text, sequence_number);
        let stream = push_text(&mut b.text, stream);
        let start = b.data.len();
        b.data.extend_from_slice(document);
        b.entries.push(Entry {
            sequence_number,
            stream,
            arrival,
            document: Span {
                start,
                end: b.data.len(),
            },
            source: (None, None),
        });
    }
}

fn push_text(text: &mut String, part: &str) -> Span {
    let start = text.len();
    text.push_str(part);
    Span {
        start,
        end: text.len(),
    }
}

impl<'de> Deserialize<'de> for DynamoDbBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_records(deserializer, "a DynamoDB Streams event").map(DynamoDbBatch)
    }
}

name_keys! {
    /// The keys the reader reads, of the event, a record and its `dynamodb` part; every other key is
    /// skipped.
    enum Key {
        EventName = b"eventName",
        EventSourceArn = b"eventSourceARN",
        TableName = b"tableName",
        Change = b"dynamodb",
        ApproximateCreationDateTime = b"ApproximateCreationDateTime",
        Keys = b"Keys",
        NewImage = b"NewImage",
        OldImage = b"OldImage",
        SequenceNumber = b"SequenceNumber",
    } else Other
}

impl ReadEntry for Entry {
    entry_names!(
        "a DynamoDB Streams record",
        "a list of DynamoDB Streams records"
    );

    /// One record. Its parts are written to the end of the batch's data as they come, then put
    /// together as the document in its fixed order, which takes the parts' place.
    fn read_fields<'de, A: MapAccess<'de>>(
        mut map: A,
        batch: &mut Buffers<Entry>,
    ) -> Result<Entry, A::Error> {
        let parts_start = batch.data.len();
        let (mut name, mut arn, mut table, mut change) = (None, None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::EventName => {
                    once(&name, "eventName")?;
                    let start = batch.data.len();
                    map.next_value_seed(Scalar::text(&mut batch.data))?;
                    name = Some(Span {
                        start,
                        end: batch.data.len(),
                    });
                }
                Key::EventSourceArn => {
                    once(&arn, "eventSourceARN")?;
                    arn = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Key::TableName => {
                    once(&table, "tableName")?;
                    table = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Key::Change => {
                    once(&change, "dynamodb")?;
                    change = Some(map.next_value_seed(ChangeSeed(&mut *batch))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("eventName"))?;
        let change = change.ok_or_else(|| de::Error::missing_field("dynamodb"))?;
        let sequence_number = change.sequence_number.flatten().unwrap_or_default();
        let (stream, source) =
            stream_of(batch, (arn.flatten(), table.flatten()), sequence_number.end);
        let document = put_together(&mut batch.data, parts_start, name, &change);
        Ok(Entry {
            sequence_number,
            stream,
            arrival: change.arrival,
            document,
            source,
        })
    }
}

/// The record's stream, and the source spans the next record compares with. When the source is
/// the last record's, so is the stream, and the source's text just read is dropped again unless
/// text the record keeps (its sequence number, ending at `keep`) came after it.
fn stream_of(
    batch: &mut Buffers<Entry>,
    source: (Option<Span>, Option<Span>),
    keep: usize,
) -> (Span, (Option<Span>, Option<Span>)) {
    let text = |span: Option<Span>, text: &str| span.map(|s| s.text(text).to_owned());
    if let Some(last) = batch.entries.last() {
        let same = |a: Option<Span>, b: Option<Span>| {
            a.map(|s| s.text(&batch.text)) == b.map(|s| s.text(&batch.text))
        };
        if same(last.source.0, source.0) && same(last.source.1, source.1) {
            let (stream, kept) = (last.stream, last.source);
            let read_from = [source.0, source.1]
                .into_iter()
                .flatten()
                .map(|s| s.start)
                .min();
            if let Some(start) = read_from {
                batch.text.truncate(start.max(keep));
            }
            return (stream, kept);
        }
    }
    let (arn, table) = (text(source.0, &batch.text), text(source.1, &batch.text));
    let start = batch.text.len();
    super::push_stream_id(&mut batch.text, arn.as_deref(), table.as_deref());
    let stream = Span {
        start,
        end: batch.text.len(),
    };
    (stream, source)
}

/// Writes the document after the record's parts and moves it to where the parts began:
/// `{"eventName":…,"keys":{…},"newImage":{…},"oldImage":{…}}`, an image only when it has
/// attributes.
fn put_together(data: &mut Vec<u8>, parts_start: usize, name: Span, change: &Change) -> Span {
    let start = data.len();
    data.extend_from_slice(br#"{"eventName":"#);
    data.extend_from_within(name.start..name.end);
    data.extend_from_slice(br#","keys":"#);
    match change.keys {
        Some(keys) => data.extend_from_within(keys.start..keys.end),
        None => data.extend_from_slice(b"{}"),
    }
    for (image, field) in [
        (change.new_image, &br#","newImage":"#[..]),
        (change.old_image, &br#","oldImage":"#[..]),
    ] {
        if let Some(image) = image {
            data.extend_from_slice(field);
            data.extend_from_within(image.start..image.end);
        }
    }
    data.push(b'}');
    data.drain(parts_start..start);
    Span {
        start: parts_start,
        end: data.len(),
    }
}

/// What a record's `dynamodb` part gave: spans of the images in the batch's data (`None` for an
/// image that is absent, `null` or empty), the sequence number's in its text.
#[derive(Default)]
struct Change {
    keys: Option<Span>,
    new_image: Option<Span>,
    old_image: Option<Span>,
    sequence_number: Option<Option<Span>>,
    arrival: Option<DateTime<Utc>>,
}

struct ChangeSeed<'b>(&'b mut Buffers<Entry>);

impl<'de> DeserializeSeed<'de> for ChangeSeed<'_> {
    type Value = Change;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Change, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChangeSeed<'_> {
    type Value = Change;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stream record (the dynamodb part)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
        let batch = self.0;
        let mut read = Change::default();
        // Which of the images and the time were seen (their values may be null or empty).
        let (mut keys, mut new_image, mut old_image, mut time) = (None, None, None, None);
        while let Some(key) = map.next_key()? {
            let (slot, name) = match key {
                Key::Keys => (&mut keys, "Keys"),
                Key::NewImage => (&mut new_image, "NewImage"),
                Key::OldImage => (&mut old_image, "OldImage"),
                Key::SequenceNumber => {
                    once(&read.sequence_number, "SequenceNumber")?;
                    read.sequence_number =
                        Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                    continue;
                }
                Key::ApproximateCreationDateTime => {
                    once(&time, "ApproximateCreationDateTime")?;
                    time = Some(map.next_value::<ModelSeconds>()?.0);
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            once(slot, name)?;
            let start = batch.data.len();
            let names = map.next_value_seed(ItemSeed(&mut batch.data))?;
            *slot = Some((names > 0).then_some(Span {
                start,
                end: batch.data.len(),
            }));
        }
        read.keys = keys.flatten();
        read.new_image = new_image.flatten();
        read.old_image = old_image.flatten();
        // The full model reads a missing time as the epoch, and the source takes a time in the
        // epoch's first second as none.
        read.arrival = time.filter(|t| t.timestamp() != 0);
        Ok(read)
    }
}

/// `ApproximateCreationDateTime` as `aws_lambda_events` reads it: epoch seconds as a number;
/// the fraction of a float is taken as millionths and given to the time as nanoseconds (so
/// `1.5` is a second and 500 microseconds), an integer beyond `i64` wraps.
struct ModelSeconds(DateTime<Utc>);

impl<'de> Deserialize<'de> for ModelSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_f64(SecondsVisitor)
            .map(ModelSeconds)
    }
}

struct SecondsVisitor;

impl SecondsVisitor {
    fn at<E: de::Error>(
        seconds: i64,
        nanos: u32,
        shown: impl fmt::Display,
    ) -> Result<DateTime<Utc>, E> {
        Utc.timestamp_opt(seconds, nanos)
            .single()
            .ok_or_else(|| E::custom(format!("value is not a legal timestamp: {shown}")))
    }
}

impl Visitor<'_> for SecondsVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a unix timestamp as a float")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DateTime<Utc>, E> {
        Self::at(v as i64, 0, v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DateTime<Utc>, E> {
        Self::at(v, 0, v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DateTime<Utc>, E> {
        let nanos = (v.fract() * 1_000_000.).floor() as u32;
        Self::at(v.trunc() as i64, nanos, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::dynamodb::Event;
    use serde_json::{json, Value};

    /// Both readers take `text`, and give the same batch (the differential fuzz target's check).
    fn assert_same(text: &str) -> DynamoDbBatch {
        serde_json::from_str::<Event>(text).expect("the full model reads it");
        crate::testing::fuzz::dynamodb_models(text.as_bytes());
        serde_json::from_str(text).unwrap()
    }

    fn document(record: ChangeRecord<'_>) -> Value {
        serde_json::from_slice(record.document).unwrap()
    }

    /// A record with the fields the full model requires and `change` as its `dynamodb` part.
    fn record(name: &str, change: Value) -> Value {
        json!({"eventID": "1", "eventName": name, "awsRegion": "eu-west-1",
               "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/T/stream/2026-12-01T00:00:00.000",
               "dynamodb": change})
    }

    #[test]
    fn the_sample_reads_as_the_full_model_reads_it() {
        let batch = assert_same(include_str!("../../../../events/dynamodb-readings.json"));
        assert_eq!(batch.len(), 4);
        let modify = batch.records().nth(1).unwrap();
        assert_eq!(modify.stream, "readings-2026-11-22T000000.000");
        assert_eq!(document(modify)["oldImage"]["temperature"], 21.5);
    }

    #[test]
    fn every_attribute_type_is_written_as_plain_json() {
        let image = json!({
            "s": {"S": "a \"quoted\" \u{e9}"}, "i": {"N": "-42"}, "f": {"N": "21.25"},
            "big": {"N": "12345678901234567890.5"}, "u": {"N": "18446744073709551615"},
            "odd": {"N": "+007"}, "nan": {"N": "NaN"}, "b": {"B": "AAE="}, "ok": {"BOOL": false},
            "nothing": {"NULL": false}, "m": {"M": {"a": {"L": [{"N": "1"}, {"S": "two"}]}}},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5e3"]}, "bs": {"BS": ["AQ=="]},
            "empty": {"M": {}}, "list": {"L": []}
        });
        let event = json!({"Records": [record("INSERT", json!({
            "Keys": {"s": image["s"]}, "NewImage": image, "SizeBytes": 1}))]});
        let batch = assert_same(&event.to_string());
        let doc = document(batch.records().next().unwrap());
        assert_eq!(
            doc["newImage"],
            json!({
                "s": "a \"quoted\" é", "i": -42, "f": 21.25, "big": "12345678901234567890.5",
                "u": "18446744073709551615", "odd": 7, "nan": "NaN", "b": "AAE=", "ok": false,
                "nothing": null, "m": {"a": [1, "two"]}, "ss": ["a", "b"], "ns": [1, 2500.0],
                "bs": ["AQ=="], "empty": {}, "list": []
            })
        );
        assert_eq!(doc["keys"], json!({"s": "a \"quoted\" é"}));
        assert!(doc.get("oldImage").is_none());
    }

    #[test]
    fn a_name_given_twice_keeps_its_last_value() {
        // A map of many names finds the repeat through its hashes.
        let many: String = (0..40)
            .map(|i| format!(r#""n{i}": {{"N": "{i}"}},"#))
            .collect();
        let text = format!(
            r#"{{"Records": [{{"eventName": "MODIFY", "eventID": "1", "awsRegion": "r",
                "dynamodb": {{"SizeBytes": 1,
                "NewImage": {{"a": {{"S": "x"}}, "m": {{"M": {{"k": {{"N": "1"}}, "k": {{"N": "2"}}}}}}, "a": {{"S": "y"}}}},
                "OldImage": {{{many} "n3": {{"S": "again"}}}}}}}}]}}"#
        );
        let batch = assert_same(&text);
        let doc = document(batch.records().next().unwrap());
        assert_eq!(doc["newImage"], json!({"a": "y", "m": {"k": 2}}));
        assert_eq!(doc["oldImage"]["n3"], "again");
        assert_eq!(doc["oldImage"].as_object().unwrap().len(), 40);
    }

    #[test]
    fn absent_null_and_empty_parts_read_as_the_full_model_reads_them() {
        let text = json!({"Records": [
            // ARN first, then the sequence number: the second record's ARN text is dropped, the
            // sequence number kept.
            record("REMOVE", json!({"Keys": null, "NewImage": {}, "OldImage": null,
                                    "SequenceNumber": null, "SizeBytes": 1})),
            record("INSERT", json!({"SequenceNumber": "7", "SizeBytes": 1,
                                    "ApproximateCreationDateTime": 1764547200.25})),
            {"eventName": "INSERT", "eventID": "3", "awsRegion": "r", "tableName": "Orders",
             "dynamodb": {"SequenceNumber": "8", "SizeBytes": 1, "ApproximateCreationDateTime": 0.5}},
            {"eventName": "INSERT", "eventID": "4", "awsRegion": "r", "eventSourceARN": null,
             "dynamodb": {"SequenceNumber": "9", "SizeBytes": 1, "ApproximateCreationDateTime": 7}}
        ], "other": [1]})
        .to_string();
        let batch = assert_same(&text);
        let records: Vec<_> = batch.records().collect();
        assert_eq!(records[0].sequence_number, "");
        assert_eq!(
            document(records[0]),
            json!({"eventName": "REMOVE", "keys": {}})
        );
        assert_eq!(records[1].sequence_number, "7");
        assert_eq!(records[1].stream, "T-2026-12-01T000000.000");
        assert_eq!(records[0].stream, records[1].stream);
        // The model's reading of a float time: its fraction as millionths, given as nanoseconds.
        assert_eq!(
            records[1].arrival.unwrap().timestamp_nanos_opt(),
            Some(1_764_547_200_000_250_000)
        );
        assert_eq!((records[2].stream, records[2].arrival), ("Orders", None));
        assert_eq!(records[3].stream, "dynamodb");
        assert_eq!(records[3].arrival.unwrap().timestamp(), 7);
    }

    #[test]
    fn what_the_full_model_refuses_for_the_fields_read_is_refused() {
        let with = |change: Value| json!({"Records": [record("INSERT", change)]}).to_string();
        let image = |value: Value| with(json!({"SizeBytes": 1, "NewImage": {"a": value}}));
        for text in [
            r#"{}"#.to_string(),
            r#"{"Records": null}"#.to_string(),
            r#"{"Records": [], "Records": []}"#.to_string(),
            r#"{"Records": [{"eventName": "INSERT"}]}"#.to_string(),
            r#"{"Records": [{"dynamodb": {"SizeBytes": 1}}]}"#.to_string(),
            r#"{"Records": [{"eventName": "A", "eventName": "B", "dynamodb": {}}]}"#.to_string(),
            with(json!({"SizeBytes": 1, "ApproximateCreationDateTime": "1"})),
            with(json!({"SizeBytes": 1, "ApproximateCreationDateTime": null})),
            with(json!({"SizeBytes": 1, "ApproximateCreationDateTime": 1e300})),
            with(json!({"SizeBytes": 1, "SequenceNumber": 5})),
            with(json!({"SizeBytes": 1, "Keys": []})),
            image(json!({})),
            image(json!({"S": 1})),
            image(json!({"S": "x", "N": "1"})),
            image(json!({"X": "1"})),
            image(json!({"B": "not base64"})),
            image(json!({"B": "AAE"})),
            image(json!({"BS": ["AQ==", "!"]})),
            image(json!({"M": null})),
            image(json!({"L": [{"S": "x"}, 1]})),
            image(json!({"NS": ["1", 2]})),
            image(json!({"NULL": "yes"})),
        ] {
            assert!(serde_json::from_str::<Event>(&text).is_err(), "{text}");
            assert!(
                serde_json::from_str::<DynamoDbBatch>(&text).is_err(),
                "{text}"
            );
        }
        // The duplicate check: `Keys` twice.
        let twice = r#"{"Records": [{"eventName": "A", "eventID": "1", "awsRegion": "r",
            "dynamodb": {"SizeBytes": 1, "Keys": {}, "Keys": {}}}]}"#;
        assert!(serde_json::from_str::<Event>(twice).is_err());
        assert!(serde_json::from_str::<DynamoDbBatch>(twice).is_err());
    }
}
