//! DynamoDB Streams' reader gives the batch the full `aws_lambda_events` model gives.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::dynamodb_models(data));
