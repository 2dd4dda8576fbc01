//! Writing a batch's runs against the store: lanes one after another up to their first failure,
//! lanes concurrently, as the mode says.

use futures::stream::{self, StreamExt};

use crate::sink::{Encoder, Location, PutObject};
use crate::source::{BatchOutcome, FailureMode, Redelivery, SourceRecord};
use crate::transform::Transform;

use super::outcome::blocked;
use super::plan::{runs, Dest, Item, Prepared, Run};
use super::run_names::object_name;
use super::Processor;

/// Which kind of processing a write belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteKind {
    /// A source's batch.
    Batch,
    /// Quarantine entries processed again: each record its own runs, nothing quarantined again.
    Redrive,
}

impl<T: Transform> Processor<T> {
    /// The object of a run. An encoding failure is an error: the run is reported, never
    /// written empty.
    fn put_for(
        &self,
        run: &Run,
        prepared: &Prepared,
        records: &[SourceRecord<'_>],
    ) -> Result<PutObject, String> {
        let items = &prepared.items;
        let first = &items[run.items.start];
        let rec = &records[first.record];
        let (location, encoder, partition): (&Location, &dyn Encoder, &str) = match &first.dest {
            Dest::Data(p) => (&self.config.curated, self.sink.encoder.as_ref(), p.as_ref()),
            Dest::Quarantine(p) => (
                &self.config.quarantine,
                &self.quarantine_encoder,
                p.as_str(),
            ),
        };
        let name = object_name(
            partition,
            rec.stream,
            rec.position,
            first.ordinal,
            first.output,
            encoder.extension(),
        );
        let key = location.key(&name);
        // A run is consecutive items, and items' lines are appended in item order.
        let last = &items[run.items.end - 1];
        debug_assert!(
            items[run.items.clone()]
                .windows(2)
                .all(|w| w[0].line.end == w[1].line.start),
            "a run's lines are contiguous"
        );
        let body = encoder
            .encode(&prepared.lines[first.line.start..last.line.end])
            .map_err(|e| format!("encode s3://{}/{key}: {e}", location.bucket))?;
        Ok(PutObject {
            bucket: location.bucket.clone(),
            key,
            body,
            content_type: encoder.content_type(),
        })
    }

    /// The pane object of a run of curated output, when the pipeline aggregates.
    fn pane_for(
        &self,
        run: &Run,
        prepared: &Prepared,
        records: &[SourceRecord<'_>],
    ) -> Option<Result<PutObject, String>> {
        let panes = self.panes.as_ref().filter(|p| p.per_run)?;
        let items = &prepared.items[run.items.clone()];
        let first = &items[0];
        let Dest::Data(partition) = &first.dest else {
            return None;
        };
        let rec = &records[first.record];
        let name = object_name(
            partition,
            rec.stream,
            rec.position,
            first.ordinal,
            first.output,
            panes.extension(),
        );
        let pane_id = format!(
            "{}:{}:{}:{}",
            rec.stream, rec.position, first.ordinal, first.output
        );
        let observed = items.iter().filter_map(|i| i.observed.as_deref());
        Some(panes.put(&name, &pane_id, observed))
    }

    pub(super) fn count_written(&self, run: &Run, items: &[Item], outcome: &mut BatchOutcome) {
        let n = run.items.len();
        outcome.stats.objects_written += 1;
        match items[run.items.start].dest {
            Dest::Data(_) => outcome.stats.documents_written += n,
            Dest::Quarantine(_) => outcome.stats.documents_quarantined += n,
        }
    }

    /// Encodes and puts one run.
    pub(super) async fn write_run(
        &self,
        run: &Run,
        prepared: &Prepared,
        records: &[SourceRecord<'_>],
    ) -> Result<(), String> {
        let put = self.put_for(run, prepared, records)?;
        if let Some(pane) = self.pane_for(run, prepared, records) {
            // Before the data: whatever a reader finds landed is already counted.
            self.sink
                .store
                .put(pane?)
                .await
                .map_err(|e| crate::error::chain(&e))?;
        }
        self.sink
            .store
            .put(put)
            .await
            .map_err(|e| crate::error::chain(&e))
    }

    /// Writes the batch's runs as the mode says; returns, per record, whether it is reported.
    ///
    /// Runs are written in *lanes*: the runs of one lane one after another, up to the first
    /// failure, after which the lane's later records are reported; lanes concurrently. Ordered:
    /// one lane for the batch. Per group: one lane per partition key (a record without one is a
    /// lane of its own). Report-all: one lane per run.
    pub(super) async fn write(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        mode: FailureMode,
        kind: WriteKind,
        outcome: &mut BatchOutcome,
    ) -> Vec<bool> {
        let items = &prepared.items;
        let blocked = blocked(records, &prepared.transient, mode);
        let per_record =
            kind == WriteKind::Redrive || self.config.redelivery == Redelivery::PerRecord;
        let mut runs = runs(items, &blocked, records, per_record);
        if kind == WriteKind::Redrive {
            // Still-bad entries are in quarantine already.
            runs.retain(|r| matches!(items[r.items.start].dest, Dest::Data(_)));
        }
        // The lane of each record (ordered, per group) or of each run (report-all).
        let lane_of_record: Vec<usize> = match mode {
            FailureMode::Ordered => vec![0; records.len()],
            FailureMode::PerGroup => {
                // Groups number from 0; a record without a key gets a lane past them all.
                let mut groups = std::collections::HashMap::new();
                records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match r.partition_key {
                        Some(key) => {
                            let next = groups.len();
                            *groups.entry(key).or_insert(next)
                        }
                        None => records.len() + i,
                    })
                    .collect()
            }
            FailureMode::ReportAll => Vec::new(),
        };
        let mut lanes: Vec<Vec<usize>> = Vec::new();
        let written_runs = (0..runs.len()).filter(|n| !runs[*n].behind_failure);
        if mode == FailureMode::ReportAll {
            // A lane per run: no map from lanes to their places (one run per SQS message).
            lanes.extend(written_runs.map(|n| vec![n]));
        } else {
            let mut lane_index = std::collections::HashMap::new();
            for n in written_runs {
                let at = *lane_index
                    .entry(lane_of_record[runs[n].first])
                    .or_insert_with(|| {
                        lanes.push(Vec::new());
                        lanes.len() - 1
                    });
                lanes[at].push(n);
            }
        }
        let runs = &runs;
        let results: Vec<LaneResult> = stream::iter(lanes)
            .map(|lane| async move {
                let mut result = LaneResult {
                    written: Vec::with_capacity(lane.len()),
                    failure: None,
                };
                for n in lane {
                    if let Err(e) = self.write_run(&runs[n], prepared, records).await {
                        result.failure = Some((n, e));
                        break;
                    }
                    result.written.push(n);
                }
                result
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut failed = blocked;
        let mut written = vec![false; runs.len()];
        for result in results {
            for n in result.written {
                written[n] = true;
            }
            if let Some((n, e)) = result.failure {
                outcome.errors.push(e);
                let run = &runs[n];
                if mode == FailureMode::ReportAll {
                    for item in &items[run.items.clone()] {
                        failed[item.record] = true;
                    }
                } else {
                    let lane = lane_of_record[run.first];
                    for (i, f) in failed.iter_mut().enumerate().skip(run.first) {
                        *f |= lane_of_record[i] == lane;
                    }
                }
            }
        }
        // Runs held back or not written report their records.
        for (run, ok) in runs.iter().zip(&written) {
            if *ok {
                self.count_written(run, items, outcome);
            } else {
                for item in &items[run.items.clone()] {
                    failed[item.record] = true;
                }
            }
        }
        failed
    }
}

/// What one lane wrote: its runs up to the first failure, and that failure.
struct LaneResult {
    written: Vec<usize>,
    failure: Option<(usize, String)>,
}
