//! Test support for users of the framework and for its own tests (feature `testing`): models of
//! the re-delivery of the Kinesis event source mapping ([`esm`]), of an SQS queue ([`queue`]) and
//! of a Kafka mapping's partitions ([`partitions`]), of a mapping with tumbling windows
//! ([`windows`]), a store that fails on demand
//! ([`FaultyStore`]) to reach the failure paths no emulator produces at will, and readers of what
//! a pipeline wrote ([`documents_under`], [`ndjson_documents`]).

mod documents;
pub mod esm;
mod faulty_store;
// The fuzz targets' bodies, kept here so that the regression tests run them too.
#[doc(hidden)]
pub mod fuzz;
pub mod partitions;
pub mod queue;
pub mod windows;

pub use documents::{documents_under, ndjson_documents, DocumentsError};
pub use faulty_store::{FaultFn, FaultyStore};
