//! S3 "object created" events in both shapes that reach a handler: the S3 notification
//! (`Records[].s3`, keys URL-encoded with `+` for spaces) and the EventBridge form
//! (`detail-type: Object Created`, keys not encoded).

use aws_lambda_events::event::sns::SnsMessage;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

/// One created object an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: String,
    /// The key as stored (decoded).
    pub key: String,
    /// The entity tag, without quotes, when the event carries it.
    pub etag: Option<String>,
    /// Size in bytes, when the event carries it.
    pub size: Option<u64>,
    /// The object's version, in a versioned bucket.
    pub version_id: Option<String>,
    /// Orders events on the same key (hex; PUT and DELETE only).
    pub sequencer: Option<String>,
}

impl ObjectRef {
    /// The object as `s3://bucket/key`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an event names no object to ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3EventError {
    /// Neither shape: a record without `s3`, or an event of another kind.
    #[error(
        "not an S3 object-created event (neither Records[].s3 nor EventBridge \"Object Created\")"
    )]
    Unrecognised,
    /// A record lacks the bucket or the key.
    #[error("S3 record {index} lacks {field}")]
    MissingField {
        /// The record's position in `Records` (0 for EventBridge).
        index: usize,
        /// The missing field's path (`s3.object.key`).
        field: &'static str,
    },
    /// A queued message's body is not JSON (the parser's message).
    #[error("message body is not JSON: {0}")]
    Body(String),
    /// A notification's key does not decode (bad `%XX`, or not UTF-8).
    #[error("object key {key:?} is not valid URL encoding: {reason}")]
    BadKey {
        /// The key as the event sent it.
        key: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Decodes a key from an S3 notification: `+` is a space, `%XX` a byte (UTF-8 overall).
pub fn decode_notification_key(raw: &str) -> Result<String, S3EventError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| S3EventError::BadKey {
            key: raw.to_string(),
            reason: e.to_string(),
        })
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn trim_etag(e: String) -> String {
    e.trim_matches('"').to_string()
}

/// The objects an event names. `s3:TestEvent` (sent when notifications are configured) and
/// non-create records yield nothing.
pub fn objects(event: &Value) -> Result<Vec<ObjectRef>, S3EventError> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let mut out = Vec::new();
        for (index, r) in records.iter().enumerate() {
            let Some(s3) = r.get("s3") else {
                return Err(S3EventError::Unrecognised);
            };
            let name = r
                .get("eventName")
                .and_then(Value::as_str)
                .unwrap_or("ObjectCreated:");
            if !name.starts_with("ObjectCreated:") {
                continue;
            }
            let bucket = text(s3, "/bucket/name").ok_or(S3EventError::MissingField {
                index,
                field: "s3.bucket.name",
            })?;
            let raw_key = text(s3, "/object/key").ok_or(S3EventError::MissingField {
                index,
                field: "s3.object.key",
            })?;
            out.push(ObjectRef {
                bucket,
                key: decode_notification_key(&raw_key)?,
                etag: text(s3, "/object/eTag").map(trim_etag),
                size: s3.pointer("/object/size").and_then(Value::as_u64),
                version_id: text(s3, "/object/versionId"),
                sequencer: text(s3, "/object/sequencer"),
            });
        }
        return Ok(out);
    }
    if event.get("detail-type").and_then(Value::as_str) == Some("Object Created") {
        let detail = event.get("detail").unwrap_or(&Value::Null);
        let bucket = text(detail, "/bucket/name").ok_or(S3EventError::MissingField {
            index: 0,
            field: "detail.bucket.name",
        })?;
        let key = text(detail, "/object/key").ok_or(S3EventError::MissingField {
            index: 0,
            field: "detail.object.key",
        })?;
        return Ok(vec![ObjectRef {
            bucket,
            key,
            etag: text(detail, "/object/etag").map(trim_etag),
            size: detail.pointer("/object/size").and_then(Value::as_u64),
            version_id: text(detail, "/object/version-id"),
            sequencer: text(detail, "/object/sequencer"),
        }]);
    }
    Err(S3EventError::Unrecognised)
}

/// One message of an SQS event that carries S3 notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The message's id: what a partial batch response reports.
    pub message_id: String,
    /// The objects its notification names, or why it names none.
    pub objects: Result<Vec<ObjectRef>, S3EventError>,
}

/// The messages of an SQS event whose bodies are S3 notifications — sent by the bucket to the
/// queue, or by a topic (an SNS envelope, when the subscription has no raw message delivery).
/// `None`: the event is not an SQS event.
pub fn queued_objects(event: &Value) -> Option<Vec<QueuedMessage>> {
    if event
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        != Some("aws:sqs")
    {
        return None;
    }
    let sqs: SqsEvent = serde_json::from_value(event.clone()).ok()?;
    Some(
        sqs.records
            .into_iter()
            .map(|m| QueuedMessage {
                message_id: m.message_id.unwrap_or_default(),
                objects: message_objects(m.body.as_deref().unwrap_or("")),
            })
            .collect(),
    )
}

fn message_objects(body: &str) -> Result<Vec<ObjectRef>, S3EventError> {
    let value: Value = serde_json::from_str(body).map_err(|e| S3EventError::Body(e.to_string()))?;
    match serde_json::from_value::<SnsMessage>(value.clone()) {
        Ok(sns) if sns.sns_message_type == "Notification" => {
            let inner: Value = serde_json::from_str(&sns.message)
                .map_err(|e| S3EventError::Body(format!("SNS Message: {e}")))?;
            objects(&inner)
        }
        _ => objects(&value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notification_keys_are_decoded() {
        assert_eq!(
            decode_notification_key("red+flower.jpg").unwrap(),
            "red flower.jpg"
        );
        assert_eq!(
            decode_notification_key("dt%3D2026-11-22/caf%C3%A9+%2B1.csv").unwrap(),
            "dt=2026-11-22/café +1.csv"
        );
        assert!(matches!(
            decode_notification_key("bad%FF%FE"),
            Err(S3EventError::BadKey { .. })
        ));
    }

    #[test]
    fn both_shapes_name_the_same_object() {
        let n = json!({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"raw"},"object":{"key":"daily/red+flower.csv","eTag":"abc","size":12,"sequencer":"0A1"}}}]});
        let e = json!({"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"raw"},"object":{"key":"daily/red flower.csv","etag":"abc","size":12,"sequencer":"0A1"}}});
        assert_eq!(objects(&n).unwrap(), objects(&e).unwrap());
        assert_eq!(objects(&n).unwrap()[0].key, "daily/red flower.csv");
    }

    #[test]
    fn test_events_and_deletes_name_nothing() {
        assert_eq!(
            objects(&json!({"Event":"s3:TestEvent","Bucket":"raw"})).unwrap(),
            vec![]
        );
        let del = json!({"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"raw"},"object":{"key":"k"}}}]});
        assert_eq!(objects(&del).unwrap(), vec![]);
    }

    #[test]
    fn queued_notifications_are_read_per_message_through_sns_envelopes() {
        let event: Value =
            serde_json::from_str(include_str!("../../events/sqs-s3-notifications.json")).unwrap();
        let messages = queued_objects(&event).unwrap();
        let keys: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                m.objects
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|o| o.key)
                    .collect()
            })
            .collect();
        let export = "transactions/dt=2026-11-22/daily export Zürich café.csv.gz".to_string();
        // Direct, inside an SNS envelope, and the test event that names nothing.
        assert_eq!(keys, [vec![export.clone()], vec![export], vec![]]);
        assert!(messages[0].message_id.ends_with("0100"));
        let mut garbled = event.clone();
        garbled["Records"][1]["body"] = json!("not json");
        let messages = queued_objects(&garbled).unwrap();
        assert!(matches!(messages[1].objects, Err(S3EventError::Body(_))));
        assert!(queued_objects(&json!({"Records": []})).is_none());
    }

    #[test]
    fn other_events_are_errors() {
        assert_eq!(
            objects(&json!({"hello":1})).unwrap_err(),
            S3EventError::Unrecognised
        );
        let missing = json!({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"raw"},"object":{}}}]});
        assert_eq!(
            objects(&missing).unwrap_err(),
            S3EventError::MissingField {
                index: 0,
                field: "s3.object.key"
            }
        );
    }
}
