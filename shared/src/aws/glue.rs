//! Reading a Glue job run (`GetJobRun`) into the details an alert or a log shows.

use std::collections::BTreeMap;

use aws_sdk_glue::error::SdkError;
use aws_sdk_glue::operation::get_job_run::GetJobRunError;

use crate::util::redact::redact_arguments;

/// Details of a Glue job run from `GetJobRun`, already stripped of secret argument values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRunDetails {
    /// Glue's error message for a failed run.
    pub error_message: Option<String>,
    /// When the run started (RFC 3339).
    pub started_on: Option<String>,
    /// When the run ended (RFC 3339).
    pub completed_on: Option<String>,
    /// Seconds the run used resources; `None` while Glue reports 0.
    pub execution_seconds: Option<i64>,
    /// Glue's attempt number: 0 for the first run, higher for its own retries.
    pub attempt: Option<i64>,
    /// The run's arguments, secret-looking values redacted.
    pub arguments: BTreeMap<String, String>,
    /// The worker type (`G.1X`, `G.2X`, …).
    pub worker_type: Option<String>,
    /// Workers allocated to the run.
    pub number_of_workers: Option<i64>,
}

/// Why a job run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobRunError {
    /// The call failed.
    #[error("GetJobRun {job_name} {run_id}")]
    Call {
        /// The Glue job.
        job_name: String,
        /// The run asked for.
        run_id: String,
        /// Boxed: the SDK error is large and failures are rare.
        #[source]
        source: Box<SdkError<GetJobRunError>>,
    },
    /// The call succeeded but its answer held no run.
    #[error("GetJobRun {job_name} {run_id}: no run in the answer")]
    NoRun {
        /// The Glue job.
        job_name: String,
        /// The run asked for.
        run_id: String,
    },
}

fn rfc3339(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        .map(|t| t.to_rfc3339())
}

/// Reads a job run with `GetJobRun`; secret-looking argument values are redacted.
pub async fn job_run_details(
    glue: &aws_sdk_glue::Client,
    job_name: &str,
    run_id: &str,
) -> Result<JobRunDetails, JobRunError> {
    let out = glue
        .get_job_run()
        .job_name(job_name)
        .run_id(run_id)
        .send()
        .await
        .map_err(|e| JobRunError::Call {
            job_name: job_name.to_string(),
            run_id: run_id.to_string(),
            source: Box::new(e),
        })?;
    let run = out.job_run().ok_or_else(|| JobRunError::NoRun {
        job_name: job_name.to_string(),
        run_id: run_id.to_string(),
    })?;
    Ok(JobRunDetails {
        error_message: run.error_message().map(str::to_string),
        started_on: rfc3339(run.started_on()),
        completed_on: rfc3339(run.completed_on()),
        execution_seconds: Some(run.execution_time() as i64).filter(|s| *s > 0),
        attempt: Some(run.attempt() as i64),
        arguments: redact_arguments(
            run.arguments()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        ),
        worker_type: run.worker_type().map(|w| w.as_str().to_string()),
        number_of_workers: run.number_of_workers().map(|n| n as i64),
    })
}
