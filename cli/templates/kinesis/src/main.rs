//! `{{name}}` as a Lambda function; its configuration comes from the environment (README.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    {{crate}}::pipeline().run().await
}
