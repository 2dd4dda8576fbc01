//! Batch ingest of S3 objects: stream rows, validate, land them curated and partitioned by day,
//! quarantine bad rows, write a manifest per object, then run the [`IngestHook`] (e.g. the Glue
//! trigger of the `glue` feature, which starts the day's job once its input is complete).
//!
//! # Idempotency
//! Output keys derive from the source key and its ETag, so processing the same version again
//! overwrites. The manifest (`<manifest prefix>/<bucket>/<key>.manifest.json`) records the ETag
//! it was made from: a duplicate delivery of a version already ingested is recognised and skipped.
//! A new version of the same key writes new outputs, then deletes the outputs of the version it
//! replaces (listed in the old manifest), so readers never see a partial mix.

pub mod index;
mod reader;
mod upload;

pub use reader::{
    format_from_key, is_source_failure, read_rows, ObjectFormat, ObjectProblem, ReadError, Row,
    RowFormat, SourceReader,
};
pub use upload::{uploader, Chunk, PartWriter, Written, PART_SIZE};

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::Aws;
use crate::config::{ConfigError, Env};
use crate::records::Validate;
use crate::s3event::ObjectRef;
use crate::sink::{daily_partition, Lead, Location};
use crate::util::hash::fnv1a;
use index::index_key;

/// The user's part of a batch ingest: a typed row in, a typed output row out.
pub trait RowTransform: Send + Sync + 'static {
    type Row: DeserializeOwned + Validate + Send;
    type Output: Serialize;
    /// Turns a valid row into output; `Err` rejects the row (it is quarantined with the reason).
    fn apply(&self, row: Self::Row) -> Result<Self::Output, String>;
    /// The time whose day picks the output partition.
    fn partition_time(&self, output: &Self::Output) -> DateTime<Utc>;
    /// The row's own id (kept as `_id`, for de-duplication downstream).
    fn record_id(&self, output: &Self::Output) -> String;
}

/// Where ingest reads and writes, and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    pub curated: Location,
    pub quarantine: Location,
    /// Manifests, the ingested-object [`index`], and hooks' own state (e.g. Glue start claims).
    pub state: Location,
    pub max_row_bytes: usize,
    pub max_object_bytes: u64,
}

/// The manifest written for each input object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub source_bucket: String,
    pub source_key: String,
    pub etag: String,
    pub size: u64,
    pub day: String,
    /// `complete` or `quarantined` (the whole object).
    pub status: String,
    pub reason: Option<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    /// CRC-32 of the object's bytes as stored (before decompression), hex.
    pub input_crc32: String,
    pub outputs: Vec<Written>,
    pub quarantine: Option<Written>,
    pub processed_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectOutcome {
    Ingested(Manifest),
    /// The object as a whole was bad and went to quarantine.
    Quarantined(Manifest),
    /// This version was already ingested (a duplicate delivery).
    Duplicate {
        etag: String,
    },
    /// The object is gone (deleted after the event was sent).
    Missing,
    /// A marker such as `_SUCCESS`: no rows; the hook still runs.
    Marker,
}

/// Work that follows an object of a day: run after each ingested object and each marker (not
/// after duplicates, missing or wholly quarantined objects). Ingest has succeeded by then, so a
/// hook never fails it: it logs its own errors and reports what it did, which ingest counts as a
/// metric and adds to the invocation's summary.
pub trait IngestHook: Send + Sync {
    /// Runs after `object` of `day` (see [`input_day`]); `None` when there is nothing to report.
    fn after_object<'a>(
        &'a self,
        day: &'a str,
        object: &'a ObjectRef,
    ) -> BoxFuture<'a, Option<HookReport>>;
}

/// What a hook did, for metrics and the invocation's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct HookReport {
    /// The hook's name: the key of its entry in an object's summary (e.g. `glue`).
    pub hook: &'static str,
    /// A count metric recorded once for this report (e.g. `GlueRunsStarted`).
    pub metric: &'static str,
    /// The details, as the hook defines them.
    pub detail: Value,
}

/// A hook's settings, read in the same pass as [`IngestEnv`] so every problem is reported
/// together (see [`run_with_hook`]).
pub trait HookConfig {
    /// Builds the hook once the clients exist.
    fn build(self, ingest: &IngestConfig, aws: &Aws) -> Arc<dyn IngestHook>;
}

/// A hook built already is its own configuration.
impl HookConfig for Arc<dyn IngestHook> {
    fn build(self, _ingest: &IngestConfig, _aws: &Aws) -> Arc<dyn IngestHook> {
        self
    }
}

/// Why ingest must be retried later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("s3://{bucket}/{key}: {message}")]
    S3 {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("s3://{bucket}/{key}: writing output failed: {message}")]
    Output {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("s3://{bucket}/{key}: the row reader failed: {message}")]
    Reader {
        bucket: String,
        key: String,
        message: String,
    },
}

/// The day an input belongs to: a `dt=YYYY-MM-DD` or `YYYY-MM-DD` segment of its key, else the
/// day it was last modified.
pub fn input_day(key: &str, last_modified: Option<DateTime<Utc>>) -> String {
    for segment in key.split('/').rev().skip(1) {
        let candidate = segment.strip_prefix("dt=").unwrap_or(segment);
        if NaiveDate::parse_from_str(candidate, "%Y-%m-%d").is_ok() {
            return candidate.to_string();
        }
    }
    last_modified
        .unwrap_or_else(Utc::now)
        .format("%Y-%m-%d")
        .to_string()
}

/// The folder of a key (`a/b/c.csv` → `a/b`).
pub fn folder(key: &str) -> &str {
    key.rsplit_once('/').map(|(f, _)| f).unwrap_or("")
}

/// A name for outputs derived from a source key: readable, safe, and unique per key.
pub fn output_stem(source_key: &str) -> String {
    let base = source_key.rsplit('/').next().unwrap_or(source_key);
    let base = base.split('.').next().unwrap_or(base);
    let readable: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{readable}-{:08x}", fnv1a(source_key.as_bytes()) as u32)
}

/// The first 12 characters of an ETag, without quotes: enough to tell versions of a key apart
/// in output and index names.
pub fn short_etag(etag: &str) -> String {
    etag.trim_matches('"')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}

/// Serialises `output` with `_id`, `_source` and `_line` first.
fn output_line<V: Serialize>(
    id: &str,
    source: &str,
    line: u64,
    output: &V,
) -> serde_json::Result<Vec<u8>> {
    crate::sink::json_line(
        &[
            ("_id", Lead::Str(id)),
            ("_source", Lead::Str(source)),
            ("_line", Lead::Int(line)),
        ],
        output,
    )
}

#[derive(Serialize)]
struct RowQuarantine<'a> {
    source: &'a str,
    etag: &'a str,
    line: u64,
    kind: &'static str,
    reason: String,
    raw: String,
    /// Present when the raw line is not UTF-8.
    raw_base64: Option<String>,
}

/// Ingests objects with one transform, then runs the hook, if any.
pub struct Ingest<T: RowTransform> {
    pub config: IngestConfig,
    s3: aws_sdk_s3::Client,
    transform: Arc<T>,
    hook: Option<Arc<dyn IngestHook>>,
}

impl<T: RowTransform> Ingest<T> {
    pub fn new(
        config: IngestConfig,
        s3: aws_sdk_s3::Client,
        transform: T,
        hook: Option<Arc<dyn IngestHook>>,
    ) -> Self {
        Ingest {
            config,
            s3,
            transform: Arc::new(transform),
            hook,
        }
    }

    fn manifest_key(&self, obj: &ObjectRef) -> String {
        self.config
            .state
            .key(&format!("{}/{}.manifest.json", obj.bucket, obj.key))
    }

    async fn read_manifest(&self, key: &str) -> Result<Option<Manifest>, IngestError> {
        match self
            .s3
            .get_object()
            .bucket(&self.config.state.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        self.s3_err(&self.config.state.bucket, key, crate::error::chain(&e))
                    })?
                    .into_bytes();
                // An unreadable manifest is treated as absent: the object is processed again.
                Ok(serde_json::from_slice(&bytes).ok())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.s3_err(&self.config.state.bucket, key, crate::error::chain(&e))),
        }
    }

    fn s3_err(&self, bucket: &str, key: &str, message: String) -> IngestError {
        IngestError::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
            message,
        }
    }

    async fn put_json(
        &self,
        bucket: &str,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), IngestError> {
        let body = serde_json::to_vec_pretty(value).expect("serialisable");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.s3_err(bucket, key, crate::error::chain(&e)))
    }

    /// Ingests one object named by an event, then runs the hook.
    pub async fn ingest(
        &self,
        obj: &ObjectRef,
    ) -> Result<(ObjectOutcome, Option<HookReport>), IngestError> {
        let started = std::time::Instant::now();
        let name = obj.key.rsplit('/').next().unwrap_or(&obj.key);
        let head = match self
            .s3
            .head_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
        {
            Ok(h) => h,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                tracing::warn!(bucket = %obj.bucket, key = %obj.key, "object no longer exists; nothing to ingest");
                return Ok((ObjectOutcome::Missing, None));
            }
            Err(e) => return Err(self.s3_err(&obj.bucket, &obj.key, crate::error::chain(&e))),
        };
        let last_modified = head
            .last_modified()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
        let day = input_day(&obj.key, last_modified);
        if name.starts_with('_') || obj.key.ends_with('/') {
            let report = self.run_hook(&day, obj).await;
            return Ok((ObjectOutcome::Marker, report));
        }
        let etag = head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let size = head.content_length().unwrap_or_default().max(0) as u64;
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
            status: "complete".into(),
            reason: None,
            rows_in: 0,
            rows_out: 0,
            rows_quarantined: 0,
            input_crc32: String::new(),
            outputs: Vec::new(),
            quarantine: None,
            processed_at: Utc::now(),
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
            Ok((outputs, quarantine, counts)) => Manifest {
                rows_in: counts.rows_in,
                rows_out: counts.rows_out,
                rows_quarantined: counts.rows_quarantined,
                input_crc32: format!("{:08x}", counts.crc),
                outputs,
                quarantine,
                ..base
            },
            Err(problem) => {
                let quarantine = self.quarantine_object(obj, &etag, size, &problem).await?;
                Manifest {
                    status: "quarantined".into(),
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
        let quarantined = manifest.status == "quarantined";
        if !quarantined {
            let index = index_key(&self.config.state, &day, &obj.key, &etag);
            self.put_json(
                &self.config.state.bucket,
                &index,
                &serde_json::json!({"source": obj.key, "etag": etag}),
            )
            .await?;
        }
        let report = if quarantined {
            None
        } else {
            self.run_hook(&day, obj).await
        };
        Ok((
            if quarantined {
                ObjectOutcome::Quarantined(manifest)
            } else {
                ObjectOutcome::Ingested(manifest)
            },
            report,
        ))
    }

    async fn run_hook(&self, day: &str, obj: &ObjectRef) -> Option<HookReport> {
        self.hook.as_ref()?.after_object(day, obj).await
    }

    /// Deletes the previous version's outputs that the new version did not overwrite, and its
    /// index entry.
    async fn retire(&self, old: &Manifest, new: &Manifest) {
        let keep: std::collections::HashSet<&str> =
            new.outputs.iter().map(|w| w.key.as_str()).collect();
        let mut stale: Vec<(String, String)> = old
            .outputs
            .iter()
            .filter(|w| !keep.contains(w.key.as_str()))
            .map(|w| (self.config.curated.bucket.clone(), w.key.clone()))
            .collect();
        if let Some(q) = &old.quarantine {
            if new.quarantine.as_ref().map(|n| &n.key) != Some(&q.key) {
                stale.push((self.config.quarantine.bucket.clone(), q.key.clone()));
            }
        }
        if old.etag != new.etag {
            stale.push((
                self.config.state.bucket.clone(),
                index_key(&self.config.state, &old.day, &old.source_key, &old.etag),
            ));
        }
        for (bucket, key) in stale {
            if let Err(e) = self
                .s3
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
            {
                tracing::warn!(error = %crate::error::chain(&e), bucket = %bucket, key = %key, "could not delete an output of the replaced version");
            }
        }
    }

    /// Copies a bad object to quarantine (when S3 can copy it in one call) with its reason beside it.
    async fn quarantine_object(
        &self,
        obj: &ObjectRef,
        etag: &str,
        size: u64,
        problem: &ObjectProblem,
    ) -> Result<Written, IngestError> {
        let q = &self.config.quarantine;
        let base = q.key(&format!(
            "objects/{}/{}-{}",
            obj.bucket,
            obj.key,
            short_etag(etag)
        ));
        let copied = if size <= 5 * 1024 * 1024 * 1024 {
            let source = format!(
                "{}/{}",
                obj.bucket,
                percent_encoding::utf8_percent_encode(&obj.key, percent_encoding::NON_ALPHANUMERIC)
            );
            self.s3
                .copy_object()
                .bucket(&q.bucket)
                .key(&base)
                .copy_source(source)
                .copy_source_if_match(etag)
                .send()
                .await
                .map_err(|e| self.s3_err(&q.bucket, &base, crate::error::chain(&e)))?;
            true
        } else {
            false
        };
        let reason_key = format!("{base}.reason.json");
        self.put_json(
            &q.bucket,
            &reason_key,
            &serde_json::json!({
                "source": format!("s3://{}/{}", obj.bucket, obj.key),
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

    /// Streams the object through the transform into curated and quarantine outputs.
    #[allow(clippy::type_complexity)]
    async fn stream(
        &self,
        obj: &ObjectRef,
        etag: &str,
        day: &str,
    ) -> Result<Result<(Vec<Written>, Option<Written>, ReadCounts), ObjectProblem>, IngestError>
    {
        let format = format_from_key(&obj.key).expect("checked by the caller");
        let got = self
            .s3
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .if_match(etag)
            .send()
            .await
            .map_err(|e| self.s3_err(&obj.bucket, &obj.key, crate::error::chain(&e)))?;
        let body = got.body.into_async_read();
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(2);
        let (qtx, qrx) = tokio::sync::mpsc::channel::<Chunk>(2);
        let curated_upload = tokio::spawn(uploader(
            self.s3.clone(),
            self.config.curated.bucket.clone(),
            rx,
        ));
        let quarantine_upload = tokio::spawn(uploader(
            self.s3.clone(),
            self.config.quarantine.bucket.clone(),
            qrx,
        ));
        let transform = self.transform.clone();
        let stem = output_stem(&obj.key);
        let tag = short_etag(etag);
        let curated = self.config.curated.clone();
        let quarantine_key = self
            .config
            .quarantine
            .key(&format!("rows/dt={day}/{stem}-{tag}.json"));
        let source = format!("s3://{}/{}", obj.bucket, obj.key);
        let etag_owned = etag.to_string();
        let max_row = self.config.max_row_bytes;
        let handle = tokio::runtime::Handle::current();
        let read = tokio::task::spawn_blocking(move || {
            let _guard = handle.enter();
            let bridge = tokio_util::io::SyncIoBridge::new(body);
            let mut crc_reader = flate2::CrcReader::new(SourceReader(bridge));
            let mut writers: BTreeMap<String, PartWriter> = BTreeMap::new();
            let mut quarantine: Option<PartWriter> = None;
            let mut counts = ReadCounts {
                rows_in: 0,
                rows_out: 0,
                rows_quarantined: 0,
                crc: 0,
            };
            let outcome = read_rows::<T::Row, _, _>(
                &mut crc_reader,
                format,
                max_row,
                |row: Row<'_, T::Row>| {
                    counts.rows_in += 1;
                    let result = row
                        .parsed
                        .map_err(|bad| (bad.kind(), bad.to_string()))
                        .and_then(|r| transform.apply(r).map_err(|why| ("rejected", why)));
                    match result {
                        Ok(out) => {
                            let partition = daily_partition(transform.partition_time(&out));
                            let id = transform.record_id(&out);
                            let line = output_line(&id, &source, row.line, &out)
                                .map_err(|e| format!("serialise line {}: {e}", row.line))?;
                            let writer = writers.entry(partition.clone()).or_insert_with(|| {
                                PartWriter::gzip(
                                    curated.key(&format!("{partition}/{stem}-{tag}.json.gz")),
                                )
                            });
                            writer.push(&line, &tx)?;
                            counts.rows_out += 1;
                        }
                        Err((kind, reason)) => {
                            let (raw, raw_base64) = match std::str::from_utf8(row.raw) {
                                Ok(s) => (s.to_string(), None),
                                Err(_) => (
                                    String::from_utf8_lossy(row.raw).into_owned(),
                                    Some(base64::Engine::encode(
                                        &base64::engine::general_purpose::STANDARD,
                                        row.raw,
                                    )),
                                ),
                            };
                            let entry = RowQuarantine {
                                source: &source,
                                etag: &etag_owned,
                                line: row.line,
                                kind,
                                reason,
                                raw,
                                raw_base64,
                            };
                            let line = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
                            quarantine
                                .get_or_insert_with(|| PartWriter::plain(quarantine_key.clone()))
                                .push(&line, &qtx)?;
                            counts.rows_quarantined += 1;
                        }
                    }
                    Ok(())
                },
            );
            match outcome {
                Ok(_lines) => {
                    // Drain what is left so the CRC covers the whole object.
                    let _ = std::io::copy(&mut crc_reader, &mut std::io::sink());
                    counts.crc = crc_reader.crc().sum();
                    for (_, w) in writers {
                        w.finish(&tx)?;
                    }
                    if let Some(q) = quarantine {
                        q.finish(&qtx)?;
                    }
                    Ok(Ok(counts))
                }
                Err(ReadError::Object(p)) => Ok(Err(p)),
                Err(ReadError::Source(e)) => Err(format!("{e}")),
                Err(ReadError::Stopped(why)) => Err(why),
            }
            // Dropping the senders ends the uploaders (aborting anything unfinished).
        });
        let read = read.await.map_err(|e| IngestError::Reader {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            message: e.to_string(),
        })?;
        let curated_written = curated_upload.await.map_err(|e| e.to_string());
        let quarantine_written = quarantine_upload.await.map_err(|e| e.to_string());
        let output_err = |message: String| IngestError::Output {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            message,
        };
        // An upload failure explains a stopped reader better than the reader's own message.
        let curated_written = curated_written.map_err(output_err)?;
        let quarantine_written = quarantine_written.map_err(output_err)?;
        match read {
            Err(message) => {
                if let Err(e) = &curated_written {
                    return Err(output_err(e.clone()));
                }
                if let Err(e) = &quarantine_written {
                    return Err(output_err(e.clone()));
                }
                Err(IngestError::Reader {
                    bucket: obj.bucket.clone(),
                    key: obj.key.clone(),
                    message,
                })
            }
            Ok(Err(problem)) => Ok(Err(problem)),
            Ok(Ok(counts)) => {
                let curated_written = curated_written.map_err(output_err)?;
                let mut quarantine_written = quarantine_written.map_err(output_err)?;
                Ok(Ok((curated_written, quarantine_written.pop(), counts)))
            }
        }
    }
}

/// Row counts and checksum of a streamed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    pub crc: u32,
}

/// Configuration of an S3 ingest function, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestEnv {
    pub ingest: IngestConfig,
    pub metrics_namespace: String,
    pub pipeline: String,
}

impl IngestEnv {
    /// Reads `CURATED_BUCKET` (required), `CURATED_PREFIX` (`transactions`), `QUARANTINE_BUCKET`
    /// (the curated bucket), `QUARANTINE_PREFIX` (`quarantine/transactions`), `STATE_PREFIX`
    /// (`manifests/transactions`, in the curated bucket), `MAX_ROW_BYTES` (65536),
    /// `MAX_OBJECT_BYTES` (10 GiB), `METRICS_NAMESPACE`, `PIPELINE_NAME`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        crate::config::load(lookup, Self::read)
    }

    /// Reads the variables listed at [`IngestEnv::from_lookup`] within a larger configuration.
    pub fn read(env: &mut Env<'_>) -> Self {
        let bucket: String = env.required("CURATED_BUCKET", "the S3 bucket for curated rows");
        let prefix: String =
            env.optional_or("CURATED_PREFIX", "transactions".to_string(), "a key prefix");
        let q_bucket: String = env.optional_or("QUARANTINE_BUCKET", bucket.clone(), "an S3 bucket");
        let q_prefix: String = env.optional_or(
            "QUARANTINE_PREFIX",
            "quarantine/transactions".to_string(),
            "a key prefix",
        );
        let state_prefix: String = env.optional_or(
            "STATE_PREFIX",
            "manifests/transactions".to_string(),
            "a key prefix",
        );
        let max_row_bytes: usize = env.optional_or("MAX_ROW_BYTES", 65_536, "a size in bytes");
        let max_object_bytes: u64 = env.optional_or(
            "MAX_OBJECT_BYTES",
            10 * 1024 * 1024 * 1024,
            "a size in bytes",
        );
        if max_row_bytes < 16 {
            env.problem(
                "MAX_ROW_BYTES",
                "a size in bytes of at least 16",
                Some(max_row_bytes.to_string()),
                "too small",
            );
        }
        IngestEnv {
            ingest: IngestConfig {
                curated: Location::new(bucket.clone(), prefix),
                quarantine: Location::new(q_bucket, q_prefix),
                state: Location::new(bucket, state_prefix),
                max_row_bytes,
                max_object_bytes,
            },
            metrics_namespace: env.optional_or(
                "METRICS_NAMESPACE",
                "Runnel".to_string(),
                "a CloudWatch namespace",
            ),
            pipeline: env.optional_or("PIPELINE_NAME", "runnel".to_string(), "a pipeline name"),
        }
    }
}

/// Records one object's metrics.
pub fn record_metrics(
    metrics: &mut crate::telemetry::Metrics,
    outcome: &ObjectOutcome,
    report: Option<&HookReport>,
) {
    match outcome {
        ObjectOutcome::Ingested(m) => {
            metrics.count("ObjectsIngested", 1);
            metrics.count("RowsIn", m.rows_in);
            metrics.count("RowsOut", m.rows_out);
            metrics.count("RowsQuarantined", m.rows_quarantined);
            metrics.add("BytesIn", crate::telemetry::Unit::Bytes, m.size as f64);
            metrics.add(
                "IngestLatency",
                crate::telemetry::Unit::Milliseconds,
                m.duration_ms as f64,
            );
        }
        ObjectOutcome::Quarantined(_) => metrics.count("ObjectsQuarantined", 1),
        ObjectOutcome::Duplicate { .. } => metrics.count("DuplicateDeliveries", 1),
        ObjectOutcome::Missing => metrics.count("ObjectsMissing", 1),
        ObjectOutcome::Marker => metrics.count("MarkersSeen", 1),
    }
    if let Some(r) = report {
        metrics.count(r.metric, 1);
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Event(#[from] crate::s3event::S3EventError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Handles one event: every object it names, in order. The first failure fails the invocation
/// (Lambda retries; objects already ingested are recognised as duplicates then).
pub async fn handle<T: RowTransform>(
    ingest: &Ingest<T>,
    metrics: &mut crate::telemetry::Metrics,
    event: &Value,
) -> Result<Value, HandleError> {
    let objects = crate::s3event::objects(event)?;
    let mut results = Vec::new();
    for obj in &objects {
        let (outcome, report) = ingest.ingest(obj).await?;
        record_metrics(metrics, &outcome, report.as_ref());
        let summary = match &outcome {
            ObjectOutcome::Ingested(m) | ObjectOutcome::Quarantined(m) => {
                tracing::info!(source = %format!("s3://{}/{}", obj.bucket, obj.key), status = %m.status, rows_in = m.rows_in, rows_out = m.rows_out, rows_quarantined = m.rows_quarantined, outputs = m.outputs.len(), duration_ms = m.duration_ms, "object processed");
                serde_json::json!({"key": obj.key, "status": m.status, "rows_in": m.rows_in, "rows_out": m.rows_out, "rows_quarantined": m.rows_quarantined})
            }
            ObjectOutcome::Duplicate { etag } => {
                serde_json::json!({"key": obj.key, "status": "duplicate", "etag": etag})
            }
            ObjectOutcome::Missing => serde_json::json!({"key": obj.key, "status": "missing"}),
            ObjectOutcome::Marker => serde_json::json!({"key": obj.key, "status": "marker"}),
        };
        let mut summary = summary;
        if let Some(r) = report {
            summary[r.hook] = r.detail;
        }
        results.push(summary);
    }
    Ok(serde_json::json!({"objects": results}))
}

/// Runs an S3 ingest pipeline as a Lambda function, without a hook: the whole `main` of a handler.
pub async fn run<T: RowTransform>(
    service: &str,
    transform: T,
) -> Result<(), lambda_runtime::Error> {
    run_with_hook(service, transform, |_| None::<Arc<dyn IngestHook>>).await
}

/// [`run`] with a hook. `read_hook` reads the hook's settings in the same pass as [`IngestEnv`]
/// (every problem reported at once) and returns `None` when the hook is not wanted; the hook is
/// built once the clients exist.
pub async fn run_with_hook<T: RowTransform, H: HookConfig>(
    service: &str,
    transform: T,
    read_hook: impl FnOnce(&mut Env<'_>) -> Option<H>,
) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init_logging(service);
    let (env, hook) = crate::config::logged(crate::config::from_process_env(|e| {
        (IngestEnv::read(e), read_hook(e))
    }))?;
    let aws = Aws::from_env().await;
    let hook = hook.map(|h| h.build(&env.ingest, &aws));
    let ingest = Ingest::new(env.ingest.clone(), aws.s3(), transform, hook);
    let metrics = crate::telemetry::Metrics::new(env.metrics_namespace.clone())
        .dimension("service", service)
        .dimension("pipeline", env.pipeline.clone());
    let (ingest, metrics) = (&ingest, &metrics);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        crate::telemetry::begin_invocation(&context.request_id, Some(describe(&payload)));
        let mut m = metrics.clone();
        m.property("request_id", context.request_id.clone());
        let result = handle(ingest, &mut m, &payload).await;
        if let Err(e) = &result {
            m.count("IngestFailures", 1);
            tracing::error!(error = %e, "ingest failed; the invocation fails so Lambda retries");
        }
        m.flush();
        result.map_err(lambda_runtime::Error::from)
    }))
    .await
}

/// A loose view of an event for logs: the objects it names, or the error.
pub fn describe(event: &Value) -> String {
    match crate::s3event::objects(event) {
        Ok(objs) => objs
            .iter()
            .map(|o| format!("s3://{}/{}", o.bucket, o.key))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_comes_from_the_key_or_the_modification_time() {
        assert_eq!(
            input_day("raw/transactions/dt=2026-11-21/part-1.csv", None),
            "2026-11-21"
        );
        assert_eq!(input_day("raw/2026-11-20/part-1.csv", None), "2026-11-20");
        let t = DateTime::parse_from_rfc3339("2026-11-19T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(input_day("raw/part-1.csv", Some(t)), "2026-11-19");
        assert_eq!(
            input_day("2026-11-18.csv", Some(t)),
            "2026-11-19",
            "the file name itself is not a folder"
        );
    }

    #[test]
    fn output_stems_are_safe_and_distinct() {
        let a = output_stem("raw/dt=2026-11-22/part 0001 é.csv.gz");
        assert!(a.starts_with("part_0001__-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, output_stem("raw/dt=2026-11-23/part 0001 é.csv.gz"));
    }

    #[test]
    fn output_lines_lead_with_id_source_and_line() {
        let line = output_line(
            "tx-1",
            "s3://raw/a.csv",
            7,
            &serde_json::json!({"amount": "1.00"}),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"_id":"tx-1","_source":"s3://raw/a.csv","_line":7,"amount":"1.00"}"#
        );
    }
}
