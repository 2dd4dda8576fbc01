//! CloudWatch Logs subscription payloads: what a subscription filter puts on a Kinesis stream (or
//! a Firehose delivery stream), gzip-compressed JSON holding a batch of log events.
//!
//! A `DATA_MESSAGE` becomes one JSON document per log event ([`LogEvent`]: the event's `id`,
//! `timestamp` and `message` with the log group, stream and owning account), in order, and the
//! log event's id is the document's id (`_id`, quarantine entries); a
//! `CONTROL_MESSAGE` (CloudWatch Logs checking that the destination is reachable) holds no
//! documents, so its record is neither written nor quarantined. The payload is recognised by its
//! first key, `messageType`, which CloudWatch Logs writes first.

use serde::{Deserialize, Serialize};

/// A log event as a transform reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    /// The log event's id (unique; a natural `document_id`).
    pub id: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// The log line (often JSON itself).
    pub message: String,
    /// The log group.
    pub log_group: String,
    /// The log stream.
    pub log_stream: String,
    /// The account that owns the log group.
    pub owner: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    message_type: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    log_group: String,
    #[serde(default)]
    log_stream: String,
    log_events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    timestamp: i64,
    message: String,
}

/// The documents of a decompressed payload if it is a subscription payload: one per log event,
/// with the log event's id (none for a control message). `None`: not a subscription payload,
/// decode it as JSON / NDJSON.
pub fn documents(payload: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if !payload.starts_with(br#"{"messageType""#) {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(payload).ok()?;
    if envelope.message_type == "CONTROL_MESSAGE" {
        return Some(Vec::new());
    }
    Some(
        envelope
            .log_events
            .into_iter()
            .map(|e| {
                let event = LogEvent {
                    id: e.id.clone(),
                    timestamp: e.timestamp,
                    message: e.message,
                    log_group: envelope.log_group.clone(),
                    log_stream: envelope.log_stream.clone(),
                    owner: envelope.owner.clone(),
                };
                let doc = serde_json::to_vec(&event).expect("a log event serialises");
                (e.id, doc)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/iot/gateway","logStream":"gw-7","subscriptionFilters":["readings"],"logEvents":[{"id":"3719","timestamp":1795331700123,"message":"{\"device_id\":\"sensor-0042\"}"},{"id":"3720","timestamp":1795331700124,"message":"plain text"}]}"#;

    #[test]
    fn a_data_message_is_one_document_per_log_event() {
        let docs = documents(DATA.as_bytes()).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0, "3719");
        let first: LogEvent = serde_json::from_slice(&docs[0].1).unwrap();
        assert_eq!(first.id, "3719");
        assert_eq!(first.log_group, "/iot/gateway");
        assert_eq!(first.message, r#"{"device_id":"sensor-0042"}"#);
        let second: LogEvent = serde_json::from_slice(&docs[1].1).unwrap();
        assert_eq!(
            (second.id.as_str(), second.timestamp),
            ("3720", 1795331700124)
        );
    }

    #[test]
    fn a_control_message_has_no_documents_and_other_json_is_not_claimed() {
        let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#;
        assert_eq!(documents(control.as_bytes()), Some(Vec::new()));
        assert_eq!(documents(br#"{"device_id":"x"}"#), None);
        // Starts like an envelope but is not one: decoded as plain JSON instead.
        assert_eq!(documents(br#"{"messageType":"note"}"#), None);
    }
}
