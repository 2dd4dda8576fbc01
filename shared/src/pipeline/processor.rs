//! The batch processor: decode → validate → transform → write, with partial batch failures.
//!
//! # What happens to each record
//! - **Bad data** (undecodable, not JSON, failed validation, rejected or panicking transform,
//!   too large) is permanent: the record (or the one NDJSON document) is written to quarantine
//!   with its reason and raw bytes, and is *not* reported for retry — a retry cannot fix it and
//!   would block the shard.
//! - **Transient failures** (a transform that says [`TransformError::Transient`](crate::transform::TransformError::Transient), a failed write)
//!   are reported to the source and never quarantined.
//! - **Filtered** records (the transform made no output) are neither written nor reported.
//!
//! # Runs and keys
//! Output is written in *runs*: maximal sequences of consecutive documents with the same
//! destination (one partition, or quarantine). A run is one object whose key is the stream and the
//! position (position, document index, output index) of its first document. A run starts either
//! at the first record of a batch or where the destination changes between two neighbouring
//! documents, so the same document starts the same run in every delivery that contains it: a
//! re-delivered run overwrites its object instead of adding a second copy.
//!
//! # Modes
//! - [`Mode::Ordered`] (default for ordered sources): runs are written one after another in
//!   order. At the first record that fails transiently (in the transform, or because its run
//!   could not be encoded or written) processing stops; that record and every later one are
//!   reported. Nothing after a failure is written before it, so per-stream order holds.
//! - [`Mode::ReportAll`]: every record is processed and every failure reported; runs are written
//!   concurrently. A run that follows a transiently failed record with no output in between is
//!   reported instead of written, so that the re-delivery, which re-joins them, writes one run
//!   where this attempt would have started a second.
//! - [`Mode::PerGroup`] (sources that re-deliver records on their own, SQS FIFO): ordered as
//!   above within each partition key (message group), the groups concurrently; a failure reports
//!   its record and the later records of its group only.
//!
//! With [`Redelivery::Regrouped`] (SQS: a reported message comes back in any later batch, beside
//! any others) a run never spans records: each record's output is keyed by its own position
//! (message id), whatever batch it arrives in.
//!
//! # Outcomes of whole batches
//! - Empty batch: nothing is written, the response is empty (success).
//! - Every record fails transiently (e.g. S3 down): every record is reported, and Lambda retries
//!   the batch from its first record.
//! - An event that is not the source's event at all fails in the runtime before the processor
//!   runs: the invocation errors and the event source mapping retries or bisects it.
//!
//! # Delivery guarantees
//! Every output document carries a stable `_id` ([`Transform::document_id`], by default
//! `stream:position:index`). While the event source mapping eventually completes every batch —
//! retried batches, re-delivery from the lowest reported failure, bisected batches after a crash —
//! each document is in exactly one object. When the mapping gives up on a batch (retries
//! exhausted, record too old) after a crashed attempt had written some of it, those documents may
//! also appear in a later batch's object: at least once, de-duplicated downstream by `_id`. The
//! property test `shared/tests/esm_contract.rs` checks this under randomised re-delivery.

use std::ops::ControlFlow;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::records::{
    document_bytes, for_each_document, parse_document, BadData, BadDocument, DecodeLimits,
    Document, Place,
};
use crate::sink::{daily_partition, Encoder, Location, Ndjson, PutObject, Sink};
use crate::source::{BatchOutcome, Delivery, Mode, Redelivery, ReturnedOutput, SourceRecord};
use crate::transform::{RecordContext, Transform};
use crate::window::{AlertSink, PaneSink};

use super::apply::{self, Scratch};
use super::outcome::{blocked, conclude, observed};
use super::plan::{Dest, Item, Prepared, Run};
use super::redrive::{entry_id, QuarantinedEntry};
use super::run_names::{object_name, shared_partition};

/// Where output goes and how failures are reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// Curated output.
    pub output: Location,
    /// Bad records, with their reasons.
    pub quarantine: Location,
    /// How failures are reported.
    pub mode: Mode,
    /// Decoding limits.
    pub limits: DecodeLimits,
    /// Puts in flight at once in report-all mode.
    pub concurrency: usize,
    /// Source ARN recorded in quarantine entries.
    pub source_arn: Option<String>,
    /// What the source re-delivers: whether a run may span records.
    pub redelivery: Redelivery,
    /// Whether curated output is written or handed back in the response.
    pub delivery: Delivery,
}

/// The processor for one transform and one sink.
pub struct Processor<T: Transform> {
    transform: T,
    sink: Sink<T::Output>,
    quarantine_encoder: Ndjson,
    config: ProcessorConfig,
    panes: Option<PaneSink<T::Output>>,
    pub(super) alerts: Option<AlertSink<T::Output>>,
}

impl<T: Transform> Processor<T> {
    /// A processor writing `transform`'s output through `sink`.
    pub fn new(transform: T, sink: Sink<T::Output>, config: ProcessorConfig) -> Self {
        Processor {
            transform,
            sink,
            quarantine_encoder: Ndjson,
            config,
            panes: None,
            alerts: None,
        }
    }

    /// Also checks `alerts`' rules on every output that lands, publishing their alerts
    /// ([`crate::window::Rule`]).
    pub fn with_alerts(mut self, alerts: AlertSink<T::Output>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Also writes the panes of an aggregation beside every run of curated output
    /// ([`crate::window`]).
    pub fn with_panes(mut self, panes: PaneSink<T::Output>) -> Self {
        self.panes = Some(panes);
        self
    }

    /// The processor's configuration.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    pub(crate) fn panes(&self) -> Option<&PaneSink<T::Output>> {
        self.panes.as_ref()
    }

    pub(crate) fn store(&self) -> &dyn crate::sink::ObjectStore {
        self.sink.store.as_ref()
    }

    /// Processes a batch in the configured mode and returns what to report.
    pub async fn process(&self, records: &[SourceRecord<'_>]) -> BatchOutcome {
        self.process_in(records, self.config.mode).await
    }

    /// Processes a batch in `mode` (a source may choose it per batch, see
    /// [`BatchSource::mode`](crate::source::BatchSource::mode)). [`Mode::PerGroup`] needs
    /// [`Redelivery::Regrouped`]; with a stream that resumes from a checkpoint it is processed as
    /// [`Mode::Ordered`].
    pub async fn process_in(&self, records: &[SourceRecord<'_>], mode: Mode) -> BatchOutcome {
        let mode = match (mode, self.config.redelivery) {
            (Mode::PerGroup, Redelivery::FromCheckpoint) => Mode::Ordered,
            (mode, _) => mode,
        };
        let mut outcome = BatchOutcome::default();
        outcome.stats.records_in = records.len();
        outcome.stats.bytes_in = records.iter().map(|r| r.data.len()).sum();
        let prepared = self.prepare(records, None, &mut outcome);
        let failed = match self.config.delivery {
            Delivery::Store => {
                self.write(records, &prepared, mode, Pass::Batch, &mut outcome)
                    .await
            }
            Delivery::Response => self.hand_back(records, &prepared, &mut outcome).await,
        };
        let failed = self.alert(records, &prepared, failed, &mut outcome).await;
        conclude(records, &prepared, &failed, &mut outcome);
        if self.panes.as_ref().is_some_and(|p| !p.per_run) {
            outcome.observed = observed(prepared, &failed);
        }
        outcome
    }

    /// Decodes and transforms every record — or, where `places` gives a record's place, its
    /// bytes as that one document (a redriven quarantine entry). Returns the items, their lines
    /// and, per record, whether it failed transiently (its items are then dropped).
    fn prepare(
        &self,
        records: &[SourceRecord<'_>],
        places: Option<&[Option<Place<'_>>]>,
        outcome: &mut BatchOutcome,
    ) -> Prepared {
        let mut prepared = Prepared {
            items: Vec::with_capacity(records.len()),
            // Output lines are a few hundred bytes, typically smaller than the input record.
            lines: Vec::with_capacity(outcome.stats.bytes_in + records.len() * 64),
            transient: vec![false; records.len()],
        };
        let mut scratch = Scratch::default();
        let mut last_partition = None;
        let check = |input: &T::Input| self.transform.validate(input);
        for (i, rec) in records.iter().enumerate() {
            let (items_start, lines_start) = (prepared.items.len(), prepared.lines.len());
            let mut visit = |place: Place<'_>, doc: Document<T::Input>| {
                // A KPL user record's documents sit at `<sequence>:<user record>`.
                let sub_position;
                let position = match place.sub_record {
                    Some(j) => {
                        sub_position = format!("{}:{j}", rec.position);
                        sub_position.as_str()
                    }
                    None => rec.position,
                };
                let ctx = RecordContext {
                    stream: rec.stream,
                    position,
                    index: place.index,
                    partition_key: rec.partition_key,
                    arrival: rec.arrival,
                };
                let input = match doc {
                    Ok(input) => input,
                    Err(bad) => {
                        self.quarantine_item(
                            &mut prepared,
                            i,
                            rec,
                            Some(place),
                            &bad.raw,
                            &bad.reason,
                        );
                        return ControlFlow::Continue(());
                    }
                };
                match self.apply(
                    input,
                    &ctx,
                    (i, place.flat, place.id),
                    &mut scratch,
                    &mut last_partition,
                    &mut prepared,
                ) {
                    Ok(Ok(())) => ControlFlow::Continue(()),
                    Ok(Err(reason)) => {
                        prepared.transient[i] = true;
                        outcome.errors.push(format!(
                            "{}:{} transform failed transiently: {reason}",
                            rec.stream, rec.position
                        ));
                        prepared.items.truncate(items_start);
                        prepared.lines.truncate(lines_start);
                        ControlFlow::Break(())
                    }
                    Err(bad) => {
                        // The transform refused or panicked: quarantine the document as parsed.
                        let raw = document_bytes(rec.data, self.config.limits, place.flat)
                            .unwrap_or_else(|| rec.data.to_vec());
                        self.quarantine_item(&mut prepared, i, rec, Some(place), &raw, &bad);
                        ControlFlow::Continue(())
                    }
                }
            };
            let decoded = match places.and_then(|p| p[i]) {
                Some(place) => {
                    let doc = parse_document::<T::Input>(rec.data, &check).map_err(|reason| {
                        BadDocument {
                            reason,
                            raw: rec.data.to_vec(),
                        }
                    });
                    let _ = visit(place, doc);
                    Ok(())
                }
                None => {
                    for_each_document::<T::Input>(rec.data, self.config.limits, &check, &mut visit)
                }
            };
            if let Err(bad) = decoded {
                self.quarantine_item(&mut prepared, i, rec, None, rec.data, &bad);
            }
        }
        prepared
    }

    /// Runs the transform and appends one item and line (with `_id`, ending in a newline) per
    /// output. `Ok(Err(_))` is a transient failure; `Err` is bad data. On either, nothing of this
    /// document stays in `prepared`.
    fn apply(
        &self,
        input: T::Input,
        ctx: &RecordContext<'_>,
        (record, flat, own_id): (usize, u32, Option<&str>),
        scratch: &mut Scratch<T::Output>,
        last_partition: &mut Option<Arc<str>>,
        prepared: &mut Prepared,
    ) -> Result<Result<(), String>, BadData> {
        if let Some(reason) = apply::apply(&self.transform, input, ctx, scratch)? {
            return Ok(Err(reason));
        }
        // The lines are written here rather than through `apply::write_lines`: on this per-record
        // path the shared writer measured 2-3 % slower in `kinesis-throughput`, side by side.
        let (items_start, lines_start) = (prepared.items.len(), prepared.lines.len());
        let (outputs, id, path) = scratch.parts();
        for (n, output) in outputs.drain() {
            let time = self
                .transform
                .event_time(&output)
                .or(ctx.arrival)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            path.clear();
            self.sink.partitioner.write(&output, time, path);
            let dest = shared_partition(path, last_partition);
            let custom = self.transform.document_id(&output);
            let id = match (&custom, own_id) {
                (Some(id), _) => id.as_str(),
                // The payload's own id (a log event's), with the fan-out index after it.
                (None, Some(own)) => {
                    id.clear();
                    id.push_str(own);
                    if n > 0 {
                        use std::fmt::Write as _;
                        let _ = write!(id, ":{n}");
                    }
                    id.as_str()
                }
                (None, None) => {
                    crate::transform::default_document_id(id, ctx, n);
                    id.as_str()
                }
            };
            let start = prepared.lines.len();
            if let Err(e) = crate::sink::write_json_line(
                &mut prepared.lines,
                &[("_id", crate::sink::Lead::Str(id))],
                &output,
            ) {
                prepared.items.truncate(items_start);
                prepared.lines.truncate(lines_start);
                return Err(BadData::Rejected(format!("output does not serialise: {e}")));
            }
            prepared.lines.push(b'\n');
            let observed = self
                .panes
                .as_ref()
                .and_then(|p| p.aggregation.observe(&output, ctx.arrival).map(Box::new));
            let probes = self
                .alerts
                .as_ref()
                .map_or_else(Vec::new, |a| a.rules.probe(&output, ctx.arrival));
            prepared.items.push(Item {
                record,
                index: flat,
                output: n,
                dest: Dest::Data(dest),
                line: start..prepared.lines.len(),
                observed,
                probes,
            });
        }
        Ok(Ok(()))
    }

    fn quarantine_item(
        &self,
        prepared: &mut Prepared,
        record: usize,
        rec: &SourceRecord<'_>,
        place: Option<Place<'_>>,
        raw: &[u8],
        bad: &BadData,
    ) {
        let arrival = rec.arrival.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let p = place.unwrap_or_default();
        // The entry type redrive reads back; its allocations are on the bad-data path only.
        let entry = QuarantinedEntry {
            id: entry_id(rec.stream, rec.position, &p),
            kind: bad.kind().to_string(),
            reason: bad.to_string(),
            stream: rec.stream.to_string(),
            position: rec.position.to_string(),
            sub_record: p.sub_record,
            document_index: place.map(|p| p.index),
            partition_key: rec.partition_key.map(str::to_string),
            arrival: rec.arrival,
            source_arn: self.config.source_arn.clone(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(raw),
        };
        let start = prepared.lines.len();
        serde_json::to_writer(&mut prepared.lines, &entry).expect("quarantine entry serialises");
        prepared.lines.push(b'\n');
        prepared.items.push(Item {
            record,
            index: p.flat,
            output: 0,
            // Quarantine is partitioned by arrival day: stable across deliveries, unlike "now".
            dest: Dest::Quarantine(daily_partition(arrival)),
            line: start..prepared.lines.len(),
            observed: None,
            probes: Vec::new(),
        });
    }

    /// Splits items into runs; a record reported before writing (`blocked`) between two items
    /// breaks a run, and with [`Redelivery::Regrouped`] every record starts its own runs.
    ///
    /// A record whose documents go to more than one destination ("mixed") also breaks runs before
    /// and after it, so each of its runs starts at a key of its own: when one of them fails and
    /// the record is re-delivered, its other runs overwrite their objects instead of repeating
    /// their documents under a new key.
    fn runs(
        &self,
        items: &[Item],
        blocked: &[bool],
        records: &[SourceRecord<'_>],
        pass: Pass,
    ) -> Vec<Run> {
        let per_record = pass == Pass::Redrive || self.config.redelivery == Redelivery::Regrouped;
        let mut mixed = vec![false; records.len()];
        for pair in items.windows(2) {
            if pair[0].record == pair[1].record && pair[0].dest != pair[1].dest {
                mixed[pair[0].record] = true;
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        for (n, item) in items.iter().enumerate() {
            if blocked[item.record] {
                continue;
            }
            let continues = runs.last().is_some_and(|run| {
                let prev = &items[run.items.end - 1];
                let same_record = prev.record == item.record;
                run.items.end == n
                    && prev.dest == item.dest
                    && records[prev.record].stream == records[item.record].stream
                    && (same_record
                        || !(per_record
                            || mixed[prev.record]
                            || mixed[item.record]
                            || blocked[prev.record + 1..item.record].iter().any(|t| *t)))
            });
            if continues {
                runs.last_mut().expect("checked").items.end = n + 1;
            } else {
                // Held back if a record was reported after the previous item (records in
                // between made no output): a re-delivery from that record would start this run
                // at another record, so under another key. A record's own runs do not depend
                // on its neighbours.
                let after = if n == 0 { 0 } else { items[n - 1].record + 1 };
                let held_back = !per_record
                    && blocked[after.min(item.record)..item.record]
                        .iter()
                        .any(|t| *t);
                runs.push(Run {
                    first: item.record,
                    items: n..n + 1,
                    held_back,
                });
            }
        }
        runs
    }

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
            Dest::Data(p) => (&self.config.output, self.sink.encoder.as_ref(), p.as_ref()),
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
            first.index,
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
            first.index,
            first.output,
            panes.extension(),
        );
        let pane_id = format!(
            "{}:{}:{}:{}",
            rec.stream, rec.position, first.index, first.output
        );
        let observed = items.iter().filter_map(|i| i.observed.as_deref());
        Some(panes.put(&name, &pane_id, observed))
    }

    fn count_written(&self, run: &Run, items: &[Item], outcome: &mut BatchOutcome) {
        let n = run.items.len();
        outcome.stats.objects_written += 1;
        match items[run.items.start].dest {
            Dest::Data(_) => outcome.stats.documents_written += n,
            Dest::Quarantine(_) => outcome.stats.documents_quarantined += n,
        }
    }

    /// Encodes and puts one run.
    async fn write_run(
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
    async fn write(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        mode: Mode,
        pass: Pass,
        outcome: &mut BatchOutcome,
    ) -> Vec<bool> {
        let items = &prepared.items;
        let blocked = blocked(records, &prepared.transient, mode);
        let mut runs = self.runs(items, &blocked, records, pass);
        if pass == Pass::Redrive {
            // Still-bad entries are in quarantine already.
            runs.retain(|r| matches!(items[r.items.start].dest, Dest::Data(_)));
        }
        // The lane of each record (ordered, per group) or of each run (report-all).
        let lane_of_record: Vec<usize> = match mode {
            Mode::Ordered => vec![0; records.len()],
            Mode::PerGroup => {
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
            Mode::ReportAll => Vec::new(),
        };
        let mut lanes: Vec<Vec<usize>> = Vec::new();
        let written_runs = (0..runs.len()).filter(|n| !runs[*n].held_back);
        if mode == Mode::ReportAll {
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
                if mode == Mode::ReportAll {
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

impl<T: Transform> Processor<T> {
    /// [`Delivery::Response`]: every record's output lines go into [`BatchOutcome::returned`];
    /// quarantine runs are written to the store, concurrently. Returns, per record, whether it
    /// failed (transiently, or its quarantine entry could not be written).
    async fn hand_back(
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
        let runs: Vec<Run> = self
            .runs(items, &failed, records, Pass::Batch)
            .into_iter()
            .filter(|r| matches!(items[r.items.start].dest, Dest::Quarantine(_)))
            .collect();
        let results: Vec<(usize, Result<(), String>)> = stream::iter(runs.iter().enumerate())
            .map(|(n, run)| async move { (n, self.write_run(run, prepared, records).await) })
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

/// Which kind of processing a write belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// A source's batch.
    Batch,
    /// Quarantine entries processed again: each record its own runs, nothing quarantined again.
    Redrive,
}

impl<T: Transform> Processor<T> {
    /// Processes quarantine entries again (see [`crate::pipeline::redrive`]): `places` gives
    /// each record's place in its original record (`None`: the whole record). Report-all; every
    /// record's output under keys of its own; still-bad documents are not written again. Returns
    /// the outcome and, per record, why it is still bad.
    pub(crate) async fn redrive(
        &self,
        records: &[SourceRecord<'_>],
        places: &[Option<Place<'_>>],
    ) -> (BatchOutcome, Vec<Option<String>>) {
        let mut outcome = BatchOutcome::default();
        outcome.stats.records_in = records.len();
        outcome.stats.bytes_in = records.iter().map(|r| r.data.len()).sum();
        let prepared = self.prepare(records, Some(places), &mut outcome);
        let mut reasons = vec![None; records.len()];
        for item in &prepared.items {
            if let (Dest::Quarantine(_), None) = (&item.dest, &reasons[item.record]) {
                let entry: Result<QuarantinedEntry, _> =
                    serde_json::from_slice(&prepared.lines[item.line.clone()]);
                reasons[item.record] = entry.ok().map(|e| e.reason);
            }
        }
        let failed = self
            .write(
                records,
                &prepared,
                Mode::ReportAll,
                Pass::Redrive,
                &mut outcome,
            )
            .await;
        conclude(records, &prepared, &failed, &mut outcome);
        (outcome, reasons)
    }
}

/// What one lane wrote: its runs up to the first failure, and that failure.
struct LaneResult {
    written: Vec<usize>,
    failure: Option<(usize, String)>,
}
