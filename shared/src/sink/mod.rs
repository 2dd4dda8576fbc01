//! Sinks: where output goes and how it is shaped.
//!
//! A [`Sink`] is three parts:
//! - an [`ObjectStore`] that puts, reads, copies and deletes objects ([`S3Store`],
//!   [`MemoryStore`]), including the multipart uploads object ingest streams through;
//! - an [`Encoder`] that turns NDJSON lines into an object's bytes ([`NdjsonGzip`] for curated
//!   output, [`Ndjson`] for quarantine), whole or streamed in parts;
//! - a [`Partitioner`] that picks the Hive-style folder of each output ([`Hourly`], [`Daily`],
//!   [`ByField`]).
//!
//! Object keys are not the sink's choice: the pipeline derives them from the position of each
//! run's first document, which is what makes re-delivery overwrite instead of duplicate.

mod encode;
mod line;
mod memory;
mod partition;
mod s3;
mod store;

use std::sync::Arc;

pub use encode::{EncodeStream, Encoder, Ndjson, NdjsonGzip};
// For the line-writer benchmark only.
#[doc(hidden)]
pub use line::{write_json_line, LeadField};
pub use memory::{MemoryStore, ObjectMap};
pub use partition::{daily_partition, hourly_partition, ByField, Daily, Hourly, Partitioner};
pub(crate) use s3::S3FromEnv;
pub use s3::S3Store;
pub use store::{
    ObjectInfo, ObjectReader, ObjectStore, PutObject, SinkError, SinkErrorKind, StoreReply,
    StoreRequest, UploadedPart,
};

/// A bucket and a key prefix (no leading or trailing slash needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without surrounding slashes.
    pub prefix: String,
}

impl Location {
    /// A location; slashes around the prefix are dropped.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Location {
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_string(),
        }
    }

    /// Joins the prefix and a relative key.
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            [&self.prefix, "/", relative].concat()
        }
    }
}

/// A store, an encoder and a partitioner: everything about where a pipeline's output goes
/// except the keys.
pub struct Sink<O> {
    /// Where objects go.
    pub store: Arc<dyn ObjectStore>,
    /// How curated objects are encoded.
    pub encoder: Arc<dyn Encoder>,
    /// Which partition each output lands in.
    pub partitioner: Arc<dyn Partitioner<O>>,
}

impl<O> Clone for Sink<O> {
    fn clone(&self) -> Self {
        Sink {
            store: self.store.clone(),
            encoder: self.encoder.clone(),
            partitioner: self.partitioner.clone(),
        }
    }
}

impl<O: 'static> Sink<O> {
    /// Gzip NDJSON in hourly partitions of `store`: the stream default.
    pub fn new(store: impl ObjectStore + 'static) -> Self {
        Sink {
            store: Arc::new(store),
            encoder: Arc::new(NdjsonGzip::default()),
            partitioner: Arc::new(Hourly),
        }
    }

    /// The same sink with another encoder.
    pub fn encoder(mut self, encoder: impl Encoder + 'static) -> Self {
        self.encoder = Arc::new(encoder);
        self
    }

    /// The same sink with another partitioner.
    pub fn partitioner(mut self, partitioner: impl Partitioner<O> + 'static) -> Self {
        self.partitioner = Arc::new(partitioner);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_joins_prefix() {
        assert_eq!(
            Location::new("b", "/curated/iot/").key("x.json"),
            "curated/iot/x.json"
        );
        assert_eq!(Location::new("b", "").key("x.json"), "x.json");
    }
}
