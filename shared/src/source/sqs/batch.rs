//! The SQS event as the handler reads it: the message id, the queue's ARN, the two attributes it
//! uses (`MessageGroupId`, `SentTimestamp`) and the body of each message, in Lambda's shape, kept
//! in two buffers of the batch. `aws_lambda_events`' full `SqsEvent` allocates nine strings and
//! two hash maps per message, most of which the handler never reads (BENCHMARKS.md).
//!
//! Skipped without being checked: `messageAttributes`, and the attributes other than those two
//! (the full model refuses a batch whose attribute value is not a string; Lambda never sends one).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::source::batch_reader::{
    entry_names, name_keys, once, read_records, Buffers, Bytes, Optional, ReadEntry, Span, Text,
};

/// An SQS event: its messages in the order Lambda delivered them. Read one with
/// [`SqsBatch::records`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqsBatch(Buffers<Entry>);

/// Where a message's parts sit in the batch's buffers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Entry {
    message_id: Option<Span>,
    event_source_arn: Option<Span>,
    message_group_id: Option<Span>,
    sent_timestamp: Option<Span>,
    body: Option<Span>,
}

/// One message of an [`SqsBatch`], borrowed from it. A field the event leaves out (or sets to
/// `null`) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqsRecord<'a> {
    /// `messageId`: the message's identifier, also its item identifier in a batch response.
    pub message_id: Option<&'a str>,
    /// `eventSourceARN`: the queue's ARN.
    pub event_source_arn: Option<&'a str>,
    /// The `MessageGroupId` attribute (FIFO queues).
    pub message_group_id: Option<&'a str>,
    /// The `SentTimestamp` attribute: epoch milliseconds, as text.
    pub sent_timestamp: Option<&'a str>,
    /// The body's bytes, unescaped from the event's JSON string.
    pub body: Option<&'a [u8]>,
}

impl SqsBatch {
    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// The messages, in delivery order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = SqsRecord<'_>> + '_ {
        let Buffers {
            entries,
            text,
            data,
        } = &self.0;
        entries.iter().map(|e| {
            let text = |s: Span| s.text(text);
            SqsRecord {
                message_id: e.message_id.map(text),
                event_source_arn: e.event_source_arn.map(text),
                message_group_id: e.message_group_id.map(text),
                sent_timestamp: e.sent_timestamp.map(text),
                body: e.body.map(|s| s.bytes(data)),
            }
        })
    }
}

impl<'de> Deserialize<'de> for SqsBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_records(deserializer, "an SQS event").map(SqsBatch)
    }
}

name_keys! {
    /// The keys the model reads, of the event, a message and its attributes; every other key is
    /// skipped.
    enum Key {
        MessageId = b"messageId",
        EventSourceArn = b"eventSourceARN",
        Attributes = b"attributes",
        Body = b"body",
        MessageGroupId = b"MessageGroupId",
        SentTimestamp = b"SentTimestamp",
    } else Other
}

impl ReadEntry for Entry {
    entry_names!("an SQS message", "a list of SQS messages");

    /// One message.
    fn read_fields<'de, A: MapAccess<'de>>(
        mut map: A,
        batch: &mut Buffers<Entry>,
    ) -> Result<Entry, A::Error> {
        // Each slot is `Some` once its key was seen (its value may still be null).
        let (mut id, mut arn, mut body, mut attributes) = (None, None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::MessageId => {
                    once(&id, "messageId")?;
                    id = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Key::EventSourceArn => {
                    once(&arn, "eventSourceARN")?;
                    arn = Some(map.next_value_seed(Optional(Text(&mut batch.text)))?);
                }
                Key::Body => {
                    once(&body, "body")?;
                    body = Some(map.next_value_seed(Optional(Bytes(&mut batch.data)))?);
                }
                Key::Attributes => {
                    once(&attributes, "attributes")?;
                    attributes = Some(map.next_value_seed(AttributesSeed(&mut batch.text))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let attributes = attributes.unwrap_or_default();
        Ok(Entry {
            message_id: id.flatten(),
            event_source_arn: arn.flatten(),
            message_group_id: attributes.message_group_id,
            sent_timestamp: attributes.sent_timestamp,
            body: body.flatten(),
        })
    }
}

/// The two attributes read.
#[derive(Default)]
struct Attributes {
    message_group_id: Option<Span>,
    sent_timestamp: Option<Span>,
}

/// `attributes`: a map of strings, or `null` for none. A name given twice keeps its last
/// value, as a map does.
struct AttributesSeed<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for AttributesSeed<'_> {
    type Value = Attributes;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Attributes, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed<'_> {
    type Value = Attributes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of message attributes or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Attributes, E> {
        Ok(Attributes::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Attributes, E> {
        Ok(Attributes::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Attributes, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
        let mut read = Attributes::default();
        while let Some(key) = map.next_key()? {
            match key {
                Key::MessageGroupId => {
                    read.message_group_id = Some(map.next_value_seed(Text(&mut *self.0))?);
                }
                Key::SentTimestamp => {
                    read.sent_timestamp = Some(map.next_value_seed(Text(&mut *self.0))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;

    const SAMPLES: [&str; 2] = [
        include_str!("../../../../events/sqs-readings.json"),
        include_str!("../../../../events/sqs-fifo-readings.json"),
    ];

    fn both(text: &str) -> (SqsBatch, SqsEvent) {
        (
            serde_json::from_str(text).unwrap(),
            serde_json::from_str(text).unwrap(),
        )
    }

    fn assert_same(lean: &SqsBatch, full: &SqsEvent) {
        assert_eq!(lean.len(), full.records.len());
        for (l, f) in lean.records().zip(&full.records) {
            assert_eq!(l.message_id, f.message_id.as_deref());
            assert_eq!(l.event_source_arn, f.event_source_arn.as_deref());
            let attribute = |name: &str| f.attributes.get(name).map(String::as_str);
            assert_eq!(l.message_group_id, attribute("MessageGroupId"));
            assert_eq!(l.sent_timestamp, attribute("SentTimestamp"));
            assert_eq!(l.body, f.body.as_deref().map(str::as_bytes));
        }
    }

    #[test]
    fn the_samples_read_as_the_full_model_reads_them() {
        for text in SAMPLES {
            let (lean, full) = both(text);
            assert!(!lean.is_empty());
            assert_same(&lean, &full);
        }
    }

    #[test]
    fn absent_null_and_repeated_fields_read_as_the_full_model_reads_them() {
        let text = r#"{"Records": [
            {"messageId": null, "body": null, "attributes": null},
            {"eventSourceARN": "arn:aws:sqs:eu-west-1:1:q", "body": "a \"quoted\" \u00e9 body",
             "attributes": {"SentTimestamp": "1", "MessageGroupId": "g1", "SentTimestamp": "2",
                            "ApproximateReceiveCount": "3"},
             "messageAttributes": {"k": {"dataType": "String", "stringValue": "v"}}},
            {}
        ], "other": [1, 2]}"#;
        let (lean, full) = both(text);
        assert_same(&lean, &full);
        let second = lean.records().nth(1).unwrap();
        assert_eq!(second.sent_timestamp, Some("2"));
        assert_eq!(second.body, Some("a \"quoted\" é body".as_bytes()));
    }

    /// A body that is not UTF-8 is read as its bytes (the document parse then quarantines that
    /// one message); the full model refuses the whole batch for it.
    #[test]
    fn a_body_that_is_not_utf8_is_read_as_its_bytes() {
        let event = b"{\"Records\": [{\"messageId\": \"a\", \"body\": \"x\xff\"}]}";
        assert!(serde_json::from_slice::<SqsEvent>(event).is_err());
        let lean: SqsBatch = serde_json::from_slice(event).unwrap();
        assert_eq!(lean.records().next().unwrap().body, Some(&b"x\xff"[..]));
    }

    #[test]
    fn what_the_full_model_refuses_for_the_fields_read_is_refused() {
        for text in [
            r#"{}"#,
            r#"{"Records": null}"#,
            r#"{"Records": [{"messageId": 7}]}"#,
            r#"{"Records": [{"messageId": "a", "messageId": "b"}]}"#,
            r#"{"Records": [{"body": ["x"]}]}"#,
            r#"{"Records": [{"attributes": {"MessageGroupId": 1}}]}"#,
            r#"{"Records": [{"attributes": []}]}"#,
            r#"{"Records": [], "Records": []}"#,
        ] {
            assert!(serde_json::from_str::<SqsEvent>(text).is_err(), "{text}");
            assert!(serde_json::from_str::<SqsBatch>(text).is_err(), "{text}");
        }
    }
}
