//! From a classified failure report to an [`Alert`] (or to nothing, for states not alerted on).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::classify::{ExecutionEvent, GlueJobEvent, Incoming, InvocationRecord, StreamBatch};
use super::model::{Alert, Link, Severity};
use crate::aws::arn;
use crate::aws::glue::JobRunDetails;
use crate::s3event::ObjectRef;
use crate::util::hash::fnv1a;

/// How much of an unrecognised event is shown.
pub const MAX_RAW_EVENT_CHARS: usize = 4096;

/// What the alert builder needs to know beyond the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    /// The pipeline name alerts carry (`PIPELINE_NAME`); subscription filters match on it.
    pub pipeline: String,
    /// States that alert (Glue and Step Functions), upper case.
    pub states: Vec<String>,
    /// Region for console links when the event does not carry one.
    pub region: String,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            pipeline: "runnel".into(),
            states: [
                "FAILED",
                "TIMEOUT",
                "STOPPED",
                "ERROR",
                "TIMED_OUT",
                "ABORTED",
            ]
            .map(String::from)
            .to_vec(),
            region: "us-east-1".into(),
        }
    }
}

impl AlertRules {
    /// Whether a Glue or Step Functions state alerts.
    pub fn alerts_on(&self, state: &str) -> bool {
        self.states.iter().any(|s| s.eq_ignore_ascii_case(state))
    }
}

fn put(details: &mut BTreeMap<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        details.insert(key.to_string(), v.into());
    }
}

/// Severity of a Glue or Step Functions state.
pub fn state_severity(state: &str) -> Severity {
    match state.to_ascii_uppercase().as_str() {
        "FAILED" | "TIMEOUT" | "TIMED_OUT" | "ERROR" => Severity::Error,
        "STOPPED" | "ABORTED" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn glue_links(region: &str, e: &GlueJobEvent) -> Vec<Link> {
    vec![
        Link {
            label: "Job run".into(),
            url: format!(
                "https://{region}.console.aws.amazon.com/gluestudio/home?region={region}#/job/{}/run/{}",
                e.job_name, e.job_run_id
            ),
        },
        Link {
            label: "Error logs".into(),
            url: format!(
                "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/$252Faws-glue$252Fjobs$252Ferror/log-events/{}",
                e.job_run_id
            ),
        },
    ]
}

/// The alert for a Glue job event; `None` for a state that does not alert.
pub fn glue_alert(
    rules: &AlertRules,
    e: &GlueJobEvent,
    stuck: bool,
    run: Result<&JobRunDetails, &str>,
) -> Option<Alert> {
    if !stuck && !rules.alerts_on(&e.state) {
        return None;
    }
    let region = e.region.clone().unwrap_or_else(|| rules.region.clone());
    let mut details = BTreeMap::new();
    details.insert("job_name".into(), json!(e.job_name));
    details.insert("job_run_id".into(), json!(e.job_run_id));
    details.insert("state".into(), json!(e.state));
    put(&mut details, "event_message", e.message.clone());
    match run {
        Ok(r) => {
            put(&mut details, "error_message", r.error_message.clone());
            put(&mut details, "started_on", r.started_on.clone());
            put(&mut details, "completed_on", r.completed_on.clone());
            put(&mut details, "execution_seconds", r.execution_seconds);
            put(&mut details, "attempt", r.attempt);
            put(&mut details, "worker_type", r.worker_type.clone());
            put(&mut details, "number_of_workers", r.number_of_workers);
            if !r.arguments.is_empty() {
                details.insert("arguments".into(), json!(r.arguments));
            }
        }
        Err(why) => {
            details.insert("enrichment_error".into(), json!(why));
        }
    }
    let (severity, summary, fingerprint) = if stuck {
        (
            Severity::Warning,
            format!(
                "Glue job {} run {} is still {}",
                e.job_name, e.job_run_id, e.state
            ),
            format!("glue-stuck:{}:{}", e.job_name, e.job_run_id),
        )
    } else {
        (
            state_severity(&e.state),
            format!("Glue job {} {}", e.job_name, e.state),
            format!("glue:{}:{}:{}", e.job_name, e.job_run_id, e.state),
        )
    };
    Some(Alert {
        severity,
        pipeline: rules.pipeline.clone(),
        source: "glue".into(),
        resource: e.job_name.clone(),
        summary,
        details,
        links: glue_links(&region, e),
        fingerprint,
        occurred_at: e.time,
    })
}

/// The alert for an invocation record (always alerts: something was not processed).
pub fn invocation_alert(rules: &AlertRules, r: &InvocationRecord) -> Alert {
    let name = arn::function_name(&r.function_arn).unwrap_or(&r.function_arn);
    let region = arn::region(&r.function_arn)
        .unwrap_or(&rules.region)
        .to_string();
    let mut details = BTreeMap::new();
    details.insert("function_arn".into(), json!(r.function_arn));
    details.insert("condition".into(), json!(r.condition));
    put(&mut details, "request_id", r.request_id.clone());
    put(
        &mut details,
        "approximate_invoke_count",
        r.approximate_invoke_count,
    );
    put(&mut details, "function_error", r.function_error.clone());
    put(&mut details, "error_type", r.error_type.clone());
    put(&mut details, "error_message", r.error_message.clone());
    put(
        &mut details,
        "request_payload_bytes",
        r.request_payload_bytes,
    );
    put(&mut details, "stored_at", r.stored_at.clone());
    let links = vec![
        Link {
            label: "Function".into(),
            url: format!("https://{region}.console.aws.amazon.com/lambda/home?region={region}#/functions/{name}"),
        },
        Link {
            label: "Logs".into(),
            url: format!(
                "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/$252Faws$252Flambda$252F{name}"
            ),
        },
    ];
    match &r.batch {
        Some(b) => {
            details.insert("shard_id".into(), json!(b.shard_id));
            details.insert(
                "start_sequence_number".into(),
                json!(b.start_sequence_number),
            );
            details.insert("end_sequence_number".into(), json!(b.end_sequence_number));
            put(&mut details, "batch_size", b.batch_size);
            put(&mut details, "stream_arn", b.stream_arn.clone());
            put(
                &mut details,
                "first_record_arrival",
                b.first_arrival.clone(),
            );
            put(&mut details, "last_record_arrival", b.last_arrival.clone());
            details.insert(
                "replay".into(),
                json!(replay_hint(name, b, r.stored_at.as_deref())),
            );
            let size = b
                .batch_size
                .map(|n| format!("{n} records"))
                .unwrap_or_else(|| "a batch".into());
            Alert {
                // Records were skipped: data is missing downstream until replayed.
                severity: Severity::Critical,
                pipeline: rules.pipeline.clone(),
                source: b.source.clone(),
                resource: r.function_arn.clone(),
                summary: format!("{name} skipped {size} of {} ({})", b.shard_id, r.condition),
                details,
                links,
                fingerprint: format!(
                    "{}:{}:{}:{}-{}:{}",
                    b.source,
                    b.stream_arn.as_deref().unwrap_or(""),
                    b.shard_id,
                    b.start_sequence_number,
                    b.end_sequence_number,
                    r.condition
                ),
                occurred_at: r.timestamp,
            }
        }
        None => Alert {
            severity: Severity::Error,
            pipeline: rules.pipeline.clone(),
            source: "lambda".into(),
            resource: r.function_arn.clone(),
            summary: format!("{name} invocation failed ({})", r.condition),
            details,
            links,
            fingerprint: format!(
                "lambda:{}:{}:{}",
                r.function_arn,
                r.request_id.as_deref().unwrap_or(""),
                r.condition
            ),
            occurred_at: r.timestamp,
        },
    }
}

/// How to replay a skipped batch: from the stored record when an S3 destination kept it (its
/// payload is the batch, for every source); else for Kinesis the command with the batch's range
/// (the stream holds the records for its retention period); else what it takes.
fn replay_hint(function: &str, b: &StreamBatch, stored_at: Option<&str>) -> String {
    match (stored_at, b.source.as_str(), &b.stream_arn) {
        (Some(location), _, _) => {
            format!("runnel replay --function {function} --record {location}")
        }
        (None, "kinesis", Some(arn)) => format!(
            "runnel replay --function {function} --stream-arn {arn} --shard {} --from {} --to {} \
             (within the stream's retention)",
            b.shard_id, b.start_sequence_number, b.end_sequence_number
        ),
        _ => format!(
            "runnel replay --function {function} --record s3://<on-failure bucket>/<object> \
             (needs an S3 on-failure destination: its object carries the batch)"
        ),
    }
}

/// The alert for an object in an S3 on-failure destination whose record could not be used
/// (`why`): a batch was given up on, and the object is where it is kept.
pub fn stored_record_alert(rules: &AlertRules, object: &ObjectRef, why: &str) -> Alert {
    let location = object.uri();
    let mut details = BTreeMap::new();
    details.insert("stored_at".into(), json!(location));
    details.insert("record_error".into(), json!(why));
    put(&mut details, "object_bytes", object.size);
    put(&mut details, "version_id", object.version_id.clone());
    details.insert(
        "replay".into(),
        json!(format!("runnel replay --record {location}")),
    );
    Alert {
        // Stored there only when a mapping gave a batch up: data is missing downstream.
        severity: Severity::Critical,
        pipeline: rules.pipeline.clone(),
        source: "lambda".into(),
        resource: format!("arn:aws:s3:::{}", object.bucket),
        summary: format!("A failed batch was stored at {location}; its record was not read"),
        details,
        links: Vec::new(),
        fingerprint: format!("stored:{location}"),
        occurred_at: None,
    }
}

/// The alert for a Step Functions execution; `None` for a status that does not alert.
pub fn execution_alert(rules: &AlertRules, e: &ExecutionEvent) -> Option<Alert> {
    if !rules.alerts_on(&e.status) {
        return None;
    }
    let region = e.region.clone().unwrap_or_else(|| rules.region.clone());
    let machine = e
        .state_machine_arn
        .rsplit(':')
        .next()
        .unwrap_or(&e.state_machine_arn);
    let mut details = BTreeMap::new();
    details.insert("execution_arn".into(), json!(e.execution_arn));
    details.insert("state_machine_arn".into(), json!(e.state_machine_arn));
    details.insert("status".into(), json!(e.status));
    put(&mut details, "error", e.error.clone());
    put(&mut details, "cause", e.cause.clone());
    Some(Alert {
        severity: state_severity(&e.status),
        pipeline: rules.pipeline.clone(),
        source: "stepfunctions".into(),
        resource: e.state_machine_arn.clone(),
        summary: format!(
            "State machine {machine} execution {} {}",
            e.name.as_deref().unwrap_or("?"),
            e.status
        ),
        details,
        links: vec![Link {
            label: "Execution".into(),
            url: format!(
                "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
                e.execution_arn
            ),
        }],
        fingerprint: format!("sfn:{}:{}", e.execution_arn, e.status),
        occurred_at: e.time,
    })
}

/// A generic alert carrying (the start of) the raw event.
pub fn unknown_alert(rules: &AlertRules, raw: &Value) -> Alert {
    let text = raw.to_string();
    let mut shown: String = text.chars().take(MAX_RAW_EVENT_CHARS).collect();
    if shown.len() < text.len() {
        shown.push_str("…[truncated]");
    }
    let mut details = BTreeMap::new();
    details.insert("raw_event".into(), json!(shown));
    details.insert("raw_event_bytes".into(), json!(text.len()));
    let what = raw
        .get("detail-type")
        .and_then(Value::as_str)
        .or_else(|| raw.get("source").and_then(Value::as_str))
        .unwrap_or("an unrecognised event");
    Alert {
        severity: Severity::Warning,
        pipeline: rules.pipeline.clone(),
        source: "unknown".into(),
        resource: raw
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string(),
        summary: format!("Unrecognised failure report: {what}"),
        details,
        links: Vec::new(),
        fingerprint: format!("unknown:{:016x}", fnv1a(text.as_bytes())),
        occurred_at: None,
    }
}

/// Builds the alert for any event that needs no enrichment (Glue events go through
/// [`glue_alert`] with the job run's details).
pub fn alert_for(rules: &AlertRules, event: &Incoming) -> Option<Alert> {
    match event {
        Incoming::GlueJobStateChange(e) => glue_alert(rules, e, false, Err("not enriched")),
        Incoming::GlueJobRunStatus(e) => glue_alert(rules, e, true, Err("not enriched")),
        Incoming::Invocation(r) => Some(invocation_alert(rules, r)),
        Incoming::StoredRecord(o) => Some(stored_record_alert(rules, o, "not read")),
        Incoming::StepFunctions(e) => execution_alert(rules, e),
        Incoming::Unknown(raw) => Some(unknown_alert(rules, raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::alert::classify::classify;
    use crate::util::redact::redact_arguments;

    fn glue(state: &str) -> Incoming {
        classify(
            &json!({"detail-type":"Glue Job State Change","source":"aws.glue","region":"eu-west-1","time":"2026-11-22T03:10:00Z",
            "detail":{"jobName":"daily-etl","severity":"ERROR","state":state,"jobRunId":"jr_1","message":"boom"}}),
        )
    }

    #[test]
    fn succeeded_is_ignored_unless_configured() {
        let rules = AlertRules::default();
        assert!(alert_for(&rules, &glue("SUCCEEDED")).is_none());
        let mut with_success = rules.clone();
        with_success.states.push("SUCCEEDED".into());
        assert_eq!(
            alert_for(&with_success, &glue("SUCCEEDED"))
                .unwrap()
                .severity,
            Severity::Info
        );
    }

    #[test]
    fn glue_alert_carries_enrichment_and_redacts_secrets() {
        let Incoming::GlueJobStateChange(e) = glue("TIMEOUT") else {
            panic!()
        };
        let run = JobRunDetails {
            error_message: Some("Timeout".into()),
            execution_seconds: Some(2880),
            attempt: Some(1),
            arguments: redact_arguments([
                ("--input".to_string(), "s3://b/x".to_string()),
                ("--db_password".to_string(), "hunter2".to_string()),
            ]),
            ..Default::default()
        };
        let a = glue_alert(&AlertRules::default(), &e, false, Ok(&run)).unwrap();
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.summary, "Glue job daily-etl TIMEOUT");
        assert_eq!(a.details["execution_seconds"], 2880);
        assert_eq!(a.details["arguments"]["--db_password"], "[redacted]");
        assert!(!a.sns_message().body.contains("hunter2"));
        assert!(a.links[0]
            .url
            .starts_with("https://eu-west-1.console.aws.amazon.com/gluestudio/"));
        assert_eq!(a.fingerprint, "glue:daily-etl:jr_1:TIMEOUT");
    }

    #[test]
    fn enrichment_failure_still_alerts() {
        let Incoming::GlueJobStateChange(e) = glue("FAILED") else {
            panic!()
        };
        let a = glue_alert(&AlertRules::default(), &e, false, Err("AccessDenied")).unwrap();
        assert_eq!(a.details["enrichment_error"], "AccessDenied");
    }

    #[test]
    fn a_stored_record_is_replayed_from_its_object() {
        let record = json!({"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"RecordAgeExceeded"},
            "version":"1.0","timestamp":"2026-11-22T00:38:06.021Z","payload":"{\"Records\":[]}",
            "DDBStreamBatchInfo":{"shardId":"shardId-1","startSequenceNumber":"1","endSequenceNumber":"9","batchSize":2,"streamArn":"arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}});
        let Incoming::Invocation(mut r) = classify(&record) else {
            panic!()
        };
        assert_eq!(r.request_payload_bytes, Some(14));
        let without = invocation_alert(&AlertRules::default(), &r);
        assert!(without.details["replay"]
            .as_str()
            .unwrap()
            .contains("needs an S3 on-failure destination"));
        r.stored_at = Some("s3://failed/aws/lambda/u/shardId-1/x".into());
        let a = invocation_alert(&AlertRules::default(), &r);
        assert_eq!(
            a.details["replay"],
            "runnel replay --function f --record s3://failed/aws/lambda/u/shardId-1/x"
        );
        assert_eq!(
            a.details["stored_at"],
            "s3://failed/aws/lambda/u/shardId-1/x"
        );
        assert_eq!(
            (&a.severity, &a.fingerprint),
            (&without.severity, &without.fingerprint)
        );
        assert!(!a.sns_message().body.contains("Records"), "payload leaked");

        let object = ObjectRef {
            bucket: "failed".into(),
            key: "aws/lambda/u/k".into(),
            etag: None,
            size: Some(10),
            version_id: None,
            sequencer: None,
        };
        let unread = stored_record_alert(&AlertRules::default(), &object, "AccessDenied");
        assert_eq!(unread.severity, Severity::Critical);
        assert_eq!(
            unread.details["replay"],
            "runnel replay --record s3://failed/aws/lambda/u/k"
        );
        assert_eq!(unread.details["record_error"], "AccessDenied");
    }

    #[test]
    fn unknown_events_are_truncated_and_fingerprinted_stably() {
        let raw = json!({"source":"custom.app","blob":"x".repeat(10_000)});
        let a = unknown_alert(&AlertRules::default(), &raw);
        assert!(
            a.details["raw_event"].as_str().unwrap().chars().count() <= MAX_RAW_EVENT_CHARS + 20
        );
        assert_eq!(
            a.fingerprint,
            unknown_alert(&AlertRules::default(), &raw).fingerprint
        );
    }
}
