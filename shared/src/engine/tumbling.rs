//! A tumbling-window invocation: the batch processed as any other (landing exactly once), its
//! outputs counted into the window's state, and the window's rows written when it ends. What the
//! state holds and why each step is safe under re-delivery: [`crate::window::tumbling`].

use std::collections::HashMap;

use aws_lambda_events::time_window::TimeWindowProperties;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::sink::{daily_partition, PutObject};
use crate::source::{BatchOutcome, FailureMode, RecordStatus, ResponseError, SourceRecord};
use crate::transform::Transform;
use crate::window::tumbling::WindowState;

use super::quarantine::QuarantinedEntry;
use super::Processor;

impl<T: Transform> Processor<T> {
    /// Processes one invocation of a mapping with tumbling windows: lands the records in order,
    /// counts the outputs of the records before the first failure into the window's state, and
    /// when the window ends (or the state grows past its bound) writes its rows. The outcome
    /// carries the state to answer with. Needs an aggregation kept in window state
    /// ([`PaneSink::in_window_state`](crate::window::PaneSink::in_window_state)).
    pub async fn process_window(
        &self,
        window: &TimeWindowProperties,
        records: &[SourceRecord<'_>],
    ) -> Result<BatchOutcome, ResponseError> {
        let panes = self.panes().filter(|p| !p.per_run).ok_or_else(|| {
            ResponseError(
                "a tumbling-window invocation needs an aggregation kept in the window's state"
                    .into(),
            )
        })?;
        let start = window.window.start.timestamp_millis();
        let size = (window.window.end - window.window.start)
            .num_milliseconds()
            .max(1);
        // Lambda cuts the windows: rows end where its window ends.
        let aggregation = panes
            .aggregation
            .clone()
            .tumbling(std::time::Duration::from_millis(size as u64));
        let shard = window
            .shard_id
            .as_deref()
            .or(records.first().map(|r| r.stream))
            .unwrap_or("unknown-shard");
        let (mut state, discarded) = match WindowState::read(&aggregation, start, &window.state) {
            Ok(state) => (state, None),
            Err(reason) => (WindowState::fresh(&aggregation, start), Some(reason)),
        };
        if let Some(reason) = &discarded {
            // Kept whole in quarantine before anything else, so a failure here retries the
            // invocation with the same state.
            self.put(self.state_entry(window, shard, reason)).await?;
            tracing::error!(
                shard,
                window = start,
                reason = reason.as_str(),
                "window state discarded: kept in quarantine, the window goes on with a fresh state"
            );
        }
        let mut outcome = self.process_in(records, FailureMode::Ordered).await;
        let counted = outcome
            .records
            .iter()
            .position(|s| *s == RecordStatus::Failed)
            .unwrap_or(records.len());
        let observed = std::mem::take(&mut outcome.observed);
        let mut at = 0;
        for (i, record) in records[..counted].iter().enumerate() {
            let from = at;
            while at < observed.len() && observed[at].0 == i {
                at += 1;
            }
            state.count(record.position, observed[from..at].iter().map(|(_, o)| o));
        }
        let ends = window.is_final_invoke_for_window || window.is_window_terminated_early;
        if ends && counted < records.len() {
            // The last invocation is retried until it succeeds, with the same state: count
            // nothing of it until all of it lands.
            return Err(ResponseError(format!(
                "the window's last invocation could not land {} record(s): {}",
                records.len() - counted,
                outcome.errors.join(" | ")
            )));
        }
        let mut answer = state.to_map();
        if ends || WindowState::<T::Output>::size(&answer) > panes.state_limit {
            if state.has_rows() {
                let (name, rows) = state.rows(shard, panes.extension());
                self.put(panes.put_rows(&name, rows).map_err(ResponseError)?)
                    .await?;
                outcome.stats.objects_written += 1;
            }
            state.written_out();
            answer = if ends { HashMap::new() } else { state.to_map() };
        }
        outcome.window_state = Some(answer);
        Ok(outcome)
    }

    async fn put(&self, object: PutObject) -> Result<(), ResponseError> {
        self.store()
            .put(object)
            .await
            .map_err(|e| ResponseError(crate::error::chain(&e)))
    }

    /// The quarantine entry of a window state that cannot be used.
    fn state_entry(&self, window: &TimeWindowProperties, shard: &str, reason: &str) -> PutObject {
        let start: DateTime<Utc> = window.window.start;
        let text = serde_json::to_vec(&window.state).expect("a map of strings serialises");
        let entry = QuarantinedEntry {
            id: format!("{shard}:window:{}", start.timestamp_millis()),
            kind: "window_state".into(),
            reason: reason.to_string(),
            stream: shard.to_string(),
            position: start.timestamp_millis().to_string(),
            sub_record: None,
            document_index: None,
            partition_key: None,
            arrival: Some(start),
            source_arn: window.event_source_arn.clone(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(text),
            row: None,
        };
        let mut body = serde_json::to_vec(&entry).expect("a quarantine entry serialises");
        body.push(b'\n');
        let location = &self.config().quarantine;
        PutObject {
            bucket: location.bucket.clone(),
            key: location.key(&format!(
                "{}/{shard}-window-{}.json",
                daily_partition(start),
                start.timestamp_millis()
            )),
            body,
            content_type: "application/x-ndjson",
        }
    }
}
