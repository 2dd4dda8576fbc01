//! `s3-ingest`: daily transaction files from the raw bucket to curated, partitioned gzip NDJSON,
//! then the day's Glue job started once its input is complete.
//! Configuration: see `runnel::ingest::IngestEnv` and `runnel::apps::glue_trigger::GlueTriggerConfig`.

use runnel::apps::glue_trigger::GlueTriggerConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runnel::ingest::run_with_hook(
        "s3-ingest",
        s3_ingest::TransactionTransform,
        GlueTriggerConfig::read,
    )
    .await
}
