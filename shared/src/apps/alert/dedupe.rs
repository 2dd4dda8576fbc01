//! Duplicate suppression with S3 conditional writes.
//!
//! EventBridge, SNS and SQS deliver at least once, so the same failure can arrive twice. Before
//! publishing, the handler claims the alert's fingerprint by creating
//! `s3://BUCKET/PREFIX/<fingerprint>.json` with `If-None-Match: *`: only one delivery can create
//! it. A later delivery of the same fingerprint is suppressed while the marker is younger than the
//! window; after the window it re-claims the marker with `If-Match: <etag>` (so two late
//! deliveries still produce one alert) and alerts again — a failure that persists is re-announced
//! once per window. If publishing fails, the marker is deleted so the retry can alert.
//! A lifecycle rule on the prefix can expire old markers; correctness does not depend on it.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use super::model::Alert;
use crate::aws::s3::is_precondition_failed;
use crate::util::hash::fnv1a;

/// Why a claim could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dedupe marker s3://{bucket}/{key}: {message}")]
pub struct DedupeError {
    /// The marker's bucket.
    pub bucket: String,
    /// The marker's key.
    pub key: String,
    /// The cause, with every source.
    pub message: String,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery owns the alert; publish it (and release the marker if publishing fails).
    New {
        /// The marker this delivery wrote.
        key: String,
    },
    /// Already alerted within the window.
    Duplicate {
        /// The existing marker.
        key: String,
        /// When the marker was written (its last modification).
        first_seen: Option<DateTime<Utc>>,
    },
}

/// Markers in S3 under one prefix.
#[derive(Debug, Clone)]
pub struct S3Dedupe {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    window: Duration,
}

impl S3Dedupe {
    /// Markers under `s3://bucket/prefix/`; a marker younger than `window` suppresses its alert.
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        window: Duration,
    ) -> Self {
        S3Dedupe {
            s3,
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_string(),
            window,
        }
    }

    /// The marker key: a readable part of the fingerprint plus its hash (keys stay short and safe).
    pub fn key(&self, fingerprint: &str) -> String {
        let readable: String = fingerprint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .take(120)
            .collect();
        format!(
            "{}/{readable}-{:016x}.json",
            self.prefix,
            fnv1a(fingerprint.as_bytes())
        )
    }

    fn err(&self, key: &str, message: String) -> DedupeError {
        DedupeError {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message,
        }
    }

    /// Claims the alert's fingerprint at `now`: [`Claim::New`] when this delivery should publish.
    pub async fn claim(&self, alert: &Alert, now: DateTime<Utc>) -> Result<Claim, DedupeError> {
        let key = self.key(&alert.fingerprint);
        let body = serde_json::json!({
            "fingerprint": alert.fingerprint,
            "summary": alert.summary,
            "claimed_at": now.to_rfc3339(),
        })
        .to_string();
        let created = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await;
        match created {
            Ok(_) => return Ok(Claim::New { key }),
            Err(e) if is_precondition_failed(&e) => {}
            Err(e) => return Err(self.err(&key, crate::error::chain(&e))),
        }
        let head = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.err(&key, crate::error::chain(&e)))?;
        let first_seen = head
            .last_modified()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
        let age = first_seen.map(|t| now - t).unwrap_or_default();
        if age.to_std().unwrap_or_default() < self.window {
            return Ok(Claim::Duplicate { key, first_seen });
        }
        let etag = head.e_tag().unwrap_or_default().to_string();
        let renewed = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_match(etag)
            .content_type("application/json")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await;
        match renewed {
            Ok(_) => Ok(Claim::New { key }),
            Err(e) if is_precondition_failed(&e) => Ok(Claim::Duplicate { key, first_seen }),
            Err(e) => Err(self.err(&key, crate::error::chain(&e))),
        }
    }

    /// Gives a claim back after a failed publish, so the retry alerts.
    pub async fn release(&self, key: &str) -> Result<(), DedupeError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err(key, crate::error::chain(&e)))
    }
}
