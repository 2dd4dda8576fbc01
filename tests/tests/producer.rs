//! The Kinesis producer: against the emulator's stream, and with partial PutRecords failures
//! injected (aws-smithy-mocks) to show that only the failed records are sent again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::operation::put_records::PutRecordsOutput;
use aws_sdk_kinesis::types::PutRecordsResultEntry;
use aws_sdk_kinesis::Client as KinesisClient;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use runnel::apps::producer::{Entry, ProduceError, Producer, RetryPolicy};
use runnel_tests::*;

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            partition_key: format!("device-{}", i % 7),
            data: format!("{{\"i\":{i}}}").into_bytes(),
        })
        .collect()
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn sends_more_than_one_call_and_every_record_arrives_in_order() {
    let aws = emulator().await;
    let (stream, _, shard) = new_stream(&aws, "produce").await;
    let input = entries(1234);
    let mut calls = Vec::new();
    let report = Producer::new(aws.kinesis(), &stream, RetryPolicy::default())
        .send(&input, |p| calls.push(p.sent))
        .await
        .unwrap();
    assert_eq!(report.sent, 1234);
    assert_eq!(report.calls, 3, "500 + 500 + 234");
    assert_eq!(calls, [500, 1000, 1234]);
    let records = read_shard(&aws, &stream, &shard).await;
    assert_eq!(records.len(), 1234);
    let got: Vec<&[u8]> = records.iter().map(|r| r.data().as_ref()).collect();
    let want: Vec<&[u8]> = input.iter().map(|e| e.data.as_slice()).collect();
    assert_eq!(got, want);
    assert_eq!(report.sequence_numbers[0], records[0].sequence_number());
}

#[tokio::test]
async fn only_failed_records_are_resent() {
    // First call: records 1 and 3 of 4 throttled. Second call must carry exactly those two.
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen_in_rule = seen.clone();
    let rule = mock!(KinesisClient::put_records)
        .match_requests(move |req| {
            let data: Vec<String> = req
                .records()
                .iter()
                .map(|r| String::from_utf8_lossy(r.data().as_ref()).to_string())
                .collect();
            seen_in_rule.lock().unwrap().push(data);
            true
        })
        .sequence()
        .output(|| {
            let ok = |s: &str| {
                PutRecordsResultEntry::builder()
                    .sequence_number(s)
                    .shard_id("shardId-0")
                    .build()
            };
            let throttled = || {
                PutRecordsResultEntry::builder()
                    .error_code("ProvisionedThroughputExceededException")
                    .error_message("Rate exceeded for shard shardId-0")
                    .build()
            };
            PutRecordsOutput::builder()
                .failed_record_count(2)
                .records(ok("1"))
                .records(throttled())
                .records(ok("3"))
                .records(throttled())
                .build()
                .unwrap()
        })
        .output(|| {
            PutRecordsOutput::builder()
                .failed_record_count(0)
                .records(
                    PutRecordsResultEntry::builder()
                        .sequence_number("5")
                        .shard_id("shardId-0")
                        .build(),
                )
                .records(
                    PutRecordsResultEntry::builder()
                        .sequence_number("6")
                        .shard_id("shardId-0")
                        .build(),
                )
                .build()
                .unwrap()
        })
        .build();
    let client = mock_client!(aws_sdk_kinesis, RuleMode::Sequential, &[&rule]);
    let report = Producer::new(client, "s", fast())
        .send(&entries(4), |_| {})
        .await
        .unwrap();
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1], ["{\"i\":1}", "{\"i\":3}"]);
    assert_eq!(report.sequence_numbers, ["1", "5", "3", "6"]);
    assert_eq!((report.sent, report.retried_records), (4, 2));
}

#[tokio::test]
async fn persistent_failure_gives_up_with_a_clear_error() {
    let rule = mock!(KinesisClient::put_records)
        .sequence()
        .output(|| {
            PutRecordsOutput::builder()
                .failed_record_count(1)
                .records(
                    PutRecordsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("boom")
                        .build(),
                )
                .build()
                .unwrap()
        })
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_kinesis, RuleMode::Sequential, &[&rule]);
    let err = Producer::new(client, "iot", fast())
        .send(&entries(1), |_| {})
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProduceError::GaveUp {
            stream: "iot".into(),
            failed: 1,
            attempts: 5,
            last: "InternalFailure: boom".into()
        }
    );
    assert_eq!(rule.num_calls(), 5);
}

#[tokio::test]
async fn oversized_record_is_refused_before_sending() {
    let client = mock_client!(
        aws_sdk_kinesis,
        RuleMode::Sequential,
        &[] as &[&aws_smithy_mocks::Rule]
    );
    let big = vec![Entry {
        partition_key: "k".into(),
        data: vec![0; 1024 * 1024],
    }];
    let err = Producer::new(client, "s", fast())
        .send(&big, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProduceError::RecordTooLarge { index: 0, .. }),
        "{err}"
    );
}
