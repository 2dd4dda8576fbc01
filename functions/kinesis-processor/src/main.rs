//! `kinesis-processor`: IoT readings from Kinesis to partitioned gzip NDJSON in S3.
//! Configuration: see `runnel::pipeline::StreamConfig` (the template sets `OUTPUT_PREFIX=iot`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    kinesis_processor::pipeline().run().await
}
