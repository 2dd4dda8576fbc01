//! The hand-back for sources that take curated output in the response (Firehose): every record's
//! lines go back to the source; only quarantine is written.

use futures::stream::{self, StreamExt};

use crate::source::{BatchOutcome, Redelivery, ReturnedOutput, SourceRecord};
use crate::transform::Transform;

use super::plan::{runs, Dest, Prepared, Run};
use super::Processor;

impl<T: Transform> Processor<T> {
    /// [`OutputRoute::Response`]: every record's output lines go into [`BatchOutcome::returned`];
    /// quarantine runs are written to the store, concurrently. Returns, per record, whether it
    /// failed (transiently, or its quarantine entry could not be written).
    pub(super) async fn answer_with_output(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        outcome: &mut BatchOutcome,
    ) -> Vec<bool> {
        let items = &prepared.items;
        let mut returned = vec![ReturnedOutput::default(); records.len()];
        for item in items {
            if let Dest::Data(partition) = &item.dest {
                let out = &mut returned[item.record];
                out.data
                    .extend_from_slice(&prepared.lines[item.line.clone()]);
                out.partition
                    .get_or_insert_with(|| partition.as_ref().to_string());
                outcome.stats.documents_written += 1;
            }
        }
        outcome.returned = returned;
        let mut failed = prepared.transient.clone();
        let per_record = self.config.redelivery == Redelivery::PerRecord;
        let runs: Vec<Run> = runs(items, &failed, records, per_record)
            .into_iter()
            .filter(|r| matches!(items[r.items.start].dest, Dest::Quarantine(_)))
            .collect();
        // By index: a closure over borrowed runs would make the future not `Send`.
        let runs_ref = &runs;
        let results: Vec<(usize, Result<(), String>)> = stream::iter(0..runs.len())
            .map(|n| async move {
                let run = &runs_ref[n];
                (n, self.write_run(run, prepared, records).await)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        for (n, result) in results {
            let run = &runs[n];
            match result {
                Ok(()) => self.count_written(run, items, outcome),
                Err(e) => {
                    outcome.errors.push(e);
                    for item in &items[run.items.clone()] {
                        failed[item.record] = true;
                    }
                }
            }
        }
        failed
    }
}
