//! `s3-ingest`: daily transaction files from the raw bucket to curated, partitioned gzip NDJSON,
//! then the day's Glue job started once its input is complete. Configuration:
//! `runnel::ingest::IngestConfig` and `runnel::apps::glue_trigger::GlueTriggerConfig`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    s3_ingest::pipeline().run().await
}
