//! `kinesis-processor`: IoT readings from Kinesis (or, with `SOURCE=sqs`, an SQS queue; with
//! `SOURCE=dynamodb`, a table's DynamoDB stream) to partitioned gzip NDJSON in S3; with
//! `SOURCE=firehose`, the data transformation of a Firehose delivery stream; with `SOURCE=kafka`,
//! an MSK or self-managed Kafka mapping.
//! Every source but Firehose also writes the panes of `device_minute` (per device and minute)
//! under `AGGREGATES_PREFIX/device_minute/`.
//! Configuration: see `runnel::pipeline::StreamConfig` (the template sets `OUTPUT_PREFIX=iot`).

use kinesis_processor::{
    aggregating_pipeline_from, device_minute, pipeline_from, table_pipeline, Source,
};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    match Source::from_env() {
        Ok(Source::Kinesis) => {
            aggregating_pipeline_from(runnel::source::Kinesis)
                .run()
                .await
        }
        Ok(Source::Sqs) => aggregating_pipeline_from(runnel::source::Sqs).run().await,
        Ok(Source::DynamoDb) => table_pipeline().aggregate(device_minute()).run().await,
        // The delivery stream writes Firehose's output: no pane could be written beside it.
        Ok(Source::Firehose) => pipeline_from(runnel::source::Firehose).run().await,
        Ok(Source::Kafka) => aggregating_pipeline_from(runnel::source::Kafka).run().await,
        Err(reason) => {
            eprintln!("{reason}");
            Err(reason.into())
        }
    }
}
