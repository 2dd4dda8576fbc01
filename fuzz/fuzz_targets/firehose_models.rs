//! Firehose's lean reader reads whatever the full `aws_lambda_events` model reads, the same way.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::firehose_models(data));
