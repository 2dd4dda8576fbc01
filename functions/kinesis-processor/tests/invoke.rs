//! The `kinesis-processor` binary, run as Lambda runs it: behind a Runtime API (cargo-lambda's),
//! invoked with files from `events/`, writing to the emulator's S3.

use std::io::Read;

use runnel_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_kinesis-processor");

#[tokio::test]
async fn binary_handles_sample_events_through_the_runtime_api() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let mut handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
            ("PIPELINE_NAME", "demo"),
        ],
    ));

    let poison = api.invoke("kinesis-poison.json");
    assert_eq!(poison, serde_json::json!({"batchItemFailures": []}));
    let clean = api.invoke("kinesis-clean.json");
    assert_eq!(clean, serde_json::json!({"batchItemFailures": []}));

    let curated = list_keys(&aws, &bucket, "iot/").await;
    let docs: usize = {
        let mut n = 0;
        for k in &curated {
            n += ndjson_lines(&get_object(&aws, &bucket, k).await).len();
        }
        n
    };
    assert_eq!(docs, 2 + 4);
    // Each curated object has its pane of the device_minute aggregate, under the same name;
    // merged, they are the aggregate of the curated readings.
    let panes = list_keys(&aws, &bucket, "aggregates/device_minute/").await;
    let names = |keys: &[String], prefix: &str| -> Vec<String> {
        keys.iter()
            .map(|k| k.strip_prefix(prefix).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&panes, "aggregates/device_minute/"),
        names(&curated, "iot/")
    );
    let (mut pane_rows, mut readings) = (Vec::new(), Vec::new());
    for k in &panes {
        pane_rows.extend(ndjson_lines(&get_object(&aws, &bucket, k).await));
    }
    for k in &curated {
        for line in ndjson_lines(&get_object(&aws, &bucket, k).await) {
            readings
                .push(serde_json::from_value::<kinesis_processor::CuratedReading>(line).unwrap());
        }
    }
    let aggregate = kinesis_processor::device_minute();
    let merged = aggregate.merge_panes(&pane_rows).unwrap();
    assert_eq!(
        merged,
        aggregate.aggregate_directly(readings.iter().map(|r| (r, None)))
    );
    assert!(!merged.is_empty());
    // The two poison records are neighbours: one quarantine run, one object, two entries.
    let quarantined = list_keys(&aws, &bucket, "quarantine/iot/").await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        ndjson_lines(&get_object(&aws, &bucket, &quarantined[0]).await).len(),
        2
    );

    // The process's stdout holds JSON logs and one EMF document per invocation.
    handler.0.kill().unwrap();
    let mut stdout = String::new();
    handler
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let emf: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 2, "{stdout}");
    assert_eq!(emf[0]["RecordsIn"], 4.0);
    assert_eq!(emf[0]["DocumentsQuarantined"], 2.0);
    assert_eq!(emf[0]["pipeline"], "demo");
    assert_eq!(emf[0]["cold_start"], true);
    assert_eq!(emf[1]["cold_start"], false);
    let summary: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "batch processed")
        .collect();
    assert_eq!(summary.len(), 2, "{stdout}");
    assert_eq!(summary[0]["service"], "kinesis-processor");
    assert!(summary[0]["request_id"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert!(summary[0]["correlation_id"]
        .as_str()
        .unwrap()
        .starts_with("shardId-000000000000:"));
}

#[test]
fn invalid_configuration_stops_the_binary_naming_every_variable() {
    let out = std::process::Command::new(BINARY)
        .env_remove("OUTPUT_BUCKET")
        .env("BATCH_MODE", "sometimes")
        .env("MAX_RECORD_BYTES", "lots")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9/.rt")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "OUTPUT_BUCKET is not set",
        "BATCH_MODE=\\\"sometimes\\\"",
        "MAX_RECORD_BYTES=\\\"lots\\\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[tokio::test]
async fn with_source_sqs_the_binary_answers_queue_batches() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "sqs"),
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
        ],
    ));
    for sample in ["sqs-readings.json", "sqs-fifo-readings.json"] {
        assert_eq!(
            api.invoke(sample),
            serde_json::json!({"batchItemFailures": []}),
            "{sample}"
        );
    }
    // One object per message that made output: 2 + 3 data, 2 + 1 quarantine.
    let curated = list_keys(&aws, &bucket, "iot/").await;
    assert_eq!(curated.len(), 5, "{curated:?}");
    let mut ids = Vec::new();
    for k in &curated {
        for line in ndjson_lines(&get_object(&aws, &bucket, k).await) {
            ids.push(line["_id"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    assert_eq!(ids.len(), 6);
    assert!(ids.contains(&"readings.fifo:5a1e0000-0000-4000-8000-00000000000a:0".to_string()));
    assert!(ids.contains(&"readings:5a1e0000-0000-4000-8000-000000000001:1".to_string()));
    assert_eq!(list_keys(&aws, &bucket, "quarantine/iot/").await.len(), 3);
}

/// The binary with `SOURCE=dynamodb` invoked once with the sample `event` through the Runtime
/// API, writing to a fresh bucket; nothing may be reported. The emulator and the bucket.
async fn invoked_on_a_table_stream(event: &str) -> (runnel::aws::Aws, String) {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "dynamodb"),
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
        ],
    ));
    assert_eq!(
        api.invoke(event),
        serde_json::json!({"batchItemFailures": []}),
        "{event}"
    );
    (aws, bucket)
}

#[tokio::test]
async fn with_source_dynamodb_the_binary_lands_new_images() {
    let (aws, bucket) = invoked_on_a_table_stream("dynamodb-readings.json").await;
    // INSERT and MODIFY land (one run, one object), REMOVE makes nothing, 999 °C is quarantined.
    let curated = list_keys(&aws, &bucket, "iot/").await;
    assert_eq!(curated.len(), 1, "{curated:?}");
    let lines = ndjson_lines(&get_object(&aws, &bucket, &curated[0]).await);
    let temps: Vec<f64> = lines
        .iter()
        .map(|l| l["temperature_c"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, [21.5, 22.5]);
    assert_eq!(
        lines[0]["_id"],
        "readings-2026-11-22T000000.000:4421584500000000017450439001:0"
    );
    assert_eq!(list_keys(&aws, &bucket, "quarantine/iot/").await.len(), 1);
}

/// The fix of a bad item lands through the binary although its old image is no reading; a
/// removal whose old image is none makes nothing; only the bad insert is quarantined.
#[tokio::test]
async fn with_source_dynamodb_a_correction_lands_whatever_the_old_image() {
    let (aws, bucket) = invoked_on_a_table_stream("dynamodb-corrections.json").await;
    let curated = list_keys(&aws, &bucket, "iot/").await;
    assert_eq!(curated.len(), 1, "{curated:?}");
    let lines = ndjson_lines(&get_object(&aws, &bucket, &curated[0]).await);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["device_id"], "sensor-0050");
    assert_eq!(lines[0]["temperature_c"], 23.0);
    let quarantined = list_keys(&aws, &bucket, "quarantine/iot/").await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    let entries = ndjson_lines(&get_object(&aws, &bucket, &quarantined[0]).await);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("temperature"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn with_source_firehose_the_binary_answers_every_record() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "firehose"),
            ("OUTPUT_BUCKET", &bucket),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
        ],
    ));
    let answer = api.invoke("firehose-readings.json");
    let records = answer["records"].as_array().unwrap();
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["Ok", "Ok", "ProcessingFailed", "ProcessingFailed"]
    );
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(records[1]["data"].as_str().unwrap())
        .unwrap();
    let lines = ndjson_lines(&data);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["device_id"], "sensor-0043");
    assert_eq!(
        records[1]["metadata"]["partitionKeys"],
        serde_json::json!({"dt": "2026-11-22", "hour": "07"})
    );
    // Output goes back to Firehose; only quarantine is written here.
    assert!(list_keys(&aws, &bucket, "kinesis-processor/")
        .await
        .is_empty());
    assert_eq!(list_keys(&aws, &bucket, "quarantine/iot/").await.len(), 2);
}

#[tokio::test]
async fn with_source_kafka_the_binary_answers_with_partition_and_offset() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "kafka"),
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
        ],
    ));
    for sample in ["kafka-readings.json", "kafka-self-managed-readings.json"] {
        assert_eq!(
            api.invoke(sample),
            serde_json::json!({"batchItemFailures": []}),
            "{sample}"
        );
    }
    let mut ids = Vec::new();
    for k in list_keys(&aws, &bucket, "iot/").await {
        for line in ndjson_lines(&get_object(&aws, &bucket, &k).await) {
            ids.push(line["_id"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "iot.readings-3:100:0",
            "iot.readings-3:101:0",
            "readings-0:15:0",
            "readings-0:16:0",
            "readings-1:7:0"
        ]
    );
    assert_eq!(list_keys(&aws, &bucket, "quarantine/iot/").await.len(), 1);
}

#[test]
fn an_unknown_source_stops_the_binary_with_the_reason() {
    let out = std::process::Command::new(BINARY)
        .env("SOURCE", "kinesis-v2")
        .env("OUTPUT_BUCKET", "b")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9/.rt")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "use kinesis, sqs, dynamodb, firehose, kafka, kinesis-windows or dynamodb-windows"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn with_tumbling_windows_the_binary_carries_state_and_writes_each_window_once() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "kinesis-windows"),
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
        ],
    ));
    let mut event: serde_json::Value =
        serde_json::from_str(&event_file("window-kinesis.json")).unwrap();
    let first = api.invoke_value(&event);
    assert_eq!(first["batchItemFailures"], serde_json::json!([]));
    let state = first["state"].clone();
    assert!(state["runnel"].is_string(), "{first}");
    // The readings landed; nothing of the window yet.
    assert_eq!(list_keys(&aws, &bucket, "iot/").await.len(), 1);
    assert!(list_keys(&aws, &bucket, "aggregates/").await.is_empty());
    // The window's last invocation: no records, the state, then the same again (a retry).
    event["Records"] = serde_json::json!([]);
    event["state"] = state;
    event["isFinalInvokeForWindow"] = serde_json::json!(true);
    for _ in 0..2 {
        let last = api.invoke_value(&event);
        assert_eq!(
            last,
            serde_json::json!({"state": {}, "batchItemFailures": []})
        );
    }
    let windows = list_keys(&aws, &bucket, "aggregates/device_minute/").await;
    assert_eq!(
        windows,
        ["aggregates/device_minute/dt=2026-12-07/hour=10/shardId-000000000000-1796637660000-49612345678901234567890123456789012345678901234567900001.json.gz"]
    );
    let rows = ndjson_lines(&get_object(&aws, &bucket, &windows[0]).await);
    let merged = kinesis_processor::device_minute()
        .merge_panes(&rows)
        .unwrap();
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0]["device_id"], "sensor-0001");
    assert_eq!(merged[0]["window_start"], "2026-12-07T10:01:00Z");
    assert_eq!(merged[0]["readings"], 2);
    assert_eq!(merged[0]["temperature_c_mean"], 22.0);
    assert_eq!(merged[0]["temperature_values"], 2);
    // A state the function cannot use (another program's) is kept in quarantine, not used.
    event["state"] = serde_json::json!({"count": "7"});
    event["isFinalInvokeForWindow"] = serde_json::json!(false);
    let answer = api.invoke_value(&event);
    assert!(answer["state"]["runnel"].is_string(), "{answer}");
    let quarantined = list_keys(&aws, &bucket, "quarantine/iot/").await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    let entry = &ndjson_lines(&get_object(&aws, &bucket, &quarantined[0]).await)[0];
    assert_eq!(entry["kind"], "window_state");
}

#[tokio::test]
async fn a_table_stream_window_s_last_invocation_lands_its_records_and_writes_the_window_once() {
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("SOURCE", "dynamodb-windows"),
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
        ],
    ));
    // One INSERT in the window's last invocation, delivered twice (a retry of the last
    // invocation carries the same state and records).
    let event: serde_json::Value =
        serde_json::from_str(&event_file("window-dynamodb.json")).unwrap();
    for _ in 0..2 {
        assert_eq!(
            api.invoke_value(&event),
            serde_json::json!({"state": {}, "batchItemFailures": []})
        );
    }
    let landed = list_keys(&aws, &bucket, "iot/").await;
    assert_eq!(landed.len(), 1, "{landed:?}");
    let readings = ndjson_lines(&get_object(&aws, &bucket, &landed[0]).await);
    assert_eq!(readings.len(), 1, "{readings:?}");
    assert_eq!(readings[0]["device_id"], "sensor-0042");
    let windows = list_keys(&aws, &bucket, "aggregates/device_minute/").await;
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert!(
        windows[0].starts_with(
            "aggregates/device_minute/dt=2026-11-22/hour=07/shardId-00000001795331700000-abcdef12-1795331700000-"
        ),
        "{windows:?}"
    );
    let rows = ndjson_lines(&get_object(&aws, &bucket, &windows[0]).await);
    let merged = kinesis_processor::device_minute()
        .merge_panes(&rows)
        .unwrap();
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0]["device_id"], "sensor-0042");
    assert_eq!(merged[0]["window_start"], "2026-11-22T07:15:00Z");
    assert_eq!(merged[0]["readings"], 1);
    assert_eq!(merged[0]["temperature_c_mean"], 21.5);
    assert_eq!(merged[0]["battery_pct"], 88.0);
}

/// Messages an EventBridge rule delivered to `queue`, waiting up to `patience` for `at_least`.
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    at_least: usize,
    patience: std::time::Duration,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + patience;
    let mut got = Vec::new();
    while std::time::Instant::now() < deadline && got.len() < at_least.max(1) {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            got.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    got
}

#[tokio::test]
async fn an_overheating_device_alerts_through_eventbridge_once() {
    use aws_sdk_eventbridge::types::Target;
    let aws = emulator().await;
    let bucket = new_bucket(&aws, "curated").await;
    let events = aws.eventbridge();
    let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
    let bus = unique_name("alerts");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(unique_name("rule-inbox"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    // Routed as a user would route them: by Runnel's source and detail-type.
    let pattern = serde_json::json!({
        "source": [runnel::window::ALERT_SOURCE],
        "detail-type": [runnel::window::ALERT_DETAIL_TYPE],
    });
    events
        .put_rule()
        .name("runnel-alerts")
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("runnel-alerts")
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("inbox")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("OUTPUT_BUCKET", &bucket),
            ("OUTPUT_PREFIX", "iot"),
            ("QUARANTINE_PREFIX", "quarantine/iot"),
            ("PIPELINE_NAME", "demo"),
            ("ALERT_BUS", &bus),
        ],
    ));
    // Four readings of one device above 80 °C: too_hot at the first, overheating at the third.
    let answer = api.invoke("kinesis-overheating.json");
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let mut alerts = drain(&sqs, &queue, 2, std::time::Duration::from_secs(20)).await;
    alerts.sort_by_key(|e| e["detail"]["rule"].as_str().unwrap().to_string());
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for event in &alerts {
        assert_eq!(event["source"], "runnel");
        assert_eq!(event["detail-type"], "Runnel Rule Matched");
        assert_eq!(event["detail"]["pipeline"], "demo");
        assert_eq!(
            event["detail"]["key"],
            serde_json::json!({"device_id": "sensor-hot"})
        );
        assert_eq!(event["detail"]["window_start"], "2026-11-22T07:00:00.000Z");
    }
    let (overheating, too_hot) = (&alerts[0]["detail"], &alerts[1]["detail"]);
    assert_eq!(overheating["rule"], "overheating");
    assert_eq!(overheating["consecutive"], 3);
    assert_eq!(overheating["value"], 87.25);
    assert_eq!(overheating["at"], "2026-11-22T07:02:00.000Z");
    assert_eq!(too_hot["rule"], "too_hot");
    assert_eq!(too_hot["value"], 85.5);
    let markers = list_keys(&aws, &bucket, "alerts/").await;
    assert_eq!(markers.len(), 2, "{markers:?}");

    // The same batch again (a retry): it lands again under the same keys, and alerts nobody.
    let again = api.invoke("kinesis-overheating.json");
    assert_eq!(again, serde_json::json!({"batchItemFailures": []}));
    let repeated = drain(&sqs, &queue, 0, std::time::Duration::from_secs(5)).await;
    assert!(repeated.is_empty(), "alerted twice: {repeated:?}");
}
