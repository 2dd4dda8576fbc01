//! The decode and transform step: every record's documents decoded, validated and transformed,
//! each output an item with its partition, `_id` and line; bad data a quarantine item.

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::records::{
    document_bytes, for_each_document, parse_document, BadData, BadDocument, Document, Place,
};
use crate::source::{BatchOutcome, SourceRecord};
use crate::transform::{RecordContext, Transform};

use super::apply::{self, Scratch};
use super::plan::{Dest, Item, Prepared};
use super::run_names::shared_partition;
use super::Processor;

impl<T: Transform> Processor<T> {
    /// Decodes and transforms every record — or, where `places` gives a record's place, its
    /// bytes as that one document (a redriven quarantine entry). Returns the items, their lines
    /// and, per record, whether it failed transiently (its items are then dropped).
    pub(super) fn prepare(
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
}
