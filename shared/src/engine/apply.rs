//! One input through the transform, its outputs into JSON lines: the step the stream processor
//! and object ingest share, so both classify failures and name, partition and id outputs alike.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chrono::{DateTime, Utc};

use crate::records::BadData;
use crate::sink::{write_json_line, LeadField, Partitioner};
use crate::transform::{default_document_id, Outputs, RecordContext, Transform, TransformError};

/// Fields a caller may add after `_id` at the front of every line.
const MAX_LEAD: usize = 3;

/// Buffers reused from one input to the next.
pub(crate) struct Scratch<O> {
    outputs: Outputs<O>,
    id: String,
    path: String,
}

impl<O> Scratch<O> {
    /// The outputs, id and path buffers, for a caller that writes its lines itself.
    pub(crate) fn parts(&mut self) -> (&mut Outputs<O>, &mut String, &mut String) {
        (&mut self.outputs, &mut self.id, &mut self.path)
    }
}

impl<O> Default for Scratch<O> {
    fn default() -> Self {
        Scratch {
            outputs: Outputs::default(),
            id: String::with_capacity(96),
            path: String::with_capacity(32),
        }
    }
}

/// Runs the transform on one input, catching a panic; its outputs wait in `scratch`.
/// `Ok(None)`: done; `Ok(Some(reason))`: a transient failure; `Err`: bad data (rejected or
/// panicked).
#[inline]
pub(crate) fn apply<T: Transform>(
    transform: &T,
    input: T::Input,
    ctx: &RecordContext<'_>,
    scratch: &mut Scratch<T::Output>,
) -> Result<Option<String>, BadData> {
    let outputs = &mut scratch.outputs;
    outputs.clear();
    let applied = catch_unwind(AssertUnwindSafe(|| transform.apply(input, ctx, outputs)))
        .map_err(|panic| BadData::Panicked(panic_message(&panic)))?;
    match applied {
        Ok(()) => Ok(None),
        Err(TransformError::Reject(reason)) => Err(BadData::Rejected(reason)),
        Err(TransformError::Transient(reason)) => Ok(Some(reason)),
    }
}

/// Appends every output [`apply`] left in `scratch` to `lines` as one JSON line (`_id`, then
/// `lead`, then the output's fields; no newline) and hands `each` its output index, partition
/// path and line range. The event time falls back to `default_time`; the id to
/// [`default_document_id`]. An output that does not serialise is bad data: the caller drops what
/// this input added.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn write_lines<T: Transform>(
    transform: &T,
    partitioner: &dyn Partitioner<T::Output>,
    ctx: &RecordContext<'_>,
    default_time: DateTime<Utc>,
    lead: &[(&str, LeadField<'_>)],
    scratch: &mut Scratch<T::Output>,
    lines: &mut Vec<u8>,
    mut each: impl FnMut(u32, &str, Range<usize>),
) -> Result<(), BadData> {
    let Scratch { outputs, id, path } = scratch;
    let extra = lead.len().min(MAX_LEAD);
    for (n, output) in outputs.drain() {
        let time = transform.event_time(&output).unwrap_or(default_time);
        path.clear();
        partitioner.write(&output, time, path);
        let custom = transform.document_id(&output);
        let id = match &custom {
            Some(id) => id.as_str(),
            None => {
                default_document_id(id, ctx, n);
                id.as_str()
            }
        };
        let mut fields = [("_id", LeadField::Str(id)); MAX_LEAD + 1];
        fields[1..=extra].copy_from_slice(&lead[..extra]);
        let start = lines.len();
        write_json_line(lines, &fields[..=extra], &output)
            .map_err(|e| BadData::Rejected(format!("output does not serialise: {e}")))?;
        each(n, path, start..lines.len());
    }
    Ok(())
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
