//! The batch processor: decode → validate → transform → write, with partial batch failures.
//!
//! # What happens to each record
//! - **Bad data** (undecodable, not JSON, failed validation, rejected or panicking transform,
//!   too large) is permanent: the record (or the one NDJSON document) is written to quarantine
//!   with its reason and raw bytes, and is *not* reported for retry — a retry cannot fix it and
//!   would block the shard.
//! - **Transient failures** (a transform that says [`TransformError::Transient`], a failed write)
//!   are reported in `batchItemFailures` and never quarantined.
//!
//! # Runs and keys
//! Output is written in *runs*: maximal sequences of consecutive documents with the same
//! destination (one partition, or quarantine). A run is one object whose key is the shard and the
//! position (sequence number, document index) of its first document. A run starts either at the
//! first record of a batch or where the destination changes between two neighbouring documents,
//! so the same document starts the same run in every delivery that contains it: a re-delivered
//! run overwrites its object instead of adding a second copy.
//!
//! # Modes
//! - [`Mode::Ordered`] (default for Kinesis): runs are written one after another in sequence
//!   order. At the first record that fails transiently (in the transform, or because its run could
//!   not be written) processing stops; that record and every later one are reported. Nothing
//!   after a failure is written before it, so per-shard order holds in the output.
//! - [`Mode::ReportAll`]: every record is processed and every failure reported (the semantics
//!   of other batch toolkits); runs are written concurrently. A run that directly follows a
//!   transiently failed record is reported instead of written, so that the re-delivery, which
//!   re-joins them, writes one run where this attempt would have started a second.
//!
//! # Outcomes of whole batches
//! - Empty batch: nothing is written, the response is empty (success).
//! - Every record fails transiently (e.g. S3 down): every record is reported, and Lambda retries
//!   the batch from its first record.
//! - An event that is not a Kinesis event at all fails in the runtime before the processor runs:
//!   the invocation errors and the event source mapping retries or bisects it.
//!
//! # Delivery guarantees (see `docs/delivery.md`)
//! Every output document carries a stable `_id` (`shard:sequence:index`). While the event source
//! mapping eventually completes every batch — retried batches, re-delivery from the lowest
//! reported failure, bisected batches after a crash — each document is in exactly one object.
//! When the mapping gives up on a batch (retries exhausted, record too old) after a crashed
//! attempt had written some of it, those documents may also appear in a later batch's object:
//! at least once, de-duplicated downstream by `_id`.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::records::{decompress, documents, for_each_document, BadData, DecodeLimits, Validate};
use crate::sink::{
    daily_partition, hourly_partition, write_json_line, Lead, Location, ObjectStore, ObjectWriter,
    PutObject, SinkError,
};

/// How failures inside a batch are reported. See the module documentation for exact semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Ordered,
    ReportAll,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ordered" => Ok(Mode::Ordered),
            "report-all" | "report_all" | "reportall" => Ok(Mode::ReportAll),
            other => Err(format!("unknown mode {other:?}; use ordered or report-all")),
        }
    }
}

/// What a transform says about a record it cannot turn into output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The record is bad data: quarantine it.
    Reject(String),
    /// Something outside the record failed (a lookup, a dependency): retry the record later.
    Transient(String),
}

/// Where a document came from; handed to the transform.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    pub stream: &'a str,
    pub position: &'a str,
    pub index: u32,
    pub partition_key: Option<&'a str>,
    pub arrival: Option<DateTime<Utc>>,
}

/// The user's part of a pipeline: typed input → typed output, and the output's event time.
pub trait Transform: Send + Sync {
    type Input: DeserializeOwned + Validate;
    type Output: Serialize;
    fn apply(
        &self,
        input: Self::Input,
        ctx: &RecordContext<'_>,
    ) -> Result<Self::Output, TransformError>;
    /// The time that picks the output partition.
    fn event_time(&self, output: &Self::Output) -> DateTime<Utc>;
}

/// One record of any batch source (Kinesis today; SQS and DynamoDB streams fit the same shape).
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// What goes back in `batchItemFailures` (Kinesis: the sequence number; SQS: the message id).
    pub item_identifier: &'a str,
    /// The ordered stream the record belongs to (Kinesis: the shard id).
    pub stream: &'a str,
    /// The record's position in its stream (Kinesis: the sequence number).
    pub position: &'a str,
    pub partition_key: Option<&'a str>,
    pub arrival: Option<DateTime<Utc>>,
    pub data: &'a [u8],
}

/// Where output goes and how it is shaped.
#[derive(Clone)]
pub struct ProcessorConfig {
    pub output: Location,
    pub quarantine: Location,
    pub mode: Mode,
    pub limits: DecodeLimits,
    /// Puts in flight at once in report-all mode.
    pub concurrency: usize,
    /// Source ARN recorded in quarantine entries.
    pub source_arn: Option<String>,
}

/// Counts of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub records_in: usize,
    pub documents_written: usize,
    pub documents_quarantined: usize,
    pub records_failed: usize,
    pub objects_written: usize,
    pub bytes_in: usize,
}

/// The result of one batch: the identifiers to report, counts, and the errors behind failures.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub failures: Vec<String>,
    pub stats: BatchStats,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    // Shared: consecutive documents of one hour point at one string instead of one each.
    Data(Arc<str>),
    Quarantine(String),
}

struct Item {
    record: usize,
    index: u32,
    dest: Dest,
    /// The item's line in [`Prepared::lines`], newline included.
    line: std::ops::Range<usize>,
}

/// Every output line of a batch in one buffer, in item order, so that a run's lines are one
/// contiguous slice: no allocation per line, one compressor call per object.
struct Prepared {
    items: Vec<Item>,
    lines: Vec<u8>,
    transient: Vec<bool>,
}

struct Run {
    first: usize,
    items: std::ops::Range<usize>,
    /// Set in report-all mode for a run that directly follows a transiently failed record.
    held_back: bool,
}

/// The processor for one transform, output layout and store.
pub struct Processor<T: Transform> {
    transform: T,
    store: Arc<dyn ObjectStore>,
    writer: Arc<dyn ObjectWriter>,
    quarantine_writer: Arc<dyn ObjectWriter>,
    config: ProcessorConfig,
}

impl<T: Transform> Processor<T> {
    pub fn new(
        transform: T,
        store: Arc<dyn ObjectStore>,
        writer: Arc<dyn ObjectWriter>,
        quarantine_writer: Arc<dyn ObjectWriter>,
        config: ProcessorConfig,
    ) -> Self {
        Processor {
            transform,
            store,
            writer,
            quarantine_writer,
            config,
        }
    }

    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Processes a batch and returns what to report.
    pub async fn process(&self, records: &[SourceRecord<'_>]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        outcome.stats.records_in = records.len();
        outcome.stats.bytes_in = records.iter().map(|r| r.data.len()).sum();
        let prepared = self.prepare(records, &mut outcome);
        match self.config.mode {
            Mode::Ordered => self.write_ordered(records, &prepared, &mut outcome).await,
            Mode::ReportAll => {
                self.write_report_all(records, &prepared, &mut outcome)
                    .await
            }
        }
        outcome.stats.records_failed = outcome.failures.len();
        outcome
    }

    /// Decodes and transforms every record. Returns the items, their lines and, per record,
    /// whether it failed transiently (its items are then dropped).
    fn prepare(&self, records: &[SourceRecord<'_>], outcome: &mut BatchOutcome) -> Prepared {
        let mut prepared = Prepared {
            items: Vec::with_capacity(records.len()),
            // Output lines are a few hundred bytes, typically smaller than the input record.
            lines: Vec::with_capacity(outcome.stats.bytes_in + records.len() * 64),
            transient: vec![false; records.len()],
        };
        let mut id = String::with_capacity(96);
        let mut partition: Option<(i64, Arc<str>)> = None;
        for (i, rec) in records.iter().enumerate() {
            let (items_start, lines_start) = (prepared.items.len(), prepared.lines.len());
            let decoded =
                for_each_document::<T::Input>(rec.data, self.config.limits, |index, doc| {
                    let ctx = RecordContext {
                        stream: rec.stream,
                        position: rec.position,
                        index,
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
                                Some(index),
                                &bad.raw,
                                &bad.reason,
                            );
                            return ControlFlow::Continue(());
                        }
                    };
                    let start = prepared.lines.len();
                    match self.apply(input, &ctx, &mut id, &mut prepared.lines) {
                        Ok(Ok(time)) => {
                            let hour = time.timestamp().div_euclid(3600);
                            let dest = match &partition {
                                Some((h, p)) if *h == hour => p.clone(),
                                _ => {
                                    let p: Arc<str> = Arc::from(hourly_partition(time));
                                    partition = Some((hour, p.clone()));
                                    p
                                }
                            };
                            prepared.items.push(Item {
                                record: i,
                                index,
                                dest: Dest::Data(dest),
                                line: start..prepared.lines.len(),
                            });
                            ControlFlow::Continue(())
                        }
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
                            let raw = documents_raw(rec.data, self.config.limits, index);
                            self.quarantine_item(&mut prepared, i, rec, Some(index), &raw, &bad);
                            ControlFlow::Continue(())
                        }
                    }
                });
            if let Err(bad) = decoded {
                self.quarantine_item(&mut prepared, i, rec, None, rec.data, &bad);
            }
        }
        prepared
    }

    /// Runs the transform and appends its output line (with `_id`, ending in a newline) to
    /// `lines`. Returns the output's event time; `Ok(Err(_))` is a transient failure. `id` is a
    /// reused buffer for the document's `_id`.
    fn apply(
        &self,
        input: T::Input,
        ctx: &RecordContext<'_>,
        id: &mut String,
        lines: &mut Vec<u8>,
    ) -> Result<Result<DateTime<Utc>, String>, BadData> {
        let applied = catch_unwind(AssertUnwindSafe(|| self.transform.apply(input, ctx)))
            .map_err(|panic| BadData::Panicked(panic_message(&panic)))?;
        let output = match applied {
            Ok(output) => output,
            Err(TransformError::Reject(reason)) => return Err(BadData::Rejected(reason)),
            Err(TransformError::Transient(reason)) => return Ok(Err(reason)),
        };
        let time = self.transform.event_time(&output);
        id.clear();
        id.push_str(ctx.stream);
        id.push(':');
        id.push_str(ctx.position);
        let _ = write!(id, ":{}", ctx.index);
        write_json_line(lines, &[("_id", Lead::Str(id))], &output)
            .map_err(|e| BadData::Rejected(format!("output does not serialise: {e}")))?;
        lines.push(b'\n');
        Ok(Ok(time))
    }

    fn quarantine_item(
        &self,
        prepared: &mut Prepared,
        record: usize,
        rec: &SourceRecord<'_>,
        index: Option<u32>,
        raw: &[u8],
        bad: &BadData,
    ) {
        let arrival = rec.arrival.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let entry = QuarantineEntry {
            id: format!("{}:{}:{}", rec.stream, rec.position, index.unwrap_or(0)),
            kind: bad.kind(),
            reason: bad.to_string(),
            stream: rec.stream,
            position: rec.position,
            document_index: index,
            partition_key: rec.partition_key,
            arrival: rec.arrival,
            source_arn: self.config.source_arn.as_deref(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(raw),
        };
        let start = prepared.lines.len();
        serde_json::to_writer(&mut prepared.lines, &entry).expect("quarantine entry serialises");
        prepared.lines.push(b'\n');
        prepared.items.push(Item {
            record,
            index: index.unwrap_or(0),
            // Quarantine is partitioned by arrival day: stable across deliveries, unlike "now".
            dest: Dest::Quarantine(daily_partition(arrival)),
            line: start..prepared.lines.len(),
        });
    }

    /// Splits items into runs; a transiently failed record between two items breaks a run.
    ///
    /// A record whose documents go to more than one destination ("mixed") also breaks runs before
    /// and after it, so each of its runs starts at a key of its own: when one of them fails and
    /// the record is re-delivered, its other runs overwrite their objects instead of repeating
    /// their documents under a new key.
    fn runs(&self, items: &[Item], transient: &[bool], records: &[SourceRecord<'_>]) -> Vec<Run> {
        let mut mixed = vec![false; records.len()];
        for pair in items.windows(2) {
            if pair[0].record == pair[1].record && pair[0].dest != pair[1].dest {
                mixed[pair[0].record] = true;
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let continues = runs.last().is_some_and(|run| {
                let prev = &items[run.items.end - 1];
                let same_record = prev.record == item.record;
                prev.dest == item.dest
                    && records[prev.record].stream == records[item.record].stream
                    && (same_record || !(mixed[prev.record] || mixed[item.record]))
                    && (same_record || !transient[prev.record + 1..item.record].iter().any(|t| *t))
            });
            if continues {
                runs.last_mut().expect("checked").items.end = n + 1;
            } else {
                // Held back if the record right before this run's first one failed transiently
                // (the run then starts where a re-delivery would not start one).
                let starts_record = n == 0 || items[n - 1].record != item.record;
                let held_back = starts_record && item.record > 0 && transient[item.record - 1];
                runs.push(Run {
                    first: item.record,
                    items: n..n + 1,
                    held_back,
                });
            }
        }
        runs
    }

    fn put_for(&self, run: &Run, prepared: &Prepared, records: &[SourceRecord<'_>]) -> PutObject {
        let items = &prepared.items;
        let first = &items[run.items.start];
        let rec = &records[first.record];
        let (location, writer, partition) = match &first.dest {
            Dest::Data(p) => (&self.config.output, &self.writer, p.as_ref()),
            Dest::Quarantine(p) => (&self.config.quarantine, &self.quarantine_writer, p.as_str()),
        };
        let name = format!(
            "{partition}/{}-{}-{:05}.{}",
            rec.stream,
            rec.position,
            first.index,
            writer.extension()
        );
        // A run is consecutive items, and items' lines are appended in item order.
        let last = &items[run.items.end - 1];
        debug_assert!(
            items[run.items.clone()]
                .windows(2)
                .all(|w| w[0].line.end == w[1].line.start),
            "a run's lines are contiguous"
        );
        let body = writer
            .encode(&prepared.lines[first.line.start..last.line.end])
            .unwrap_or_default();
        PutObject {
            bucket: location.bucket.clone(),
            key: location.key(&name),
            body,
            content_type: writer.content_type(),
        }
    }

    fn count_written(&self, run: &Run, items: &[Item], outcome: &mut BatchOutcome) {
        let n = run.items.len();
        outcome.stats.objects_written += 1;
        match items[run.items.start].dest {
            Dest::Data(_) => outcome.stats.documents_written += n,
            Dest::Quarantine(_) => outcome.stats.documents_quarantined += n,
        }
    }

    async fn write_ordered(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        outcome: &mut BatchOutcome,
    ) {
        let (items, transient) = (&prepared.items, &prepared.transient);
        let cut = transient.iter().position(|t| *t).unwrap_or(records.len());
        let before_cut = items.partition_point(|i| i.record < cut);
        let mut fail_from = cut;
        for run in self.runs(&items[..before_cut], transient, records) {
            let put = self.put_for(&run, prepared, records);
            match self.store.put(put).await {
                Ok(()) => self.count_written(&run, items, outcome),
                Err(e) => {
                    outcome.errors.push(e.to_string());
                    fail_from = run.first;
                    break;
                }
            }
        }
        outcome.failures = records[fail_from..]
            .iter()
            .map(|r| r.item_identifier.to_string())
            .collect();
    }

    async fn write_report_all(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        outcome: &mut BatchOutcome,
    ) {
        let (items, transient) = (&prepared.items, &prepared.transient);
        let runs = self.runs(items, transient, records);
        let mut failed = transient.to_vec();
        let puts: Vec<(usize, PutObject)> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.held_back)
            .map(|(n, r)| (n, self.put_for(r, prepared, records)))
            .collect();
        let results: Vec<(usize, Result<(), SinkError>)> = stream::iter(puts)
            .map(|(n, put)| async move { (n, self.store.put(put).await) })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut written = vec![false; runs.len()];
        for (n, result) in results {
            match result {
                Ok(()) => written[n] = true,
                Err(e) => outcome.errors.push(e.to_string()),
            }
        }
        for (run, ok) in runs.iter().zip(&written) {
            if *ok {
                self.count_written(run, items, outcome);
            } else {
                for item in &items[run.items.clone()] {
                    failed[item.record] = true;
                }
            }
        }
        outcome.failures = records
            .iter()
            .zip(&failed)
            .filter(|(_, f)| **f)
            .map(|(r, _)| r.item_identifier.to_string())
            .collect();
    }
}

#[derive(Serialize)]
struct QuarantineEntry<'a> {
    #[serde(rename = "_id")]
    id: String,
    kind: &'static str,
    reason: String,
    stream: &'a str,
    position: &'a str,
    document_index: Option<u32>,
    partition_key: Option<&'a str>,
    arrival: Option<DateTime<Utc>>,
    source_arn: Option<&'a str>,
    data_base64: String,
}

/// The raw bytes of document `index` of a payload (only needed on the rare rejection path).
fn documents_raw(data: &[u8], limits: DecodeLimits, index: u32) -> Vec<u8> {
    decompress(data, limits)
        .ok()
        .and_then(|p| documents(&p).get(index as usize).map(|d| d.to_vec()))
        .unwrap_or_else(|| data.to_vec())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
