//! A batch as the processor plans it: every output an item with its destination and line, the
//! lines in one buffer, and the runs that group consecutive items into objects. No I/O.

use std::sync::Arc;

use crate::source::SourceRecord;
use crate::window::{Observation, Probe};

/// Where an item goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dest {
    // Shared: consecutive documents of one partition point at one string instead of one each.
    Data(Arc<str>),
    Quarantine(String),
}

/// One output (or one quarantined document) of a record.
pub(super) struct Item {
    pub(super) record: usize,
    /// The document's ordinal in its record (see [`Place::ordinal`](crate::records::Place)).
    pub(super) ordinal: u32,
    /// The output's index among the outputs of its document (fan-out).
    pub(super) output: u32,
    pub(super) dest: Dest,
    /// The item's line in [`Prepared::lines`], newline included.
    pub(super) line: std::ops::Range<usize>,
    /// What the item adds to its run's pane, when the pipeline aggregates.
    pub(super) observed: Option<Box<Observation>>,
    /// What the pipeline's rules see of the output.
    pub(super) probes: Vec<Probe>,
}

/// Every output line of a batch in one buffer, in item order, so that a run's lines are one
/// contiguous slice: no allocation per line, one compressor call per object.
pub(super) struct Prepared {
    pub(super) items: Vec<Item>,
    pub(super) lines: Vec<u8>,
    pub(super) transient: Vec<bool>,
}

/// Consecutive items with one destination: one object, named after its first item.
pub(super) struct Run {
    pub(super) first: usize,
    pub(super) items: std::ops::Range<usize>,
    /// Set for a run that a transiently failed record precedes with no output in between.
    pub(super) behind_failure: bool,
}

/// Splits items into runs; a record reported before writing (`blocked`) between two items
/// breaks a run, and with `per_record` (a source that regroups re-deliveries, or a redrive)
/// every record starts its own runs.
///
/// A record whose documents go to more than one destination ("mixed") also breaks runs before
/// and after it, so each of its runs starts at a key of its own: when one of them fails and
/// the record is re-delivered, its other runs overwrite their objects instead of repeating
/// their documents under a new key.
pub(super) fn runs(
    items: &[Item],
    blocked: &[bool],
    records: &[SourceRecord<'_>],
    per_record: bool,
) -> Vec<Run> {
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
            let behind_failure = !per_record
                && blocked[after.min(item.record)..item.record]
                    .iter()
                    .any(|t| *t);
            runs.push(Run {
                first: item.record,
                items: n..n + 1,
                behind_failure,
            });
        }
    }
    runs
}
