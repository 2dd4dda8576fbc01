//! [`S3Store`]: the object store on S3 through the shared SDK client.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::store::{
    ObjectInfo, ObjectReader, ObjectStore, PutObject, SinkError, SinkErrorKind, UploadedPart,
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

fn failed<E, R>(op: &str, bucket: &str, key: &str, err: &SdkError<E, R>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SinkError::new(op, bucket, key, classify(err), crate::error::chain(err))
}

impl ObjectStore for S3Store {
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let PutObject {
                bucket,
                key,
                body,
                content_type,
            } = object;
            self.client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type(content_type)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("put", &bucket, &key, &e))
        })
    }

    fn head<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, SinkError>> {
        Box::pin(async move {
            match self
                .client
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
            {
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
                Err(e) => Err(failed("head", bucket, key, &e)),
            }
        })
    }

    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<ObjectReader>, SinkError>> {
        Box::pin(async move {
            let got = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_if_match(if_match.map(str::to_string))
                .send()
                .await;
            match got {
                Ok(out) => Ok(Some(Box::pin(out.body.into_async_read()) as ObjectReader)),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(failed("get", bucket, key, &e)),
            }
        })
    }

    fn delete<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("delete", bucket, key, &e))
        })
    }

    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        if_match: &'a str,
        to: (&'a str, &'a str),
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let source = format!(
                "{}/{}",
                from.0,
                percent_encoding::utf8_percent_encode(from.1, percent_encoding::NON_ALPHANUMERIC)
            );
            self.client
                .copy_object()
                .bucket(to.0)
                .key(to.1)
                .copy_source(source)
                .copy_source_if_match(if_match)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("copy", to.0, to.1, &e))
        })
    }

    fn start_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        content_type: &'static str,
    ) -> BoxFuture<'a, Result<String, SinkError>> {
        Box::pin(async move {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .send()
                .await
                .map_err(|e| failed("start upload", bucket, key, &e))?;
            created.upload_id().map(str::to_string).ok_or_else(|| {
                SinkError::new(
                    "start upload",
                    bucket,
                    key,
                    SinkErrorKind::Unavailable,
                    "the answer has no upload id",
                )
            })
        })
    }

    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        number: i32,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<UploadedPart, SinkError>> {
        Box::pin(async move {
            let part = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| failed(&format!("upload part {number} of"), bucket, key, &e))?;
            Ok(UploadedPart {
                number,
                etag: part.e_tag().unwrap_or_default().to_string(),
            })
        })
    }

    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        parts: Vec<UploadedPart>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let parts = parts
                .into_iter()
                .map(|p| {
                    CompletedPart::builder()
                        .part_number(p.number)
                        .e_tag(p.etag)
                        .build()
                })
                .collect();
            self.client
                .complete_multipart_upload()
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
                .map_err(|e| failed("complete upload", bucket, key, &e))
        })
    }

    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("abort upload", bucket, key, &e))
        })
    }
}
