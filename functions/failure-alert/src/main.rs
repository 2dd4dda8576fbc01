//! `failure-alert`: failure reports (EventBridge, SQS, SNS) to readable, de-duplicated SNS alerts.
//! Configuration: see `runnel::apps::alert::AlertConfig`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runnel::apps::alert::AlertFunction::new("failure-alert")
        .run()
        .await
}
