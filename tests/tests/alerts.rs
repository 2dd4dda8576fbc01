//! `failure-alert`'s logic against the emulator: each event kind becomes an SNS message, received
//! through a subscribed SQS queue and checked; duplicates alert once; publish failures surface as
//! errors; a Glue job run created through the emulator's Glue API is enriched.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sns::Client as SnsClient;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use lambda_runtime::tower::layer::layer_fn;
use lambda_runtime::tower::{service_fn, ServiceExt as _};
use lambda_runtime::{Context, LambdaEvent};
use runnel::apps::alert::{AlertConfig, AlertFunction, AlertService};
use runnel::aws::Aws;
use runnel::pipeline::Handler;
use runnel_tests::*;
use serde_json::{json, Value};

struct Fixture {
    aws: Aws,
    topic_arn: String,
    queue_url: String,
    bucket: String,
}

/// A message as SQS receives it from SNS (not raw): the SNS envelope.
#[derive(Debug)]
struct Received {
    subject: String,
    body: String,
    attributes: Value,
}

impl Fixture {
    async fn new() -> Fixture {
        let aws = emulator().await;
        let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
        let topic_arn = aws
            .sns()
            .create_topic()
            .name(unique_name("alerts"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(unique_name("inbox"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        aws.sns()
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        let bucket = new_bucket(&aws, "alerts").await;
        Fixture {
            aws,
            topic_arn,
            queue_url,
            bucket,
        }
    }

    fn config(&self, dedupe: bool) -> AlertConfig {
        let topic = self.topic_arn.clone();
        let bucket = self.bucket.clone();
        AlertConfig::from_lookup(move |n| match n {
            "ALERT_TOPIC_ARN" => Some(topic.clone()),
            "PIPELINE_NAME" => Some("runnel-test".into()),
            "DEDUPE_BUCKET" if dedupe => Some(bucket.clone()),
            _ => None,
        })
        .unwrap()
    }

    fn service(&self, config: AlertConfig) -> AlertService {
        // As `run` builds it: Glue on first use.
        AlertService::new(
            config,
            self.aws.sns(),
            self.aws.s3(),
            Some(self.aws.glue_on_first_use()),
        )
    }

    /// Receives until `n` messages arrived and the queue then stays empty for a moment.
    async fn receive(&self, n: usize) -> Vec<Received> {
        let sqs = aws_sdk_sqs::Client::new(self.aws.sdk_config());
        let mut got = Vec::new();
        let mut quiet_rounds = 0;
        for _ in 0..40 {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(if got.len() >= n { 0 } else { 1 })
                .send()
                .await
                .unwrap();
            let msgs = out.messages();
            if msgs.is_empty() && got.len() >= n {
                quiet_rounds += 1;
                if quiet_rounds >= 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for m in msgs {
                let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                got.push(Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    body: envelope["Message"].as_str().unwrap().to_string(),
                    attributes: envelope["MessageAttributes"].clone(),
                });
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        got
    }
}

fn event(name: &str) -> Value {
    serde_json::from_str(&event_file(name)).unwrap()
}

fn attr(r: &Received, name: &str) -> String {
    r.attributes[name]["Value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn alert_json(r: &Received) -> Value {
    serde_json::from_str(
        r.body
            .split("--- alert (JSON) ---\n")
            .nth(1)
            .expect("JSON part"),
    )
    .unwrap()
}

#[tokio::test]
async fn every_event_kind_is_delivered_readable_and_filterable() {
    let f = Fixture::new().await;
    let service = f.service(f.config(true));
    let cases = [
        ("alert-glue-failed.json", "ERROR", "glue", "[ERROR] runnel-test: Glue job runnel-dev-daily-etl FAILED"),
        ("alert-glue-timeout.json", "ERROR", "glue", "[ERROR] runnel-test: Glue job runnel-dev-daily-etl TIMEOUT"),
        ("alert-glue-stuck.json", "WARNING", "glue", "[WARNING] runnel-test: Glue job runnel-dev-daily-etl run jr_3333333333333333333333333333333333333..."),
        ("alert-kinesis-esm-failure-sqs.json", "CRITICAL", "kinesis", "[CRITICAL] runnel-test: runnel-dev-kinesis-processor skipped 500 records of shardId-000000000001 ..."),
        ("alert-kafka-esm-failure-sqs.json", "CRITICAL", "kafka", "[CRITICAL] runnel-test: runnel-dev-clicks skipped 120 records of clicks-0 (RetryAttemptsExhausted)"),
        ("alert-lambda-async-failure-sns.json", "ERROR", "lambda", "[ERROR] runnel-test: runnel-dev-s3-ingest invocation failed (RetriesExhausted)"),
        ("alert-sfn-failed.json", "ERROR", "stepfunctions", "[ERROR] runnel-test: State machine runnel-dev-daily execution 2026-11-22 FAILED"),
        ("alert-unknown.json", "WARNING", "unknown", "[WARNING] runnel-test: Unrecognised failure report: Something Else Happened"),
    ];
    for (file, severity, source, subject) in cases {
        let outcome = service
            .handle(&event(file))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(outcome.published, 1, "{file}");
        let got = f.receive(1).await;
        assert_eq!(got.len(), 1, "{file}");
        let m = &got[0];
        assert_eq!(m.subject, subject, "{file}");
        assert!(m.subject.len() <= 100);
        assert_eq!(attr(m, "severity"), severity, "{file}");
        assert_eq!(attr(m, "source"), source, "{file}");
        assert_eq!(attr(m, "pipeline"), "runnel-test", "{file}");
        let doc = alert_json(m);
        assert_eq!(doc["severity"], severity);
        assert!(
            m.body.starts_with(doc["summary"].as_str().unwrap()),
            "{file}: body starts with the summary"
        );
        // A skipped batch says how to replay it.
        let replay = doc["details"]["replay"].as_str().unwrap_or_default();
        assert_eq!(
            severity == "CRITICAL",
            replay.starts_with("runnel replay"),
            "{file}"
        );
        if source == "kinesis" {
            assert!(replay.contains("--stream-arn arn:aws:kinesis:"), "{replay}");
            assert!(
                replay.contains("--shard shardId-000000000001 --from "),
                "{replay}"
            );
        }
    }
    // The asynchronous failure's original event is never in the message: only its size.
    let service2 = f.service(f.config(false));
    service2
        .handle(&event("alert-lambda-async-failure-sns.json"))
        .await
        .unwrap();
    let m = &f.receive(1).await[0];
    assert!(
        !m.body.contains("part-0001.csv.gz\"}}"),
        "request payload leaked"
    );
    assert!(
        alert_json(m)["details"]["request_payload_bytes"]
            .as_u64()
            .unwrap()
            > 50
    );
    // A Glue job the emulator does not know: enrichment fails, the alert still goes out.
    assert!(alert_json(&{
        service2
            .handle(&event("alert-glue-failed.json"))
            .await
            .unwrap();
        f.receive(1).await.remove(0)
    })["details"]["enrichment_error"]
        .as_str()
        .unwrap()
        .contains("GetJobRun"));
}

/// An S3 on-failure destination's object, announced by EventBridge: the alert reads the record
/// in it (never showing the batch) and says how to replay from it; an object that cannot be read
/// or is no record still alerts, with where it is.
#[tokio::test]
async fn stored_on_failure_records_are_read_and_replayable_from_their_object() {
    let f = Fixture::new().await;
    let service = f.service(f.config(false));
    let sqs: Value = event("alert-kinesis-esm-failure-sqs.json");
    let mut record: Value =
        serde_json::from_str(sqs["Records"][0]["body"].as_str().unwrap()).unwrap();
    record["payload"] =
        json!(json!({"Records": [{"kinesis": {"data": "c2VjcmV0LXJlYWRpbmc="}}]}).to_string());
    let key = "aws/lambda/4e2b7f1c/shardId-000000000001/2026/11/22/2026-11-22T03.12.06-a";
    put_object(&f.aws, &f.bucket, key, record.to_string().into_bytes()).await;
    let announce = |key: &str| {
        let mut e = event("alert-esm-failure-stored-eventbridge.json");
        e["detail"]["bucket"]["name"] = json!(f.bucket);
        e["detail"]["object"]["key"] = json!(key);
        e["detail"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("version-id");
        e
    };
    let outcome = service.handle(&announce(key)).await.unwrap();
    assert_eq!((outcome.published, outcome.unread_records), (1, 0));
    let m = f.receive(1).await.remove(0);
    assert_eq!(
        m.subject,
        "[CRITICAL] runnel-test: runnel-dev-kinesis-processor skipped 500 records of shardId-000000000001 ..."
    );
    let doc = alert_json(&m);
    let location = format!("s3://{}/{key}", f.bucket);
    assert_eq!(
        doc["details"]["replay"],
        format!("runnel replay --function runnel-dev-kinesis-processor --record {location}")
    );
    assert_eq!(doc["details"]["stored_at"], location);
    assert_eq!(
        doc["details"]["request_payload_bytes"],
        record["payload"].as_str().unwrap().len()
    );
    assert!(!m.body.contains("c2VjcmV0LXJlYWRpbmc"), "the batch leaked");

    // Not a record, and not there at all: alerted on unread, with the object's place.
    put_object(
        &f.aws,
        &f.bucket,
        "aws/lambda/x/notes.txt",
        b"hello".to_vec(),
    )
    .await;
    for (key, why) in [
        ("aws/lambda/x/notes.txt", "not JSON"),
        ("aws/lambda/x/gone", "GetObject"),
    ] {
        let outcome = service.handle(&announce(key)).await.unwrap();
        assert_eq!((outcome.published, outcome.unread_records), (1, 1), "{key}");
        let doc = alert_json(&f.receive(1).await.remove(0));
        assert_eq!(doc["severity"], "CRITICAL");
        assert!(
            doc["details"]["record_error"]
                .as_str()
                .unwrap()
                .contains(why),
            "{doc}"
        );
        assert_eq!(
            doc["details"]["replay"],
            format!("runnel replay --record s3://{}/{key}", f.bucket)
        );
    }
}

/// A stored record S3 will not hand out for now (throttling, server errors: a fault nothing else
/// injects) is not alerted on unread: the delivery fails, so Lambda retries it with the
/// record's details still to come.
#[tokio::test]
async fn a_stored_record_that_cannot_be_read_yet_is_retried() {
    let f = Fixture::new().await;
    let slow_down = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .http_status(503, None)
        .repeatedly()
        .build();
    let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, &[&slow_down], |b| b
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    let service = AlertService::new(f.config(false), f.aws.sns(), s3, None);
    let announced = event("alert-esm-failure-stored-eventbridge.json");
    let err = service.handle(&announced).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "reading the on-failure record at s3://runnel-dev-failed-batches-123456789012/aws/lambda/"
        ),
        "{err}"
    );
    assert!(slow_down.num_calls() >= 2);
    // Queued: the message is reported for retry.
    let queued = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": announced.to_string()}]});
    let outcome = service.handle(&queued).await.unwrap();
    assert_eq!(
        (outcome.failed_messages, outcome.published),
        (vec!["m-1".to_string()], 0)
    );
    assert!(f.receive(0).await.is_empty(), "nothing published");
}

#[tokio::test]
async fn succeeded_runs_are_ignored_unless_configured() {
    let f = Fixture::new().await;
    let outcome = f
        .service(f.config(true))
        .handle(&event("alert-glue-succeeded.json"))
        .await
        .unwrap();
    assert_eq!((outcome.published, outcome.ignored), (0, 1));
    let mut cfg = f.config(true);
    cfg.rules.states.push("SUCCEEDED".into());
    let outcome = f
        .service(cfg)
        .handle(&event("alert-glue-succeeded.json"))
        .await
        .unwrap();
    assert_eq!(outcome.published, 1);
    let got = f.receive(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attr(&got[0], "severity"), "INFO");
}

#[tokio::test]
async fn duplicate_delivery_alerts_once() {
    let f = Fixture::new().await;
    let service = f.service(f.config(true));
    let first = service
        .handle(&event("alert-kinesis-esm-duplicate-sqs.json"))
        .await
        .unwrap();
    assert_eq!((first.published, first.suppressed), (1, 1));
    assert_eq!(
        runnel::apps::alert::response(&first),
        json!({"batchItemFailures": []})
    );
    // EventBridge/SQS re-delivering the whole batch later: still suppressed inside the window.
    let again = service
        .handle(&event("alert-kinesis-esm-failure-sqs.json"))
        .await
        .unwrap();
    assert_eq!((again.published, again.suppressed), (0, 1));
    assert_eq!(f.receive(1).await.len(), 1);
    // The marker is an S3 object under the dedupe prefix.
    assert_eq!(
        list_keys(&f.aws, &f.bucket, "alerts/dedupe/").await.len(),
        1
    );
}

#[tokio::test]
async fn after_the_window_a_persisting_failure_alerts_again() {
    let f = Fixture::new().await;
    let mut cfg = f.config(true);
    cfg.dedupe_window = Duration::ZERO;
    let service = f.service(cfg);
    service
        .handle(&event("alert-glue-timeout.json"))
        .await
        .unwrap();
    let again = service
        .handle(&event("alert-glue-timeout.json"))
        .await
        .unwrap();
    assert_eq!(
        again.published, 1,
        "the window is over: re-claimed with If-Match"
    );
    assert_eq!(f.receive(2).await.len(), 2);
}

#[tokio::test]
async fn publish_failure_is_an_error_and_releases_the_claim() {
    let f = Fixture::new().await;
    let failing = mock!(SnsClient::publish)
        .sequence()
        .http_status(500, None)
        .repeatedly()
        .build();
    let sns = mock_client!(aws_sdk_sns, RuleMode::Sequential, &[&failing], |b| b
        .retry_config(
            aws_sdk_sns::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    let broken = AlertService::new(f.config(true), sns, f.aws.s3(), None);
    // Delivered directly (EventBridge): the invocation fails, so Lambda retries.
    let err = broken
        .handle(&event("alert-glue-failed.json"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("publish to {} failed", f.topic_arn)),
        "{err}"
    );
    // Delivered through SQS: the message is reported as a batch item failure.
    let outcome = broken
        .handle(&event("alert-kinesis-esm-failure-sqs.json"))
        .await
        .unwrap();
    assert_eq!(
        outcome.failed_messages,
        ["6f2c1a7e-0000-4000-8000-000000000000"]
    );
    assert_eq!(
        runnel::apps::alert::response(&outcome),
        json!({"batchItemFailures": [{"itemIdentifier": "6f2c1a7e-0000-4000-8000-000000000000"}]})
    );
    assert!(failing.num_calls() >= 2);
    // The claims were released: the retry, with SNS back, alerts.
    let healthy = f.service(f.config(true));
    assert_eq!(
        healthy
            .handle(&event("alert-glue-failed.json"))
            .await
            .unwrap()
            .published,
        1
    );
    assert_eq!(
        healthy
            .handle(&event("alert-kinesis-esm-failure-sqs.json"))
            .await
            .unwrap()
            .published,
        1
    );
    assert_eq!(f.receive(2).await.len(), 2);
}

#[tokio::test]
async fn glue_job_run_from_the_emulator_is_enriched() {
    let f = Fixture::new().await;
    let glue = f.aws.glue();
    let job = unique_name("daily-etl");
    glue.create_job()
        .name(&job)
        .role("arn:aws:iam::000000000000:role/glue")
        .command(
            aws_sdk_glue::types::JobCommand::builder()
                .name("glueetl")
                .script_location("s3://scripts/etl.py")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let run_id = glue
        .start_job_run()
        .job_name(&job)
        .arguments("--input_path", "s3://curated/transactions/dt=2026-11-22/")
        .arguments("--db_password", "hunter2")
        .send()
        .await
        .unwrap()
        .job_run_id
        .unwrap();
    let mut e = event("alert-glue-failed.json");
    e["detail"]["jobName"] = json!(job);
    e["detail"]["jobRunId"] = json!(run_id);
    let outcome = f.service(f.config(true)).handle(&e).await.unwrap();
    assert_eq!((outcome.published, outcome.enrichment_failures), (1, 0));
    let m = &f.receive(1).await[0];
    let doc = alert_json(m);
    assert_eq!(doc["details"]["job_run_id"], run_id);
    assert_eq!(
        doc["details"]["arguments"]["--input_path"],
        "s3://curated/transactions/dt=2026-11-22/"
    );
    assert_eq!(doc["details"]["arguments"]["--db_password"], "[redacted]");
    assert!(doc["details"]["attempt"].is_number());
    assert!(
        doc["details"].get("started_on").is_some(),
        "{}",
        doc["details"]
    );
    assert!(!m.body.contains("hunter2"));
}

#[tokio::test]
async fn a_user_layer_runs_around_the_alert_function() {
    let f = Fixture::new().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let noting = {
        let seen = seen.clone();
        layer_fn(move |inner: Handler<Value, Value>| {
            let seen = seen.clone();
            service_fn(move |event: LambdaEvent<Value>| {
                let (seen, inner) = (seen.clone(), inner.clone());
                async move {
                    let note = |what: String| seen.lock().unwrap().push(what);
                    note(format!("in {}", event.context.request_id));
                    let answer = inner.oneshot(event).await?;
                    note(format!("out {answer}"));
                    Ok::<_, lambda_runtime::Error>(answer)
                }
            })
        })
    };
    let handler = AlertFunction::new("failure-alert")
        .layer(noting)
        .handler(f.service(f.config(false)));
    let mut context = Context::default();
    context.request_id = "req-alert-1".into();
    let event = LambdaEvent::new(event("alert-glue-failed.json"), context);
    let answer = handler.oneshot(event).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["in req-alert-1".to_string(), format!("out {answer}")]
    );
    let got = f.receive(1).await;
    assert_eq!(got.len(), 1, "the service inside the layer published");
    assert!(
        got[0]
            .subject
            .contains("Glue job runnel-dev-daily-etl FAILED"),
        "{}",
        got[0].subject
    );
}
