//! S3 notifications, EventBridge "Object Created" events, and both queued through SQS / SNS.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::s3_event(data));
