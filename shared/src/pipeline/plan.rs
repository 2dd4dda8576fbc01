//! A batch as the processor plans it: every output an item with its destination and line, the
//! lines in one buffer, and the runs that group consecutive items into objects.

use std::sync::Arc;

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
    pub(super) index: u32,
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
    pub(super) held_back: bool,
}
