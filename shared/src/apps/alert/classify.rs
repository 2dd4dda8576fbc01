//! Telling incoming failure events apart: EventBridge events (Glue, Step Functions), Lambda
//! invocation records (asynchronous and event-source on-failure destinations), delivered directly,
//! through SQS, or through SNS; objects an S3 on-failure destination stored (announced by S3) —
//! and anything else.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::s3event::{self, ObjectRef};

/// A failure report as it arrived, with the SQS message it came in (for partial batch failures).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The SQS message it came in, if any: a failed alert is reported for that message.
    pub sqs_message_id: Option<String>,
    /// The classified payload.
    pub event: Incoming,
}

/// What kind of failure report a payload is.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// "Glue Job State Change": a run reached a state (`FAILED`, `TIMEOUT`, `SUCCEEDED`, …).
    GlueJobStateChange(GlueJobEvent),
    /// "Glue Job Run Status": a run still RUNNING/STARTING past its notify delay.
    GlueJobRunStatus(GlueJobEvent),
    /// A Lambda invocation record from an on-failure destination (boxed: the largest kind).
    Invocation(Box<InvocationRecord>),
    /// An object created in an S3 on-failure destination: the invocation record is in the object
    /// (read by the alert service), the event only names it.
    StoredRecord(ObjectRef),
    /// "Step Functions Execution Status Change".
    StepFunctions(ExecutionEvent),
    /// Anything else, kept as it arrived so the alert can show it.
    Unknown(Value),
}

/// A Glue job event from EventBridge (state change or run status).
#[derive(Debug, Clone, PartialEq)]
pub struct GlueJobEvent {
    /// The Glue job.
    pub job_name: String,
    /// The run (`jr_…`).
    pub job_run_id: String,
    /// The run's state as Glue names it (`FAILED`, `RUNNING`, …).
    pub state: String,
    /// EventBridge's severity of the event (`ERROR`, `INFO`, …).
    pub severity: Option<String>,
    /// Glue's message about the run.
    pub message: Option<String>,
    /// When the event was emitted.
    pub time: Option<DateTime<Utc>>,
    /// The run's region.
    pub region: Option<String>,
    /// The run's account id.
    pub account: Option<String>,
}

/// A stream batch an event source mapping gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamBatch {
    /// `kinesis`, `dynamodb` or `kafka`.
    pub source: String,
    /// The shard (or DynamoDB stream shard) of the batch; Kafka: its topic-partitions,
    /// comma-separated.
    pub shard_id: String,
    /// Sequence number of the batch's first record; Kafka: the first offset per partition.
    pub start_sequence_number: String,
    /// Sequence number of the batch's last record; Kafka: the last offset per partition.
    pub end_sequence_number: String,
    /// Records in the batch.
    pub batch_size: Option<u64>,
    /// The stream's ARN; Kafka: the cluster's ARN (MSK) or bootstrap servers (self-managed).
    pub stream_arn: Option<String>,
    /// Approximate arrival of the first record (RFC 3339 text, as Lambda wrote it).
    pub first_arrival: Option<String>,
    /// Approximate arrival of the last record (RFC 3339 text, as Lambda wrote it).
    pub last_arrival: Option<String>,
}

/// Lambda's invocation record (destinations and event-source on-failure records).
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// ARN of the function that failed.
    pub function_arn: String,
    /// Why Lambda gave up: `RetriesExhausted`, `EventAgeExceeded`, `RetryAttemptsExhausted`, ….
    pub condition: String,
    /// The failed invocation's request id.
    pub request_id: Option<String>,
    /// Invocations made, retries included.
    pub approximate_invoke_count: Option<u64>,
    /// `Handled` or `Unhandled` when the function itself failed.
    pub function_error: Option<String>,
    /// `errorMessage` of the function's error response.
    pub error_message: Option<String>,
    /// `errorType` of the function's error response.
    pub error_type: Option<String>,
    /// The stream batch, for event source mappings of Kinesis and DynamoDB streams.
    pub batch: Option<StreamBatch>,
    /// Size of the original event, when the record carries it (the payload itself is never used).
    pub request_payload_bytes: Option<usize>,
    /// When Lambda wrote the record.
    pub timestamp: Option<DateTime<Utc>>,
    /// Where an S3 on-failure destination stored the record (`s3://bucket/key`): the object
    /// carries the batch itself, so a replay from it needs nothing else.
    pub stored_at: Option<String>,
}

/// A Step Functions execution event from EventBridge.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionEvent {
    /// The execution's ARN.
    pub execution_arn: String,
    /// ARN of the state machine it ran.
    pub state_machine_arn: String,
    /// The execution's name.
    pub name: Option<String>,
    /// The execution's status (`FAILED`, `TIMED_OUT`, `ABORTED`, `SUCCEEDED`, …).
    pub status: String,
    /// The error name of a failed execution.
    pub error: Option<String>,
    /// The error's cause, as Step Functions reports it.
    pub cause: Option<String>,
    /// When the event was emitted.
    pub time: Option<DateTime<Utc>>,
    /// The execution's region.
    pub region: Option<String>,
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A Kafka mapping's on-failure record (`KafkaBatchInfo`, MSK and self-managed): offsets per
/// topic-partition in `recordsInfo`. The partitions become the batch's "shard" and their first and
/// last offsets its range, listed in the same order (one entry per partition).
fn kafka_batch(v: &Value) -> Option<StreamBatch> {
    let b = v.get("KafkaBatchInfo")?;
    let ranges: Vec<(&String, &Value)> = b
        .get("recordsInfo")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    // Offsets are numbers, timestamps text; either is shown as written.
    let field = |r: &Value, key: &str| match r.get(key) {
        Some(Value::String(t)) => t.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    let list = |key: &str| {
        ranges
            .iter()
            .map(|(_, r)| field(r, key))
            .collect::<Vec<_>>()
            .join(",")
    };
    let partitions: Vec<&str> = ranges.iter().map(|(p, _)| p.as_str()).collect();
    let nonempty = |t: String| (!t.is_empty()).then_some(t);
    Some(StreamBatch {
        source: "kafka".into(),
        shard_id: partitions.join(","),
        start_sequence_number: list("firstRecordOffset"),
        end_sequence_number: list("lastRecordOffset"),
        batch_size: b.get("batchSize").and_then(Value::as_u64),
        stream_arn: s(b, "eventSourceArn").or_else(|| s(b, "bootstrapServers")),
        first_arrival: nonempty(list("firstRecordTimestamp")),
        last_arrival: nonempty(list("lastRecordTimestamp")),
    })
}

/// Unwraps SQS and SNS deliveries and classifies every payload inside.
pub fn deliveries(event: &Value) -> Vec<Delivery> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return vec![Delivery {
            sqs_message_id: None,
            event: classify(event),
        }];
    };
    // A bucket notification straight to the function: one report per object it names.
    if !records.is_empty()
        && records
            .iter()
            .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
    {
        if let Ok(objects) = s3event::objects(event) {
            return objects
                .into_iter()
                .map(|o| Delivery {
                    sqs_message_id: None,
                    event: Incoming::StoredRecord(o),
                })
                .collect();
        }
    }
    let is_wrapper = |r: &Value| {
        r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")
            || r.get("EventSource").and_then(Value::as_str) == Some("aws:sns")
    };
    if records.is_empty() || !records.iter().all(is_wrapper) {
        return vec![Delivery {
            sqs_message_id: None,
            event: classify(event),
        }];
    }
    records
        .iter()
        .map(|r| {
            let (id, text) = if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
                (s(r, "messageId"), s(r, "body").unwrap_or_default())
            } else {
                (
                    None,
                    r.pointer("/Sns/Message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            };
            Delivery {
                sqs_message_id: id,
                event: classify(&unwrap_text(&text)),
            }
        })
        .collect()
}

/// Parses a message body; an SNS notification delivered to SQS without raw delivery wraps the
/// real message once more.
fn unwrap_text(text: &str) -> Value {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        if let Some(inner) = value.get("Message").and_then(Value::as_str) {
            return serde_json::from_str(inner)
                .unwrap_or_else(|_| Value::String(inner.to_string()));
        }
    }
    value
}

/// Classifies one payload.
pub fn classify(v: &Value) -> Incoming {
    let detail_type = v.get("detail-type").and_then(Value::as_str);
    let detail = v.get("detail").unwrap_or(&Value::Null);
    match detail_type {
        Some("Glue Job State Change") | Some("Glue Job Run Status") => {
            let ev = GlueJobEvent {
                job_name: s(detail, "jobName").unwrap_or_default(),
                job_run_id: s(detail, "jobRunId").unwrap_or_default(),
                state: s(detail, "state").unwrap_or_default(),
                severity: s(detail, "severity"),
                message: s(detail, "message"),
                time: time(v, "time"),
                region: s(v, "region"),
                account: s(v, "account"),
            };
            if ev.job_name.is_empty() {
                return Incoming::Unknown(v.clone());
            }
            if detail_type == Some("Glue Job State Change") {
                Incoming::GlueJobStateChange(ev)
            } else {
                Incoming::GlueJobRunStatus(ev)
            }
        }
        Some("Step Functions Execution Status Change") => match s(detail, "executionArn") {
            Some(execution_arn) => Incoming::StepFunctions(ExecutionEvent {
                execution_arn,
                state_machine_arn: s(detail, "stateMachineArn").unwrap_or_default(),
                name: s(detail, "name"),
                status: s(detail, "status").unwrap_or_default(),
                error: s(detail, "error"),
                cause: s(detail, "cause"),
                time: time(v, "time"),
                region: s(v, "region"),
            }),
            None => Incoming::Unknown(v.clone()),
        },
        _ => match invocation_record(v) {
            Some(r) => Incoming::Invocation(Box::new(r)),
            None => stored_record(v).unwrap_or_else(|| Incoming::Unknown(v.clone())),
        },
    }
}

/// An S3 "Object Created" event naming one object (EventBridge, or a notification of one record
/// queued or published): the object is an on-failure record to read.
fn stored_record(v: &Value) -> Option<Incoming> {
    let from_s3 = v.get("source").and_then(Value::as_str) == Some("aws.s3")
        || v.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:s3");
    if !from_s3 {
        return None;
    }
    match s3event::objects(v) {
        Ok(mut objects) if objects.len() == 1 => objects.pop().map(Incoming::StoredRecord),
        _ => None,
    }
}

fn invocation_record(v: &Value) -> Option<InvocationRecord> {
    let ctx = v.get("requestContext")?;
    let function_arn = s(ctx, "functionArn")?;
    let condition = s(ctx, "condition")?;
    let response = v.get("responseContext").unwrap_or(&Value::Null);
    let payload = v.get("responsePayload").unwrap_or(&Value::Null);
    let batch = [
        ("KinesisBatchInfo", "kinesis"),
        ("DDBStreamBatchInfo", "dynamodb"),
    ]
    .iter()
    .find_map(|(key, source)| {
        let b = v.get(*key)?;
        Some(StreamBatch {
            source: source.to_string(),
            shard_id: s(b, "shardId").unwrap_or_default(),
            start_sequence_number: s(b, "startSequenceNumber").unwrap_or_default(),
            end_sequence_number: s(b, "endSequenceNumber").unwrap_or_default(),
            batch_size: b.get("batchSize").and_then(Value::as_u64),
            stream_arn: s(b, "streamArn"),
            first_arrival: s(b, "approximateArrivalOfFirstRecord"),
            last_arrival: s(b, "approximateArrivalOfLastRecord"),
        })
    })
    .or_else(|| kafka_batch(v));
    Some(InvocationRecord {
        function_arn,
        condition,
        request_id: s(ctx, "requestId"),
        approximate_invoke_count: ctx.get("approximateInvokeCount").and_then(Value::as_u64),
        function_error: s(response, "functionError"),
        error_message: s(payload, "errorMessage"),
        error_type: s(payload, "errorType"),
        batch,
        // `requestPayload` (asynchronous invocations) is the event as JSON, `payload` (S3
        // on-failure destinations) the event as JSON text.
        request_payload_bytes: v
            .get("requestPayload")
            .map(|p| p.to_string().len())
            .or_else(|| v.get("payload").and_then(Value::as_str).map(str::len)),
        timestamp: time(v, "timestamp"),
        stored_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn glue(state: &str) -> Value {
        json!({"version":"0","id":"1","detail-type":"Glue Job State Change","source":"aws.glue","account":"123456789012",
               "time":"2026-11-22T03:10:00Z","region":"us-east-1","resources":[],
               "detail":{"jobName":"daily-etl","severity":"ERROR","state":state,"jobRunId":"jr_1","message":"boom"}})
    }

    #[test]
    fn glue_state_change_is_recognised() {
        match classify(&glue("FAILED")) {
            Incoming::GlueJobStateChange(e) => {
                assert_eq!(
                    (e.job_name.as_str(), e.job_run_id.as_str(), e.state.as_str()),
                    ("daily-etl", "jr_1", "FAILED")
                );
                assert_eq!(e.time.unwrap().to_rfc3339(), "2026-11-22T03:10:00+00:00");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kafka_on_failure_records_are_stream_batches_not_async_failures() {
        let record = json!({"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"RetryAttemptsExhausted","approximateInvokeCount":3},
            "responseContext":{"statusCode":200,"functionError":"Unhandled"},"version":"1.0","timestamp":"2026-11-22T00:38:06.021Z",
            "KafkaBatchInfo":{"batchSize":120,"eventSourceArn":"arn:aws:kafka:us-east-1:1:cluster/c/x","bootstrapServers":"b-1:9092","payloadSize":2048,
                "recordsInfo":{"clicks-0":{"firstRecordOffset":"100","lastRecordOffset":"159","firstRecordTimestamp":"2026-11-22T00:30:00.000Z","lastRecordTimestamp":"2026-11-22T00:31:00.000Z"},
                               "clicks-1":{"firstRecordOffset":7,"lastRecordOffset":66}}}});
        let Incoming::Invocation(r) = classify(&record) else {
            panic!("not an invocation record")
        };
        let b = r
            .batch
            .expect("a stream batch, not an asynchronous failure");
        assert_eq!(b.source, "kafka");
        assert_eq!(b.shard_id, "clicks-0,clicks-1");
        assert_eq!(
            (
                b.start_sequence_number.as_str(),
                b.end_sequence_number.as_str()
            ),
            ("100,7", "159,66")
        );
        assert_eq!(b.batch_size, Some(120));
        assert_eq!(
            b.stream_arn.as_deref(),
            Some("arn:aws:kafka:us-east-1:1:cluster/c/x")
        );
        assert_eq!(
            b.first_arrival.as_deref(),
            Some("2026-11-22T00:30:00.000Z,")
        );
    }

    #[test]
    fn sqs_with_sns_envelope_is_unwrapped() {
        let record = json!({"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"RetryAttemptsExhausted","approximateInvokeCount":3},
            "responseContext":{"statusCode":200,"functionError":"Unhandled"},"version":"1.0","timestamp":"2026-11-22T00:38:06.021Z",
            "KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"1","endSequenceNumber":"9","batchSize":500,"streamArn":"arn:aws:kinesis:us-east-1:1:stream/s"}});
        let sns = json!({"Type":"Notification","MessageId":"m","Message": record.to_string()});
        let event = json!({"Records":[{"eventSource":"aws:sqs","messageId":"sqs-1","body": sns.to_string()},
                                      {"eventSource":"aws:sqs","messageId":"sqs-2","body": record.to_string()}]});
        let d = deliveries(&event);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].sqs_message_id.as_deref(), Some("sqs-1"));
        assert_eq!(d[0].event, d[1].event);
        match &d[0].event {
            Incoming::Invocation(r) => {
                let b = r.batch.as_ref().unwrap();
                assert_eq!(
                    (b.source.as_str(), b.shard_id.as_str(), b.batch_size),
                    ("kinesis", "shardId-000000000001", Some(500))
                );
                assert_eq!(r.condition, "RetryAttemptsExhausted");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sns_delivery_and_garbage_are_handled() {
        let event = json!({"Records":[{"EventSource":"aws:sns","Sns":{"Message": glue("TIMEOUT").to_string()}},
                                      {"EventSource":"aws:sns","Sns":{"Message":"not json at all"}}]});
        let d = deliveries(&event);
        assert!(matches!(&d[0].event, Incoming::GlueJobStateChange(e) if e.state == "TIMEOUT"));
        assert_eq!(
            d[1].event,
            Incoming::Unknown(Value::String("not json at all".into()))
        );
    }

    #[test]
    fn objects_stored_by_an_s3_destination_are_named_not_read() {
        let eventbridge = json!({"version":"0","id":"e","detail-type":"Object Created","source":"aws.s3","account":"1",
            "time":"2026-11-22T00:38:07Z","region":"us-east-1","resources":["arn:aws:s3:::failed"],
            "detail":{"version":"0","bucket":{"name":"failed"},"object":{"key":"aws/lambda/u/shardId-000000000001/2026/11/22/2026-11-22T00.38.06-x","size":900,"version-id":"v1"}}});
        let notification = json!({"Records":[
            {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"failed"},"object":{"key":"aws/lambda/a"}}},
            {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"failed"},"object":{"key":"aws/lambda/b"}}}]});
        let queued = json!({"Records":[{"eventSource":"aws:sqs","messageId":"m-1","body": eventbridge.to_string()}]});
        let keys = |event: &Value| {
            deliveries(event)
                .into_iter()
                .map(|d| match d.event {
                    Incoming::StoredRecord(o) => format!("{}/{}", o.bucket, o.key),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&eventbridge),
            ["failed/aws/lambda/u/shardId-000000000001/2026/11/22/2026-11-22T00.38.06-x"]
        );
        assert_eq!(
            keys(&notification),
            ["failed/aws/lambda/a", "failed/aws/lambda/b"]
        );
        assert_eq!(keys(&queued).len(), 1);
        // Another service's "Object Created"-looking event is not taken for one.
        let other = json!({"detail-type":"Object Created","source":"custom.app","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}});
        assert!(matches!(classify(&other), Incoming::Unknown(_)));
    }

    #[test]
    fn anything_else_is_unknown() {
        for v in [
            json!(null),
            json!({"hello":"world"}),
            json!({"Records":[{"foo":1}]}),
            json!({"detail-type":"Glue Job State Change","detail":{}}),
        ] {
            let d = deliveries(&v);
            assert_eq!(d.len(), 1);
            assert!(matches!(d[0].event, Incoming::Unknown(_)), "{v}");
        }
    }
}
