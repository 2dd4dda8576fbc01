//! [`S3Store`]: the object store on S3 through the shared SDK client.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

type Client = aws_sdk_s3::Client;

use super::store::{
    ObjectInfo, ObjectReader, ObjectStore, PutObject, SinkError, SinkErrorKind, StoreReply,
    StoreRequest, UploadedPart,
};

/// S3 through the shared SDK client.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    /// A store over `client` (see [`crate::aws::Aws::s3`]).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store { client }
    }

    /// The client, for calls the store does not cover.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

/// S3 through a client built from the environment at the first call: the store of a pipeline
/// built without one, so `build()` (which cannot await) and `run()` write to the same place.
#[derive(Default)]
pub(crate) struct S3FromEnv(tokio::sync::OnceCell<S3Store>);

impl S3FromEnv {
    /// A new one, as a pipeline holds its store.
    pub(crate) fn shared() -> std::sync::Arc<dyn ObjectStore> {
        std::sync::Arc::new(S3FromEnv::default())
    }
}

impl ObjectStore for S3FromEnv {
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>> {
        Box::pin(async move {
            let from_env = || async { S3Store::new(crate::aws::Aws::from_env().await.s3()) };
            self.0.get_or_init(from_env).await.call(request).await
        })
    }
}

/// Classifies an SDK error by its kind and status code, never by its message text.
pub fn classify<E, R>(err: &SdkError<E, R>) -> SinkErrorKind
where
    E: ProvideErrorMetadata,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => SinkErrorKind::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => SinkErrorKind::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => SinkErrorKind::Unavailable,
        SdkError::ServiceError(e) => match e.err().code().unwrap_or_default() {
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => SinkErrorKind::Throttled,
            "InternalError" | "ServiceUnavailable" | "RequestTimeout" => SinkErrorKind::Unavailable,
            "PreconditionFailed" | "ConditionalRequestConflict" => {
                SinkErrorKind::PreconditionFailed
            }
            _ => SinkErrorKind::Rejected,
        },
        _ => SinkErrorKind::Unavailable,
    }
}

fn failed<E, R>(op: &str, bucket: &str, key: &str, err: SdkError<E, R>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = classify(&err);
    SinkError::new(op, bucket, key, kind, err)
}

impl ObjectStore for S3Store {
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>> {
        let c = &self.client;
        Box::pin(async move {
            Ok(match request {
                StoreRequest::Put(object) => put(c, object).await.map(|()| StoreReply::Done)?,
                StoreRequest::Head { bucket, key } => StoreReply::Info(head(c, bucket, key).await?),
                StoreRequest::Get {
                    bucket,
                    key,
                    if_match,
                } => StoreReply::Body(get(c, bucket, key, if_match).await?),
                StoreRequest::Delete { bucket, key } => {
                    let sent = c.delete_object().bucket(bucket).key(key).send().await;
                    sent.map_err(|e| failed("delete", bucket, key, e))?;
                    StoreReply::Done
                }
                StoreRequest::Copy { from, if_match, to } => {
                    copy(c, from, if_match, to).await?;
                    StoreReply::Done
                }
                StoreRequest::StartUpload {
                    bucket,
                    key,
                    content_type,
                } => StoreReply::UploadId(start_upload(c, bucket, key, content_type).await?),
                StoreRequest::UploadPart {
                    bucket,
                    key,
                    upload_id,
                    number,
                    data,
                } => {
                    let part = c
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(data))
                        .send()
                        .await
                        .map_err(|e| failed(&format!("upload part {number} of"), bucket, key, e))?;
                    StoreReply::Part(UploadedPart {
                        number,
                        etag: part.e_tag().unwrap_or_default().to_string(),
                    })
                }
                StoreRequest::CompleteUpload {
                    bucket,
                    key,
                    upload_id,
                    parts,
                } => {
                    complete_upload(c, bucket, key, upload_id, parts).await?;
                    StoreReply::Done
                }
                StoreRequest::AbortUpload {
                    bucket,
                    key,
                    upload_id,
                } => {
                    let sent = c
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .send()
                        .await;
                    sent.map_err(|e| failed("abort upload", bucket, key, e))?;
                    StoreReply::Done
                }
            })
        })
    }
}

async fn put(c: &Client, object: PutObject) -> Result<(), SinkError> {
    let PutObject {
        bucket,
        key,
        body,
        content_type,
    } = object;
    c.put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("put", &bucket, &key, e))
}

async fn head(c: &Client, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, SinkError> {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(h) => Ok(Some(ObjectInfo {
            etag: h.e_tag().unwrap_or_default().trim_matches('"').to_string(),
            size: h.content_length().unwrap_or_default().max(0) as u64,
            last_modified: h
                .last_modified()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
        })),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
        {
            Ok(None)
        }
        Err(e) => Err(failed("head", bucket, key, e)),
    }
}

async fn get(
    c: &Client,
    bucket: &str,
    key: &str,
    if_match: Option<&str>,
) -> Result<Option<ObjectReader>, SinkError> {
    let got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(if_match.map(str::to_string))
        .send()
        .await;
    match got {
        Ok(out) => Ok(Some(Box::pin(out.body.into_async_read()) as ObjectReader)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(failed("get", bucket, key, e)),
    }
}

async fn copy(
    c: &Client,
    from: (&str, &str),
    if_match: &str,
    to: (&str, &str),
) -> Result<(), SinkError> {
    let source = format!(
        "{}/{}",
        from.0,
        percent_encoding::utf8_percent_encode(from.1, percent_encoding::NON_ALPHANUMERIC)
    );
    c.copy_object()
        .bucket(to.0)
        .key(to.1)
        .copy_source(source)
        .copy_source_if_match(if_match)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("copy", to.0, to.1, e))
}

async fn start_upload(
    c: &Client,
    bucket: &str,
    key: &str,
    content_type: &'static str,
) -> Result<String, SinkError> {
    let created = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .send()
        .await
        .map_err(|e| failed("start upload", bucket, key, e))?;
    created.upload_id().map(str::to_string).ok_or_else(|| {
        SinkError::new(
            "start upload",
            bucket,
            key,
            SinkErrorKind::Unavailable,
            "the answer has no upload id",
        )
    })
}

async fn complete_upload(
    c: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<UploadedPart>,
) -> Result<(), SinkError> {
    let parts = parts
        .into_iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.number)
                .e_tag(p.etag)
                .build()
        })
        .collect();
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("complete upload", bucket, key, e))
}
