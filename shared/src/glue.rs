//! Glue: job run details for alerts, and starting the day's job run once its input is complete.
//!
//! # Starting a run, like Data Pipeline's preconditions and retries
//! When an object of a day has been ingested (or the day's `_SUCCESS` marker arrives), the
//! trigger checks the day's precondition:
//! - [`Precondition::Marker`] (default): a `_SUCCESS` object sits in the input folder and every
//!   data object of that folder has been ingested;
//! - [`Precondition::Count`]: at least N objects of the day have been ingested.
//!
//! When it holds, the trigger claims `s3://STATE/_glue/<job>/dt=<day>/<input fingerprint>.json`
//! with `If-None-Match: *` (one start per set of inputs, however many deliveries race), checks
//! `GetJobRuns` for a run of the same day still running, and calls `StartJobRun` with
//! `--date`, `--input_path`, `--output_path` and `--run_id`, retrying throttling and
//! `ConcurrentRunsExceededException` with exponential backoff and jitter. If the start fails for
//! good, the claim is released so a later event (or the scheduled fallback run) can start it.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

use crate::alert::{fnv1a, redact_arguments, JobRunDetails};
use crate::sink::Location;

fn fmt_time(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        .map(|t| t.to_rfc3339())
}

/// Reads a job run with `GetJobRun`; secret-looking argument values are redacted.
pub async fn job_run_details(
    glue: &aws_sdk_glue::Client,
    job_name: &str,
    run_id: &str,
) -> Result<JobRunDetails, String> {
    let out = glue
        .get_job_run()
        .job_name(job_name)
        .run_id(run_id)
        .send()
        .await
        .map_err(|e| format!("GetJobRun {job_name} {run_id}: {}", crate::error::chain(&e)))?;
    let run = out
        .job_run()
        .ok_or_else(|| format!("GetJobRun {job_name} {run_id}: no run in the answer"))?;
    Ok(JobRunDetails {
        error_message: run.error_message().map(str::to_string),
        started_on: fmt_time(run.started_on()),
        completed_on: fmt_time(run.completed_on()),
        execution_seconds: Some(run.execution_time() as i64).filter(|s| *s > 0),
        attempt: Some(run.attempt() as i64),
        arguments: redact_arguments(
            run.arguments()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        worker_type: run.worker_type().map(|w| w.as_str().to_string()),
        number_of_workers: run.number_of_workers().map(|n| n as i64),
    })
}

/// When a day's input counts as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// A `_SUCCESS` marker in the input folder, and every data object there ingested.
    Marker,
    /// At least this many objects of the day ingested.
    Count(usize),
}

impl std::str::FromStr for Precondition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("marker") {
            return Ok(Precondition::Marker);
        }
        if let Some(n) = s.strip_prefix("count:") {
            return n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(Precondition::Count)
                .ok_or_else(|| format!("{n:?} is not a positive count"));
        }
        Err(format!("{s:?}: use marker or count:N"))
    }
}

/// What the trigger decided, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Started { run_id: String, attempts: u32 },
    Waiting { reason: String },
    AlreadyRunning { run_id: String },
    AlreadyStarted,
}

impl Decision {
    pub fn metric(&self) -> &'static str {
        match self {
            Decision::Started { .. } => "GlueRunsStarted",
            Decision::Waiting { .. } => "GlueWaiting",
            Decision::AlreadyRunning { .. } => "GlueAlreadyRunning",
            Decision::AlreadyStarted => "GlueAlreadyStarted",
        }
    }
}

/// Why the trigger could not decide or start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlueError {
    #[error("checking the precondition for {day}: {message}")]
    Precondition { day: String, message: String },
    #[error("StartJobRun {job} for {day} failed after {attempts} attempt(s): {message}")]
    Start {
        job: String,
        day: String,
        attempts: u32,
        message: String,
    },
}

/// Where a day's state lives and how a run is started.
#[derive(Debug, Clone)]
pub struct GlueTrigger {
    pub glue: aws_sdk_glue::Client,
    pub s3: aws_sdk_s3::Client,
    pub job_name: String,
    pub precondition: Precondition,
    /// Ingested-object index and start claims live here.
    pub state: Location,
    /// The curated location the job reads (`<prefix>/dt=<day>/` is passed as `--input_path`).
    pub input: Location,
    pub output_path: Option<String>,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
}

/// The index entry recording that `source_key` (with `etag`) of `day` was ingested.
pub fn index_key(state: &Location, day: &str, source_key: &str, etag: &str) -> String {
    state.key(&format!(
        "_days/dt={day}/{:016x}-{}",
        fnv1a(source_key.as_bytes()),
        short_etag(etag)
    ))
}

/// The first 12 characters of an ETag, without quotes.
pub fn short_etag(etag: &str) -> String {
    etag.trim_matches('"')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}

/// Whether a failed start may succeed later: by the modelled error variant where Glue models it,
/// by code for throttling (which it does not model), and for timeouts and lost connections.
fn retryable_start(
    e: &aws_sdk_glue::error::SdkError<aws_sdk_glue::operation::start_job_run::StartJobRunError>,
) -> bool {
    use aws_sdk_glue::error::SdkError;
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            err.is_concurrent_runs_exceeded_exception()
                || err.is_operation_timeout_exception()
                || err.is_internal_service_exception()
                || err.is_resource_number_limit_exceeded_exception()
                || matches!(
                    aws_sdk_glue::error::ProvideErrorMetadata::code(err),
                    Some("ThrottlingException") | Some("TooManyRequestsException")
                )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}

impl GlueTrigger {
    /// Checks the day and starts its run when the input is complete. `raw_bucket` and
    /// `raw_folder` locate the day's input folder (for the marker precondition).
    pub async fn on_day(
        &self,
        day: &str,
        raw_bucket: &str,
        raw_folder: &str,
    ) -> Result<Decision, GlueError> {
        let pre_err = |message: String| GlueError::Precondition {
            day: day.to_string(),
            message,
        };
        let index_prefix = self.state.key(&format!("_days/dt={day}/"));
        let ingested = crate::sink::list_keys(&self.s3, &self.state.bucket, &index_prefix)
            .await
            .map_err(pre_err)?;
        match &self.precondition {
            Precondition::Count(n) if ingested.len() < *n => {
                return Ok(Decision::Waiting {
                    reason: format!("{} of {n} objects ingested", ingested.len()),
                });
            }
            Precondition::Count(_) => {}
            Precondition::Marker => {
                let folder = if raw_folder.is_empty() {
                    String::new()
                } else {
                    format!("{}/", raw_folder.trim_end_matches('/'))
                };
                let objects = crate::sink::list_keys(&self.s3, raw_bucket, &folder)
                    .await
                    .map_err(pre_err)?;
                // Only the folder's own objects, not those of sub-folders.
                let here: Vec<&String> = objects
                    .iter()
                    .filter(|k| !k[folder.len()..].contains('/'))
                    .collect();
                if !here
                    .iter()
                    .any(|k| k.ends_with("/_SUCCESS") || k.as_str() == "_SUCCESS")
                {
                    return Ok(Decision::Waiting {
                        reason: format!("no _SUCCESS marker in s3://{raw_bucket}/{folder}"),
                    });
                }
                let done: BTreeSet<&str> = ingested
                    .iter()
                    .filter_map(|k| k.rsplit('/').next()?.split('-').next())
                    .collect();
                let missing: Vec<&&String> = here
                    .iter()
                    .filter(|k| !k[folder.len()..].starts_with('_'))
                    .filter(|k| !done.contains(format!("{:016x}", fnv1a(k.as_bytes())).as_str()))
                    .collect();
                if !missing.is_empty() {
                    return Ok(Decision::Waiting {
                        reason: format!(
                            "{} object(s) not ingested yet, e.g. {}",
                            missing.len(),
                            missing[0]
                        ),
                    });
                }
            }
        }
        let mut inputs = ingested.clone();
        inputs.sort();
        let fingerprint = format!("{:016x}", fnv1a(inputs.join("\n").as_bytes()));
        let claim_key = self.state.key(&format!(
            "_glue/{}/dt={day}/{fingerprint}.json",
            self.job_name
        ));
        let claimed = self
            .s3
            .put_object()
            .bucket(&self.state.bucket)
            .key(&claim_key)
            .if_none_match("*")
            .body(ByteStream::from(
                serde_json::json!({"day": day, "inputs": inputs.len()})
                    .to_string()
                    .into_bytes(),
            ))
            .send()
            .await;
        match claimed {
            Ok(_) => {}
            Err(e) if crate::sink::is_precondition_failed(&e) => {
                return Ok(Decision::AlreadyStarted);
            }
            Err(e) => {
                return Err(pre_err(format!(
                    "claim s3://{}/{claim_key}: {}",
                    self.state.bucket,
                    crate::error::chain(&e)
                )))
            }
        }
        match self.running_run(day).await {
            Ok(Some(run_id)) => {
                self.release(&claim_key).await;
                return Ok(Decision::AlreadyRunning { run_id });
            }
            Ok(None) => {}
            Err(message) => {
                self.release(&claim_key).await;
                return Err(pre_err(message));
            }
        }
        match self.start(day, &fingerprint).await {
            Ok((run_id, attempts)) => Ok(Decision::Started { run_id, attempts }),
            Err(e) => {
                self.release(&claim_key).await;
                Err(e)
            }
        }
    }

    async fn release(&self, key: &str) {
        if let Err(e) = self
            .s3
            .delete_object()
            .bucket(&self.state.bucket)
            .key(key)
            .send()
            .await
        {
            tracing::error!(error = %crate::error::chain(&e), key, "could not release the Glue start claim");
        }
    }

    /// A run of this job for `day` that is still going, if any.
    async fn running_run(&self, day: &str) -> Result<Option<String>, String> {
        let runs = self
            .glue
            .get_job_runs()
            .job_name(&self.job_name)
            .max_results(200)
            .send()
            .await
            .map_err(|e| format!("GetJobRuns {}: {}", self.job_name, crate::error::chain(&e)))?;
        use aws_sdk_glue::types::JobRunState as S;
        Ok(runs
            .job_runs()
            .iter()
            .filter(|r| {
                matches!(
                    r.job_run_state(),
                    Some(S::Running) | Some(S::Starting) | Some(S::Waiting) | Some(S::Stopping)
                )
            })
            .find(|r| {
                r.arguments()
                    .and_then(|a| a.get("--date"))
                    .map(String::as_str)
                    == Some(day)
            })
            .and_then(|r| r.id().map(str::to_string)))
    }

    async fn start(&self, day: &str, fingerprint: &str) -> Result<(String, u32), GlueError> {
        let input_path = format!(
            "s3://{}/{}",
            self.input.bucket,
            self.input.key(&format!("dt={day}/"))
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .glue
                .start_job_run()
                .job_name(&self.job_name)
                .arguments("--date", day)
                .arguments("--input_path", &input_path)
                .arguments("--run_id", format!("{day}-{fingerprint}"));
            if let Some(out) = &self.output_path {
                request = request.arguments("--output_path", out);
            }
            match request.send().await {
                Ok(out) => return Ok((out.job_run_id().unwrap_or_default().to_string(), attempt)),
                Err(e) => {
                    let code = e
                        .as_service_error()
                        .and_then(aws_sdk_glue::error::ProvideErrorMetadata::code)
                        .map(str::to_string);
                    let transient = retryable_start(&e);
                    if !transient || attempt >= self.max_attempts {
                        return Err(GlueError::Start {
                            job: self.job_name.clone(),
                            day: day.to_string(),
                            attempts: attempt,
                            message: crate::error::chain(&e),
                        });
                    }
                    let base =
                        self.initial_backoff.as_millis() as u64 * (1u64 << (attempt - 1).min(10));
                    // Full jitter: spreads the retries of concurrent triggers.
                    let jitter = fnv1a(
                        format!("{day}{attempt}{:?}", std::time::SystemTime::now()).as_bytes(),
                    ) % (base + 1);
                    tracing::warn!(
                        attempt,
                        code = code.as_deref().unwrap_or("none"),
                        backoff_ms = jitter,
                        "StartJobRun failed; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_parse() {
        assert_eq!("marker".parse::<Precondition>(), Ok(Precondition::Marker));
        assert_eq!(
            "count:3".parse::<Precondition>(),
            Ok(Precondition::Count(3))
        );
        assert!("count:0".parse::<Precondition>().is_err());
        assert!("always".parse::<Precondition>().is_err());
    }

    #[test]
    fn index_keys_are_stable_per_source_and_version() {
        let state = Location::new("curated", "manifests");
        let a = index_key(
            &state,
            "2026-11-22",
            "raw/day/a.csv",
            "\"0123456789abcdef\"",
        );
        assert_eq!(
            a,
            index_key(&state, "2026-11-22", "raw/day/a.csv", "0123456789abcdef")
        );
        assert!(a.starts_with("manifests/_days/dt=2026-11-22/"));
        assert!(a.ends_with("-0123456789ab"));
        assert_ne!(a, index_key(&state, "2026-11-22", "raw/day/a.csv", "ffff"));
    }
}
