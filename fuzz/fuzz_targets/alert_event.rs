//! Failure reports as failure-alert receives them (EventBridge, on-failure records, SQS, SNS).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::alert_event(data));
