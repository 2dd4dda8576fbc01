//! One object's lifecycle: duplicate check against its manifest, streaming (or quarantine as a
//! whole), manifest, index entry, retiring the replaced version's outputs, then the hook.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use super::config::IngestConfig;
use super::hook::{HookReport, IngestHook};
use super::index::index_key;
use super::keys::{input_day, short_etag};
use super::manifest::{Manifest, ManifestStatus, ObjectOutcome};
use super::reader::{format_from_key, ObjectProblem};
use super::upload::{PartError, UploadError, Written};
use crate::s3event::ObjectRef;
use crate::sink::{ObjectStore, PutObject, Sink, SinkError};
use crate::transform::Transform;

/// Why ingest must be retried later. Bad content is never an error: it is quarantined.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] SinkError),
    /// Writing an output failed.
    #[error("s3://{bucket}/{key}: writing output failed")]
    Output {
        /// The source bucket.
        bucket: String,
        /// The source key.
        key: String,
        /// The uploader's error (boxed: it is large and rare).
        #[source]
        source: Box<UploadError>,
    },
    /// Encoding an output failed.
    #[error("s3://{bucket}/{key}: encoding output failed")]
    Encode {
        /// The source bucket.
        bucket: String,
        /// The source key.
        key: String,
        /// The encoder's error.
        #[source]
        source: PartError,
    },
    /// Reading the source failed part-way (a network error, not bad content).
    #[error("s3://{bucket}/{key}: reading the object failed")]
    Read {
        /// The source bucket.
        bucket: String,
        /// The source key.
        key: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The transform failed transiently on a row; the whole object is retried.
    #[error("s3://{bucket}/{key}: line {line} failed transiently: {reason}")]
    Transient {
        /// The source bucket.
        bucket: String,
        /// The source key.
        key: String,
        /// The row's line.
        line: u64,
        /// The transform's reason.
        reason: String,
    },
    /// The reading task ended abnormally.
    #[error("s3://{bucket}/{key}: the row reader task failed")]
    Task {
        /// The source bucket.
        bucket: String,
        /// The source key.
        key: String,
        /// The task's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Ingests objects with one transform through one sink, then runs the hook, if any.
pub struct Ingest<T: Transform> {
    pub(super) config: IngestConfig,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) sink: Sink<T::Output>,
    pub(super) transform: Arc<T>,
    pub(super) hook: Option<Arc<dyn IngestHook>>,
}

impl<T: Transform> Ingest<T> {
    /// Ingest for `transform`, reading sources and writing outputs through `sink`.
    pub fn new(
        config: IngestConfig,
        sink: Sink<T::Output>,
        transform: T,
        hook: Option<Arc<dyn IngestHook>>,
    ) -> Self {
        Ingest {
            config,
            store: sink.store.clone(),
            sink,
            transform: Arc::new(transform),
            hook,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    pub(super) fn manifest_key(&self, obj: &ObjectRef) -> String {
        self.config
            .state
            .key(&format!("{}/{}.manifest.json", obj.bucket, obj.key))
    }

    pub(super) async fn read_manifest(&self, key: &str) -> Result<Option<Manifest>, IngestError> {
        let bytes = self.store.read(&self.config.state.bucket, key).await?;
        // An unreadable manifest is treated as absent: the object is processed again.
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub(super) async fn put_json(
        &self,
        bucket: &str,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), IngestError> {
        let body = serde_json::to_vec_pretty(value).expect("manifests and reasons serialise");
        self.store
            .put(PutObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                body,
                content_type: "application/json",
            })
            .await?;
        Ok(())
    }

    /// Ingests one object named by an event, then runs the hook.
    pub async fn ingest(
        &self,
        obj: &ObjectRef,
    ) -> Result<(ObjectOutcome, Option<HookReport>), IngestError> {
        let started = std::time::Instant::now();
        let name = obj.key.rsplit('/').next().unwrap_or(&obj.key);
        let Some(head) = self.store.head(&obj.bucket, &obj.key).await? else {
            tracing::warn!(bucket = %obj.bucket, key = %obj.key, "object no longer exists; nothing to ingest");
            return Ok((ObjectOutcome::Missing, None));
        };
        let day = input_day(&obj.key, head.last_modified);
        if name.starts_with('_') || obj.key.ends_with('/') {
            let report = self.run_hook(&day, obj).await;
            return Ok((ObjectOutcome::Marker, report));
        }
        let (etag, size) = (head.etag, head.size);
        let manifest_key = self.manifest_key(obj);
        let previous = self.read_manifest(&manifest_key).await?;
        if previous.as_ref().is_some_and(|m| m.etag == etag) {
            tracing::info!(bucket = %obj.bucket, key = %obj.key, etag = %etag, "version already ingested; duplicate delivery skipped");
            return Ok((ObjectOutcome::Duplicate { etag }, None));
        }
        let base = Manifest {
            source_bucket: obj.bucket.clone(),
            source_key: obj.key.clone(),
            etag: etag.clone(),
            size,
            day: day.clone(),
            status: ManifestStatus::Complete,
            reason: None,
            rows_in: 0,
            rows_out: 0,
            rows_quarantined: 0,
            input_crc32: String::new(),
            outputs: Vec::new(),
            quarantine: None,
            redriven: Vec::new(),
            processed_at: chrono::Utc::now(),
            duration_ms: 0,
        };
        let problem = match format_from_key(&obj.key) {
            None => Some(ObjectProblem::UnsupportedType),
            Some(_) if size > self.config.max_object_bytes => Some(ObjectProblem::TooLarge {
                size,
                limit: self.config.max_object_bytes,
            }),
            Some(_) => None,
        };
        let result = match problem {
            Some(p) => Err(p),
            None => self.stream(obj, &etag, &day).await?,
        };
        let mut manifest = match result {
            Ok(streamed) => Manifest {
                rows_in: streamed.counts.rows_in,
                rows_out: streamed.counts.rows_out,
                rows_quarantined: streamed.counts.rows_quarantined,
                input_crc32: format!("{:08x}", streamed.counts.crc),
                outputs: streamed.outputs,
                quarantine: streamed.quarantine,
                ..base
            },
            Err(problem) => {
                let quarantine = self.quarantine_object(obj, &etag, size, &problem).await?;
                Manifest {
                    status: ManifestStatus::Quarantined,
                    reason: Some(problem.to_string()),
                    quarantine: Some(quarantine),
                    ..base
                }
            }
        };
        manifest.duration_ms = started.elapsed().as_millis() as u64;
        self.put_json(&self.config.state.bucket, &manifest_key, &manifest)
            .await?;
        // Replace the previous version's outputs only now that the new ones are complete.
        if let Some(old) = &previous {
            self.retire(old, &manifest).await;
        }
        if manifest.status == ManifestStatus::Quarantined {
            return Ok((ObjectOutcome::Quarantined(manifest), None));
        }
        let index = index_key(&self.config.state, &day, &obj.key, &etag);
        self.put_json(
            &self.config.state.bucket,
            &index,
            &serde_json::json!({"source": obj.key, "etag": etag}),
        )
        .await?;
        let report = self.run_hook(&day, obj).await;
        Ok((ObjectOutcome::Ingested(manifest), report))
    }

    async fn run_hook(&self, day: &str, obj: &ObjectRef) -> Option<HookReport> {
        self.hook.as_ref()?.after_object(day, obj).await
    }

    /// Deletes the previous version's outputs that the new version did not overwrite, and its
    /// index entry.
    async fn retire(&self, old: &Manifest, new: &Manifest) {
        let output = &self.config.output;
        let keep: HashSet<&str> = new.outputs.iter().map(|w| w.key.as_str()).collect();
        let mut stale: Vec<(String, String)> = old
            .outputs
            .iter()
            .filter(|w| !keep.contains(w.key.as_str()))
            .map(|w| (output.curated.bucket.clone(), w.key.clone()))
            .collect();
        if let Some(q) = &old.quarantine {
            if new.quarantine.as_ref().map(|n| &n.key) != Some(&q.key) {
                stale.push((output.quarantine.bucket.clone(), q.key.clone()));
            }
        }
        if old.etag != new.etag {
            stale.push((
                self.config.state.bucket.clone(),
                index_key(&self.config.state, &old.day, &old.source_key, &old.etag),
            ));
        }
        for (bucket, key) in stale {
            if let Err(e) = self.store.delete(&bucket, &key).await {
                tracing::warn!(error = %crate::error::chain(&e), "could not delete an output of the replaced version");
            }
        }
    }

    /// Copies a bad object to quarantine (when S3 can copy it in one call) with its reason
    /// beside it.
    async fn quarantine_object(
        &self,
        obj: &ObjectRef,
        etag: &str,
        size: u64,
        problem: &ObjectProblem,
    ) -> Result<Written, IngestError> {
        let q = &self.config.output.quarantine;
        let base = q.key(&format!(
            "objects/{}/{}-{}",
            obj.bucket,
            obj.key,
            short_etag(etag)
        ));
        // CopyObject copies at most 5 GiB in one call; larger objects keep only their reason.
        let copied = size <= 5 * 1024 * 1024 * 1024;
        if copied {
            self.store
                .copy((&obj.bucket, &obj.key), etag, (&q.bucket, &base))
                .await?;
        }
        let reason_key = format!("{base}.reason.json");
        self.put_json(
            &q.bucket,
            &reason_key,
            &serde_json::json!({
                "source": obj.uri(),
                "etag": etag,
                "size": size,
                "reason": problem.to_string(),
                "copied": copied,
                "copy": copied.then(|| format!("s3://{}/{base}", q.bucket)),
            }),
        )
        .await?;
        tracing::warn!(bucket = %obj.bucket, key = %obj.key, reason = %problem, "object quarantined whole");
        Ok(Written {
            key: if copied { base } else { reason_key },
            bytes: if copied { size } else { 0 },
            parts: 1,
        })
    }
}
