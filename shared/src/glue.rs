//! Glue: job run details for alerts.

use crate::alert::{redact_arguments, JobRunDetails};

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
        .map_err(|e| {
            let mut t = e.to_string();
            let mut s = std::error::Error::source(&e);
            while let Some(x) = s {
                t.push_str(": ");
                t.push_str(&x.to_string());
                s = x.source();
            }
            format!("GetJobRun {job_name} {run_id}: {t}")
        })?;
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
