//! The user's part of a pipeline: one [`Transform`] trait for stream records and object rows.
//!
//! A transform receives a typed, deserialised input and emits zero, one or many outputs:
//! - zero outputs filter the input out (nothing is written, nothing is quarantined);
//! - several outputs fan it out; each keeps its position among the outputs of its input, so its
//!   document id and object key are the same in every delivery.
//!
//! It refuses an input with [`TransformError::Reject`] (bad data: quarantined, never retried) or
//! [`TransformError::Transient`] (something outside the input failed: retried, never
//! quarantined).
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Click { page: String, at: DateTime<Utc>, bot: bool }
//! #[derive(Serialize)]
//! struct PageView { page: String, at: DateTime<Utc> }
//!
//! struct DropBots;
//! impl Transform for DropBots {
//!     type Input = Click;
//!     type Output = PageView;
//!     fn apply(&self, click: Click, _: &RecordContext<'_>, out: &mut Outputs<PageView>)
//!         -> Result<(), TransformError> {
//!         if !click.bot {
//!             out.push(PageView { page: click.page, at: click.at });
//!         }
//!         Ok(())
//!     }
//!     fn event_time(&self, view: &PageView) -> Option<DateTime<Utc>> {
//!         Some(view.at)
//!     }
//! }
//! ```

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::records::FieldError;

/// Why a transform produced no output for an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The input is bad data: it is quarantined with this reason and not retried.
    #[error("rejected: {0}")]
    Reject(String),
    /// Something outside the input failed (a lookup, a dependency): the input is retried later.
    #[error("failed transiently: {0}")]
    Transient(String),
}

impl TransformError {
    /// A transient failure caused by `err`, with its whole chain of causes in the reason.
    pub fn transient(err: &(dyn std::error::Error + 'static)) -> Self {
        TransformError::Transient(crate::error::chain(err))
    }

    /// A rejection caused by `err`, with its whole chain of causes in the reason.
    pub fn reject(err: &(dyn std::error::Error + 'static)) -> Self {
        TransformError::Reject(crate::error::chain(err))
    }
}

/// Where an input came from; handed to the transform.
///
/// For stream sources `stream` is the ordered stream (Kinesis: the shard id), `position` the
/// record's place in it (the sequence number) and `index` the document's place in the record (a
/// record may hold NDJSON). For object ingest `stream` is the object (`s3://bucket/key`),
/// `position` the line number and `index` 0.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The ordered stream, or the source object.
    pub stream: &'a str,
    /// The record's position in its stream, or the row's line number.
    pub position: &'a str,
    /// The document's index within its payload: 0 for a single JSON document or a row, the
    /// line's for NDJSON, the event's for CloudWatch Logs; for a KPL aggregate, within its user
    /// record (whose number is in `position`).
    pub index: u32,
    /// The record's partition key, for sources that have one.
    pub partition_key: Option<&'a str>,
    /// When the source received the record, when it says.
    pub arrival: Option<DateTime<Utc>>,
}

/// The outputs of one input, in order. A transform pushes as many as it makes.
#[derive(Debug)]
pub struct Outputs<O> {
    items: Vec<O>,
}

impl<O> Default for Outputs<O> {
    fn default() -> Self {
        Outputs { items: Vec::new() }
    }
}

impl<O> Outputs<O> {
    /// Adds one output; its index is the number pushed before it.
    pub fn push(&mut self, output: O) {
        self.items.push(output);
    }

    /// How many outputs were pushed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none was pushed (the input is filtered out).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Takes the outputs with their indexes, leaving the collector empty for the next input.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, O)> + '_ {
        self.items.drain(..).enumerate().map(|(i, o)| (i as u32, o))
    }

    /// Forgets every pushed output (used when the input fails after pushing some).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// Turns typed inputs into typed outputs. The same trait serves stream records and object rows.
pub trait Transform: Send + Sync + 'static {
    /// One input document (a JSON document of a record, or a CSV/NDJSON row).
    type Input: DeserializeOwned + Send + 'static;
    /// One output document, written as a JSON object.
    type Output: Serialize + Send + 'static;

    /// Field rules of an input, checked before [`Transform::apply`]. Report every broken rule.
    /// None by default; types that implement [`crate::records::Validate`] can forward to it.
    fn validate(&self, _input: &Self::Input) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    /// Whether the pipeline awaits [`Transform::enrich`] before `apply`. Off by default: a
    /// transform without lookups stays on the synchronous path.
    const ENRICHES: bool = false;

    /// An awaited step between validation and [`Transform::apply`] — a lookup in DynamoDB, an
    /// HTTP API, a cache — that returns the input with what it found filled in. Runs only when
    /// [`Transform::ENRICHES`] is set. A lookup that fails is [`TransformError::Transient`]: the
    /// record is reported and retried, never quarantined; [`TransformError::Reject`]
    /// quarantines the document. On stream sources a batch's lookups run concurrently (up to
    /// `WRITE_CONCURRENCY`), one partition key (shard key, message group) at a time in record
    /// order; object ingest awaits them row by row.
    fn enrich(
        &self,
        input: Self::Input,
        _ctx: &RecordContext<'_>,
    ) -> impl std::future::Future<Output = Result<Self::Input, TransformError>> + Send {
        std::future::ready(Ok(input))
    }

    /// Pushes the input's outputs (none, one or several) or says why there are none.
    fn apply(
        &self,
        input: Self::Input,
        ctx: &RecordContext<'_>,
        out: &mut Outputs<Self::Output>,
    ) -> Result<(), TransformError>;

    /// The time that picks the output's partition. `None` (the default) falls back to the
    /// record's arrival time on stream sources and to the object's day on ingest: both are the
    /// same in every delivery, unlike the clock.
    fn event_time(&self, _output: &Self::Output) -> Option<DateTime<Utc>> {
        None
    }

    /// The output's own id, written as `_id`. `None` (the default) uses
    /// `stream:position:index`, with `:n` appended for the n-th output (n ≥ 1) of one input.
    fn document_id(&self, _output: &Self::Output) -> Option<String> {
        None
    }
}

/// Writes the default document id (`stream:position:index`, then `:n` for fan-out output n ≥ 1)
/// into `id`, replacing what it held.
pub fn default_document_id(id: &mut String, ctx: &RecordContext<'_>, output: u32) {
    // Digits with itoa: `write!` costs more than the rest of the id, once per output document.
    let mut digits = itoa::Buffer::new();
    id.clear();
    id.push_str(ctx.stream);
    id.push(':');
    id.push_str(ctx.position);
    id.push(':');
    id.push_str(digits.format(ctx.index));
    if output > 0 {
        id.push(':');
        id.push_str(digits.format(output));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RecordContext<'static> {
        RecordContext {
            stream: "shardId-000000000001",
            position: "49590",
            index: 2,
            partition_key: None,
            arrival: None,
        }
    }

    #[test]
    fn default_ids_name_the_stream_position_document_and_fan_out_output() {
        let mut id = String::from("stale");
        default_document_id(&mut id, &ctx(), 0);
        assert_eq!(id, "shardId-000000000001:49590:2");
        default_document_id(&mut id, &ctx(), 3);
        assert_eq!(id, "shardId-000000000001:49590:2:3");
    }

    #[test]
    fn outputs_keep_their_order_and_indexes() {
        let mut out = Outputs::default();
        out.push("a");
        out.push("b");
        assert_eq!(out.len(), 2);
        let drained: Vec<_> = out.drain().collect();
        assert_eq!(drained, [(0, "a"), (1, "b")]);
        assert!(out.is_empty());
    }

    #[test]
    fn errors_keep_their_causes_in_the_reason() {
        #[derive(Debug, thiserror::Error)]
        #[error("lookup failed")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(
            TransformError::transient(&e),
            TransformError::Transient("lookup failed: connection reset".into())
        );
        assert_eq!(
            TransformError::reject(&e).to_string(),
            "rejected: lookup failed: connection reset"
        );
    }
}
