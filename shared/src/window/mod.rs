//! Analytics on the stream: windowed aggregates that stay exactly once.
//!
//! An [`Aggregation`] describes what to compute over a pipeline's curated outputs: grouping keys
//! (a device id), a tumbling window (by event time or arrival time) and mergeable measures
//! (count, sum, min, max, stats with the mean, the last value, a distinct-count sketch). Given to
//! a pipeline with [`StreamPipeline::aggregate`](crate::pipeline::StreamPipeline::aggregate), it
//! runs in the same function, on the same validated outputs that land, in the same pass:
//!
//! - each run of curated output (one object, keyed by the position of its first document) also
//!   writes a **pane**: one row per key and window with the partial aggregate of that run's
//!   documents, in an object named like the run's under the pane location;
//! - a re-delivered run rewrites its pane under the same key, exactly as it rewrites its data, so
//!   retries, bisected batches and crashes never count a document twice, and a run that comes
//!   back shorter overwrites the longer one (every data run writes its pane, even an empty one);
//! - panes of every shard, batch and late arrival are merged when read, into one row per key and
//!   window: [`Aggregation::merge_sql`] is the query (an Athena view on AWS), and
//!   [`Aggregation::merge_panes`] computes the same rows in Rust.
//!
//! Late data needs no special case: a late document adds a pane to its old window, and the next
//! read of the merge counts it. There is no lateness bound and no "final" row; a query reads the
//! windows as of the panes it finds.
//!
//! Why the same function: the outputs are already decoded, validated and transformed there; a
//! second function on the stream would read, decode and validate every record again, and its
//! panes would need keys of their own for the same exactly-once argument. A pane is written
//! before its run's data object, so any data a query sees is already counted (the pane of a run
//! whose data put then fails is rewritten with it on the retry).
//!
//! Limits: panes are written for sources whose output the function writes (not Firehose, whose
//! output goes back to the delivery stream: refused when the pipeline is built). When an event
//! source mapping gives up on a batch after a crashed attempt wrote part of it, the documents a
//! later batch writes again are counted twice in the merge, just as they land twice by `_id`.
//!
//! A [`Rule`] is checked on the same outputs as they land (a value beyond a limit, once or `n`
//! times in a row per key); its matches are published as alerts, at most once per rule, key and
//! window ([`AlertSink`], [`AlertPublisher`]). Given with [`StreamPipeline::rule`](crate::pipeline::StreamPipeline::rule).

mod aggregation;
mod alerts;
mod panes;
mod rules;
mod sketch;
mod sql;
mod state;
pub(crate) mod tumbling;

pub use aggregation::Aggregation;
pub(crate) use aggregation::Observation;
#[cfg(feature = "eventbridge")]
pub use alerts::EventBridgeAlerts;
pub use alerts::{
    Alert, AlertError, AlertPublisher, AlertSink, MemoryAlerts, ALERT_DETAIL_TYPE, ALERT_SOURCE,
};
pub use panes::{PaneError, PaneSink};
pub(crate) use rules::Probe;
pub use rules::{Condition, Rule};
pub use sql::AggregationError;
pub use tumbling::{STATE_KEY, STATE_LIMIT};
