//! DynamoDB Streams as a batch source: change records in, `batchItemFailures` (sequence numbers)
//! out.
//!
//! Lambda reads a table's stream like a Kinesis shard: it checkpoints before the lowest reported
//! `SequenceNumber` and re-delivers from there, so the source is ordered ([`FailureMode::Ordered`]) and
//! runs may span records. Keys and ids use the stream (table and stream label, from
//! `eventSourceARN`) and the sequence number.
//!
//! Each record becomes one JSON document for the transform, with the attribute values converted
//! to plain JSON ([`to_json`]):
//!
//! ```json
//! {"eventName": "MODIFY", "keys": {"device_id": "sensor-0042"},
//!  "newImage": {"device_id": "sensor-0042", "temperature": 21.5},
//!  "oldImage": {"device_id": "sensor-0042", "temperature": 20.0}}
//! ```
//!
//! A transform reads it as [`Change<T>`] (the new image typed, the old one plain JSON unless
//! typed too: `Change<T, T>`), or wraps a transform of the item type in [`NewImages`] to process
//! each inserted or modified item's new image and skip removals, never reading the old image.

use std::collections::HashMap;

mod attributes;
mod batch;

pub use batch::{ChangeRecord, DynamoDbBatch};

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_dynamo::AttributeValue;
use serde_json::Value;

use attributes::Number;

use super::{BatchOutcome, BatchSource, FailureMode, ResponseError, SourceRecord};
use crate::records::{FieldError, Validate};
use crate::transform::{Outputs, RecordContext, Transform, TransformError};

/// The DynamoDB Streams source. `Pipeline::new(..).source(DynamoDb)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DynamoDb;

impl BatchSource for DynamoDb {
    type Event = DynamoDbBatch;
    type Response = DynamoDbEventResponse;

    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::Ordered
    }

    fn records<'e>(&self, event: &'e DynamoDbBatch) -> Vec<SourceRecord<'e>> {
        event
            .records()
            .map(|r| SourceRecord {
                item_identifier: r.sequence_number,
                stream: r.stream,
                position: r.sequence_number,
                partition_key: None,
                arrival: r.arrival,
                data: r.document,
            })
            .collect()
    }

    fn response(
        &self,
        _event: &DynamoDbBatch,
        outcome: &BatchOutcome,
    ) -> Result<DynamoDbEventResponse, ResponseError> {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = outcome
            .failures
            .iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id.clone());
                failure
            })
            .collect();
        Ok(response)
    }
}

/// The model's way to the same batch the reader gives: for a caller that holds a parsed event,
/// and to check the reader against (each image converted with [`to_json`]).
impl From<Event> for DynamoDbBatch {
    fn from(event: Event) -> Self {
        let mut batch = DynamoDbBatch::default();
        let mut stream = String::new();
        for r in event.records {
            let change = r.change;
            let image = |item: serde_dynamo::Item| {
                let map = item.into_inner();
                (!map.is_empty()).then(|| map_to_json(map))
            };
            let document = Document {
                event_name: &r.event_name,
                keys: map_to_json(change.keys.into_inner()),
                new_image: image(change.new_image),
                old_image: image(change.old_image),
            };
            stream.clear();
            push_stream_id(
                &mut stream,
                r.event_source_arn.as_deref(),
                r.table_name.as_deref(),
            );
            // The model reads a missing time as the epoch.
            let time = change.approximate_creation_date_time;
            batch.push(
                change.sequence_number.as_deref().unwrap_or_default(),
                &stream,
                (time.timestamp() != 0).then_some(time),
                &serde_json::to_vec(&document).unwrap_or_default(),
            );
        }
        batch
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    event_name: &'a str,
    keys: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_image: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_image: Option<Value>,
}

/// `<table>-<stream label>` from `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`,
/// without the label's colons (ids are `stream:position:index`).
pub fn stream_id(arn: Option<&str>, table: Option<&str>) -> String {
    let mut id = String::new();
    push_stream_id(&mut id, arn, table);
    id
}

/// [`stream_id`], appended to `out`.
fn push_stream_id(out: &mut String, arn: Option<&str>, table: Option<&str>) {
    let parsed = arn
        .and_then(|a| a.split_once(":table/"))
        .and_then(|(_, rest)| rest.split_once("/stream/"));
    match (parsed, table) {
        (Some((table, label)), _) => {
            out.push_str(table);
            out.push('-');
            out.extend(label.chars().filter(|&c| c != ':'));
        }
        (None, Some(table)) if !table.is_empty() => out.push_str(table),
        _ => out.push_str("dynamodb"),
    }
}

/// Converts an attribute value to plain JSON: `S` → string, `N` → number (kept as a string when
/// an f64 reader would round it: an integer beyond 2^53 in magnitude, any other number of more
/// than 15 significant digits), `BOOL`,
/// `NULL`, `M` → object, `L` → array, `B` → base64 string, `SS` / `NS` / `BS` → arrays.
pub fn to_json(value: AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(n) => number(&n),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        AttributeValue::M(m) => map_to_json(m),
        AttributeValue::L(l) => Value::Array(l.into_iter().map(to_json).collect()),
        AttributeValue::Ss(s) => Value::Array(s.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(n) => Value::Array(n.iter().map(|n| number(n)).collect()),
        AttributeValue::Bs(b) => Value::Array(
            b.into_iter()
                .map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
                .collect(),
        ),
    }
}

fn map_to_json(map: HashMap<String, AttributeValue>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, to_json(v))).collect())
}

fn number(text: &str) -> Value {
    match Number::read(text) {
        Number::Integer(i) => i.into(),
        Number::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_string())),
        Number::Text => Value::String(text.to_string()),
    }
}

/// Reads an integer field that the document holds as a JSON number, or as text when it is beyond
/// 2^53 in magnitude (see [`to_json`]): put
/// `#[serde(deserialize_with = "runnel::source::dynamodb::integer")]` on an `i64`, `u64` or
/// `i128` field of the item type.
pub fn integer<'de, D, I>(deserializer: D) -> Result<I, D::Error>
where
    D: serde::Deserializer<'de>,
    I: Deserialize<'de> + std::str::FromStr,
    I::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText<I> {
        Number(I),
        Text(String),
    }
    match NumberOrText::<I>::deserialize(deserializer)? {
        NumberOrText::Number(n) => Ok(n),
        NumberOrText::Text(text) => text
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an integer: {e}"))),
    }
}

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeKind {
    /// A new item.
    Insert,
    /// An item changed.
    Modify,
    /// An item removed (also by TTL).
    Remove,
}

/// A change record as a transform reads it: the new image as the item type `T`, the old image
/// as `O` — plain JSON unless asked for (`Change<Reading, Reading>`), so that an item written
/// invalid and then corrected is not refused for what it was. An image the stream does not carry
/// (`StreamViewType`) is `None`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change<T, O = Value> {
    /// INSERT, MODIFY or REMOVE.
    pub event_name: ChangeKind,
    /// The item's key attributes.
    pub keys: serde_json::Map<String, Value>,
    /// The item after the change.
    pub new_image: Option<T>,
    /// The item before the change.
    pub old_image: Option<O>,
}

impl<T: Validate, O> Validate for Change<T, O> {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match &self.new_image {
            Some(image) => image.validate(),
            None => Ok(()),
        }
    }
}

/// Runs a transform of the item type on each inserted or modified item's new image; removals
/// make no output and no quarantine entry. The old image is never read, so it never decides a
/// change's fate. A new image the stream does not carry (`KEYS_ONLY`, `OLD_IMAGE`) is bad data.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewImages<T>(pub T);

impl<T: Transform> Transform for NewImages<T> {
    // The old image is skipped, not parsed.
    type Input = Change<T::Input, serde::de::IgnoredAny>;
    type Output = T::Output;

    fn validate(&self, input: &Self::Input) -> Result<(), Vec<FieldError>> {
        match (&input.event_name, &input.new_image) {
            (ChangeKind::Remove, _) => Ok(()),
            (_, Some(image)) => self.0.validate(image),
            (_, None) => Err(vec![FieldError::new(
                "newImage",
                "missing: the stream's view type must include new images",
            )]),
        }
    }

    const ENRICHES: bool = T::ENRICHES;

    async fn enrich(
        &self,
        mut input: Self::Input,
        ctx: &RecordContext<'_>,
    ) -> Result<Self::Input, TransformError> {
        // A removal's image is never applied, so it is not looked up either.
        if !matches!(input.event_name, ChangeKind::Remove) {
            if let Some(image) = input.new_image.take() {
                input.new_image = Some(self.0.enrich(image, ctx).await?);
            }
        }
        Ok(input)
    }

    fn apply(
        &self,
        input: Self::Input,
        ctx: &RecordContext<'_>,
        out: &mut Outputs<Self::Output>,
    ) -> Result<(), TransformError> {
        match (input.event_name, input.new_image) {
            (ChangeKind::Remove, _) => Ok(()),
            (_, Some(image)) => self.0.apply(image, ctx, out),
            (_, None) => Err(TransformError::Reject("no new image".into())),
        }
    }

    fn event_time(&self, output: &Self::Output) -> Option<DateTime<Utc>> {
        self.0.event_time(output)
    }

    fn document_id(&self, output: &Self::Output) -> Option<String> {
        self.0.document_id(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch() -> DynamoDbBatch {
        serde_json::from_str(include_str!("../../../../events/dynamodb-readings.json")).unwrap()
    }

    #[test]
    fn records_carry_the_sequence_number_the_stream_and_both_images() {
        let b = batch();
        let records = DynamoDb.records(&b);
        assert_eq!(records.len(), 4);
        let modify = &records[1];
        assert_eq!(modify.stream, "readings-2026-11-22T000000.000");
        assert_eq!(modify.item_identifier, modify.position);
        assert!(!modify.position.is_empty());
        assert!(modify.arrival.is_some());
        let doc: Value = serde_json::from_slice(modify.data).unwrap();
        assert_eq!(doc["eventName"], "MODIFY");
        assert_eq!(doc["keys"]["device_id"], "sensor-0042");
        assert_eq!(doc["newImage"]["temperature"], 22.5);
        assert_eq!(doc["oldImage"]["temperature"], 21.5);
        let remove: Value = serde_json::from_slice(records[2].data).unwrap();
        assert!(remove.get("newImage").is_none());
    }

    #[test]
    fn attribute_values_become_plain_json() {
        let item: serde_dynamo::Item = serde_json::from_value(json!({
            "s": {"S": "x"}, "i": {"N": "-42"}, "f": {"N": "21.25"},
            "big": {"N": "12345678901234567890.5"}, "b": {"B": "AAE="},
            "ok": {"BOOL": true}, "nothing": {"NULL": true},
            "m": {"M": {"a": {"L": [{"N": "1"}, {"S": "two"}]}}},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AQ=="]}
        }))
        .unwrap();
        assert_eq!(
            map_to_json(item.into_inner()),
            json!({
                "s": "x", "i": -42, "f": 21.25, "big": "12345678901234567890.5", "b": "AAE=",
                "ok": true, "nothing": null, "m": {"a": [1, "two"]},
                "ss": ["a", "b"], "ns": [1, 2.5], "bs": ["AQ=="]
            })
        );
    }

    /// Numbers an f64 keeps are numbers; the rest keep their text, at each boundary.
    #[test]
    fn numbers_an_f64_would_round_stay_text() {
        let cases = [
            ("9007199254740991", json!(9007199254740991i64)),
            ("9007199254740992", json!(9007199254740992i64)),
            ("9007199254740993", json!("9007199254740993")),
            ("-9007199254740992", json!(-9007199254740992i64)),
            ("-9007199254740993", json!("-9007199254740993")),
            ("12345678901234567", json!("12345678901234567")),
            ("18446744073709551616", json!("18446744073709551616")),
            ("123456789012345678901", json!("123456789012345678901")),
            ("1234567890.12345", json!(1234567890.12345)),
            ("1234567890.123456", json!("1234567890.123456")),
            ("1234567890.1234567", json!("1234567890.1234567")),
            ("-0.000123456789012345", json!(-0.000123456789012345)),
            ("-0.0001234567890123456", json!("-0.0001234567890123456")),
            ("1E+3", json!(1000.0)),
            ("1.5e-7", json!(1.5e-7)),
            ("123456789012345678e2", json!("123456789012345678e2")),
            ("1e400", json!("1e400")),
            ("1e-400", json!("1e-400")),
            ("0.000", json!(0.0)),
            ("10000000000000000", json!("10000000000000000")),
        ];
        for (text, expected) in cases {
            assert_eq!(number(text), expected, "{text}");
            // The event reader writes the same.
            let mut out = Vec::new();
            attributes::write_number_text(&mut out, text);
            assert_eq!(
                serde_json::from_slice::<Value>(&out).unwrap(),
                expected,
                "{text}"
            );
        }
    }

    /// An integer field reads the number and the text forms alike.
    #[test]
    fn integer_fields_read_numbers_and_their_text() {
        #[derive(Debug, Deserialize)]
        struct Item {
            #[serde(deserialize_with = "integer")]
            counter: u64,
        }
        let read = |v: Value| serde_json::from_value::<Item>(json!({ "counter": v }));
        assert_eq!(read(json!(42)).unwrap().counter, 42);
        assert_eq!(
            read(json!("18446744073709551615")).unwrap().counter,
            u64::MAX
        );
        let error = read(json!("12.5")).unwrap_err().to_string();
        assert!(error.contains("\"12.5\" is not an integer"), "{error}");
    }

    /// A correction lands whatever the item was before; a removal makes nothing, whatever the
    /// old image holds.
    #[test]
    fn new_images_never_read_the_old_image() {
        let change = |event: &str, new: Option<Value>| {
            let mut doc = json!({
                "eventName": event, "keys": {"device_id": "d"},
                "oldImage": {"device_id": 7, "temperature": "very hot"}
            });
            if let Some(new) = new {
                doc["newImage"] = new;
            }
            serde_json::from_value::<Change<Value, serde::de::IgnoredAny>>(doc).unwrap()
        };
        let modify = change(
            "MODIFY",
            Some(json!({"device_id": "d", "temperature": 21.5})),
        );
        assert_eq!(modify.new_image.unwrap()["temperature"], 21.5);
        let remove = change("REMOVE", None);
        assert!(remove.new_image.is_none() && remove.old_image.is_some());
    }

    #[test]
    fn stream_ids_come_from_the_arn() {
        assert_eq!(
            stream_id(
                Some("arn:aws:dynamodb:us-east-1:1:table/Orders/stream/2026-11-22T00:00:00.000"),
                None
            ),
            "Orders-2026-11-22T000000.000"
        );
        assert_eq!(stream_id(None, Some("Orders")), "Orders");
        assert_eq!(stream_id(None, None), "dynamodb");
    }

    #[test]
    fn the_response_names_the_failed_sequence_numbers() {
        let outcome = BatchOutcome {
            failures: vec!["300".into()],
            ..BatchOutcome::default()
        };
        let json = serde_json::to_value(DynamoDb.response(&batch(), &outcome).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"batchItemFailures": [{"itemIdentifier": "300"}]})
        );
    }
}
