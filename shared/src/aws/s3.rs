//! S3 helpers that several parts of the framework need: listing a prefix, and recognising a
//! conditional write that lost.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A listing that failed part-way: which prefix, and the SDK's reason.
#[derive(Debug, thiserror::Error)]
#[error("list s3://{bucket}/{prefix}")]
pub struct ListError {
    /// The bucket listed.
    pub bucket: String,
    /// The prefix listed.
    pub prefix: String,
    /// Boxed: the SDK error is large and listing errors are rare.
    #[source]
    pub source: Box<SdkError<ListObjectsV2Error>>,
}

/// Every key under a prefix, in listing order (all pages).
pub async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, ListError> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ListError {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            source: Box::new(e),
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

/// Whether a conditional write (`If-None-Match`, `If-Match`) lost: the object exists, or changed.
/// Claims (dedupe markers, Glue start claims) rely on this to tell "someone else won" from a
/// failure.
pub fn is_precondition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some("PreconditionFailed") | Some("ConditionalRequestConflict")
        ),
        _ => false,
    }
}
