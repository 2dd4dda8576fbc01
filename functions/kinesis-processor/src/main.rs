//! `kinesis-processor`: IoT readings from Kinesis (or, with `SOURCE=sqs`, an SQS queue; with
//! `SOURCE=dynamodb`, a table's DynamoDB stream) to partitioned gzip NDJSON in S3; with
//! `SOURCE=firehose`, the data transformation of a Firehose delivery stream; with `SOURCE=kafka`,
//! an MSK or self-managed Kafka mapping.
//! Configuration: see `runnel::pipeline::StreamConfig` (the template sets `OUTPUT_PREFIX=iot`).

use kinesis_processor::{pipeline_from, table_pipeline, Source};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    match Source::from_env() {
        Ok(Source::Kinesis) => pipeline_from(runnel::source::Kinesis).run().await,
        Ok(Source::Sqs) => pipeline_from(runnel::source::Sqs).run().await,
        Ok(Source::DynamoDb) => table_pipeline().run().await,
        Ok(Source::Firehose) => pipeline_from(runnel::source::Firehose).run().await,
        Ok(Source::Kafka) => pipeline_from(runnel::source::Kafka).run().await,
        Err(reason) => {
            eprintln!("{reason}");
            Err(reason.into())
        }
    }
}
