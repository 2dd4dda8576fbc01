//! `kinesis-processor`: IoT readings from Kinesis to partitioned gzip NDJSON in S3.
//! Configuration: see `runnel::kinesis::StreamConfig`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runnel::kinesis::run("kinesis-processor", kinesis_processor::IotTransform).await
}
