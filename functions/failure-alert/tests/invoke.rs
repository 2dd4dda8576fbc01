//! The `failure-alert` binary behind a Runtime API (cargo-lambda's), publishing to the emulator.

use runnel_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_failure-alert");

#[tokio::test]
async fn binary_publishes_and_suppresses_through_the_runtime_api() {
    let aws = emulator().await;
    let topic = aws
        .sns()
        .create_topic()
        .name(unique_name("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let bucket = new_bucket(&aws, "dedupe").await;
    let api = RuntimeApi::start();
    let _handler = KillOnDrop(api.run_handler(
        BINARY,
        &[
            ("ALERT_TOPIC_ARN", &topic),
            ("DEDUPE_BUCKET", &bucket),
            ("PIPELINE_NAME", "demo"),
        ],
    ));
    assert_eq!(
        api.invoke("alert-glue-timeout.json"),
        serde_json::json!({"published": 1, "suppressed": 0, "ignored": 0})
    );
    assert_eq!(
        api.invoke("alert-glue-timeout.json"),
        serde_json::json!({"published": 0, "suppressed": 1, "ignored": 0})
    );
    assert_eq!(
        api.invoke("alert-kinesis-esm-duplicate-sqs.json"),
        serde_json::json!({"batchItemFailures": []})
    );
}

#[test]
fn invalid_configuration_names_every_variable() {
    let out = std::process::Command::new(BINARY)
        .env_remove("ALERT_TOPIC_ARN")
        .env("DEDUPE_WINDOW_SECONDS", "an hour")
        .env("ALERT_STATES", " , ")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for needle in [
        "ALERT_TOPIC_ARN is not set",
        "DEDUPE_WINDOW_SECONDS=\\\"an hour\\\"",
        "ALERT_STATES",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
