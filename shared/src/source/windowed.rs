//! Mappings with tumbling windows (`TumblingWindowInSeconds` on a Kinesis or DynamoDB Streams
//! mapping): the inner source's event with the window's properties, and the answer that carries
//! the window's state beside the failed records.
//!
//! `aws_lambda_events`' Kinesis response for windows has no `batchItemFailures` (the field is
//! commented out in the crate), although Lambda reads `{"state": …, "batchItemFailures": […]}`:
//! [`WindowResponse`] is that answer, for both sources.

use std::collections::HashMap;

use aws_lambda_events::time_window::TimeWindowProperties;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BatchOutcome, BatchSource, FailureMode, ResponseError, SourceRecord};

/// The inner source's mapping with tumbling windows: `Windowed(Kinesis)`, `Windowed(DynamoDb)`.
/// Always ordered: the window's state counts the records before the first failure, and Lambda
/// re-delivers from it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Windowed<S>(pub S);

/// A windowed event: the inner source's records and the window's properties.
#[derive(Debug, Deserialize)]
pub struct WindowedEvent<E> {
    /// The records, as the inner source reads them.
    #[serde(flatten)]
    pub batch: E,
    /// The window, its state, the shard, and whether this is the window's last invocation.
    #[serde(flatten)]
    pub window: TimeWindowProperties,
}

/// One record reported for retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// The record's sequence number.
    pub item_identifier: String,
}

/// The answer to a windowed invocation: the state for the next one and the records to retry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowResponse {
    /// The window's state (empty after the window's last invocation).
    pub state: HashMap<String, String>,
    /// Records reported for retry.
    pub batch_item_failures: Vec<ItemFailure>,
}

impl<S: BatchSource> BatchSource for Windowed<S> {
    type Event = WindowedEvent<S::Event>;
    type Response = WindowResponse;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn default_mode(&self) -> FailureMode {
        FailureMode::Ordered
    }

    fn mode(&self, _records: &[SourceRecord<'_>], _configured: Option<FailureMode>) -> FailureMode {
        FailureMode::Ordered
    }

    fn records<'e>(&self, event: &'e Self::Event) -> Vec<SourceRecord<'e>> {
        self.0.records(&event.batch)
    }

    fn check(&self, records: &[SourceRecord<'_>]) -> Result<(), ResponseError> {
        self.0.check(records)
    }

    fn windowed(&self) -> bool {
        true
    }

    fn window<'e>(&self, event: &'e Self::Event) -> Option<&'e TimeWindowProperties> {
        Some(&event.window)
    }

    fn response(
        &self,
        _event: &Self::Event,
        outcome: &BatchOutcome,
    ) -> Result<WindowResponse, ResponseError> {
        let state = outcome.window_state.clone().ok_or_else(|| {
            ResponseError("a windowed invocation was processed without its window".into())
        })?;
        Ok(WindowResponse {
            state,
            batch_item_failures: outcome
                .failures
                .iter()
                .map(|id| ItemFailure {
                    item_identifier: id.clone(),
                })
                .collect(),
        })
    }

    fn correlation_id(&self, records: &[SourceRecord<'_>]) -> Option<String> {
        self.0.correlation_id(records)
    }

    fn lag_metric(&self) -> &'static str {
        self.0.lag_metric()
    }

    fn lag_ms(&self, records: &[SourceRecord<'_>], now: DateTime<Utc>) -> Option<i64> {
        self.0.lag_ms(records, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{DynamoDb, Kinesis};

    #[test]
    fn a_windowed_kinesis_event_reads_its_records_and_window() {
        let event: WindowedEvent<crate::source::kinesis::KinesisBatch> =
            serde_json::from_str(include_str!("../../../events/window-kinesis.json")).unwrap();
        let records = Windowed(Kinesis).records(&event);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].stream, "shardId-000000000000");
        assert_eq!(
            event.window.window.start.to_rfc3339(),
            "2026-12-07T10:01:00+00:00"
        );
        assert!(!event.window.is_final_invoke_for_window);
        assert_eq!(
            event.window.shard_id.as_deref(),
            Some("shardId-000000000000")
        );
    }

    #[test]
    fn a_windowed_dynamodb_event_reads_its_records_and_window() {
        let event: WindowedEvent<crate::source::dynamodb::DynamoDbBatch> =
            serde_json::from_str(include_str!("../../../events/window-dynamodb.json")).unwrap();
        let records = Windowed(DynamoDb).records(&event);
        assert_eq!(records.len(), 1);
        assert!(event.window.is_final_invoke_for_window);
        assert_eq!(event.window.state.len(), 0);
    }

    #[test]
    fn the_answer_carries_the_state_beside_the_failures() {
        let outcome = BatchOutcome {
            failures: vec!["49".into()],
            window_state: Some(HashMap::from([("runnel".into(), "{}".into())])),
            ..BatchOutcome::default()
        };
        let event: WindowedEvent<crate::source::kinesis::KinesisBatch> =
            serde_json::from_str(include_str!("../../../events/window-kinesis.json")).unwrap();
        let answer = serde_json::to_value(Windowed(Kinesis).response(&event, &outcome).unwrap());
        assert_eq!(
            answer.unwrap(),
            serde_json::json!({"state": {"runnel": "{}"}, "batchItemFailures": [{"itemIdentifier": "49"}]})
        );
        let no_state = Windowed(Kinesis).response(&event, &BatchOutcome::default());
        assert!(no_state.is_err());
    }
}
