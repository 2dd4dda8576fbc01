//! `kinesis-processor`: IoT readings from Kinesis (or, with `SOURCE=sqs`, an SQS queue; with
//! `SOURCE=dynamodb`, a table's DynamoDB stream) to partitioned gzip NDJSON in S3; with
//! `SOURCE=firehose`, the data transformation of a Firehose delivery stream; with `SOURCE=kafka`,
//! an MSK or self-managed Kafka mapping.
//! Every source but Firehose also writes the panes of `device_minute` (per device and minute)
//! under `AGGREGATES_PREFIX/device_minute/`; with `SOURCE=kinesis-windows` or
//! `dynamodb-windows` (mappings with `TumblingWindowInSeconds`) the aggregate is kept in the
//! window's state and written once per shard and window instead. Those sources also check the
//! rules `too_hot` and `overheating`, publishing alerts to EventBridge's `ALERT_BUS`.
//! Configuration: see `runnel::pipeline::StreamConfig` (the template sets `OUTPUT_PREFIX=iot`).

use kinesis_processor::{
    aggregating_pipeline_from, device_minute, pipeline_from, table_pipeline, table_pipeline_from,
    with_rules, Source,
};
use runnel::source::Windowed;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    match Source::from_env() {
        Ok(Source::Kinesis) => {
            aggregating_pipeline_from(runnel::source::Kinesis)
                .run()
                .await
        }
        Ok(Source::Sqs) => aggregating_pipeline_from(runnel::source::Sqs).run().await,
        Ok(Source::DynamoDb) => {
            with_rules(table_pipeline().aggregate(device_minute()))
                .run()
                .await
        }
        // The delivery stream writes Firehose's output: no pane could be written beside it.
        Ok(Source::Firehose) => pipeline_from(runnel::source::Firehose).run().await,
        Ok(Source::Kafka) => aggregating_pipeline_from(runnel::source::Kafka).run().await,
        // With tumbling windows the aggregate lives in the window's state: rows per shard and
        // window, no panes per run.
        Ok(Source::KinesisWindows) => {
            aggregating_pipeline_from(Windowed(runnel::source::Kinesis))
                .run()
                .await
        }
        Ok(Source::DynamoDbWindows) => {
            with_rules(
                table_pipeline_from(Windowed(runnel::source::DynamoDb)).aggregate(device_minute()),
            )
            .run()
            .await
        }
        Err(reason) => {
            eprintln!("{reason}");
            Err(reason.into())
        }
    }
}
