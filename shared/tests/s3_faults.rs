//! S3 faults the emulator cannot produce — throttling, 503 SlowDown, 500s, timeouts — and what the
//! sink and the batch processor make of them: transient, reported for retry, never quarantined.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use common::*;
use runnel::sink::{ObjectStore, PutObject, S3Store, SinkErrorKind};
use runnel::source::FailureMode;

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>";
const INTERNAL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";

fn fast_retries(b: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
    b.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1)),
    )
}

fn put(key: &str) -> PutObject {
    PutObject {
        bucket: "curated".into(),
        key: key.into(),
        body: b"x".to_vec(),
        content_type: "text/plain",
    }
}

#[tokio::test]
async fn slow_down_503_is_throttled_after_sdk_retries() {
    let rule = mock!(Client::put_object)
        .sequence()
        .http_status(503, Some(SLOW_DOWN.into()))
        .times(3)
        .build();
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, &[&rule], fast_retries);
    let err = S3Store::new(client).put(put("k")).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Throttled, "{err}");
    assert_eq!(rule.num_calls(), 3, "the SDK retried before giving up");
    assert!(err.to_string().contains("s3://curated/k"));
}

#[tokio::test]
async fn transient_500_then_success_is_retried_by_the_sdk() {
    let rule = mock!(Client::put_object)
        .sequence()
        .http_status(500, Some(INTERNAL.into()))
        .output(|| PutObjectOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, &[&rule], fast_retries);
    S3Store::new(client).put(put("k")).await.unwrap();
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn access_denied_is_rejected_not_retried() {
    let denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    let rule = mock!(Client::put_object)
        .sequence()
        .http_status(403, Some(denied.into()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, &[&rule], fast_retries);
    let err = S3Store::new(client).put(put("k")).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Rejected);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn throttled_sink_reports_records_and_quarantines_nothing() {
    let rule = mock!(Client::put_object)
        .sequence()
        .http_status(503, Some(SLOW_DOWN.into()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, &[&rule], fast_retries);
    let p = processor(
        TestTransform::default(),
        Arc::new(S3Store::new(client)),
        FailureMode::Ordered,
    );
    let recs: Vec<ShardRecord> = (0..3)
        .map(|i| ShardRecord {
            seq: seq(i),
            data: if i == 1 {
                b"not json".to_vec()
            } else {
                reading_json("d", 7, 1).into_bytes()
            },
        })
        .collect();
    let out = p.process(&source_records(&recs)).await;
    assert_eq!(out.failures, [seq(0), seq(1), seq(2)]);
    assert_eq!(out.stats.documents_quarantined, 0);
    assert!(out.errors[0].contains("Throttled"), "{:?}", out.errors);
}

/// A server that accepts connections and never answers: the attempt timeout must fire.
#[tokio::test]
async fn hung_endpoint_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
        .endpoint_url(format!("http://{addr}"))
        .http_client(runnel::aws::https_client())
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    let started = std::time::Instant::now();
    let err = S3Store::new(Client::from_conf(conf))
        .put(put("k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    held.abort();
}
