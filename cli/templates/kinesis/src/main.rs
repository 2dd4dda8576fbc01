//! `{{name}}` as a Lambda function; its configuration comes from the environment (README.md).

use std::sync::Arc;

use runnel::aws::Aws;
use runnel::sink::S3Store;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // One S3 client for the output and the sections lookup.
    let s3 = S3Store::new(Aws::from_env().await.s3());
    let sections = {{crate}}::Sections::from_env(Arc::new(s3.clone()))?;
    {{crate}}::pipeline({{crate}}::Clicks { sections })
        .store(s3)
        .run()
        .await
}
