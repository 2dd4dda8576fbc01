//! Ready-made applications built on the framework, each behind its cargo feature so a function
//! compiles (and links the SDK clients of) only the apps it uses:
//! - `alert`: failure reports → alerts on SNS, with duplicate suppression;
//! - `glue`: `glue_trigger`, the ingest hook that starts the day's Glue job run once its input
//!   is complete;
//! - `producer`: PutRecords batching with retry of failed records;
//! - `replay`: replaying a batch an event source mapping gave up on.
//!
//! Apps sit at the edge: they use the rest of the crate, nothing else uses them, and they do not
//! use each other.

#[cfg(feature = "alert")]
pub mod alert;
#[cfg(feature = "glue")]
pub mod glue_trigger;
#[cfg(feature = "producer")]
pub mod producer;
#[cfg(feature = "replay")]
pub mod replay;
