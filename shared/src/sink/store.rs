//! Object stores: where objects are put, read, copied and deleted.
//!
//! [`ObjectStore`] is everything a pipeline does with objects: whole puts (stream runs),
//! multipart uploads (ingest outputs larger than memory), reads of source objects and
//! manifests, server-side copies (quarantining a whole object) and deletes (retiring an old
//! version's outputs). [`super::S3Store`] implements it on S3, [`super::MemoryStore`] in memory,
//! so the same pipeline code runs against either. Keys are chosen by the caller and
//! deterministic, so a repeated put overwrites instead of duplicating.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// What kind of failure a store reported. Every kind is retryable from the data's point of view:
/// the data is fine, the destination was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// 503 SlowDown, throttling codes.
    Throttled,
    /// A timeout while connecting or waiting for the answer.
    Timeout,
    /// No connection, or a 5xx answer.
    Unavailable,
    /// The store refused the request (access denied, no such bucket): needs an operator.
    Rejected,
    /// The writer could not encode the object.
    Encode,
    /// A conditional request lost (`If-Match` on a changed object).
    PreconditionFailed,
}

/// A failed store call, with the object it concerned and the cause's whole chain as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} s3://{bucket}/{key} failed ({kind:?}): {message}")]
pub struct SinkError {
    /// The call (`put`, `get`, `upload part 3`, …).
    pub op: String,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What kind of failure.
    pub kind: SinkErrorKind,
    /// The cause, with every source.
    pub message: String,
}

impl SinkError {
    /// A failure of `op` on `bucket/key`.
    pub fn new(
        op: impl Into<String>,
        bucket: impl Into<String>,
        key: impl Into<String>,
        kind: SinkErrorKind,
        message: impl Into<String>,
    ) -> Self {
        SinkError {
            op: op.into(),
            bucket: bucket.into(),
            key: key.into(),
            kind,
            message: message.into(),
        }
    }
}

/// One object to put.
#[derive(Debug, Clone)]
pub struct PutObject {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The whole body.
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub content_type: &'static str,
}

/// What a store says about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The entity tag, without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub last_modified: Option<DateTime<Utc>>,
}

/// An object's body, read as it streams in.
pub type ObjectReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// A part of a multipart upload, as the store acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1-based part number.
    pub number: i32,
    /// The part's entity tag.
    pub etag: String,
}

/// Puts, reads, copies and deletes objects.
pub trait ObjectStore: Send + Sync {
    /// Puts a whole object (overwrites).
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>>;

    /// The object's metadata; `None` when it does not exist.
    fn head<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, SinkError>>;

    /// Reads an object; `None` when it does not exist. With `if_match`, a changed object fails
    /// with [`SinkErrorKind::PreconditionFailed`].
    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<ObjectReader>, SinkError>>;

    /// Deletes an object (deleting a missing object succeeds).
    fn delete<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Copies `from` (only if its entity tag is still `if_match`) to `to`, inside the store.
    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        if_match: &'a str,
        to: (&'a str, &'a str),
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Starts a multipart upload; returns its id.
    fn start_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        content_type: &'static str,
    ) -> BoxFuture<'a, Result<String, SinkError>>;

    /// Uploads part `number` (1-based; every part but the last at least 5 MiB on S3).
    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        number: i32,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<UploadedPart, SinkError>>;

    /// Completes an upload: the object appears whole, made of `parts` in order.
    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        parts: Vec<UploadedPart>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Abandons an upload and frees its parts.
    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}
