//! Readings put on a real emulator stream, read back with GetRecords, turned into the Lambda
//! event, handled by the Kinesis processor writing to emulator S3; output read back and compared
//! record by record.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use kinesis_processor::{CuratedReading, IotTransform};
use runnel::pipeline::StreamConfig;
use runnel::sink::S3Store;
use runnel::transform::{Outputs, Transform};
use runnel_tests::*;

fn reading(i: usize, hour: u32) -> String {
    format!(
        r#"{{"device_id":"sensor-{i:04}","ts":"2026-11-22T{hour:02}:{:02}:00Z","temperature":{},"unit":"F","humidity":40,"battery":90}}"#,
        i % 60,
        50 + i
    )
}

#[tokio::test]
async fn stream_to_partitioned_s3_record_by_record() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let (stream, arn, shard) = new_stream(&aws, "iot").await;

    // 40 readings over two hours, one NDJSON record of 3, one gzip record, two poison records.
    let mut payloads: Vec<Vec<u8>> = (0..40)
        .map(|i| reading(i, 7 + (i / 20) as u32).into_bytes())
        .collect();
    payloads.insert(5, b"{\"device_id\": \"sensor-x\", \"ts\": ".to_vec());
    payloads.insert(
        17,
        reading(999, 7)
            .replace("\"temperature\":1049", "\"temperature\":9999")
            .into_bytes(),
    );
    payloads.push(
        format!(
            "{}\n{}\n{}\n",
            reading(100, 9),
            reading(101, 9),
            reading(102, 9)
        )
        .into_bytes(),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, reading(60, 9).as_bytes()).unwrap();
    payloads.push(gz.finish().unwrap());
    let entries: Vec<PutRecordsRequestEntry> = payloads
        .iter()
        .map(|p| {
            PutRecordsRequestEntry::builder()
                .partition_key("pk")
                .data(Blob::new(p.clone()))
                .build()
                .unwrap()
        })
        .collect();
    let put = aws
        .kinesis()
        .put_records()
        .stream_name(&stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count(), Some(0));

    let records = read_shard(&aws, &stream, &shard).await;
    assert_eq!(records.len(), payloads.len());
    let event = kinesis_event(&arn, &shard, &records);

    let runner = kinesis_processor::pipeline()
        .store(S3Store::new(aws.s3()))
        .config(StreamConfig::new("iot", &bucket))
        .build()
        .unwrap();
    let (response, outcome) = runner.handle(&event).await;
    let response = response.unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        outcome.errors
    );
    assert_eq!(outcome.stats.documents_written, 40 + 3 + 1);
    assert_eq!(outcome.stats.documents_quarantined, 2);

    // Read back every curated object and compare with the transform applied locally.
    let keys = list_keys(&aws, &bucket, "iot/").await;
    assert!(keys.iter().all(|k| k.ends_with(".json.gz")));
    let partitions: std::collections::BTreeSet<&str> = keys.iter().map(|k| &k[4..30]).collect();
    assert_eq!(
        partitions.into_iter().collect::<Vec<_>>(),
        [
            "dt=2026-11-22/hour=07/shar",
            "dt=2026-11-22/hour=08/shar",
            "dt=2026-11-22/hour=09/shar"
        ]
    );
    let mut got = Vec::new();
    for key in &keys {
        for line in ndjson_lines(&get_object(&aws, &bucket, key).await) {
            let id = line["_id"].as_str().unwrap().to_string();
            let reading: CuratedReading = serde_json::from_value(line).unwrap();
            got.push((id, reading));
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = Vec::new();
    for (record, payload) in records.iter().zip(&payloads) {
        let docs = runnel::records::decode_payload::<kinesis_processor::Reading>(
            payload,
            Default::default(),
            &|r| IotTransform.validate(r),
        )
        .unwrap();
        for (j, doc) in docs.into_iter().enumerate() {
            let Ok(input) = doc else { continue };
            let ctx = runnel::transform::RecordContext {
                stream: &shard,
                position: record.sequence_number(),
                index: j as u32,
                partition_key: Some("pk"),
                arrival: None,
            };
            let mut outputs = Outputs::default();
            IotTransform.apply(input, &ctx, &mut outputs).unwrap();
            let (_, mut out) = outputs.drain().next().expect("one reading, one output");
            out.arrival_time = got
                .iter()
                .find(|(id, _)| id.ends_with(&format!("{}:{j}", record.sequence_number())))
                .and_then(|(_, r)| r.arrival_time);
            expected.push((format!("{shard}:{}:{j}", record.sequence_number()), out));
        }
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
        assert!(
            g.1.arrival_time.is_some(),
            "arrival time carried from the stream"
        );
    }

    // Quarantine holds the two poison records with their positions.
    let qkeys = list_keys(&aws, &bucket, "quarantine/iot/").await;
    let mut q = Vec::new();
    for key in &qkeys {
        q.extend(ndjson_lines(&get_object(&aws, &bucket, key).await));
    }
    let positions: Vec<&str> = q.iter().map(|l| l["position"].as_str().unwrap()).collect();
    assert_eq!(
        positions,
        [records[5].sequence_number(), records[17].sequence_number()]
    );

    // The same batch delivered again overwrites: same keys, same content.
    let before: Vec<(String, Vec<u8>)> = {
        let mut v = Vec::new();
        for k in list_keys(&aws, &bucket, "").await {
            let body = get_object(&aws, &bucket, &k).await;
            v.push((k, body));
        }
        v
    };
    let (again, _) = runner.handle(&event).await;
    assert!(again.unwrap().batch_item_failures.is_empty());
    let mut after = Vec::new();
    for k in list_keys(&aws, &bucket, "").await {
        let body = get_object(&aws, &bucket, &k).await;
        after.push((k, body));
    }
    assert_eq!(before, after);
}

#[tokio::test]
async fn missing_bucket_is_reported_for_retry_not_quarantined() {
    let aws = emulator().await;
    let (stream, arn, shard) = new_stream(&aws, "iot").await;
    aws.kinesis()
        .put_record()
        .stream_name(&stream)
        .partition_key("pk")
        .data(Blob::new(reading(1, 7)))
        .send()
        .await
        .unwrap();
    let records = read_shard(&aws, &stream, &shard).await;
    let event = kinesis_event(&arn, &shard, &records);
    let runner = kinesis_processor::pipeline()
        .store(S3Store::new(aws.s3()))
        .config(StreamConfig::new("iot", &unique_name("no-such-bucket")))
        .build()
        .unwrap();
    let (response, outcome) = runner.handle(&event).await;
    let response = response.unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some(records[0].sequence_number())
    );
    assert_eq!(outcome.stats.documents_quarantined, 0);
    assert!(
        outcome.errors[0].contains("Rejected"),
        "{:?}",
        outcome.errors
    );
}
