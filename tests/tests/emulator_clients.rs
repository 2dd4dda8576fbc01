//! The `runnel` client setup reaches the emulator for each service the pipeline uses.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use runnel_tests::{emulator, get_object, new_bucket, new_stream, read_shard, unique_name};

#[tokio::test]
async fn s3_put_and_read_back_through_path_style_client() {
    let aws = emulator().await;
    assert!(
        aws.endpoints().s3_path_style(),
        "emulator endpoint must switch S3 to path style"
    );
    let bucket = new_bucket(&aws, "clients").await;
    let key = "dt=2026-11-22/hour=07/red flower ü.json";
    aws.s3()
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from_static(b"{\"ok\":true}"))
        .send()
        .await
        .expect("put object");
    assert_eq!(get_object(&aws, &bucket, key).await, b"{\"ok\":true}");
}

#[tokio::test]
async fn kinesis_put_and_get_record() {
    let aws = emulator().await;
    let (stream, _, shard_id) = new_stream(&aws, "clients").await;
    let put = aws
        .kinesis()
        .put_record()
        .stream_name(&stream)
        .partition_key("device-1")
        .data(Blob::new(&b"{\"device_id\":\"device-1\"}"[..]))
        .send()
        .await
        .expect("put record");
    assert_eq!(put.shard_id(), shard_id);
    let records = read_shard(&aws, &stream, &shard_id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].sequence_number(), put.sequence_number());
    assert_eq!(records[0].data().as_ref(), b"{\"device_id\":\"device-1\"}");
}

#[tokio::test]
async fn sns_publish_reaches_subscribed_queue() {
    let aws = emulator().await;
    let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
    let sns = aws.sns();
    let topic_arn = sns
        .create_topic()
        .name(unique_name("alerts"))
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("alerts-inbox"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    sns.publish()
        .topic_arn(&topic_arn)
        .subject("Glue job failed")
        .message("job daily-etl run jr_1 FAILED")
        .send()
        .await
        .expect("publish");
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        bodies.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string)),
        );
        if !bodies.is_empty() {
            break;
        }
    }
    assert_eq!(bodies, ["job daily-etl run jr_1 FAILED"]);
}
