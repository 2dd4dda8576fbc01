//! The `s3-ingest` binary behind a Runtime API (cargo-lambda's), ingesting from emulator S3.

use runnel_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_s3-ingest");

#[tokio::test]
async fn binary_ingests_an_object_named_by_an_s3_notification() {
    let aws = emulator().await;
    let raw = new_bucket(&aws, "raw").await;
    let curated = new_bucket(&aws, "curated").await;
    let key = "transactions/dt=2026-11-22/daily export Zürich café.csv";
    let body = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n\
                tx-1,acc-1,12.50,CHF,2026-11-22T08:00:00Z,Café Zürich,food,CH\n\
                tx-2,acc-1,oops,CHF,2026-11-22T08:05:00Z,Kiosk,,CH\n";
    let etag = put_object(&aws, &raw, key, body.as_bytes().to_vec()).await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("OUTPUT_BUCKET", &curated),
            ("OUTPUT_PREFIX", "transactions"),
        ],
    ));
    let event = s3_put_notification(&raw, key, &etag, body.len() as u64);
    let out = api.invoke_value(&event);
    assert_eq!(out["objects"][0]["status"], "complete", "{out}");
    assert_eq!(
        (
            out["objects"][0]["rows_out"].as_u64(),
            out["objects"][0]["rows_quarantined"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let again = api.invoke_value(&s3_eventbridge_created(&raw, key, &etag, body.len() as u64));
    assert_eq!(again["objects"][0]["status"], "duplicate");
    let keys = list_keys(&aws, &curated, "transactions/dt=2026-11-22/").await;
    assert_eq!(keys.len(), 1);
    let rows = ndjson_lines(&get_object(&aws, &curated, &keys[0]).await);
    assert_eq!(rows[0]["merchant"], "Café Zürich");
}

/// S3 → SQS → s3-ingest: answered per message; a message that names no object is reported (the
/// queue's dead-letter queue keeps it), the good one is ingested and deleted.
#[tokio::test]
async fn binary_answers_queued_notifications_per_message() {
    let aws = emulator().await;
    let raw = new_bucket(&aws, "raw").await;
    let curated = new_bucket(&aws, "curated").await;
    let key = "transactions/dt=2026-11-23/queued.csv";
    let body = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\n\
                tx-9,acc-2,3.20,EUR,2026-11-23T09:00:00Z,Bakery,food,DE\n";
    let etag = put_object(&aws, &raw, key, body.as_bytes().to_vec()).await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("OUTPUT_BUCKET", &curated),
            ("OUTPUT_PREFIX", "transactions"),
        ],
    ));
    let mut event: serde_json::Value =
        serde_json::from_str(&event_file("sqs-s3-notifications.json")).unwrap();
    let records = event["Records"].as_array_mut().unwrap();
    records.truncate(2);
    records[0]["body"] = s3_put_notification(&raw, key, &etag, body.len() as u64)
        .to_string()
        .into();
    records[1]["body"] = "{\"not\": \"an S3 event\"}".into();
    let bad_id = records[1]["messageId"].clone();
    let out = api.invoke_value(&event);
    assert_eq!(
        out,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": bad_id}]})
    );
    let keys = list_keys(&aws, &curated, "transactions/dt=2026-11-23/").await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        ndjson_lines(&get_object(&aws, &curated, &keys[0]).await)[0]["merchant"],
        "Bakery"
    );
}

#[test]
fn invalid_configuration_names_every_variable() {
    let out = std::process::Command::new(BINARY)
        .env_remove("OUTPUT_BUCKET")
        .env("GLUE_PRECONDITION", "when ready")
        .env("MAX_ROW_BYTES", "8")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for needle in [
        "OUTPUT_BUCKET is not set",
        "GLUE_PRECONDITION=\\\"when ready\\\"",
        "MAX_ROW_BYTES=\\\"8\\\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
