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

/// A transform that awaits a lookup: each reading's site, from a device registry object in S3
/// read once and cached. A device the registry does not know is refused; a registry that cannot
/// be read fails the lookup transiently.
struct SiteLookup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    registry: tokio::sync::OnceCell<std::collections::HashMap<String, String>>,
}

impl Transform for SiteLookup {
    type Input = serde_json::Value;
    type Output = serde_json::Value;
    const ENRICHES: bool = true;

    async fn enrich(
        &self,
        mut reading: serde_json::Value,
        _: &runnel::transform::RecordContext<'_>,
    ) -> Result<serde_json::Value, runnel::transform::TransformError> {
        use runnel::transform::TransformError;
        let registry = self
            .registry
            .get_or_try_init(|| async {
                let object = self
                    .s3
                    .get_object()
                    .bucket(&self.bucket)
                    .key("registry/devices.json")
                    .send()
                    .await
                    .map_err(|e| TransformError::transient(&e))?;
                let body = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| TransformError::transient(&e))?;
                serde_json::from_slice(&body.into_bytes())
                    .map_err(|e| TransformError::transient(&e))
            })
            .await?;
        let device = reading["device_id"].as_str().unwrap_or_default();
        let site = registry
            .get(device)
            .ok_or_else(|| TransformError::Reject(format!("{device} is not registered")))?;
        reading["site"] = site.clone().into();
        Ok(reading)
    }

    fn apply(
        &self,
        reading: serde_json::Value,
        _: &runnel::transform::RecordContext<'_>,
        out: &mut Outputs<serde_json::Value>,
    ) -> Result<(), runnel::transform::TransformError> {
        out.push(reading);
        Ok(())
    }
}

fn shard_records(payloads: &[String]) -> Vec<aws_sdk_kinesis::types::Record> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            aws_sdk_kinesis::types::Record::builder()
                .sequence_number(format!("4959{i:04}"))
                .partition_key(format!("pk-{}", i % 2))
                .data(Blob::new(p.as_bytes()))
                .build()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn an_awaited_lookup_against_s3_enriches_what_lands() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let registry = serde_json::json!({ "sensor-0000": "plant-a", "sensor-0001": "plant-b" });
    put_object(
        &aws,
        &bucket,
        "registry/devices.json",
        registry.to_string().into_bytes(),
    )
    .await;
    let payloads = vec![reading(0, 7), reading(1, 7), reading(2, 7), reading(0, 8)];
    let event = kinesis_event(
        "arn:aws:kinesis:us-east-1:000000000000:stream/iot",
        "shardId-000000000000",
        &shard_records(&payloads),
    );
    let lookup = SiteLookup {
        s3: aws.s3(),
        bucket: bucket.clone(),
        registry: Default::default(),
    };
    let runner = runnel::pipeline::Pipeline::new("iot")
        .source(runnel::source::Kinesis)
        .transform(lookup)
        .store(S3Store::new(aws.s3()))
        .config(StreamConfig::new("iot", &bucket))
        .build()
        .unwrap();
    let (response, outcome) = runner.handle(&event).await;
    assert!(
        response.unwrap().batch_item_failures.is_empty(),
        "{outcome:?}"
    );
    let mut landed = Vec::new();
    for key in list_keys(&aws, &bucket, "iot/").await {
        landed.extend(ndjson_lines(&get_object(&aws, &bucket, &key).await));
    }
    let sites: Vec<(String, String)> = landed
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().into(),
                d["site"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(sites.len(), 3, "{landed:?}");
    for (device, site) in &sites {
        assert_eq!(registry[device.as_str()], site.as_str());
    }
    let quarantined = list_keys(&aws, &bucket, "quarantine/").await;
    let entry = ndjson_lines(&get_object(&aws, &bucket, &quarantined[0]).await).remove(0);
    assert_eq!(
        entry["reason"],
        "transform rejected the record: sensor-0002 is not registered"
    );

    // Without the registry the lookups fail transiently: every record is retried, none
    // quarantined.
    let empty = new_bucket(&aws, "curated").await;
    let runner = runnel::pipeline::Pipeline::new("iot")
        .source(runnel::source::Kinesis)
        .transform(SiteLookup {
            s3: aws.s3(),
            bucket: empty.clone(),
            registry: Default::default(),
        })
        .store(S3Store::new(aws.s3()))
        .config(StreamConfig::new("iot", &empty))
        .build()
        .unwrap();
    let (response, _) = runner.handle(&event).await;
    assert_eq!(response.unwrap().batch_item_failures.len(), payloads.len());
    assert!(list_keys(&aws, &empty, "").await.is_empty());
}

#[tokio::test]
async fn a_pipeline_built_without_a_store_lands_in_s3_as_run_does() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let payloads = vec![reading(0, 7), reading(1, 7)];
    let event = kinesis_event(
        "arn:aws:kinesis:us-east-1:000000000000:stream/iot",
        "shardId-000000000000",
        &shard_records(&payloads),
    );
    // No `.store(..)`: the runner builds its S3 client from the environment (the emulator's
    // endpoint here) at its first write, as `run` does at start.
    let runner = runnel::pipeline::Pipeline::new("iot")
        .source(runnel::source::Kinesis)
        .transform(IotTransform)
        .config(StreamConfig::new("iot", &bucket))
        .build()
        .unwrap();
    let (response, outcome) = runner.handle(&event).await;
    assert!(
        response.unwrap().batch_item_failures.is_empty(),
        "{outcome:?}"
    );
    let mut landed = Vec::new();
    for key in list_keys(&aws, &bucket, "iot/").await {
        landed.extend(ndjson_lines(&get_object(&aws, &bucket, &key).await));
    }
    assert_eq!(landed.len(), payloads.len(), "{landed:?}");
}
