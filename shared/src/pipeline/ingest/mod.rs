//! Batch ingest of S3 objects: stream rows through the pipeline's [`Transform`], land them
//! curated and partitioned (by day by default), quarantine bad rows, write a manifest per object,
//! then run the [`IngestHook`] (e.g. the Glue trigger of the `glue` feature, which starts the
//! day's job once its input is complete).
//!
//! ```no_run
//! # use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
//! # struct Orders;
//! # impl Transform for Orders {
//! #     type Input = serde_json::Value;
//! #     type Output = serde_json::Value;
//! #     fn apply(&self, v: serde_json::Value, _: &RecordContext<'_>, out: &mut Outputs<serde_json::Value>)
//! #         -> Result<(), TransformError> { out.push(v); Ok(()) }
//! # }
//! # async fn main_() -> Result<(), lambda_runtime::Error> {
//! use runnel::prelude::*;
//! Pipeline::new("orders").source(S3Objects).transform(Orders).run().await
//! # }
//! ```
//!
//! # Rows
//! Objects are CSV with a header or NDJSON (`.csv`, `.ndjson`, `.jsonl`, `.json`, each optionally
//! `.gz`), read one bounded line at a time. Each row is the transform's input; its context names
//! the object (`s3://bucket/key`) as the stream and the line number as the position. Bad rows
//! (not CSV/JSON, failed validation, rejected, panicking, too long) go to quarantine with their
//! line and reason; a transient failure fails the object, and the invocation, so Lambda retries.
//! Quarantined rows are entries like a stream's ([`crate::pipeline::redrive::QuarantinedEntry`]);
//! `runnel quarantine redrive` sends them back to the ingest function, which reads each again
//! through the current transform (see [`Ingest::redrive`]).
//!
//! # Idempotency
//! Output keys derive from the source key and its ETag, so processing the same version again
//! overwrites. The manifest (`<state>/<bucket>/<key>.manifest.json`) records the ETag it was
//! made from: a duplicate delivery of a version already ingested is recognised and skipped.
//! A new version of the same key writes new outputs, then deletes the outputs of the version it
//! replaces (listed in the old manifest), so readers never see a partial mix.
//!
//! [`Transform`]: crate::transform::Transform

mod config;
mod csv_line;
mod hook;
pub(crate) mod index;
mod keys;
mod lambda;
mod manifest;
mod object;
mod reader;
mod redrive;
mod stream;
mod upload;

pub use config::IngestConfig;
pub use hook::{HookConfig, HookReport, IngestHook};
pub use index::index_key;
pub use keys::folder;
pub(crate) use keys::short_etag;
pub use lambda::{describe, handle, HandleError, IngestPipeline, IngestRunner};
pub use manifest::{Manifest, ManifestStatus, ObjectOutcome};
pub use object::{Ingest, IngestError};
#[cfg(feature = "testing")]
pub(crate) use reader::read_rows;
pub use reader::{ObjectFormat, ObjectProblem, ReadError, Row, RowFormat, SourceReader};
pub use stream::{ReadCounts, Streamed};
pub use upload::{PartError, UploadError, Written};
