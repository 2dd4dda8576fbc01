//! What the Glue trigger decided for a day, and why it could not decide.

use crate::telemetry::metric;
use aws_sdk_glue::error::SdkError;
use aws_sdk_glue::operation::get_job_runs::GetJobRunsError;
use aws_sdk_glue::operation::start_job_run::StartJobRunError;
use aws_sdk_s3::operation::put_object::PutObjectError;
use serde::{Deserialize, Serialize};

use crate::aws::s3::ListError;
use crate::ingest::HookReport;

/// What the trigger decided, for logs and metrics; the detail of its [`HookReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The precondition held and `StartJobRun` succeeded.
    Started {
        /// The new job run's id.
        run_id: String,
        /// `StartJobRun` calls it took (throttled ones included).
        attempts: u32,
    },
    /// The precondition does not hold yet; a later object or marker of the day checks again.
    Waiting {
        /// What is missing, for people (e.g. `1 of 2 objects ingested`).
        reason: String,
    },
    /// A run of the job for the same day is still going; nothing was started.
    AlreadyRunning {
        /// The running job run's id.
        run_id: String,
    },
    /// Another delivery already claimed the start for the same set of inputs.
    AlreadyStarted,
}

impl Decision {
    /// The count metric of this decision.
    pub fn metric(&self) -> &'static str {
        match self {
            Decision::Started { .. } => metric::GLUE_RUNS_STARTED,
            Decision::Waiting { .. } => metric::GLUE_WAITING,
            Decision::AlreadyRunning { .. } => metric::GLUE_ALREADY_RUNNING,
            Decision::AlreadyStarted => metric::GLUE_ALREADY_STARTED,
        }
    }

    /// The decision a report of the trigger carries (`None` for another hook's report).
    pub fn from_report(report: &HookReport) -> Option<Decision> {
        if report.hook != HOOK_NAME {
            return None;
        }
        serde_json::from_value(report.detail.clone()).ok()
    }

    pub(super) fn report(&self) -> HookReport {
        HookReport {
            hook: HOOK_NAME,
            metric: self.metric(),
            detail: serde_json::to_value(self).expect("a decision serialises"),
        }
    }
}

/// The trigger's name in ingest summaries.
const HOOK_NAME: &str = "glue";

/// Why the trigger could not decide or start. The cause is kept as the error's source: log it
/// with [`crate::error::chain`] to see why.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// Listing the day's ingested objects or its input folder failed.
    #[error("checking the precondition for {day}")]
    Precondition {
        /// The day (`YYYY-MM-DD`).
        day: String,
        /// The failed listing.
        #[source]
        source: ListError,
    },
    /// Writing the day's start claim failed (other than losing it to another delivery).
    #[error("claiming the start for {day} at s3://{bucket}/{key}")]
    Claim {
        /// The day (`YYYY-MM-DD`).
        day: String,
        /// The state bucket.
        bucket: String,
        /// The claim's key.
        key: String,
        /// Boxed: the SDK error is large and failures are rare.
        #[source]
        source: Box<SdkError<PutObjectError>>,
    },
    /// `GetJobRuns` failed, so whether a run of the day is still going is unknown.
    #[error("GetJobRuns {job} for {day}")]
    JobRuns {
        /// The Glue job.
        job: String,
        /// The day (`YYYY-MM-DD`).
        day: String,
        /// Boxed: the SDK error is large and failures are rare.
        #[source]
        source: Box<SdkError<GetJobRunsError>>,
    },
    /// `StartJobRun` failed with an error that is not retryable, or on every attempt.
    #[error("StartJobRun {job} for {day} failed after {attempts} attempt(s)")]
    Start {
        /// The Glue job.
        job: String,
        /// The day (`YYYY-MM-DD`).
        day: String,
        /// Calls made, the failed last one included.
        attempts: u32,
        /// The last attempt's error. Boxed: the SDK error is large and failures are rare.
        #[source]
        source: Box<SdkError<StartJobRunError>>,
    },
}
