//! The Glue trigger (feature `glue`): an [`IngestHook`] that starts the day's Glue job run once
//! the day's input is complete.
//!
//! # Starting a run, like Data Pipeline's preconditions and retries
//! When an object of a day has been ingested (or the day's `_SUCCESS` marker arrives), the
//! trigger checks the day's precondition against ingest's index of ingested objects ([`index_key`](crate::ingest::index_key)):
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

mod config;
mod decision;

pub use config::{GlueTriggerConfig, Precondition};
pub use decision::{Decision, GlueError};

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_glue::error::SdkError;
use aws_sdk_glue::operation::start_job_run::StartJobRunError;
use aws_sdk_s3::primitives::ByteStream;
use futures::future::BoxFuture;

use crate::aws::s3::{is_precondition_failed, list_keys, ListError};
use crate::aws::{Aws, LazyClient};
use crate::ingest::{index, HookReport, IngestConfig, IngestHook};
use crate::s3event::ObjectRef;
use crate::sink::Location;
use crate::util::backoff::Backoff;
use crate::util::hash::fnv1a;

/// Where a day's state lives and how a run is started.
#[derive(Debug, Clone)]
pub struct GlueTrigger {
    /// Checks running job runs and starts new ones; built when a day first looks complete.
    pub glue: LazyClient<aws_sdk_glue::Client>,
    /// Reads the index and the input folder, writes start claims.
    pub s3: aws_sdk_s3::Client,
    /// The Glue job to start.
    pub job_name: String,
    /// When a day's input counts as complete.
    pub precondition: Precondition,
    /// Ingested-object index and start claims live here.
    pub state: Location,
    /// The curated location the job reads (`<prefix>/dt=<day>/` is passed as `--input_path`).
    pub input: Location,
    /// Passed as `--output_path` when set.
    pub output_path: Option<String>,
    /// `StartJobRun` calls before giving up on retryable errors (the first included).
    pub max_attempts: u32,
    /// Waits between `StartJobRun` attempts.
    pub backoff: Backoff,
}

/// Whether a failed start may succeed later: by the modelled error variant where Glue models it,
/// by code for throttling (which it does not model), and for timeouts and lost connections.
fn retryable_start(e: &SdkError<StartJobRunError>) -> bool {
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

/// `StartJobRun` retries: the first waits up to 200 ms, each later one up to twice as long, at
/// most 1024 times the first.
const START_BACKOFF: Backoff = Backoff::new(
    Duration::from_millis(200),
    Duration::from_millis(200 * 1024),
);

impl GlueTrigger {
    /// The trigger of an ingest function: its index and claims in ingest's state location, its
    /// job reading ingest's curated output.
    pub fn new(config: GlueTriggerConfig, ingest: &IngestConfig, aws: &Aws) -> Self {
        GlueTrigger {
            glue: aws.glue_on_first_use(),
            s3: aws.s3(),
            job_name: config.job_name,
            precondition: config.precondition,
            state: ingest.state.clone(),
            input: ingest.output.curated.clone(),
            output_path: config.output_path,
            max_attempts: config.start_attempts,
            backoff: START_BACKOFF,
        }
    }

    /// Checks the day and starts its run when the input is complete. `raw_bucket` and
    /// `raw_folder` locate the day's input folder (for the marker precondition).
    pub async fn on_day(
        &self,
        day: &str,
        raw_bucket: &str,
        raw_folder: &str,
    ) -> Result<Decision, GlueError> {
        let listed = |source: ListError| GlueError::Precondition {
            day: day.to_string(),
            source,
        };
        let ingested = list_keys(
            &self.s3,
            &self.state.bucket,
            &index::day_prefix(&self.state, day),
        )
        .await
        .map_err(listed)?;
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
                let objects = list_keys(&self.s3, raw_bucket, &folder)
                    .await
                    .map_err(listed)?;
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
                    .filter_map(|k| index::entry_source_id(k))
                    .collect();
                let missing: Vec<&&String> = here
                    .iter()
                    .filter(|k| !k[folder.len()..].starts_with('_'))
                    .filter(|k| !done.contains(index::source_id(k).as_str()))
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
            Err(e) if is_precondition_failed(&e) => {
                return Ok(Decision::AlreadyStarted);
            }
            Err(e) => {
                return Err(GlueError::Claim {
                    day: day.to_string(),
                    bucket: self.state.bucket.clone(),
                    key: claim_key,
                    source: Box::new(e),
                })
            }
        }
        match self.running_run(day).await {
            Ok(Some(run_id)) => {
                self.release(&claim_key).await;
                return Ok(Decision::AlreadyRunning { run_id });
            }
            Ok(None) => {}
            Err(e) => {
                self.release(&claim_key).await;
                return Err(e);
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
    async fn running_run(&self, day: &str) -> Result<Option<String>, GlueError> {
        let runs = self
            .glue
            .get()
            .get_job_runs()
            .job_name(&self.job_name)
            .max_results(200)
            .send()
            .await
            .map_err(|e| GlueError::JobRuns {
                job: self.job_name.clone(),
                day: day.to_string(),
                source: Box::new(e),
            })?;
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
                .get()
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
                            source: Box::new(e),
                        });
                    }
                    // Full jitter: spreads the retries of triggers racing for the same limit.
                    let wait = self.backoff.delay(attempt - 1, fnv1a(day.as_bytes()));
                    tracing::warn!(
                        attempt,
                        code = code.as_deref().unwrap_or("none"),
                        backoff_ms = wait.as_millis() as u64,
                        "StartJobRun failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Logs the decision (or the failure to decide) and reports it.
impl IngestHook for GlueTrigger {
    fn after_object<'a>(
        &'a self,
        day: &'a str,
        object: &'a ObjectRef,
    ) -> BoxFuture<'a, Option<HookReport>> {
        Box::pin(async move {
            let job = &self.job_name;
            let raw_folder = crate::ingest::folder(&object.key);
            let decision = match self.on_day(day, &object.bucket, raw_folder).await {
                Ok(decision) => decision,
                Err(e) => {
                    // The ingest itself succeeded; the scheduled fallback run covers a missed start.
                    tracing::error!(error = %crate::error::chain(&e), day, "Glue start decision failed");
                    return None;
                }
            };
            match &decision {
                Decision::Started { run_id, attempts } => {
                    tracing::info!(day, job = %job, run_id = %run_id, attempts, "Glue job run started")
                }
                Decision::Waiting { reason } => {
                    tracing::info!(day, job = %job, reason = %reason, "Glue job waits for its precondition")
                }
                Decision::AlreadyRunning { run_id } => {
                    tracing::info!(day, job = %job, run_id = %run_id, "Glue job already running for the day")
                }
                Decision::AlreadyStarted => {
                    tracing::info!(day, job = %job, "Glue job already started for these inputs")
                }
            }
            Some(decision.report())
        })
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
    fn decisions_round_trip_through_their_report() {
        for d in [
            Decision::Started {
                run_id: "jr_1".into(),
                attempts: 2,
            },
            Decision::Waiting {
                reason: "1 of 2 objects ingested".into(),
            },
            Decision::AlreadyRunning {
                run_id: "jr_0".into(),
            },
            Decision::AlreadyStarted,
        ] {
            let report = d.report();
            assert_eq!(report.metric, d.metric());
            assert_eq!(Decision::from_report(&report), Some(d));
        }
        let other = HookReport {
            hook: "other",
            metric: "Other",
            detail: serde_json::json!({"decision": "already_started"}),
        };
        assert_eq!(Decision::from_report(&other), None);
    }

    #[test]
    fn configuration_is_checked_even_without_a_job() {
        use crate::config::lookup_in;
        assert_eq!(GlueTriggerConfig::from_lookup(lookup_in(&[])), Ok(None));
        let err = GlueTriggerConfig::from_lookup(lookup_in(&[
            ("GLUE_PRECONDITION", "when ready"),
            ("GLUE_START_ATTEMPTS", "0"),
        ]))
        .unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(vars, ["GLUE_PRECONDITION", "GLUE_START_ATTEMPTS"]);
        let config = GlueTriggerConfig::from_lookup(lookup_in(&[
            ("GLUE_JOB_NAME", "daily-etl"),
            ("GLUE_PRECONDITION", "count:3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.precondition, Precondition::Count(3));
        assert_eq!(config.start_attempts, 5);
    }

    #[test]
    fn a_failed_start_keeps_its_cause_for_the_logs() {
        use aws_sdk_glue::types::error::ConcurrentRunsExceededException;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        let cause = StartJobRunError::ConcurrentRunsExceededException(
            ConcurrentRunsExceededException::builder()
                .message("too many")
                .build(),
        );
        let raw = Response::new(
            StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        let e = GlueError::Start {
            job: "daily-etl".into(),
            day: "2026-11-22".into(),
            attempts: 3,
            source: Box::new(SdkError::service_error(cause, raw)),
        };
        assert_eq!(
            e.to_string(),
            "StartJobRun daily-etl for 2026-11-22 failed after 3 attempt(s)"
        );
        let logged = crate::error::chain(&e);
        assert!(logged.starts_with(&e.to_string()), "{logged}");
        assert!(logged.ends_with("too many"), "{logged}");
    }

    #[test]
    fn start_backoff_matches_the_documented_bounds() {
        assert_eq!(START_BACKOFF.bound(0), Duration::from_millis(200));
        assert_eq!(START_BACKOFF.bound(3), Duration::from_millis(1600));
        assert_eq!(START_BACKOFF.bound(19), Duration::from_millis(200 * 1024));
    }
}
