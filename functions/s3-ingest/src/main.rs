//! `s3-ingest`: daily transaction files from the raw bucket to curated, partitioned gzip NDJSON.
//! Configuration: see `runnel::ingest::IngestEnv`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runnel::ingest::run("s3-ingest", s3_ingest::TransactionTransform).await
}
