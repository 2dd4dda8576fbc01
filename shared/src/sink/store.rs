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

/// The cause of a store failure, shared so that errors stay cheap to clone.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A failed store call, with the object it concerned; the cause is kept as the error's source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} s3://{bucket}/{key} failed ({kind:?})")]
pub struct SinkError {
    /// The call (`put`, `get`, `upload part 3`, …).
    pub op: String,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What kind of failure.
    pub kind: SinkErrorKind,
    /// Why: the SDK's error, or the store's own reason.
    #[source]
    pub source: Cause,
}

impl SinkError {
    /// A failure of `op` on `bucket/key` caused by `source` (an error, or a reason as text).
    pub fn new(
        op: impl Into<String>,
        bucket: impl Into<String>,
        key: impl Into<String>,
        kind: SinkErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        SinkError {
            op: op.into(),
            bucket: bucket.into(),
            key: key.into(),
            kind,
            source: Cause::from(source.into()),
        }
    }
}

/// Equal when the call, object, kind and cause's text are.
impl PartialEq for SinkError {
    fn eq(&self, other: &Self) -> bool {
        (&self.op, &self.bucket, &self.key, self.kind)
            == (&other.op, &other.bucket, &other.key, other.kind)
            && self.source.to_string() == other.source.to_string()
    }
}

impl Eq for SinkError {}

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

/// One call to a store. Implementations answer each with the [`StoreReply`] its typed method
/// on [`ObjectStore`] expects; wrappers (fault injection, metrics) see every call in one place.
#[derive(Debug)]
pub enum StoreRequest<'a> {
    /// Put a whole object (overwrites). Reply: `Done`.
    Put(PutObject),
    /// An object's metadata. Reply: `Info` (`None` when it does not exist).
    Head {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
    },
    /// Read an object; with `if_match`, a changed object fails with
    /// [`SinkErrorKind::PreconditionFailed`]. Reply: `Body` (`None` when it does not exist).
    Get {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
        /// The entity tag the object must still have.
        if_match: Option<&'a str>,
    },
    /// Delete an object (a missing object succeeds). Reply: `Done`.
    Delete {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
    },
    /// Copy `from` (only if its entity tag is still `if_match`) to `to`, inside the store.
    /// Reply: `Done`.
    Copy {
        /// Source bucket and key.
        from: (&'a str, &'a str),
        /// The entity tag the source must still have.
        if_match: &'a str,
        /// Destination bucket and key.
        to: (&'a str, &'a str),
    },
    /// Start a multipart upload. Reply: `UploadId`.
    StartUpload {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
        /// The object's `Content-Type`.
        content_type: &'static str,
    },
    /// Upload part `number` (1-based; every part but the last at least 5 MiB on S3).
    /// Reply: `Part`.
    UploadPart {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
        /// The upload.
        upload_id: &'a str,
        /// 1-based part number.
        number: i32,
        /// The part's bytes.
        data: Vec<u8>,
    },
    /// Complete an upload: the object appears whole, made of `parts` in order. Reply: `Done`.
    CompleteUpload {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
        /// The upload.
        upload_id: &'a str,
        /// The parts, in order.
        parts: Vec<UploadedPart>,
    },
    /// Abandon an upload and free its parts. Reply: `Done`.
    AbortUpload {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
        /// The upload.
        upload_id: &'a str,
    },
}

impl StoreRequest<'_> {
    /// The call's name, bucket and key, for errors.
    pub fn target(&self) -> (&'static str, &str, &str) {
        match self {
            StoreRequest::Put(p) => ("put", &p.bucket, &p.key),
            StoreRequest::Head { bucket, key } => ("head", bucket, key),
            StoreRequest::Get { bucket, key, .. } => ("get", bucket, key),
            StoreRequest::Delete { bucket, key } => ("delete", bucket, key),
            StoreRequest::Copy { to, .. } => ("copy", to.0, to.1),
            StoreRequest::StartUpload { bucket, key, .. } => ("start upload", bucket, key),
            StoreRequest::UploadPart { bucket, key, .. } => ("upload part", bucket, key),
            StoreRequest::CompleteUpload { bucket, key, .. } => ("complete upload", bucket, key),
            StoreRequest::AbortUpload { bucket, key, .. } => ("abort upload", bucket, key),
        }
    }
}

/// A store's answer to one [`StoreRequest`].
pub enum StoreReply {
    /// The call succeeded and returns nothing.
    Done,
    /// Metadata, or `None` for a missing object.
    Info(Option<ObjectInfo>),
    /// A body, or `None` for a missing object.
    Body(Option<ObjectReader>),
    /// A new upload's id.
    UploadId(String),
    /// An uploaded part.
    Part(UploadedPart),
}

impl std::fmt::Debug for StoreReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreReply::Done => f.write_str("Done"),
            StoreReply::Info(i) => f.debug_tuple("Info").field(i).finish(),
            StoreReply::Body(b) => f.debug_tuple("Body").field(&b.is_some()).finish(),
            StoreReply::UploadId(id) => f.debug_tuple("UploadId").field(id).finish(),
            StoreReply::Part(p) => f.debug_tuple("Part").field(p).finish(),
        }
    }
}

/// Puts, reads, copies and deletes objects. An implementation answers [`ObjectStore::call`];
/// the typed methods are built on it.
pub trait ObjectStore: Send + Sync {
    /// Performs one call.
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>>;

    /// Puts a whole object (overwrites).
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        expect(self.call(StoreRequest::Put(object)), done)
    }

    /// The object's metadata; `None` when it does not exist.
    fn head<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, SinkError>> {
        expect(self.call(StoreRequest::Head { bucket, key }), |r| match r {
            StoreReply::Info(info) => Ok(info),
            other => Err(other),
        })
    }

    /// Reads an object; `None` when it does not exist. With `if_match`, a changed object fails
    /// with [`SinkErrorKind::PreconditionFailed`].
    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<ObjectReader>, SinkError>> {
        let request = StoreRequest::Get {
            bucket,
            key,
            if_match,
        };
        expect(self.call(request), |r| match r {
            StoreReply::Body(body) => Ok(body),
            other => Err(other),
        })
    }

    /// Reads a whole object into memory (reference data, a small lookup table); `None` when it
    /// does not exist. Large objects are better streamed through [`ObjectStore::get`].
    fn read<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SinkError>> {
        Box::pin(async move {
            let Some(mut body) = self.get(bucket, key, None).await? else {
                return Ok(None);
            };
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes)
                .await
                .map_err(|e| {
                    SinkError::new("GetObject", bucket, key, SinkErrorKind::Unavailable, e)
                })?;
            Ok(Some(bytes))
        })
    }

    /// Deletes an object (deleting a missing object succeeds).
    fn delete<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), SinkError>> {
        expect(self.call(StoreRequest::Delete { bucket, key }), done)
    }

    /// Copies `from` (only if its entity tag is still `if_match`) to `to`, inside the store.
    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        if_match: &'a str,
        to: (&'a str, &'a str),
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let request = StoreRequest::Copy { from, if_match, to };
        expect(self.call(request), done)
    }

    /// Starts a multipart upload; returns its id.
    fn start_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        content_type: &'static str,
    ) -> BoxFuture<'a, Result<String, SinkError>> {
        let request = StoreRequest::StartUpload {
            bucket,
            key,
            content_type,
        };
        expect(self.call(request), |r| match r {
            StoreReply::UploadId(id) => Ok(id),
            other => Err(other),
        })
    }

    /// Uploads part `number` of an upload.
    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        number: i32,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<UploadedPart, SinkError>> {
        let request = StoreRequest::UploadPart {
            bucket,
            key,
            upload_id,
            number,
            data,
        };
        expect(self.call(request), |r| match r {
            StoreReply::Part(part) => Ok(part),
            other => Err(other),
        })
    }

    /// Completes an upload from its parts, in order.
    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        parts: Vec<UploadedPart>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let request = StoreRequest::CompleteUpload {
            bucket,
            key,
            upload_id,
            parts,
        };
        expect(self.call(request), done)
    }

    /// Abandons an upload and frees its parts.
    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let request = StoreRequest::AbortUpload {
            bucket,
            key,
            upload_id,
        };
        expect(self.call(request), done)
    }
}

/// A shared store is a store, so a caller can keep a handle on the store a pipeline writes to.
impl<S: ObjectStore + ?Sized> ObjectStore for std::sync::Arc<S> {
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>> {
        (**self).call(request)
    }
}

/// The reply of calls that return nothing.
fn done(reply: StoreReply) -> Result<(), StoreReply> {
    match reply {
        StoreReply::Done => Ok(()),
        other => Err(other),
    }
}

/// Awaits a call and takes the reply its typed method expects; any other reply is a broken
/// store, reported as an error rather than a panic.
fn expect<'a, T: 'a>(
    call: BoxFuture<'a, Result<StoreReply, SinkError>>,
    take: impl FnOnce(StoreReply) -> Result<T, StoreReply> + Send + 'a,
) -> BoxFuture<'a, Result<T, SinkError>> {
    Box::pin(async move {
        take(call.await?).map_err(|other| {
            SinkError::new(
                "call",
                "",
                "",
                SinkErrorKind::Rejected,
                format!("the store answered with an unexpected {other:?}"),
            )
        })
    })
}
