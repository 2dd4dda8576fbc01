//! The decode and transform step: every record's documents decoded, validated, enriched when
//! the transform awaits lookups, and transformed; each output an item with its partition, `_id`
//! and line; bad data a quarantine item.

use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use futures::FutureExt as _;

use crate::records::{
    document_bytes, for_each_document, parse_document, BadData, BadDocument, Document, Place,
};
use crate::source::{BatchOutcome, SourceRecord};
use crate::transform::{RecordContext, Transform, TransformError};

use super::apply::{self, Scratch};
use super::plan::{Dest, Item, Prepared};
use super::run_names::shared_partition;
use super::Processor;

/// The step's state across a batch's documents.
struct Preparing<'o, O> {
    prepared: Prepared,
    scratch: Scratch<O>,
    last_partition: Option<Arc<str>>,
    outcome: &'o mut BatchOutcome,
}

/// Why a document reaches the transform with no input.
enum Unready {
    /// It did not decode or validate.
    Bad(BadDocument),
    /// Its lookup failed transiently.
    Transient(String),
    /// Its lookup refused it or panicked.
    Refused(BadData),
}

/// A decoded document waiting for its lookup, with its place owned (a log event's id lives in
/// the decoded payload, which is gone by then).
struct Pending<I> {
    record: usize,
    ordinal: u32,
    sub_record: Option<u32>,
    index: u32,
    id: Option<String>,
    doc: Result<I, Unready>,
}

/// The place of a pending document, from its fields (so that its `doc` can move on its own).
fn place_of(ordinal: u32, sub_record: Option<u32>, index: u32, id: &Option<String>) -> Place<'_> {
    Place {
        ordinal,
        sub_record,
        index,
        id: id.as_deref(),
    }
}

/// The context a document is enriched and transformed in. Its position is its record's, or
/// `<sequence>:<user record>` for a KPL user record's documents (written into `buf`).
fn context<'a>(
    rec: &SourceRecord<'a>,
    place: &Place<'_>,
    buf: &'a mut String,
) -> RecordContext<'a> {
    let position = match place.sub_record {
        Some(j) => {
            *buf = format!("{}:{j}", rec.position);
            buf.as_str()
        }
        None => rec.position,
    };
    RecordContext {
        stream: rec.stream,
        position,
        index: place.index,
        partition_key: rec.partition_key,
        arrival: rec.arrival,
    }
}

impl<T: Transform> Processor<T> {
    /// Decodes and transforms every record — or, where `places` gives a record's place, its
    /// bytes as that one document (a redriven quarantine entry). Returns the items, their lines
    /// and, per record, whether it failed transiently (its items are then dropped). A transform
    /// that enriches has its lookups awaited first.
    pub(super) async fn prepare(
        &self,
        records: &[SourceRecord<'_>],
        places: Option<&[Option<Place<'_>>]>,
        outcome: &mut BatchOutcome,
    ) -> Prepared {
        match T::ENRICHES {
            false => self.prepare_now(records, places, outcome),
            true => self.prepare_enriched(records, places, outcome).await,
        }
    }

    fn preparing<'o>(
        &self,
        records: &[SourceRecord<'_>],
        outcome: &'o mut BatchOutcome,
    ) -> Preparing<'o, T::Output> {
        Preparing {
            prepared: Prepared {
                items: Vec::with_capacity(records.len()),
                // Output lines are a few hundred bytes, typically smaller than the input record.
                lines: Vec::with_capacity(outcome.stats.bytes_in + records.len() * 64),
                transient: vec![false; records.len()],
            },
            scratch: Scratch::default(),
            last_partition: None,
            outcome,
        }
    }

    /// The synchronous path: each document transformed as it is decoded.
    fn prepare_now(
        &self,
        records: &[SourceRecord<'_>],
        places: Option<&[Option<Place<'_>>]>,
        outcome: &mut BatchOutcome,
    ) -> Prepared {
        let mut st = self.preparing(records, outcome);
        for (i, rec) in records.iter().enumerate() {
            let start = (st.prepared.items.len(), st.prepared.lines.len());
            let decoded = self.decode(rec, places.and_then(|p| p[i]), |place, doc| {
                let doc = doc.map_err(Unready::Bad);
                self.document(&mut st, i, rec, place, doc, start)
            });
            if let Err(bad) = decoded {
                self.quarantine_item(&mut st.prepared, i, rec, None, rec.data, &bad);
            }
        }
        st.prepared
    }

    /// The enriching path: every document decoded, the lookups awaited (one partition key at a
    /// time, keys concurrently), then each document transformed in record order.
    async fn prepare_enriched(
        &self,
        records: &[SourceRecord<'_>],
        places: Option<&[Option<Place<'_>>]>,
        outcome: &mut BatchOutcome,
    ) -> Prepared {
        let mut pending: Vec<Pending<T::Input>> = Vec::new();
        let mut whole_record_bad = vec![None; records.len()];
        for (i, rec) in records.iter().enumerate() {
            let decoded = self.decode(rec, places.and_then(|p| p[i]), |place, doc| {
                pending.push(Pending {
                    record: i,
                    ordinal: place.ordinal,
                    sub_record: place.sub_record,
                    index: place.index,
                    id: place.id.map(str::to_string),
                    doc: doc.map_err(Unready::Bad),
                });
                ControlFlow::Continue(())
            });
            whole_record_bad[i] = decoded.err();
        }
        let pending = self.enrich_all(records, pending).await;
        let mut st = self.preparing(records, outcome);
        let mut docs = pending.into_iter().peekable();
        for (i, rec) in records.iter().enumerate() {
            let start = (st.prepared.items.len(), st.prepared.lines.len());
            let mut stopped = false;
            while let Some(doc) = docs.next_if(|d| d.record == i) {
                if stopped {
                    continue;
                }
                let place = place_of(doc.ordinal, doc.sub_record, doc.index, &doc.id);
                stopped = self
                    .document(&mut st, i, rec, place, doc.doc, start)
                    .is_break();
            }
            // A record that failed transiently is reported whole: nothing of it is written.
            if let (Some(bad), false) = (&whole_record_bad[i], stopped) {
                self.quarantine_item(&mut st.prepared, i, rec, None, rec.data, bad);
            }
        }
        st.prepared
    }

    /// Awaits every decoded document's lookup: the documents of one partition key in order,
    /// keys concurrently up to the write concurrency. A panicking lookup refuses its document.
    async fn enrich_all(
        &self,
        records: &[SourceRecord<'_>],
        pending: Vec<Pending<T::Input>>,
    ) -> Vec<Pending<T::Input>> {
        let mut lanes: Vec<Vec<Pending<T::Input>>> = Vec::new();
        let mut lane_of_key = std::collections::HashMap::new();
        for doc in pending {
            let lane = match records[doc.record].partition_key {
                Some(key) => *lane_of_key.entry(key).or_insert_with(|| {
                    lanes.push(Vec::new());
                    lanes.len() - 1
                }),
                None => {
                    lanes.push(Vec::new());
                    lanes.len() - 1
                }
            };
            lanes[lane].push(doc);
        }
        let enriched: Vec<Vec<Pending<T::Input>>> = stream::iter(lanes)
            .map(|lane| async move {
                let mut done = Vec::with_capacity(lane.len());
                for mut doc in lane {
                    if let Ok(input) = doc.doc {
                        let rec = &records[doc.record];
                        let place = place_of(doc.ordinal, doc.sub_record, doc.index, &doc.id);
                        let mut buf = String::new();
                        let ctx = context(rec, &place, &mut buf);
                        let looked_up = AssertUnwindSafe(self.transform.enrich(input, &ctx))
                            .catch_unwind()
                            .await;
                        doc.doc = match looked_up {
                            Ok(Ok(input)) => Ok(input),
                            Ok(Err(TransformError::Transient(reason))) => {
                                Err(Unready::Transient(reason))
                            }
                            Ok(Err(TransformError::Reject(reason))) => {
                                Err(Unready::Refused(BadData::Rejected(reason)))
                            }
                            Err(panic) => Err(Unready::Refused(BadData::Panicked(
                                apply::panic_message(&panic),
                            ))),
                        };
                    }
                    done.push(doc);
                }
                done
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut all: Vec<Pending<T::Input>> = enriched.into_iter().flatten().collect();
        // Back in record order, and within a record in document order.
        all.sort_by_key(|d| (d.record, d.ordinal));
        all
    }

    /// The documents of one record (or its one redriven document at `place`), each handed to
    /// `visit` as it is decoded. `Err`: the whole record is bad.
    fn decode(
        &self,
        rec: &SourceRecord<'_>,
        place: Option<Place<'_>>,
        mut visit: impl FnMut(Place<'_>, Document<T::Input>) -> ControlFlow<()>,
    ) -> Result<(), BadData> {
        let check = |input: &T::Input| self.transform.validate(input);
        match place {
            Some(place) => {
                let doc =
                    parse_document::<T::Input>(rec.data, &check).map_err(|reason| BadDocument {
                        reason,
                        raw: rec.data.to_vec(),
                    });
                let _ = visit(place, doc);
                Ok(())
            }
            None => for_each_document::<T::Input>(rec.data, self.config.limits, &check, visit),
        }
    }

    /// One document of record `i` through the transform. `start` is where the record's items and
    /// lines began: a transient failure drops them all and stops the record.
    fn document(
        &self,
        st: &mut Preparing<'_, T::Output>,
        i: usize,
        rec: &SourceRecord<'_>,
        place: Place<'_>,
        doc: Result<T::Input, Unready>,
        (items_start, lines_start): (usize, usize),
    ) -> ControlFlow<()> {
        let mut buf = String::new();
        let ctx = context(rec, &place, &mut buf);
        let applied = match doc {
            Ok(input) => self.apply(
                input,
                &ctx,
                (i, place.ordinal, place.id),
                &mut st.scratch,
                &mut st.last_partition,
                &mut st.prepared,
            ),
            Err(Unready::Bad(bad)) => {
                self.quarantine_item(&mut st.prepared, i, rec, Some(place), &bad.raw, &bad.reason);
                return ControlFlow::Continue(());
            }
            Err(Unready::Transient(reason)) => Ok(Err(reason)),
            Err(Unready::Refused(bad)) => Err(bad),
        };
        match applied {
            Ok(Ok(())) => ControlFlow::Continue(()),
            Ok(Err(reason)) => {
                st.prepared.transient[i] = true;
                st.outcome.errors.push(format!(
                    "{}:{} transform failed transiently: {reason}",
                    rec.stream, rec.position
                ));
                st.prepared.items.truncate(items_start);
                st.prepared.lines.truncate(lines_start);
                ControlFlow::Break(())
            }
            Err(bad) => {
                // The transform refused or panicked: quarantine the document as parsed.
                let raw = document_bytes(rec.data, self.config.limits, place.ordinal)
                    .unwrap_or_else(|| rec.data.to_vec());
                self.quarantine_item(&mut st.prepared, i, rec, Some(place), &raw, &bad);
                ControlFlow::Continue(())
            }
        }
    }

    /// Runs the transform and appends one item and line (with `_id`, ending in a newline) per
    /// output. `Ok(Err(_))` is a transient failure; `Err` is bad data. On either, nothing of this
    /// document stays in `prepared`.
    fn apply(
        &self,
        input: T::Input,
        ctx: &RecordContext<'_>,
        (record, ordinal, own_id): (usize, u32, Option<&str>),
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
                &[("_id", crate::sink::LeadField::Str(id))],
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
                ordinal,
                output: n,
                dest: Dest::Data(dest),
                line: start..prepared.lines.len(),
                observed,
                probes,
            });
        }
        Ok(Ok(()))
    }
}
